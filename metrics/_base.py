"""The Metric contract and its result type."""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import torch

import xai
from xai.adapters import ModelAdapter, as_adapter
from xai.exceptions import IncompatibleModelError, InvalidExplanationError
from xai.extend import (
    DEFAULT_BATCH_SIZE,
    Constraint,
    NamedFeatures,
    check_params,
    check_random_state,
    resolve_batch_size,
)

from ._registry import METRICS

__all__ = ["Metric", "MetricResult"]

#: Methods whose values are not attributions, with what they are: no metric scores them.
NOT_ATTRIBUTIONS: Mapping[str, str] = {
    "responsiveness": "probabilities that acting on a feature reaches the target",
}

Category = Literal["faithfulness", "robustness", "fidelity", "responsiveness", "complexity"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class MetricResult:
    """Scores of one metric on one Explanation.

    Attributes
    ----------
    metric : str
        Registry name of the metric.
    scores : torch.Tensor of shape (n_examples, n_outputs)
        One score per example and explained output (NaN where undefined, with a warning).
    higher_is_better : bool
    params : Mapping[str, Any]
        The metric's parameters.
    explanation_method : str
        The method that produced the scored explanation.
    extras : Mapping[str, Any]
        Diagnostics: model-call counts, curves, resolved defaults.
    """

    metric: str
    scores: torch.Tensor
    higher_is_better: bool
    params: Mapping[str, Any]
    explanation_method: str
    extras: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def mean(self) -> float:
        """Mean over finite scores (NaN when there is none)."""
        finite = self.scores[torch.isfinite(self.scores)]
        return float(finite.mean()) if finite.numel() else math.nan

    def __repr__(self) -> str:
        arrow = "higher is better" if self.higher_is_better else "lower is better"
        return (f"MetricResult({self.metric!r}, mean={self.mean():.4g}, n={self.scores.shape[0]}, "
                f"{arrow}, method={self.explanation_method!r})")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Metric(ABC):
    """Base of every evaluator: a frozen dataclass of parameters and one ``_score`` to implement.

    ``metric(explanation, model)`` adapts the model, checks that the explanation can be scored
    with it, and calls ``_score`` inside the adapter's session. Metrics hold no state.
    """

    name: ClassVar[str]
    higher_is_better: ClassVar[bool]
    category: ClassVar[Category]
    needs_reexplain: ClassVar[bool] = False
    needs_model: ClassVar[bool] = True
    feature_spaces: ClassVar[tuple[type, ...]] = ()
    modalities: ClassVar[frozenset[str]] = frozenset({"tabular", "image", "text"})
    reference: ClassVar[str] = ""
    #: Parameters without a usable default (``action_set``): the metric joins the default list
    #: of ``evaluate`` only when they are given.
    needs_params: ClassVar[tuple[str, ...]] = ()
    _constraints: ClassVar[Mapping[str, Sequence[Constraint]]] = {}

    def __post_init__(self) -> None:
        check_params(self, self._constraints)

    def get_params(self) -> dict[str, Any]:
        """The metric's parameters as a dict."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def why_not(cls, explanation: xai.Explanation) -> str | None:
        """Why this metric cannot score ``explanation``, or None when it can."""
        lack = cls._unscorable(explanation)
        if lack is not None:
            return lack[0]
        if explanation.method in NOT_ATTRIBUTIONS:
            return (f"{explanation.method!r} values are {NOT_ATTRIBUTIONS[explanation.method]}, "
                    "not attributions; score the explanations whose reasons they check")
        if explanation.modality not in cls.modalities:
            return (f"it scores {', '.join(sorted(cls.modalities))} explanations, not "
                    f"{explanation.modality!r} ones")
        if cls.feature_spaces and not all(isinstance(f, cls.feature_spaces)
                                          for f in explanation.features):
            need = " or ".join(t.__name__ for t in cls.feature_spaces)
            return f"it needs {need} features"
        return None

    @classmethod
    def _unscorable(cls, explanation: xai.Explanation) -> tuple[str, str] | None:
        """What the explanation lacks for this metric (features, or the model's feature
        spaces), and the fix; None when it has what the metric needs."""
        if explanation.n_features == 0:
            return ("the explanation has 0 features, so there is nothing to score",
                    "Explain inputs that have at least one feature")
        if explanation.feature_mask is not None:
            empty = [i for i, m in enumerate(explanation.feature_mask) if not bool(m.any())]
            if empty:
                return (f"example(s) {', '.join(map(str, empty[:5]))} of the explanation have "
                        "no real feature (every position is padding)",
                        "Explain inputs that have at least one feature each")
        if not cls.needs_model:
            return None
        named = [f for f in explanation.features if isinstance(f, NamedFeatures)]
        if named or explanation.inputs is None:
            kind = named[0].kind if named else ""
            source = ("a hand-built explanation, or one loaded from a file of format version 1 "
                      "or 2" if kind in ("", "NamedFeatures") else
                      f"its {kind} could not be saved with it")
            return ("it perturbs the inputs through the explanation's feature spaces, and this "
                    f"explanation knows its features only by name ({source})",
                    "Re-explain the inputs with the model")
        return None

    @classmethod
    def applies_to(cls, explanation: xai.Explanation) -> bool:
        """Whether this metric can score ``explanation``."""
        return cls.why_not(explanation) is None

    def __call__(self, explanation: xai.Explanation, model: Any, *,
                 batch_size: int | str = "auto",
                 random_state: int | torch.Generator | None = None) -> MetricResult:
        """Score ``explanation`` of ``model``; see :func:`metrics.evaluate`."""
        adapter = as_adapter(model, inputs=explanation.inputs)
        self.check(explanation, adapter)
        bs = resolve_batch_size(batch_size, adapter, type(self).__name__)
        rng = check_random_state(random_state, owner=type(self).__name__)
        with adapter.session():
            out = self._score(explanation, adapter, rng, batch_size=bs)
        scores, extras = out if isinstance(out, tuple) else (out, {})
        if scores.dim() == 1:
            scores = scores[:, None]
        return MetricResult(metric=self.name, scores=scores.float(),
                            higher_is_better=self.higher_is_better, params=self.get_params(),
                            explanation_method=explanation.method, extras=extras)

    def check(self, explanation: xai.Explanation, adapter: ModelAdapter) -> None:
        """Raise a typed error when ``explanation`` cannot be scored with ``adapter``.

        InvalidExplanationError when the explanation lacks what the metric needs (features, or
        the feature spaces a loaded explanation has lost) or holds non-finite values;
        IncompatibleModelError when the metric does not apply to this kind of explanation.
        """
        lack = self._unscorable(explanation)
        if lack is not None:
            works = ", ".join(METRICS.applicable(explanation)) or "none"
            msg = (f"Metric {self.name!r} cannot score this explanation: {lack[0]}. {lack[1]}. "
                   f"Metrics that apply: {works}.")
            raise InvalidExplanationError(msg)
        reason = self.why_not(explanation)
        if reason is not None:
            works = ", ".join(METRICS.applicable(explanation)) or "none"
            msg = (f"Metric {self.name!r} does not apply to this explanation: {reason}. "
                   f"Metrics that apply: {works}.")
            raise IncompatibleModelError(msg, method=self.name)
        if not bool(torch.isfinite(explanation.values).all()):
            msg = (f"The explanation's values contain NaN or inf; metric {self.name!r} cannot "
                   "rank or sum them. Recompute the explanation.")
            raise InvalidExplanationError(msg)
        if self.needs_model:
            _check_same_model(explanation, adapter, self.name)

    @abstractmethod
    def _score(self, explanation: xai.Explanation, adapter: ModelAdapter, rng: torch.Generator,
               *, batch_size: int) -> torch.Tensor | tuple[torch.Tensor, dict[str, Any]]:
        """Scores of shape (n_examples, n_outputs) (or (n_examples,)), optionally with extras."""


def _check_same_model(explanation: xai.Explanation, adapter: ModelAdapter, name: str) -> None:
    """The explanation must have been computed for this model on these inputs."""
    from xai.exceptions import XAIError

    assert explanation.inputs is not None  # checked by Metric._unscorable
    try:
        with torch.no_grad():
            scores = adapter.predict_batched(explanation.inputs,
                                             DEFAULT_BATCH_SIZE.get(adapter.modality, 256))
    except (XAIError, RuntimeError, ValueError) as err:
        msg = (f"The explanation's inputs cannot be run through this model ({err}). Score an "
               "explanation with the model that produced it.")
        raise InvalidExplanationError(msg) from err
    top = int(explanation.target.indices.max())
    if scores.shape[1] <= top:
        n_out = scores.shape[1]
        msg = (f"The explanation explains output {top}, but this model has {n_out} "
               f"output{'s' if n_out != 1 else ''}. Score an explanation with the model that "
               "produced it.")
        raise InvalidExplanationError(msg)
    if explanation.predictions is not None:
        now = scores.gather(1, explanation.target.indices)
        if not torch.allclose(now, explanation.predictions, rtol=1e-3, atol=1e-4):
            gap = float((now - explanation.predictions).abs().max())
            msg = (f"This model's scores differ from the explanation's predictions by up to "
                   f"{gap:.3g}: the explanation was computed for another model or other inputs. "
                   "Score an explanation with the model that produced it.")
            raise InvalidExplanationError(msg)
