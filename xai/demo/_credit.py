"""The demo's credit model: a scikit-learn pipeline stored as plain JSON, rebuilt without pickle.

One-hot encoding of the categorical codes and standard scaling of the numeric columns of
`load_credit`'s frame, then logistic regression. ``weights/credit_model.json`` holds the fitted
parameters, 50 background rows and a baseline row; `credit_model_from_dict` sets the parameters on
fresh scikit-learn objects. Written by ``python -m xai.demo.train``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from ._data import CREDIT_CATEGORICAL, CREDIT_CATEGORIES, CREDIT_COLUMNS, CREDIT_NUMERIC

__all__ = [
    "build_credit_pipeline",
    "credit_background",
    "credit_baseline",
    "credit_model_from_dict",
    "credit_model_to_dict",
    "load_credit_model",
]

WEIGHTS_DIR: Path = Path(__file__).parent / "weights"
CREDIT_MODEL_PATH: Path = WEIGHTS_DIR / "credit_model.json"

CREDIT_FORMAT = "posthoc-xai/demo-credit-model"
CREDIT_FORMAT_VERSION = 1


def build_credit_pipeline(*, C: float = 1.0) -> Pipeline:
    """Return the unfitted credit pipeline (one-hot codes + scaled numbers -> logistic regression).

    The one-hot categories are fixed to every code of `CREDIT_CATEGORIES` (also codes absent from
    the training rows), and unknown codes are ignored at prediction time. The regression uses the
    Newton-Cholesky solver with a tight tolerance so that refits land on the same optimum.

    Parameters
    ----------
    C : float, default=1.0
        Inverse L2 regularisation strength of the logistic regression.

    Returns
    -------
    sklearn.pipeline.Pipeline
        Steps ``"preprocess"`` (a ``ColumnTransformer`` with parts ``"categorical"`` and
        ``"numeric"``) and ``"classifier"``.
    """
    categories = [
        [float(code) for code in range(len(CREDIT_CATEGORIES[c]))] for c in CREDIT_CATEGORICAL
    ]
    preprocess = ColumnTransformer(
        [
            (
                "categorical",
                OneHotEncoder(categories=categories, handle_unknown="ignore", sparse_output=False),
                list(CREDIT_CATEGORICAL),
            ),
            ("numeric", StandardScaler(), list(CREDIT_NUMERIC)),
        ]
    )
    classifier = LogisticRegression(C=C, solver="newton-cholesky", tol=1e-10, max_iter=1000)
    return Pipeline([("preprocess", preprocess), ("classifier", classifier)])


def credit_model_to_dict(
    pipeline: Pipeline, *, background: pd.DataFrame, baseline: pd.DataFrame
) -> dict[str, Any]:
    """Serialise a fitted `build_credit_pipeline` pipeline and its reference rows as plain JSON data.

    Parameters
    ----------
    pipeline : sklearn.pipeline.Pipeline
        Fitted on a frame with the columns `CREDIT_COLUMNS`.
    background : pandas.DataFrame
        Background rows (e.g. for SHAP), columns `CREDIT_COLUMNS`.
    baseline : pandas.DataFrame
        One baseline row, columns `CREDIT_COLUMNS`.

    Returns
    -------
    dict
        JSON-serialisable; floats round-trip exactly through ``json``.
    """
    import sklearn

    preprocess = pipeline.named_steps["preprocess"]
    onehot = preprocess.named_transformers_["categorical"]
    scaler = preprocess.named_transformers_["numeric"]
    classifier = pipeline.named_steps["classifier"]
    return {
        "format": CREDIT_FORMAT,
        "format_version": CREDIT_FORMAT_VERSION,
        "sklearn_version": sklearn.__version__,
        "columns": list(CREDIT_COLUMNS),
        "categorical_columns": list(CREDIT_CATEGORICAL),
        "numeric_columns": list(CREDIT_NUMERIC),
        "onehot": {"categories": [c.tolist() for c in onehot.categories_]},
        "scaler": {
            "mean": scaler.mean_.tolist(),
            "var": scaler.var_.tolist(),
            "scale": scaler.scale_.tolist(),
            "n_samples_seen": int(scaler.n_samples_seen_),
        },
        "classifier": {
            "C": float(classifier.C),
            "coef": classifier.coef_.tolist(),
            "intercept": classifier.intercept_.tolist(),
            "classes": classifier.classes_.tolist(),
            "n_iter": np.asarray(classifier.n_iter_).tolist(),
        },
        "background": {
            "index": [int(i) for i in background.index],
            "rows": background[list(CREDIT_COLUMNS)].to_numpy(dtype=np.float64).tolist(),
        },
        "baseline": baseline[list(CREDIT_COLUMNS)].to_numpy(dtype=np.float64)[0].tolist(),
    }


def _check_credit_payload(payload: dict[str, Any]) -> None:
    """Raise ``ValueError`` unless ``payload`` is a credit model of this format for these columns."""
    found = (payload.get("format"), payload.get("format_version"))
    if found != (CREDIT_FORMAT, CREDIT_FORMAT_VERSION):
        msg = (
            f"The credit model file must have format {CREDIT_FORMAT!r} version {CREDIT_FORMAT_VERSION}. "
            f"Got {found[0]!r} version {found[1]!r} instead."
        )
        raise ValueError(msg)
    if payload["columns"] != list(CREDIT_COLUMNS):
        msg = f"The credit model's columns must be {list(CREDIT_COLUMNS)}. Got {payload['columns']} instead."
        raise ValueError(msg)


def credit_model_from_dict(payload: dict[str, Any]) -> Pipeline:
    """Rebuild the fitted credit pipeline from `credit_model_to_dict` output, without pickle.

    The ``ColumnTransformer`` is fitted on the stored background rows (which sets its internal
    column bookkeeping) and then every learned parameter is overwritten with the stored one: the
    scaler's mean/var/scale, the encoder's categories, the regression's coef/intercept/classes.

    Parameters
    ----------
    payload : dict
        As written by `credit_model_to_dict`.

    Returns
    -------
    sklearn.pipeline.Pipeline
        Fitted; ``predict_proba`` takes a frame with the columns `CREDIT_COLUMNS`.
    """
    _check_credit_payload(payload)
    params = payload["classifier"]
    pipeline = build_credit_pipeline(C=float(params["C"]))
    preprocess = pipeline.named_steps["preprocess"]
    preprocess.set_params(categorical__categories=payload["onehot"]["categories"])
    preprocess.fit(_background_frame(payload))
    scaler = preprocess.named_transformers_["numeric"]
    scaler.mean_ = np.asarray(payload["scaler"]["mean"], dtype=np.float64)
    scaler.var_ = np.asarray(payload["scaler"]["var"], dtype=np.float64)
    scaler.scale_ = np.asarray(payload["scaler"]["scale"], dtype=np.float64)
    scaler.n_samples_seen_ = int(payload["scaler"]["n_samples_seen"])
    classifier = pipeline.named_steps["classifier"]
    classifier.coef_ = np.asarray(params["coef"], dtype=np.float64)
    classifier.intercept_ = np.asarray(params["intercept"], dtype=np.float64)
    classifier.classes_ = np.asarray(params["classes"], dtype=np.int64)
    classifier.n_iter_ = np.asarray(params["n_iter"], dtype=np.int32).reshape(-1)
    classifier.n_features_in_ = classifier.coef_.shape[1]
    return pipeline


@lru_cache(maxsize=1)
def _credit_payload() -> dict[str, Any]:
    """Read ``weights/credit_model.json`` once per process (callers must not mutate the result)."""
    payload: dict[str, Any] = json.loads(CREDIT_MODEL_PATH.read_text(encoding="utf-8"))
    return payload


def _background_frame(payload: dict[str, Any]) -> pd.DataFrame:
    """Return the stored background rows as a float64 frame indexed by their `load_credit` row."""
    stored = payload["background"]
    return pd.DataFrame(
        np.asarray(stored["rows"], dtype=np.float64),
        columns=list(CREDIT_COLUMNS),
        index=pd.Index(stored["index"], dtype=np.int64),
    )


def load_credit_model() -> Pipeline:
    """Return the demo credit model: a fitted scikit-learn pipeline rebuilt from the shipped JSON.

    Returns
    -------
    sklearn.pipeline.Pipeline
        ``predict_proba(X)`` takes a frame shaped like `load_credit`'s ``X`` and returns
        probabilities for ``classes_ == [0, 1]`` (0 bad credit, 1 good). A new object each call.
    """
    return credit_model_from_dict(_credit_payload())


def credit_background() -> pd.DataFrame:
    """Return the 50 background rows: training rows drawn with seed 0, indexed by `load_credit` row.

    Returns
    -------
    pandas.DataFrame
        50 x 20 float64, columns `CREDIT_COLUMNS`.
    """
    return _background_frame(_credit_payload())


def credit_baseline() -> pd.DataFrame:
    """Return the baseline row: training mode of each categorical code, median of each number.

    Returns
    -------
    pandas.DataFrame
        1 x 20 float64, columns `CREDIT_COLUMNS`, index ``["baseline"]``.
    """
    row = np.asarray(_credit_payload()["baseline"], dtype=np.float64)[None, :]
    return pd.DataFrame(row, columns=list(CREDIT_COLUMNS), index=["baseline"])
