"""OLM and OLM-S: occlusion with language-model replacements (Harbecke & Alt 2020)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch

from .._capabilities import Capability, Modality
from .._registry import register_method
from .._validation import NONE_OK, Constraint, Interval, Options
from ..adapters._base import Batch, ModelAdapter
from ..explanation import ResolvedTarget
from ..features._base import FeatureSpace
from ..features.groups import FEATURE_GROUPS
from ._base import AttributionOutput, Method, example_generators
from ._budget import Cost
from ._resample import (
    RESAMPLER,
    check_resampler,
    class_probabilities,
    score_replacements,
    word_features,
)

__all__ = ["OLM"]

_DRAW_CHUNK = 2**16  # replacements drawn at a time


@register_method("olm")
@dataclasses.dataclass(frozen=True, kw_only=True)
class OLM(Method):
    """Occlusion with language modelling: the expected drop in a class probability when a word
    is replaced by what a language model finds likely in its context.

    ``r_c(i) = f_c(x) - E_{w ~ p(. | x without word i)} f_c(x with word i := w)``, where f_c are
    class probabilities. With ``statistic="std"`` the value is the standard deviation of
    f_c over the replacements (OLM-S, a sensitivity measure). Relevances of all classes sum to
    zero for every word, and a word the classifier ignores gets exactly 0.

    Parameters
    ----------
    resampler : TokenResampler
        Proposes replacements with probabilities, e.g. ``xai.MaskedLMResampler(mlm, tok)`` or
        ``xai.CausalLMResampler(lm, tok)``. Required.
    n_samples : int or None, default=100
        Replacements drawn per word with replacement (the reference's Monte-Carlo estimator);
        None takes the exact expectation over all candidates the resampler returns.
    statistic : {"mean", "std"}, default="mean"
        "std" gives OLM-S (population standard deviation, as the reference code).
    granularity : {"word"}, default="word"
        Words are replaced in text space, so the resampler's tokenizer may differ from the
        classifier's.
    feature_groups : None, dict of str to columns, or array-like of int, default=None
        Features switched on and off together, each group one feature of the explanation
        (captum's ``feature_mask``): a dict of group name to columns (tabular; unlisted columns
        stay single features), or an int group id per element, of one example's shape (shared)
        or one row per example. For text, one id per word (or token) of each text.

    Notes
    -----
    Cost per text: one resampler call (one batched LM pass for masked LMs) and at most
    ``n_words * n_samples`` classifier rows (distinct samples only), in
    ``ceil(rows / batch_size)`` calls; ``extras["n_model_calls"]``.

    References
    ----------
    .. [1] Harbecke & Alt, "Considering Likelihood in NLP Classification Explanations with
           Occlusion and Language Modeling", ACL SRW 2020, https://arxiv.org/abs/2004.09890
    """

    requires: ClassVar[Capability] = Capability.FORWARD | Capability.TOKENIZER
    modalities: ClassVar[frozenset[Modality]] = frozenset({"text"})
    deterministic: ClassVar[bool] = False
    reference: ClassVar[str] = "Harbecke & Alt 2020, arXiv:2004.09890"
    _constraints: ClassVar[Mapping[str, Sequence[Constraint]]] = {
        "resampler": RESAMPLER,
        "n_samples": [Interval(int, 1, None, closed="left"), NONE_OK],
        "statistic": [Options({"mean", "std"})],
        "granularity": [Options({"word"})],
        "feature_groups": FEATURE_GROUPS,
    }

    resampler: Any
    n_samples: int | None = 100
    statistic: str = "mean"
    granularity: str = "word"
    feature_groups: Any = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_resampler(self.resampler, "OLM")

    def _attribute(self, adapter: ModelAdapter, batch: Batch, features: tuple[FeatureSpace, ...],
                   target: ResolvedTarget, *, batch_size: int,
                   rng: torch.Generator) -> AttributionOutput:
        assert target.scores is not None
        p0 = class_probabilities(adapter, target.scores)
        values, n_calls = [], 0
        for i, gen in enumerate(example_generators(rng, len(features))):
            fs = word_features(features[i], "OLM")
            rep = score_replacements(adapter, fs, self.resampler,
                                     lambda j, c, g=gen: self._choose(c.probs, g),
                                     batch_size=batch_size)
            n_calls += rep.n_model_calls
            cols = target.indices[i]
            per_word = []
            for w, p in zip(rep.weights, rep.probs, strict=True):
                drop = p0[i, cols] - p[:, cols]  # (n_used, o); exactly 0 for an ignored word
                mean = w @ drop
                if self.statistic == "mean":
                    per_word.append(mean)
                else:
                    per_word.append((w @ (drop - mean).square()).sqrt())
            values.append(torch.stack(per_word, dim=1))  # (o, d)
        return AttributionOutput(values, extras={"n_model_calls": torch.tensor(n_calls)})

    def _choose(self, probs: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor,
                                                                        torch.Tensor]:
        """Distinct candidate indices and their weights (counts / n, or exact probabilities)."""
        if self.n_samples is None:
            keep = (probs > 0).nonzero()[:, 0]
            return keep, probs[keep] / probs[keep].sum()
        counts = torch.zeros(probs.shape[0], dtype=torch.int64)
        for start in range(0, self.n_samples, _DRAW_CHUNK):  # bounded memory for any n_samples
            k = min(_DRAW_CHUNK, self.n_samples - start)
            draws = torch.multinomial(probs.float(), k, replacement=True, generator=gen)
            counts += torch.bincount(draws, minlength=probs.shape[0])
        uniq = counts.nonzero()[:, 0]
        return uniq, counts[uniq].double() / self.n_samples

    def cost(self, features: tuple[FeatureSpace, ...], n_outputs: int, batch_size: int,
             row_bytes: int) -> Cost | None:
        """n_samples replacement draws per word (the classifier scores only distinct ones)."""
        if self.n_samples is None:
            return None
        draws = self.n_samples * sum(f.n_features for f in features)
        return Cost("OLM", "n_samples", self.n_samples, draws, 8, _DRAW_CHUNK,
                    holds="draws", unit="replacement draws",
                    fix="the Monte-Carlo error shrinks as 1/sqrt(n_samples); n_samples=None "
                        "takes the exact expectation over the resampler's candidates.")
