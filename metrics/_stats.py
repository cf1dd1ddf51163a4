"""Statistics of the explanation audit: bootstrap intervals, permutation tests, gap summaries.

Exact recipes of the audit specification (Part C.3), a toolkit design checked by simulation:

* The unit is the example (one score per example and output). NaN scores are dropped (and
  counted with :func:`drop_nan`); a group with fewer than 2 scores gives NaN.
* Per-group interval: percentile bootstrap. B index vectors of size n drawn with replacement,
  mean of each, ``np.quantile(means, [alpha/2, 1 - alpha/2])`` (linear interpolation).
* Gap interval (stratified): every bootstrap replicate resamples each group independently with
  its own size and recomputes the statistic (difference of means, max gap, mean gap).
* Permutation test of a difference of means: two-sided, T = |m_g - m_ref|, pooled scores
  relabelled with group sizes fixed; every split enumerated when C(n_g + n_ref, n_g) <= P
  (p = #{T* >= T - tau} / C), else P random relabellings (p = (1 + #{T* >= T - tau}) / (P + 1)),
  tau = 1e-12 * max(1, T).
* Multiplicity: Holm-Bonferroni over all tests of one report (:func:`holm`).
* Randomness only from a passed ``numpy.random.Generator``; one per table row,
  :func:`row_rng` = ``np.random.default_rng([random_state, row_index])``; bootstrap draws
  before permutation draws.

Gap summaries follow Balagopalan et al., "The Road to Explainability is Paved with Bias:
Measuring the Fairness of Explanations" (FAccT 2022): the max gap Q_all - min_g Q_g (Q_all
pooled over all examples) and the mean over group pairs of |Q_g - Q_h|; Mhasawade et al.
(FAccT 2024) report the same two.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from xai.exceptions import InvalidParameterError
from xai.extend import fmt_value

__all__ = [
    "Estimate",
    "bootstrap_ci",
    "bootstrap_means",
    "drop_nan",
    "gap_ci",
    "holm",
    "max_gap",
    "mean_gap",
    "permutation_test",
    "row_rng",
    "summary_gap_ci",
]

#: Most random draws held in memory at once (bootstrap indices, permuted rows); larger jobs are
#: drawn in consecutive chunks, which gives the same numbers as one draw.
_CHUNK = 4_000_000


class Estimate(NamedTuple):
    """A point estimate with its interval (unpacks as ``value, low, high``)."""

    value: float
    low: float
    high: float


_NAN = Estimate(math.nan, math.nan, math.nan)


def row_rng(random_state: int, row_index: int) -> np.random.Generator:
    """The generator of one table row: ``np.random.default_rng([random_state, row_index])``."""
    for name, value in (("random_state", random_state), ("row_index", row_index)):
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 0:
            msg = (f"The {name!r} parameter of row_rng must be a non-negative int. Got "
                   f"{fmt_value(value)} instead.")
            raise InvalidParameterError(msg, owner="row_rng", parameter=name, value=value)
    return np.random.default_rng([int(random_state), int(row_index)])


def drop_nan(x: Any) -> tuple[np.ndarray, int]:
    """The finite scores of ``x`` as float64, and how many NaN were dropped."""
    arr = np.asarray(x, dtype=np.float64).ravel()
    nan = np.isnan(arr)
    return arr[~nan], int(nan.sum())


def _check(owner: str, n_bootstrap: Any = 1, confidence: Any = 0.5,
           rng: Any = None, *, need_rng: bool = True) -> None:
    if not isinstance(n_bootstrap, numbers.Integral) or isinstance(n_bootstrap, bool) \
            or n_bootstrap < 1:
        msg = (f"The 'n_bootstrap' parameter of {owner} must be an int in the range [1, inf). "
               f"Got {fmt_value(n_bootstrap)} instead.")
        raise InvalidParameterError(msg, owner=owner, parameter="n_bootstrap", value=n_bootstrap)
    if not isinstance(confidence, numbers.Real) or isinstance(confidence, bool) \
            or not 0.0 < float(confidence) < 1.0:
        msg = (f"The 'confidence' parameter of {owner} must be a float in the range (0, 1). "
               f"Got {fmt_value(confidence)} instead.")
        raise InvalidParameterError(msg, owner=owner, parameter="confidence", value=confidence)
    if need_rng and not isinstance(rng, np.random.Generator):
        msg = (f"The 'rng' parameter of {owner} must be a numpy.random.Generator (e.g. "
               f"row_rng(random_state, row_index)). Got {fmt_value(rng)} instead.")
        raise InvalidParameterError(msg, owner=owner, parameter="rng", value=rng)


def bootstrap_means(x: np.ndarray, n_bootstrap: int, rng: np.random.Generator) -> np.ndarray:
    """B means of resamples of ``x`` (finite scores), drawn as ``rng.integers(0, n, (B, n))``."""
    n = x.size
    out = np.empty(n_bootstrap)
    step = max(1, _CHUNK // max(n, 1))
    for s in range(0, n_bootstrap, step):
        b = min(step, n_bootstrap - s)
        out[s:s + b] = x[rng.integers(0, n, size=(b, n))].mean(1)
    return out


def _interval(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = 1.0 - float(confidence)
    lo, hi = np.quantile(samples, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def bootstrap_ci(x: Any, *, n_bootstrap: int = 9999, confidence: float = 0.95,
                 rng: np.random.Generator) -> Estimate:
    """Mean of ``x`` with its percentile bootstrap interval (NaN scores dropped).

    NaN for fewer than 2 scores; ``[c, c]`` exactly for a constant group (the interval is
    defined for degenerate groups, e.g. every faithfulness score 1).
    """
    _check("bootstrap_ci", n_bootstrap, confidence, rng)
    v, _ = drop_nan(x)
    if v.size < 2:
        return _NAN
    if np.all(v == v[0]):
        c = float(v[0])
        return Estimate(c, c, c)
    lo, hi = _interval(bootstrap_means(v, n_bootstrap, rng), confidence)
    return Estimate(float(v.mean()), lo, hi)


def gap_ci(x_g: Any, x_ref: Any, *, n_bootstrap: int = 9999, confidence: float = 0.95,
           rng: np.random.Generator) -> Estimate:
    """Gap m_g - m_ref with a stratified percentile bootstrap interval.

    Each replicate resamples the reference group and then group g, each with its own size.
    NaN when either group has fewer than 2 scores.
    """
    _check("gap_ci", n_bootstrap, confidence, rng)
    (g, _), (ref, _) = drop_nan(x_g), drop_nan(x_ref)
    if g.size < 2 or ref.size < 2:
        return _NAN
    m_ref = bootstrap_means(ref, n_bootstrap, rng)
    m_g = bootstrap_means(g, n_bootstrap, rng)
    lo, hi = _interval(m_g - m_ref, confidence)
    return Estimate(float(g.mean() - ref.mean()), lo, hi)


def permutation_test(x_g: Any, x_ref: Any, *, n_permutations: int = 9999,
                     rng: np.random.Generator) -> float:
    """Two-sided permutation p-value of the difference of means of two groups.

    Exact (every split enumerated) when C(n_g + n_ref, n_g) <= ``n_permutations``; else
    ``(1 + #{T* >= T - tau}) / (P + 1)`` over P random relabellings with group sizes fixed.
    NaN when either group has fewer than 2 scores (NaN scores are dropped first).
    """
    owner = "permutation_test"
    if not isinstance(n_permutations, numbers.Integral) or isinstance(n_permutations, bool) \
            or n_permutations < 1:
        msg = (f"The 'n_permutations' parameter of {owner} must be an int in the range [1, inf)."
               f" Got {fmt_value(n_permutations)} instead.")
        raise InvalidParameterError(msg, owner=owner, parameter="n_permutations",
                                    value=n_permutations)
    _check(owner, rng=rng)
    (g, _), (ref, _) = drop_nan(x_g), drop_nan(x_ref)
    if g.size < 2 or ref.size < 2:
        return math.nan
    pool = np.concatenate([ref, g])
    n_ref, n = ref.size, pool.size
    total = pool.sum()
    t_obs = abs(g.sum() / g.size - ref.sum() / n_ref)
    tol = 1e-12 * max(1.0, t_obs)
    if math.comb(n, n_ref) <= n_permutations:
        idx = np.array(list(itertools.combinations(range(n), n_ref)), dtype=np.int64)
        s_ref = pool[idx].sum(1)
        t = np.abs((total - s_ref) / (n - n_ref) - s_ref / n_ref)
        return float(np.sum(t >= t_obs - tol) / idx.shape[0])
    hits = 0
    step = max(1, _CHUNK // n)
    for s in range(0, n_permutations, step):
        b = min(step, n_permutations - s)
        perm = rng.permuted(np.tile(pool, (b, 1)), axis=1)
        t = np.abs(perm[:, n_ref:].mean(1) - perm[:, :n_ref].mean(1))
        hits += int(np.sum(t >= t_obs - tol))
    return (1 + hits) / (n_permutations + 1)


def holm(p_values: Any) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (step-down), in the input order; NaN stays NaN and
    does not count as a test."""
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    flat, res = p.ravel(), out.ravel()
    keep = np.flatnonzero(~np.isnan(flat))
    m = keep.size
    if m:
        order = keep[np.argsort(flat[keep], kind="stable")]
        adj = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * flat[order]))
        res[order] = adj
    return res.reshape(p.shape)


def max_gap(means: Any, counts: Any, *, higher_is_better: bool = True) -> float:
    """Balagopalan et al.'s max gap: Q_all - min_g Q_g (higher is better), else max_g Q_g - Q_all.

    Q_all is pooled over all examples: the mean of the group means weighted by their counts.
    NaN with fewer than 2 groups.
    """
    m, c = np.asarray(means, dtype=np.float64), np.asarray(counts, dtype=np.float64)
    if m.size < 2:
        return math.nan
    q_all = float((m * c).sum() / c.sum())
    return q_all - float(m.min()) if higher_is_better else float(m.max()) - q_all


def mean_gap(means: Any) -> float:
    """Mean over group pairs g < h of |Q_g - Q_h| (NaN with fewer than 2 groups)."""
    m = np.asarray(means, dtype=np.float64)
    if m.size < 2:
        return math.nan
    i, j = np.triu_indices(m.size, k=1)
    return float(np.abs(m[i] - m[j]).mean())


def summary_gap_ci(groups: Sequence[Any], *, statistic: str = "max_gap",
                   higher_is_better: bool = True, n_bootstrap: int = 9999,
                   confidence: float = 0.95, rng: np.random.Generator) -> Estimate:
    """Max gap or mean gap over groups with a stratified percentile bootstrap interval.

    Every replicate resamples each group (in the given order) with its own size; Q_all is the
    pooled mean of the resampled examples. NaN unless at least 2 groups have 2 or more scores
    (smaller groups are left out).
    """
    owner = "summary_gap_ci"
    _check(owner, n_bootstrap, confidence, rng)
    funcs: dict[str, Callable[[np.ndarray, np.ndarray], Any]] = {
        "max_gap": lambda m, c: _max_gap_rows(m, c, higher_is_better),
        "mean_gap": lambda m, c: _mean_gap_rows(m),
    }
    if statistic not in funcs:
        msg = (f"The 'statistic' parameter of {owner} must be a str among {{'max_gap', "
               f"'mean_gap'}}. Got {fmt_value(statistic)} instead.")
        raise InvalidParameterError(msg, owner=owner, parameter="statistic", value=statistic)
    kept = [v for v in (drop_nan(x)[0] for x in groups) if v.size >= 2]
    if len(kept) < 2:
        return _NAN
    counts = np.array([v.size for v in kept], dtype=np.float64)
    point = funcs[statistic](np.array([[v.mean() for v in kept]]), counts)[0]
    boot = np.stack([bootstrap_means(v, n_bootstrap, rng) for v in kept], axis=1)
    lo, hi = _interval(funcs[statistic](boot, counts), confidence)
    return Estimate(float(point), lo, hi)


def _max_gap_rows(m: np.ndarray, c: np.ndarray, higher_is_better: bool) -> np.ndarray:
    q_all = (m * c).sum(1) / c.sum()
    out: np.ndarray = q_all - m.min(1) if higher_is_better else m.max(1) - q_all
    return out


def _mean_gap_rows(m: np.ndarray) -> np.ndarray:
    i, j = np.triu_indices(m.shape[1], k=1)
    out: np.ndarray = np.abs(m[:, i] - m[:, j]).mean(1)
    return out
