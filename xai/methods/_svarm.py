"""Stratified SVARM: Shapley values without marginal contributions (issue 16).

Stratified SVARM (Kolpaczki, Bengs, Muschalik & Huellermeier, "Approximating the Shapley Value
without Marginal Contributions", AAAI 2024, arXiv:2302.00736) writes the Shapley value of a game
centred on v(empty) as

    phi_i = (1/D) sum_{l=0}^{D-1} (phi+_{i,l} - phi-_{i,l}),
    phi+_{i,l} = mean of v(A) over |A| = l + 1, i in A,    phi-_{i,l} = mean of v(A) over |A| = l,
    i not in A,

and estimates every stratum mean by the mean of the sampled coalitions that fall in it. One
coalition updates one stratum of every player, so no evaluation is spent on a difference.

The design (all rows drawn up front: SVARM's draws do not depend on the values):

1. exact part, 2D + 2 rows: the empty and the full coalition, the D singletons and the D
   coalitions of size D - 1. They fill the strata phi+_{.,0}, phi+_{.,D-2}, phi+_{.,D-1},
   phi-_{.,0}, phi-_{.,1}, phi-_{.,D-1} exactly.
2. warm-up, 2 sum_{s=2}^{D-2} ceil(D/s) rows: for each size s a random permutation is cut into
   blocks of s players (a remainder block is padded with random other players and updates only its
   own), each block evaluated (one sample of phi+_{i,s-1} for every i); then, with a fresh
   permutation, each block's complement (one sample of phi-_{i,D-s}).
3. draws, the rest of the budget: s ~ P~ on 2..D-2 (the paper's distribution, ``dist_type =
   "paper"``), A uniform of size s; A updates phi+_{i,s-1} (i in A) and phi-_{i,s} (i not in A).

Raw Stratified SVARM is not efficient. :class:`StratifiedDesign` therefore applies the additive
efficient normalisation phi_i += (Delta - sum_j phi_j) / D by default (``efficient=False`` gives
the paper's estimator). Below four players the exact part is every coalition and the estimator
is the exact Shapley value.

Standard errors are analytic, from the stratified sample variances: strata filled by the exact part
contribute 0, a stratum with c samples contributes s^2 / c with s^2 its sample variance, and a
stratum with one sample borrows the pooled variance of the strata of its size and sign (all
players). The efficient normalisation is phi - mean(phi) + Delta / D; its variance is computed from
the same per-stratum terms, as if the strata of different players were independent.
"""

from __future__ import annotations

import math

import torch

from ..exceptions import InvalidParameterError
from ._coalitions import GameResult, ValueFunction, _evaluate
from ._regression import _columns, _exact, _random_subsets

__all__ = ["StratifiedDesign", "size_distribution", "stratified_least_rows", "stratified_shapley"]

_F = torch.float64


def size_distribution(d: int) -> torch.Tensor:
    """The paper's coalition-size distribution P~ over sizes 0..D (mass on 2..D-2 only):
    D even, 2 <= s < D/2: P~(s) = P~(D-s) = (D ln D - 1) / (2 s D ln D (H_{D/2-1} - 1)),
    P~(D/2) = 1 / (D ln D); D odd, 2 <= s <= (D-1)/2: P~(s) = P~(D-s) = 1 / (2 s (H_{(D-1)/2} - 1)).
    For D = 4 the formula leaves mass 1 / (4 ln 4) on s = 2 only; normalised, s = 2 always."""
    p = torch.zeros(d + 1, dtype=_F)
    if d < 4:
        return p
    if d % 2 == 0:
        nl = d * math.log(d)
        h = sum(1.0 / k for k in range(1, d // 2))
        for s in range(2, d // 2):
            p[s] = p[d - s] = (nl - 1) / (2 * s * nl * (h - 1))
        p[d // 2] = 1 / nl
    else:
        h = sum(1.0 / k for k in range(1, (d - 1) // 2 + 1))
        for s in range(2, (d - 1) // 2 + 1):
            p[s] = p[d - s] = 1 / (2 * s * (h - 1))
    return p / p.sum()  # sums to 1 already, except D = 4 (all mass on s = 2)


def _n_exact(d: int) -> int:
    """Rows of the exact part: empty, full, singletons (D >= 2), sets of size D-1 (D >= 3)."""
    return 2 + (d if d >= 2 else 0) + (d if d >= 3 else 0)


def _n_warmup(d: int) -> int:
    return 2 * sum(-(-d // s) for s in range(2, d - 1))


def stratified_least_rows(d: int) -> int:
    """The fewest value rows of a Stratified SVARM design on ``d`` players: the exact part, the
    warm-up and one draw (D >= 4); every coalition (2^D rows) below four players."""
    if d < 4:
        return _n_exact(d)  # = 2^D: the exact part is every coalition
    return _n_exact(d) + _n_warmup(d) + 1


def _check_budget(budget: int, d: int, owner: str) -> None:
    least = stratified_least_rows(d)
    if budget >= least:
        return
    if d < 4:
        why = (f"below 4 players Stratified SVARM has no sampled strata and evaluates every "
               f"coalition; raise 'budget' to 2**{d} = {least} for exact enumeration")
    else:
        why = (f"the empty and full coalitions and the {2 * d} coalitions of sizes 1 and {d - 1}, "
               f"a warm-up of {_n_warmup(d)} coalitions that gives every sampled stratum one "
               f"sample, and at least one draw")
    msg = (f"The 'budget' parameter of {owner} must be at least {least} value rows for {d} "
           f"players with the stratified estimator ({why}). Got {budget} instead.")
    raise InvalidParameterError(msg, owner=owner, parameter="budget", value=budget,
                                constraint=f">= {least}")


def _exact_part(d: int) -> torch.Tensor:
    eye = torch.eye(d, dtype=torch.bool)
    parts = [torch.zeros(1, d, dtype=torch.bool), torch.ones(1, d, dtype=torch.bool)]
    if d >= 2:
        parts.append(eye)
    if d >= 3:
        parts.append(~eye)
    return torch.cat(parts)


def _blocks(d: int, s: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One warm-up pass for size s: a random permutation cut into ceil(D/s) blocks of s players
    (the last padded with random players from the other blocks). Returns (coalitions, own players)
    (ceil(D/s), D) bool; a block updates the strata of its own players only."""
    perm = torch.randperm(d, generator=gen)
    n_blocks = -(-d // s)
    own = torch.zeros(n_blocks, d, dtype=torch.bool)
    own[torch.arange(d) // s, perm] = True
    z = own.clone()
    rest = d % s
    if rest:
        others = perm[:d - rest]
        fill = others[torch.randperm(d - rest, generator=gen)[:s - rest]]
        z[-1, fill] = True
    return z, own


class StratifiedDesign:
    """Stratified SVARM's rows and estimator (Kolpaczki et al., AAAI 2024).

    ``rows`` (R, D) bool: the empty and the full coalition, the D singletons and the D sets of
    size D - 1, the warm-up (``n_fixed`` rows in all: 2D + 2 + 2 sum_{s=2}^{D-2} ceil(D/s)), then
    ``budget - n_fixed`` draws, so R = budget for D >= 4 (R = 2^D <= budget below four players).
    Draws are with replacement: a repeated coalition is a second sample and is evaluated again.
    ``plus`` and ``minus`` (R, D) bool say which strata each row updates (phi+_{i,|A|-1} and
    phi-_{i,|A|}). ``solve(scores (R,) or (R, A))`` returns (values (D, A), stderr (D, A)),
    float64.

    Parameters
    ----------
    d : int
        Players.
    budget : int
        Value rows, empty and full coalition included; at least :func:`stratified_least_rows`.
    generator : torch.Generator
        Every random choice (permutations of the warm-up, sizes and subsets of the draws).
    efficient : bool, default=True
        Add (Delta - sum phi) / D to every value so that they sum to v(N) - v(empty) exactly;
        False gives the paper's (inefficient) estimator.
    owner : str
        Name in error messages.
    """

    def __init__(self, d: int, budget: int, generator: torch.Generator, *,
                 efficient: bool = True, owner: str = "shapley_sampling") -> None:
        _check_budget(budget, d, owner)
        self.d, self.budget, self.efficient, self.owner = d, budget, efficient, owner
        exact = _exact_part(d)
        plus_parts, minus_parts, rows_parts = [exact], [~exact], [exact]
        for positive in (True, False):
            for s in range(2, d - 1):
                z, own = _blocks(d, s, generator)
                none = torch.zeros_like(own)
                rows_parts.append(z if positive else ~z)
                plus_parts.append(own if positive else none)
                minus_parts.append(none if positive else own)
        self.n_fixed = sum(int(r.shape[0]) for r in rows_parts)
        m = budget - self.n_fixed if d >= 4 else 0
        if m > 0:
            sizes = torch.multinomial(size_distribution(d), m, replacement=True,
                                      generator=generator)
            z = _random_subsets(sizes, d, generator)
            rows_parts.append(z)
            plus_parts.append(z)
            minus_parts.append(~z)
        self.n_draws = max(m, 0)
        self.rows = torch.cat(rows_parts)
        self.plus = torch.cat(plus_parts)  # (R, D): the row updates phi+_{i, |A| - 1}
        self.minus = torch.cat(minus_parts)  # (R, D): the row updates phi-_{i, |A|}
        size = self.rows.sum(1)
        # flat stratum index i * D + l: plus strata in [0, D^2), minus strata in [D^2, 2 D^2)
        rp, ip = self.plus.nonzero(as_tuple=True)
        rm, im = self.minus.nonzero(as_tuple=True)
        self._row = torch.cat([rp, rm])
        self._stratum = torch.cat([ip * d + size[rp] - 1, d * d + im * d + size[rm]])
        n_strata = 2 * d * d
        self._count = torch.bincount(self._stratum, minlength=n_strata).to(_F)
        layer = torch.arange(d).repeat(d)  # l of stratum i * D + l
        # sampled strata: plus l = 1..D-3 (sizes 2..D-2), minus l = 2..D-2
        self._sampled = torch.cat([(layer >= 1) & (layer <= d - 3), (layer >= 2) & (layer <= d - 2)])
        # pooling group of a stratum: (sign, l)
        self._group = torch.cat([layer, d + layer])

    def solve(self, scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Values and standard errors (D, A) from the scores of ``rows``, in row order."""
        d = self.d
        v = _columns(scores)
        a = v.shape[1]
        if d == 0:
            return torch.zeros(0, a, dtype=_F), torch.zeros(0, a, dtype=_F)
        y = v - v[0]  # centred on the empty coalition
        n_strata = 2 * d * d
        count = self._count.unsqueeze(1)
        sample = y.index_select(0, self._row)  # one entry per (row, updated stratum)
        sums = torch.zeros(n_strata, a, dtype=_F).index_add_(0, self._stratum, sample)
        means = sums / count.clamp(min=1)
        resid = sample - means.index_select(0, self._stratum)
        ss = torch.zeros(n_strata, a, dtype=_F).index_add_(0, self._stratum, resid**2)
        plus, minus = means[:d * d].reshape(d, d, a), means[d * d:].reshape(d, d, a)
        phi = (plus - minus).sum(1) / d
        var = self._stratum_variance(ss, count) / count.clamp(min=1)  # of each stratum mean
        var_phi = (var[:d * d].reshape(d, d, a) + var[d * d:].reshape(d, d, a)).sum(1) / d**2
        if self.efficient:
            delta = y[1]
            phi = phi + (delta - phi.sum(0, keepdim=True)) / d
            # phi_i - mean_j phi_j, strata of different players taken as independent
            var_phi = (1 - 2 / d) * var_phi + var_phi.sum(0, keepdim=True) / d**2
        return phi, var_phi.clamp(min=0).sqrt()

    def _stratum_variance(self, ss: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
        """Sample variance of v(A) in each sampled stratum (0 for the exact ones); a stratum with
        one sample takes the pooled variance of its (sign, l) group, or of every sampled stratum
        when no stratum of the group has two samples."""
        dof = (count - 1).clamp(min=0).expand_as(ss)
        n_groups = 2 * self.d
        g_ss = torch.zeros(n_groups, ss.shape[1], dtype=_F).index_add_(0, self._group, ss)
        g_dof = torch.zeros(n_groups, ss.shape[1], dtype=_F).index_add_(0, self._group, dof)
        sampled = self._sampled.unsqueeze(1)
        all_dof = (dof * sampled).sum(0, keepdim=True)
        overall = (ss * sampled).sum(0, keepdim=True) / all_dof.clamp(min=1)
        overall = torch.where(all_dof > 0, overall, torch.full_like(overall, float("nan")))
        pooled = torch.where(g_dof > 0, g_ss / g_dof.clamp(min=1), overall).index_select(0, self._group)
        own = torch.where(dof > 0, ss / dof.clamp(min=1), pooled)
        return torch.where(sampled, own, torch.zeros_like(own))


def stratified_shapley(value: ValueFunction, n_players: int, *, budget: int,
                       generator: torch.Generator, batch_size: int | None = None,
                       efficient: bool = True, owner: str = "shapley_sampling") -> GameResult:
    """Stratified SVARM with ``budget`` value rows (all of them used); exact enumeration when
    2^D <= budget. ``efficient=False`` returns the paper's estimator, whose values need not sum to
    v(N) - v(empty)."""
    if n_players < 63 and 2**n_players <= budget:
        return _exact(value, n_players, batch_size, owner)
    design = StratifiedDesign(n_players, budget, generator, efficient=efficient, owner=owner)
    raw = _evaluate(value, design.rows, batch_size, owner)
    phi, stderr = design.solve(raw)
    v = _columns(raw)
    if raw.ndim == 1:  # a one-column game gets (D,) values, as exact_shapley gives
        phi, stderr, v = phi[:, 0], stderr[:, 0], v[:, 0]
    return GameResult(phi, stderr, v[0], v[1], int(design.rows.shape[0]), False)
