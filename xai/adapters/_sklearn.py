"""Adapter for fitted scikit-learn estimators (classifiers and regressors)."""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np
import torch

from .._capabilities import Capability
from .._validation import Options, check_param
from ..exceptions import UnsupportedModelError
from ._base import Batch, ModelAdapter
from ._calls import as_scores, describe_call, model_call
from ._tabular import prepare_tabular, tabular_features

__all__ = ["SklearnAdapter"]

_RESPONSES = ("predict_proba", "decision_function", "predict")


class SklearnAdapter(ModelAdapter):
    """A fitted scikit-learn estimator; scores come from its response method.

    Parameters
    ----------
    estimator : fitted estimator
    response : {"auto", "predict_proba", "decision_function", "predict"}, default="auto"
        "auto" takes the first of predict_proba, decision_function, predict that the estimator has;
        the resolved choice is recorded in ``describe()``.
    background : array-like, optional
        Training data; its mean is the ``baseline="mean"``, and kernel_shap uses it as background.

    Notes
    -----
    An estimator fitted on a DataFrame knows its columns (``feature_names_in_``, also through a
    Pipeline): DataFrame inputs, baselines and backgrounds are then aligned to them by name, as
    scikit-learn itself does, and a missing or unexpected column is an InvalidInputError.
    """

    capabilities: ClassVar[Capability] = Capability.FORWARD

    def __init__(self, estimator: Any, *, response: str = "auto", background: Any = None) -> None:
        check_param("SklearnAdapter", "response", response, [Options({"auto", *_RESPONSES})])
        _check_fitted(estimator)
        self._model = estimator
        if response == "auto":
            response = next(r for r in _RESPONSES if hasattr(estimator, r))
        elif not hasattr(estimator, response):
            msg = (f"The 'response' parameter of SklearnAdapter is {response!r}, but "
                   f"{type(estimator).__name__} has no {response} method. Use response='auto'.")
            raise UnsupportedModelError(msg)
        self.response = response
        self.output_kind = "probabilities" if response == "predict_proba" else "scores"
        self.modality = "tabular"
        self.background = None if background is None else prepare_tabular(
            background, model_name=type(estimator).__name__, name="background",
            owner="SklearnAdapter", n_features=getattr(estimator, "n_features_in_", None),
            columns=self._columns()).inputs

    def _columns(self) -> list[str] | None:
        cols = getattr(self._model, "feature_names_in_", None)
        return None if cols is None else [str(c) for c in cols]

    def output_names(self) -> tuple[str, ...] | None:
        classes = getattr(self._model, "classes_", None)
        if classes is None or self.response == "predict":
            return None
        if self.response == "decision_function" and len(classes) == 2:
            return (str(classes[1]),)
        return tuple(str(c) for c in classes)

    def prepare(self, inputs: Any) -> Batch:
        return prepare_tabular(inputs, model_name=type(self._model).__name__,
                               n_features=getattr(self._model, "n_features_in_", None),
                               columns=self._columns())

    def predict(self, inputs: Batch) -> torch.Tensor:
        x: Any = inputs.inputs.detach().cpu().numpy().astype(np.float64)
        if getattr(self._model, "feature_names_in_", None) is not None:
            import pandas as pd

            x = pd.DataFrame(x, columns=list(self._model.feature_names_in_))
        name = type(self._model).__name__
        with warnings.catch_warnings(), model_call(
                f"{name}.{self.response}", "SklearnAdapter", describe_call(x)):
            warnings.filterwarnings("ignore", message="X does not have valid feature names")
            out = getattr(self._model, self.response)(x)
        fix = ("Use a response that returns numbers, e.g. adapter_options={'response': "
               "'predict_proba'} for a classifier." if self.response == "predict" else "")
        scores = as_scores(out, x.shape[0], model=f"{name}.{self.response}",
                           adapter="SklearnAdapter", noun="estimator", fix=fix)
        return self.same_outputs(scores, model=f"{name}.{self.response}", noun="estimator")

    def features(self, batch: Batch, *, granularity: str = "auto", baseline: Any = "auto",
                 owner: str = "explain", groups: Any = None) -> tuple[Any, ...]:
        return tabular_features(batch, baseline=baseline, owner=owner, background=self.background,
                                groups=groups)

    def describe(self) -> dict[str, str]:
        return {"adapter": "SklearnAdapter", "model": type(self._model).__name__,
                "response": self.response}

    def __repr__(self) -> str:
        return f"SklearnAdapter({type(self._model).__name__}())"


def _check_fitted(estimator: Any) -> None:
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(estimator)
    except NotFittedError as err:
        name = type(estimator).__name__
        msg = (f"This {name} instance is not fitted yet. Call 'fit' with appropriate arguments "
               "before explaining it.")
        raise UnsupportedModelError(msg) from err
