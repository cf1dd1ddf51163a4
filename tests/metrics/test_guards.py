"""What every metric does with an explanation it cannot fully score: a loaded one (no feature
spaces), one with 0 features, one whose example is all padding."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
import torch

import metrics
import xai
from metrics._evaluate import applicable_metrics

ALL = metrics.METRICS.names()
LOADED = ("it perturbs the inputs through the explanation's feature spaces, which this "
          "explanation does not carry (Explanation.load() cannot restore them). Score it "
          "before saving it, or re-explain the inputs with the model. Metrics that apply: "
          "complexity.")


def _classifier():
    w = np.array([[2.0, -1.0], [1.0, 0.5], [-1.0, 1.5], [0.5, 0.0]])

    def proba(z):
        logits = z @ w
        e = np.exp(logits - logits.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    return xai.CallableAdapter(proba, output_names=["neg", "pos"])


@pytest.fixture(scope="module")
def tabular_case():
    model = _classifier()
    x = np.array([[1.0, 0.0, 2.0, -1.0], [0.5, 1.5, -0.5, 2.0], [0.0, 0.0, 0.0, 0.0]])
    return model, xai.explain(model, x, method="occlusion", target="pos")


def test_loaded_explanation_scores_complexity_like_the_original(tabular_case, tmp_path):
    model, exp = tabular_case
    exp.save(tmp_path / "e")
    loaded = xai.Explanation.load(tmp_path / "e")
    with pytest.warns(xai.XAIWarning, match=re.escape("Complexity is NaN for example(s) 2: ")):
        before = metrics.Complexity()(exp, model).scores
    with pytest.warns(xai.XAIWarning, match=re.escape("Complexity is NaN for example(s) 2: ")):
        after = metrics.Complexity()(loaded, model).scores
    torch.testing.assert_close(after, before, rtol=0, atol=0, equal_nan=True)
    assert bool(before[:2].isfinite().all())


def test_loaded_ragged_text_scores_complexity_like_the_original(tiny_bert, tmp_path):
    exp = xai.explain(tiny_bert, ["a fine film", "the plot was very dull indeed"],
                      method="occlusion")
    exp.save(tmp_path / "t")
    loaded = xai.Explanation.load(tmp_path / "t")
    assert loaded.feature_mask is not None
    torch.testing.assert_close(metrics.Complexity()(loaded, tiny_bert).scores,
                               metrics.Complexity()(exp, tiny_bert).scores, rtol=0, atol=0)


def test_applicable_metrics_of_a_loaded_explanation_are_exactly_those_that_work(
        tabular_case, tmp_path):
    model, exp = tabular_case
    exp.save(tmp_path / "e")
    loaded = xai.Explanation.load(tmp_path / "e")
    assert applicable_metrics(loaded) == ["complexity"]
    assert set(metrics.evaluate(loaded[:2], model)) == {"complexity"}
    for name in ALL:
        metric = metrics.METRICS.get(name)()
        assert metric.applies_to(loaded) is (name == "complexity")
        if name == "complexity":  # rows 0-1: row 2 is all zero (NaN with a warning)
            torch.testing.assert_close(metric(loaded[:2], model).scores,
                                       metric(exp[:2], model).scores, rtol=0, atol=0)
            continue
        with pytest.raises(xai.InvalidExplanationError, match=re.escape(
                f"Metric {name!r} cannot score this explanation: {LOADED}")):
            metric(loaded, model)


def test_the_original_explanation_is_scored_by_every_applicable_metric(tabular_case):
    model, exp = tabular_case
    assert "log_odds" in applicable_metrics(exp)  # a classifier: every cheap metric applies
    assert set(applicable_metrics(exp)) == {
        n for n in ALL if not metrics.METRICS.get(n).needs_reexplain}


@pytest.mark.parametrize("name", ALL)
def test_zero_features_is_a_typed_error_for_every_metric(tabular_case, name):
    model, exp = tabular_case
    empty = dataclasses.replace(exp, values=exp.values[..., :0], names=((),) * 3)
    assert applicable_metrics(empty) == []
    with pytest.raises(xai.InvalidExplanationError, match=re.escape(
            f"Metric {name!r} cannot score this explanation: the explanation has 0 features, "
            "so there is nothing to score. Explain inputs that have at least one feature. "
            "Metrics that apply: none.")):
        metrics.METRICS.get(name)()(empty, model)


@pytest.mark.parametrize("name", ALL)
def test_an_example_that_is_all_padding_is_a_typed_error_for_every_metric(tabular_case, name):
    model, exp = tabular_case
    mask = torch.ones(3, 4, dtype=torch.bool)
    mask[1] = False
    padded = dataclasses.replace(exp, feature_mask=mask,
                                 values=exp.values.masked_fill(~mask[:, None], 0.0))
    with pytest.raises(xai.InvalidExplanationError, match=re.escape(
            f"Metric {name!r} cannot score this explanation: example(s) 1 of the explanation "
            "have no real feature (every position is padding). Explain inputs that have at "
            "least one feature each. Metrics that apply: none.")):
        metrics.METRICS.get(name)()(padded, model)


def test_metric_on_a_hand_built_explanation_without_features_never_silently_gives_nan(
        tabular_case):
    model, exp = tabular_case
    bare = dataclasses.replace(exp, features=(), inputs=None)
    with pytest.raises(xai.InvalidExplanationError, match=re.escape(
            f"Metric 'faithfulness_correlation' cannot score this explanation: {LOADED}")):
        metrics.FaithfulnessCorrelation()(bare, model)
    torch.testing.assert_close(metrics.Complexity()(bare[:2], model).scores,
                               metrics.Complexity()(exp[:2], model).scores, rtol=0, atol=0)

