"""Stratified SVARM (Kolpaczki et al., AAAI 2024) on the known-answer games of the spec
(methods/shapley_estimators.md, sections 2(d), 5 and 7; n = 10)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import torch

from xai.exceptions import InvalidParameterError
from xai.methods._coalitions import _all_coalitions, _exact_from_values, exact_shapley
from xai.methods._svarm import (
    StratifiedDesign,
    size_distribution,
    stratified_least_rows,
    stratified_shapley,
)

N = 10
Game = Callable[[torch.Tensor], torch.Tensor]
Mlp = tuple[torch.Tensor, torch.Tensor]


def _table_game(values: np.ndarray | torch.Tensor, n: int = N) -> Game:
    """A game given by its value on every coalition (row index = bit mask, as _all_coalitions)."""
    table = torch.as_tensor(values, dtype=torch.float64)
    bits = 1 << torch.arange(n)

    def game(z: torch.Tensor) -> torch.Tensor:
        return table.index_select(0, (z.long() * bits).sum(1))

    return game


def _mlp_values() -> torch.Tensor:
    """The spec's MLP game: v(S) = tanh-MLP(x * z), 16 hidden units, baseline 0, default_rng(3)."""
    rng = np.random.default_rng(3)
    w1 = rng.normal(size=(16, N)) * 2 / np.sqrt(N)
    b1, w2 = rng.normal(size=16) * 0.5, rng.normal(size=16) / np.sqrt(16)
    x = rng.normal(size=N)
    z = _all_coalitions(N).numpy()
    return torch.as_tensor(np.tanh((z * x) @ w1.T + b1) @ w2)


def _additive_values() -> torch.Tensor:
    a = np.random.default_rng(1).normal(size=N)
    return torch.as_tensor(_all_coalitions(N).numpy() @ a + 0.3)


def _order2_values() -> torch.Tensor:
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=N), np.triu(rng.normal(scale=0.5, size=(N, N)), 1)
    z = _all_coalitions(N).numpy().astype(float)
    return torch.as_tensor(0.3 + z @ a + np.einsum("ki,ij,kj->k", z, b, z))


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _run(values: torch.Tensor, budget: int, seeds: range, efficient: bool
         ) -> tuple[torch.Tensor, torch.Tensor]:
    game = _table_game(values)
    phis, ses = [], []
    for seed in seeds:
        design = StratifiedDesign(N, budget, _gen(seed), efficient=efficient)
        phi, se = design.solve(game(design.rows))
        phis.append(phi[:, 0])
        ses.append(se[:, 0])
    return torch.stack(phis), torch.stack(ses)


@pytest.fixture(scope="module")
def mlp() -> Mlp:
    v = _mlp_values()
    return v, _exact_from_values(v, N).values


def test_mlp_game_is_the_spec_game(mlp: Mlp) -> None:
    v, phi = mlp
    assert v[0].item() == pytest.approx(0.459105, abs=1e-6)
    assert v[-1].item() == pytest.approx(0.452320, abs=1e-6)
    assert phi.pow(2).mean().sqrt().item() == pytest.approx(0.175361, abs=1e-6)


@pytest.mark.parametrize("n", [4, 5, 6, 9, 10, 13])
def test_rows_exact_part_warm_up_and_draws(n: int) -> None:
    """Section 5: 2n + 2 exact rows + 2 sum_{s=2}^{n-2} ceil(n/s) warm-up rows + one per draw;
    the warm-up gives every sampled stratum exactly one sample; draws have sizes 2..n-2."""
    warm = 2 * sum(math.ceil(n / s) for s in range(2, n - 1))
    budget = 2 * n + 2 + warm + 37
    design = StratifiedDesign(n, budget, _gen(0))
    rows, size = design.rows, design.rows.sum(1)
    assert rows.shape == (budget, n)
    assert rows.dtype == torch.bool
    assert design.n_fixed == 2 * n + 2 + warm
    assert design.n_draws == 37
    assert stratified_least_rows(n) == 2 * n + 2 + warm + 1
    assert not rows[0].any()
    assert rows[1].all()
    assert torch.equal(rows[2:2 + n], torch.eye(n, dtype=torch.bool))
    assert torch.equal(rows[2 + n:2 + 2 * n], ~torch.eye(n, dtype=torch.bool))
    # the exact part updates every stratum it touches: plus = members, minus = the others
    exact = slice(0, 2 * n + 2)
    assert torch.equal(design.plus[exact], rows[exact])
    assert torch.equal(design.minus[exact], ~rows[exact])
    wp, wm = design.plus[2 * n + 2:design.n_fixed], design.minus[2 * n + 2:design.n_fixed]
    ws = size[2 * n + 2:design.n_fixed]
    assert not (wp & wm).any()
    assert (wp <= rows[2 * n + 2:design.n_fixed]).all()  # own players are members ...
    assert (wm <= ~rows[2 * n + 2:design.n_fixed]).all()  # ... or outsiders of the complement
    for s in range(2, n - 1):
        plus_rows = wp.any(1) & (ws == s)
        minus_rows = wm.any(1) & (ws == n - s)
        assert int(plus_rows.sum()) == int(minus_rows.sum()) == math.ceil(n / s)
        assert (wp[plus_rows].sum(0) == 1).all()  # one sample of phi+_{i,s-1} for each i
        assert (wm[minus_rows].sum(0) == 1).all()  # one sample of phi-_{i,n-s} for each i
    draws = slice(design.n_fixed, None)
    assert ((size[draws] >= 2) & (size[draws] <= n - 2)).all()
    assert torch.equal(design.plus[draws], rows[draws])
    assert torch.equal(design.minus[draws], ~rows[draws])


def test_size_distribution_is_the_papers() -> None:
    for n in (4, 5, 10, 11):
        p = size_distribution(n)
        assert p.sum().item() == pytest.approx(1.0, abs=1e-12)
        assert p[:2].sum() == 0
        assert p[n - 1:].sum() == 0
        torch.testing.assert_close(p, p.flip(0))
    p = size_distribution(10)
    nl = 10 * math.log(10)
    assert p[2].item() == pytest.approx((nl - 1) / (4 * nl * (1 + 1 / 2 + 1 / 3 + 1 / 4 - 1)))
    assert p[5].item() == pytest.approx(1 / nl)
    assert size_distribution(11)[3].item() == pytest.approx(1 / (6 * (1 / 2 + 1 / 3 + 1 / 4 + 1 / 5)))


def test_same_seed_same_rows_and_values(mlp: Mlp) -> None:
    game = _table_game(mlp[0])
    a = stratified_shapley(game, N, budget=200, generator=_gen(7))
    b = stratified_shapley(game, N, budget=200, generator=_gen(7))
    c = stratified_shapley(game, N, budget=200, generator=_gen(8))
    assert torch.equal(a.values, b.values)
    assert torch.equal(a.stderr, b.stderr)
    assert torch.equal(StratifiedDesign(N, 200, _gen(7)).rows, StratifiedDesign(N, 200, _gen(7)).rows)
    assert not torch.equal(a.values, c.values)


def _loop_reference(design: StratifiedDesign, v: torch.Tensor) -> torch.Tensor:
    """The paper's running means, one row at a time: the exact part and the draws update
    phi+_{i,|A|-1} for i in A and phi-_{i,|A|} for i not in A; a warm-up row only the strata of
    its own players (the ``plus`` / ``minus`` masks)."""
    n = design.d
    y = (v - v[0]).tolist()
    mean = {(sign, i, ell): 0.0 for sign in "+-" for i in range(n) for ell in range(n)}
    count = dict.fromkeys(mean, 0)
    for r, row in enumerate(design.rows.tolist()):
        s = sum(row)
        warm = 2 * n + 2 <= r < design.n_fixed
        for i in range(n):
            if row[i] and (not warm or design.plus[r, i]):
                key = ("+", i, s - 1)
            elif not row[i] and (not warm or design.minus[r, i]):
                key = ("-", i, s)
            else:
                continue
            count[key] += 1
            mean[key] += (y[r] - mean[key]) / count[key]
    assert all(c > 0 for c in count.values())  # every stratum filled after the warm-up
    return torch.tensor([sum(mean["+", i, ell] - mean["-", i, ell] for ell in range(n)) / n
                         for i in range(n)], dtype=torch.float64)


def test_solve_matches_a_loop_over_rows(mlp: Mlp) -> None:
    game = _table_game(mlp[0])
    for seed, budget in ((0, 63), (1, 128), (2, 300)):
        design = StratifiedDesign(N, budget, _gen(seed), efficient=False)
        v = game(design.rows)
        torch.testing.assert_close(design.solve(v)[0][:, 0], _loop_reference(design, v),
                                   atol=1e-12, rtol=0)


def test_raw_rmse_on_the_mlp_game_matches_the_spec(mlp: Mlp) -> None:
    """SE-4, Stratified SVARM: RMSE 0.05272 at B = 128 over 200 seeds (ours: 0.0542)."""
    phi, _ = _run(mlp[0], 128, range(200), efficient=False)
    rmse = (phi - mlp[1]).pow(2).mean().sqrt().item()
    assert rmse == pytest.approx(0.05272, rel=0.10)


def test_efficient_normalisation(mlp: Mlp) -> None:
    v, _ = mlp
    delta = v[-1] - v[0]
    raw, _ = _run(v, 128, range(20), efficient=False)
    eff, _ = _run(v, 128, range(20), efficient=True)
    torch.testing.assert_close(eff.sum(1), delta.expand(20), atol=1e-10, rtol=0)
    assert (raw.sum(1) - delta).abs().max() > 1e-3  # the paper's estimator is not efficient
    # phi += (Delta - sum phi) / n: the same shift for every player
    shift = eff - raw
    torch.testing.assert_close(shift, shift[:, :1].expand_as(shift), atol=1e-12, rtol=0)


@pytest.mark.parametrize(("values", "seeds", "spec_max"), [
    (_additive_values, 20, 0.464),  # SE-2: not exact on an additive game
    (_order2_values, 50, 1.12),  # SE-3: nor on an order-2 game
])
def test_not_exact_on_additive_and_order_two_games(
        values: Callable[[], torch.Tensor], seeds: int, spec_max: float) -> None:
    v = values()
    exact = _exact_from_values(v, N).values
    for efficient in (False, True):
        phi, _ = _run(v, 128, range(seeds), efficient=efficient)
        worst = (phi - exact).abs().max().item()
        assert 0.1 < worst < 2 * spec_max  # ours, raw: 0.435 (additive), 1.44 (order 2)


def test_symmetric_game_is_exact() -> None:
    """v(A) = g(|A|): every stratum is constant, so every estimate is Delta / n, SE 0."""
    g = torch.tensor([0.3, 1.0, -2.0, 0.5, 4.0, 1.5, 0.0, 2.5, -1.0, 3.0, 0.7], dtype=torch.float64)
    v = g[_all_coalitions(N).sum(1)]
    for efficient in (False, True):
        phi, se = _run(v, 100, range(3), efficient=efficient)
        torch.testing.assert_close(phi, torch.full_like(phi, 0.4 / N), atol=1e-12, rtol=0)
        assert (se.abs() < 1e-7).all()


@pytest.mark.parametrize("efficient", [True, False])
def test_stderr_is_calibrated(mlp: Mlp, efficient: bool) -> None:
    """200 seeds, B = 256: the exact value within 2 SE in ~95% of (seed, player) draws (ours:
    0.946 normalised, 0.949 raw), mean SE / empirical SD near 1 (0.97, 1.00)."""
    phi, se = _run(mlp[0], 256, range(200), efficient=efficient)
    cover = ((phi - mlp[1]).abs() <= 2 * se).double().mean().item()
    assert 0.90 <= cover <= 0.98
    ratio = se.mean() / phi.std(0).mean()
    assert 0.8 <= ratio <= 1.25
    per_player = se.mean(0) / phi.std(0)
    assert ((per_player > 0.7) & (per_player < 1.4)).all()


def test_rows_scored_once_in_row_order(mlp: Mlp) -> None:
    game = _table_game(mlp[0])
    seen: list[torch.Tensor] = []

    def counted(z: torch.Tensor) -> torch.Tensor:
        seen.append(z.clone())
        out: torch.Tensor = game(z)
        return out

    res = stratified_shapley(counted, N, budget=150, generator=_gen(3), batch_size=16)
    design = StratifiedDesign(N, 150, _gen(3))
    assert torch.equal(torch.cat(seen), design.rows)
    assert res.n_evaluations == 150
    assert not res.exact
    assert res.values.shape == res.stderr.shape == (N,)
    torch.testing.assert_close(res.values, design.solve(game(design.rows))[0][:, 0])
    assert res.empty_value.item() == pytest.approx(mlp[0][0].item())
    assert res.full_value.item() == pytest.approx(mlp[0][-1].item())


def test_multi_column_scores_are_solved_per_column(mlp: Mlp) -> None:
    v, _ = mlp
    other = _additive_values()
    design = StratifiedDesign(N, 180, _gen(4))
    a, b = _table_game(v)(design.rows), _table_game(other)(design.rows)
    phi, se = design.solve(torch.stack([a, b], 1))
    assert phi.shape == se.shape == (N, 2)
    assert phi.dtype == se.dtype == torch.float64
    for col, scores in enumerate((a, b)):
        p, s = design.solve(scores)
        torch.testing.assert_close(phi[:, col], p[:, 0], atol=1e-14, rtol=0)
        torch.testing.assert_close(se[:, col], s[:, 0], atol=1e-14, rtol=0)


def test_small_budget_is_refused_with_the_minimum() -> None:
    with pytest.raises(InvalidParameterError, match=r"at least 63 value rows") as err:
        StratifiedDesign(N, 62, _gen(0), owner="svarm")
    assert err.value.parameter == "budget"
    assert err.value.owner == "svarm"
    with pytest.raises(InvalidParameterError, match="budget"):
        stratified_shapley(_table_game(_mlp_values()), N, budget=40, generator=_gen(0))
    # the minimum works: one draw, every stderr finite
    design = StratifiedDesign(N, 63, _gen(0))
    phi, se = design.solve(_table_game(_mlp_values())(design.rows))
    assert design.rows.shape[0] == 63
    assert torch.isfinite(se).all()
    assert (se > 0).all()


@pytest.mark.parametrize("n", [1, 2, 3])
def test_below_four_players_the_design_enumerates(n: int) -> None:
    """No sampled strata below 4 players: the exact part is all 2^n coalitions, the values are
    exact (SE 0); a smaller budget is refused, pointing at exact enumeration."""
    rng = np.random.default_rng(n)
    v = torch.as_tensor(rng.normal(size=2**n))
    game = _table_game(v, n)
    with pytest.raises(InvalidParameterError, match="exact enumeration") as err:
        StratifiedDesign(n, 2**n - 1, _gen(0))
    assert err.value.parameter == "budget"
    for efficient in (True, False):
        design = StratifiedDesign(n, 2**n + 5, _gen(0), efficient=efficient)
        assert design.rows.shape[0] == 2**n == len(set(map(tuple, design.rows.tolist())))
        phi, se = design.solve(game(design.rows))
        torch.testing.assert_close(phi[:, 0], exact_shapley(game, n), atol=1e-12, rtol=0)
        assert (se == 0).all()


def test_enumerates_when_the_budget_covers_every_coalition() -> None:
    n = 6
    v = torch.as_tensor(np.random.default_rng(0).normal(size=2**n))
    res = stratified_shapley(_table_game(v, n), n, budget=64, generator=_gen(0))
    assert res.exact
    assert res.n_evaluations == 64
    torch.testing.assert_close(res.values, exact_shapley(_table_game(v, n), n))
