"""Faithfulness correlation, comprehensiveness/sufficiency/AOPC, log-odds, complexity: known answers."""

from __future__ import annotations

import dataclasses
import math

import models
import numpy as np
import pytest
import torch

import metrics
import xai

W = np.array([2.0, 1.0, -1.0])


def _bow_adapter():
    # Bag-of-words logistic model over word presence: p(y=1|z) = sigmoid(sum_t w_t z_t).
    def proba(z):
        p = 1 / (1 + np.exp(-(z @ W)))
        return np.stack([1 - p, p], axis=1)

    return xai.CallableAdapter(proba, output_names=["neg", "pos"])


def _bow_explanation(values=(2.0, 1.0, -1.0)):
    ad = _bow_adapter()
    exp = xai.explain(ad, np.ones((1, 3)), method="occlusion", target="pos")
    return dataclasses.replace(exp, values=torch.tensor([[list(values)]])), ad


def test_eraser_known_answers_on_bag_of_words():
    # Spec D-1..D-3: exact attribution a = w, k = 34% of 3 words -> the top word (w = 2).
    exp, ad = _bow_explanation()
    comp = metrics.Comprehensiveness(fraction=0.34)(exp, ad).scores
    suff = metrics.Sufficiency(fraction=0.34)(exp, ad).scores
    lo = metrics.LogOdds(fraction=0.34)(exp, ad).scores
    s = lambda t: 1 / (1 + math.exp(-t))  # noqa: E731
    torch.testing.assert_close(comp, torch.tensor([[s(2) - s(0)]]), rtol=0, atol=1e-6)
    torch.testing.assert_close(comp, torch.tensor([[0.380797]]), rtol=0, atol=1e-6)
    torch.testing.assert_close(suff, torch.tensor([[0.0]]), rtol=0, atol=1e-7)
    torch.testing.assert_close(lo, torch.tensor([[-0.566219]]), rtol=0, atol=1e-6)


def test_empty_rationale_scores_zero_and_is_flagged():
    exp, ad = _bow_explanation()
    res = metrics.Comprehensiveness(fraction=0.2)(exp, ad)  # floor(0.2 * 3) = 0 words
    torch.testing.assert_close(res.scores, torch.zeros(1, 1), rtol=0, atol=0)
    assert res.extras["n_empty_rationales"] == 1


def test_exact_attribution_beats_random_in_comprehensiveness():
    # Spec D-4: the exact ordering removes the most supportive words first.
    exact, ad = _bow_explanation()
    reversed_, _ = _bow_explanation((-1.0, 1.0, 2.0))
    m = metrics.Comprehensiveness(fraction=0.67)
    assert float(m(exact, ad).scores) > float(m(reversed_, ad).scores)


def test_aopc_is_the_mean_of_the_curve():
    gen = torch.Generator().manual_seed(0)
    model = models.Linear(torch.randn(20, generator=gen))
    x = torch.randn(2, 20, generator=gen)
    exp = xai.explain(model, x, method="occlusion")
    res = metrics.AOPCComprehensiveness()(exp, model)
    curve = res.extras["curve"]
    assert curve.shape == (2, 1, 5)
    torch.testing.assert_close(res.scores, curve.mean(-1), rtol=0, atol=1e-7)
    # of 20 features, 1% removes none, 5% the top one, 10% the top two: for a linear model
    # (identity "probabilities") the drop is exactly the sum of their occlusion values
    top = exp.values[:, 0].topk(2).values
    torch.testing.assert_close(curve[:, 0, 0], torch.zeros(2), rtol=0, atol=1e-6)
    torch.testing.assert_close(curve[:, 0, 1], top[:, 0], rtol=0, atol=1e-5)
    torch.testing.assert_close(curve[:, 0, 2], top.sum(-1), rtol=0, atol=1e-5)


def test_faithfulness_correlation_is_one_for_exact_linear_attributions():
    # Spec F-1/F-2: a = c * w * (x - baseline) on f = w.x + 0.3 gives mu_F = sign(c).
    gen = torch.Generator().manual_seed(0)
    model = models.Linear(torch.randn(20, generator=gen), 0.3)
    x = torch.randn(3, 20, generator=gen)
    exp = xai.explain(model, x, method="ig", n_steps=4)
    m = metrics.FaithfulnessCorrelation(subset_fraction=0.25, n_subsets=200)
    torch.testing.assert_close(m(exp, model, random_state=0).scores, torch.ones(3, 1),
                               rtol=0, atol=1e-6)
    neg = dataclasses.replace(exp, values=-2 * exp.values)
    torch.testing.assert_close(m(neg, model, random_state=0).scores, -torch.ones(3, 1),
                               rtol=0, atol=1e-6)


def test_gradient_like_attributions_are_multiplied_by_the_input_difference():
    # Spec F-3: plain gradients a = w compared with x - baseline perturbations -> 1.
    gen = torch.Generator().manual_seed(1)
    model = models.Linear(torch.randn(10, generator=gen))
    x = torch.randn(2, 10, generator=gen)
    exp = xai.explain(model, x, method="ig", n_steps=4, multiply_by_inputs=False)
    res = metrics.FaithfulnessCorrelation(n_subsets=50)(exp, model, random_state=0)
    torch.testing.assert_close(res.scores, torch.ones(2, 1), rtol=0, atol=1e-6)


def test_constant_attributions_give_nan_with_a_warning():
    gen = torch.Generator().manual_seed(2)
    model = models.Linear(torch.randn(10, generator=gen))
    exp = xai.explain(model, torch.randn(1, 10, generator=gen), method="occlusion")
    flat = dataclasses.replace(exp, values=torch.ones_like(exp.values))
    with pytest.warns(xai.XAIWarning, match="NaN"):
        res = metrics.FaithfulnessCorrelation(n_subsets=20)(flat, model, random_state=0)
    assert bool(res.scores.isnan().all())


def test_random_attributions_correlate_near_zero():
    # Spec F-5: attributions independent of the model give E[mu_F] ~ 0 with spread ~ 1/sqrt(T).
    gen = torch.Generator().manual_seed(3)
    model = models.Linear(torch.randn(30, generator=gen))
    x = torch.randn(40, 30, generator=gen)
    exp = xai.explain(model, x, method="occlusion")
    noise = dataclasses.replace(exp, values=torch.randn(exp.values.shape, generator=gen))
    res = metrics.FaithfulnessCorrelation(n_subsets=100)(noise, model, random_state=0)
    assert abs(res.mean()) < 3 / math.sqrt(100 * 40) * 4


def test_complexity_known_answers():
    gen = torch.Generator().manual_seed(4)
    model = models.Linear(torch.randn(3, generator=gen))
    exp = xai.explain(model, torch.randn(1, 3, generator=gen), method="occlusion")
    m = metrics.Complexity()
    cases = {(1.0, 1.0, 2.0): 1.0397208, (-5.0, 5.0, 10.0): 1.0397208, (0.0, 5.0, 0.0): 0.0,
             (3.0, 3.0, 3.0): math.log(3)}
    for vals, expected in cases.items():
        e = dataclasses.replace(exp, values=torch.tensor([[list(vals)]]))
        torch.testing.assert_close(m(e, model).scores, torch.tensor([[expected]]), rtol=0,
                                   atol=1e-7)
    zero = dataclasses.replace(exp, values=torch.zeros(1, 1, 3))
    with pytest.warns(xai.XAIWarning, match="all-zero"):
        assert bool(m(zero, model).scores.isnan().all())


def test_text_metrics_remove_words_through_the_feature_space(tiny_bert):
    model, tok = tiny_bert
    exp = xai.explain((model, tok), ["the movie was great fun"], method="occlusion", target=1)
    res = metrics.Comprehensiveness(fraction=0.4)(exp, (model, tok))
    fs = exp.features[0]
    top = exp.values[0, 0].topk(2).indices
    keep = torch.ones(1, fs.n_features, dtype=torch.bool)
    keep[0, top] = False
    adapter = xai.as_adapter((model, tok))
    with torch.no_grad():
        p0 = adapter.predict(fs.original()).softmax(-1)[0, 1]
        p1 = adapter.predict(fs.mask(keep)).softmax(-1)[0, 1]
    torch.testing.assert_close(res.scores[0, 0], p0 - p1, rtol=0, atol=1e-6)
