"""Language-model replacements for words: the TokenResampler protocol and two implementations.

OLM and input marginalization replace a word by what a language model finds likely in its
context, instead of a fixed token. Replacement happens at the word level in text space, so the
resampler's tokenizer and the classifier's tokenizer may differ.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import inspect
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

import torch

from ..exceptions import InvalidInputError, InvalidParameterError

__all__ = ["Candidates", "CausalLMResampler", "MaskedLMResampler", "TokenResampler", "replace_span"]


@dataclasses.dataclass(frozen=True)
class Candidates:
    """Replacement words for one word of a text and their probabilities p(w | rest of the text).

    ``probs`` sums to at most 1 (to 1 after renormalisation over the candidate set).
    """

    words: tuple[str, ...]
    probs: torch.Tensor  # (n_candidates,), float64


@runtime_checkable
class TokenResampler(Protocol):
    """Proposes replacements for every word (character span) of a text in one batched pass."""

    def propose(self, text: str, spans: Sequence[tuple[int, int]]) -> list[Candidates]:
        """One Candidates per span: words that could stand at that span, given the rest."""
        ...


def replace_span(text: str, span: tuple[int, int], word: str) -> str:
    """``text`` with the characters of ``span`` replaced by ``word``."""
    return text[: span[0]] + word + text[span[1]:]


def _restrict(probs: torch.Tensor, *, top_k: int | None, min_prob: float) -> torch.Tensor:
    """Indices of the kept candidates, most likely first."""
    order = probs.argsort(descending=True)
    kept = order[(probs[order] >= min_prob) & (probs[order] > 0)]  # 0 = filtered out
    return kept[:top_k] if top_k is not None else kept


class MaskedLMResampler:
    """p(w | context) from a Hugging Face masked LM, the word replaced by one mask token.

    As in the OLM reference code, a (possibly multi-piece) word is replaced by a single mask
    token and the candidates are single vocabulary entries. All words of a text are masked in
    one batched forward pass.

    Parameters
    ----------
    model : transformers masked LM (e.g. ``BertForMaskedLM``)
    tokenizer : its tokenizer (must have a mask token)
    top_k : int or None, default=None
        Keep only the k most likely candidates (None = all that pass ``min_prob``).
    min_prob : float, default=0.0
        Drop candidates below this probability.
    whole_words : bool, default=True
        Only whole-word vocabulary entries (no ``##`` continuation pieces, no special tokens,
        alphabetic); the reference also samples pieces (``whole_words=False``).
    renormalize : bool, default=True
        Rescale the kept probabilities to sum to 1.
    """

    def __init__(self, model: Any, tokenizer: Any, *, top_k: int | None = None,
                 min_prob: float = 0.0, whole_words: bool = True,
                 renormalize: bool = True) -> None:
        if getattr(tokenizer, "mask_token_id", None) is None:
            msg = (f"{type(tokenizer).__name__} has no mask token, so MaskedLMResampler cannot "
                   "mask a word. Use a masked-LM tokenizer, or CausalLMResampler.")
            raise InvalidParameterError(msg, owner="MaskedLMResampler", parameter="tokenizer")
        self.model, self.tokenizer = model, tokenizer
        self.top_k, self.min_prob = top_k, min_prob
        self.renormalize = renormalize
        self.whole_words = whole_words
        vocab = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
        special = set(tokenizer.all_special_tokens)
        self._allowed = torch.tensor([
            (t not in special) and (not whole_words or (t.isalpha() and not t.startswith("##")))
            for t in vocab])
        self._words = [t.removeprefix("##") for t in vocab]

    def propose(self, text: str, spans: Sequence[tuple[int, int]]) -> list[Candidates]:
        if not spans:
            msg = f"The text {text!r} has no words to resample."
            raise InvalidInputError(msg, value=text)
        masked = [replace_span(text, s, self.tokenizer.mask_token) for s in spans]
        enc = self.tokenizer(masked, return_tensors="pt", padding=True, truncation=True)
        with _eval_mode(self.model), torch.no_grad():  # no dropout: deterministic, no global RNG
            logits = self.model(**enc).logits  # (n_words, T, V)
        out = []
        for row, ids in enumerate(enc["input_ids"]):
            pos = (ids == self.tokenizer.mask_token_id).nonzero()
            if pos.numel() == 0:  # truncated away
                msg = f"The word at {spans[row]} of {text!r} fell beyond the LM's maximum length."
                raise InvalidInputError(msg, value=spans[row])
            probs = logits[row, int(pos[0, 0])].double().softmax(-1)
            probs = torch.where(self._allowed, probs, torch.zeros_like(probs))
            kept = _restrict(probs, top_k=self.top_k, min_prob=self.min_prob)
            p = probs[kept]
            if self.renormalize and float(p.sum()) > 0:
                p = p / p.sum()
            out.append(Candidates(tuple(self._words[int(k)] for k in kept), p))
        return out


def _check_param(name: str, value: Any, ok: bool, constraint: str) -> None:
    """Raise InvalidParameterError naming ``name`` unless ``ok``."""
    if not ok:
        msg = (f"The {name!r} parameter of CausalLMResampler must be {constraint}. "
               f"Got {value!r} instead.")
        raise InvalidParameterError(msg, owner="CausalLMResampler", parameter=name, value=value,
                                    constraint=constraint)


def _default_word_start(tokenizer: Any) -> Callable[[str, bool], bool]:
    """Whether a raw vocabulary token can begin a word, after whitespace or at the text start.

    Byte-level BPE (GPT-2, Llama 3, Qwen) marks a preceding space with ``Ġ`` and SentencePiece
    (Gemma, Llama 2) with ``▁``: after whitespace a word starts with a marked token; at the text
    start (or glued to the previous character) with an unmarked one, unless the tokenizer adds a
    dummy prefix space. Otherwise (WordPiece, whole-word vocabularies) every token that is not a
    ``##`` continuation starts a word.
    """
    # probe which marker this tokenizer puts on a word after a space (large vocabularies such
    # as Gemma's contain tokens with both markers, so the vocabulary alone cannot tell)
    vocab = tokenizer.get_vocab()
    word = next((t for t in sorted(vocab) if t.isascii() and t.isalpha()), "a")
    probe = tokenizer.tokenize(f"{word} {word}")
    for marker in ("Ġ", "▁"):
        if len(probe) >= 2 and probe[-1].startswith(marker):
            prefixed = probe[0].startswith(marker)

            def marked(tok: str, after_space: bool, marker: str = marker,
                       prefixed: bool = prefixed) -> bool:
                return tok.startswith(marker) == (after_space or prefixed)
            return marked
    return lambda tok, after_space: not tok.startswith("##")


class CausalLMResampler:
    """p(w_i | rest of the text) from a Hugging Face causal LM, by Bayes' rule.

    For the word at ``span``, with left context L = ``text[:span[0]]`` and right context
    R = ``text[span[1]:]``, the candidates are the ``top_k`` whole-word tokens w most likely
    after L, and

        p(w | L, R) = p(w | L) p(R | L, w) / Σ_w' p(w' | L) p(R | L, w'),

    the sum over the candidate set, with p(R | L, w) the teacher-forced likelihood of R's tokens.
    Candidates with a posterior below ``min_prob`` are dropped afterwards. A candidate is a
    single token that starts a word; its decoded text replaces the span (the text keeps its own
    spacing, so the span covers the word without the whitespace before it).

    Tokenization: L (trailing whitespace removed), the candidate and R are tokenized separately
    and concatenated, so every candidate shares L's tokens and R's tokens and positions line up
    (a joint re-tokenization could merge tokens across the word's boundaries). The whitespace
    before the word is carried by the candidate's word-start marker (one space). BOS is
    prepended to L when the tokenizer has one and ``add_bos`` (without it a causal LM's
    likelihoods of short contexts are erratic, and the first word has no context at all).

    Cost per word: one forward pass of L, then ``ceil(top_k / batch_size)`` batched passes over
    the candidates followed by R (none for the last word); ``n_model_calls`` counts them. With
    ``use_cache`` the key/value cache of L is computed once and repeated over each batch
    (``DynamicCache.batch_repeat_interleave``), so the batched passes only run w + R; without it
    (or when the model returns no such cache) full sequences L + w + R are run. Both give the
    same values up to float rounding (checked against brute-force enumeration on GPT-2 and on
    Gemma 3, whose cache mixes sliding-window and full layers). Memory per batched pass:
    ``batch_size × len(R) × vocabulary`` float32 logits. The model runs in eval mode (its
    training flag is restored), so no dropout and no global RNG use. A text the tokenizer maps
    to its unknown token raises InvalidInputError.

    Parameters
    ----------
    model : transformers causal LM (e.g. ``GPT2LMHeadModel``, Gemma 3)
    tokenizer : its tokenizer
    top_k : int, default=50
        Number of candidates per word (the most likely whole-word tokens after L).
    min_prob : float, default=0.0
        Drop candidates whose posterior is below this value.
    whole_words : bool, default=True
        Only tokens that start a word and decode to alphabetic text; ``False`` allows any
        non-special token (subword pieces, punctuation), as the OLM reference does.
    renormalize : bool, default=True
        Rescale the probabilities kept after ``min_prob`` to sum to 1.
    add_bos : bool, default=True
        Prepend the tokenizer's BOS token to every left context.
    batch_size : int, default=32
        Candidate sequences per forward pass.
    use_cache : bool, default=True
        Reuse the key/value cache of the left context across candidates.
    is_word_start : callable ``(token, after_space) -> bool``, optional
        Whether a raw vocabulary token (``convert_ids_to_tokens``) can begin a word that follows
        whitespace (``after_space=True``) or starts the text. Default: detects the ``Ġ``/``▁``
        space markers of byte-level BPE and SentencePiece, else ``##`` WordPiece continuations.
    """

    def __init__(self, model: Any, tokenizer: Any, *, top_k: int = 50, min_prob: float = 0.0,
                 whole_words: bool = True, renormalize: bool = True, add_bos: bool = True,
                 batch_size: int = 32, use_cache: bool = True,
                 is_word_start: Callable[[str, bool], bool] | None = None) -> None:
        def is_int(v: Any) -> bool:
            return isinstance(v, int) and not isinstance(v, bool)
        _check_param("top_k", top_k, is_int(top_k) and top_k >= 1, "an int in the range [1, inf)")
        _check_param("batch_size", batch_size, is_int(batch_size) and batch_size >= 1,
                     "an int in the range [1, inf)")
        _check_param("min_prob", min_prob, isinstance(min_prob, (int, float))
                     and 0.0 <= float(min_prob) < 1.0, "a float in the range [0, 1)")
        self.model, self.tokenizer = model, tokenizer
        self.top_k, self.min_prob, self.batch_size = top_k, float(min_prob), batch_size
        self.whole_words, self.renormalize, self.use_cache = whole_words, renormalize, use_cache
        self.bos_id = tokenizer.bos_token_id if add_bos else None
        self.n_model_calls = 0
        word_start = is_word_start or _default_word_start(tokenizer)
        head = model.get_output_embeddings()
        n_vocab = min(len(tokenizer), int(head.weight.shape[0]) if head is not None
                      else int(getattr(model.config, "vocab_size", len(tokenizer))))
        self._tokens = tokenizer.convert_ids_to_tokens(list(range(n_vocab)))
        special = set(tokenizer.all_special_ids)
        ok = [i not in special and t is not None for i, t in enumerate(self._tokens)]
        self._allowed = {after: torch.tensor([
            o and (not whole_words or word_start(t, after))
            for o, t in zip(ok, self._tokens, strict=True)]) for after in (False, True)}
        self._words: dict[int, str | None] = {}
        probe = tokenizer.tokenize("a")
        self._prefix_space = bool(probe) and probe[0].startswith("▁")
        params = inspect.signature(model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self._keep_kw = "logits_to_keep" in params

    def propose(self, text: str, spans: Sequence[tuple[int, int]]) -> list[Candidates]:
        if not spans:
            msg = f"The text {text!r} has no words to resample."
            raise InvalidInputError(msg, value=text)
        self._check_coverage(text, spans)
        return [self._propose_one(text, span) for span in spans]

    def _check_coverage(self, text: str, spans: Sequence[tuple[int, int]]) -> None:
        unk = self.tokenizer.unk_token_id
        if unk is None or unk not in self._encode(text):
            return
        words = [text[s:e] for s, e in spans if unk in self._encode(text[s:e])]
        msg = (f"The resampler's tokenizer ({type(self.tokenizer).__name__}) cannot segment the "
               f"text {text!r}: it maps {words or [text]} to its unknown token "
               f"{self.tokenizer.unk_token!r}, so the language model cannot score the text. Use a "
               "causal LM whose tokenizer covers the text, e.g. a byte-level BPE or SentencePiece "
               "model with byte fallback (GPT-2, Gemma).")
        raise InvalidInputError(msg, parameter="text", value=text)

    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []

    def _contexts(self, text: str, span: tuple[int, int]) -> tuple[list[int], list[int], bool]:
        """Token ids of BOS + L and of R, and whether the word follows whitespace."""
        left = text[: span[0]]
        left_text = left.rstrip()
        after_space = bool(left_text) and len(left_text) < len(left)
        prefix = ([self.bos_id] if self.bos_id is not None else []) + self._encode(left_text)
        if not prefix:
            msg = (f"The word at {span} of {text!r} starts the text, and without a BOS token the "
                   "causal LM has no distribution for it. Use add_bos=True with a tokenizer that "
                   "has a bos_token.")
            raise InvalidInputError(msg, parameter="text", value=text)
        right = text[span[1]:]
        if self._prefix_space and right[:1] == " ":  # the tokenizer adds the space itself
            right = right[1:]
        right_ids = self._encode(right)
        max_len = getattr(self.model.config, "max_position_embeddings", None)
        if max_len is not None and len(prefix) + 1 + len(right_ids) > max_len:
            msg = (f"The text {text!r} is {len(prefix) + 1 + len(right_ids)} tokens long with the "
                   f"candidate, more than the causal LM's maximum of {max_len}. Shorten the text.")
            raise InvalidInputError(msg, parameter="text", value=text)
        return prefix, right_ids, after_space

    def _propose_one(self, text: str, span: tuple[int, int]) -> Candidates:
        prefix, right_ids, after_space = self._contexts(text, span)
        with _eval_mode(self.model), torch.no_grad():
            logp_left, cache = self._prefix_pass(prefix)
            ids, words = self._candidates(logp_left, after_space)
            score = logp_left[ids].double()
            if right_ids:
                score = score + self._right_loglik(prefix, ids, right_ids, cache)
        post = score.softmax(-1)
        kept = _restrict(post, top_k=None, min_prob=self.min_prob)
        p = post[kept]
        if self.renormalize and float(p.sum()) > 0:
            p = p / p.sum()
        return Candidates(tuple(words[int(k)] for k in kept), p)

    def _forward(self, ids: torch.Tensor, *, cache: Any = None, keep: int = 0,
                 want_cache: bool = False) -> Any:
        kwargs: dict[str, Any] = {"use_cache": want_cache or cache is not None}
        if cache is not None:
            kwargs[self._cache_kw] = cache
        if keep and self._keep_kw:
            kwargs["logits_to_keep"] = keep
        self.n_model_calls += 1
        return self.model(input_ids=ids.to(self.model.device), **kwargs)

    def _prefix_pass(self, prefix: list[int]) -> tuple[torch.Tensor, Any]:
        """log p(· | L) over the vocabulary, and L's key/value cache (None when not reusable)."""
        out = self._forward(torch.tensor([prefix]), keep=1, want_cache=self.use_cache)
        logp = _log_softmax(out.logits[0, -1]).cpu()
        cache = getattr(out, self._cache_kw, None) if self.use_cache else None
        if not hasattr(cache, "batch_repeat_interleave"):  # legacy tuples: run full sequences
            cache = None
        return logp, cache

    def _candidates(self, logp_left: torch.Tensor,
                    after_space: bool) -> tuple[torch.Tensor, list[str]]:
        """The ``top_k`` allowed tokens most likely after L, and their words."""
        logp = logp_left[: len(self._tokens)]
        allowed = self._allowed[after_space]
        ids: list[int] = []
        words: list[str] = []
        for tid in logp.masked_fill(~allowed, -torch.inf).argsort(descending=True).tolist():
            if len(ids) == self.top_k or not bool(allowed[tid]):
                break
            word = self._word(tid)
            if word is not None:
                ids.append(tid)
                words.append(word)
        if not ids:
            msg = ("No vocabulary token of the causal LM's tokenizer can start a word here. Pass "
                   "is_word_start for this tokenizer, or whole_words=False.")
            raise InvalidInputError(msg, parameter="tokenizer", value=type(self.tokenizer).__name__)
        return torch.tensor(ids), words

    def _word(self, tid: int) -> str | None:
        """The text a candidate token puts in place of the word (None when it is no word)."""
        if tid not in self._words:
            word = self.tokenizer.convert_tokens_to_string([self._tokens[tid]]).strip()
            good = word.isalpha() if self.whole_words else bool(word)
            self._words[tid] = word if good else None
        return self._words[tid]

    def _right_loglik(self, prefix: list[int], ids: torch.Tensor, right_ids: list[int],
                      cache: Any) -> torch.Tensor:
        """log p(R | L, w) for every candidate w, teacher-forced, in batches of ``batch_size``."""
        target = torch.tensor(right_ids)
        out = []
        for start in range(0, len(ids), self.batch_size):
            chunk = ids[start: start + self.batch_size]
            m = len(chunk)
            tail = torch.cat([chunk[:, None], target[:-1].expand(m, -1)], dim=1)
            if cache is not None:
                batch_cache = copy.deepcopy(cache)
                batch_cache.batch_repeat_interleave(m)
                logits = self._forward(tail, cache=batch_cache).logits
            else:
                full = torch.cat([torch.tensor(prefix).expand(m, -1), tail], dim=1)
                logits = self._forward(full, keep=len(right_ids)).logits[:, -len(right_ids):]
            logp = _log_softmax(logits)  # gathered where it lives: only (m, len(R)) moves
            picked = logp.gather(-1, target.to(logp.device).expand(m, -1)[..., None])[..., 0]
            out.append(picked.double().sum(-1).cpu())
        return torch.cat(out)


def _log_softmax(logits: torch.Tensor) -> torch.Tensor:
    """log_softmax over the vocabulary in at least float32 (bf16 logits lose the tail)."""
    return logits.to(torch.promote_types(logits.dtype, torch.float32)).log_softmax(-1)


@contextlib.contextmanager
def _eval_mode(model: Any) -> Iterator[None]:
    """Run ``model`` in eval mode (no dropout, no RNG use) and restore its training flag."""
    was_training = bool(getattr(model, "training", False))
    if was_training:
        model.eval()
    try:
        yield
    finally:
        if was_training:
            model.train()
