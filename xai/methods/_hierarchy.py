"""Hierarchical explanations: explain units, split the important ones, explain again.

Split out of :mod:`._coalitions` (which re-exports :func:`hierarchical` and
:class:`UnitValue`); the levels are plain coalition games solved there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable, Sequence
from typing import Generic, TypeVar

import torch

from .._validation import Interval, check_param, fmt_value
from ..exceptions import InvalidParameterError

__all__ = ["UnitValue", "hierarchical"]

U = TypeVar("U", bound=Hashable)

_POS_INT = [Interval(int, 1, None, closed="left")]


@dataclasses.dataclass(frozen=True)
class UnitValue(Generic[U]):
    """One player of one level of a hierarchical explanation.

    ``parent`` is the index (in the returned list) of the entry this unit came from at the level
    above: the expanded unit for a sub-unit, the same unit for a unit carried over whole, None at
    the top level. ``expanded`` says whether the unit was split at the next level.
    """

    level: int
    unit: U
    value: torch.Tensor
    score: float
    expanded: bool
    parent: int | None


def _scores(values: torch.Tensor) -> torch.Tensor:
    """|value| normalised by the level's sum of |values| (per column), max over columns."""
    mag = values.abs().reshape(values.shape[0], -1).to(torch.float64)
    total = mag.sum(0, keepdim=True)
    norm = torch.where(total > 0, mag / total.clamp_min(1e-300), torch.zeros_like(mag))
    return norm.max(1).values if norm.shape[1] else torch.zeros(values.shape[0])


def _thresholds(threshold: float | Sequence[float], levels: int) -> list[float]:
    owner = "hierarchical"
    check_param(owner, "levels", levels, _POS_INT)
    items = [threshold] * (levels - 1) if isinstance(threshold, int | float) else list(threshold)
    ok = len(items) == levels - 1 and all(
        Interval(float, 0, 1).is_satisfied_by(t) for t in items)
    if not ok:
        msg = (f"The 'threshold' parameter of hierarchical must be a float in [0, 1] or a "
               f"sequence of levels - 1 = {levels - 1} such floats. Got {fmt_value(threshold)} "
               f"instead.")
        raise InvalidParameterError(msg, owner=owner, parameter="threshold", value=threshold)
    return [float(t) for t in items]


def hierarchical(explain_level: Callable[[list[U]], torch.Tensor],
                 expand: Callable[[U], Sequence[U]], units: Sequence[U], *, levels: int,
                 threshold: float | Sequence[float]) -> list[UnitValue[U]]:
    """Hierarchical explanation: explain units, expand the important ones, explain again.

    Level 0 explains ``units``. After level z, every unit *of depth z* whose normalised score
    ``|value| / sum(|values| at this level)`` (max over answer columns) strictly exceeds
    ``threshold[z]`` is replaced by ``expand(unit)`` (an empty list means it cannot be split).
    The players of level z + 1 are the sub-units of the expanded units **plus every other unit
    of level z as one whole player** (never split later). This flat choice keeps each level a
    plain Shapley game over at most (#kept + #sub-units) players, so efficiency holds per level;
    the reference code instead nests permutations (Owen values), which this does not reproduce.
    Stops after ``levels`` levels or when nothing was expanded.

    Parameters
    ----------
    explain_level : callable
        ``explain_level(players) -> Tensor (n_players,) or (n_players, A)``.
    expand : callable
        ``expand(unit) -> list of sub-units`` (e.g. a document's sentences).
    units : sequence
        Top-level units (e.g. documents).
    levels : int
        Number of levels, e.g. 3 for document -> sentence -> word.
    threshold : float or sequence of levels - 1 floats in [0, 1]

    Returns
    -------
    list of UnitValue
        Every player of every explained level, in level order; ``parent`` links form the tree.
    """
    thresholds = _thresholds(threshold, levels)
    entries: list[UnitValue[U]] = []
    current: list[tuple[U, int | None, bool]] = [(u, None, True) for u in units]
    for z in range(levels):
        if not current:
            break
        players = [u for u, _, _ in current]
        values = torch.as_tensor(explain_level(players))
        if values.ndim not in (1, 2) or values.shape[0] != len(players):
            msg = (f"The 'explain_level' function of hierarchical must return a tensor of shape "
                   f"(n,) or (n, A) for n = {len(players)} players. Got {fmt_value(values)} "
                   f"instead.")
            raise InvalidParameterError(msg, owner="hierarchical", parameter="explain_level",
                                        value=values)
        scores = _scores(values)
        nxt: list[tuple[U, int | None, bool]] = []
        for i, (unit, parent, fresh) in enumerate(current):
            split = fresh and z < levels - 1 and float(scores[i]) > thresholds[min(z, levels - 2)]
            children = list(expand(unit)) if split else []
            idx = len(entries)
            entries.append(UnitValue(z, unit, values[i], float(scores[i]), bool(children), parent))
            nxt.extend([(c, idx, True) for c in children] if children else [(unit, idx, False)])
        if not any(e.expanded for e in entries if e.level == z):
            break
        current = nxt
    return entries
