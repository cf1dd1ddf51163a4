"""What every metric does with an explanation it cannot fully score: one whose features are
known only by name (hand-built, or loaded from an old file), one with 0 features, one whose
example is all padding; and that a saved-and-loaded explanation is not one of them."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
import torch
from models import make_metric

import metrics
import xai
from metrics._evaluate import applicable_metrics

ALL = metrics.METRICS.names()
NAMED = ("it perturbs the inputs through the explanation's feature spaces, and this "
         "explanation knows its features only by name (a hand-built explanation, or one loaded "
         "from a file of format version 1 or 2). Re-explain the inputs with the model. Metrics "
         "that apply: complexity.")


def named_only(exp: xai.Explanation) -> xai.Explanation:
    """``exp`` as a hand-built one: features known by name, no inputs."""
    return dataclasses.replace(exp, inputs=None, features=tuple(
        xai.NamedFeatures(names) for names in exp.feature_names))


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


def test_applicable_metrics_of_a_named_only_explanation_are_exactly_those_that_work(
        tabular_case):
    model, exp = tabular_case
    named = named_only(exp)
    assert applicable_metrics(named) == ["complexity"]
    assert set(metrics.evaluate(named[:2], model)) == {"complexity"}
    for name in ALL:
        metric = make_metric(name)
        assert metric.applies_to(named) is (name == "complexity")
        if name == "complexity":  # rows 0-1: row 2 is all zero (NaN with a warning)
            torch.testing.assert_close(metric(named[:2], model).scores,
                                       metric(exp[:2], model).scores, rtol=0, atol=0)
            continue
        with pytest.raises(xai.InvalidExplanationError, match=re.escape(
                f"Metric {name!r} cannot score this explanation: {NAMED}")):
            metric(named, model)


def test_a_loaded_explanation_applies_to_the_same_metrics_as_the_live_one(tabular_case,
                                                                         tmp_path):
    model, exp = tabular_case
    exp.save(tmp_path / "e")
    loaded = xai.Explanation.load(tmp_path / "e")
    assert applicable_metrics(loaded) == applicable_metrics(exp)
    assert len(applicable_metrics(loaded)) > 1


def test_the_original_explanation_is_scored_by_every_applicable_metric(tabular_case):
    model, exp = tabular_case
    assert "log_odds" in applicable_metrics(exp)  # a classifier: every cheap metric applies
    assert set(applicable_metrics(exp)) == {
        n for n in ALL if not metrics.METRICS.get(n).needs_reexplain
        and not metrics.METRICS.get(n).needs_params
        and "tabular" in metrics.METRICS.get(n).modalities}


@pytest.mark.parametrize("name", ALL)
def test_zero_features_is_a_typed_error_for_every_metric(tabular_case, name):
    model, exp = tabular_case
    empty = dataclasses.replace(exp, values=exp.values[..., :0],
                                features=(xai.NamedFeatures(()),) * 3)
    assert applicable_metrics(empty) == []
    with pytest.raises(xai.InvalidExplanationError, match=re.escape(
            f"Metric {name!r} cannot score this explanation: the explanation has 0 features, "
            "so there is nothing to score. Explain inputs that have at least one feature. "
            "Metrics that apply: none.")):
        make_metric(name)(empty, model)


@pytest.mark.parametrize("name", ALL)
def test_an_example_that_is_all_padding_is_a_typed_error_for_every_metric(tabular_case, name):
    model, exp = tabular_case
    mask = torch.ones(3, 4, dtype=torch.bool)
    mask[1] = False
    padded = dataclasses.replace(exp, feature_mask=mask,
                                 values=exp.values.masked_fill(~mask[:, None], 0.0),
                                 features=(exp.features[0], xai.NamedFeatures(()),
                                           exp.features[2]))
    with pytest.raises(xai.InvalidExplanationError, match=re.escape(
            f"Metric {name!r} cannot score this explanation: example(s) 1 of the explanation "
            "have no real feature (every position is padding). Explain inputs that have at "
            "least one feature each. Metrics that apply: none.")):
        make_metric(name)(padded, model)


def test_metric_on_a_hand_built_explanation_without_features_never_silently_gives_nan(
        tabular_case):
    model, exp = tabular_case
    bare = named_only(exp)
    with pytest.raises(xai.InvalidExplanationError, match=re.escape(
            f"Metric 'faithfulness_correlation' cannot score this explanation: {NAMED}")):
        metrics.FaithfulnessCorrelation()(bare, model)
    torch.testing.assert_close(metrics.Complexity()(bare[:2], model).scores,
                               metrics.Complexity()(exp[:2], model).scores, rtol=0, atol=0)

