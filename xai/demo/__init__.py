"""Embedded default models and data of the demo: nothing is downloaded.

* `load_sentiment_model`: all-MiniLM-L6-v2 + mean pooling + a linear head trained on Rotten
  Tomatoes snippets (logits for "rotten", "fresh").
* `load_credit_model`: a scikit-learn pipeline for the German credit data (probability of good
  credit), with `credit_background` and `credit_baseline` rows.
* `load_reviews` / `split_reviews` and `load_credit` / `split_credit`: the vendored data.

Retrain with ``python -m xai.demo.train``.
"""

from __future__ import annotations

from ._data import (
    CREDIT_CATEGORIES,
    load_credit,
    load_reviews,
    split_credit,
    split_reviews,
)
from ._models import (
    SentenceClassifier,
    credit_background,
    credit_baseline,
    load_credit_model,
    load_sentiment_model,
)

__all__ = [
    "CREDIT_CATEGORIES",
    "SentenceClassifier",
    "credit_background",
    "credit_baseline",
    "load_credit",
    "load_credit_model",
    "load_reviews",
    "load_sentiment_model",
    "split_credit",
    "split_reviews",
]
