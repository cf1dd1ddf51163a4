"""Complexity: entropy of the fractional absolute attribution (Bhatt et al. 2020)."""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any, ClassVar

import torch

import xai
from xai.adapters import ModelAdapter
from xai.exceptions import XAIWarning

from ._base import Category, Metric
from ._registry import register_metric

__all__ = ["Complexity"]


@register_metric("complexity")
@dataclasses.dataclass(frozen=True, kw_only=True)
class Complexity(Metric):
    """Entropy of |a| / sum |a| over the features (natural log, 0 ln 0 = 0).

    0 for an attribution on one feature, ln d for a uniform one; lower is simpler. An
    all-zero attribution has no distribution: NaN with a warning. No model calls.

    References
    ----------
    .. [1] Bhatt, Weller, Moura, "Evaluating and Aggregating Feature-based Model Explanations",
           IJCAI 2020, https://arxiv.org/abs/2005.00631
    """

    higher_is_better: ClassVar[bool] = False
    category: ClassVar[Category] = "complexity"
    needs_model: ClassVar[bool] = False
    reference: ClassVar[str] = "Bhatt et al. 2020, arXiv:2005.00631"

    def _score(self, explanation: xai.Explanation, adapter: ModelAdapter, rng: torch.Generator,
               *, batch_size: int) -> tuple[torch.Tensor, dict[str, Any]]:
        out = torch.full((len(explanation), explanation.n_outputs), float("nan"))
        for i in range(len(explanation)):  # the values alone: a loaded explanation scores too
            out[i] = entropy(explanation.values[i][:, explanation.valid(i)].double()).float()
        nan = out.isnan().any(-1).nonzero().flatten().tolist()
        if nan:
            warnings.warn(f"Complexity is NaN for example(s) {', '.join(map(str, nan[:5]))}: "
                          "all-zero attributions have no distribution.",
                          XAIWarning, stacklevel=3)
        return out, {"n_model_calls": 0}


def entropy(values: torch.Tensor) -> torch.Tensor:
    """Entropy of |values| / sum |values| along the last axis; NaN where the sum is 0."""
    mag = values.abs()
    total = mag.sum(-1, keepdim=True)
    p = mag / total
    terms = torch.where(p > 0, -p * p.log(), torch.zeros_like(p))
    return torch.where(total[..., 0] > 0, terms.sum(-1), torch.full_like(total[..., 0], float("nan")))
