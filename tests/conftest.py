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


# --- CI honesty: under CI=true a skip for a missing dependency is a failure ------------------
#
# A fresh CI machine must install everything the suite needs (.ci/run does). Locally a missing
# optional extra skips its tests; under CI it would hide a missing install step, so the report of
# such a skip is turned into a failure. Intended skips are listed here, and only these.

import os  # noqa: E402

INTENDED_SKIP_MARKERS = frozenset({"gpu"})  # needs CUDA: CI machines have none


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def _unintended_skip(report: pytest.CollectReport | pytest.TestReport) -> bool:
    if not report.skipped or hasattr(report, "wasxfail"):
        return False
    keywords = getattr(report, "keywords", {}) or {}
    return not INTENDED_SKIP_MARKERS.intersection(keywords)


def _fail(report: pytest.CollectReport | pytest.TestReport) -> None:
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = (f"Skipped under CI=true, where every dependency must be installed: "
                       f"{reason}. Install it in .ci/run, or list the skip in "
                       "INTENDED_SKIP_MARKERS (tests/conftest.py) if it is meant.")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if _ci() and _unintended_skip(report):
        _fail(report)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    report = outcome.get_result()
    if _ci() and _unintended_skip(report):
        _fail(report)
