"""Shared by OLM and input marginalization: score every LM replacement of every word."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch

from .._validation import InstanceOf
from ..adapters._base import ModelAdapter
from ..exceptions import InvalidInputError, InvalidParameterError
from ..explanation import as_probabilities
from ..features.resamplers import Candidates, TokenResampler, replace_span
from ..features.text import TextFeatures

__all__ = ["RESAMPLER", "Replacements", "check_resampler", "class_probabilities",
           "score_replacements"]

#: The ``resampler`` constraint of OLM and input marginalization.
RESAMPLER = (InstanceOf((TokenResampler,), "a TokenResampler (an object with propose(text, "
                        "spans)), such as xai.MaskedLMResampler(model, tokenizer)"),)


@dataclasses.dataclass(frozen=True)
class Replacements:
    """For one text: per word, the candidates, their weights and the classifier's probabilities."""

    candidates: list[Candidates]
    weights: list[torch.Tensor]  # per word (n_used,), summing to 1 (or the raw probs for IM)
    probs: list[torch.Tensor]  # per word (n_used, n_model_outputs): p(class | text with word := w)
    n_model_calls: int


def check_resampler(resampler: Any, owner: str) -> None:
    """The resampler must implement ``propose(text, spans)``."""
    if not isinstance(resampler, TokenResampler):
        msg = (f"The 'resampler' parameter of {owner} must be a TokenResampler (an object with "
               f"propose(text, spans)), such as xai.MaskedLMResampler(model, tokenizer). Got "
               f"{type(resampler).__name__} instead.")
        raise InvalidParameterError(msg, owner=owner, parameter="resampler", value=resampler)


def class_probabilities(adapter: ModelAdapter, scores: torch.Tensor) -> torch.Tensor:
    """Model scores as class probabilities: softmax of logits, the scores themselves otherwise."""
    probs = as_probabilities(scores.double(), adapter.output_kind)
    return scores.double() if probs is None else probs


def word_features(fs: Any, owner: str) -> TextFeatures:
    """The word feature space of one text (LM replacement works on words in text space)."""
    if not isinstance(fs, TextFeatures) or fs.text is None or len(fs.spans) != fs.n_features:
        msg = (f"{owner} explains words of texts; this input has no word spans. It replaces "
               "the text of each feature, so each must be a word or a run of neighbouring "
               "words: pass feature_groups whose groups are runs of neighbouring words.")
        raise InvalidInputError(msg, value=type(fs).__name__)
    return fs


def score_replacements(adapter: ModelAdapter, fs: TextFeatures, resampler: TokenResampler,
                       choose: Any, *, batch_size: int) -> Replacements:
    """Propose replacements for every word, pick some with ``choose(word_index, candidates) ->
    (indices, weights)``, and score all resulting texts in ``ceil(rows / batch_size)`` calls."""
    text = fs.text or ""
    cands = resampler.propose(text, fs.spans)
    if len(cands) != fs.n_features:
        msg = (f"The resampler proposed replacements for {len(cands)} words of {text!r}, which "
               f"has {fs.n_features}. Its propose() must return one Candidates per span.")
        raise InvalidInputError(msg, value=len(cands))
    texts: list[str] = []
    weights: list[torch.Tensor] = []
    counts: list[int] = []
    for j, (span, cand) in enumerate(zip(fs.spans, cands, strict=True)):
        if not cand.words:
            msg = (f"The resampler has no replacement for the word {text[span[0]:span[1]]!r} of "
                   f"{text!r} (its tokenizer cannot segment it, or min_prob filters every "
                   "candidate). Use a resampler whose vocabulary covers the text.")
            raise InvalidInputError(msg, value=text[span[0]:span[1]])
        idx, w = choose(j, cand)
        texts.extend(replace_span(text, span, cand.words[int(k)]) for k in idx)
        weights.append(w)
        counts.append(len(idx))
    # tokenized batch_size texts at a time: memory does not grow with the number of candidates
    scores = [adapter.predict_batched(adapter.prepare(texts[start:start + batch_size]),
                                      batch_size) for start in range(0, len(texts), batch_size)]
    probs = class_probabilities(adapter, torch.cat(scores))
    return Replacements(cands, weights, list(torch.split(probs, counts)),
                        math.ceil(len(texts) / batch_size))
