"""Agreement between two explanations of the same inputs (the "disagreement problem").

Six measures of Krishna et al., "The Disagreement Problem in Explainable Machine Learning: A
Practitioner's Perspective" (arXiv 2202.01602, TMLR 2024), as coded in OpenXAI
(``openxai/metrics.py``), plus Kendall's tau-b, the agreement measure of Neely, Schouten,
Bleeker and Lucic, "A Song of (Dis)agreement: Evaluating the Evaluation of Explainable
Artificial Intelligence in Natural Language Processing" (HHAI 2022):

=================  ==========================================================================
``feature``        FA@k: |top_k(a) & top_k(b)| / k
``rank``           RA@k: positions p <= k holding the same feature in both top-k lists, / k
``sign``           SA@k: features in both top-k sets with equal signs, / k
``signed_rank``    SRA@k: positions p <= k with the same feature and equal signs, / k
``rank_correlation``  RC(F): Spearman's rho (average ranks) of |a| and |b| over the features F
``pairwise_rank``  PRA(F): share of pairs i < j in F whose relation of |a| (>, =, <) is the
                   relation of |b| (three-way: a tie agrees only with a tie)
``kendall``        Kendall's tau-b (scipy's ``kendalltau``) of |a| and |b| over F
=================  ==========================================================================

Only ``sign`` and ``signed_rank`` read signs (numpy's ``sign``: 0 matches only 0); every ranking
uses magnitudes. top_k(a) is the first k features after a stable sort on (-|a_j|, j): larger
magnitude first, ties to the lower index, never at random. The top-k measures divide by k, not
by the overlap. k is an int, or a fraction of the L valid features (k = ceil(k * L), OpenXAI's
rounding), capped at L. F ("features of interest", Krishna et al.) defaults to every valid
feature; it restricts the three whole-ranking measures and is re-ranked within F.

Undefined values are NaN, never 0: every measure for an example without valid features; RC,
PRA and tau-b for fewer than 2 features of interest; RC and tau-b when |a| or |b| is constant
over F (with an :class:`~xai.exceptions.XAIWarning`). Higher is better for every measure; all
are 1 for an explanation against itself, and FA = RA = 1, SA = SRA = 0 against its negation.

Cost: no model calls; O(L log^2 L) per example and output, vectorised over examples (the pair
measures count discordant pairs by a merge sort instead of enumerating the L(L-1)/2 pairs).
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

import xai
from xai.exceptions import (
    InvalidExplanationError,
    InvalidInputError,
    InvalidParameterError,
    XAIWarning,
)
from xai.extend import fmt_value

from ._compare import _input_difference

__all__ = [
    "MEASURES",
    "agreement",
    "agreement_scores",
    "effective_k",
    "topk_ties",
]

#: Names of the agreement measures, in the order of the module docstring.
MEASURES: tuple[str, ...] = (
    "feature", "rank", "sign", "signed_rank", "rank_correlation", "pairwise_rank", "kendall",
)
_TOPK = frozenset({"feature", "rank", "sign", "signed_rank"})


# -- parameters ------------------------------------------------------------------------------
def _check_k(k: Any, owner: str) -> None:
    ok_int = isinstance(k, numbers.Integral) and not isinstance(k, bool) and int(k) >= 1
    ok_frac = isinstance(k, numbers.Real) and not isinstance(k, bool | numbers.Integral) \
        and not math.isnan(float(k)) and 0.0 < float(k) <= 1.0
    if not (ok_int or ok_frac):
        msg = (f"The 'k' parameter of {owner} must be an int >= 1 (a number of features) or a "
               f"float in the range (0, 1] (a fraction of each example's features). Got "
               f"{fmt_value(k)} instead.")
        raise InvalidParameterError(msg, owner=owner, parameter="k", value=k,
                                    constraint="an int >= 1 or a float in (0, 1]")


def _check_measures(measures: Any, owner: str) -> tuple[str, ...]:
    allowed = ", ".join(repr(m) for m in MEASURES)
    names = (measures,) if isinstance(measures, str) else measures
    try:
        names = tuple(names)
    except TypeError:
        names = (measures,)
    bad = [m for m in names if not isinstance(m, str) or m not in MEASURES]
    if bad or not names or len(set(names)) != len(names):
        why = f"unknown measure(s) {', '.join(map(repr, bad))}" if bad else \
            "an empty list" if not names else "a repeated measure"
        msg = (f"The 'measures' parameter of {owner} must be a non-empty list of distinct names "
               f"among {{{allowed}}}. Got {fmt_value(measures)} instead ({why}).")
        raise InvalidParameterError(msg, owner=owner, parameter="measures", value=measures,
                                    constraint=f"names among {{{allowed}}}")
    return names


def _check_measure(measure: Any, owner: str) -> str:
    if not isinstance(measure, str) or measure not in MEASURES:
        allowed = ", ".join(repr(m) for m in MEASURES)
        msg = (f"The 'measure' parameter of {owner} must be a str among {{{allowed}}}. Got "
               f"{fmt_value(measure)} instead.")
        raise InvalidParameterError(msg, owner=owner, parameter="measure", value=measure,
                                    constraint=f"a str among {{{allowed}}}")
    return measure


def _as_rows(x: Any, name: str, owner: str) -> np.ndarray:
    arr = x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) \
        else np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        msg = (f"The {name!r} argument of {owner} must have shape (n, L): one row of "
               f"attributions per example and output. Got shape {arr.shape}.")
        raise InvalidInputError(msg, parameter=name, value=x)
    return arr


def _bool_rows(x: Any, shape: tuple[int, int], name: str, owner: str,
               what: str) -> np.ndarray:
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if arr.dtype != np.bool_ or arr.shape not in (shape, shape[1:]):
        msg = (f"The {name!r} parameter of {owner} must be a bool array of shape {shape} or "
               f"({shape[1]},) ({what}). Got {fmt_value(x)} of dtype {arr.dtype} instead.")
        raise InvalidParameterError(msg, owner=owner, parameter=name, value=x)
    return np.broadcast_to(arr, shape)


def _interest(features_of_interest: Any, shape: tuple[int, int], owner: str) -> np.ndarray:
    """features_of_interest as a bool mask (n, L): indices of columns, or a bool mask."""
    n, width = shape
    if features_of_interest is None:
        return np.ones(shape, dtype=bool)
    arr = features_of_interest.detach().cpu().numpy() \
        if isinstance(features_of_interest, torch.Tensor) else np.asarray(features_of_interest)
    if arr.dtype == np.bool_:
        return _bool_rows(arr, shape, "features_of_interest", owner, "True for a feature of "
                          "interest")
    if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer) \
            or arr.min() < -width or arr.max() >= width:
        msg = (f"The 'features_of_interest' parameter of {owner} must be None (every feature), "
               f"a non-empty list of feature positions in [0, {width}) or a bool mask. Got "
               f"{fmt_value(features_of_interest)} instead.")
        raise InvalidParameterError(msg, owner=owner, parameter="features_of_interest",
                                    value=features_of_interest)
    mask = np.zeros(width, dtype=bool)
    mask[arr] = True
    return np.broadcast_to(mask, shape)


def effective_k(k: int | float, n_valid: Any) -> np.ndarray:
    """The k used per example: ``min(k, L)`` for an int, ``min(ceil(k * L), L)`` for a fraction.

    ``k * L`` is rounded to 9 decimals before the ceiling, so that 0.1 * 30 gives 3, not 4.
    """
    _check_k(k, "effective_k")
    n = np.asarray(n_valid, dtype=np.int64)
    if isinstance(k, numbers.Integral):
        return np.minimum(int(k), n)
    return np.minimum(np.ceil(np.round(float(k) * n, 9)).astype(np.int64), n)


# -- helpers on rows -------------------------------------------------------------------------
def _topk_order(absv: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Per row, feature positions by (-|v|, index) ascending; invalid features last."""
    key = np.where(valid, -absv, np.inf)
    idx = np.broadcast_to(np.arange(absv.shape[1]), absv.shape)
    return np.lexsort((idx, key), axis=-1)


def _runs(sorted_keys: Sequence[np.ndarray], valid_sorted: np.ndarray) -> np.ndarray:
    """True where a new run of equal keys starts (every invalid entry is a run of its own)."""
    n, width = valid_sorted.shape
    starts = np.ones((n, width), dtype=bool)
    if width > 1:
        same = np.ones((n, width - 1), dtype=bool)
        for key in sorted_keys:
            same &= key[:, 1:] == key[:, :-1]
        starts[:, 1:] = ~same
    starts |= ~valid_sorted
    return starts


def _run_first(starts: np.ndarray) -> np.ndarray:
    pos = np.broadcast_to(np.arange(starts.shape[1]), starts.shape)
    return np.maximum.accumulate(np.where(starts, pos, 0), axis=1)


def _tied_pairs(starts: np.ndarray, valid_sorted: np.ndarray) -> np.ndarray:
    """Pairs of valid entries in the same run, per row: sum over entries of (position - run start)."""
    pos = np.arange(starts.shape[1])
    out: np.ndarray = np.where(valid_sorted, pos - _run_first(starts), 0).sum(1)
    return out


def _average_ranks(v: np.ndarray, use: np.ndarray) -> np.ndarray:
    """Average ranks (1 = smallest) of v within ``use`` per row (scipy's rankdata 'average')."""
    n, width = v.shape
    key = np.where(use, v, np.inf)
    srt = np.argsort(key, axis=1, kind="stable")
    ks = np.take_along_axis(key, srt, axis=1)
    us = np.take_along_axis(use, srt, axis=1)
    starts = _runs([ks], us)
    ends = np.ones((n, width), dtype=bool)
    ends[:, :-1] = starts[:, 1:]
    pos = np.broadcast_to(np.arange(width), (n, width))
    first = _run_first(starts)
    last = np.minimum.accumulate(np.where(ends, pos, width)[:, ::-1], axis=1)[:, ::-1]
    ranks = np.empty((n, width))
    np.put_along_axis(ranks, srt, 0.5 * (first + last) + 1.0, axis=1)
    return ranks


def _dense_ranks(v: np.ndarray, use: np.ndarray) -> np.ndarray:
    """Integer dense ranks (0 = smallest, ties share) within ``use``; entries outside get width."""
    n, width = v.shape
    key = np.where(use, v, np.inf)
    srt = np.argsort(key, axis=1, kind="stable")
    starts = _runs([np.take_along_axis(key, srt, axis=1)], np.take_along_axis(use, srt, axis=1))
    dense = np.empty((n, width), dtype=np.int64)
    np.put_along_axis(dense, srt, np.cumsum(starts, axis=1) - 1, axis=1)
    return np.where(use, dense, width)


def _inversions(y: np.ndarray) -> np.ndarray:
    """Per row, #{i < j : y_i > y_j} for non-negative ints, by a vectorised bottom-up merge sort."""
    n, width = y.shape
    size = 1 << max(0, (width - 1).bit_length())
    top = int(y.max(initial=0)) + 1
    cur = np.empty((n, size), dtype=np.int64)
    cur[:, :width] = y
    cur[:, width:] = top + np.arange(size - width)  # larger than all, increasing: no inversions
    bound = top + size
    total = np.zeros(n, dtype=np.int64)
    w = 1
    while w < size:
        blocks = cur.reshape(-1, 2, w)
        nb = blocks.shape[0]
        off = np.arange(nb, dtype=np.int64)[:, None] * bound
        left = (blocks[:, 0, :] + off).ravel()  # globally sorted: sorted blocks, rising offsets
        at_most = np.searchsorted(left, (blocks[:, 1, :] + off).ravel(), side="right")
        greater = w - (at_most.reshape(nb, w) - np.arange(nb)[:, None] * w)
        total += greater.sum(1).reshape(n, -1).sum(1)
        cur = np.sort(blocks.reshape(nb, 2 * w), axis=1).reshape(n, size)
        w *= 2
    return total


def _pair_stats(x: np.ndarray, y: np.ndarray, use: np.ndarray) -> dict[str, np.ndarray]:
    """Pair counts over the entries in ``use``, per row: N pairs, C concordant, D discordant,
    T_x / T_y tied in x / y, T_xy tied in both (Knight's O(L log L) scheme for tau-b)."""
    m = use.sum(1).astype(np.int64)
    xr, yr = _dense_ranks(x, use), _dense_ranks(y, use)
    order = np.lexsort((yr, xr), axis=-1)  # by x, ties by y; unused entries last
    xs, ys = np.take_along_axis(xr, order, axis=1), np.take_along_axis(yr, order, axis=1)
    us = np.take_along_axis(use, order, axis=1)
    t_x = _tied_pairs(_runs([xs], us), us)
    t_xy = _tied_pairs(_runs([xs, ys], us), us)
    ysrt = np.sort(np.where(use, yr, yr.shape[1]), axis=1)
    uy = np.arange(use.shape[1]) < m[:, None]
    t_y = _tied_pairs(_runs([ysrt], uy), uy)
    d = _inversions(ys)  # unused entries carry the largest rank, after every used one
    n_pairs = m * (m - 1) // 2
    c = n_pairs - d - t_x - t_y + t_xy
    return {"N": n_pairs, "C": c, "D": d, "T_x": t_x, "T_y": t_y, "T_xy": t_xy}


def topk_ties(a: Any, k: int | float = 0.25, *, valid: Any = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """Ties that make a top-k list depend on the tie-break, per row of ``a`` (n, L).

    Returns ``(tie_in_topk, tie_at_boundary)``: two equal |a| inside the top k (rank and
    signed-rank agreement then depend on the lower-index-first rule), and equal |a| at positions
    k and k + 1 (the top-k *set* itself is then arbitrary).
    """
    owner = "topk_ties"
    _check_k(k, owner)
    arr = _as_rows(a, "a", owner)
    ok = np.ones(arr.shape, dtype=bool) if valid is None else \
        _bool_rows(valid, arr.shape, "valid", owner, "False marks padding")
    kk = effective_k(k, ok.sum(1))[:, None]
    absv = np.abs(arr)
    srt = np.take_along_axis(absv, _topk_order(absv, ok), axis=1)
    pos = np.arange(arr.shape[1] - 1)
    eq = srt[:, 1:] == srt[:, :-1]  # between positions p and p + 1 (0-based)
    n_ok = ok.sum(1)[:, None]
    in_top = eq & (pos + 1 < kk)
    boundary = eq & (pos + 1 == kk) & (pos + 1 < n_ok)
    return in_top.any(1), boundary.any(1)


# -- the measures ----------------------------------------------------------------------------
def agreement_scores(a: Any, b: Any, measure: str, *, k: int | float = 0.25,
                     features_of_interest: Any = None, valid: Any = None) -> np.ndarray:
    """One agreement measure between rows of attributions, per row.

    Parameters
    ----------
    a, b : array-like of shape (n, L) (or (L,))
        Attributions of the same features by two explanations, one row per example and output.
    measure : str
        One of :data:`MEASURES` (see the module docstring for the formulas).
    k : int or float, default=0.25
        Top-k size for ``feature``, ``rank``, ``sign``, ``signed_rank``: an int >= 1, or a
        fraction in (0, 1] of each row's valid features (ceil, OpenXAI's rounding); capped at L.
    features_of_interest : sequence of int, bool array of shape (L,) or (n, L), or None
        F of Krishna et al. for ``rank_correlation``, ``pairwise_rank`` and ``kendall`` (ranks
        are recomputed within F). None: every valid feature. Ignored by the top-k measures.
    valid : bool array of shape (n, L) or (L,), or None
        False marks padding (text of different lengths): those features take no part.

    Returns
    -------
    numpy.ndarray of shape (n,), float64
        NaN where the measure is undefined (no valid feature; fewer than 2 features of
        interest for the pair measures; constant |a| or |b| over F for RC and tau-b).

    References
    ----------
    Krishna et al., "The Disagreement Problem in Explainable Machine Learning", TMLR 2024;
    Neely et al., "A Song of (Dis)agreement", HHAI 2022 (tau-b).
    """
    owner = "agreement_scores"
    measure = _check_measure(measure, owner)
    _check_k(k, owner)
    x, y = _as_rows(a, "a", owner), _as_rows(b, "b", owner)
    if x.shape != y.shape:
        msg = (f"agreement_scores compares attributions of the same features, but 'a' has shape "
               f"{x.shape} and 'b' {y.shape}. Pass rows over the same features.")
        raise InvalidInputError(msg, parameter="b", value=b)
    ok = np.ones(x.shape, dtype=bool) if valid is None else \
        _bool_rows(valid, x.shape, "valid", owner, "False marks padding")
    if not (np.isfinite(x[ok]).all() and np.isfinite(y[ok]).all()):
        msg = ("agreement_scores needs finite attributions, but 'a' or 'b' holds NaN or inf at "
               "a valid feature. Drop those rows or mark the features invalid with 'valid'.")
        raise InvalidInputError(msg, parameter="a", value=a)
    return _scores(x, y, measure, k, _interest(features_of_interest, x.shape, owner) & ok, ok)


def _scores(x: np.ndarray, y: np.ndarray, measure: str, k: int | float, use: np.ndarray,
            ok: np.ndarray) -> np.ndarray:
    if measure in _TOPK:
        return _topk_measure(x, y, measure, k, ok)
    m = use.sum(1)
    out = np.full(x.shape[0], np.nan)
    ax, ay = np.abs(x), np.abs(y)
    if measure == "rank_correlation":
        rx, ry = _average_ranks(ax, use), _average_ranks(ay, use)
        cnt = np.maximum(m, 1)[:, None]
        dx = np.where(use, rx - np.where(use, rx, 0).sum(1, keepdims=True) / cnt, 0.0)
        dy = np.where(use, ry - np.where(use, ry, 0).sum(1, keepdims=True) / cnt, 0.0)
        den = np.sqrt((dx * dx).sum(1) * (dy * dy).sum(1))
        fine = (m >= 2) & (den > 0)
        out[fine] = (dx * dy).sum(1)[fine] / den[fine]
        _warn_constant((m >= 2) & ~fine, "rank correlation")
        return out
    s = _pair_stats(ax, ay, use)
    if measure == "pairwise_rank":
        fine = s["N"] > 0
        out[fine] = (s["C"] + s["T_xy"])[fine] / s["N"][fine]
        return out
    den = np.sqrt(((s["N"] - s["T_x"]) * (s["N"] - s["T_y"])).astype(np.float64))
    fine = (s["N"] > 0) & (den > 0)
    out[fine] = (s["C"] - s["D"])[fine] / den[fine]
    _warn_constant((s["N"] > 0) & ~fine, "Kendall tau-b")
    return out


def _warn_constant(rows: np.ndarray, what: str) -> None:
    if rows.any():
        idx = np.flatnonzero(rows)
        warnings.warn(f"The {what} is NaN for {idx.size} row(s) (first: "
                      f"{', '.join(map(str, idx[:5]))}): |attributions| are constant over the "
                      "features of interest (e.g. all zero), so they rank nothing.",
                      XAIWarning, stacklevel=4)


def _topk_measure(x: np.ndarray, y: np.ndarray, measure: str, k: int | float,
                  ok: np.ndarray) -> np.ndarray:
    n, width = x.shape
    kk = effective_k(k, ok.sum(1))
    out = np.full(n, np.nan)
    has = kk > 0
    kcol = kk[:, None]
    oa, ob = _topk_order(np.abs(x), ok), _topk_order(np.abs(y), ok)
    pos = np.arange(width)
    sx, sy = np.sign(x), np.sign(y)
    if measure in ("feature", "sign"):
        ra, rb = np.empty_like(oa), np.empty_like(ob)
        np.put_along_axis(ra, oa, np.broadcast_to(pos, oa.shape), axis=1)
        np.put_along_axis(rb, ob, np.broadcast_to(pos, ob.shape), axis=1)
        hit = (ra < kcol) & (rb < kcol)
        if measure == "sign":
            hit &= sx == sy
    else:
        hit = (oa == ob) & (pos < kcol)
        if measure == "signed_rank":
            hit &= np.take_along_axis(sx, oa, axis=1) == np.take_along_axis(sy, oa, axis=1)
    out[has] = hit.sum(1)[has] / kk[has]
    return out


# -- explanations ----------------------------------------------------------------------------
def agreement(a: xai.Explanation, b: xai.Explanation, measures: Sequence[str] = MEASURES, *,
              k: int | float = 0.25, features_of_interest: Any = None
              ) -> dict[str, torch.Tensor]:
    """Agreement of two explanations of the same inputs, per example and output.

    Parameters
    ----------
    a, b : xai.Explanation
        Explanations of the same inputs, targets and features (e.g. two methods, or one method
        with two settings). Each example uses its own valid features (padding excluded).
    measures : sequence of str, default=MEASURES
        Names among ``feature``, ``rank``, ``sign``, ``signed_rank``, ``rank_correlation``,
        ``pairwise_rank``, ``kendall`` (formulas in the module docstring).
    k : int or float, default=0.25
        Top-k size: an int, or a fraction of each example's number of features (ceil).
    features_of_interest : sequence of int, bool array of shape (n_features,) or
        (n_examples, n_features), or None
        The features F for ``rank_correlation``, ``pairwise_rank`` and ``kendall``.

    Returns
    -------
    dict of str to torch.Tensor of shape (n_examples, n_outputs), float64
        One tensor per measure; NaN where undefined (see :func:`agreement_scores`).

    Raises
    ------
    InvalidExplanationError
        The explanations differ in number of examples, inputs, targets or feature names.
    InvalidParameterError
        Unknown ``measures``, or ``k`` neither an int >= 1 nor a fraction in (0, 1].

    References
    ----------
    Krishna et al., "The Disagreement Problem in Explainable Machine Learning: A
    Practitioner's Perspective", TMLR 2024; Neely et al., "A Song of (Dis)agreement", HHAI 2022.
    """
    owner = "agreement"
    for name, exp in (("a", a), ("b", b)):
        if not isinstance(exp, xai.Explanation):
            msg = (f"The {name!r} argument of {owner} must be an xai.Explanation. Got "
                   f"{fmt_value(exp)} instead. Explain the inputs with xai.explain first.")
            raise InvalidParameterError(msg, owner=owner, parameter=name, value=exp)
    names = _check_measures(measures, owner)
    _check_k(k, owner)
    _check_same_space(a, b)
    n, o, width = a.values.shape
    ok = _valid(a) & _valid(b)
    empty = np.flatnonzero(~ok.any(1)) if width else np.arange(n)
    if n and empty.size:
        msg = (f"agreement: examples {', '.join(map(str, empty[:5]))} have no feature valid in "
               "both explanations (their feature masks do not overlap). Explain the same inputs "
               "with the same features.")
        raise InvalidExplanationError(msg)
    use = _interest(features_of_interest, (n, width), owner) & ok
    va = a.values.detach().cpu().double().numpy()
    vb = b.values.detach().cpu().double().numpy()
    out = {m: torch.full((n, o), float("nan"), dtype=torch.float64) for m in names}
    for col in range(o):
        for m in names:
            out[m][:, col] = torch.from_numpy(_scores(va[:, col], vb[:, col], m, k, use, ok))
    return out


def _valid(exp: xai.Explanation) -> np.ndarray:
    n, _, width = exp.values.shape
    if exp.feature_mask is None:
        return np.ones((n, width), dtype=bool)
    return exp.feature_mask.detach().cpu().numpy().astype(bool)


def _check_same_space(a: xai.Explanation, b: xai.Explanation) -> None:
    problem = _space_difference(a, b)
    if problem is not None:
        msg = (f"agreement compares two explanations of the same inputs, targets and features, "
               f"but {a.method!r} (a) and {b.method!r} (b) differ: {problem}. Explain the same "
               "inputs with the same target and features (granularity) for both.")
        raise InvalidExplanationError(msg)


def _space_difference(a: xai.Explanation, b: xai.Explanation) -> str | None:
    if len(a) != len(b):
        return f"number of examples {len(a)} (a) vs {len(b)} (b)"
    inputs = _input_difference(a, b)
    if inputs is not None:
        return f"inputs: {inputs} (b vs a)"
    if a.n_outputs != b.n_outputs:
        return f"number of explained outputs {a.n_outputs} (a) vs {b.n_outputs} (b)"
    ta, tb = a.target.indices, b.target.indices
    if not torch.equal(ta.to(torch.long), tb.to(torch.long)) or a.target.names != b.target.names:
        rows = [i for i in range(len(a)) if not torch.equal(ta[i], tb[i])
                or a.target.names[i] != b.target.names[i]]
        i = rows[0]
        return (f"targets of example {i}: {list(a.target.names[i])} {ta[i].tolist()} (a) vs "
                f"{list(b.target.names[i])} {tb[i].tolist()} (b)")
    for i, (fa, fb) in enumerate(zip(a.feature_names, b.feature_names, strict=True)):
        if tuple(fa) != tuple(fb):
            return (f"feature names of example {i}: {len(fa)} features {_names(fa)} (a) vs "
                    f"{len(fb)} {_names(fb)} (b)")
    if a.n_features != b.n_features:
        return f"width of values {a.n_features} (a) vs {b.n_features} (b)"
    return None


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(repr(s) for s in names[:6])
    return f"[{shown}{', ...' if len(names) > 6 else ''}]"
