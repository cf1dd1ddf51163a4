"""Reachable sets and responsiveness scores, by enumeration or sampling, without a solver.

For a person ``x`` and a feature ``j``, the single-feature reachable set ``R_j(x)`` holds the points
``x + a`` of feasible actions that change ``j`` directly (``own_j != 0``); the other features of
``j``'s partition move only as its constraints require. Following reachml's enumerating scorer,
for each value ``v`` of ``own_j``: if changing ``j`` alone (plus what linkages force) is feasible,
that one action is in ``R_j``; otherwise every feasible joint action of the partition with
``own_j = v`` is. ``resp_j(x)`` is the share of ``R_j(x)`` the model maps to the target, and 0 when
``R_j(x)`` is empty.

* **Enumeration** when the partition's features are all discrete and the product of their action
  grids has at most ``max_enumerate`` points: exact.
* **Sampling** otherwise (a float feature, or a product too large): ``n_samples`` draws of
  ``own_j`` (uniform over its non-zero grid, or over its action interval for a float), each
  completed by the 1-D action when feasible, else by a random feasible move of the partition's
  other features (rejection sampling; a value with no completion found is discarded and redrawn,
  as in reachml's sampling scorer). It estimates the same score when every value has one action
  (always the case for a feature no constraint ties), and weights values equally otherwise.

Fixed predictions: a person is *fixed* when no feasible joint action, on any features, reaches the
target. Partitions are independent, so the joint actions are the product of the partitions'
actions; it is enumerated when every partition is enumerable and the product has at most
``max_search`` points (a certificate), and searched otherwise: ``n_samples`` random joint actions
plus a greedy ascent that changes one partition at a time towards the target (no certificate:
``search`` says which).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from typing import Any

import numpy as np

from ._action_set import ActionSet
from ._constraints import ActionConstraint, DirectionalLinkage

__all__ = ["ReachResult", "responsiveness_scores"]

#: Completion tries per draw, and redraw rounds per feature, of the sampler.
_COMPLETION_ROUNDS = 64
#: Candidate rows scored per chunk of examples (bounds memory: rows x features x 8 bytes).
_CHUNK_ROWS = 200_000
#: Alternatives per sampled partition in the fixed-prediction search.
_SEARCH_OPTIONS = 32


@dataclasses.dataclass
class ReachResult:
    """Responsiveness of each feature for each person, with how it was obtained.

    Attributes
    ----------
    scores : ndarray (n, d)
        resp_j(x) in [0, 1]; 0 where R_j(x) is empty.
    n_actions : ndarray (n, d) of int
        |R_j(x)| when enumerated, the number of draws kept when sampled.
    enumerated : ndarray (n, d) of bool
        True where the score is exact.
    stderr : ndarray (n, d)
        0 where enumerated; sqrt(p (1 - p) / n) where sampled.
    at_target : ndarray (n,) of bool
        Already predicted as the target.
    fixed : ndarray (n,) of bool
        Not at the target and no feasible action found that reaches it.
    search : list of str
        Per person: "at target", "single feature" (a point of some R_j reaches the target),
        "exhaustive" (every joint action scored), "search" (random joint actions and a greedy
        ascent; a fixed flag from it is not a proof).
    n_rows : int
        Distinct candidate points scored.
    n_calls : int
        Model calls.
    """

    scores: np.ndarray
    n_actions: np.ndarray
    enumerated: np.ndarray
    stderr: np.ndarray
    at_target: np.ndarray
    fixed: np.ndarray
    search: list[str]
    n_rows: int = 0
    n_calls: int = 0


class _Partition:
    """One group of features that move together, with the constraints among them."""

    def __init__(self, actions: ActionSet, members: tuple[int, ...]) -> None:
        self.idx = np.array(members, dtype=np.int64)
        local = {int(g): i for i, g in enumerate(members)}
        self.elements = [actions[int(g)] for g in members]
        self.checks: list[tuple[ActionConstraint, np.ndarray]] = []
        self.links: list[tuple[int, int, float, bool]] = []
        for c in actions.constraints:
            pos = [local.get(actions.index(n)) for n in c.names]
            if pos[0] is None:
                continue
            loc = np.array(pos, dtype=np.int64)
            if isinstance(c, DirectionalLinkage):
                for t, r in zip(loc[1:], c.ratios, strict=True):
                    self.links.append((int(loc[0]), int(t), r, c.keep_bounds))
            else:
                self.checks.append((c, loc))
        self.lb = np.array([e.lb for e in self.elements])
        self.ub = np.array([e.ub for e in self.elements])
        self.discrete = np.array([e.discrete for e in self.elements])
        bounded = {t for _, t, _, keep in self.links if not keep}
        self.bounded = np.array([i not in bounded for i in range(len(members))])

    def __len__(self) -> int:
        return len(self.elements)

    def grids(self, xp: np.ndarray) -> list[np.ndarray | tuple[float, float]]:
        """Each member's own changes: an array of whole steps (0 included) for a discrete
        feature, an interval (low, high) for a float one; [0] when it is not actionable."""
        out: list[np.ndarray | tuple[float, float]] = []
        for el, xk in zip(self.elements, xp, strict=True):
            if not el.actionable:
                out.append(np.zeros(1))
                continue
            lo, hi = el.lb - xk, el.ub - xk
            if el.step_direction > 0:
                lo = max(lo, 0.0)
            elif el.step_direction < 0:
                hi = min(hi, 0.0)
            if el.step_lb is not None:
                lo = max(lo, el.step_lb)
            if el.step_ub is not None:
                hi = min(hi, el.step_ub)
            if el.discrete:
                out.append(np.arange(np.ceil(lo), np.floor(hi) + 1.0))
            else:
                out.append((float(lo), float(hi)))
        return out

    def after(self, xp: np.ndarray, own: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The partition's values after the own changes ``own`` (m, k), and which rows are
        feasible (linkages applied, bounds, whole values and constraints checked)."""
        change = own.copy()
        for s, t, r, _ in self.links:
            change[:, t] += r * own[:, s]
        after = xp[None, :] + change
        ok = np.all(~self.bounded | ((after >= self.lb - 1e-9) & (after <= self.ub + 1e-9)),
                    axis=1)
        ok &= np.all(~self.discrete | (np.abs(after - np.round(after)) < 1e-9), axis=1)
        before = np.broadcast_to(xp, after.shape)
        for c, loc in self.checks:
            ok &= c.holds(after[:, loc], before[:, loc])
        return after, ok


def _product(grids: list[np.ndarray]) -> np.ndarray:
    mesh = np.meshgrid(*grids, indexing="ij")
    return np.stack([m.reshape(-1) for m in mesh], axis=1)


def _single_feature_sets(part: _Partition, xp: np.ndarray, *, n_samples: int,
                         max_enumerate: int, rng: np.random.Generator,
                         ) -> tuple[dict[int, np.ndarray], dict[int, bool], np.ndarray]:
    """R_j for each member j (partition values after the action), whether it was enumerated,
    and the partition's feasible moves (for the fixed-prediction search)."""
    grids = part.grids(xp)
    sizes = [len(g) if isinstance(g, np.ndarray) else None for g in grids]
    enumerable = all(s is not None for s in sizes) and \
        int(np.prod([s for s in sizes if s is not None], dtype=np.float64)) <= max_enumerate
    sets: dict[int, np.ndarray] = {}
    exact: dict[int, bool] = {}
    if enumerable:
        own = _product([g for g in grids if isinstance(g, np.ndarray)])
        after, ok = part.after(xp, own)
        own, after = own[ok], after[ok]
        for j, el in enumerate(part.elements):
            exact[j] = True
            if not el.actionable:
                sets[j] = after[:0]
                continue
            mine = own[:, j] != 0
            alone = mine & (np.count_nonzero(own, axis=1) == 1)
            solo_values = np.unique(own[alone, j])
            keep = alone | (mine & ~np.isin(own[:, j], solo_values))
            sets[j] = after[keep]
        moves = after[np.any(own != 0, axis=1)]
        return sets, exact, moves
    for j, el in enumerate(part.elements):
        exact[j] = False
        sets[j] = (_sample_member(part, xp, grids, j, n_samples, rng) if el.actionable
                   else np.empty((0, len(part))))
    pool = [s for s in sets.values() if len(s)]
    moves = np.concatenate(pool) if pool else np.empty((0, len(part)))
    if len(moves) > _SEARCH_OPTIONS:
        moves = moves[rng.choice(len(moves), _SEARCH_OPTIONS, replace=False)]
    return sets, exact, moves


def _draw(grid: np.ndarray | tuple[float, float], m: int, rng: np.random.Generator,
          nonzero: bool) -> np.ndarray:
    if isinstance(grid, np.ndarray):
        g = grid[grid != 0] if nonzero else grid
        return g[rng.integers(0, len(g), m)] if len(g) else np.full(m, np.nan)
    lo, hi = grid
    if nonzero and lo == hi == 0.0:
        return np.full(m, np.nan)
    return rng.uniform(lo, hi, m)


def _sample_member(part: _Partition, xp: np.ndarray, grids: list[Any], j: int, n: int,
                   rng: np.random.Generator) -> np.ndarray:
    """``n`` draws of R_j by the sampling scheme of the module docstring (fewer when some
    values have no feasible completion after the allotted rounds)."""
    kept: list[np.ndarray] = []
    pending = n
    for _ in range(_COMPLETION_ROUNDS):
        if pending == 0:
            break
        own = np.zeros((pending, len(part)))
        own[:, j] = _draw(grids[j], pending, rng, nonzero=True)
        if np.isnan(own[:, j]).all():
            break  # no non-zero move of j at all
        after, ok = part.after(xp, own)
        kept.append(after[ok])
        rest = own[~ok]
        if len(rest) and len(part) > 1:
            for k in range(len(part)):
                if k != j:
                    rest[:, k] = _draw(grids[k], len(rest), rng, nonzero=False)
            after, ok2 = part.after(xp, rest)
            kept.append(after[ok2])
            pending = int((~ok2).sum())
        else:
            pending = len(rest)
    return np.concatenate(kept) if kept else np.empty((0, len(part)))


def responsiveness_scores(
    X: np.ndarray,
    actions: ActionSet,
    margin: Callable[[np.ndarray], np.ndarray],
    *,
    n_samples: int,
    max_enumerate: int,
    max_search: int,
    seed: int,
    find_fixed: bool = True,
    rows_per_call: int = 8192,
) -> ReachResult:
    """Responsiveness of every feature for every row of ``X`` (columns in ``actions``' order).

    Parameters
    ----------
    X : ndarray (n, d), float64
        Rows already checked against ``actions`` (`ActionSet.check_data`).
    margin : callable
        (m, d) float64 points -> (m,) margins of the target; called with at most
        ``rows_per_call`` rows. A point reaches the target when its margin is >= 0.
    n_samples, max_enumerate, max_search, seed : see the module docstring.
    find_fixed : bool
        Run the fixed-prediction search for people no single feature helps.
    """
    parts = [_Partition(actions, p) for p in actions.partitions()]
    uniq, inverse = np.unique(X, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    n, d = uniq.shape  # distinct rows: duplicates are computed once
    scores, n_actions = np.zeros((n, d)), np.zeros((n, d), dtype=np.int64)
    enumerated = np.ones((n, d), dtype=bool)
    scorer = _Scorer(margin, rows_per_call)
    base = scorer.margins(uniq) >= 0
    moves_of: list[list[np.ndarray]] = []
    found: list[bool] = []
    # single-feature sets, chunked so that the candidate rows of a chunk stay bounded
    pending: list[tuple[int, int, np.ndarray]] = []  # (unique row, feature, candidate points)
    pending_rows = 0

    def flush() -> None:
        nonlocal pending_rows
        if not pending:
            return
        points = np.concatenate([p for _, _, p in pending])
        reach = scorer.margins(points) >= 0
        at = 0
        for u, j, p in pending:
            hit = reach[at: at + len(p)]
            at += len(p)
            if len(p):
                scores[u, j] = hit.mean()
                found[u] = found[u] or bool(hit.any())
        pending.clear()
        pending_rows = 0

    for u, x in enumerate(uniq):
        rng = np.random.default_rng(seed)  # every row alike: results do not depend on order
        moves_of.append([])
        found.append(False)
        for part in parts:
            xp = x[part.idx]
            sets, exact, moves = _single_feature_sets(part, xp, n_samples=n_samples,
                                                      max_enumerate=max_enumerate, rng=rng)
            moves_of[u].append(moves)
            for j, after in sets.items():
                g = int(part.idx[j])
                enumerated[u, g] = exact[j]
                n_actions[u, g] = len(after)
                points = np.repeat(x[None, :], len(after), axis=0)
                points[:, part.idx] = after
                pending.append((u, g, points))
                pending_rows += len(after)
        if pending_rows >= _CHUNK_ROWS:
            flush()
    flush()
    stderr = np.where(enumerated, 0.0,
                      np.sqrt(scores * (1 - scores) / np.maximum(n_actions, 1)))
    search = ["at target" if base[u] else "single feature" if found[u] else "" for u in
              range(n)]
    fixed = np.zeros(n, dtype=bool)
    if find_fixed:
        for u in np.flatnonzero(~base & ~np.array(found, dtype=bool)).tolist():
            search[u], fixed[u] = _search_joint(uniq[u], parts, moves_of[u], scorer,
                                                n_samples=n_samples, max_search=max_search,
                                                seed=seed,
                                                all_exact=bool(enumerated[u].all()))
    else:
        for u in np.flatnonzero(~base & ~np.array(found, dtype=bool)).tolist():
            search[u] = "not searched"
    # expand the distinct rows back to the inputs (duplicates computed once)
    return ReachResult(scores=scores[inverse], n_actions=n_actions[inverse],
                       enumerated=enumerated[inverse], stderr=stderr[inverse],
                       at_target=base[inverse], fixed=fixed[inverse],
                       search=[search[u] for u in inverse], n_rows=scorer.n_rows,
                       n_calls=scorer.n_calls)


class _Scorer:
    """Margins of distinct points, ``rows_per_call`` at a time, each point scored once."""

    def __init__(self, score: Callable[[np.ndarray], np.ndarray], rows_per_call: int) -> None:
        self.score, self.rows_per_call = score, rows_per_call
        self.n_rows = self.n_calls = 0

    def margins(self, points: np.ndarray) -> np.ndarray:
        if len(points) == 0:
            return np.empty(0)
        uniq, inverse = np.unique(points, axis=0, return_inverse=True)
        out = np.empty(len(uniq))
        for start in range(0, len(uniq), self.rows_per_call):
            out[start: start + self.rows_per_call] = self.score(
                uniq[start: start + self.rows_per_call])
            self.n_calls += 1
        self.n_rows += len(uniq)
        return out[inverse.reshape(-1)]


def _search_joint(x: np.ndarray, parts: list[_Partition], moves: list[np.ndarray],
                  scorer: _Scorer, *, n_samples: int, max_search: int, seed: int,
                  all_exact: bool) -> tuple[str, bool]:
    """Whether some joint action reaches the target: ("exhaustive"|"search", fixed)."""
    options = [np.concatenate([x[p.idx][None, :], m]) for p, m in zip(parts, moves, strict=True)]
    movable = [k for k, o in enumerate(options) if len(o) > 1]
    if not movable:
        return ("exhaustive", True) if all_exact else ("search", True)
    total = float(np.prod([len(options[k]) for k in movable], dtype=np.float64))
    if all_exact and total <= max_search:
        picks = itertools.product(*[range(len(options[k])) for k in movable])
        points = np.repeat(x[None, :], int(total), axis=0)
        choice = np.array(list(picks), dtype=np.int64)
        for col, k in enumerate(movable):
            points[:, parts[k].idx] = options[k][choice[:, col]]
        return "exhaustive", not bool((scorer.margins(points) >= 0).any())
    rng = np.random.default_rng(seed)
    points = np.repeat(x[None, :], n_samples, axis=0)  # random joint actions
    for k in movable:
        points[:, parts[k].idx] = options[k][rng.integers(0, len(options[k]), n_samples)]
    if (scorer.margins(points) >= 0).any():
        return "search", False
    current = x.copy()  # greedy ascent: the best one-partition change at each step
    best = float(scorer.margins(current[None, :])[0])
    for _ in range(len(movable)):
        trial = []
        for k in movable:
            block = np.repeat(current[None, :], len(options[k]), axis=0)
            block[:, parts[k].idx] = options[k]
            trial.append(block)
        cand = np.concatenate(trial)
        m = scorer.margins(cand)
        top = int(np.argmax(m))
        if m[top] >= 0:
            return "search", False
        if m[top] <= best:
            break
        best, current = float(m[top]), cand[top]
    return "search", True
