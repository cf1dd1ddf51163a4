"""TextGenSHAP (Enouen et al. 2024): Shapley values of a prompt's units for generated text."""

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
from ..features.segments import GRANULARITIES
from ._base import AttributionOutput, Method
from ._generation import (
    GameTarget,
    attribute_game,
    prepare_prompt,
    prompt_features,
    resolve_game_target,
)
from ._permutations import check_pairs

__all__ = ["Levels", "TextGenSHAP", "Thresholds"]


@dataclasses.dataclass(frozen=True)
class Levels:
    """Constraint: a granularity name, or a coarse-to-fine list of 'document', 'sentence',
    'word' (hierarchical levels)."""

    extra: tuple[str, ...] = ()

    def is_satisfied_by(self, value: Any) -> bool:
        names = {"document", "sentence", "word", *self.extra}
        levels = [value] if isinstance(value, str) else value
        if not (isinstance(levels, (list, tuple)) and levels
                and all(isinstance(g, str) and g in names for g in levels)):
            return False
        if isinstance(value, str):
            return True
        ranks = [GRANULARITIES.index(g) for g in levels if g in GRANULARITIES]
        return len(ranks) == len(levels) and ranks == sorted(set(ranks))

    def invalid_value(self) -> Any:
        return ["word", "document"]

    def __str__(self) -> str:
        names = sorted({"document", "sentence", "word", *self.extra})
        return f"one of {names} or a coarse-to-fine list of 'document', 'sentence', 'word'"


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """Constraint: a float in [0, 1], or a non-empty sequence of them (one per level split)."""

    def is_satisfied_by(self, value: Any) -> bool:
        items = [value] if isinstance(value, int | float) else value
        unit = Interval(float, 0, 1)
        return (isinstance(items, (list, tuple)) and len(items) > 0
                and all(unit.is_satisfied_by(t) for t in items))

    def invalid_value(self) -> Any:
        return 1.5

    def __str__(self) -> str:
        return "a float in [0, 1] or a sequence of such floats"


@register_method("textgenshap")
@dataclasses.dataclass(frozen=True, kw_only=True)
class TextGenSHAP(Method):
    """Shapley values of a prompt's documents, sentences or words for a language model's output.

    The players are units of **one prompt** (a str, whose ``Document [k]`` blocks or else
    paragraphs are the documents, or ``{"prefix", "documents", "suffix"}``, whose prefix and
    suffix are fixed template and never players). A coalition is the prompt with the other
    players deleted. Values are exact (all 2^D coalitions) when 2^D <= ``max_exact``, else
    estimated from ``n_permutations`` sampled orderings with the same permutation core as
    ``shapley_sampling``; efficiency holds per output either way.

    Parameters
    ----------
    n_permutations : int, default=50
        Permutations when the game is sampled (pairs count twice).
    antithetic : bool, default=True
        Pair each permutation with its reverse (n_permutations must then be even).
    granularity : str or list of str, default="document"
        "document", "sentence" or "word", or a coarse-to-fine list such as
        ``["document", "sentence", "word"]`` for hierarchical explanations.
    value : {"log_prob", "answer"}, default="log_prob"
        "log_prob": v_t(S) = log p(y_t | x_S, y_<t) for every token of the target continuation
        (teacher forcing; outputs = target tokens). "answer": TextGenSHAP's
        v_a(S) = 1[greedy(x_S) = a] for every distinct answer a (outputs = answers; values sum
        to 0 over answers for every player). An answer is the first non-empty line of the
        greedy output, stripped (also of trailing ".,;:").
    max_new_tokens : int, default=20
        Length limit of greedy generation (the generated target and the answer game).
    max_exact : int, default=1024
        Enumerate all 2^D coalitions exactly when 2^D <= max_exact, else sample
        ``n_permutations`` permutations.
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
    ``target`` is None or "generated" (the greedy continuation of the full prompt) or a
    continuation text (tokenized jointly with the prompt); with ``value="answer"`` it must be
    None, "generated" or "all". Coalitions are batched, the KV cache of their common token
    prefix is computed once per batch, and for ``value="answer"`` the most frequent answer is
    verified in one teacher-forced pass before any decoding (TextGenSHAP's speculative step).
    ``extras``: "stderr", "exact" (a bool tensor of one row, as in shapley_sampling and
    kernel_shap), "n_coalitions", "n_model_calls", "n_decoded",
    "n_speculative_accepted", "levels" (every unit of every hierarchical level), "spans",
    "sequence_values" (log_prob: values summed over target tokens), "target_ids",
    "answer_counts". ``shapley_sampling`` on a language model plays this method's
    ``value="log_prob"`` game.

    References
    ----------
    .. [1] Enouen et al., "TextGenSHAP: Scalable Post-Hoc Explanations in Text Generation with
           Long Documents", Findings of ACL 2024, arXiv:2312.01279.
    .. [2] Castro, Gomez, Tejada, "Polynomial calculation of the Shapley value based on
           sampling", Computers & Operations Research 36(5), 2009.
    """

    requires: ClassVar[Capability] = Capability.GENERATION
    modalities: ClassVar[frozenset[Modality]] = frozenset({"generation"})
    deterministic: ClassVar[bool] = False
    reference: ClassVar[str] = "Enouen et al. 2024, arXiv:2312.01279"
    _constraints: ClassVar[Mapping[str, Sequence[Constraint]]] = {
        "n_permutations": [Interval(int, 1, None, closed="left")],
        "antithetic": [InstanceOf((bool,), "a bool")],
        "value": [Options({"log_prob", "answer"})],
        "max_new_tokens": [Interval(int, 1, None, closed="left")],
        "max_exact": [Interval(int, 0, None, closed="left")],
        "max_players": [Interval(int, 1, None, closed="left")],
        "chat_template": [InstanceOf((bool,), "a bool")],
        "granularity": [Levels()],
        "threshold": [Thresholds()],
    }

    n_permutations: int = 50
    antithetic: bool = True
    granularity: str | tuple[str, ...] = "document"
    value: str = "log_prob"
    max_new_tokens: int = 20
    max_exact: int = 1024
    max_players: int = 64
    threshold: float | tuple[float, ...] = 0.1
    chat_template: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.granularity, str):
            object.__setattr__(self, "granularity", tuple(self.granularity))
        if not isinstance(self.threshold, int | float):
            object.__setattr__(self, "threshold", tuple(self.threshold))
        check_pairs(self.n_permutations, self.antithetic, "TextGenSHAP")

    @classmethod
    def _test_params(cls) -> list[dict[str, Any]]:
        return [{"n_permutations": 4}]

    # -- hooks ------------------------------------------------------------------------------
    def _prepare(self, adapter: ModelAdapter, inputs: Any) -> Batch:
        """One prompt: a str or ``{"prefix", "documents", "suffix"}``."""
        return prepare_prompt(adapter, inputs, type(self).__name__)

    def _resolve_target(self, adapter: ModelAdapter, batch: Batch, target: Any, *,
                        batch_size: int) -> ResolvedTarget:
        """The target continuation's tokens (or, for the answer game, none yet: the answers
        are the outputs and are found while the game is played)."""
        return resolve_game_target(self, adapter, batch, target, batch_size)

    def feature_spaces(self, adapter: ModelAdapter, batch: Batch) -> tuple[FeatureSpace, ...]:
        """The players of the first (coarsest) level."""
        return prompt_features(self, adapter, batch)

    def _attribute(self, adapter: ModelAdapter, batch: Batch, features: tuple[FeatureSpace, ...],
                   target: ResolvedTarget, *, batch_size: int,
                   rng: torch.Generator) -> AttributionOutput:
        assert isinstance(target, GameTarget)  # made by _resolve_target
        return attribute_game(self, target, rng, batch_size)
