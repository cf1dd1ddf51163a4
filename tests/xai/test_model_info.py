"""One owner per fact: the model's modality and output kind live on ``exp.model_info`` (typed,
recorded from the adapter), feature names and texts on ``exp.features``, and
``multiplies_by_inputs`` on the method."""

from __future__ import annotations

import dataclasses
import re

import models
import numpy as np
import pytest
import torch

import xai

X = torch.tensor([[1.0, -1.0, 0.5, 2.0, 0.0, 1.0], [0.0, 2.0, -1.0, 1.0, 1.0, -2.0]])


def test_model_info_reads_as_a_mapping_of_its_fields_then_details(logreg):
    exp = xai.explain(logreg[0], logreg[1][:2], method="occlusion")
    info = exp.model_info
    assert isinstance(info, xai.ModelInfo)
    assert (info.adapter, info.modality, info.output_kind) == ("SklearnAdapter", "tabular",
                                                               "probabilities")
    assert dict(info) == {"adapter": "SklearnAdapter", "model": info.model,
                          "modality": "tabular", "output_kind": "probabilities",
                          "response": "predict_proba"}
    assert info["response"] == info.details["response"] == "predict_proba"
    assert exp.modality == "tabular"


def test_output_kind_of_each_adapter(tiny_bert, mlp3):
    assert xai.explain(tiny_bert, ["a film"], method="occlusion").model_info.output_kind == \
        "logits"
    assert xai.explain(mlp3, X[:1], method="occlusion", target=0).model_info.output_kind == \
        "scores"
    ridge = xai.SklearnAdapter(_fitted_regressor())
    assert ridge.output_kind == "scores"


def _fitted_regressor():
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 3))
    return Ridge().fit(x, x @ np.array([1.0, -2.0, 0.5]))


def test_a_declared_logits_module_gives_softmax_probabilities(mlp3):
    exp = xai.explain(mlp3, X, method="occlusion", target=[0, 2],
                      adapter_options={"output_kind": "logits"})
    assert exp.model_info.output_kind == "logits"
    logits = mlp3(X).detach()
    want = logits.softmax(-1).gather(1, torch.tensor([[0], [2]]))
    torch.testing.assert_close(exp.probabilities(), want, rtol=1e-6, atol=1e-7)
    # undeclared raw outputs have no probability reading
    assert xai.explain(mlp3, X, method="occlusion", target=0).probabilities() is None


def test_log_probabilities_are_exponentiated():
    scores = torch.log(torch.tensor([[0.2, 0.8], [0.5, 0.5]]))
    torch.testing.assert_close(xai.extend.as_probabilities(scores, "log_probabilities"),
                               scores.exp(), rtol=0, atol=0)
    assert xai.extend.as_probabilities(scores, "scores") is None


def test_an_unknown_output_kind_is_a_typed_error(mlp3):
    with pytest.raises(xai.InvalidParameterError, match=re.escape(
            "The 'output_kind' parameter of TorchModuleAdapter must be a str among")):
        xai.explain(mlp3, X, method="occlusion", adapter_options={"output_kind": "odds"})
    with pytest.raises(xai.InvalidParameterError, match="'output_kind' parameter of ModelInfo"):
        xai.ModelInfo(output_kind="odds")  # type: ignore[arg-type]


def test_version_2_model_info_is_read_into_the_typed_record():
    legacy = {"adapter": "HFClassifierAdapter", "model": "BertForSequenceClassification",
              "modality": "text", "output": "logits", "max_length": "512"}
    info = xai.ModelInfo.from_mapping(legacy)
    assert (info.modality, info.output_kind, dict(info.details)) == ("text", "logits",
                                                                     {"max_length": "512"})
    sk = xai.ModelInfo.from_mapping({"adapter": "SklearnAdapter", "response": "predict_proba"})
    assert sk.output_kind == "probabilities"
    lm = xai.ModelInfo.from_mapping({"modality": "generation",
                                     "output": "next-token log-probabilities"})
    assert lm.output_kind == "log_probabilities"
    assert xai.ModelInfo.from_mapping(dict(info)) == info


def test_names_and_texts_are_read_from_the_feature_spaces(tiny_bert):
    exp = xai.explain(tiny_bert, ["a fine film", "the plot was dull"], method="occlusion")
    assert exp.feature_names == [fs.feature_names for fs in exp.features]
    assert exp.names == tuple(exp.feature_names)
    assert exp.texts == ("a fine film", "the plot was dull") == exp.inputs.texts
    assert exp[1].texts == ("the plot was dull",)
    assert exp[1].names == (exp.names[1],)


def test_multiplies_by_inputs_has_one_owner_the_method():
    assert xai.Occlusion().multiplies_by_inputs
    assert not xai.IntegratedGradients(multiply_by_inputs=False).multiplies_by_inputs
    assert not xai.Smoothed(method=xai.IntegratedGradients(multiply_by_inputs=False)
                            ).multiplies_by_inputs
    assert not xai.ContextLengthProbing().multiplies_by_inputs
    model = models.Linear(torch.ones(6, 1), torch.zeros(1))
    exp = xai.explain(model, X, method="ig", n_steps=4, multiply_by_inputs=False)
    assert exp.multiplies_by_inputs is False
    assert exp.multiply_by_inputs is False


def test_a_hand_built_explanation_needs_one_feature_space_per_example():
    values = torch.zeros(2, 1, 3)
    target = xai.ResolvedTarget(torch.zeros(2, 1, dtype=torch.long), (("y",), ("y",)))
    with pytest.raises(xai.InvalidExplanationError, match=re.escape(
            "Explanation has 2 examples but 1 feature spaces; pass one per example "
            "(xai.features.NamedFeatures(names) for a hand-built one).")):
        xai.Explanation(values=values, target=target, method="m", params={},
                        features=(xai.NamedFeatures("abc"),))
    with pytest.raises(xai.InvalidExplanationError, match=re.escape(
            "Explanation.features[1] has 2 features, but example 1 has 3 values")):
        xai.Explanation(values=values, target=target, method="m", params={},
                        features=(xai.NamedFeatures("abc"), xai.NamedFeatures("ab")))
    exp = xai.Explanation(values=values, target=target, method="m", params={},
                          features=(xai.NamedFeatures("abc"),) * 2,
                          model_info={"adapter": "A", "output": "logits"})
    assert exp.model_info.output_kind == "logits"
    assert exp.names == (("a", "b", "c"),) * 2


def test_named_features_refuse_to_perturb_with_the_fix():
    fs = xai.NamedFeatures(["a", "b"], kind="SpanFeatures")
    with pytest.raises(xai.InvalidExplanationError, match=re.escape(
            "The features of this explanation are known only by their names (its SpanFeatures "
            "could not be saved), so they cannot switch features off. Re-explain the inputs "
            "with the model.")):
        fs.mask(torch.ones(1, 2, dtype=torch.bool))


def test_dataclasses_replace_keeps_the_derived_facts(tiny_bert):
    exp = xai.explain(tiny_bert, ["a fine film"], method="occlusion")
    flat = dataclasses.replace(exp, values=torch.zeros_like(exp.values))
    assert flat.texts == exp.texts
    assert flat.names == exp.names
    assert flat.model_info == exp.model_info
