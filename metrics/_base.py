"""The Metric contract and its result type."""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import torch

import xai
from xai._validation import Constraint, check_params, check_random_state
from xai.adapters import ModelAdapter, as_adapter
from xai.exceptions import InvalidExplanationError

__all__ = ["Metric", "MetricResult"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class MetricResult:
    """Scores of one metric on one Explanation.

    Attributes
    ----------
    metric : str
        Registry name of the metric.
    scores : torch.Tensor of shape (n_examples,) or (n_examples, n_outputs)
    higher_is_better : bool
    params : Mapping[str, Any]
        The metric's parameters.
    explanation_method : str
        The method that produced the scored explanation.
    extras : Mapping[str, torch.Tensor]
        Diagnostics (curves, model-call counts).
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
    """Base of every evaluator: a frozen dataclass of parameters and one ``_score`` to implement."""

    name: ClassVar[str]
    higher_is_better: ClassVar[bool]
    category: ClassVar[Literal["faithfulness", "robustness", "fidelity", "responsiveness",
                               "complexity"]]
    needs_reexplain: ClassVar[bool] = False
    feature_spaces: ClassVar[tuple[type, ...]] = ()
    _constraints: ClassVar[Mapping[str, Sequence[Constraint]]] = {}

    def __post_init__(self) -> None:
        check_params(self, self._constraints)

    def __call__(self, explanation: xai.Explanation, model: Any, *,
                 random_state: int | torch.Generator | None = None) -> MetricResult:
        """Score ``explanation`` of ``model``: adapt, check, ``_score``, pack."""
        adapter = as_adapter(model)
        self._check(explanation)
        rng = check_random_state(random_state, owner=type(self).__name__)
        with adapter.session():
            scores = self._score(explanation, adapter, rng)
        params = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return MetricResult(metric=self.name, scores=scores, higher_is_better=self.higher_is_better,
                            params=params, explanation_method=explanation.method)

    def _check(self, explanation: xai.Explanation) -> None:
        if self.feature_spaces and not all(isinstance(f, self.feature_spaces)
                                           for f in explanation.features):
            need = " or ".join(t.__name__ for t in self.feature_spaces)
            msg = f"Metric {self.name!r} needs explanations over {need} features."
            raise InvalidExplanationError(msg)
        if not explanation.features:
            msg = (f"Metric {self.name!r} needs the explanation's feature spaces, which a loaded "
                   "Explanation does not have. Score it before saving, or re-explain.")
            raise InvalidExplanationError(msg)

    @abstractmethod
    def _score(self, explanation: xai.Explanation, adapter: ModelAdapter,
               rng: torch.Generator) -> torch.Tensor:
        """Per-example scores, shape (n_examples,) or (n_examples, n_outputs)."""
