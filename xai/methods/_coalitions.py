"""Model-independent coalition games for TextGenSHAP-style Shapley values.

A *value function* maps a batch of coalitions to their worth::

    value(keep: bool Tensor (m, D)) -> Tensor (m,) or (m, A)

Row ``i`` of ``keep`` says which of the D players are present. A 2-D output holds one game per
column (for example one column per distinct generated answer). A value function may *append*
columns between calls (the answer game does when it sees a new answer): earlier rows are then
zero-padded, which is exact for indicator games because a row that produced another answer has
indicator 0 for the new one.

Functions
---------
exact_shapley        all 2^D coalitions, exact Shapley values.
permutation_shapley  permutation sampling with antithetic pairs, memoised coalitions.
answer_game          TextGenSHAP's game v_a(S) = 1[g(x_S) = a], one column per answer a.
shapley_shubik       exact or sampled Shapley values of the answer game (Shapley-Shubik index).
hierarchical         document -> sentence -> word refinement above a threshold.

References
----------
.. [1] Enouen et al., "TextGenSHAP: Scalable Post-Hoc Explanations in Text Generation with Long
       Documents", Findings of ACL 2024 (arXiv:2312.01279).
.. [2] Castro, Gomez, Tejada, "Polynomial calculation of the Shapley value based on sampling",
       Computers & Operations Research 36(5), 2009.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence

import numpy as np
import torch

from .._validation import Interval, check_param, fmt_value
from ..exceptions import InvalidParameterError
from ._budget import Cost, Moments, check_cost
from ._hierarchy import UnitValue, hierarchical
from ._permutations import Draws, chain_credits, check_pairs, prefix_masks

__all__ = [
    "AnswerGame",
    "GameResult",
    "UnitValue",
    "ValueFunction",
    "answer_game",
    "exact_shapley",
    "hierarchical",
    "permutation_shapley",
    "shapley_shubik",
]

ValueFunction = Callable[[torch.Tensor], torch.Tensor]

_POS_INT = [Interval(int, 1, None, closed="left")]
_NONNEG_INT = [Interval(int, 0, None, closed="left")]


@dataclasses.dataclass(frozen=True)
class GameResult:
    """Shapley values of a coalition game and how they were obtained.

    Attributes
    ----------
    values : Tensor (D,) or (D, A)
        Shapley value of each player (per game column).
    stderr : Tensor, same shape as ``values``
        Standard error over independent draws (antithetic pairs averaged first); zeros when exact,
        NaN when only one draw was made.
    empty_value, full_value : Tensor () or (A,)
        v(empty coalition) and v(all players); ``values.sum(0) == full_value - empty_value``.
    n_evaluations : int
        Distinct coalitions (value rows) evaluated.
    exact : bool
        True for full enumeration.
    answers : tuple of str
        Column names for the answer game (empty for other games).
    """

    values: torch.Tensor
    stderr: torch.Tensor
    empty_value: torch.Tensor
    full_value: torch.Tensor
    n_evaluations: int
    exact: bool
    answers: tuple[str, ...] = ()


def _evaluate(value: ValueFunction, keep: torch.Tensor, batch_size: int | None,
              owner: str) -> torch.Tensor:
    """Value rows of ``keep`` in chunks, columns zero-padded when the game grows; float output."""
    step = keep.shape[0] if batch_size is None else batch_size
    chunks: list[torch.Tensor] = []
    for start in range(0, keep.shape[0], max(step, 1)):
        rows = keep[start:start + step]
        out = torch.as_tensor(value(rows))
        if out.ndim not in (1, 2) or out.shape[0] != rows.shape[0]:
            msg = (f"The 'value' function passed to {owner} must return a tensor of shape (m,) or "
                   f"(m, A) for m = {rows.shape[0]} coalitions. Got {fmt_value(out)} instead.")
            raise InvalidParameterError(msg, owner=owner, parameter="value", value=out)
        chunks.append(out if out.is_floating_point() else out.to(torch.float64))
    if not chunks:
        return torch.zeros(0, dtype=torch.float64)
    if any(c.ndim == 2 for c in chunks):
        flat = [c.reshape(c.shape[0], -1) for c in chunks]
        width = max(c.shape[1] for c in flat)
        chunks = [torch.nn.functional.pad(c, (0, width - c.shape[1])) for c in flat]
    dtype = functools.reduce(torch.promote_types, [c.dtype for c in chunks])
    return torch.cat([c.to(dtype) for c in chunks])


def _all_coalitions(n_players: int, start: int = 0, stop: int | None = None) -> torch.Tensor:
    """(2^D, D) bool; row i keeps player d iff bit d of i is set (row 0 empty, last row full).
    ``start``/``stop`` build only rows ``start:stop`` of that enumeration."""
    idx = torch.arange(start, 2**n_players if stop is None else stop, dtype=torch.int64)
    return ((idx.unsqueeze(1) >> torch.arange(n_players)) & 1).bool()


def fits_exact(n_players: int, max_exact: int) -> bool:
    """Whether all ``2**n_players`` coalitions fit in ``max_exact`` (without computing the
    power, which is huge for long texts)."""
    return n_players < max_exact.bit_length()


def _check_exact(n_players: int, max_exact: int, owner: str) -> None:
    check_param(owner, "n_players", n_players, _NONNEG_INT)
    check_param(owner, "max_exact", max_exact, _NONNEG_INT)
    if not fits_exact(n_players, max_exact):
        msg = (f"The 'max_exact' parameter of {owner} must be at least 2**n_players = "
               f"{2**n_players} to enumerate every coalition of {n_players} players. Got "
               f"{max_exact} instead. Raise max_exact, or use permutation sampling "
               f"(n_permutations) or hierarchical explanations for many players.")
        raise InvalidParameterError(msg, owner=owner, parameter="max_exact", value=max_exact,
                                    constraint=f">= {2**n_players}")
    # every coalition is built and evaluated at once: refuse what cannot fit
    check_cost(Cost(owner, "max_exact", max_exact, 2**n_players, 16 + n_players, 2**n_players,
                    holds="coalitions", unit="coalitions", fix=f"below 2**{n_players} = {2**n_players}, so that "
                    "permutation sampling (n_permutations) is used."))


def exact_shapley(value: ValueFunction, n_players: int, *, max_exact: int = 1024,
                  batch_size: int | None = None) -> torch.Tensor:
    """Exact Shapley values by enumerating all 2^D coalitions.

    Parameters
    ----------
    value : callable
        ``value(keep (m, D) bool) -> (m,) or (m, A)``.
    n_players : int
        D.
    max_exact : int, default=1024
        Largest number of coalitions allowed; InvalidParameterError when 2^D exceeds it.
    batch_size : int or None, default=None
        Rows per value call; None evaluates all 2^D coalitions in one call.

    Returns
    -------
    Tensor (D,) or (D, A)
        phi_d = sum_S |S|!(D-|S|-1)!/D! (v(S + d) - v(S)).
    """
    return _exact(value, n_players, max_exact=max_exact, batch_size=batch_size,
                  owner="exact_shapley").values


def _exact(value: ValueFunction, n_players: int, *, max_exact: int, batch_size: int | None,
           owner: str) -> GameResult:
    _check_exact(n_players, max_exact, owner)
    if batch_size is not None:
        check_param(owner, "batch_size", batch_size, _POS_INT)
    v = _evaluate(value, _all_coalitions(n_players), batch_size, owner)
    return _exact_from_values(v, n_players)


def _exact_from_values(v: torch.Tensor, n_players: int) -> GameResult:
    """Exact Shapley values from ``v`` (2^D, ...): the value of every coalition, row i the
    coalition of :func:`_all_coalitions` (bit d of i set = player d kept)."""
    d = n_players
    keep = _all_coalitions(d)
    size = keep.sum(1)
    weight = torch.tensor([math.factorial(k) * math.factorial(d - k - 1) / math.factorial(d)
                           for k in range(d)], dtype=torch.float64).to(v.dtype)
    idx = torch.arange(2**d)
    phi = torch.zeros((d, *v.shape[1:]), dtype=v.dtype)
    for j in range(d):
        without = idx[~keep[:, j]]
        w = weight[size[without]].reshape(-1, *([1] * (v.ndim - 1)))
        phi[j] = (w * (v[without | (1 << j)] - v[without])).sum(0)
    return GameResult(phi, torch.zeros_like(phi), v[0], v[-1], int(keep.shape[0]), True)


def permutation_shapley(value: ValueFunction, n_players: int, *, n_permutations: int,
                        antithetic: bool = True, generator: torch.Generator,
                        batch_size: int = 256) -> GameResult:
    """Shapley values by permutation sampling (Castro et al. 2009), antithetic pairs optional.

    Every permutation's marginal contributions telescope to v(all) - v(empty), so efficiency holds
    exactly for any number of permutations. With ``antithetic=True`` each permutation is paired
    with its reverse, which makes the estimate exact for games with at most pairwise interactions.
    The empty and full coalitions are evaluated once; the proper prefixes are deduplicated
    (memoised: no coalition is evaluated twice) and evaluated in chunks of ``batch_size`` rows,
    so ``n_evaluations <= 2 + n_permutations * (D - 1)`` and ``<= 2^D``. Permutations are drawn
    and credited a chunk at a time (about ``batch_size`` prefix rows) and folded into running
    moments, so memory grows with the distinct coalitions seen, not with ``n_permutations``; a
    budget whose evaluations or memo cannot fit is refused up front.

    Parameters
    ----------
    value : callable
        ``value(keep (m, D) bool) -> (m,) or (m, A)``.
    n_players : int
    n_permutations : int
        Number of permutations (pairs count twice; must be even when antithetic).
    antithetic : bool, default=True
    generator : torch.Generator
        Source of all randomness.
    batch_size : int, default=256
        Maximum rows per value call.

    Returns
    -------
    GameResult
        ``values`` and ``stderr`` of shape (D,) or (D, A).
    """
    return _permutation(value, n_players, n_permutations=n_permutations, antithetic=antithetic,
                        generator=generator, batch_size=batch_size, owner="permutation_shapley")


def _permutation(value: ValueFunction, n_players: int, *, n_permutations: int, antithetic: bool,
                 generator: torch.Generator, batch_size: int, owner: str) -> GameResult:
    check_param(owner, "n_players", n_players, _NONNEG_INT)
    check_param(owner, "n_permutations", n_permutations, _POS_INT)
    check_param(owner, "batch_size", batch_size, _POS_INT)
    check_pairs(n_permutations, antithetic, owner)
    d = n_players
    if d == 0:  # no players: nothing to attribute, v(empty) still reported
        v0 = _evaluate(value, torch.zeros(1, 0, dtype=torch.bool), batch_size, owner)
        empty = v0.new_zeros((0, *v0.shape[1:]))
        return GameResult(empty, empty.clone(), v0[0], v0[0], 1, False)
    check_cost(_permutation_cost(d, n_permutations, batch_size, owner))
    memo = _Memo(value, batch_size, owner)
    ends = torch.stack([torch.zeros(d, dtype=torch.bool), torch.ones(d, dtype=torch.bool)])
    group = 2 if antithetic else 1
    per_chunk = max(group, batch_size // max(d - 1, 1) // group * group)
    moments = Moments()
    draws = Draws(d, n_permutations, antithetic, generator)
    for start in range(0, n_permutations, per_chunk):
        stop = min(start + per_chunk, n_permutations)
        perms = draws.perms(start, stop)
        draws.release(stop)
        prefixes = prefix_masks(perms)  # (P, D-1, D)
        middle, inverse = torch.unique(prefixes.reshape(-1, d), dim=0, return_inverse=True)
        v = memo(torch.cat([ends, middle]) if start == 0 else middle)
        v_mid = v[2:] if start == 0 else v
        v0, v1 = memo(ends)
        moments.add(chain_credits(perms, v0, v_mid[inverse].reshape(stop - start, d - 1,
                                                                     *v0.shape),
                                  v1, antithetic))
    v0, v1 = memo(ends)
    mean, stderr = moments.result(v0.dtype)
    return GameResult(mean, stderr, v0, v1, len(memo.rows), False)


def _permutation_cost(d: int, n_permutations: int, batch_size: int, owner: str) -> Cost:
    """Coalitions visited (2 + n_permutations * (D - 1), each evaluated at most once) and the
    memo of distinct ones (at most 2^D, about 200 bytes each)."""
    rows = 2 + n_permutations * (d - 1)
    distinct = min(rows, 2**d) if d < 63 else rows
    return Cost(owner, "n_permutations", n_permutations, rows, d, batch_size,
                held_bytes=distinct * (d + 200), holds="coalitions", unit="coalitions",
                held="memo of distinct coalitions",
                fix="the standard error shrinks as 1/sqrt(n_permutations).")


class _Memo:
    """Each coalition's value, evaluated once (``batch_size`` rows per call) and read back with
    the game's latest number of columns (earlier rows zero-padded)."""

    def __init__(self, value: ValueFunction, batch_size: int, owner: str) -> None:
        self.value, self.batch_size, self.owner = value, batch_size, owner
        self.rows: dict[bytes, torch.Tensor] = {}
        self.width: int | None = None  # columns of a 2-D game so far

    def __call__(self, keep: torch.Tensor) -> torch.Tensor:
        """Values of the rows of ``keep`` (m, D); rows not seen before are evaluated, in order."""
        keys = [r.tobytes() for r in np.packbits(keep.numpy(), axis=1)]
        new: list[int] = []
        for i, k in enumerate(keys):
            if k not in self.rows:
                self.rows[k] = torch.empty(0)  # placeholder: first row of this coalition
                new.append(i)
        if new:
            out = _evaluate(self.value, keep[new], self.batch_size, self.owner)
            if out.dim() == 2:
                self.width = max(self.width or 0, out.shape[1])
            self.rows.update(zip((keys[i] for i in new), out, strict=True))
        got = [self.rows[k] for k in keys]
        if self.width is not None:
            got = [torch.nn.functional.pad(r, (0, self.width - r.shape[-1])) for r in got]
        dtype = functools.reduce(torch.promote_types, [r.dtype for r in got])
        return torch.stack([r.to(dtype) for r in got])


class AnswerGame:
    """TextGenSHAP's answer game: ``v_a(S) = 1[g(x_S) = a]`` for every answer ``a`` seen so far.

    Calling the game with ``keep (m, D)`` generates the (normalised) output of each coalition and
    returns an (m, A) float64 one-hot matrix over ``answers`` (first-seen order; new answers are
    appended). Outputs are cached per coalition, so a coalition is generated at most once.

    Parameters
    ----------
    generate : callable
        ``generate(keep (m, D) bool) -> list[str]`` of length m, deterministic (greedy).
    normalize : callable or None, default=None
        Applied to each output before comparison (e.g. ``str.strip``); None compares the strings
        exactly as generated.
    """

    def __init__(self, generate: Callable[[torch.Tensor], Sequence[str]],
                 normalize: Callable[[str], str] | None = None) -> None:
        self.generate = generate
        self.normalize = normalize
        self.answers: list[str] = []
        self.outputs: dict[bytes, str] = {}  # coalition (packed bits) -> answer
        self.n_generations = 0

    def __call__(self, keep: torch.Tensor) -> torch.Tensor:
        keep = keep.bool()
        keys = [bytes(row.tolist()) for row in keep.to(torch.uint8)]
        todo = [i for i, k in enumerate(keys) if k not in self.outputs]
        todo = list({keys[i]: i for i in todo}.values())  # first row of each new coalition
        if todo:
            texts = list(self.generate(keep[todo]))
            if len(texts) != len(todo):
                msg = (f"The 'generate' function of answer_game must return one string per "
                       f"coalition: {len(todo)} expected. Got {len(texts)} instead.")
                raise InvalidParameterError(msg, owner="answer_game", parameter="generate",
                                            value=len(texts))
            self.n_generations += len(todo)
            for i, text in zip(todo, texts, strict=True):
                self.outputs[keys[i]] = self.normalize(text) if self.normalize else text
        for k in keys:
            if self.outputs[k] not in self.answers:
                self.answers.append(self.outputs[k])
        col = {a: j for j, a in enumerate(self.answers)}
        out = torch.zeros(len(keys), len(self.answers), dtype=torch.float64)
        out[torch.arange(len(keys)), torch.tensor([col[self.outputs[k]] for k in keys],
                                                  dtype=torch.int64)] = 1.0
        return out


def answer_game(generate: Callable[[torch.Tensor], Sequence[str]], *,
                normalize: Callable[[str], str] | None = None) -> tuple[list[str], AnswerGame]:
    """The answer game of TextGenSHAP: its live ``answers`` list and its value function.

    ``answers`` is the game's own list: it fills up (first-seen order) as coalitions are
    evaluated, and column j of every value output is the indicator of ``answers[j]``. Because
    exactly one answer is produced per coalition, the Shapley values summed over answers are 0
    for every player.
    """
    game = AnswerGame(generate, normalize)
    return game.answers, game


def shapley_shubik(generate: Callable[[torch.Tensor], Sequence[str]], n_players: int, *,
                   max_exact: int = 1024, n_permutations: int = 100, antithetic: bool = True,
                   generator: torch.Generator | None = None, batch_size: int = 256,
                   normalize: Callable[[str], str] | None = None) -> GameResult:
    """Shapley-Shubik index of each player for each generated answer.

    Exact enumeration when 2^D <= ``max_exact`` (set ``max_exact=0`` to force sampling), else
    permutation sampling with ``n_permutations`` and ``generator`` (required then). The empty
    coalition is generated (not a sentinel), so efficiency holds per answer:
    ``values[:, a].sum() == 1[g(all) = a] - 1[g(empty) = a]``.

    Returns
    -------
    GameResult
        ``values`` (D, A) with ``answers`` naming the columns.
    """
    answers, game = answer_game(generate, normalize=normalize)
    check_param("shapley_shubik", "n_players", n_players, _NONNEG_INT)
    if fits_exact(n_players, max_exact):
        res = _exact(game, n_players, max_exact=max_exact, batch_size=batch_size,
                     owner="shapley_shubik")
    else:
        if generator is None:
            msg = (f"The 'generator' parameter of shapley_shubik is required for permutation "
                   f"sampling ({n_players} players, 2**{n_players} > max_exact={max_exact}). "
                   f"Got None instead. Pass a torch.Generator.")
            raise InvalidParameterError(msg, owner="shapley_shubik", parameter="generator")
        res = permutation_shapley(game, n_players, n_permutations=n_permutations,
                                  antithetic=antithetic, generator=generator,
                                  batch_size=batch_size)
    return dataclasses.replace(res, answers=tuple(answers))
