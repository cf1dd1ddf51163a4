"""Adapters for Hugging Face sequence classifiers (model + tokenizer) and text pipelines."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from .._capabilities import Capability
from .._validation import Options, check_param
from ..exceptions import InvalidInputError, InvalidParameterError, TruncationWarning
from ..features.groups import group_features
from ..features.text import TextFeatures, TokenFeatures, WordFeatures, word_groups
from ._base import Batch, ModelAdapter
from ._calls import as_scores, describe_call, model_call, resolve_device

__all__ = ["HFClassifierAdapter", "HFPipelineAdapter"]

_MODEL_KEYS = ("input_ids", "attention_mask", "token_type_ids")
_REMOVALS = {"pad": "pad_token_id", "mask": "mask_token_id", "unk": "unk_token_id", "delete": None}


class HFClassifierAdapter(ModelAdapter):
    """A text classifier called as ``model(input_ids=..., attention_mask=...)`` with its tokenizer.

    Any ``torch.nn.Module`` with that calling convention works: a transformers
    ``*ForSequenceClassification`` model, or a custom head on an encoder. Outputs are the logits.

    Parameters
    ----------
    model : torch.nn.Module
        Returns logits (n, n_classes), or an object with ``.logits``.
    tokenizer : transformers fast tokenizer
        Must provide character offsets (``return_offsets_mapping``) so words come from offsets.
    device : torch.device or str, optional
    max_length : int, optional
        Longest tokenized input; defaults to the model's limit. Longer texts are truncated with a
        :class:`~xai.exceptions.TruncationWarning`, or rejected when ``truncation="error"``.
    truncation : {"warn", "error"}, default="warn"
    """

    capabilities: ClassVar[Capability] = (
        Capability.FORWARD | Capability.GRADIENTS | Capability.EMBEDDINGS | Capability.TOKENIZER
    )

    def __init__(self, model: torch.nn.Module, tokenizer: Any, *, device: Any = None,
                 max_length: int | None = None, truncation: str = "warn") -> None:
        if not getattr(tokenizer, "is_fast", False):
            msg = (f"{type(tokenizer).__name__} is a slow tokenizer without character offsets. "
                   "Load the fast one: AutoTokenizer.from_pretrained(path, use_fast=True).")
            raise InvalidParameterError(msg, owner="HFClassifierAdapter", parameter="tokenizer")
        check_param("HFClassifierAdapter", "truncation", truncation, [Options({"warn", "error"})])
        self._model = model
        self.tokenizer = tokenizer
        self.modality = "text"
        self.output_kind = "logits"
        self.truncation = truncation
        self.max_length = max_length or _model_max_length(model, tokenizer)
        self.device = resolve_device(device, model, owner=type(self).__name__)

    # -- inputs ---------------------------------------------------------------------------
    def prepare(self, inputs: Any) -> Batch:
        texts = _check_texts(inputs)
        raw = self.tokenizer(list(texts), verbose=False, return_offsets_mapping=True,
                             return_special_tokens_mask=True)
        check_has_tokens(texts, raw["special_tokens_mask"], raw["offset_mapping"])
        lengths = [len(ids) for ids in raw["input_ids"]]
        too_long = [i for i, n in enumerate(lengths) if n > self.max_length]
        if too_long:
            msg = (f"{len(too_long)} of the 'inputs' (first: example {too_long[0]}, "
                   f"{lengths[too_long[0]]} tokens) exceed the model's maximum length of "
                   f"{self.max_length} tokens")
            if self.truncation == "error":
                raise InvalidInputError(msg + ". Shorten them or use truncation='warn'.",
                                        value=too_long)
            warnings.warn(msg + "; they were truncated.", TruncationWarning, stacklevel=4)
        enc = self.tokenizer(list(texts), padding=True, truncation=True,
                             max_length=self.max_length, return_tensors="pt",
                             return_offsets_mapping=True, return_special_tokens_mask=True)
        return Batch({k: v for k, v in enc.items()}, texts=texts)

    def predict(self, inputs: Batch) -> torch.Tensor:
        kwargs = {k: v.to(self.device) for k, v in inputs.tensors.items() if k in _MODEL_KEYS}
        return self._scores(kwargs)

    def forward_ids(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    *extra: torch.Tensor) -> torch.Tensor:
        """Differentiable forward on token ids (the forward function handed to captum)."""
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if extra:
            kwargs["token_type_ids"] = extra[0]
        return self._scores(kwargs)

    def _scores(self, kwargs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Call the model on ``kwargs``; its own exception passes with a note, the output is
        checked (logits of shape (n, n_classes))."""
        name = type(self._model).__name__
        with model_call(name, type(self).__name__, describe_call(kwargs)):
            out = self._model(**kwargs)
        scores = as_scores(out, kwargs["input_ids"].shape[0], model=name,
                           adapter=type(self).__name__)
        return self.same_outputs(scores, model=name)

    # -- features -------------------------------------------------------------------------
    def features(self, batch: Batch, *, granularity: str = "auto", baseline: Any = "auto",
                 owner: str = "explain", groups: Any = None) -> tuple[TextFeatures, ...]:
        removal, replace_id = resolve_removal(self.tokenizer, baseline, owner=owner,
                                              default="pad", models="text models")
        gran = "word" if granularity == "auto" else granularity
        return group_features([self._features_of(batch, i, gran, removal, replace_id)
                               for i in range(len(batch))], groups, owner=owner)

    def _features_of(self, batch: Batch, i: int, gran: str, removal: str,
                     replace_id: int | None) -> TextFeatures:
        return text_features(batch, i, self.tokenizer, keys=_MODEL_KEYS, granularity=gran,
                             removal=removal, replace_id=replace_id,
                             pad_id=int(self.tokenizer.pad_token_id or 0))

    # -- capabilities ---------------------------------------------------------------------
    def embedding_layer(self) -> torch.nn.Module:
        """The input word-embedding layer (``model.get_input_embeddings()``)."""
        return self._model.get_input_embeddings()  # type: ignore[no-any-return,operator]

    def output_names(self) -> tuple[str, ...] | None:
        id2label = getattr(getattr(self._model, "config", None), "id2label", None)
        if not id2label:
            return None
        return tuple(str(id2label[i]) for i in sorted(id2label))

    def describe(self) -> dict[str, str]:
        cfg = getattr(self._model, "config", None)
        return {"adapter": type(self).__name__, "model": type(self._model).__name__,
                "name_or_path": str(getattr(cfg, "_name_or_path", "")),
                "tokenizer": type(self.tokenizer).__name__, "max_length": str(self.max_length)}


class HFPipelineAdapter(HFClassifierAdapter):
    """A ``transformers`` text-classification pipeline, explained through its model and tokenizer."""

    def __init__(self, pipeline: Any, **options: Any) -> None:
        super().__init__(pipeline.model, pipeline.tokenizer, **options)
        self.pipeline = pipeline


def text_features(batch: Batch, i: int, tokenizer: Any, *, keys: tuple[str, ...],
                  granularity: str, removal: str, replace_id: int | None,
                  pad_id: int) -> TextFeatures:
    """Token or word features of example ``i`` of a tokenized batch (padding and special tokens
    dropped; words from character offsets; a token covering no text is named by its vocabulary
    string)."""
    keep = batch.tensors["attention_mask"][i].bool()
    tensors = {k: batch.tensors[k][i][keep] for k in keys if k in batch.tensors}
    offsets = batch.tensors["offset_mapping"][i][keep]
    special = batch.tensors["special_tokens_mask"][i][keep].bool()
    text = (batch.texts or ("",) * len(batch))[i]
    if granularity == "word":
        groups, names, spans = word_groups(offsets, special, text)
        cls: type[TextFeatures] = WordFeatures
    else:
        pos = [p for p in range(offsets.shape[0]) if not special[p]]
        groups = [[p] for p in pos]
        spans = [(int(offsets[p, 0]), int(offsets[p, 1])) for p in pos]
        names = [text[s:e] or str(tokenizer.convert_ids_to_tokens(int(tensors["input_ids"][p])))
                 for p, (s, e) in zip(pos, spans, strict=True)]
        cls = TokenFeatures
    return cls(tensors, groups, names, removal=removal,  # type: ignore[arg-type]  # validated
               replace_id=replace_id, pad_id=pad_id, text=text, spans=spans)


def resolve_removal(tokenizer: Any, baseline: Any, *, owner: str, default: str,
                    models: str) -> tuple[str, int | None]:
    """A text baseline ("auto", "pad", "mask", "unk", "delete") as (removal, replacement id)."""
    removal = default if baseline == "auto" else baseline
    if removal not in _REMOVALS:
        msg = (f"The 'baseline' parameter of {owner} must be one of 'pad', 'mask', 'unk' or "
               f"'delete' for {models}. Got {removal!r} instead.")
        raise InvalidParameterError(msg, owner=owner, parameter="baseline", value=removal)
    attr = _REMOVALS[removal]
    replace_id = None if attr is None else getattr(tokenizer, attr, None)
    if attr is not None and replace_id is None:
        fix = "'delete'" if default == "delete" else f"'{default}' or 'delete'"
        msg = (f"The 'baseline' parameter of {owner} is {removal!r}, but the tokenizer has no "
               f"{attr[:-3]}. Use baseline={fix}.")
        raise InvalidParameterError(msg, owner=owner, parameter="baseline", value=removal)
    return removal, replace_id


def _check_texts(inputs: Any) -> tuple[str, ...]:
    if isinstance(inputs, str):
        inputs = [inputs]
    if not isinstance(inputs, list | tuple):
        msg = (f"A text model takes a str or a list of str as 'inputs'. Got "
               f"{type(inputs).__name__} instead.")
        raise InvalidInputError(msg, value=type(inputs).__name__)
    if len(inputs) == 0:
        msg = "The 'inputs' batch is empty (0 texts). Pass at least one text."
        raise InvalidInputError(msg, value=[])
    for i, t in enumerate(inputs):
        if not isinstance(t, str):
            kind = type(t).__name__
            article = "an" if kind[:1].lower() in "aeiou" else "a"
            msg = f"Example {i} of 'inputs' is {article} {kind}, not a str. Pass texts only."
            raise InvalidInputError(msg, value=t)
        if not t.strip():
            msg = (f"Example {i} of 'inputs' is an empty string: it has no words to explain. "
                   "Remove it or pass a non-empty text.")
            raise InvalidInputError(msg, value=t)
    return tuple(inputs)


def check_has_tokens(texts: Sequence[str], special: Sequence[Sequence[int]],
                     offsets: Sequence[Sequence[Sequence[int]]]) -> None:
    """Refuse a text of which the tokenizer keeps no character: nothing to attribute.

    A token counts when it is not a special token and covers at least one character (zero-width
    and control characters are dropped by most tokenizers, leaving only [CLS] [SEP]).
    """
    for i, text in enumerate(texts):
        if not any(not s and e > b for s, (b, e) in zip(special[i], offsets[i], strict=True)):
            msg = (f"Example {i} of 'inputs' ({text!r:.60}) has no tokens to attribute: the "
                   "tokenizer keeps none of its characters (only special tokens remain), so "
                   "there are no words to explain. Remove it or pass a text with visible words.")
            raise InvalidInputError(msg, value=text)


def _model_max_length(model: Any, tokenizer: Any) -> int:
    limits = [int(tokenizer.model_max_length)] if tokenizer.model_max_length < 10**6 else []
    max_positions = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if max_positions:
        limits.append(int(max_positions))
    return min(limits) if limits else 512
