"""Faithfulness: correlation with random-subset removal (Bhatt et al.), ERASER
comprehensiveness/sufficiency and AOPC, DIG log-odds."""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch

import xai
from xai.adapters import ModelAdapter
from xai.exceptions import XAIWarning
from xai.extend import (
    Constraint,
    InstanceOf,
    Interval,
    Options,
    as_probabilities,
    example_generators,
    score_masks,
)

from ._base import Category, Metric
from ._perturb import attribution_units, rows, score_keeps
from ._registry import register_metric

__all__ = ["AOPCComprehensiveness", "AOPCSufficiency", "Comprehensiveness",
           "FaithfulnessCorrelation", "LogOdds", "Sufficiency"]


@register_metric("faithfulness_correlation", aliases=("faithfulness",))
@dataclasses.dataclass(frozen=True, kw_only=True)
class FaithfulnessCorrelation(Metric):
    """Pearson correlation between the attribution mass of random feature subsets and the drop
    in the output when those subsets are removed (Bhatt et al. 2020, mu_F).

    For t = 1..n_subsets: S_t is a uniformly random subset of ``max(1, round(subset_fraction *
    d))`` features; s_t = sum of the attributions over S_t (in perturbation units, see Notes);
    delta_t = f(x) - f(x with S_t removed through the explanation's feature space). The score
    is corr(s, delta). Constant attributions (or a constant model) give NaN with a warning,
    never 0.

    Parameters
    ----------
    subset_fraction : float, default=0.2
        Share of the features removed at a time (at least one).
    n_subsets : int, default=100
        Random subsets per example (Quantus' default).

    Notes
    -----
    Attributions that sum to f(x) - f(baseline) (IG, occlusion, Shapley) are summed over S;
    gradient-like ones are first multiplied by x - baseline. Cost: n_subsets rows per example,
    batched.

    References
    ----------
    .. [1] Bhatt, Weller, Moura, "Evaluating and Aggregating Feature-based Model Explanations",
           IJCAI 2020, https://arxiv.org/abs/2005.00631
    """

    higher_is_better: ClassVar[bool] = True
    category: ClassVar[Category] = "faithfulness"
    reference: ClassVar[str] = "Bhatt et al. 2020, arXiv:2005.00631"
    _constraints: ClassVar[Mapping[str, Sequence[Constraint]]] = {
        "subset_fraction": [Interval(float, 0, 1, closed="neither")],
        "n_subsets": [Interval(int, 2, None, closed="left")],
    }

    subset_fraction: float = 0.2
    n_subsets: int = 100

    def _score(self, explanation: xai.Explanation, adapter: ModelAdapter, rng: torch.Generator,
               *, batch_size: int) -> tuple[torch.Tensor, dict[str, Any]]:
        gens = example_generators(rng, len(explanation))
        removed = [self._subsets(r.n_features, gens[r.index]) for r in rows(explanation)]
        scores, n_calls = score_keeps(adapter, explanation, [~m for m in removed],
                                      batch_size=batch_size)
        full = explanation.target.explained_scores()
        out = torch.full((len(explanation), explanation.n_outputs), float("nan"))
        for row, m, s in zip(rows(explanation), removed, scores, strict=True):
            units = attribution_units(explanation, row.features, removed=m)  # (T, d)
            mass = units @ row.values.T  # (T, o)
            drop = full[row.index] - s
            out[row.index] = pearson(mass.double(), drop.double()).float()
        if bool(out.isnan().any()):
            warnings.warn("Faithfulness correlation is NaN where the attributions or the model "
                          "outputs are constant over the sampled subsets.", XAIWarning,
                          stacklevel=3)
        return out, {"n_model_calls": n_calls}

    def _subsets(self, d: int, gen: torch.Generator) -> torch.Tensor:
        k = max(1, round(self.subset_fraction * d))
        order = torch.stack([torch.randperm(d, generator=gen) for _ in range(self.n_subsets)])
        removed = torch.zeros(self.n_subsets, d, dtype=torch.bool)
        removed.scatter_(1, order[:, :k], True)
        return removed


def pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Column-wise Pearson correlation of (T, o) tensors; NaN where a column is constant."""
    a = a - a.mean(0)
    b = b - b.mean(0)
    den = (a.square().sum(0) * b.square().sum(0)).sqrt()
    scale = torch.maximum(a.abs().amax(0), b.abs().amax(0)).clamp_min(1e-300)
    const = den <= 1e-12 * scale.square()
    return torch.where(const, torch.full_like(den, math.nan), (a * b).sum(0) / den)


def top_k(values: torch.Tensor, count: int) -> torch.Tensor:
    """Bool mask (o, d) of the ``count`` largest values per row; ties go to the earlier feature."""
    order = torch.argsort(-values, dim=-1, stable=True)
    mask = torch.zeros_like(values, dtype=torch.bool)
    mask.scatter_(-1, order[..., :count], True)
    return mask


def _probabilities(exp: xai.Explanation, scores: torch.Tensor,
                   index: torch.Tensor) -> torch.Tensor:
    """Scores (m, n_model_outputs) at ``index`` (m, k) as probabilities, read by the model's
    output kind (softmax of logits, ...); scores without a probability reading (regressors,
    margins) are used as they are."""
    probs = as_probabilities(scores, exp.model_info.output_kind)
    return (scores if probs is None else probs).gather(1, index)


@dataclasses.dataclass(frozen=True, kw_only=True)
class _TopKRemoval(Metric):
    """Shared machinery: remove or keep the top fraction(s) of features, compare probabilities."""

    category: ClassVar[Category] = "faithfulness"
    reference: ClassVar[str] = "DeYoung et al. 2020 (ERASER), arXiv:1911.03429"
    keep_top: ClassVar[bool] = False  # sufficiency keeps only the top features
    _constraints: ClassVar[Mapping[str, Sequence[Constraint]]] = {
        "by": [Options({"value", "abs"})],
    }

    by: str = "value"

    def fractions(self) -> tuple[float, ...]:
        raise NotImplementedError

    def _curve(self, explanation: xai.Explanation, adapter: ModelAdapter, *,
               batch_size: int) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
        """Probabilities at the input and after each fraction: (n, o) and (n, o, n_fractions)."""
        fracs = self.fractions()
        keeps, counts = [], []
        for row in rows(explanation):
            rank_values = row.values.abs() if self.by == "abs" else row.values
            per_frac = []
            for f in fracs:
                count = int(math.floor(f * row.n_features + 1e-9))
                counts.append(count)
                top = top_k(rank_values, count)  # (o, d)
                per_frac.append(top if self.keep_top else ~top)
            keeps.append(torch.stack(per_frac, 1).reshape(-1, row.n_features))  # (o*F, d)
        raw, n_calls = score_masks(adapter, explanation.features, keeps, batch_size=batch_size)
        assert explanation.target.scores is not None
        p0 = _probabilities(explanation, explanation.target.scores, explanation.target.indices)
        o, nf = explanation.n_outputs, len(fracs)
        after = torch.stack([
            _probabilities(explanation, s, row.targets.repeat_interleave(nf)[:, None]).reshape(o, nf)
            for row, s in zip(rows(explanation), raw, strict=True)])
        empty = sum(c == 0 for c in counts)
        extras = {"n_model_calls": n_calls, "fractions": fracs, "n_empty_rationales": empty}
        return p0, after, extras


@register_metric("comprehensiveness")
@dataclasses.dataclass(frozen=True, kw_only=True)
class Comprehensiveness(_TopKRemoval):
    """ERASER comprehensiveness: p(x)_j - p(x without the top features)_j; higher is better.

    The top ``floor(fraction * d)`` features by attribution (``by="value"``: most supportive of
    the explained class; ``"abs"``: largest magnitude; ties to the earlier feature) are removed
    through the explanation's feature space. Scores are probabilities (softmax of logits for
    transformers classifiers, ``predict_proba`` for scikit-learn, raw scores otherwise). When
    the fraction selects no feature the score is 0 (``extras["n_empty_rationales"]``).

    Parameters
    ----------
    fraction : float, default=0.2
        Share of the features in the rationale.
    by : {"value", "abs"}, default="value"

    References
    ----------
    .. [1] DeYoung et al., "ERASER: A Benchmark to Evaluate Rationalized NLP Models",
           ACL 2020, https://arxiv.org/abs/1911.03429
    """

    higher_is_better: ClassVar[bool] = True
    _constraints: ClassVar[Mapping[str, Sequence[Constraint]]] = {
        "fraction": [Interval(float, 0, 1, closed="right")], "by": [Options({"value", "abs"})]}

    fraction: float = 0.2

    def fractions(self) -> tuple[float, ...]:
        return (self.fraction,)

    def _score(self, explanation: xai.Explanation, adapter: ModelAdapter, rng: torch.Generator,
               *, batch_size: int) -> tuple[torch.Tensor, dict[str, Any]]:
        p0, after, extras = self._curve(explanation, adapter, batch_size=batch_size)
        return p0 - after[..., 0], extras


@register_metric("sufficiency")
@dataclasses.dataclass(frozen=True, kw_only=True)
class Sufficiency(Comprehensiveness):
    """ERASER sufficiency: p(x)_j - p(only the top features)_j; lower is better (can be < 0).

    Same parameters as :class:`Comprehensiveness`; everything but the rationale is removed.

    References
    ----------
    .. [1] DeYoung et al., "ERASER: A Benchmark to Evaluate Rationalized NLP Models",
           ACL 2020, https://arxiv.org/abs/1911.03429
    """

    higher_is_better: ClassVar[bool] = False
    keep_top: ClassVar[bool] = True


_BINS = (0.01, 0.05, 0.1, 0.2, 0.5)


@register_metric("aopc_comprehensiveness", aliases=("comprehensiveness_aopc",))
@dataclasses.dataclass(frozen=True, kw_only=True)
class AOPCComprehensiveness(_TopKRemoval):
    """Area over the perturbation curve: comprehensiveness averaged over the ERASER bins.

    Mean over the bins (default 1, 5, 10, 20, 50 %) of p(x)_j - p(x without the top bin)_j, the
    ERASER code's plain mean over the listed bins (the paper's formula divides by |B| + 1).
    ``extras["curve"]`` holds the per-bin values (n_examples, n_outputs, n_bins).

    Parameters
    ----------
    bins : tuple of float, default=(0.01, 0.05, 0.1, 0.2, 0.5)
    by : {"value", "abs"}, default="value"

    References
    ----------
    .. [1] DeYoung et al., "ERASER: A Benchmark to Evaluate Rationalized NLP Models",
           ACL 2020, https://arxiv.org/abs/1911.03429
    """

    higher_is_better: ClassVar[bool] = True
    _constraints: ClassVar[Mapping[str, Sequence[Constraint]]] = {
        "bins": [InstanceOf((tuple,), "a tuple of floats in (0, 1]")],
        "by": [Options({"value", "abs"})]}

    bins: tuple[float, ...] = _BINS

    def fractions(self) -> tuple[float, ...]:
        return tuple(self.bins)

    def _score(self, explanation: xai.Explanation, adapter: ModelAdapter, rng: torch.Generator,
               *, batch_size: int) -> tuple[torch.Tensor, dict[str, Any]]:
        p0, after, extras = self._curve(explanation, adapter, batch_size=batch_size)
        curve = p0.unsqueeze(-1) - after
        return curve.mean(-1), {**extras, "curve": curve}


@register_metric("aopc_sufficiency", aliases=("sufficiency_aopc",))
@dataclasses.dataclass(frozen=True, kw_only=True)
class AOPCSufficiency(AOPCComprehensiveness):
    """Sufficiency averaged over the ERASER bins (keep only the top bin); lower is better.

    References
    ----------
    .. [1] DeYoung et al., "ERASER: A Benchmark to Evaluate Rationalized NLP Models",
           ACL 2020, https://arxiv.org/abs/1911.03429
    """

    higher_is_better: ClassVar[bool] = False
    keep_top: ClassVar[bool] = True


@register_metric("log_odds")
@dataclasses.dataclass(frozen=True, kw_only=True)
class LogOdds(_TopKRemoval):
    """DIG log-odds: log p(x with the top features replaced)_j - log p(x)_j; lower is better.

    The top ``floor(fraction * d)`` features (default 20 %) are removed through the
    explanation's feature space (DIG replaces them with a baseline token); probabilities are
    clamped at 1e-12 before the log.

    References
    ----------
    .. [1] Sanyal & Ren, "Discretized Integrated Gradients for Explaining Language Models",
           EMNLP 2021, https://arxiv.org/abs/2108.13654
    """

    higher_is_better: ClassVar[bool] = False
    reference: ClassVar[str] = "Sanyal & Ren 2021, arXiv:2108.13654"
    _constraints: ClassVar[Mapping[str, Sequence[Constraint]]] = {
        "fraction": [Interval(float, 0, 1, closed="right")], "by": [Options({"value", "abs"})]}

    fraction: float = 0.2

    def fractions(self) -> tuple[float, ...]:
        return (self.fraction,)

    @classmethod
    def why_not(cls, explanation: xai.Explanation) -> str | None:
        reason = super().why_not(explanation)
        if reason is not None:
            return reason
        scores = explanation.target.scores
        probabilistic = explanation.model_info.output_kind != "scores" or (
            scores is not None and bool(((scores >= 0) & (scores <= 1)).all()))
        if not probabilistic:
            return "log-odds needs probability outputs (a classifier), and these scores are not"
        return None

    def _score(self, explanation: xai.Explanation, adapter: ModelAdapter, rng: torch.Generator,
               *, batch_size: int) -> tuple[torch.Tensor, dict[str, Any]]:
        p0, after, extras = self._curve(explanation, adapter, batch_size=batch_size)
        eps = 1e-12
        scores = after[..., 0].clamp_min(eps).log() - p0.clamp_min(eps).log()
        outside = ((p0 < 0) | (p0 > 1)).any(-1) | ((after < 0) | (after > 1)).flatten(1).any(-1)
        if bool(outside.any()):
            warnings.warn("Log-odds needs probabilities, but the model's scores leave [0, 1] "
                          "(a regressor or unnormalised outputs): those examples get NaN.",
                          XAIWarning, stacklevel=3)
            scores[outside] = float("nan")
        return scores, extras
