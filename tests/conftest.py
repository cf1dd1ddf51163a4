"""Shared fixtures: toy torch models, a tiny offline BERT classifier, a fitted sklearn model."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests/models.py as "models"

import models  # noqa: E402


@pytest.fixture(scope="session")
def tiny_bert():
    """(model, tokenizer) of a tiny random BERT classifier built from a config."""
    pytest.importorskip("transformers")
    return models.tiny_bert_classifier()


@pytest.fixture(scope="session")
def mlp3():
    """A 6-16-3 tanh MLP with fixed weights."""
    return models.mlp()


@pytest.fixture(scope="session")
def logreg():
    """A LogisticRegression fitted on 3 classes of synthetic data, plus its data."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 4))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int) + (x[:, 2] > 1).astype(int)
    return LogisticRegression(max_iter=500).fit(x, y), x


@pytest.fixture
def texts():
    return ["the movie was great", "a very boring plot and bad actors !", "fun film"]
