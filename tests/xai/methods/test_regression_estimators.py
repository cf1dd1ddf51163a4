"""Regression Shapley estimators (issue 16, first part): paired KernelSHAP with the exact
constrained solution and Leverage SHAP, on the spec's known-answer games (n = 10)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from xai.exceptions import InvalidParameterError
from xai.methods._coalitions import exact_shapley
from xai.methods._regression import (
    KernelDesign,
    LeverageDesign,
    _distinct_subsets,
    _leverage_fits,
    constrained_solve,
    leverage_counts,
    leverage_shapley,
    paired_kernel_shapley,
)

N = 10
ESTIMATORS = [paired_kernel_shapley, leverage_shapley]


def _additive():
    rng = np.random.default_rng(1)
    a, c = rng.normal(size=N), rng.normal()
    return lambda z: torch.as_tensor(c + z.numpy().astype(float) @ a)


def _order2():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=N), np.triu(rng.normal(size=(N, N)), 1)

    def game(z):
        zf = z.numpy().astype(float)
        return torch.as_tensor(zf @ a + np.einsum("ki,ij,kj->k", zf, b, zf))

    return game


def _mlp(n_out: int = 1):
    rng = np.random.default_rng(3)
    x, w1 = rng.normal(size=N), rng.normal(size=(N, 16))
    b1, w2 = rng.normal(size=16) * 0.1, rng.normal(size=(16, n_out)) / 4

    def game(z):
        out = np.tanh((z.numpy() * x) @ w1 / np.sqrt(N) + b1) @ w2
        return torch.as_tensor(out[:, 0] if n_out == 1 else out)

    return game


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("estimate", ESTIMATORS)
@pytest.mark.parametrize("make", [_additive, _order2])
def test_exact_on_additive_and_order_two_games(estimate, make):
    """Paired designs are exact on games with interactions of order <= 2 once the pairs span
    the space (B = 128 pairs span it for every seed here)."""
    game = make()
    exact = exact_shapley(game, N)
    for seed in range(10):
        res = estimate(game, N, budget=128, generator=_gen(seed))
        torch.testing.assert_close(res.values, exact, atol=1e-10, rtol=0)


@pytest.mark.parametrize("estimate", ESTIMATORS)
def test_efficiency_is_exact_and_rows_are_counted(estimate):
    game = _mlp(n_out=3)
    rows = []

    def counted(z):
        rows.append(z.shape[0])
        return game(z)

    res = estimate(counted, N, budget=301, generator=_gen(0))
    torch.testing.assert_close(res.values.sum(0), res.full_value - res.empty_value, atol=1e-12,
                               rtol=0)
    assert res.values.shape == (N, 3)
    assert res.n_evaluations == sum(rows) == 300  # 2 + an even number of paired rows <= 301


@pytest.mark.parametrize("estimate", ESTIMATORS)
def test_enumerates_when_every_coalition_fits(estimate):
    w = torch.arange(1.0, 7.0, dtype=torch.float64)

    def game(z):
        zf = z.to(torch.float64)
        return torch.tanh(zf @ w / 6) * (1 + zf[:, 0] * zf[:, 1])

    res = estimate(game, 6, budget=64, generator=_gen(0))
    assert res.exact
    assert res.n_evaluations == 64
    torch.testing.assert_close(res.values, exact_shapley(game, 6), atol=1e-12, rtol=0)


@pytest.mark.parametrize("estimate", ESTIMATORS)
def test_error_shrinks_like_one_over_sqrt_budget(estimate):
    game = _mlp()
    exact = exact_shapley(game, N)
    budgets = [64, 128, 256, 512]
    rmse = [math.sqrt(np.mean([((estimate(game, N, budget=b, generator=_gen(s)).values
                                 - exact) ** 2).mean().item() for s in range(40)]))
            for b in budgets]
    slope = np.polyfit(np.log(budgets), np.log(rmse), 1)[0]
    assert slope < -0.45  # -1/2 for Monte Carlo; leverage sampling without replacement is faster


def test_leverage_beats_paired_kernel_at_equal_rows():
    game = _mlp()
    exact = exact_shapley(game, N)

    def rmse(estimate, budget):
        return math.sqrt(np.mean([((estimate(game, N, budget=budget, generator=_gen(s)).values
                                    - exact) ** 2).mean().item() for s in range(40)]))

    for budget in (128, 512):
        assert rmse(leverage_shapley, budget) < 0.8 * rmse(paired_kernel_shapley, budget)


@pytest.mark.parametrize("estimate", ESTIMATORS)
@pytest.mark.parametrize("budget", [128, 512])
def test_jackknife_stderr_is_calibrated(estimate, budget):
    """Mean stderr / empirical SD over 120 seeds within [0.8, 1.25] (the spec's SE-6 band), and
    the exact value within 2 stderr in about 95% of draws."""
    game = _mlp()
    exact = exact_shapley(game, N)
    runs = [estimate(game, N, budget=budget, generator=_gen(s)) for s in range(120)]
    values = torch.stack([r.values for r in runs])
    se = torch.stack([r.stderr for r in runs])
    assert 0.8 <= float((se.mean(0) / values.std(0)).median()) <= 1.25
    coverage = float(((values - exact).abs() <= 2 * se).double().mean())
    assert 0.9 <= coverage <= 0.99


def test_leverage_counts_fill_the_budget_with_distinct_pairs():
    for n, m in [(10, 126), (10, 510), (11, 300), (20, 2046)]:
        q = leverage_counts(n, m)
        assert 2 * sum(q.values()) == m
        for s, count in q.items():
            pool = math.comb(n - 1, s - 1) if 2 * s == n else math.comb(n, s)
            assert count <= pool
    res = leverage_shapley(_mlp(), N, budget=500, generator=_gen(1))
    assert res.n_evaluations == 500


def test_same_seed_same_values_and_too_small_budget_is_refused():
    game = _mlp()
    a = leverage_shapley(game, N, budget=200, generator=_gen(4))
    b = leverage_shapley(game, N, budget=200, generator=_gen(4))
    assert torch.equal(a.values, b.values)
    with pytest.raises(InvalidParameterError, match="at least 22") as err:
        paired_kernel_shapley(game, N, budget=20, generator=_gen(0))
    assert err.value.parameter == "budget"


# -- the designs' fast paths (issue 16 req. 7) -------------------------------------------------
def _play(design, game):
    return design.solve(torch.as_tensor(game(design.rows)).reshape(design.rows.shape[0], -1))


def test_unpaired_kernel_design_is_exact_on_additive_games_and_fills_the_budget():
    game = _additive()
    exact = exact_shapley(game, N)
    for seed in range(5):
        design = KernelDesign(N, 101, _gen(seed), paired=False)
        assert design.rows.shape == (101, N)  # the two ends and 99 i.i.d. draws
        phi, se = _play(design, game)
        torch.testing.assert_close(phi[:, 0], exact, atol=1e-10, rtol=0)
    with pytest.raises(InvalidParameterError, match="at least 12") as err:
        KernelDesign(N, 11, _gen(0), paired=False)
    assert err.value.parameter == "budget"


@pytest.mark.parametrize("paired", [True, False])
def test_kernel_jackknife_from_group_sums_equals_resolving_each_group(paired):
    game = _mlp(n_out=2)
    design = KernelDesign(N, 200, _gen(3), paired=paired)
    phi, se = _play(design, game)
    v = torch.as_tensor(game(design.rows)).double()
    z, y, m = design.rows[2:].double(), v[2:] - v[0], design.m
    total = (v[1] - v[0]).unsqueeze(0)
    # per draw: its share of A and b (a pair's two rows each count half)
    parts = [(z[:m], y[:m]), (z[m:], y[m:])] if paired else [(z, y)]
    a = sum(zz.unsqueeze(2) * zz.unsqueeze(1) for zz, _ in parts) / len(parts)
    b = sum(zz.unsqueeze(2) * yy.unsqueeze(1) for zz, yy in parts) / len(parts)
    torch.testing.assert_close(phi, constrained_solve(a.mean(0), b.mean(0), total), atol=1e-12,
                               rtol=0)
    loo = torch.stack([constrained_solve(a[design.group != g].mean(0),
                                         b[design.group != g].mean(0), total)
                       for g in range(int(design.group.max()) + 1)])
    g = loo.shape[0]
    ref = ((g - 1) / g * ((loo - loo.mean(0)) ** 2).sum(0)).sqrt()
    torch.testing.assert_close(se, ref, atol=1e-12, rtol=1e-9)


def test_leverage_normal_equations_equal_minimum_norm_lstsq():
    for d, budget in ((N, 300), (7, 60)):
        design = LeverageDesign(d, budget, _gen(5))
        xs = torch.randn(d, dtype=torch.float64)
        v = (design.rows.double() * xs).tanh().sum(1, keepdim=True) * torch.tensor([1.0, -2.0])
        rows, y, delta = design.rows[2:], v[2:] - v[0], v[1] - v[0]
        use = torch.stack([torch.ones(design.n_pairs, dtype=torch.bool), design.group != 0])
        fits = _leverage_fits(rows, y, delta, use)
        for f in range(2):  # the old solver: weighted lstsq (gelsd) on the used rows
            keep = torch.cat([use[f], use[f]])
            zz, yy = rows[keep].double(), y[keep]
            s = zz.sum(1)
            counts = torch.bincount(s.long(), minlength=d + 1).double()
            w = (1.0 / (s * (d - s) * counts[s.long()])).sqrt().unsqueeze(1)
            perp = torch.linalg.lstsq((zz - s.unsqueeze(1) / d) * w,
                                      (yy - (s / d).unsqueeze(1) * delta) * w,
                                      driver="gelsd").solution
            ref = perp - perp.mean(0, keepdim=True) + delta / d
            torch.testing.assert_close(fits[f], ref, atol=1e-10, rtol=0)


@pytest.mark.parametrize(("d", "s", "count", "middle"),
                         [(20, 6, 300, False), (20, 10, 500, True), (8, 3, 56, False),
                          (10, 5, 126, True)])
def test_distinct_subsets_are_distinct_of_the_right_size(d, s, count, middle):
    z = _distinct_subsets(d, s, count, middle, _gen(0))
    assert z.shape == (count, d)
    assert z.sum(1).eq(s).all()
    assert len({tuple(r) for r in z.tolist()}) == count
    if middle:
        assert z[:, d - 1].all()


def test_distinct_subsets_by_rejection_are_uniform():
    # pool C(20, 4) = 4845 > 4096: the vectorised rejection path; every player is in a uniform
    # subset of size 4 with probability 4/20
    z = _distinct_subsets(20, 4, 1000, False, _gen(1))
    freq = z.double().mean(0)
    assert float((freq - 0.2).abs().max()) < 4 * math.sqrt(0.2 * 0.8 / 1000)
