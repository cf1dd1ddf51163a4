"""Adapter for causal (decoder-only) language models: a ``*ForCausalLM`` model with its tokenizer."""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch

from .._capabilities import Capability
from .._validation import Interval, Options, check_param
from ..exceptions import InvalidInputError, InvalidParameterError, TruncationWarning
from ..features.groups import group_features
from ..features.text import TextFeatures
from ._base import Batch, ModelAdapter
from ._calls import describe_call, model_call, resolve_device
from ._transformers import (
    _check_texts,
    _model_max_length,
    check_has_tokens,
    resolve_removal,
    text_features,
)

__all__ = ["HFCausalLMAdapter"]


class HFCausalLMAdapter(ModelAdapter):
    """A causal language model called as ``model(input_ids=..., attention_mask=...)``.

    Any ``torch.nn.Module`` whose output has ``.logits`` of shape (n, L, vocab) (or is that
    tensor) works: a transformers ``*ForCausalLM`` model or a hand-written toy LM.

    * :meth:`prepare` tokenizes; the BOS token is prepended when the tokenizer has one and does
      not add it itself (``add_bos=True``). Batches are **left**-padded so the last column is
      every row's last token; position ids are computed from the attention mask.
    * :meth:`predict` returns the **next-token log-probabilities at the last position**, shape
      (n, vocab): the "outputs" of a causal LM are the vocabulary entries.
    * :meth:`sequence_log_prob` scores a continuation by teacher forcing; :meth:`generate`
      decodes (greedy by default).

    Parameters
    ----------
    model : torch.nn.Module
        Returns logits (n, L, vocab), or an object with ``.logits``.
    tokenizer : transformers fast tokenizer
        Must provide character offsets (``return_offsets_mapping``).
    device : torch.device or str, optional
    max_length : int, optional
        Longest tokenized input; defaults to the model's limit. Longer texts are truncated **from
        the left** (the BOS token is kept) with a :class:`~xai.exceptions.TruncationWarning`.
    add_bos : bool, default=True
        Prepend the tokenizer's BOS token when it does not add it itself.
    """

    capabilities: ClassVar[Capability] = (
        Capability.FORWARD | Capability.GRADIENTS | Capability.EMBEDDINGS | Capability.TOKENIZER
        | Capability.GENERATION
    )

    def __init__(self, model: torch.nn.Module, tokenizer: Any, *, device: Any = None,
                 max_length: int | None = None, add_bos: bool = True) -> None:
        if not getattr(tokenizer, "is_fast", False):
            msg = (f"{type(tokenizer).__name__} is a slow tokenizer without character offsets. "
                   "Load the fast one: AutoTokenizer.from_pretrained(path, use_fast=True).")
            raise InvalidParameterError(msg, owner="HFCausalLMAdapter", parameter="tokenizer")
        if max_length is not None:
            check_param("HFCausalLMAdapter", "max_length", max_length,
                        [Interval(int, 2, None, closed="left")])
        self._model = model
        self.tokenizer = tokenizer
        self.modality = "generation"
        self.output_kind = "log_probabilities"
        self.add_bos = bool(add_bos)
        bos = getattr(tokenizer, "bos_token_id", None)
        self.bos_id: int | None = int(bos) if (add_bos and bos is not None) else None
        pad = next((p for p in (tokenizer.pad_token_id, getattr(tokenizer, "eos_token_id", None))
                    if p is not None), 0)
        self.pad_id = int(pad)
        self.max_length = max_length or _model_max_length(model, tokenizer)
        self.device = resolve_device(device, model, owner="HFCausalLMAdapter")
        sig = inspect.signature(model.forward)
        self._takes_positions = "position_ids" in sig.parameters or any(
            p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())
        # transformers >= 5.2x renamed ``past_key_values`` to ``cache`` (input and output)
        self._cache_kw = "cache" if "cache" in sig.parameters else "past_key_values"
        self._last_only: dict[str, Any] = ({"logits_to_keep": 1} if "logits_to_keep" in sig.parameters
                           else {})

    # -- inputs ---------------------------------------------------------------------------
    def prepare(self, inputs: Any) -> Batch:
        texts = _check_texts(inputs)
        enc = self.tokenizer(list(texts), return_offsets_mapping=True,
                             return_special_tokens_mask=True, verbose=False)
        check_has_tokens(texts, enc["special_tokens_mask"], enc["offset_mapping"])
        return self._batch(texts, enc)

    def encode(self, texts: Sequence[str]) -> Batch:
        """Tokenize texts that a method built (coalitions of a prompt), without input checks.

        ``prepare`` refuses a user's empty or token-less text; a method that removes every
        player of a prompt legitimately asks for the empty prompt (just BOS), so it uses this.
        """
        texts = tuple(texts)
        enc = self.tokenizer(list(texts), return_offsets_mapping=True,
                             return_special_tokens_mask=True, verbose=False)
        return self._batch(texts, enc)

    def _batch(self, texts: tuple[str, ...], enc: Any) -> Batch:
        """BOS-prefixed, truncated, left-padded rows of a tokenizer encoding."""
        rows = []
        for i in range(len(texts)):
            ids = list(enc["input_ids"][i])
            offs = [tuple(o) for o in enc["offset_mapping"][i]]
            special = list(enc["special_tokens_mask"][i])
            if self.bos_id is not None and (not ids or ids[0] != self.bos_id):
                ids, offs, special = [self.bos_id, *ids], [(0, 0), *offs], [1, *special]
            rows.append(self._truncate(i, ids, offs, special))
        width = max(len(r[0]) for r in rows)
        tensors: dict[str, list[Any]] = {"input_ids": [], "attention_mask": [],
                                         "offset_mapping": [], "special_tokens_mask": []}
        for ids, offs, special in rows:  # left padding
            pad = width - len(ids)
            tensors["input_ids"].append([self.pad_id] * pad + ids)
            tensors["attention_mask"].append([0] * pad + [1] * len(ids))
            tensors["offset_mapping"].append([(0, 0)] * pad + offs)
            tensors["special_tokens_mask"].append([1] * pad + special)
        return Batch({k: torch.tensor(v, dtype=torch.long) for k, v in tensors.items()},
                     texts=texts)

    def _truncate(self, i: int, ids: list[int], offs: list[Any],
                  special: list[int]) -> tuple[list[int], list[Any], list[int]]:
        if len(ids) <= self.max_length:
            return ids, offs, special
        head = 1 if (self.bos_id is not None and ids[0] == self.bos_id) else 0
        keep = self.max_length - head
        msg = (f"Example {i} of 'inputs' has {len(ids)} tokens, more than the model's maximum "
               f"length of {self.max_length}; it was truncated from the left (the first "
               f"{len(ids) - self.max_length} tokens after BOS were dropped).")
        warnings.warn(msg, TruncationWarning, stacklevel=4)
        return (ids[:head] + ids[-keep:], offs[:head] + offs[-keep:],
                special[:head] + special[-keep:])

    # -- model calls ----------------------------------------------------------------------
    def _call(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
              position_ids: torch.Tensor | None = None, **extra: Any) -> Any:
        kwargs: dict[str, Any] = {"input_ids": input_ids.to(self.device),
                                  "attention_mask": attention_mask.to(self.device), **extra}
        if self._takes_positions:
            if position_ids is None:
                position_ids = positions(attention_mask)
            kwargs["position_ids"] = position_ids.to(self.device)
        with model_call(type(self._model).__name__, "HFCausalLMAdapter", describe_call(kwargs)):
            return self._model(**kwargs)

    def token_log_probs(self, input_ids: torch.Tensor,
                        attention_mask: torch.Tensor) -> torch.Tensor:
        """Next-token log-probabilities at every position, (n, L, vocab), float32.

        Row ``[:, k]`` is log p(token k+1 | tokens 0..k). Works with left or right padding.
        """
        out = self._call(input_ids, attention_mask, **self._no_cache())
        return torch.log_softmax(_logits(out).float(), dim=-1)

    def predict(self, inputs: Batch) -> torch.Tensor:
        """Next-token log-probabilities at the last position, (n, vocab), float32."""
        out = self._call(inputs.tensors["input_ids"], inputs.tensors["attention_mask"],
                         **self._no_cache(), **self._last_only)
        return torch.log_softmax(_logits(out)[:, -1].float(), dim=-1)

    def forward_ids(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    *extra: torch.Tensor) -> torch.Tensor:
        """Differentiable :meth:`predict` on token ids (the forward function handed to captum)."""
        out = self._call(input_ids, attention_mask, **self._no_cache())
        return torch.log_softmax(_logits(out)[:, -1].float(), dim=-1)

    def sequence_log_prob(self, inputs: Batch, continuation_ids: Any, *,
                          use_cache: bool | None = None, reduce: str = "sum") -> torch.Tensor:
        """Teacher-forced log p(continuation | prompt) of every row.

        Parameters
        ----------
        inputs : Batch
            Left-padded prompts from :meth:`prepare`.
        continuation_ids : sequence of int or tensor (m,) or (n, m)
            The continuation token ids (shared by every row, or one row each).
        use_cache : bool, optional
            Score the prompt once with the KV cache and feed only the continuation afterwards
            (positions continue from the prompt; they never restart or advance twice). Default:
            True for models with a transformers ``generate``, False otherwise.
        reduce : {"sum", "none"}, default="sum"
            "sum" gives (n,), "none" the per-token log-probabilities (n, m).
        """
        check_param("sequence_log_prob", "reduce", reduce, [Options({"sum", "none"})])
        ids, mask = inputs.tensors["input_ids"], inputs.tensors["attention_mask"]
        cont = _continuation(continuation_ids, len(ids))
        n, length, m = ids.shape[0], ids.shape[1], cont.shape[1]
        full_mask = torch.cat([mask, torch.ones(n, m, dtype=mask.dtype)], dim=1)
        pos = positions(full_mask)
        cached = hasattr(self._model, "generate") if use_cache is None else use_cache
        if not cached:
            out = self._call(torch.cat([ids, cont], dim=1), full_mask, pos, **self._no_cache())
            logits = _logits(out)[:, length - 1:length + m - 1]
        else:
            first = self._call(ids, mask, pos[:, :length], use_cache=True)
            logits = _logits(first)[:, -1:]
            if m > 1:
                rest = self._call(cont[:, :-1], full_mask[:, :length + m - 1],
                                  pos[:, length:length + m - 1],
                                  use_cache=True, **{self._cache_kw: _cache_of(first)})
                logits = torch.cat([logits, _logits(rest)], dim=1)
        lp = torch.log_softmax(logits.float(), dim=-1).gather(
            2, cont.to(logits.device).unsqueeze(-1)).squeeze(-1).cpu()
        return lp.sum(1) if reduce == "sum" else lp

    def generate(self, inputs: Batch, **generation_kwargs: Any) -> torch.Tensor:
        """New token ids (n, m) after each prompt; greedy unless ``do_sample=True`` is passed.

        ``generation_kwargs`` go to ``model.generate`` (``max_new_tokens`` defaults to 20). Models
        without ``generate`` are decoded greedily, one forward pass per new token.
        """
        max_new = generation_kwargs.pop("max_new_tokens", 20)
        check_param("generate", "max_new_tokens", max_new, [Interval(int, 1, None, closed="left")])
        ids, mask = inputs.tensors["input_ids"], inputs.tensors["attention_mask"]
        if hasattr(self._model, "generate"):
            kwargs = {"do_sample": False, "pad_token_id": self.pad_id, **generation_kwargs}
            out = self._model.generate(input_ids=ids.to(self.device),  # type: ignore[operator]
                                       attention_mask=mask.to(self.device),
                                       max_new_tokens=max_new, **kwargs)
            return out[:, ids.shape[1]:].cpu()  # type: ignore[no-any-return]
        new = []
        for _ in range(max_new):
            nxt = _logits(self._call(ids, mask, **self._no_cache()))[:, -1].argmax(-1).cpu()
            new.append(nxt)
            ids = torch.cat([ids, nxt.unsqueeze(1)], dim=1)
            mask = torch.cat([mask, torch.ones_like(nxt).unsqueeze(1)], dim=1)
        return torch.stack(new, dim=1)

    def _no_cache(self) -> dict[str, Any]:
        return {"use_cache": False} if hasattr(self._model, "generate") else {}

    # -- features -------------------------------------------------------------------------
    def features(self, batch: Batch, *, granularity: str = "auto", baseline: Any = "auto",
                 owner: str = "explain", groups: Any = None) -> tuple[TextFeatures, ...]:
        """Token or word features of each prompt (BOS and other special tokens excluded).

        ``baseline="auto"`` deletes removed tokens (a causal LM has no neutral filler token).
        """
        removal, replace_id = resolve_removal(self.tokenizer, baseline, owner=owner,
                                              default="delete", models="language models")
        gran = "word" if granularity == "auto" else granularity
        if gran not in ("word", "token"):
            msg = (f"The 'granularity' parameter of {owner} must be 'token' or 'word' for language "
                   f"models. Got {granularity!r} instead.")
            raise InvalidParameterError(msg, owner=owner, parameter="granularity",
                                        value=granularity)
        return group_features([self._features_of(batch, i, gran, removal, replace_id)
                               for i in range(len(batch))], groups, owner=owner)

    def _features_of(self, batch: Batch, i: int, gran: str, removal: str,
                     replace_id: int | None) -> TextFeatures:
        return text_features(batch, i, self.tokenizer, keys=("input_ids", "attention_mask"),
                             granularity=gran, removal=removal, replace_id=replace_id,
                             pad_id=self.pad_id)

    def token_name(self, token_id: int, text: str, span: tuple[int, int]) -> str:
        """The text a token covers, or its vocabulary string when it covers none."""
        return text[span[0]:span[1]] or str(self.tokenizer.convert_ids_to_tokens(token_id))

    # -- capabilities ---------------------------------------------------------------------
    def embedding_layer(self) -> torch.nn.Module:
        """The input word-embedding layer (``model.get_input_embeddings()``)."""
        return self._model.get_input_embeddings()  # type: ignore[no-any-return,operator]

    def describe(self) -> dict[str, str]:
        cfg = getattr(self._model, "config", None)
        return {"adapter": type(self).__name__, "model": type(self._model).__name__,
                "name_or_path": str(getattr(cfg, "_name_or_path", "")),
                "tokenizer": type(self.tokenizer).__name__, "max_length": str(self.max_length),
                "add_bos": str(self.add_bos)}


def positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids that count only attended tokens (0 at each row's first real token)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp_min(0)


def _logits(out: Any) -> torch.Tensor:
    logits = out if isinstance(out, torch.Tensor) else getattr(out, "logits", None)
    if logits is None and isinstance(out, Mapping):
        logits = out.get("logits")
    if not isinstance(logits, torch.Tensor) or logits.dim() != 3 or not logits.is_floating_point():
        got = (f"shape {tuple(logits.shape)} and dtype {logits.dtype}"
               if isinstance(logits, torch.Tensor) else f"{type(out).__name__} without .logits")
        msg = (f"A causal LM must return logits of shape (n, length, vocab) (a float tensor, or "
               f"an object with .logits); got {got}.")
        raise InvalidInputError(msg, parameter="model")
    return logits


def _cache_of(out: Any) -> Any:
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values


def _continuation(continuation_ids: Any, n: int) -> torch.Tensor:
    cont = torch.as_tensor(continuation_ids, dtype=torch.long)
    if cont.dim() == 1:
        cont = cont.unsqueeze(0).expand(n, -1)
    if cont.dim() != 2 or cont.shape[0] != n or cont.shape[1] == 0:
        msg = (f"'continuation_ids' must have shape (m,) or ({n}, m) with m >= 1; got shape "
               f"{tuple(cont.shape)}.")
        raise InvalidInputError(msg, parameter="continuation_ids", value=tuple(cont.shape))
    return cont
