"""Input marginalization (Kim et al. 2020): weight of evidence against an LM-marginalised input."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch

from .._capabilities import Capability, Modality
from .._registry import register_method
from .._validation import Constraint, InstanceOf, Interval, Options
from ..adapters._base import Batch, ModelAdapter
from ..explanation import ResolvedTarget
from ..features._base import FeatureSpace
from ..features.groups import FEATURE_GROUPS
from ._base import AttributionOutput, Method
from ._resample import (
    RESAMPLER,
    check_resampler,
    class_probabilities,
    score_replacements,
    word_features,
)

__all__ = ["InputMarginalization", "weight_of_evidence"]


def weight_of_evidence(p: torch.Tensor) -> torch.Tensor:
    """log2 odds of ``p`` with the reference code's 1e-12 guard: log2(p / (1 + 1e-12 - p))."""
    return torch.log2(p.clamp_min(1e-12) / (1 + 1e-12 - p))


@register_method("input_marginalization")
@dataclasses.dataclass(frozen=True, kw_only=True)
class InputMarginalization(Method):
    """Weight of evidence of each word: log2 odds p(y | x) minus log2 odds of the prediction
    with the word marginalised out under a language model.

    ``m_i = sum_{w: q(w) >= min_prob} q(w) p(y | x with word i := w)`` (divided by the kept
    mass when ``renormalize``), ``a_i = log2 odds p(y | x) - log2 odds m_i``. Positive values
    support the explained class. A word the classifier ignores gets exactly 0.

    Parameters
    ----------
    resampler : TokenResampler
        Proposes replacements with probabilities q(w | rest). Required.
    min_prob : float, default=1e-5
        Candidates below this probability are dropped (the paper's sigma = 1e-5; some
        re-implementations use 1e-4). Must lie in (0, 1).
    renormalize : bool, default=True
        Divide the truncated sum by the kept probability mass (as the ``anguyen8/im`` code);
        False is the paper-literal truncated sum.
    granularity : {"word"}, default="word"
    feature_groups : None, dict of str to columns, or array-like of int, default=None
        Features switched on and off together, each group one feature of the explanation
        (captum's ``feature_mask``): a dict of group name to columns (tabular; unlisted columns
        stay single features), or an int group id per element, of one example's shape (shared)
        or one row per example. For text, one id per word (or token) of each text.

    References
    ----------
    .. [1] Kim, Yi, Kim, Yoon, "Interpretation of NLP models through input marginalization",
           EMNLP 2020, https://arxiv.org/abs/2010.13984
    """

    requires: ClassVar[Capability] = Capability.FORWARD | Capability.TOKENIZER
    modalities: ClassVar[frozenset[Modality]] = frozenset({"text"})
    reference: ClassVar[str] = "Kim et al. 2020, arXiv:2010.13984"
    _constraints: ClassVar[Mapping[str, Sequence[Constraint]]] = {
        "resampler": RESAMPLER,
        "min_prob": [Interval(float, 0, 1, closed="neither")],
        "renormalize": [InstanceOf((bool,), "a bool")],
        "granularity": [Options({"word"})],
        "feature_groups": FEATURE_GROUPS,
    }

    resampler: Any
    min_prob: float = 1e-5
    renormalize: bool = True
    granularity: str = "word"
    feature_groups: Any = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_resampler(self.resampler, "InputMarginalization")

    def _choose(self, probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        keep = (probs >= self.min_prob).nonzero()[:, 0]
        w = probs[keep]
        return keep, (w / w.sum() if self.renormalize and float(w.sum()) > 0 else w)

    def _attribute(self, adapter: ModelAdapter, batch: Batch, features: tuple[FeatureSpace, ...],
                   target: ResolvedTarget, *, batch_size: int,
                   rng: torch.Generator) -> AttributionOutput:
        assert target.scores is not None
        p0 = class_probabilities(adapter, target.scores)
        values, n_calls, n_cands = [], 0, []
        for i, fs in enumerate(features):
            rep = score_replacements(adapter, word_features(fs, "InputMarginalization"),
                                     self.resampler, lambda j, c: self._choose(c.probs),
                                     batch_size=batch_size)
            n_calls += rep.n_model_calls
            cols = target.indices[i]
            # renormalised weights sum to 1: write the marginal as p0 + sum w (f - p0), which is
            # exactly p0 (a weight of evidence of exactly 0) for a word the classifier ignores
            base = p0[i, cols] if self.renormalize else torch.zeros_like(p0[i, cols])
            marginal = torch.stack([base + w @ (p[:, cols] - base)
                                    for w, p in zip(rep.weights, rep.probs, strict=True)], dim=1)
            values.append(weight_of_evidence(p0[i, cols]).unsqueeze(1) -
                          weight_of_evidence(marginal))
            n_cands.append(sum(len(w) for w in rep.weights))
        extras = {"n_model_calls": torch.tensor(n_calls), "n_candidates": torch.tensor(n_cands)}
        return AttributionOutput(values, extras=extras)
