"""What a model adapter can do, and what kind of data it explains."""

from __future__ import annotations

import enum
from typing import Literal

__all__ = ["OUTPUT_KINDS", "Capability", "Modality", "OutputKind"]


class Capability(enum.Flag):
    """Capabilities of a model adapter; methods declare the ones they need in ``requires``."""

    FORWARD = enum.auto()  # score a batch: every adapter
    GRADIENTS = enum.auto()  # differentiable w.r.t. inputs or embeddings
    EMBEDDINGS = enum.auto()  # exposes an input-embedding layer (text gradient methods)
    TOKENIZER = enum.auto()  # can tokenize/detokenize (text feature spaces)
    GENERATION = enum.auto()  # can generate and score continuations (causal / seq2seq LMs)

    def names(self) -> tuple[str, ...]:
        """Names of the single flags set in ``self``, in declaration order."""
        return tuple(m.name for m in type(self) if m in self and m.name is not None)


Modality = Literal["tabular", "image", "text", "generation", "graph"]
MODALITIES: tuple[str, ...] = ("tabular", "image", "text", "generation", "graph")

#: What an adapter's scores are, recorded on every Explanation (``exp.model_info.output_kind``):
#: metrics that compare probabilities read it instead of guessing from the adapter's name.
#: "logits" are softmaxed into probabilities, "probabilities" are used as they are,
#: "log_probabilities" (causal LMs) are exponentiated, and "scores" (regressors, margins, raw
#: module outputs) have no probability reading.
OutputKind = Literal["logits", "probabilities", "log_probabilities", "scores"]
OUTPUT_KINDS: tuple[str, ...] = ("logits", "probabilities", "log_probabilities", "scores")
