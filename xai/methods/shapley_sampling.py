"""Shapley values by permutation sampling with antithetic pairs (Castro et al. 2009)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import torch

from .._capabilities import Capability, Modality
from .._registry import register_method
from .._validation import Constraint, InstanceOf, Interval, Options
from ..adapters import as_adapter
from ..adapters._base import Batch, ModelAdapter
from ..exceptions import IncompatibleModelError, InvalidParameterError
from ..explanation import Explanation, ResolvedTarget
from ..features._base import FeatureSpace
from ..features.segments import GRANULARITIES
from ._base import AttributionOutput, Method, example_generators, pad_stack
from ._perturb import score_masks

__all__ = ["ShapleySampling"]


@register_method("shapley_sampling", aliases=("textgenshap",))
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
    granularity : str or list of str, default="auto"
        "auto", "word" or "token" for classifiers; for language models "document", "sentence"
        or "word" (players of the prompt), or a coarse-to-fine list such as
        ``["document", "sentence", "word"]`` for hierarchical explanations.
    value : {"log_prob", "answer"}, default="log_prob"
        Language models only. "log_prob": v_t(S) = log p(y_t | x_S, y_<t) for every token of
        the target continuation (teacher forcing; outputs = target tokens). "answer":
        TextGenSHAP's v_a(S) = 1[greedy(x_S) = a] for every distinct answer a (outputs =
        answers; values sum to 0 over answers for every player). An answer is the first
        non-empty line of the greedy output, stripped (also of trailing ".,;:").
    max_new_tokens : int, default=20
        Length limit of greedy generation (the generated target and the answer game).
    max_exact : int, default=1024
        Enumerate all 2^D coalitions exactly when 2^D <= max_exact (language models), else
        sample ``n_permutations`` permutations.
    max_players : int, default=64
        Most players one level may have; more raises an error suggesting hierarchical mode.
    threshold : float or sequence of float, default=0.1
        Hierarchical mode: a unit is split at the next level when its share
        ``|value| / sum |values|`` of its level (max over outputs) exceeds the threshold.
    chat_template : bool, default=False
        Wrap every coalition's prompt as a user message with the tokenizer's chat template
        (the template is never a player).

    Notes
    -----
    **Language models** (``xai.explain(lm, prompt, method="shapley_sampling")`` or its alias
    ``"textgenshap"``): one prompt per call, a str or ``{"prefix", "documents", "suffix"}``
    (prefix and suffix are fixed template, never players; in a str, ``Document [k]`` blocks
    or else paragraphs are the documents). A removed player is deleted from the text. ``target``
    is None or "generated" (the greedy continuation of the full prompt) or a continuation text
    (tokenized jointly with the prompt). Coalitions are batched, the KV cache of their common
    token prefix is computed once per batch, and for ``value="answer"`` the most frequent answer
    is verified in one teacher-forced pass before any decoding (TextGenSHAP's speculative step).
    ``extras``: "stderr", "exact", "n_coalitions", "n_model_calls", "n_decoded",
    "n_speculative_accepted", "levels" (every unit of every hierarchical level),
    "sequence_values" (log_prob: values summed over target tokens), "answer_counts".

    ``extras["stderr"] (n_examples, n_outputs, n_features) is the standard error of each
    value over independent draws (antithetic pairs averaged first).

    References
    ----------
    .. [1] Castro, Gomez, Tejada, "Polynomial calculation of the Shapley value based on
           sampling", Computers & Operations Research 36(5), 2009.
    .. [2] Strumbelj & Kononenko, "Explaining prediction models and individual predictions
           with feature contributions", KAIS 2014.
    .. [3] Enouen et al., "TextGenSHAP: Scalable Post-Hoc Explanations in Text Generation with
           Long Documents", Findings of ACL 2024, arXiv:2312.01279.
    """

    requires: ClassVar[Capability] = Capability.FORWARD
    modalities: ClassVar[frozenset[Modality]] = frozenset({"tabular", "image", "text",
                                                           "generation"})
    deterministic: ClassVar[bool] = False
    reference: ClassVar[str] = ("Castro et al. 2009, doi:10.1016/j.cor.2008.04.004; "
                                "Enouen et al. 2024, arXiv:2312.01279")
    _constraints: ClassVar[Mapping[str, Sequence[Constraint]]] = {
        "n_permutations": [Interval(int, 1, None, closed="left")],
        "antithetic": [InstanceOf((bool,), "a bool")],
        "value": [Options({"log_prob", "answer"})],
        "max_new_tokens": [Interval(int, 1, None, closed="left")],
        "max_exact": [Interval(int, 0, None, closed="left")],
        "max_players": [Interval(int, 1, None, closed="left")],
        "chat_template": [InstanceOf((bool,), "a bool")],
    }

    n_permutations: int = 50
    antithetic: bool = True
    baseline: Any = "auto"
    granularity: str | tuple[str, ...] = "auto"
    value: str = "log_prob"
    max_new_tokens: int = 20
    max_exact: int = 1024
    max_players: int = 64
    threshold: float | tuple[float, ...] = 0.1
    chat_template: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_granularity(self.granularity)
        if not isinstance(self.granularity, str):
            object.__setattr__(self, "granularity", tuple(self.granularity))
        if not isinstance(self.threshold, int | float):
            object.__setattr__(self, "threshold", tuple(self.threshold))
        if self.antithetic and self.n_permutations % 2:
            msg = (f"The 'n_permutations' parameter of ShapleySampling must be even when "
                   f"antithetic=True (permutations come in pairs). Got {self.n_permutations} "
                   f"instead. Use {self.n_permutations + 1} or antithetic=False.")
            raise InvalidParameterError(msg, owner="ShapleySampling", parameter="n_permutations",
                                        value=self.n_permutations)

    @classmethod
    def requirements(cls, modality: str) -> Capability:
        return Capability.GENERATION if modality == "generation" else cls.requires

    def explain(self, model: Any, inputs: Any, *, target: Any = None,
                batch_size: int | Literal["auto"] = "auto",
                random_state: int | torch.Generator | None = None,
                adapter_options: Mapping[str, Any] | None = None) -> Explanation:
        """Explain ``model`` on ``inputs``; language models take the generation path."""
        adapter = as_adapter(model, **(adapter_options or {}))
        if adapter.modality != "generation":
            return super().explain(adapter, inputs, target=target, batch_size=batch_size,
                                   random_state=random_state)
        adapter, bs, rng = self._setup(adapter, batch_size, random_state)
        if self.baseline not in ("auto", "delete"):
            msg = (f"For language models ShapleySampling removes players by deleting their text, "
                   f"so 'baseline' must be 'auto' or 'delete'. Got {self.baseline!r} instead.")
            raise InvalidParameterError(msg, owner="ShapleySampling", parameter="baseline",
                                        value=self.baseline)
        from ..adapters._causal import HFCausalLMAdapter
        from ._generation import explain_generation

        if not isinstance(adapter, HFCausalLMAdapter):
            msg = (f"Shapley values for generated text need a transformers causal LM and its "
                   f"tokenizer (HFCausalLMAdapter); got {adapter!r}.")
            raise IncompatibleModelError(msg, method=self.name)
        with adapter.session():
            return explain_generation(self, adapter, inputs, target, bs, rng)

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


def _check_granularity(granularity: Any) -> None:
    names = {"auto", "word", "token", "document", "sentence"}
    levels = [granularity] if isinstance(granularity, str) else granularity
    ok = isinstance(levels, (list, tuple)) and len(levels) > 0 and all(
        isinstance(g, str) and g in names for g in levels)
    if ok and not isinstance(granularity, str):
        ranks = [GRANULARITIES.index(g) for g in levels if g in GRANULARITIES]
        ok = len(ranks) == len(levels) and ranks == sorted(set(ranks))
    if not ok:
        msg = (f"The 'granularity' parameter of ShapleySampling must be one of "
               f"{sorted(names)} or a coarse-to-fine list of 'document', 'sentence', 'word'. "
               f"Got {granularity!r} instead.")
        raise InvalidParameterError(msg, owner="ShapleySampling", parameter="granularity",
                                    value=granularity)


def _chain_masks(perms: torch.Tensor) -> torch.Tensor:
    """Rows: empty, full, then for each permutation the d - 1 proper prefixes (k = 1..d-1)."""
    n_perm, d = perms.shape
    rank = torch.empty_like(perms)
    rank.scatter_(1, perms, torch.arange(d).expand(n_perm, d))  # position of each feature
    k = torch.arange(1, d).view(1, d - 1, 1)
    prefixes = rank.unsqueeze(1) < k  # (P, d - 1, d): feature kept if among the first k
    ends = torch.stack([torch.zeros(d, dtype=torch.bool), torch.ones(d, dtype=torch.bool)])
    return torch.cat([ends, prefixes.reshape(-1, d)])
