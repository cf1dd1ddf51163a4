"""Adapters: the rule table, scikit-learn response resolution, transformers models and pipelines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.svm import LinearSVC

import xai
from xai.adapters import ADAPTER_RULES


def test_rule_table_order_and_dispatch(tiny_bert, mlp3, logreg):
    names = [name for name, _, _ in ADAPTER_RULES]
    assert names.index("fitted scikit-learn estimator") < names.index("torch.nn.Module")
    assert type(xai.as_adapter(tiny_bert)).__name__ == "HFClassifierAdapter"
    assert isinstance(xai.as_adapter(mlp3), xai.TorchModuleAdapter)
    assert isinstance(xai.as_adapter(logreg[0]), xai.SklearnAdapter)
    assert isinstance(xai.as_adapter(np.sum), xai.CallableAdapter)
    adapter = xai.as_adapter(mlp3)
    assert xai.as_adapter(adapter) is adapter


def test_sklearn_response_auto_and_recorded(logreg):
    clf, x = logreg
    exp = xai.explain(clf, x[:3], method="occlusion")
    assert exp.model_info["response"] == "predict_proba"
    probs = clf.predict_proba(x[:3])
    torch.testing.assert_close(exp.predictions[:, 0],
                               torch.tensor(probs.max(1), dtype=torch.float32), rtol=0, atol=1e-6)
    assert exp.target.names[0][0] == str(clf.classes_[probs[0].argmax()])
    svc = LinearSVC().fit(x, (x[:, 0] > 0).astype(int))
    assert xai.SklearnAdapter(svc).response == "decision_function"
    reg = LinearRegression().fit(x, x[:, 0] * 2 - x[:, 1])
    ad = xai.SklearnAdapter(reg)
    assert ad.response == "predict"
    assert not ad.is_classifier()
    exp = xai.explain(reg, x[:2], method="occlusion")
    # a linear regressor's occlusion value is coef * (x - 0)
    torch.testing.assert_close(exp.values[:, 0], torch.tensor(reg.coef_ * x[:2],
                                                              dtype=torch.float32),
                               rtol=1e-5, atol=1e-5)


def test_dataframe_columns_become_feature_names():
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(50, 3)), columns=["age", "income", "debt"])
    clf = LogisticRegression().fit(df, (df["income"] > df["debt"]).astype(int))
    exp = xai.explain(clf, df.iloc[:2], method="occlusion", target=1)
    assert exp.feature_names == [("age", "income", "debt")] * 2


def test_word_features_come_from_offsets_not_markers(tiny_bert):
    model, tok = tiny_bert
    adapter = xai.as_adapter((model, tok))
    batch = adapter.prepare(["The movie's plot, filmed badly!"])
    (words,) = adapter.features(batch, granularity="word")
    assert words.feature_names == ("The", "movie's", "plot,", "filmed", "badly!")
    (tokens,) = adapter.features(batch, granularity="token")
    assert "[CLS]" not in tokens.feature_names
    assert "[SEP]" not in tokens.feature_names
    assert tokens.n_features == sum(len(g) for g in words.groups)


def test_pipeline_adapter_matches_model_adapter(tiny_bert):
    transformers = pytest.importorskip("transformers")
    model, tok = tiny_bert
    pipe = transformers.pipeline("text-classification", model=model, tokenizer=tok)
    assert type(xai.as_adapter(pipe)).__name__ == "HFPipelineAdapter"
    a = xai.explain(pipe, ["the movie was great"], method="occlusion", target="POSITIVE")
    b = xai.explain((model, tok), ["the movie was great"], method="occlusion", target=1)
    torch.testing.assert_close(a.values, b.values, rtol=0, atol=1e-6)
    assert a.target.names == (("POSITIVE",),)


def test_session_restores_training_flag(mlp3):
    mlp3.train()
    try:
        xai.explain(mlp3, torch.randn(2, 6), method="ig", target=0, n_steps=4)
        assert all(m.training for m in mlp3.modules())
    finally:
        mlp3.eval()
