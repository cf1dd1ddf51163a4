"""Many prompts, one shared prefix: batched teacher forcing and greedy decoding for causal LMs.

The prompts of a coalition game share their beginning (the instruction, the chat template, the
first kept document). :class:`RowRunner` runs that common token prefix **once** with the KV
cache, repeats the cache over the batch and feeds only each row's own tokens, *middle-padded*:

    [prefix (cached)] [pad … pad] [row tokens] [shared tail]
     attention 1 …     0 … 0       1 …          1 …

Position ids count attended tokens only, so every row sees exactly the positions it would see
alone; the pads are masked keys. All rows end in the same column, so one more column per step
decodes the whole batch greedily, and a shared tail (a target continuation, or a candidate
answer for the speculative check) is teacher-forced in the same pass.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

import torch

from ._causal import HFCausalLMAdapter, _cache_of, _logits, positions

__all__ = ["CHUNK_FLOATS", "RowRunner", "rows_per_call"]

#: Most logit/log-probability floats one model call may return (rows x positions x vocab):
#: 2^27 = 512 MiB of float32.
CHUNK_FLOATS = 2**27


def rows_per_call(batch_size: int, positions: int, vocab: int) -> int:
    """``batch_size`` rows, fewer when rows x positions x vocab would exceed CHUNK_FLOATS."""
    return max(1, min(batch_size, CHUNK_FLOATS // max(1, positions * vocab)))


def common_prefix(rows: Sequence[Sequence[int]]) -> int:
    """Length of the longest common prefix of token id lists."""
    first, n = rows[0], min(len(r) for r in rows)
    for k in range(n):
        if any(r[k] != first[k] for r in rows):
            return k
    return n


@dataclasses.dataclass
class RowRunner:
    """Batched forward passes over token-id rows of one causal LM, sharing the common prefix.

    Attributes
    ----------
    n_model_calls : int
        Forward passes made (prefix passes and decoding steps included).
    n_token_positions : int
        Token positions pushed through the model (pads included).
    """

    adapter: HFCausalLMAdapter
    batch_size: int = 64
    n_model_calls: int = 0
    n_token_positions: int = 0

    @functools.cached_property
    def vocab(self) -> int:
        """Size of the model's output vocabulary (the larger of tokenizer and config)."""
        tok = self.adapter.tokenizer
        config = getattr(self.adapter._model, "config", None)
        return max(len(tok), int(getattr(tok, "vocab_size", 0) or 0),
                   int(getattr(config, "vocab_size", 0) or 0), 1)

    @property
    def cached(self) -> bool:
        """Whether the model takes a KV cache (transformers models); else rows run in full."""
        return hasattr(self.adapter._model, "generate")

    # -- one chunk --------------------------------------------------------------------------
    @torch.no_grad()
    def _run(self, rows: Sequence[Sequence[int]], tail: Sequence[int],
             keep_cache: bool) -> tuple[torch.Tensor, Any, torch.Tensor]:
        """Logits of the last ``len(tail) + 1`` columns (m, k, V), the cache and the mask."""
        m, a = len(rows), self.adapter
        p = min(common_prefix(rows), min(len(r) for r in rows) - 1) if self.cached else 0
        extra: dict[str, Any] = {}
        if p > 0:
            ids = torch.tensor([list(rows[0][:p])])
            first = a._call(ids, torch.ones_like(ids), use_cache=True)
            self._count(1, p)
            cache = _cache_of(first)
            cache.batch_repeat_interleave(m)
            extra = {a._cache_kw: cache}
        width = max(len(r) for r in rows) - p
        own = torch.full((m, width), a.pad_id, dtype=torch.long)
        own_mask = torch.zeros(m, width, dtype=torch.long)
        for i, r in enumerate(rows):
            n = len(r) - p
            own[i, width - n:] = torch.tensor(list(r[p:]), dtype=torch.long)
            own_mask[i, width - n:] = 1
        t = torch.tensor(list(tail), dtype=torch.long).expand(m, -1)
        new = torch.cat([own, t], dim=1)
        mask = torch.cat([torch.ones(m, p, dtype=torch.long), own_mask,
                          torch.ones_like(t)], dim=1)
        use: dict[str, Any] = {"use_cache": True} if keep_cache else a._no_cache()
        if a._last_only:  # logits of the last columns only: (m, k, vocab), not (m, L, vocab)
            use["logits_to_keep"] = len(tail) + 1
        out = a._call(new, mask, positions(mask)[:, p:], **use, **extra)
        self._count(1, m * new.shape[1])
        logits = _logits(out)[:, -(len(tail) + 1):].float()
        return logits, (_cache_of(out) if keep_cache else None), mask

    def _count(self, calls: int, positions_: int) -> None:
        self.n_model_calls += calls
        self.n_token_positions += positions_

    def _chunks(self, rows: Sequence[Sequence[int]], extra: int,
                kept: int) -> list[list[int]]:
        """Row indices per model call: ``batch_size`` rows (fewer when the ``kept`` logit
        columns per row would exceed CHUNK_FLOATS), of equal length where it matters.

        Padding changes a sliding-window layer's result (the window counts cache slots, pads
        included), so when a padded row plus ``extra`` tokens would exceed the model's sliding
        window, rows are grouped by length and never padded.
        """
        window = getattr(getattr(self.adapter._model, "config", None), "sliding_window", None)
        order = list(range(len(rows)))
        if window and max(len(r) for r in rows) + extra > int(window):
            order.sort(key=lambda i: len(rows[i]))
            groups: list[list[int]] = []
            for i in order:
                if groups and len(rows[groups[-1][0]]) == len(rows[i]):
                    groups[-1].append(i)
                else:
                    groups.append([i])
        else:
            groups = [order]
        step = rows_per_call(self.batch_size, kept, self.vocab)
        return [g[s:s + step] for g in groups for s in range(0, len(g), step)]

    # -- public -----------------------------------------------------------------------------
    def continuation_log_probs(self, rows: Sequence[Sequence[int]],
                               target: Sequence[int]) -> torch.Tensor:
        """log p(target_k | row, target_<k) for every row and target token, (m, T) float64."""
        out = torch.zeros(len(rows), len(target), dtype=torch.float64)
        tgt = torch.tensor(list(target), dtype=torch.long)
        for idx in self._chunks(rows, len(target), kept=len(target)):
            logits, _, _ = self._run([rows[i] for i in idx], target[:-1], keep_cache=False)
            lp = torch.log_softmax(logits, dim=-1)
            out[idx] = lp.gather(2, tgt.expand(lp.shape[0], -1).unsqueeze(-1)).squeeze(-1).double()
        return out

    def verify(self, rows: Sequence[Sequence[int]], answer: Sequence[int]) -> torch.Tensor:
        """Whether greedy decoding from each row yields exactly ``answer``, in one pass per chunk.

        ``answer`` is a previous greedy output: it ends with a stop token or has exactly the
        length limit's number of tokens. Every step's argmax is checked, so an accepted row's
        greedy output *is* ``answer`` (the speculative check of TextGenSHAP).
        """
        ok = torch.zeros(len(rows), dtype=torch.bool)
        ans = torch.tensor(list(answer), dtype=torch.long)
        for idx in self._chunks(rows, len(answer), kept=len(answer)):
            logits, _, _ = self._run([rows[i] for i in idx], answer[:-1], keep_cache=False)
            ok[idx] = (logits.argmax(-1) == ans).all(1)
        return ok

    def greedy(self, rows: Sequence[Sequence[int]], max_new_tokens: int,
               stop_ids: Sequence[int]) -> list[list[int]]:
        """Greedy continuation of every row: new token ids, the stop token included if produced."""
        out: list[list[int]] = [[] for _ in rows]
        stop = torch.tensor(sorted(set(stop_ids)), dtype=torch.long)
        for idx in self._chunks(rows, max_new_tokens, kept=1):
            for i, seq in zip(idx, self._greedy_chunk([rows[i] for i in idx], max_new_tokens,
                                                      stop), strict=True):
                out[i] = seq
        return out

    @torch.no_grad()
    def _greedy_chunk(self, rows: Sequence[Sequence[int]], max_new: int,
                      stop: torch.Tensor) -> list[list[int]]:
        a, m = self.adapter, len(rows)
        logits, cache, mask = self._run(rows, (), keep_cache=self.cached)
        tokens = logits[:, -1].argmax(-1)
        new, done = [tokens], torch.isin(tokens, stop)
        ids = torch.stack([torch.tensor(list(r), dtype=torch.long) for r in _left(rows, a.pad_id)])
        while len(new) < max_new and not bool(done.all()):
            mask = torch.cat([mask, torch.ones(m, 1, dtype=torch.long)], dim=1)
            if self.cached:
                pos = positions(mask)[:, -1:]
                out = a._call(tokens.unsqueeze(1), mask, pos, use_cache=True,
                              **{a._cache_kw: cache}, **a._last_only)
                cache = _cache_of(out)
                self._count(1, m)
            else:
                ids = torch.cat([ids, tokens.unsqueeze(1)], dim=1)
                out = a._call(ids, mask[:, -ids.shape[1]:], **a._no_cache())
                self._count(1, m * ids.shape[1])
            tokens = torch.where(done, torch.full_like(tokens, a.pad_id),
                                 _logits(out)[:, -1].argmax(-1).cpu())
            new.append(tokens)
            done = done | torch.isin(tokens, stop)
        seqs = torch.stack(new, dim=1).tolist()
        return [_until_stop(s, stop.tolist()) for s in seqs]


def _left(rows: Sequence[Sequence[int]], pad: int) -> list[list[int]]:
    width = max(len(r) for r in rows)
    return [[pad] * (width - len(r)) + list(r) for r in rows]


def _until_stop(seq: list[int], stop: list[int]) -> list[int]:
    for k, tok in enumerate(seq):
        if tok in stop:
            return seq[:k + 1]
    return seq
