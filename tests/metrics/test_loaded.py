"""A saved-and-loaded Explanation scores like the live one, on the demo's real models: every
metric that applies to the live explanation applies to the loaded one and gives the same scores
(same seed), because ``save`` keeps the inputs and the feature spaces the metrics perturb."""

from __future__ import annotations

import warnings

import pytest
import torch

import metrics
import xai
from xai.demo import (
    credit_background,
    load_credit_model,
    load_reviews,
    load_sentiment_model,
    split_credit,
)


def _every_metric(live: xai.Explanation) -> list[metrics.Metric]:
    """Every registered metric that applies to ``live`` (re-explaining ones with 3 samples;
    responsiveness with the demo credit model's action set)."""
    from xai.demo._credit_actions import load_credit_actions

    out = []
    for name in metrics.METRICS.names():
        cls = metrics.METRICS.get(name)
        if cls.applies_to(live):
            params: dict = {"n_samples": 3} if cls.needs_reexplain else {}
            if "action_set" in cls.needs_params:
                params["action_set"] = load_credit_actions()
            out.append(cls(**params))
    return out


def _assert_same_scores(live: xai.Explanation, loaded: xai.Explanation, model) -> None:
    chosen = _every_metric(live)
    assert [m.name for m in _every_metric(loaded)] == [m.name for m in chosen]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", xai.XAIWarning)
        want = metrics.evaluate(live, model, chosen, random_state=0)
        got = metrics.evaluate(loaded, model, chosen, random_state=0)
    for m in chosen:
        torch.testing.assert_close(got[m.name].scores, want[m.name].scores, rtol=0, atol=0,
                                   equal_nan=True, msg=lambda msg, n=m.name: f"{n}: {msg}")


def test_credit_kernel_shap_scores_alike_after_load_with_every_metric(tmp_path):
    model = load_credit_model()
    rows = split_credit()[1].iloc[:4]
    live = xai.explain(model, rows, method="kernel_shap", n_samples=256, random_state=0,
                       adapter_options={"background": credit_background().iloc[:32]})
    live.save(tmp_path / "run1")
    loaded = xai.Explanation.load(tmp_path / "run1")
    assert loaded.feature_names == live.feature_names
    assert loaded.model_info == live.model_info
    assert loaded.model_info.output_kind == "probabilities"
    tabular = [n for n in metrics.METRICS.names() if "tabular" in metrics.METRICS.get(n).modalities]
    assert len(_every_metric(loaded)) == len(tabular)  # every metric of tabular explanations
    _assert_same_scores(live, loaded, model)


def test_sentiment_occlusion_scores_alike_after_load(tmp_path):
    model = load_sentiment_model()
    texts = [t for t in load_reviews()["text"].iloc[:3]]
    live = xai.explain(model, texts, method="occlusion", granularity="word")
    live.save(tmp_path / "run1")
    loaded = xai.Explanation.load(tmp_path / "run1")
    assert loaded.texts == live.texts == tuple(texts)
    assert type(loaded.features[0]) is type(live.features[0])
    assert loaded.model_info.output_kind == "logits"
    _assert_same_scores(live, loaded, model)


def test_the_readme_contract_load_then_evaluate(tmp_path):
    model = load_credit_model()
    rows = split_credit()[1].iloc[:3]
    xai.explain(model, rows, method="occlusion").save(tmp_path / "run1")
    exp = xai.Explanation.load(tmp_path / "run1")
    result = metrics.evaluate(exp, model, ["comprehensiveness"])
    live = xai.explain(model, rows, method="occlusion")
    torch.testing.assert_close(result["comprehensiveness"].scores,
                               metrics.evaluate(live, model, ["comprehensiveness"])
                               ["comprehensiveness"].scores, rtol=0, atol=0)


def test_a_loaded_explanation_with_another_model_is_refused(tmp_path):
    model = load_credit_model()
    xai.explain(model, split_credit()[1].iloc[:2], method="occlusion").save(tmp_path / "run1")
    exp = xai.Explanation.load(tmp_path / "run1")
    other = xai.CallableAdapter(lambda x: x[:, :1], n_features=3)
    with pytest.raises(xai.InvalidExplanationError, match="Score an explanation with the model "
                       "that produced it"):
        metrics.evaluate(exp, other, ["comprehensiveness"])
