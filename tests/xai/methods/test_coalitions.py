"""Known-answer tests of the coalition-game layer of TextGenSHAP (xai/methods/_coalitions.py).

The synthetic retrieval game and its expected values come from
shared/references/checks/textgenshap_check.py (TG-1..TG-7 of the spec).
"""

from __future__ import annotations

import itertools
import math
import re

import pytest
import torch

from xai.exceptions import InvalidParameterError
from xai.methods._coalitions import (
    answer_game,
    exact_shapley,
    hierarchical,
    permutation_shapley,
    shapley_shubik,
)

# --- the synthetic retrieval game of the spec --------------------------------------------------
ANS = ["Paris", None, "Lyon", "Paris", None, "Lyon"]  # answer each document supports
RANK = [3, 0, 1, 5, 2, 4]  # the generator trusts the highest-rank supporting document
EXPECTED = {
    "": [-0.25, 0, -0.25, -0.25, 0, -0.25],
    "Lyon": [-1 / 12, 0, 0.25, -7 / 12, 0, 5 / 12],
    "Paris": [1 / 3, 0, 0, 5 / 6, 0, -1 / 6],
}


def rag_generate(keep: torch.Tensor) -> list[str]:
    out = []
    for row in keep.tolist():
        docs = [d for d in range(6) if row[d] and ANS[d] is not None]
        out.append(ANS[max(docs, key=lambda d: RANK[d])] if docs else "")  # type: ignore[misc]
    return out


def by_answer(res_values: torch.Tensor, answers: tuple[str, ...]) -> dict[str, torch.Tensor]:
    return {a: res_values[:, j] for j, a in enumerate(answers)}


def brute_shapley(v, d: int) -> torch.Tensor:
    """Textbook Shapley formula over python sets (independent of the vectorised code)."""
    phi = torch.zeros(d, dtype=torch.float64)
    for j in range(d):
        others = [e for e in range(d) if e != j]
        for r in range(d):
            w = math.factorial(r) * math.factorial(d - r - 1) / math.factorial(d)
            for s in itertools.combinations(others, r):
                phi[j] += w * (v(set(s) | {j}) - v(set(s)))
    return phi


def set_game(fn, d: int):
    """Wrap a python function of a set into a batched value function (m, D) -> (m,)."""
    def value(keep: torch.Tensor) -> torch.Tensor:
        rows = [{i for i in range(d) if r[i]} for r in keep.tolist()]
        return torch.tensor([fn(s) for s in rows], dtype=torch.float64)
    return value


# --- exact -------------------------------------------------------------------------------------
def test_exact_shapley_shubik_matches_spec_values() -> None:
    res = shapley_shubik(rag_generate, 6)
    assert res.exact
    assert set(res.answers) == set(EXPECTED)
    got = by_answer(res.values, res.answers)
    for a, exp in EXPECTED.items():  # TG-1..TG-3
        torch.testing.assert_close(got[a], torch.tensor(exp, dtype=torch.float64),
                                   rtol=0, atol=1e-3)
        assert got[a][1] == 0
        assert got[a][4] == 0
    torch.testing.assert_close(got["Paris"][[0, 3, 5]],
                               torch.tensor([0.333, 0.833, -0.167], dtype=torch.float64),
                               rtol=0, atol=1e-3)
    # TG-5: zero-sum across answers; TG-4: efficiency per answer
    torch.testing.assert_close(res.values.sum(1), torch.zeros(6, dtype=torch.float64),
                               rtol=0, atol=1e-12)
    torch.testing.assert_close(res.values.sum(0), res.full_value - res.empty_value,
                               rtol=0, atol=1e-12)
    assert res.answers[0] == ""  # empty coalition is row 0, so "" is seen first
    assert res.n_evaluations == 64


def test_exact_shapley_matches_textbook_formula_on_random_game() -> None:
    gen = torch.Generator().manual_seed(3)
    table = torch.randn(2**5, generator=gen, dtype=torch.float64)

    def fn(s: set[int]) -> float:
        return float(table[sum(1 << i for i in s)])

    phi = exact_shapley(set_game(fn, 5), 5)
    torch.testing.assert_close(phi, brute_shapley(fn, 5), rtol=0, atol=1e-12)


def test_exact_shapley_one_call_and_batched_agree() -> None:
    calls: list[int] = []
    table = torch.randn(2**4, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)

    def value(keep: torch.Tensor) -> torch.Tensor:
        calls.append(keep.shape[0])
        idx = (keep.long() << torch.arange(4)).sum(1)
        return table[idx]

    phi = exact_shapley(value, 4)
    assert calls == [16]  # one batched call
    phi_b = exact_shapley(value, 4, batch_size=5)
    assert calls[1:] == [5, 5, 5, 1]
    torch.testing.assert_close(phi_b, phi, rtol=0, atol=0)
    assert phi.shape == (4, 3)
    torch.testing.assert_close(phi.sum(0), table[15] - table[0], rtol=0, atol=1e-12)


def test_single_player_is_v_full_minus_v_empty() -> None:
    phi = exact_shapley(set_game(lambda s: 5.0 if s else 2.0, 1), 1)
    torch.testing.assert_close(phi, torch.tensor([3.0], dtype=torch.float64), rtol=0, atol=0)


def test_no_players_gives_empty_values() -> None:
    value = set_game(lambda s: 4.0, 0)
    assert exact_shapley(value, 0).shape == (0,)
    res = permutation_shapley(value, 0, n_permutations=2, generator=torch.Generator(),
                              batch_size=4)
    assert res.values.shape == (0,)
    assert float(res.empty_value) == 4.0


def test_max_exact_error_message() -> None:
    msg = ("The 'max_exact' parameter of exact_shapley must be at least 2**n_players = 2048 to "
           "enumerate every coalition of 11 players. Got 1024 instead. Raise max_exact, or use "
           "permutation sampling (n_permutations) or hierarchical explanations for many players.")
    with pytest.raises(InvalidParameterError, match=re.escape(msg)) as info:
        exact_shapley(set_game(len, 11), 11)
    assert info.value.parameter == "max_exact"


# --- permutation sampling ----------------------------------------------------------------------
@pytest.mark.parametrize("antithetic", [True, False])
def test_sampling_within_002_of_exact_at_2000_permutations(antithetic: bool) -> None:
    res = shapley_shubik(rag_generate, 6, max_exact=0, n_permutations=2000,
                         antithetic=antithetic, generator=torch.Generator().manual_seed(0))
    assert not res.exact
    got = by_answer(res.values, res.answers)
    for a, exp in EXPECTED.items():  # TG-6
        err = (got[a] - torch.tensor(exp, dtype=torch.float64)).abs().max()
        assert err <= 0.02, (a, float(err))
        assert got[a][1] == 0
        assert got[a][4] == 0
    torch.testing.assert_close(res.values.sum(1), torch.zeros(6, dtype=torch.float64),
                               rtol=0, atol=1e-12)
    assert res.n_evaluations <= 2**6  # memoised: each coalition decoded at most once


def random_logprob_game(d: int, seed: int):
    table = -torch.rand(2**d, generator=torch.Generator().manual_seed(seed),
                        dtype=torch.float64) * 20

    def value(keep: torch.Tensor) -> torch.Tensor:
        return table[(keep.long() << torch.arange(d)).sum(1)]
    return value, table


@pytest.mark.parametrize("antithetic", [True, False])
def test_permutation_efficiency_is_exact(antithetic: bool) -> None:
    value, table = random_logprob_game(10, seed=4)
    res = permutation_shapley(value, 10, n_permutations=6, antithetic=antithetic,
                              generator=torch.Generator().manual_seed(2), batch_size=7)
    torch.testing.assert_close(res.values.sum(), table[-1] - table[0], rtol=0, atol=1e-9)
    torch.testing.assert_close(res.empty_value, table[0], rtol=0, atol=0)
    torch.testing.assert_close(res.full_value, table[-1], rtol=0, atol=0)


def test_antithetic_is_exact_on_second_order_game() -> None:
    d = 7
    gen = torch.Generator().manual_seed(5)
    a = torch.randn(d, generator=gen, dtype=torch.float64)
    b = torch.randn(d, d, generator=gen, dtype=torch.float64).triu(1)

    def value(keep: torch.Tensor) -> torch.Tensor:
        k = keep.double()
        return 0.7 + k @ a + ((k @ b) * k).sum(1)

    expected = a + (b + b.T).sum(1) / 2  # closed form: a_i + sum_j b_ij / 2
    res = permutation_shapley(value, d, n_permutations=2, generator=gen, batch_size=64)
    torch.testing.assert_close(res.values, expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(res.values, exact_shapley(value, d), rtol=0, atol=1e-12)
    torch.testing.assert_close(res.stderr, torch.full((d,), math.nan, dtype=torch.float64),
                               rtol=0, atol=0, equal_nan=True)  # one pair = one draw
    res4 = permutation_shapley(value, d, n_permutations=8, generator=gen, batch_size=64)
    torch.testing.assert_close(res4.stderr, torch.zeros(d, dtype=torch.float64),
                               rtol=0, atol=1e-12)
    plain = permutation_shapley(value, d, n_permutations=8, antithetic=False, generator=gen,
                                batch_size=64)
    assert (plain.values - expected).abs().max() > 1e-3  # plain sampling is not exact here


def test_memoisation_and_batching() -> None:
    d, p = 5, 40
    seen: list[torch.Tensor] = []
    value, _ = random_logprob_game(d, seed=0)

    def counting(keep: torch.Tensor) -> torch.Tensor:
        seen.append(keep.clone())
        return value(keep)

    res = permutation_shapley(counting, d, n_permutations=p,
                              generator=torch.Generator().manual_seed(0), batch_size=9)
    rows = torch.cat(seen)
    assert res.n_evaluations == rows.shape[0]
    assert torch.unique(rows, dim=0).shape[0] == rows.shape[0]  # no coalition twice
    assert res.n_evaluations <= 2 + p * (d - 1)
    assert res.n_evaluations <= 2**d  # 40 permutations of 5 players revisit coalitions
    assert max(s.shape[0] for s in seen) <= 9
    assert rows[0].sum() == 0
    assert rows[1].all()

    value12, _ = random_logprob_game(12, seed=0)
    big = permutation_shapley(value12, 12, n_permutations=4, antithetic=False,
                              generator=torch.Generator().manual_seed(0), batch_size=100)
    assert big.n_evaluations <= 2 + 4 * 11


def test_seeds_are_reproducible() -> None:
    value, _ = random_logprob_game(8, seed=1)

    def run(seed: int) -> torch.Tensor:
        return permutation_shapley(value, 8, n_permutations=4,
                                   generator=torch.Generator().manual_seed(seed),
                                   batch_size=32).values

    torch.testing.assert_close(run(7), run(7), rtol=0, atol=0)
    assert not torch.equal(run(7), run(8))
    state = torch.get_rng_state()
    run(7)
    assert torch.equal(torch.get_rng_state(), state)  # global RNG untouched


def test_odd_permutations_with_antithetic_raise() -> None:
    msg = ("The 'n_permutations' parameter of permutation_shapley must be even when "
           "antithetic=True (permutations come in pairs). Got 3 instead. Use 4 or "
           "antithetic=False.")
    with pytest.raises(InvalidParameterError, match=re.escape(msg)):
        permutation_shapley(set_game(len, 3), 3, n_permutations=3,
                            generator=torch.Generator(), batch_size=8)


# --- answer game -------------------------------------------------------------------------------
def test_answer_game_columns_grow_and_generations_are_cached() -> None:
    calls: list[int] = []

    def generate(keep: torch.Tensor) -> list[str]:
        calls.append(keep.shape[0])
        return rag_generate(keep)

    answers, game = answer_game(generate)
    full = torch.ones(1, 6, dtype=torch.bool)
    torch.testing.assert_close(game(full), torch.ones(1, 1, dtype=torch.float64),
                               rtol=0, atol=0)
    assert answers == ["Paris"]  # document 3 (rank 5) is the most trusted
    keep = torch.tensor([[1, 0, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0], [0] * 6, [1, 0, 0, 0, 0, 0]],
                        dtype=torch.bool)
    out = game(keep)
    assert answers == ["Paris", "Lyon", ""]
    torch.testing.assert_close(out, torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]],
                                                 dtype=torch.float64), rtol=0, atol=0)
    game(keep)
    assert calls == [1, 3]
    assert game.n_generations == 4


def test_answer_game_normalize_merges_answers() -> None:
    answers, game = answer_game(lambda k: [" Paris", "Paris\n"][: k.shape[0]],
                                normalize=str.strip)
    out = game(torch.tensor([[1], [0]], dtype=torch.bool))
    assert answers == ["Paris"]
    torch.testing.assert_close(out, torch.ones(2, 1, dtype=torch.float64), rtol=0, atol=0)


# --- hierarchical ------------------------------------------------------------------------------
WORD_W = torch.tensor([0.01, 0.02, 0.0, 0.01,  # doc 0: sentences (0,1) (2,3)
                       0.05, 0.60, 0.30, 0.01,  # doc 1: sentences (4,5) (6,7)
                       0.0, 0.0], dtype=torch.float64)  # doc 2: sentence (8,9)
DOCS = [(0, 1, 2, 3), (4, 5, 6, 7), (8, 9)]
SENTS = {(0, 1, 2, 3): [(0, 1), (2, 3)], (4, 5, 6, 7): [(4, 5), (6, 7)], (8, 9): [(8, 9)]}


def expand_unit(unit: tuple[int, ...]) -> list[tuple[int, ...]]:
    if unit in SENTS:
        return SENTS[unit]
    return [(w,) for w in unit] if len(unit) > 1 else []


def explain_units(players: list[tuple[int, ...]]) -> torch.Tensor:
    """Exact Shapley of v(S) = f(words of S), f additive + one within-sentence interaction."""
    def f(words: set[int]) -> float:
        return float(sum(WORD_W[w] for w in words)) + (0.1 if {4, 5} <= words else 0.0)

    d = len(players)
    return brute_shapley(lambda s: f({w for i in s for w in players[i]}), d)


def test_hierarchical_expands_only_units_above_threshold() -> None:
    tree = hierarchical(explain_units, expand_unit, DOCS, levels=3, threshold=0.3)
    by_level = {z: [(e.unit, round(float(e.value), 12)) for e in tree if e.level == z]
                for z in range(3)}
    assert by_level[0] == [((0, 1, 2, 3), 0.04), ((4, 5, 6, 7), 1.06), ((8, 9), 0.0)]
    # doc 1 expanded into its sentences; docs 0 and 2 stay whole players
    assert by_level[1] == [((0, 1, 2, 3), 0.04), ((4, 5), 0.75), ((6, 7), 0.31), ((8, 9), 0.0)]
    # sentence (4, 5) (score 0.75 / 1.1) expanded; (6, 7) (0.28) not; docs never split later
    assert by_level[2] == [((0, 1, 2, 3), 0.04), ((4,), 0.1), ((5,), 0.65), ((6, 7), 0.31),
                           ((8, 9), 0.0)]
    # efficiency at every level: values sum to v(all) - v(empty) = 1.1
    for z in range(3):
        total = sum(float(e.value) for e in tree if e.level == z)
        assert abs(total - 1.1) < 1e-12
    # tree links: words point to their sentence, carried-over units to themselves
    word5 = next(e for e in tree if e.unit == (5,))
    assert tree[word5.parent].unit == (4, 5)  # type: ignore[index]
    assert tree[tree[word5.parent].parent].unit == (4, 5, 6, 7)  # type: ignore[index]
    assert [e.expanded for e in tree if e.level == 0] == [False, True, False]


def test_hierarchical_stops_when_nothing_exceeds_threshold() -> None:
    tree = hierarchical(explain_units, expand_unit, DOCS, levels=3, threshold=[0.99, 0.5])
    assert [e.level for e in tree] == [0, 0, 0]
    tree2 = hierarchical(explain_units, expand_unit, DOCS, levels=3, threshold=[0.5, 0.7])
    assert [e.unit for e in tree2 if e.level == 2] == []  # sentence score 0.68 < 0.7
    msg = ("The 'threshold' parameter of hierarchical must be a float in [0, 1] or a sequence "
           "of levels - 1 = 2 such floats. Got [0.3] instead.")
    with pytest.raises(InvalidParameterError, match=re.escape(msg)):
        hierarchical(explain_units, expand_unit, DOCS, levels=3, threshold=[0.3])


def test_hierarchical_with_answer_game_columns() -> None:
    """Multi-answer values: a document is expanded when its score for any answer is high."""
    def explain_docs(players: list[int]) -> torch.Tensor:
        def gen(keep: torch.Tensor) -> list[str]:
            full = torch.zeros(keep.shape[0], 6, dtype=torch.bool)
            for i, p in enumerate(players):
                full[:, p] = keep[:, i]
            return rag_generate(full)
        return shapley_shubik(gen, len(players)).values

    tree = hierarchical(explain_docs, lambda u: [], list(range(6)), levels=2, threshold=0.3)
    assert [e.unit for e in tree if e.expanded] == []  # nothing to split: one level only
    scores = {e.unit: e.score for e in tree}
    # "Paris": |phi| = [1/3, 0, 0, 5/6, 0, 1/6] / (4/3) -> doc 3 scores 0.625
    assert abs(scores[3] - 0.625) < 1e-12
    assert scores[1] == 0
    assert scores[4] == 0
