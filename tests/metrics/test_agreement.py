"""metrics.agreement: Krishna et al.'s agreement measures and Kendall's tau-b (audit spec Part A).

Known answers from the spec's A.6 table (worked by hand): a = (-2, 4, -5, 3, 0, 4),
b = (1, 3, 6, 2, 0, 4), k = 4; top-4 of |a| is [2, 1, 5, 3] (tie |a_1| = |a_5|, lower index
first), of |b| [2, 5, 1, 3].
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
import warnings

import models
import numpy as np
import pytest
import torch

import xai
from metrics.agreement import MEASURES, agreement, agreement_scores, effective_k, topk_ties

A = np.array([-2, 4, -5, 3, 0, 4], float)
B = np.array([1, 3, 6, 2, 0, 4], float)
F = [0, 1, 3, 5]


def one(measure, a=A, b=B, **kw):
    out = agreement_scores(a, b, measure, **kw)
    assert out.shape == (1,)
    return float(out[0])


@pytest.mark.parametrize(("row", "measure", "kw", "want"), [
    ("A-1", "feature", {"k": 4}, 1.0),
    ("A-2", "rank", {"k": 4}, 0.5),
    ("A-3", "sign", {"k": 4}, 0.75),
    ("A-4", "signed_rank", {"k": 4}, 0.25),
    ("A-6", "rank_correlation", {}, 17 / math.sqrt(17 * 17.5)),
    ("A-7", "rank_correlation", {"features_of_interest": F}, math.sqrt(0.9)),
    ("A-8", "pairwise_rank", {}, 14 / 15),
    ("A-9", "pairwise_rank", {"features_of_interest": F}, 5 / 6),
    ("A-10", "kendall", {}, 14 / math.sqrt(14 * 15)),
])
def test_hand_worked_values(row, measure, kw, want):
    assert one(measure, **kw) == pytest.approx(want, abs=1e-12), row


def test_a5_rank_agreement_depends_on_the_tie_break():
    # relabel features 1 and 5 in both vectors: a is unchanged (|a_1| = |a_5| = 4), so a's tie
    # is now broken "5 before 1" in the original labels and all four positions match
    swap = [0, 5, 2, 3, 4, 1]
    assert np.array_equal(A[swap], A)
    assert one("rank", A[swap], B[swap], k=4) == 1.0
    assert one("signed_rank", A[swap], B[swap], k=4) == 0.75  # only feature 2 flips sign
    ties_in, ties_at = topk_ties(A, 4)
    assert ties_in.tolist() == [True]
    assert ties_at.tolist() == [False]
    assert topk_ties(A, 2)[1].tolist() == [True]  # |a| = 4 at positions 2 and 3: set arbitrary
    assert topk_ties(np.array([3.0, 2, 1]), 2) == (np.array([False]), np.array([False]))


def test_a12_self_and_negation():
    for m in MEASURES:
        assert one(m, A, A, k=4) == 1.0, m
    neg = {m: one(m, A, -A, k=4) for m in MEASURES}
    assert neg == {"feature": 1.0, "rank": 1.0, "sign": 0.0, "signed_rank": 0.0,
                   "rank_correlation": 1.0, "pairwise_rank": 1.0, "kendall": 1.0}


def test_top_k_divides_by_k_and_fractions_round_up():
    a, b = np.arange(1.0, 9.0), np.arange(8.0, 0.0, -1.0)  # top-2 {7, 6} vs {0, 1}
    assert one("feature", a, b, k=2) == 0.0
    assert one("feature", a, b, k=4) == 0.0
    assert one("feature", a, b, k=5) == 2 / 5   # {7..3} & {0..4} = {3, 4}
    assert one("feature", a, b, k=0.5) == 0.0  # ceil(0.5 * 8) = 4
    assert one("feature", a, b, k=0.51) == 2 / 5  # ceil(4.08) = 5
    assert one("feature", a, b, k=100) == 1.0  # capped at L
    assert effective_k(0.1, [30, 31, 0, 1]).tolist() == [3, 4, 0, 1]  # 0.1 * 30 is 3, not 4
    assert effective_k(3, [2, 5]).tolist() == [2, 3]


def _brute(a, b, use):
    """Textbook definitions over the used features (O(L^2), explicit pairs)."""
    idx = np.flatnonzero(use)
    x, y = np.abs(a[idx]), np.abs(b[idx])
    pairs = list(itertools.combinations(range(idx.size), 2))
    if not pairs:
        return math.nan, math.nan
    sx = [np.sign(x[i] - x[j]) for i, j in pairs]
    sy = [np.sign(y[i] - y[j]) for i, j in pairs]
    pra = float(np.mean([u == v for u, v in zip(sx, sy, strict=True)]))
    c = sum(u * v > 0 for u, v in zip(sx, sy, strict=True))
    d = sum(u * v < 0 for u, v in zip(sx, sy, strict=True))
    tx, ty = sum(u == 0 for u in sx), sum(v == 0 for v in sy)
    den = (len(pairs) - tx) * (len(pairs) - ty)
    return pra, (c - d) / math.sqrt(den) if den else math.nan


def test_rank_measures_match_scipy_and_brute_force_on_random_vectors():
    st = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for width, levels in ((7, 3), (40, 5), (300, 1000)):  # many ties, some, few
        a = rng.integers(-levels, levels + 1, size=(30, width)).astype(float)
        b = rng.integers(-levels, levels + 1, size=(30, width)).astype(float)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # constant rows give NaN, also for scipy
            tau = agreement_scores(a, b, "kendall")
            rc = agreement_scores(a, b, "rank_correlation")
            want_tau = [st.kendalltau(np.abs(u), np.abs(v))[0] for u, v in zip(a, b, strict=True)]
            want_rc = [st.spearmanr(np.abs(u), np.abs(v))[0] for u, v in zip(a, b, strict=True)]
        np.testing.assert_allclose(tau, want_tau, rtol=0, atol=1e-12)
        np.testing.assert_allclose(rc, want_rc, rtol=0, atol=1e-12)
    # variable valid lengths and features of interest against the explicit pair definitions
    a = rng.integers(-3, 4, size=(40, 12)).astype(float)
    b = rng.integers(-3, 4, size=(40, 12)).astype(float)
    valid = np.arange(12) < rng.integers(0, 13, size=40)[:, None]
    foi = rng.random((40, 12)) < 0.7
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pra = agreement_scores(a, b, "pairwise_rank", valid=valid, features_of_interest=foi)
        tau = agreement_scores(a, b, "kendall", valid=valid, features_of_interest=foi)
    want = np.array([_brute(a[i], b[i], valid[i] & foi[i]) for i in range(40)])
    np.testing.assert_allclose(pra, want[:, 0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(tau, want[:, 1], rtol=0, atol=1e-12)
    assert np.isnan(pra).any()
    assert not np.isnan(pra).all()


def test_padding_is_never_read():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(5, 9)), rng.normal(size=(5, 9))
    lengths = [9, 4, 1, 6, 2]
    valid = np.arange(9) < np.array(lengths)[:, None]
    garbage_a = np.where(valid, a, 100.0)
    garbage_b = np.where(valid, b, -100.0)
    for m in MEASURES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = agreement_scores(garbage_a, garbage_b, m, k=0.5, valid=valid)
            want = [agreement_scores(a[i, :n], b[i, :n], m, k=0.5)[0]
                    for i, n in enumerate(lengths)]
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12, err_msg=m)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.isnan(agreement_scores(a, b, "kendall", valid=valid)[2])  # one feature
        assert np.isnan(agreement_scores(a, b, "feature", valid=np.zeros((5, 9), bool))).all()


def test_constant_attributions_give_nan_with_a_warning():
    zero = np.zeros(5)
    with pytest.warns(xai.XAIWarning, match="rank correlation is NaN for 1 row"):
        assert math.isnan(one("rank_correlation", zero, np.arange(5.0)))
    with pytest.warns(xai.XAIWarning, match="Kendall tau-b is NaN"):
        assert math.isnan(one("kendall", np.arange(5.0), zero))
    assert one("pairwise_rank", zero, zero) == 1.0  # ties agree with ties
    assert one("pairwise_rank", zero, np.arange(5.0)) == 0.0


@pytest.mark.parametrize(("kw", "parameter", "text"), [
    ({"measure": "spearman"}, "measure", "'feature', 'rank', 'sign', 'signed_rank'"),
    ({"k": 0}, "k", "an int >= 1"),
    ({"k": 1.5}, "k", "a float in the range (0, 1]"),
    ({"k": True}, "k", "Got True instead"),
    ({"features_of_interest": [0, 9]}, "features_of_interest", "positions in [0, 6)"),
    ({"valid": np.ones(4, bool)}, "valid", "bool array of shape (1, 6) or (6,)"),
])
def test_bad_parameters_are_typed_errors(kw, parameter, text):
    args = {"measure": "feature", **kw}
    with pytest.raises(xai.InvalidParameterError, match=re.escape(text)) as err:
        agreement_scores(A, B, **args)
    assert err.value.parameter == parameter


def test_non_finite_or_misshaped_attributions_are_typed_errors():
    with pytest.raises(xai.InvalidInputError, match="finite"):
        agreement_scores([1.0, np.nan], [1.0, 2.0], "feature")
    with pytest.raises(xai.InvalidInputError, match=re.escape("shape (1, 6) and 'b' (1, 5)")):
        agreement_scores(A, B[:5], "feature")


# -- explanations ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tabular():
    model = models.mlp(n_in=6, n_hidden=16, n_out=3, seed=0)
    x = torch.randn(8, 6, generator=torch.Generator().manual_seed(0))
    ig = xai.explain(model, x, method="integrated_gradients", target="all")
    occ = xai.explain(model, x, method="occlusion", target="all")
    return model, x, ig, occ


def test_explanation_with_itself_and_its_negation(tabular):
    _, _, ig, occ = tabular
    same = agreement(ig, ig, k=3)
    assert set(same) == set(MEASURES)
    for m, t in same.items():
        assert t.dtype == torch.float64
        assert t.shape == (8, 3)
        assert bool((t == 1).all()), m
    neg = agreement(ig, dataclasses.replace(ig, values=-ig.values), k=3)
    assert bool((ig.values != 0).all())  # no zero attribution, whose sign would match
    for m in ("feature", "rank", "rank_correlation", "pairwise_rank", "kendall"):
        assert bool((neg[m] == 1).all()), m
    assert bool((neg["sign"] == 0).all())
    assert bool((neg["signed_rank"] == 0).all())


def test_two_methods_equal_the_array_function(tabular):
    _, _, ig, occ = tabular
    res = agreement(ig, occ, ["rank_correlation", "sign"], k=0.5)
    assert list(res) == ["rank_correlation", "sign"]
    for col in range(3):
        a, b = ig.values[:, col].double().numpy(), occ.values[:, col].double().numpy()
        np.testing.assert_array_equal(res["sign"][:, col].numpy(),
                                      agreement_scores(a, b, "sign", k=3))
        np.testing.assert_array_equal(res["rank_correlation"][:, col].numpy(),
                                      agreement_scores(a, b, "rank_correlation"))
    assert float(res["rank_correlation"].min()) < 1  # a nonlinear MLP: the methods differ


def test_ig_and_occlusion_agree_fully_on_a_linear_model():
    gen = torch.Generator().manual_seed(3)
    model = models.Linear(torch.randn(6, generator=gen))
    x = torch.randn(5, 6, generator=gen)
    ig = xai.explain(model, x, method="integrated_gradients")
    occ = xai.explain(model, x, method="occlusion")
    res = agreement(ig, occ, k=2)  # both are w * x (zero baseline)
    for m, t in res.items():
        assert bool((t == 1).all()), m


def test_mismatched_explanations_are_refused(tabular):
    model, x, ig, occ = tabular
    with pytest.raises(xai.InvalidExplanationError, match=re.escape(
            "differ: number of examples 8 (a) vs 5 (b)")):
        agreement(ig, occ[:5])
    first = xai.explain(model, x, method="occlusion", target=0)
    with pytest.raises(xai.InvalidExplanationError, match=re.escape(
            "number of explained outputs 3 (a) vs 1 (b)")):
        agreement(ig, first)
    second = xai.explain(model, x, method="occlusion", target=[0, 1, 0, 0, 0, 0, 0, 0])
    with pytest.raises(xai.InvalidExplanationError, match=r"targets of example 1: .* \[0\] "
                       r"\(a\) vs .* \[1\] \(b\)"):
        agreement(first, second)
    shifted = xai.explain(model, x + 1, method="occlusion", target="all")
    with pytest.raises(xai.InvalidExplanationError, match="inputs: "):
        agreement(ig, shifted)
    names = [tuple(f"f{j}" for j in range(6))] * 8
    renamed = dataclasses.replace(occ, features=tuple(xai.NamedFeatures(n) for n in names),
                                  inputs=None)
    with pytest.raises(xai.InvalidExplanationError, match=re.escape(
            "feature names of example 0: 6 features")):
        agreement(dataclasses.replace(ig, inputs=None), renamed)


def test_bad_measures_and_k_name_the_parameter(tabular):
    _, _, ig, occ = tabular
    with pytest.raises(xai.InvalidParameterError, match=re.escape(
            "unknown measure(s) 'FA'")) as err:
        agreement(ig, occ, ["feature", "FA"])
    assert err.value.parameter == "measures"
    with pytest.raises(xai.InvalidParameterError, match="'pairwise_rank'") as err:
        agreement(ig, occ, [])
    with pytest.raises(xai.InvalidParameterError, match=re.escape("Got -1 instead")) as err:
        agreement(ig, occ, k=-1)
    assert err.value.parameter == "k"
    with pytest.raises(xai.InvalidParameterError, match="must be an xai.Explanation"):
        agreement(ig, occ.values)  # type: ignore[arg-type]


def test_text_explanations_use_each_examples_own_words(tiny_bert, texts):
    ig = xai.explain(tiny_bert, texts, method="integrated_gradients", target=1)
    occ = xai.explain(tiny_bert, texts, method="occlusion", target=1)
    lengths = [len(n) for n in ig.feature_names]
    assert len(set(lengths)) == 3
    assert ig.feature_mask is not None
    mask = ig.feature_mask[:, None, :]
    noise = torch.randn(ig.values.shape, generator=torch.Generator().manual_seed(0)) * mask
    others = {"occlusion": occ, "noise": dataclasses.replace(occ, values=noise)}
    for label, other in others.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = agreement(ig, other, k=0.5)
            for m in MEASURES:
                want = [agreement_scores(ig.values[i, 0, :n].double(),
                                         other.values[i, 0, :n].double(), m, k=0.5)[0]
                        for i, n in enumerate(lengths)]
                np.testing.assert_allclose(res[m][:, 0].numpy(), want, rtol=0, atol=1e-12,
                                           err_msg=f"{label} {m}")
    # the padding of "fun film" (2 words of 8 positions) must not count: against the negated
    # map its own words give SA@50% = 0, while the padded row would take 2 zeros into the top 4
    neg = agreement(ig, dataclasses.replace(occ, values=-occ.values), ["sign"], k=0.5)["sign"]
    assert neg[:, 0].tolist() == [0.0, 0.0, 0.0]
    i = lengths.index(2)
    padded = agreement_scores(ig.values[i, 0], -occ.values[i, 0], "sign", k=0.5)[0]
    assert padded == 0.5
    other = xai.explain(tiny_bert, [texts[0], texts[1], "fun film !"], method="occlusion",
                        target=1)
    with pytest.raises(xai.InvalidExplanationError, match="text 2"):
        agreement(ig, other)
