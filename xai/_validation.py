"""Declarative parameter constraints (scikit-learn's wording) and random-state handling."""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, Protocol

import numpy as np
import torch

from .exceptions import InvalidParameterError

__all__ = [
    "BASELINE",
    "ArrayLike",
    "Constraint",
    "InstanceOf",
    "Interval",
    "Options",
    "Satisfies",
    "check_params",
    "check_random_state",
    "fmt_value",
]


class Constraint(Protocol):
    """One accepted kind of value for a parameter."""

    def is_satisfied_by(self, value: Any) -> bool: ...

    def invalid_value(self) -> Any:
        """A value that violates this constraint (used by the conformance suite)."""
        ...


def fmt_value(value: Any) -> str:
    """Short repr of a value for an error message (tensors and arrays summarised by shape)."""
    if isinstance(value, torch.Tensor | np.ndarray):
        return f"{type(value).__name__} of shape {tuple(value.shape)}"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


@dataclasses.dataclass(frozen=True)
class Interval:
    """Numbers of ``type_`` between ``left`` and ``right`` (None = unbounded)."""

    type_: type
    left: float | None
    right: float | None
    closed: Literal["left", "right", "both", "neither"] = "both"

    def is_satisfied_by(self, value: Any) -> bool:
        if isinstance(value, bool):
            return False
        if self.type_ is int and not isinstance(value, numbers.Integral):
            return False
        if self.type_ is float and not isinstance(value, numbers.Real):
            return False
        if isinstance(value, float) and math.isnan(value):
            return False
        lo_ok = self.left is None or (
            value >= self.left if self.closed in ("left", "both") else value > self.left
        )
        hi_ok = self.right is None or (
            value <= self.right if self.closed in ("right", "both") else value < self.right
        )
        return bool(lo_ok and hi_ok)

    def invalid_value(self) -> Any:
        if self.left is not None:
            return self.type_(self.left - 1)
        return self.type_(self.right + 1)  # type: ignore[operator]  # right is set when left is not

    def __str__(self) -> str:
        kind = "an int" if self.type_ is int else "a float"
        lo = "-inf" if self.left is None else _num(self.left)
        hi = "inf" if self.right is None else _num(self.right)
        lb = "[" if self.closed in ("left", "both") and self.left is not None else "("
        rb = "]" if self.closed in ("right", "both") and self.right is not None else ")"
        return f"{kind} in the range {lb}{lo}, {hi}{rb}"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


@dataclasses.dataclass(frozen=True)
class Options:
    """One of a fixed set of values."""

    options: frozenset[Any]

    def __init__(self, options: Iterable[Any]) -> None:
        object.__setattr__(self, "options", frozenset(options))

    def is_satisfied_by(self, value: Any) -> bool:
        try:
            return value in self.options
        except TypeError:  # unhashable values are never options
            return False

    def invalid_value(self) -> Any:
        return "__not_an_option__"

    def __str__(self) -> str:
        kinds = {type(o).__name__ for o in self.options if o is not None}
        kind = "a str" if kinds == {"str"} else "a value"
        items = ", ".join(repr(o) for o in sorted(self.options, key=repr))
        return f"{kind} among {{{items}}}"


@dataclasses.dataclass(frozen=True)
class InstanceOf:
    """An instance of one of ``types`` (or a callable when ``types`` is ``(Callable,)``)."""

    types: tuple[Any, ...]
    description: str = ""

    def is_satisfied_by(self, value: Any) -> bool:
        if self.types == (Callable,):
            return callable(value)
        return isinstance(value, self.types)

    def invalid_value(self) -> Any:
        return object()

    def __str__(self) -> str:
        if self.description:
            return self.description
        names = " or ".join(getattr(t, "__name__", str(t)) for t in self.types)
        return f"an instance of {names}"


@dataclasses.dataclass(frozen=True)
class ArrayLike:
    """An array of numbers: a numpy array, a tensor, a pandas object, a list or a tuple.

    Strings are not array-like (scikit-learn's ``"array-like"`` constraint). The shape and the
    values are checked where the array is used, once the inputs are known.
    """

    def is_satisfied_by(self, value: Any) -> bool:
        if isinstance(value, str | bytes | bool) or value is None:
            return False
        return isinstance(value, list | tuple | torch.Tensor) or hasattr(value, "__array__")

    def invalid_value(self) -> Any:
        return object()

    def __str__(self) -> str:
        return "an array-like"


@dataclasses.dataclass(frozen=True)
class Satisfies:
    """A value for which ``predicate`` holds: a rule no other constraint kind states.

    ``description`` completes "must be ..." in the error message, and ``invalid`` is a value that
    breaks the rule (for the conformance suite).
    """

    predicate: Callable[[Any], bool]
    description: str
    invalid: Any

    def is_satisfied_by(self, value: Any) -> bool:
        try:
            return bool(self.predicate(value))
        except (TypeError, ValueError):
            return False

    def invalid_value(self) -> Any:
        return self.invalid

    def __str__(self) -> str:
        return self.description


NONE_OK: Constraint = Options({None})


#: The accepted kinds of ``baseline`` of the perturbation methods: a named baseline (numeric
#: inputs: "zeros", "mean"; text: "pad", "mask", "unk", "delete"), a number or an array. Which
#: names and shapes fit the model is checked when the inputs are known.
BASELINE: tuple[Constraint, ...] = (
    Options({"auto", "zeros", "mean", "pad", "mask", "unk", "delete"}),
    InstanceOf((numbers.Real,), "a number"),
    ArrayLike(),
)


def _describe(constraints: Sequence[Constraint]) -> str:
    parts = [("None" if c == NONE_OK else str(c)) for c in constraints]
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " or " + parts[-1]


def check_param(owner: str, name: str, value: Any, constraints: Sequence[Constraint]) -> None:
    """Raise InvalidParameterError unless ``value`` satisfies one of ``constraints``."""
    if any(c.is_satisfied_by(value) for c in constraints):
        return
    expected = _describe(constraints)
    msg = f"The {name!r} parameter of {owner} must be {expected}. Got {fmt_value(value)} instead."
    raise InvalidParameterError(
        msg, owner=owner, parameter=name, value=value, constraint=expected
    )


def required_fields(cls: type) -> list[str]:
    """The init fields of dataclass ``cls`` without a default, in declaration order."""
    return [f.name for f in dataclasses.fields(cls) if f.init and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING]


def check_params(obj: Any, constraints: Mapping[str, Sequence[Constraint]]) -> None:
    """Validate the fields of a dataclass instance against its ``_constraints`` table."""
    owner = type(obj).__name__
    for name, allowed in constraints.items():
        check_param(owner, name, getattr(obj, name), allowed)


RandomStateLike = int | np.integer | torch.Generator | None


def check_random_state(random_state: Any, *, owner: str = "explain") -> torch.Generator:
    """Turn ``random_state`` into a fresh ``torch.Generator``; global RNGs are never touched.

    ``None`` draws a seed from the operating system's entropy (non-reproducible by design); an int
    seeds a new generator; a generator is used as is.
    """
    if isinstance(random_state, torch.Generator):
        return random_state
    if random_state is None:
        seed = int(np.random.SeedSequence().generate_state(1, dtype=np.uint64)[0] >> 1)
    elif isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            msg = (
                f"The 'random_state' parameter of {owner} must be a non-negative int, a "
                f"torch.Generator or None. Got {random_state!r} instead."
            )
            raise InvalidParameterError(msg, owner=owner, parameter="random_state", value=random_state)
        seed = int(random_state)
    else:
        msg = (
            f"The 'random_state' parameter of {owner} must be a non-negative int, a "
            f"torch.Generator or None. Got {fmt_value(random_state)} instead."
        )
        raise InvalidParameterError(msg, owner=owner, parameter="random_state", value=random_state)
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


def numpy_rng(gen: torch.Generator) -> np.random.Generator:
    """A numpy Generator derived deterministically from a torch Generator (for shap/lime wrappers)."""
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=gen).item())
    return np.random.default_rng(seed)


def int_seed(gen: torch.Generator) -> int:
    """An int seed derived deterministically from ``gen`` (for libraries that want an int)."""
    return int(torch.randint(0, 2**31 - 1, (1,), generator=gen).item())
