"""Context length probing (Cífka & Liutkus 2023): what each context token adds to a prediction."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch

from .._capabilities import Capability, Modality
from .._registry import register_method
from .._validation import Constraint, Interval, Options
from ..adapters._base import Batch, ModelAdapter
from ..adapters._causal_rows import rows_per_call
from ..exceptions import InvalidInputError, InvalidTargetError
from ..explanation import ResolvedTarget
from ..features._base import FeatureSpace
from ._base import AttributionOutput, Method

__all__ = ["ContextLengthProbing"]


@register_method("context_length_probing")
@dataclasses.dataclass(frozen=True, kw_only=True)
class ContextLengthProbing(Method):
    """Context length probing: the change in loss (or KL) when a context token enters the context.

    For a text x_0 … x_{N−1} (after BOS) and every target token x_t, ``D(t, c)`` scores the
    prediction of x_t from the last ``c`` tokens only (BOS is prepended to every truncated
    context): the NLL −log p(x_t | BOS, x_{t−c} … x_{t−1}), or KL(p_full(t) ‖ p_c(t)) against the
    longest context c_max(t) = min(t, max_context) (so ``D(t, c_max) = 0``). ``D(t, 0)`` is the
    BOS-only prediction. The importance of context token x_j, which enters at c = t − j, is

        Δ(j → t) = D(t, c − 1) − D(t, c),

    so Σ_j Δ(j → t) = D(t, 0) − D(t, c_max(t)) (telescoping). Tokens farther back than
    ``max_context`` get 0. Without a BOS token D(t, 0) is undefined (NaN in ``extras["D"]``) and
    the adjacent token's importance is reported as 0.

    Cost: stride-1 sliding windows [BOS, x_s … x_{s+w−1}] with w = min(max_context, N − 1 − s):
    one window's forward pass gives the predictions of x_{s+1} … x_{s+w} from contexts of length
    1 … w. N − 1 windows (about N·w token positions) plus one BOS-only call, batched by
    ``batch_size`` windows (fewer when batch × w × vocab would exceed 2^27 floats); the model
    is never run once per (t, c). KL is computed chunk by chunk against the stored full-context
    rows, so N·w·vocab values never exist at once.

    Output: ``values`` (1, n_targets, n_context) with targets x_1 … x_{N−1} (their token strings
    are the output names) and context features = tokens or words of the text (word values sum
    the token Δ of the word's pieces). ``predictions`` are the full-context log p of each target.
    ``extras``: ``"D"`` (1, n_targets, max_c + 1), ``"n_model_calls"``, ``"n_token_positions"``.
    One text per call; ``target`` must be None or "all".

    Parameters
    ----------
    metric : {"kl", "nll"}, default="kl"
        D as KL(p_full ‖ p_c) or as the NLL of the actual next token.
    max_context : int, default=256
        Longest context length probed (the window length).
    granularity : {"token", "word"}, default="token"
        Context features: model tokens, or words (runs of tokens with touching offsets).

    References
    ----------
    .. [1] O. Cífka and A. Liutkus, "Black-box language model explanation by context length
           probing", ACL 2023 (Short Papers), pp. 1067–1079, doi:10.18653/v1/2023.acl-short.92.
           Reference code: https://github.com/cifkao/context-probing
    """

    requires: ClassVar[Capability] = Capability.GENERATION
    modalities: ClassVar[frozenset[Modality]] = frozenset({"generation"})
    reference: ClassVar[str] = "Cífka & Liutkus 2023, doi:10.18653/v1/2023.acl-short.92"
    _constraints: ClassVar[Mapping[str, Sequence[Constraint]]] = {
        "metric": [Options({"kl", "nll"})],
        "max_context": [Interval(int, 1, None, closed="left")],
        "granularity": [Options({"token", "word"})],
    }

    metric: str = "kl"
    max_context: int = 256
    granularity: str = "token"

    @property
    def multiplies_by_inputs(self) -> bool:
        """False: the values are differences of scores between context lengths, not shares of
        f(x) - f(baseline)."""
        return False

    @classmethod
    def _test_params(cls) -> list[dict[str, Any]]:
        return [{"max_context": 4}]

    def _resolve_target(self, adapter: ModelAdapter, batch: Batch, target: Any, *,
                        batch_size: int) -> ResolvedTarget:
        """Every target token x_1 … x_{N−1} of the one text (``target`` None or "all"); their
        full-context log-probabilities come with the attribution."""
        if not (target is None or (isinstance(target, str) and target == "all")):
            msg = (f"ContextLengthProbing explains every target token of the text, so 'target' "
                   f"must be None or 'all'. Got {target!r} instead.")
            raise InvalidTargetError(msg, value=target)
        if len(batch) != 1:
            msg = (f"ContextLengthProbing explains one text at a time; 'inputs' has {len(batch)}. "
                   "Call it once per text.")
            raise InvalidInputError(msg, value=len(batch))
        content, _, names = _sequence(adapter, batch)
        if content.shape[0] < 2:
            msg = (f"The text has {content.shape[0]} token after BOS; context length probing "
                   "needs at least 2 (a context token and a target). Pass a longer text.")
            raise InvalidInputError(msg, value=batch.texts)
        return ResolvedTarget(torch.arange(len(names) - 1).unsqueeze(0), (tuple(names[1:]),))

    def _attribute(self, adapter: ModelAdapter, batch: Batch, features: tuple[FeatureSpace, ...],
                   target: ResolvedTarget, *, batch_size: int,
                   rng: torch.Generator) -> AttributionOutput:
        content, prefix, _ = _sequence(adapter, batch)
        n = content.shape[0]
        d, full_lp, n_calls, n_pos = _probe(adapter, content, prefix, self.metric,
                                            self.max_context, batch_size)
        delta = deltas(d, n)  # (n_targets, n_tokens)
        fs = features[0]
        pos = batch.tensors["attention_mask"][0].bool().nonzero().squeeze(1)
        special = batch.tensors["special_tokens_mask"][0][pos].bool()
        content_pos = (~special).nonzero().squeeze(1)
        token_feature = getattr(fs, "token_feature", None)
        if token_feature is None or fs.n_features == n:
            values = delta
        else:  # words: sum the Δ of each word's pieces
            idx = token_feature[content_pos]
            values = torch.zeros(n - 1, fs.n_features, dtype=delta.dtype)
            values.index_add_(1, idx[idx >= 0], delta[:, idx >= 0])
        extras = {"D": d.unsqueeze(0), "n_model_calls": torch.tensor(n_calls),
                  "n_token_positions": torch.tensor(n_pos)}
        return AttributionOutput([values], extras=extras,
                                 target=dataclasses.replace(target, scores=full_lp.unsqueeze(0)))


def _sequence(adapter: ModelAdapter, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Content token ids (N,), the leading special prefix (BOS) and each content token's text."""
    keep = batch.tensors["attention_mask"][0].bool()
    ids = batch.tensors["input_ids"][0][keep]
    special = batch.tensors["special_tokens_mask"][0][keep].bool()
    offsets = batch.tensors["offset_mapping"][0][keep]
    content_pos = (~special).nonzero().squeeze(1)
    first = int(content_pos[0]) if content_pos.numel() else ids.shape[0]
    text = (batch.texts or ("",))[0]
    namer = getattr(adapter, "token_name", None)
    names = []
    for p in content_pos.tolist():
        span = (int(offsets[p, 0]), int(offsets[p, 1]))
        names.append(namer(int(ids[p]), text, span) if namer else text[span[0]:span[1]])
    return ids[content_pos], ids[:first], names


def _probe(adapter: Any, content: torch.Tensor, prefix: torch.Tensor, metric: str,
           max_context: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """D (n_targets, max_c + 1), full-context log p of each target, model calls, positions."""
    n, p = content.shape[0], prefix.shape[0]
    w = min(max_context, n - 1)
    d = torch.full((n - 1, w + 1), math.nan)  # row t-1 = target t; column c
    full_lp = torch.zeros(n - 1)
    cmax = torch.clamp(torch.arange(1, n), max=w)  # c_max of targets 1..n-1
    n_calls, n_pos = 0, 0
    null: torch.Tensor | None = None
    if p:  # D(t, 0): the BOS-only prediction, one call
        null = adapter.token_log_probs(prefix.unsqueeze(0), torch.ones(1, p, dtype=torch.long))
        null = null[0, -1]
        n_calls, n_pos = 1, p
    full_rows: torch.Tensor | None = None
    starts = list(range(n - 1))
    vocab = None if null is None else null.shape[-1]
    step = 1 if vocab is None else rows_per_call(batch_size, w + 1, vocab)
    if vocab is not None and metric == "kl":
        full_rows = torch.zeros(n - 1, vocab)
    s0 = 0
    while s0 < len(starts):
        chunk = starts[s0:s0 + step]
        ids, mask = _windows(content, prefix, chunk, w)
        lp = adapter.token_log_probs(ids, mask)[:, p - 1 if p else 0:].detach().float().cpu()
        if not p:  # without BOS position k predicts context k+1: prepend an empty column
            lp = torch.cat([torch.full_like(lp[:, :1], math.nan), lp], dim=1)
        if vocab is None:  # no BOS call: the vocabulary size is known after one window
            vocab = lp.shape[-1]
            step = rows_per_call(batch_size, w + 1, vocab)
            if metric == "kl":
                full_rows = torch.zeros(n - 1, vocab)
        n_calls += 1
        n_pos += int(mask.sum())
        _fill(d, full_lp, full_rows, lp, chunk, content, cmax, metric)
        s0 += len(chunk)
    if null is not None:
        labels = content[1:]
        if metric == "nll":
            d[:, 0] = -null[labels].float()
        else:
            assert full_rows is not None
            d[:, 0] = _kl(full_rows, null.float().unsqueeze(0).expand_as(full_rows))
    return d, full_lp, n_calls, n_pos


def _windows(content: torch.Tensor, prefix: torch.Tensor, starts: list[int],
             w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """[prefix, x_s … x_{s+len-1}] per start, len = min(w, N-1-s), right-padded (mask 0)."""
    n, p = content.shape[0], prefix.shape[0]
    ids = torch.zeros(len(starts), p + w, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for r, s in enumerate(starts):
        length = min(w, n - 1 - s)
        ids[r, :p] = prefix
        ids[r, p:p + length] = content[s:s + length]
        mask[r, :p + length] = 1
    return ids, mask


def _fill(d: torch.Tensor, full_lp: torch.Tensor, full_rows: torch.Tensor | None,
          lp: torch.Tensor, starts: list[int], content: torch.Tensor, cmax: torch.Tensor,
          metric: str) -> None:
    """Write D(t, c) for every (window s, context c) of one chunk; lp[:, c] predicts x_{s+c}."""
    n = content.shape[0]
    rows, cols, src_r = [], [], []
    for r, s in enumerate(starts):
        for c in range(1, min(lp.shape[1] - 1, n - 1 - s) + 1):
            rows.append(s + c - 1)
            cols.append(c)
            src_r.append(r)
    t_idx, c_idx, r_idx = (torch.tensor(v, dtype=torch.long) for v in (rows, cols, src_r))
    picked = lp[r_idx, c_idx]  # (k, vocab)
    labels = content[t_idx + 1]
    label_lp = picked.gather(1, labels.unsqueeze(1)).squeeze(1)
    is_full = c_idx == cmax[t_idx]
    full_lp[t_idx[is_full]] = label_lp[is_full]
    if metric == "nll":
        d[t_idx, c_idx] = -label_lp
        return
    assert full_rows is not None  # windows come in increasing s: the full row is seen first
    full_rows[t_idx[is_full]] = picked[is_full]
    d[t_idx, c_idx] = _kl(full_rows[t_idx], picked)


def _kl(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """KL(p ‖ q) per row from log-probabilities, 0 · log 0 = 0."""
    p = log_p.exp()
    return torch.where(p > 0, p * (log_p - log_q), torch.zeros_like(p)).sum(-1).clamp_min(0.0)


def deltas(d: torch.Tensor, n: int) -> torch.Tensor:
    """Δ(j → t) = D(t, c−1) − D(t, c), c = t − j: (n − 1 targets, n context tokens).

    Entries with j ≥ t or c > max context are 0; an undefined D(t, 0) (no BOS) gives 0.
    """
    w = d.shape[1] - 1
    out = torch.zeros(n - 1, n)
    diff = d[:, :-1] - d[:, 1:]  # column c-1 holds D(t, c-1) - D(t, c)
    for ti in range(n - 1):
        t = ti + 1
        for c in range(1, min(t, w) + 1):
            out[ti, t - c] = diff[ti, c - 1]
    return torch.nan_to_num(out, nan=0.0)
