"""Train the demo's default models and write their weight files.

Run ``python -m xai.demo.train`` (both models), or with ``--sentiment`` / ``--credit`` for one.
It writes, in ``xai/demo/weights/`` (or ``--out``):

* ``sentiment_head.safetensors``: the 385 floats of the linear head on top of the frozen
  all-MiniLM-L6-v2 encoder, fitted by logistic regression on the unit-norm mean-pooled
  embeddings of the training split of the Rotten Tomatoes snippets (C chosen by 5-fold CV on the
  training split only);
* ``credit_model.json``: the fitted German-credit pipeline, its background rows and baseline row;
* ``training_report.json``: held-out accuracies, majority-class rates, split sizes, C, date.

The training functions return their results and write nothing; only `main` writes files.
"""

from __future__ import annotations

import argparse
import datetime
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors.torch import save_file
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from torch import nn

from ._data import CREDIT_CATEGORICAL, CREDIT_COLUMNS, split_credit, split_reviews
from ._models import (
    CREDIT_MODEL_PATH,
    SENTIMENT_HEAD_PATH,
    TRAINING_REPORT_PATH,
    SentenceClassifier,
    build_credit_pipeline,
    credit_model_to_dict,
    embed_texts,
    load_encoder,
)

__all__ = [
    "CreditTrainingResult",
    "SentimentTrainingResult",
    "credit_reference_rows",
    "main",
    "train_credit_model",
    "train_sentiment_head",
]

#: Candidate inverse regularisation strengths for the sentiment head.
SENTIMENT_CS: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)


@dataclass(frozen=True)
class SentimentTrainingResult:
    """What `train_sentiment_head` returns.

    Attributes
    ----------
    head : torch.nn.Linear
        The fitted ``Linear(384, 1)`` head (float32).
    C : float
        The inverse regularisation strength chosen by cross-validation.
    cv_accuracy : dict of float to float
        Mean 5-fold CV accuracy on the training split for every candidate C.
    test_accuracy : float
        Accuracy of the full model (encoder + head, float32) on the held-out test split.
    majority_rate : float
        Share of the most frequent label in the test split.
    n_train, n_test : int
        Split sizes.
    seconds : float
        Wall time of the whole training (embedding dominates).
    """

    head: nn.Linear
    C: float
    cv_accuracy: dict[float, float]
    test_accuracy: float
    majority_rate: float
    n_train: int
    n_test: int
    seconds: float


@dataclass(frozen=True)
class CreditTrainingResult:
    """What `train_credit_model` returns.

    Attributes
    ----------
    pipeline : sklearn.pipeline.Pipeline
        The fitted pipeline of `build_credit_pipeline`.
    background : pandas.DataFrame
        50 training rows drawn with the seed.
    baseline : pandas.DataFrame
        One row: training mode of each categorical code, median of each numeric column.
    test_accuracy, majority_rate : float
        Held-out accuracy, and the share of the most frequent label in the test split.
    n_train, n_test : int
        Split sizes.
    payload : dict
        `credit_model_to_dict` of all the above, ready for ``json.dump``.
    """

    pipeline: Pipeline
    background: pd.DataFrame
    baseline: pd.DataFrame
    test_accuracy: float
    majority_rate: float
    n_train: int
    n_test: int
    payload: dict[str, Any] = field(repr=False)


def _majority_rate(labels: np.ndarray) -> float:
    """Return the share of the most frequent label."""
    return float(np.bincount(labels).max() / len(labels))


def _stratified_head(rows: pd.DataFrame, n: int | None, random_state: int) -> pd.DataFrame:
    """At most ``n`` rows of ``rows`` with the same label proportions (all of them if None)."""
    if n is None or n >= len(rows):
        return rows
    from sklearn.model_selection import train_test_split

    kept, _ = train_test_split(rows, train_size=n, stratify=rows["label"],
                               random_state=random_state)
    return kept


def train_sentiment_head(
    *,
    random_state: int = 0,
    Cs: tuple[float, ...] = SENTIMENT_CS,
    batch_size: int = 64,
    max_rows: int | None = None,
) -> SentimentTrainingResult:
    """Fit the sentiment head on frozen MiniLM embeddings of the training split.

    Parameters
    ----------
    random_state : int, default=0
        Seed of the train/test split and of the CV folds.
    Cs : tuple of float, default=SENTIMENT_CS
        Candidate C values, compared by 5-fold stratified CV accuracy on the training split.
    batch_size : int, default=64
        Snippets per encoder forward pass.
    max_rows : int, optional
        Use a stratified subsample of at most this many rows of each split (a quick check of
        the procedure: embedding dominates the cost); None, the default, trains on everything.

    Returns
    -------
    SentimentTrainingResult
        The head and its measurements; nothing is written.
    """
    start = time.perf_counter()
    train, test = split_reviews(random_state=random_state)
    train = _stratified_head(train, max_rows, random_state)
    test = _stratified_head(test, max_rows, random_state)
    encoder, tokenizer = load_encoder()
    model = SentenceClassifier(encoder).eval()
    x_train = embed_texts(model, tokenizer, train["text"].tolist(), batch_size=batch_size)
    y_train = train["label"].to_numpy()
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=random_state)
    search = GridSearchCV(
        LogisticRegression(max_iter=5000), {"C": list(Cs)}, cv=folds, scoring="accuracy"
    )
    search.fit(x_train.numpy().astype(np.float64), y_train)
    best = search.best_estimator_
    with torch.no_grad():
        model.head.weight.copy_(torch.as_tensor(best.coef_, dtype=torch.float32))
        model.head.bias.copy_(torch.as_tensor(best.intercept_, dtype=torch.float32))
        x_test = embed_texts(model, tokenizer, test["text"].tolist(), batch_size=batch_size)
        fresh = model.head(x_test)[:, 0] > 0
    y_test = test["label"].to_numpy()
    return SentimentTrainingResult(
        head=model.head,
        C=float(search.best_params_["C"]),
        cv_accuracy={
            float(c): float(s)
            for c, s in zip(Cs, search.cv_results_["mean_test_score"], strict=True)
        },
        test_accuracy=float((fresh.numpy().astype(np.int64) == y_test).mean()),
        majority_rate=_majority_rate(y_test),
        n_train=len(train),
        n_test=len(test),
        seconds=time.perf_counter() - start,
    )


def credit_reference_rows(
    X_train: pd.DataFrame, *, n_background: int = 50, random_state: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pick the background rows and compute the baseline row of the credit model.

    Parameters
    ----------
    X_train : pandas.DataFrame
        Training rows, columns `CREDIT_COLUMNS`.
    n_background : int, default=50
        Number of background rows, drawn without replacement.
    random_state : int, default=0
        Seed of the draw.

    Returns
    -------
    background : pandas.DataFrame
        ``n_background`` rows of ``X_train`` (original index kept).
    baseline : pandas.DataFrame
        One row indexed ``"baseline"``: the mode (smallest code on ties) of each categorical
        column and the median of each numeric column.
    """
    background = X_train.sample(n=n_background, random_state=random_state)
    values = {
        column: (
            X_train[column].mode().min()
            if column in CREDIT_CATEGORICAL
            else X_train[column].median()
        )
        for column in CREDIT_COLUMNS
    }
    baseline = pd.DataFrame(values, index=["baseline"], columns=list(CREDIT_COLUMNS)).astype(
        np.float64
    )
    return background, baseline


def train_credit_model(*, random_state: int = 0) -> CreditTrainingResult:
    """Fit the credit pipeline on the training split of the German credit data.

    Parameters
    ----------
    random_state : int, default=0
        Seed of the train/test split and of the background draw.

    Returns
    -------
    CreditTrainingResult
        The fitted pipeline, its reference rows, measurements and JSON payload; nothing is written.
    """
    X_train, X_test, y_train, y_test = split_credit(random_state=random_state)
    pipeline = build_credit_pipeline().fit(X_train, y_train)
    background, baseline = credit_reference_rows(X_train, random_state=random_state)
    accuracy = float((pipeline.predict(X_test) == y_test).mean())
    payload = credit_model_to_dict(pipeline, background=background, baseline=baseline)
    return CreditTrainingResult(
        pipeline=pipeline,
        background=background,
        baseline=baseline,
        test_accuracy=accuracy,
        majority_rate=_majority_rate(y_test),
        n_train=len(X_train),
        n_test=len(X_test),
        payload=payload,
    )


def _sentiment_report(result: SentimentTrainingResult) -> dict[str, Any]:
    """Return the report entry of the sentiment head."""
    return {
        "model": "all-MiniLM-L6-v2 (frozen) + mean pooling + L2 norm + linear head",
        "test_accuracy": result.test_accuracy,
        "majority_rate": result.majority_rate,
        "n_train": result.n_train,
        "n_test": result.n_test,
        "C": result.C,
        "cv_accuracy": {str(c): s for c, s in result.cv_accuracy.items()},
        "seconds": round(result.seconds, 1),
    }


def _credit_report(result: CreditTrainingResult) -> dict[str, Any]:
    """Return the report entry of the credit model."""
    return {
        "model": "one-hot codes + standardised numbers -> logistic regression (C=1)",
        "test_accuracy": result.test_accuracy,
        "majority_rate": result.majority_rate,
        "n_train": result.n_train,
        "n_test": result.n_test,
    }


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point: train the selected models, write weights and report, print a summary."""
    parser = argparse.ArgumentParser(
        prog="python -m xai.demo.train", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--sentiment", action="store_true", help="train the sentiment head")
    parser.add_argument("--credit", action="store_true", help="train the credit model")
    parser.add_argument(
        "--out", type=Path, default=SENTIMENT_HEAD_PATH.parent, help="output folder"
    )
    args = parser.parse_args(argv)
    both = not (args.sentiment or args.credit)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    report_path = out / TRAINING_REPORT_PATH.name
    report = json.loads(report_path.read_text(encoding="utf-8")) if report_path.exists() else {}
    if both or args.credit:
        credit = train_credit_model()
        (out / CREDIT_MODEL_PATH.name).write_text(
            json.dumps(credit.payload, indent=1) + "\n", encoding="utf-8"
        )
        report["credit"] = _credit_report(credit)
        print(
            f"credit: held-out accuracy {credit.test_accuracy:.3f} (majority rate {credit.majority_rate:.3f})"
        )
    if both or args.sentiment:
        sentiment = train_sentiment_head()
        metadata = {
            "encoder": "sentence-transformers/all-MiniLM-L6-v2",
            "pooling": "mean+l2",
            "C": str(sentiment.C),
        }
        state = {
            "weight": sentiment.head.weight.detach().contiguous(),
            "bias": sentiment.head.bias.detach().contiguous(),
        }
        save_file(state, str(out / SENTIMENT_HEAD_PATH.name), metadata=metadata)
        report["sentiment"] = _sentiment_report(sentiment)
        print(
            f"sentiment: held-out accuracy {sentiment.test_accuracy:.3f} "
            f"(majority rate {sentiment.majority_rate:.3f}, C={sentiment.C:g}, {sentiment.seconds:.0f} s)"
        )
    report["date"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    report_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
