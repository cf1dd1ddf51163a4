"""Constraints that tie features of an `ActionSet` together (Cheon et al. 2025; Kothari et al. 2024).

Each constraint names its features; the features of all constraints that share a feature form one
*partition*, and a partition's features move together: a one-hot group switches category as a
unit, a thermometer encoding moves from level to level, a directional linkage moves its targets
with its source. Every constraint is checked on the point an action reaches, ``x' = x + a``, so
they compose: a partition's feasible actions are those whose ``x'`` satisfies all of its
constraints.

The checks are vectorised: ``holds(after, before)`` gets the partition's values after and before
the action as (m, k) arrays in the order of ``names`` and returns an (m,) bool array.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from ..exceptions import InvalidParameterError

__all__ = ["ActionConstraint", "DirectionalLinkage", "IfThen", "OneHot", "Thermometer"]

_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq, "!=": operator.ne, ">=": operator.ge, "<=": operator.le,
    ">": operator.gt, "<": operator.lt,
}


def _names(owner: str, names: Any, minimum: int) -> tuple[str, ...]:
    if isinstance(names, str) or not isinstance(names, Sequence) or not all(
            isinstance(n, str) for n in names):
        msg = (f"The 'names' parameter of {owner} must be a list of feature names (str). Got "
               f"{names!r} instead.")
        raise InvalidParameterError(msg, owner=owner, parameter="names", value=names)
    out = tuple(names)
    if len(out) < minimum or len(set(out)) != len(out):
        why = (f"at least {minimum} names" if len(out) < minimum else "each name once")
        msg = f"The 'names' parameter of {owner} must list {why}. Got {list(out)!r} instead."
        raise InvalidParameterError(msg, owner=owner, parameter="names", value=names)
    return out


@dataclasses.dataclass(frozen=True)
class ActionConstraint:
    """Base of the cross-feature constraints: the features it ties, and its check on ``x'``."""

    kind: ClassVar[str] = ""
    names: tuple[str, ...]

    def holds(self, after: np.ndarray, before: np.ndarray) -> np.ndarray:
        """Whether each row of ``after`` (reached from ``before``) satisfies the constraint."""
        return np.ones(after.shape[0], dtype=bool)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``kind`` plus the constructor's arguments)."""
        out: dict[str, Any] = {"kind": self.kind}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def describe(self) -> str:
        """One line for tables and reprs."""
        return f"{type(self).__name__}({', '.join(self.names)})"


@dataclasses.dataclass(frozen=True, init=False)
class OneHot(ActionConstraint):
    """A one-hot group: boolean features of which exactly one is 1, before and after any action.

    An action moves the person from one category to another (two features change together), so
    the group is one partition. Example: ``OneHot(["purpose_car", "purpose_education",
    "purpose_other"])``.
    """

    kind: ClassVar[str] = "one_hot"

    def __init__(self, names: Sequence[str]) -> None:
        object.__setattr__(self, "names", _names("OneHot", names, 2))

    def holds(self, after: np.ndarray, before: np.ndarray) -> np.ndarray:
        return np.asarray(after.sum(axis=1) == 1)


@dataclasses.dataclass(frozen=True, init=False)
class Thermometer(ActionConstraint):
    """A thermometer (cumulative) encoding: boolean features with ``x[0] >= x[1] >= ...``.

    ``["checking_geq_0", "checking_geq_200"]`` encodes the levels "< 0" (0, 0), ">= 0" (1, 0) and
    ">= 200" (1, 1). ``step_direction`` +1 allows only moves up the levels, -1 only down, 0 both.
    """

    kind: ClassVar[str] = "thermometer"
    step_direction: int

    def __init__(self, names: Sequence[str], step_direction: int = 0) -> None:
        object.__setattr__(self, "names", _names("Thermometer", names, 2))
        if isinstance(step_direction, bool) or step_direction not in (-1, 0, 1):
            msg = (f"The 'step_direction' parameter of Thermometer must be -1, 0 or +1. Got "
                   f"{step_direction!r} instead.")
            raise InvalidParameterError(msg, owner="Thermometer", parameter="step_direction",
                                        value=step_direction)
        object.__setattr__(self, "step_direction", int(step_direction))

    def holds(self, after: np.ndarray, before: np.ndarray) -> np.ndarray:
        ordered = np.all(after[:, :-1] >= after[:, 1:], axis=1)
        if self.step_direction == 0:
            return np.asarray(ordered)
        moved = np.sign(after.sum(axis=1) - before.sum(axis=1))
        return np.asarray(ordered & (moved * self.step_direction >= 0))

    def describe(self) -> str:
        arrow = {1: ", up only", -1: ", down only", 0: ""}[self.step_direction]
        return f"Thermometer({' >= '.join(self.names)}{arrow})"


@dataclasses.dataclass(frozen=True, init=False)
class DirectionalLinkage(ActionConstraint):
    """A change of the source ``names[0]`` moves each target ``names[k]`` by
    ``scales[k] / scales[0]`` times as much.

    ``DirectionalLinkage(["years_at_residence", "age"])``: staying one more year at the same
    address makes the person one year older. The targets need not be actionable (age is not):
    they move only as a consequence. The source must be actionable. With ``keep_bounds=False``
    (reachml's default) a target may leave its bounds by the linked amount; with True it may not.
    """

    kind: ClassVar[str] = "directional_linkage"
    scales: tuple[float, ...]
    keep_bounds: bool

    def __init__(self, names: Sequence[str], scales: Sequence[float] | None = None,
                 keep_bounds: bool = False) -> None:
        object.__setattr__(self, "names", _names("DirectionalLinkage", names, 2))
        values = [1.0] * len(self.names) if scales is None else scales
        ok = (isinstance(values, Sequence) and not isinstance(values, str)
              and len(values) == len(self.names)
              and all(isinstance(s, int | float) and not isinstance(s, bool)
                      and np.isfinite(s) and s != 0 for s in values))
        if not ok:
            msg = (f"The 'scales' parameter of DirectionalLinkage must be one non-zero finite "
                   f"number per name ({len(self.names)}). Got {scales!r} instead.")
            raise InvalidParameterError(msg, owner="DirectionalLinkage", parameter="scales",
                                        value=scales)
        object.__setattr__(self, "scales", tuple(float(s) for s in values))
        if not isinstance(keep_bounds, bool):
            msg = (f"The 'keep_bounds' parameter of DirectionalLinkage must be a bool. Got "
                   f"{keep_bounds!r} instead.")
            raise InvalidParameterError(msg, owner="DirectionalLinkage",
                                        parameter="keep_bounds", value=keep_bounds)
        object.__setattr__(self, "keep_bounds", keep_bounds)

    @property
    def source(self) -> str:
        return self.names[0]

    @property
    def targets(self) -> tuple[str, ...]:
        return self.names[1:]

    @property
    def ratios(self) -> tuple[float, ...]:
        """Change of each target per unit change of the source."""
        return tuple(s / self.scales[0] for s in self.scales[1:])

    def describe(self) -> str:
        parts = ", ".join(f"{t} x{r:g}" for t, r in zip(self.targets, self.ratios, strict=True))
        return f"DirectionalLinkage({self.source} -> {parts})"


Condition = tuple[str, str, float]


@dataclasses.dataclass(frozen=True, init=False)
class IfThen(ActionConstraint):
    """If the point reached satisfies ``if_``, it must satisfy ``then``.

    Conditions are ``(name, op, value)`` with op one of ``== != >= <= > <``, checked on
    ``x' = x + a``: ``IfThen(if_=("n_loans", ">=", 3), then=("has_guarantor", "==", 1))``. (reachml's
    IfThenConstraint states its conditions on the action instead; a condition on the point is what
    a policy usually says and composes with the other constraints.)
    """

    kind: ClassVar[str] = "if_then"
    if_: Condition
    then: Condition

    def __init__(self, if_: Sequence[Any], then: Sequence[Any]) -> None:
        conditions = [self._condition("if_", if_), self._condition("then", then)]
        if conditions[0][0] == conditions[1][0]:
            msg = (f"IfThen's 'if_' and 'then' name the same feature {conditions[0][0]!r}; "
                   "a condition on one feature is a bound: set its lb/ub instead.")
            raise InvalidParameterError(msg, owner="IfThen", parameter="then", value=then)
        object.__setattr__(self, "if_", conditions[0])
        object.__setattr__(self, "then", conditions[1])
        object.__setattr__(self, "names", (conditions[0][0], conditions[1][0]))

    @staticmethod
    def _condition(parameter: str, value: Any) -> Condition:
        ok = (isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 3
              and isinstance(value[0], str) and value[1] in _OPS
              and isinstance(value[2], int | float) and not isinstance(value[2], bool))
        if not ok:
            msg = (f"The {parameter!r} parameter of IfThen must be a (name, op, value) triple "
                   f"with op in {sorted(_OPS)}, e.g. ('n_loans', '>=', 3). Got {value!r} "
                   "instead.")
            raise InvalidParameterError(msg, owner="IfThen", parameter=parameter, value=value)
        return (value[0], str(value[1]), float(value[2]))

    def holds(self, after: np.ndarray, before: np.ndarray) -> np.ndarray:
        cond = _OPS[self.if_[1]](after[:, 0], self.if_[2])
        then = _OPS[self.then[1]](after[:, 1], self.then[2])
        return np.asarray(~cond | then)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "if_": list(self.if_), "then": list(self.then)}

    def describe(self) -> str:
        return (f"IfThen({self.if_[0]} {self.if_[1]} {self.if_[2]:g} -> "
                f"{self.then[0]} {self.then[1]} {self.then[2]:g})")


CONSTRAINTS: Mapping[str, type[ActionConstraint]] = {
    c.kind: c for c in (OneHot, Thermometer, DirectionalLinkage, IfThen)}


def constraint_from_dict(data: Mapping[str, Any]) -> ActionConstraint:
    """Rebuild a constraint from `ActionConstraint.to_dict`."""
    kind = str(data.get("kind"))
    if kind not in CONSTRAINTS:
        msg = (f"Unknown constraint kind {kind!r} in the action set file; known kinds: "
               f"{sorted(CONSTRAINTS)}.")
        raise InvalidParameterError(msg, owner="ActionSet.load", parameter="constraints",
                                    value=kind)
    args = {k: v for k, v in data.items() if k != "kind"}
    return CONSTRAINTS[kind](**args)
