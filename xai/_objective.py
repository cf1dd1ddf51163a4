"""Objectives: what "best" means when a method chooses among explanations (``best_of``, BEE).

An objective scores explanations per example. It is either a metric object, which declares its
direction through ``higher_is_better`` (every ``metrics.Metric`` qualifies; the core never imports
``metrics``), or any callable ``(explanation, model) -> per-example scores`` with a ``direction``
given beside it ("max" or "min").
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import torch

from ._validation import fmt_value
from .exceptions import InvalidExplanationError, InvalidParameterError

if TYPE_CHECKING:
    from .adapters._base import ModelAdapter
    from .explanation import Explanation

__all__ = ["MetricLike", "Objective", "as_objective"]

Direction = Literal["max", "min"]


@runtime_checkable
class MetricLike(Protocol):
    """A scorer that knows its direction: ``metric(explanation, model, batch_size=...,
    random_state=...)`` returns a result whose ``scores`` are (n_examples, n_outputs)."""

    higher_is_better: bool

    def __call__(self, explanation: Any, model: Any, *, batch_size: int | str = "auto",
                 random_state: Any = None) -> Any: ...


def is_objective(value: Any) -> bool:
    """Whether ``value`` can be an objective (a MetricLike or any callable)."""
    return isinstance(value, MetricLike) or callable(value)


class Objective:
    """An objective resolved with its direction: ``objective(exp, adapter, seed)`` returns one
    score per example (float64, NaN where undefined), and ``better(a, b)`` compares scores."""

    def __init__(self, fn: Any, direction: Direction, name: str) -> None:
        self.fn, self.direction, self.name = fn, direction, name

    def __call__(self, explanation: Explanation, adapter: ModelAdapter, *, batch_size: int,
                 seed: int) -> torch.Tensor:
        if isinstance(self.fn, MetricLike):
            out = self.fn(explanation, adapter, batch_size=batch_size, random_state=seed)
            scores = out.scores
        else:
            scores = self.fn(explanation, adapter)
        return _per_example(scores, len(explanation), self.name)

    def sign(self) -> float:
        """+1 when higher scores are better, -1 otherwise (``sign * score`` is maximised)."""
        return 1.0 if self.direction == "max" else -1.0


def _per_example(scores: Any, n: int, name: str) -> torch.Tensor:
    """One float64 score per example from (n,) or (n, n_outputs) scores (mean over outputs)."""
    values = getattr(scores, "scores", scores)
    try:
        t = torch.as_tensor(values, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError) as err:
        msg = (f"The objective {name} must return one score per example (an array of shape "
               f"(n_examples,) or (n_examples, n_outputs)); it returned {fmt_value(values)}.")
        raise InvalidExplanationError(msg) from err
    if t.dim() == 2:
        t = t.nanmean(dim=1)
    if t.dim() != 1 or t.shape[0] != n:
        msg = (f"The objective {name} must return one score per example ({n}); it returned "
               f"shape {tuple(t.shape)}.")
        raise InvalidExplanationError(msg)
    return t


def as_objective(objective: Any, direction: str | None, *, owner: str) -> Objective:
    """Resolve ``objective`` and ``direction`` (InvalidParameterError for a contradiction or a
    callable without direction)."""
    if isinstance(objective, MetricLike):
        own: Direction = "max" if objective.higher_is_better else "min"
        if direction is not None and direction != own:
            msg = (f"{owner}'s objective {type(objective).__name__} is "
                   f"{'higher' if own == 'max' else 'lower'}-is-better, but direction="
                   f"{direction!r} was given. Leave direction=None for a metric.")
            raise InvalidParameterError(msg, owner=owner, parameter="direction",
                                        value=direction)
        return Objective(objective, own, type(objective).__name__)
    if callable(objective):
        if direction not in ("max", "min"):
            msg = (f"{owner}'s objective {_name(objective)} is a plain callable, so {owner} "
                   "cannot know whether higher or lower scores are better. Pass direction='max' "
                   "or direction='min'.")
            raise InvalidParameterError(msg, owner=owner, parameter="direction",
                                        value=direction)
        return Objective(objective, direction, _name(objective))  # type: ignore[arg-type]
    msg = (f"The 'objective' parameter of {owner} must be a metric (e.g. metrics.Infidelity()) "
           f"or a callable (explanation, model) -> per-example scores. Got "
           f"{fmt_value(objective)} instead.")
    raise InvalidParameterError(msg, owner=owner, parameter="objective", value=objective)


def _name(fn: Callable[..., Any]) -> str:
    if inspect.isroutine(fn):
        return str(getattr(fn, "__qualname__", type(fn).__name__))
    return type(fn).__name__
