"""Shapley values by permutation sampling with antithetic pairs (Castro et al. 2009)."""

from __future__ import annotations

import collections
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
from ._budget import Cost, Moments
from ._perturb import row_pieces, stream_scores

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
        Permutations per example (pairs count twice). Cost: n_permutations * (d - 1) + 2 model
        rows, built and scored ``batch_size`` at a time (see :meth:`cost`).
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
        """The sampled orderings, (n_permutations, n_features), as :meth:`explain` draws them."""
        draws = _Draws(n_features, self.n_permutations, self.antithetic, gen)
        return torch.stack([draws.perm(p) for p in range(self.n_permutations)])

    def cost(self, features: tuple[FeatureSpace, ...], n_outputs: int, batch_size: int,
             row_bytes: int) -> Cost:
        """n_permutations * (d - 1) + 2 model rows per example, ``batch_size`` at a time."""
        d_max = max((f.n_features for f in features), default=0)
        rows = sum(self.n_permutations * max(f.n_features - 1, 0) + 2 for f in features)
        return Cost("ShapleySampling", "n_permutations", self.n_permutations, rows,
                    row_bytes + d_max + 4 * n_outputs, batch_size,
                    fix="extras['stderr'] shrinks as 1/sqrt(n_permutations), so a few hundred "
                        "are usually enough; or explain fewer examples or coarser features.")

    def _attribute(self, adapter: ModelAdapter, batch: Batch, features: tuple[FeatureSpace, ...],
                   target: ResolvedTarget, *, batch_size: int,
                   rng: torch.Generator) -> AttributionOutput:
        gens = example_generators(rng, len(features))
        chains = [_Chain(_Draws(f.n_features, self.n_permutations, self.antithetic, g),
                         target.indices[i]) for i, (f, g) in enumerate(zip(features, gens,
                                                                              strict=True))]
        pieces = row_pieces([c.n_rows for c in chains],
                            lambda i, start, stop: chains[i].masks(start, stop), batch_size)
        n_calls = stream_scores(adapter, features, pieces, lambda i, s: chains[i].take(s),
                                batch_size=batch_size)
        results = [c.result() for c in chains]
        extras = {"stderr": pad_stack([r[1] for r in results]),
                  "n_model_calls": torch.tensor(n_calls),
                  "n_rows": torch.tensor(sum(c.n_rows for c in chains))}
        return AttributionOutput([r[0] for r in results],
                                 base_values=torch.stack([r[2] for r in results]), extras=extras)


class _Draws:
    """The permutations of one example, drawn in order only as they are needed.

    Permutation ``p`` is the ``p``-th ``randperm`` of ``gen`` (with ``antithetic``, ``2q`` is the
    ``q``-th draw and ``2q + 1`` its reverse). Permutations the caller has finished with are
    dropped (:meth:`release`), so only those between the mask builder and the scores are held.
    """

    def __init__(self, d: int, n: int, antithetic: bool, gen: torch.Generator) -> None:
        self.d, self.n, self.antithetic, self.gen = d, n, antithetic, gen
        self.held: collections.deque[torch.Tensor] = collections.deque()
        self.first = 0  # index of held[0]

    def perm(self, p: int) -> torch.Tensor:
        while self.first + len(self.held) <= p:
            drawn = torch.randperm(self.d, generator=self.gen)
            self.held.append(drawn)
            if self.antithetic:
                self.held.append(drawn.flip(0))
        return self.held[p - self.first]

    def release(self, upto: int) -> None:
        """Forget permutations before ``upto``."""
        while self.first < upto and self.held:
            self.held.popleft()
            self.first += 1


class _Chain:
    """One example's permutation game, streamed: keep-masks out in row order, credits in.

    Rows: the empty and the full coalition, then for each permutation its d - 1 proper prefixes
    (k = 1..d-1). Scored rows are credited as soon as whole permutations (antithetic pairs) are
    in, and folded into running moments, so memory does not grow with ``n_permutations``.
    """

    def __init__(self, draws: _Draws, outputs: torch.Tensor) -> None:
        self.draws, self.outputs = draws, outputs
        self.step = max(draws.d - 1, 0)  # rows per permutation
        self.n_rows = 2 + draws.n * self.step
        self.ends: torch.Tensor | None = None  # scores of the empty and full coalitions
        self.buffer: list[torch.Tensor] = []
        self.done = 0  # permutations credited
        self.moments = Moments()

    def masks(self, start: int, stop: int) -> torch.Tensor:
        """Keep-mask rows ``start:stop``."""
        d = self.draws.d
        rows = torch.arange(start, stop)
        out = (rows == 1).unsqueeze(1).expand(-1, d).clone()  # row 0 empty, row 1 full
        mid = rows[rows >= 2] - 2
        if mid.numel():
            p, k = mid // self.step, mid % self.step + 1
            first = int(p[0])
            perms = torch.stack([self.draws.perm(q) for q in range(first, int(p[-1]) + 1)])
            rank = torch.empty_like(perms).scatter_(1, perms, torch.arange(d).expand_as(perms))
            out[rows >= 2] = rank[p - first] < k.unsqueeze(1)  # feature kept if among first k
        return out

    def take(self, scores: torch.Tensor) -> None:
        """Credit newly scored rows (in row order)."""
        self.buffer.append(scores[:, self.outputs])
        if self.ends is None:  # the first two rows (they may come one at a time)
            head = torch.cat(self.buffer)
            if head.shape[0] < 2:
                return
            self.ends, self.buffer = head[:2], [head[2:]]
        if self.step == 0:  # d <= 1: no prefixes to score (see result)
            return
        n_new = sum(b.shape[0] for b in self.buffer) // self.step
        n_new -= n_new % (2 if self.draws.antithetic else 1)
        if n_new == 0:
            return
        buf = torch.cat(self.buffer)
        used = n_new * self.step
        self.buffer = [buf[used:]]
        perms = torch.stack([self.draws.perm(p) for p in range(self.done, self.done + n_new)])
        self.moments.add(self._credit(perms, buf[:used]))
        self.done += n_new
        self.draws.release(self.done)

    def _credit(self, perms: torch.Tensor, middle: torch.Tensor) -> torch.Tensor:
        """Marginal contributions (draws, d, n_out) of whole permutations (pairs averaged)."""
        n_perm, d = perms.shape
        assert self.ends is not None
        empty, full = self.ends[0], self.ends[1]
        chain = torch.cat([empty.expand(n_perm, 1, -1),
                           middle.reshape(n_perm, self.step, -1),
                           full.expand(n_perm, 1, -1)], dim=1)  # (P, d + 1, o)
        gains = chain[:, 1:] - chain[:, :-1]  # (P, d, o): gain of the k-th added feature
        contrib = torch.zeros_like(gains)
        contrib.scatter_(1, perms.unsqueeze(-1).expand_as(gains), gains)  # by feature id
        if self.draws.antithetic:
            contrib = contrib.reshape(n_perm // 2, 2, d, -1).mean(1)
        return contrib

    def result(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Values and stderr (n_out, d), and f(baseline) (n_out,)."""
        assert self.ends is not None
        if self.step == 0:  # d <= 1: each permutation credits f(full) - f(empty) to the feature
            gain = (self.ends[1] - self.ends[0]).unsqueeze(1)[:, :self.draws.d]
            draws = self.draws.n // (2 if self.draws.antithetic else 1)
            return gain, torch.full_like(gain, 0.0 if draws > 1 else math.nan), self.ends[0]
        mean, stderr = self.moments.result(self.ends.dtype)
        return mean.T, stderr.T, self.ends[0]


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

