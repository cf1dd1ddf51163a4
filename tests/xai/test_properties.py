"""Property-based tests on random small models: completeness, efficiency, symmetry."""

from __future__ import annotations

import models
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import linear_problems

import xai


@settings(max_examples=50, deadline=None)
@given(linear_problems())
def test_every_method_is_exact_on_linear_models(problem):
    # On f(x) = w.x + b every attribution method of the toolkit equals w * (x - baseline).
    w, b, x, base = problem
    model = models.Linear(w, b)
    expected = w * (x - base)
    for method, params in (("ig", {"n_steps": 4}), ("occlusion", {}),
                           ("shapley_sampling", {"n_permutations": 2})):
        exp = xai.explain(model, x, method=method, baseline=base, random_state=0, **params)
        torch.testing.assert_close(exp.values[:, 0], expected, rtol=1e-5, atol=1e-4)


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 7), st.integers(0, 2**31 - 1), st.integers(0, 100))
def test_shapley_efficiency_and_symmetry(d, seed, state):
    # Efficiency holds for any permutation sample; two features that enter the model only
    # through their sum get identical values when their inputs are equal.
    gen = torch.Generator().manual_seed(seed)
    model = models.Polynomial2(torch.randn(d, generator=gen), torch.randn(d, d, generator=gen))
    x = torch.randn(1, d, generator=gen)
    exp = xai.explain(model, x, method="shapley_sampling", n_permutations=4, random_state=state)
    torch.testing.assert_close(exp.values.sum(-1), exp.predictions - exp.base_values,
                               rtol=0, atol=1e-4)
    sym = models.Linear(torch.tensor([1.5, 1.5, -0.5]))
    exp = xai.explain(sym, torch.tensor([[0.8, 0.8, 2.0]]), method="shapley_sampling",
                      n_permutations=2, random_state=state)
    torch.testing.assert_close(exp.values[0, 0, 0], exp.values[0, 0, 1], rtol=0, atol=1e-6)
