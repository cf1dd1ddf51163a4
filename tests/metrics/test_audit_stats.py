"""metrics._stats: the audit's bootstrap intervals, permutation test, Holm and gap summaries.

Known answers from the audit spec (Part C.5, checks/audit_check.py sections 2-4 and 6). The
disparity simulation: x ~ N(0, I_6), f_A = w.x, f_B = w.x + x0 x1, explanation a = w * x for
both; quality = faithfulness correlation (Bhatt et al.) with subsets of size 2, T = 50 runs.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import xai
from metrics import _stats
from metrics._stats import (
    bootstrap_ci,
    drop_nan,
    gap_ci,
    holm,
    max_gap,
    mean_gap,
    permutation_test,
    row_rng,
    summary_gap_ci,
)

W = np.array([1.0, -0.8, 0.6, 0.5, -0.4, 0.3])


def _model(x, interaction):
    return x @ W + (x[..., 0] * x[..., 1] if interaction else 0.0)


def group_scores(n, interaction, rng):
    """mu_F per example, exactly as checks/audit_check.py section 3 draws it."""
    x = rng.standard_normal((n, 6))
    attr = W * x
    subsets = np.argsort(rng.random((n, 50, 6)), axis=2)[..., :2]
    mask = np.zeros((n, 50, 6), bool)
    np.put_along_axis(mask, subsets, True, axis=2)
    delta = _model(x, interaction)[:, None] - _model(np.where(mask, 0.0, x[:, None, :]),
                                                      interaction)
    s = np.where(mask, attr[:, None, :], 0.0).sum(2)
    s, delta = s - s.mean(1, keepdims=True), delta - delta.mean(1, keepdims=True)
    return (s * delta).sum(1) / np.sqrt((s * s).sum(1) * (delta * delta).sum(1))


def test_c1_bootstrap_standard_error():
    rng = np.random.default_rng(0)
    x = np.arange(10.0)
    means = _stats.bootstrap_means(x, 9999, rng)
    assert means.std() == pytest.approx(math.sqrt(8.25 / 10), abs=0.02)
    est = bootstrap_ci(x, rng=np.random.default_rng(0))
    assert est.value == 4.5
    lo, hi = np.quantile(_stats.bootstrap_means(x, 9999, np.random.default_rng(0)),
                         [0.025, 0.975])
    assert (est.low, est.high) == (lo, hi)  # the percentile recipe, same draws
    assert 4.5 - 2.5 * 0.9083 < est.low < 4.5 - 1.5 * 0.9083  # about mean -/+ 1.96 SE
    assert 4.5 + 1.5 * 0.9083 < est.high < 4.5 + 2.5 * 0.9083


def test_c2_exact_permutation_p_equals_scipy():
    p = permutation_test([1, 1, 1], [0, 0, 1], rng=np.random.default_rng(0))
    assert p == pytest.approx(0.4, abs=1e-12)  # 8 of the 20 splits reach |gap| = 2/3
    st = pytest.importorskip("scipy.stats")
    res = st.permutation_test(([0, 0, 1], [1, 1, 1]), lambda u, v: np.mean(v) - np.mean(u),
                              n_resamples=9999, permutation_type="independent",
                              alternative="two-sided")
    assert res.pvalue == pytest.approx(p, abs=1e-12)
    # one permutation fewer than C(6, 3) = 20: random relabelling, p on the (1 + #)/(P + 1) grid
    p19 = permutation_test([1, 1, 1], [0, 0, 1], n_permutations=19, rng=np.random.default_rng(0))
    assert (p19 * 20) == pytest.approx(round(p19 * 20))
    assert p19 >= 1 / 20


def test_c3_constant_group_interval_is_degenerate():
    for c in (1.0, 0.1, -3.7):
        assert tuple(bootstrap_ci(np.full(7, c), n_bootstrap=999,
                                  rng=np.random.default_rng(0))) == (c, c, c)
    assert tuple(gap_ci(np.ones(5), np.ones(9), rng=np.random.default_rng(0))) == (0.0, 0.0, 0.0)


def test_nan_scores_are_dropped_and_small_groups_are_nan():
    rng = np.random.default_rng(0)
    clean, n_nan = drop_nan([1.0, np.nan, 2.0, np.nan])
    assert clean.tolist() == [1.0, 2.0]
    assert n_nan == 2
    assert bootstrap_ci([1.0, np.nan, 3.0], rng=rng).value == 2.0
    assert all(math.isnan(v) for v in bootstrap_ci([1.0, np.nan], rng=rng))
    assert all(math.isnan(v) for v in gap_ci([1.0], [1.0, 2.0, 3.0], rng=rng))
    assert math.isnan(permutation_test([1.0, 2.0], [np.nan, 3.0], rng=rng))
    assert math.isnan(max_gap([0.5], [10]))
    assert math.isnan(mean_gap([0.5]))


def test_row_rng_is_the_documented_generator():
    a = row_rng(7, 3).random(5)
    assert np.array_equal(a, np.random.default_rng([7, 3]).random(5))
    assert not np.array_equal(a, row_rng(7, 4).random(5))
    state = np.random.get_state()[1].copy()
    bootstrap_ci(np.arange(20.0), rng=row_rng(0, 0))
    permutation_test(np.arange(20.0), np.arange(30.0), n_permutations=99, rng=row_rng(0, 1))
    assert np.array_equal(np.random.get_state()[1], state)  # global RNG untouched
    with pytest.raises(xai.InvalidParameterError, match="'row_index' parameter of row_rng"):
        row_rng(0, -1)


def test_chunked_draws_equal_one_draw(monkeypatch):
    x, y = np.random.default_rng(1).normal(size=(2, 40))
    whole = (bootstrap_ci(x, n_bootstrap=500, rng=row_rng(0, 0)),
             permutation_test(x, y, n_permutations=500, rng=row_rng(0, 1)))
    monkeypatch.setattr(_stats, "_CHUNK", 333)  # 8 bootstrap rows / 4 permutations a chunk
    chunked = (bootstrap_ci(x, n_bootstrap=500, rng=row_rng(0, 0)),
               permutation_test(x, y, n_permutations=500, rng=row_rng(0, 1)))
    assert whole == chunked


def test_c7_gap_summaries():
    assert max_gap([0.93, 0.84], [600, 400]) == pytest.approx(0.054, abs=1e-12)  # Q_all 0.894
    assert max_gap([0.93, 0.84], [600, 400], higher_is_better=False) == \
        pytest.approx(0.93 - 0.894, abs=1e-12)
    assert mean_gap([0.93, 0.84]) == pytest.approx(0.09, abs=1e-12)
    assert mean_gap([0.95, 0.80, 0.92, 0.85]) == pytest.approx(0.52 / 6, abs=1e-12)


def test_summary_gap_interval_is_stratified():
    rng = np.random.default_rng(5)
    groups = [rng.normal(0.9, 0.05, 300), rng.normal(0.8, 0.05, 200), [np.nan, 0.5]]
    est = summary_gap_ci(groups, statistic="mean_gap", rng=row_rng(0, 0), n_bootstrap=999)
    means = [np.mean(groups[0]), np.mean(groups[1])]  # the third group has 1 score: left out
    assert est.value == pytest.approx(mean_gap(means), abs=1e-12)
    assert est.low < est.value < est.high
    assert est.high - est.low < 0.03
    mg = summary_gap_ci(groups[:2], statistic="max_gap", rng=row_rng(0, 0), n_bootstrap=999)
    assert mg.value == pytest.approx(max_gap(means, [300, 200]), abs=1e-12)
    with pytest.raises(xai.InvalidParameterError, match="'statistic' parameter"):
        summary_gap_ci(groups, statistic="range", rng=row_rng(0, 0))


def test_holm_against_a_hand_worked_example():
    # m = 4: sorted 0.01, 0.02, 0.03, 0.04 -> 4*0.01, 3*0.02, max(0.06, 2*0.03), max(., 0.04)
    p = [0.03, 0.01, 0.04, 0.02]
    np.testing.assert_allclose(holm(p), [0.06, 0.04, 0.06, 0.06], rtol=0, atol=1e-15)
    np.testing.assert_allclose(holm([0.5, np.nan, 0.2]), [0.5, np.nan, 0.4], rtol=0, atol=1e-15)
    assert holm([0.9, 0.8]).tolist() == [1.0, 1.0]  # capped at 1
    try:
        from statsmodels.stats.multitest import multipletests
    except ImportError:
        return
    q = np.random.default_rng(0).random(30) ** 3
    np.testing.assert_allclose(holm(q), multipletests(q, method="holm")[1], rtol=1e-12)


def test_bad_parameters_are_typed_errors():
    with pytest.raises(xai.InvalidParameterError, match="'n_bootstrap' parameter of bootstrap_ci"):
        bootstrap_ci([1.0, 2.0], n_bootstrap=0, rng=row_rng(0, 0))
    with pytest.raises(xai.InvalidParameterError, match=r"'confidence' .* range \(0, 1\)"):
        gap_ci([1.0, 2.0], [1.0, 2.0], confidence=95, rng=row_rng(0, 0))
    with pytest.raises(xai.InvalidParameterError, match="numpy.random.Generator"):
        permutation_test([1.0, 2.0], [1.0, 2.0], rng=0)  # type: ignore[arg-type]


def test_c4_disparity_by_design_gives_a_gap_that_excludes_zero():
    rng = np.random.default_rng(2024)  # the draws of checks/audit_check.py section 3
    s_a, s_b = group_scores(200, False, rng), group_scores(200, True, rng)
    np.testing.assert_allclose(s_a, 1.0, rtol=0, atol=1e-9)  # exact additive attribution
    assert tuple(bootstrap_ci(s_a, rng=rng)) == pytest.approx((1.0, 1.0, 1.0), abs=1e-9)
    m_b = bootstrap_ci(s_b, rng=rng)
    gap = gap_ci(s_b, s_a, rng=rng)
    p = permutation_test(s_b, s_a, rng=rng)
    assert tuple(m_b) == pytest.approx((0.9237, 0.9038, 0.9411), abs=5e-5)  # the script's
    assert tuple(gap) == pytest.approx((-0.0763, -0.0963, -0.0588), abs=5e-5)
    assert gap.high < 0
    assert gap.low < -0.0894 < gap.high
    assert p == pytest.approx(1e-4, abs=1e-12)  # floor 1/(P+1)


def test_c5_null_calibration_reduced():
    """Both groups from f_B (skewed mu_F); 100 seeds, B = 1000, P = 499 (spec: 200, 2000, 999)."""
    covered = rejected = 0
    for seed in range(100):
        rng = np.random.default_rng(10_000 + seed)
        x_a, x_b = group_scores(200, True, rng), group_scores(200, True, rng)
        est = gap_ci(x_b, x_a, n_bootstrap=1000, rng=rng)
        covered += est.low <= 0 <= est.high
        rejected += permutation_test(x_b, x_a, n_permutations=499, rng=rng) <= 0.05
    print(f"C-5 reduced: coverage {covered / 100:.2f}, rejection rate {rejected / 100:.2f}")
    assert 0.90 <= covered / 100 <= 0.99
    assert rejected / 100 <= 0.10
