"""Prompt segments as players: documents, sentences or words of a prompt, removed by deletion.

Used by Shapley values for generated text (TextGenSHAP): the players are character spans of the
prompt; a coalition is rendered back to text by deleting the spans it leaves out, and the fixed
parts of the prompt (an instruction ``prefix``, a question ``suffix``, the chat template) are
never players.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from ..adapters._base import Batch
from ..exceptions import InvalidInputError
from ._base import check_keep

__all__ = ["GRANULARITIES", "Prompt", "SpanFeatures", "as_prompt", "split_span"]

#: Units a prompt can be split into, coarse to fine.
GRANULARITIES = ("document", "sentence", "word")

_PARAGRAPH = re.compile(r"\S(?:.*?\S)??(?=\s*\n\s*\n|\s*$)", re.S)
_SENTENCE = re.compile(r"\S.*?(?:[.!?](?=\s|$)|(?=\n)|$)", re.S)
_WORD = re.compile(r"\S+")
_HEADER = re.compile(r"^[ \t]*(?:Document|Doc|Passage|Source)\s*\[?\d+\]?", re.M | re.I)
_PATTERNS = {"document": _PARAGRAPH, "sentence": _SENTENCE, "word": _WORD}

Span = tuple[int, int]


@dataclasses.dataclass(frozen=True)
class Prompt:
    """A prompt's text and the character span of each top-level document.

    Attributes
    ----------
    text : str
        The whole prompt (prefix + documents + suffix).
    documents : tuple of (start, end)
        Spans of the documents; everything outside them is fixed template.
    """

    text: str
    documents: tuple[Span, ...]


def as_prompt(inputs: Any, *, separator: str = "\n\n", owner: str = "explain") -> Prompt:
    """Read a prompt: a str or a mapping ``{"prefix", "documents", "suffix"}``.

    In a str, documents are the blocks that start with a ``Document [k]`` (or ``Doc k``,
    ``Passage k``, ``Source k``) header, each running to the next header or blank line, and the
    rest of the text is fixed template; without such headers every paragraph (blank-line
    separated) is a document.

    A mapping ``{"prefix": str, "documents": [str, ...], "suffix": str}`` makes the instruction
    (prefix) and the question (suffix) explicit: they are never players. The prompt is
    ``separator.join([prefix, *documents, suffix])`` (an empty prefix or suffix is left out).
    """
    if isinstance(inputs, (list, tuple)) and len(inputs) == 1:
        inputs = inputs[0]
    if isinstance(inputs, str):
        text = inputs
        docs = _headed_documents(text) or tuple(m.span() for m in _PARAGRAPH.finditer(text))
    elif isinstance(inputs, Mapping):
        unknown = sorted(set(inputs) - {"prefix", "documents", "suffix"})
        documents = inputs.get("documents")
        if unknown or not isinstance(documents, (list, tuple)) or not all(
                isinstance(d, str) for d in documents):
            msg = (f"A prompt mapping passed to {owner} must have a 'documents' list of str and "
                   f"optional 'prefix' and 'suffix' str. Got keys {sorted(inputs)} instead.")
            raise InvalidInputError(msg, parameter="inputs", value=sorted(inputs))
        prefix, suffix = str(inputs.get("prefix", "")), str(inputs.get("suffix", ""))
        text, spans = prefix, []
        for doc in documents:
            text += separator if text else ""
            spans.append((len(text), len(text) + len(doc)))
            text += doc
        text += (separator if text and suffix else "") + suffix
        docs = tuple(spans)
    else:
        msg = (f"'inputs' of {owner} for a language model must be one prompt: a str or a mapping "
               f"with 'documents' (and optional 'prefix', 'suffix'). Got "
               f"{type(inputs).__name__} instead. Explain several prompts one call at a time.")
        raise InvalidInputError(msg, parameter="inputs", value=type(inputs).__name__)
    if not text.strip():
        msg = f"The prompt passed to {owner} is empty. Pass a non-empty text."
        raise InvalidInputError(msg, parameter="inputs", value=text)
    return Prompt(text, docs)


def _headed_documents(text: str) -> tuple[Span, ...]:
    """Spans of "Document [k] ..." blocks (each to the next header or blank line), if any."""
    starts = [m.start() + len(m.group()) - len(m.group().lstrip()) for m in _HEADER.finditer(text)]
    spans = []
    for k, start in enumerate(starts):
        stop = starts[k + 1] if k + 1 < len(starts) else len(text)
        blank = text.find("\n\n", start, stop)
        end = stop if blank < 0 else blank
        spans.append((start, start + len(text[start:end].rstrip())))
    return tuple(spans)


def split_span(text: str, span: Span, granularity: str) -> list[Span]:
    """Sub-spans of ``text[span]`` at ``granularity`` ("document", "sentence" or "word").

    Documents are paragraphs (blank-line separated), sentences end at ``.``, ``!``, ``?``
    followed by whitespace or at a line break, words are whitespace-separated. Spans never
    include surrounding whitespace.
    """
    start, end = span
    return [(start + m.start(), start + m.end())
            for m in _PATTERNS[granularity].finditer(text[start:end])]


def render(text: str, spans: Sequence[Span], keep: Sequence[bool]) -> str:
    """``text`` with the spans not kept deleted, with the spacing that only they needed.

    A deleted word takes the blanks after it; a deleted line (a span that starts a line) takes
    its indentation and line break; a deleted paragraph takes one blank line.
    """
    out, pos = "", 0
    for (s, e), k in sorted(zip(spans, keep, strict=True)):
        if k:
            continue
        head = text[pos:s]
        before = (out + head).rstrip(" \t")
        line_start = not before or before.endswith("\n")
        out = before if line_start else out + head
        pos = e
        while pos < len(text) and text[pos] in " \t":
            pos += 1
        if not line_start:
            out = out.rstrip(" \t") if text.startswith("\n", pos) or pos == len(text) else out
        elif text.startswith("\n\n", pos):
            pos += 2 if (not out or out.endswith("\n\n")) else int(out.endswith("\n"))
        elif text.startswith("\n", pos):
            pos += 1
    return out + text[pos:]


class SpanFeatures:
    """Character spans of one prompt as features; a removed span is deleted from the text.

    Parameters
    ----------
    text : str
        The prompt.
    spans : sequence of (start, end)
        The players, non-overlapping.
    prepare : callable
        ``prepare(list[str]) -> Batch`` (the adapter's), used by :meth:`mask`.
    wrap : callable, optional
        Applied to every rendered prompt before it reaches the model (e.g. a chat template).
    """

    granularity = "span"

    def __init__(self, text: str, spans: Sequence[Span], prepare: Callable[[list[str]], Batch],
                 wrap: Callable[[str], str] | None = None) -> None:
        self.text = text
        self.spans = tuple((int(s), int(e)) for s, e in spans)
        self._prepare = prepare
        self.wrap = wrap

    @property
    def n_features(self) -> int:
        return len(self.spans)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(self.text[s:e] for s, e in self.spans)

    def texts(self, keep: torch.Tensor) -> list[str]:
        """The prompt of each coalition (row of ``keep``), wrapped."""
        keep = check_keep(keep, self.n_features)
        out = [render(self.text, self.spans, row.tolist()) for row in keep]
        return [self.wrap(t) for t in out] if self.wrap else out

    def mask(self, keep: torch.Tensor) -> Batch:
        return self._prepare(self.texts(keep))

    def baseline(self) -> Batch:
        return self.mask(torch.zeros(1, self.n_features, dtype=torch.bool))

    def reshape(self, values: torch.Tensor) -> torch.Tensor:
        return values

    def __repr__(self) -> str:
        return f"SpanFeatures(n_features={self.n_features}, n_chars={len(self.text)})"
