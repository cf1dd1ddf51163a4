"""``shapley_sampling``'s estimators and budget (issue 16): the regression estimators play the
same streamed game as the permutations, on tabular and text inputs."""

from __future__ import annotations

import pytest
import torch

import xai
from tests import models
from xai.exceptions import InvalidParameterError

X = torch.randn(4, 8, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def quadratic():
    g = torch.Generator().manual_seed(3)
    return models.Polynomial2(torch.randn(8, generator=g), torch.randn(8, 8, generator=g))


def _exact(model, x):
    return xai.explain(model, x, method="shapley_sampling", max_exact=256, target=0)


@pytest.mark.parametrize("estimator", ["kernel", "leverage"])
def test_paired_regressions_are_exact_on_a_quadratic_model(quadratic, estimator):
    exact = _exact(quadratic, X)
    exp = xai.explain(quadratic, X, method="shapley_sampling", estimator=estimator, budget=120,
                      max_exact=0, target=0, random_state=0)
    assert not exp.extras["exact"].any()
    assert exp.extras["estimator"] == estimator
    torch.testing.assert_close(exp.values, exact.values, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("estimator", ["permutation", "kernel", "leverage", "adjusted",
                                       "stratified"])
def test_budget_bounds_the_rows_and_efficiency_holds(mlp3, estimator):
    x = torch.randn(3, 6, generator=torch.Generator().manual_seed(1))
    exp = xai.explain(mlp3, x, method="shapley_sampling", estimator=estimator, budget=50,
                      max_exact=0, target=[0, 2, 1], random_state=0)
    rows = 2 + 8 * 5 if estimator == "permutation" else 50
    assert exp.extras["n_rows"].tolist() == [rows] * 3  # per example, <= budget
    torch.testing.assert_close(exp.values.sum(-1), exp.predictions - exp.base_values,
                               atol=1e-5, rtol=0)
    assert (exp.extras["stderr"] > 0).all()


def test_a_budget_that_covers_every_coalition_enumerates(mlp3):
    x = torch.randn(2, 6, generator=torch.Generator().manual_seed(2))
    exp = xai.explain(mlp3, x, method="shapley_sampling", estimator="leverage", budget=64,
                      max_exact=0, target=0)
    assert exp.extras["exact"].all()
    torch.testing.assert_close(exp.values, _exact(mlp3, x).values)


def test_leverage_on_words_of_a_text_model(tiny_bert, texts):
    model, tok = tiny_bert
    exp = xai.explain((model, tok), texts, method="shapley_sampling", estimator="leverage",
                      budget=24, max_exact=0, random_state=0)
    torch.testing.assert_close(exp.values.sum(-1), exp.predictions - exp.base_values,
                               atol=1e-4, rtol=0)
    again = xai.explain((model, tok), texts, method="shapley_sampling", estimator="leverage",
                        budget=24, max_exact=0, random_state=0)
    assert torch.equal(exp.values, again.values)


def test_too_small_a_budget_is_a_typed_error(quadratic):
    with pytest.raises(InvalidParameterError, match="at least 18") as err:
        xai.explain(quadratic, X, method="shapley_sampling", estimator="kernel", budget=10,
                    max_exact=0, target=0)
    assert err.value.parameter == "budget"
    with pytest.raises(InvalidParameterError) as err:
        xai.explain(quadratic, X, method="shapley_sampling", estimator="svarm2", target=0)
    assert err.value.parameter == "estimator"


@pytest.mark.parametrize("estimator", ["permutation", "kernel", "leverage", "adjusted"])
def test_tolerance_draws_rounds_until_every_stderr_is_within_it(estimator):
    model = models.mlp(n_in=12, seed=2)
    x = torch.randn(3, 12, generator=torch.Generator().manual_seed(5))
    exp = xai.explain(model, x, method="shapley_sampling", estimator=estimator, budget=60,
                      tolerance=0.03, max_budget=20_000, max_exact=0, target=0, random_state=0)
    assert exp.extras["converged"].all()
    assert float(exp.extras["stderr"].max()) <= 0.03
    assert (exp.extras["n_rounds"] > 1).any()  # one round of 60 rows is not that precise
    rounds, rows = exp.extras["n_rounds"], exp.extras["n_rows"]
    assert rows.tolist() == (rounds * (2 + 4 * 11 if estimator == "permutation" else 60)).tolist()
    torch.testing.assert_close(exp.values.sum(-1), exp.predictions - exp.base_values,
                               atol=1e-5, rtol=0)
    exact = xai.explain(model, x, method="shapley_sampling", max_exact=4096, target=0)
    err = (exp.values - exact.values).abs()
    assert float((err <= 3 * exp.extras["stderr"] + 1e-6).double().mean()) >= 0.95


def test_max_budget_stops_the_rounds_and_says_so():
    model = models.mlp(n_in=12, seed=2)
    x = torch.randn(2, 12, generator=torch.Generator().manual_seed(5))
    exp = xai.explain(model, x, method="shapley_sampling", estimator="leverage", budget=60,
                      tolerance=1e-6, max_budget=200, max_exact=0, target=0, random_state=0)
    assert not exp.extras["converged"].any()
    assert exp.extras["n_rows"].tolist() == [180, 180]  # a 4th round would pass 200
    assert exp.extras["n_rounds"].tolist() == [3, 3]


@pytest.mark.parametrize(("budget", "chosen"), [(26, "leverage"), (25, "permutation"),
                                                 (300, "adjusted"), (1024, "adjusted"),
                                                 (1025, "leverage"), (4096, "exact")])
def test_auto_chooses_by_features_and_budget_and_records_it(budget, chosen):
    # 12 features: Leverage SHAP from 2 * 12 + 2 = 26 rows on (adjusted from 256 to 1024), one
    # antithetic pair (24 rows) below that, every coalition once 2**12 rows fit
    model = models.mlp(n_in=12, seed=2)
    x = torch.randn(2, 12, generator=torch.Generator().manual_seed(5))
    kw = {"budget": budget, "max_exact": 0, "target": 0, "random_state": 4}
    auto = xai.explain(model, x, method="shapley_sampling", estimator="auto", **kw)
    assert auto.extras["estimator"] == chosen
    same = xai.explain(model, x, method="shapley_sampling",
                       estimator="leverage" if chosen == "exact" else chosen, **kw)
    torch.testing.assert_close(auto.values, same.values, rtol=0, atol=0)
    assert auto.extras["exact"].tolist() == [chosen == "exact"] * 2
    assert (auto.extras["n_rows"] <= budget).all()


def test_auto_records_a_choice_per_example_when_they_differ(tiny_bert):
    model, tok = tiny_bert
    texts = ["good", "a fine and quite long film about nothing at all really and truly",
             "a fine and quite long film about nothing at all really and truly so bad"]
    exp = xai.explain((model, tok), texts, method="shapley_sampling", estimator="auto",
                      budget=30, random_state=0)
    # 1 word: enumerated; 13 words: 2 * 13 + 2 <= 30 rows span the regression; 15 words: not,
    # but one antithetic pair (2 + 2 * 14 = 30 rows) fits
    assert [len(n) for n in exp.feature_names] == [1, 13, 15]
    assert exp.extras["estimator"] == ["exact", "leverage", "permutation"]
    assert exp.extras["n_rows"].tolist() == [2, 30, 30]
    one = xai.explain((model, tok), texts[1:2], method="shapley_sampling", estimator="auto",
                      budget=30, random_state=0)
    assert one.extras["estimator"] == "leverage"  # one name when every example agrees


def test_a_budget_below_one_permutation_pair_is_a_typed_error():
    model = models.mlp(n_in=12, seed=2)
    with pytest.raises(InvalidParameterError, match="at least 24 rows") as err:
        xai.explain(model, torch.zeros(1, 12), method="shapley_sampling", budget=23,
                    max_exact=0, target=0)
    assert err.value.parameter == "budget"
