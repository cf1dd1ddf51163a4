"""Shapley values by permutation sampling with antithetic pairs (Castro et al. 2009)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch

from .._capabilities import Capability, Modality
from .._registry import register_method
from .._validation import Constraint, InstanceOf, Interval, Options
from ..adapters._base import Batch, ModelAdapter
from ..explanation import ResolvedTarget
from ..features._base import FeatureSpace
from ._base import AttributionOutput, Method, example_generators, pad_stack
from ._perturb import score_masks

__all__ = ["ShapleySampling"]


@register_method("shapley_sampling")
@dataclasses.dataclass(frozen=True, kw_only=True)
class ShapleySampling(Method):
    """Shapley values estimated by sampling feature orderings.

    For each sampled permutation, features are switched on one at a time from the baseline
    (everything removed) to the input, and each feature is credited with the change it causes.
    Every permutation's credits telescope to f(x) - f(baseline), so efficiency
    (``values.sum(-1) == f(x) - base_values``) holds exactly for any number of permutations.
    With ``antithetic=True`` each permutation is paired with its reverse, which cancels much of
    the variance for near-additive models.

    Parameters
    ----------
    n_permutations : int, default=50
        Permutations per example (pairs count twice). Cost: n_permutations * (d - 1) + 2 model rows.
    antithetic : bool, default=True
        Pair each permutation with its reverse (n_permutations must then be even).
    baseline : "auto", "zeros", "mean", number, array, or "pad"/"mask"/"unk"/"delete" for text
    granularity : {"auto", "word", "token"}, default="auto"

    Notes
    -----
    ``extras["stderr"]`` (n_examples, n_outputs, n_features) is the standard error of each
    value over independent draws (antithetic pairs averaged first).

    References
    ----------
    .. [1] Castro, Gomez, Tejada, "Polynomial calculation of the Shapley value based on
           sampling", Computers & Operations Research 36(5), 2009.
    .. [2] Strumbelj & Kononenko, "Explaining prediction models and individual predictions
           with feature contributions", KAIS 2014.
    """

    requires: ClassVar[Capability] = Capability.FORWARD
    modalities: ClassVar[frozenset[Modality]] = frozenset({"tabular", "image", "text"})
    deterministic: ClassVar[bool] = False
    reference: ClassVar[str] = "Castro et al. 2009, doi:10.1016/j.cor.2008.04.004"
    _constraints: ClassVar[Mapping[str, Sequence[Constraint]]] = {
        "n_permutations": [Interval(int, 1, None, closed="left")],
        "antithetic": [InstanceOf((bool,), "a bool")],
        "granularity": [Options({"auto", "word", "token"})],
    }

    n_permutations: int = 50
    antithetic: bool = True
    baseline: Any = "auto"
    granularity: str = "auto"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.antithetic and self.n_permutations % 2:
            from ..exceptions import InvalidParameterError

            msg = (f"The 'n_permutations' parameter of ShapleySampling must be even when "
                   f"antithetic=True (permutations come in pairs). Got {self.n_permutations} "
                   f"instead. Use {self.n_permutations + 1} or antithetic=False.")
            raise InvalidParameterError(msg, owner="ShapleySampling", parameter="n_permutations",
                                        value=self.n_permutations)

    @classmethod
    def _test_params(cls) -> list[dict[str, Any]]:
        return [{"n_permutations": 4}, {"n_permutations": 3, "antithetic": False}]

    def permutations(self, n_features: int, gen: torch.Generator) -> torch.Tensor:
        """The sampled orderings, (n_permutations, n_features)."""
        n_draw = self.n_permutations // 2 if self.antithetic else self.n_permutations
        perms = torch.stack([torch.randperm(n_features, generator=gen) for _ in range(n_draw)])
        if self.antithetic:
            perms = torch.stack([perms, perms.flip(1)], dim=1).reshape(-1, n_features)
        return perms

    def _attribute(self, adapter: ModelAdapter, batch: Batch, features: tuple[FeatureSpace, ...],
                   target: ResolvedTarget, *, batch_size: int,
                   rng: torch.Generator) -> AttributionOutput:
        gens = example_generators(rng, len(features))
        perms = [self.permutations(f.n_features, g) for f, g in zip(features, gens, strict=True)]
        keeps = [_chain_masks(p) for p in perms]
        scores, n_calls = score_masks(adapter, features, keeps, batch_size=batch_size)
        values, stderr, base = [], [], []
        for i, (p, s) in enumerate(zip(perms, scores, strict=True)):
            v, se, b = self._credit(p, s[:, target.indices[i]])
            values.append(v)
            stderr.append(se)
            base.append(b)
        extras = {"stderr": pad_stack(stderr), "n_model_calls": torch.tensor(n_calls),
                  "n_rows": torch.tensor(sum(k.shape[0] for k in keeps))}
        return AttributionOutput(values, base_values=torch.stack(base), extras=extras)

    def _credit(self, perms: torch.Tensor,
                scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Marginal contributions from chain scores: values, stderr (n_out, d), f(baseline)."""
        n_perm, d = perms.shape
        empty, full, middle = scores[0], scores[1], scores[2:]
        chain = torch.cat([empty.expand(n_perm, 1, -1),
                           middle.reshape(n_perm, d - 1, scores.shape[1]),
                           full.expand(n_perm, 1, -1)], dim=1)  # (P, d + 1, o)
        gains = chain[:, 1:] - chain[:, :-1]  # (P, d, o): gain of the k-th added feature
        contrib = torch.zeros_like(gains)
        contrib.scatter_(1, perms.unsqueeze(-1).expand_as(gains), gains)  # by feature id
        if self.antithetic:
            contrib = contrib.reshape(n_perm // 2, 2, d, -1).mean(1)
        m = contrib.shape[0]
        stderr = contrib.std(0, unbiased=True) / math.sqrt(m) if m > 1 else \
            torch.full_like(contrib[0], float("nan"))
        return contrib.mean(0).T, stderr.T, empty


def _chain_masks(perms: torch.Tensor) -> torch.Tensor:
    """Rows: empty, full, then for each permutation the d - 1 proper prefixes (k = 1..d-1)."""
    n_perm, d = perms.shape
    rank = torch.empty_like(perms)
    rank.scatter_(1, perms, torch.arange(d).expand(n_perm, d))  # position of each feature
    k = torch.arange(1, d).view(1, d - 1, 1)
    prefixes = rank.unsqueeze(1) < k  # (P, d - 1, d): feature kept if among the first k
    ends = torch.stack([torch.zeros(d, dtype=torch.bool), torch.ones(d, dtype=torch.bool)])
    return torch.cat([ends, prefixes.reshape(-1, d)])
