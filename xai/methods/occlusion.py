"""Occlusion (leave-one-out, or a sliding window of features switched off at a time)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch

from .._capabilities import Capability, Modality
from .._registry import register_method
from .._validation import Constraint, Interval, Options
from ..adapters._base import Batch, ModelAdapter
from ..explanation import ResolvedTarget
from ..features._base import FeatureSpace
from ._base import AttributionOutput, Method
from ._perturb import score_masks

__all__ = ["Occlusion"]


@register_method("occlusion")
@dataclasses.dataclass(frozen=True, kw_only=True)
class Occlusion(Method):
    """Occlusion: the drop in the output when a window of features is switched off.

    ``value_j = mean over windows W containing j of f(x) - f(x with W removed)``. With
    ``window=1`` this is leave-one-out. All masks of all examples go through the model together,
    ``batch_size`` rows per call, plus one all-removed row per example for ``base_values``.

    Parameters
    ----------
    baseline : "auto", "zeros", "mean", number, array, or "pad"/"mask"/"unk"/"delete" for text
        How a feature is removed. "auto" is zeros for tensors and "pad" for text.
    window : int, default=1
        Consecutive features removed together (a sliding window over words for text).
    stride : int, default=1
        Step between windows.
    granularity : {"auto", "word", "token"}, default="auto"
        Text only ("auto" = "word").

    References
    ----------
    .. [1] Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014,
           https://arxiv.org/abs/1311.2901
    .. [2] Harbecke & Alt, "Considering Likelihood in NLP Classification Explanations with
           Occlusion and Language Modeling", ACL SRW 2020 (the Unk and Delete baselines).
    """

    requires: ClassVar[Capability] = Capability.FORWARD
    modalities: ClassVar[frozenset[Modality]] = frozenset({"tabular", "image", "text"})
    reference: ClassVar[str] = "Zeiler & Fergus 2014, arXiv:1311.2901"
    _constraints: ClassVar[Mapping[str, Sequence[Constraint]]] = {
        "window": [Interval(int, 1, None, closed="left")],
        "stride": [Interval(int, 1, None, closed="left")],
        "granularity": [Options({"auto", "word", "token"})],
    }

    baseline: Any = "auto"
    window: int = 1
    stride: int = 1
    granularity: str = "auto"

    @classmethod
    def _test_params(cls) -> list[dict[str, Any]]:
        return [{}, {"window": 2}]

    def _attribute(self, adapter: ModelAdapter, batch: Batch, features: tuple[FeatureSpace, ...],
                   target: ResolvedTarget, *, batch_size: int,
                   rng: torch.Generator) -> AttributionOutput:
        keeps, covers = zip(*(self._masks(f.n_features) for f in features), strict=True)
        scores, n_calls = score_masks(adapter, features, keeps, batch_size=batch_size)
        full = target.explained_scores()
        values, base = [], []
        for i, (s, cover) in enumerate(zip(scores, covers, strict=True)):
            s = s[:, target.indices[i]]  # (n_windows + 1, n_outputs)
            drop = full[i] - s[:-1]  # (n_windows, n_outputs)
            total = cover.T.float() @ drop  # (n_features, n_outputs)
            values.append((total / cover.sum(0).clamp_min(1).unsqueeze(1)).T)
            base.append(s[-1])
        extras = {"n_model_calls": torch.tensor(n_calls),
                  "n_rows": torch.tensor(sum(k.shape[0] for k in keeps))}
        return AttributionOutput(values, base_values=torch.stack(base), extras=extras)

    def _masks(self, n_features: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Keep-masks (one per window, then all-removed) and window coverage (n_windows, n_f)."""
        width = min(self.window, n_features)
        starts = list(range(0, n_features - width + 1, self.stride))
        if starts[-1] != n_features - width:  # the last window reaches the last feature
            starts.append(n_features - width)
        cover = torch.zeros(len(starts), n_features, dtype=torch.bool)
        for r, s in enumerate(starts):
            cover[r, s:s + width] = True
        keep = torch.cat([~cover, torch.zeros(1, n_features, dtype=torch.bool)])
        return keep, cover
