"""Shapley sampling: exact efficiency, exactness on second-order games, closeness to exact values.

These tests are about the sampler, so they pass ``max_exact=0``: their models have few enough
features (d <= 10) that the default would enumerate every coalition instead (see
test_exact_shapley.py).
"""

from __future__ import annotations

import models
import torch

import xai


def _poly(seed=0, d=6):
    gen = torch.Generator().manual_seed(seed)
    return models.Polynomial2(torch.randn(d, generator=gen), torch.randn(d, d, generator=gen))


def _poly_shapley(model, x):
    # Baseline 0: phi_j = a_j x_j + sum_{k != j} B_jk x_j x_k / 2 (each pair split equally).
    b = model.b + model.b.T
    return model.a * x + x * (b @ x) / 2


def test_efficiency_holds_exactly(mlp3):
    x = torch.randn(3, 6, generator=torch.Generator().manual_seed(0))
    exp = xai.explain(mlp3, x, method="shapley_sampling", target="all", n_permutations=6,
                      max_exact=0, random_state=0)
    torch.testing.assert_close(exp.values.sum(-1), exp.predictions - exp.base_values,
                               rtol=0, atol=1e-5)


def test_antithetic_pairs_are_exact_for_second_order_polynomials():
    # In a degree-2 game, feature j's gain in a permutation is a_j x_j + sum of B_jk x_j x_k over
    # k placed before j; the reversed permutation places exactly the other k's before j, so each
    # antithetic pair averages to the exact Shapley value.
    model = _poly()
    x = torch.randn(2, 6, generator=torch.Generator().manual_seed(1))
    exp = xai.explain(model, x, method="shapley_sampling", n_permutations=2, max_exact=0,
                      random_state=3)
    for i in range(2):
        torch.testing.assert_close(exp.values[i, 0], _poly_shapley(model, x[i]), rtol=0, atol=1e-5)


def test_plain_sampling_within_four_standard_errors():
    model = _poly(seed=2, d=8)
    x = torch.randn(1, 8, generator=torch.Generator().manual_seed(2))
    exp = xai.explain(model, x, method="shapley_sampling", n_permutations=400, antithetic=False,
                      max_exact=0, random_state=0)
    err = (exp.values[0, 0] - _poly_shapley(model, x[0])).abs()
    se = exp.extras["stderr"][0, 0]
    assert bool((err <= 4 * se + 1e-6).all()), (err, se)
    # and the standard error is an honest 1/sqrt(n) estimate: 4x the permutations halves it
    exp4 = xai.explain(model, x, method="shapley_sampling", n_permutations=1600, antithetic=False,
                       max_exact=0, random_state=1)
    ratio = float(exp4.extras["stderr"].mean() / se.mean())
    assert abs(ratio - 0.5) < 0.1


def test_dummy_feature_gets_exactly_zero():
    w = torch.tensor([1.0, 0.0, -2.0, 0.5])
    exp = xai.explain(models.Linear(w), torch.randn(2, 4), method="shapley_sampling",
                      n_permutations=4, antithetic=False, max_exact=0, random_state=0)
    assert bool((exp.values[:, 0, 1] == 0).all())


def test_close_to_exact_shapley_on_text(tiny_bert):
    model, tok = tiny_bert
    text = ["a very boring plot"]
    exp = xai.explain((model, tok), text, method="shapley_sampling", target=1,
                      n_permutations=200, max_exact=0, random_state=0)
    fs = exp.features[0]
    adapter = xai.as_adapter((model, tok))

    def value(keep):
        with torch.no_grad():
            return adapter.predict(fs.mask(keep))[:, 1]

    exact = models.exact_shapley(value, fs.n_features).float()
    se = exp.extras["stderr"][0, 0]
    err = (exp.values[0, 0] - exact).abs()
    assert bool((err <= 4 * se + 1e-5).all()), (err, se)


def test_seeds():
    model = _poly(seed=4)
    x = torch.randn(2, 6, generator=torch.Generator().manual_seed(4))
    kw = {"method": "shapley_sampling", "n_permutations": 5, "antithetic": False, "max_exact": 0}
    a = xai.explain(model, x, random_state=7, **kw).values
    b = xai.explain(model, x, random_state=7, **kw).values
    c = xai.explain(model, x, random_state=8, **kw).values
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.allclose(a, c)


def test_params_on_a_classifier_are_only_the_classical_fields(tiny_bert):
    # the language-model fields (value, max_new_tokens, threshold, ...) belong to textgenshap
    exp = xai.explain(tiny_bert, ["a very boring plot"], method="shapley_sampling",
                      n_permutations=2, random_state=0)
    assert dict(exp.params) == {"n_permutations": 2, "antithetic": True, "baseline": "auto",
                                "granularity": "auto", "feature_groups": None,
                                "max_exact": 1024, "estimator": "permutation", "budget": None,
                                "tolerance": None, "max_budget": 20_000}
