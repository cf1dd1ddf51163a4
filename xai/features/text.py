"""Features of tokenized text: tokens or words (from tokenizer offsets); special tokens excluded."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

from ..adapters._base import Batch
from ._base import check_keep

__all__ = ["TextFeatures", "TokenFeatures", "WordFeatures", "word_groups"]

Removal = Literal["pad", "mask", "unk", "delete"]


class TextFeatures:
    """Groups of token positions of one tokenized text, switched off by replacement or deletion.

    Parameters
    ----------
    tensors : dict of str to torch.Tensor
        One example's model tensors (``input_ids``, ``attention_mask``, ...), each of shape (L,),
        already stripped of padding.
    groups : sequence of sequence of int
        Token positions of each feature. Special tokens must not appear in any group.
    names : sequence of str
        One name per feature (the token or the word).
    removal : {"pad", "mask", "unk", "delete"}
        How a removed feature is switched off: its tokens replaced by ``replace_id``, or deleted.
    replace_id : int or None
        Token id used by the replacing removals.
    pad_id : int
        Padding id when deleted rows of different lengths are stacked.
    """

    granularity: str = "token"

    def __init__(
        self,
        tensors: dict[str, torch.Tensor],
        groups: Sequence[Sequence[int]],
        names: Sequence[str],
        *,
        removal: Removal,
        replace_id: int | None,
        pad_id: int,
        text: str | None = None,
        spans: Sequence[tuple[int, int]] = (),
    ) -> None:
        self.tensors = tensors
        self.groups = tuple(tuple(g) for g in groups)
        self._names = tuple(names)
        self.removal = removal
        self.replace_id = replace_id
        self.pad_id = pad_id
        self.text = text
        self.spans = tuple(spans)
        length = tensors["input_ids"].shape[0]
        ids = torch.full((length,), -1, dtype=torch.long)
        for f, g in enumerate(self.groups):
            ids[list(g)] = f
        self.token_feature = ids  # feature of each token position, -1 for special tokens

    @property
    def n_features(self) -> int:
        return len(self.groups)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self._names

    @property
    def n_tokens(self) -> int:
        return int(self.tensors["input_ids"].shape[0])

    def token_keep(self, keep: torch.Tensor) -> torch.Tensor:
        """Feature-level keep (n_masks, n_features) to token-level keep (n_masks, L)."""
        keep = check_keep(keep, self.n_features)
        padded = torch.cat([keep, torch.ones(keep.shape[0], 1, dtype=torch.bool)], dim=1)
        return padded[:, self.token_feature]  # index -1 picks the always-kept column

    def mask(self, keep: torch.Tensor) -> Batch:
        tok_keep = self.token_keep(keep)
        if self.removal == "delete":
            return self._delete(tok_keep)
        ids = self.tensors["input_ids"].unsqueeze(0).expand(tok_keep.shape[0], -1)
        assert self.replace_id is not None
        new_ids = torch.where(tok_keep, ids, torch.full_like(ids, self.replace_id))
        tensors = {k: v.unsqueeze(0).expand_as(new_ids).clone() for k, v in self.tensors.items()
                   if k != "input_ids" and v.dim() == 1}
        tensors["input_ids"] = new_ids
        return Batch(tensors)

    def _delete(self, tok_keep: torch.Tensor) -> Batch:
        width = int(tok_keep.sum(1).max().item())
        out: dict[str, torch.Tensor] = {}
        for key, value in self.tensors.items():
            if value.dim() != 1:
                continue
            fill = self.pad_id if key == "input_ids" else 0
            rows = torch.full((tok_keep.shape[0], width), fill, dtype=value.dtype)
            for r in range(tok_keep.shape[0]):
                kept = value[tok_keep[r]]
                rows[r, : kept.shape[0]] = kept
            out[key] = rows
        return Batch(out)

    def baseline(self) -> Batch:
        return self.mask(torch.zeros(1, self.n_features, dtype=torch.bool))

    def original(self) -> Batch:
        """The unperturbed text as a one-row batch."""
        return Batch({k: v.unsqueeze(0).clone() for k, v in self.tensors.items() if v.dim() == 1})

    def reshape(self, values: torch.Tensor) -> torch.Tensor:
        """Feature values (..., n_features) spread onto token positions (..., L); specials get 0."""
        zero = torch.zeros(*values.shape[:-1], 1, dtype=values.dtype)
        return torch.cat([values, zero], dim=-1)[..., self.token_feature]

    def aggregate(self, token_values: torch.Tensor) -> torch.Tensor:
        """Sum token-level values (..., L) into feature-level values (..., n_features)."""
        out = torch.zeros(*token_values.shape[:-1], self.n_features, dtype=token_values.dtype)
        sel = self.token_feature >= 0
        return out.index_add_(-1, self.token_feature[sel], token_values[..., sel])

    def grouped(self, ids: torch.Tensor) -> TextFeatures:
        """These features merged into groups: ``ids`` gives each feature its group (0..k-1).

        A group's tokens are switched off together; its name joins its members' names with
        spaces, and its character span covers them when they are contiguous (OLM and input
        marginalization replace spans, so they need contiguous groups)."""
        k = int(ids.max()) + 1 if ids.numel() else 0
        members = [[f for f in range(self.n_features) if int(ids[f]) == g] for g in range(k)]
        groups = [sorted(p for f in m for p in self.groups[f]) for m in members]
        names = [" ".join(self._names[f] for f in m) for m in members]
        spans: list[tuple[int, int]] = []
        if len(self.spans) == self.n_features and all(m == list(range(m[0], m[-1] + 1))
                                                       for m in members if m):
            spans = [(self.spans[m[0]][0], self.spans[m[-1]][1]) for m in members]
        return type(self)(self.tensors, groups, names, removal=self.removal,
                          replace_id=self.replace_id, pad_id=self.pad_id, text=self.text,
                          spans=spans)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(n_features={self.n_features}, removal={self.removal!r}, "
                f"n_tokens={self.n_tokens})")


class TokenFeatures(TextFeatures):
    """Every non-special token is one feature."""

    granularity = "token"


class WordFeatures(TextFeatures):
    """Words (runs of tokens with touching character offsets) are features."""

    granularity = "word"


def word_groups(
    offsets: torch.Tensor, special: torch.Tensor, text: str
) -> tuple[list[list[int]], list[str], list[tuple[int, int]]]:
    """Group token positions into words using character offsets, never marker characters.

    A token starts a new word when its start offset differs from the previous content token's end
    offset (there was whitespace between them) . Returns (groups, names, character spans).
    """
    groups: list[list[int]] = []
    spans: list[tuple[int, int]] = []
    prev_end = -1
    for pos in range(offsets.shape[0]):
        if bool(special[pos]):
            prev_end = -1
            continue
        start, end = int(offsets[pos, 0]), int(offsets[pos, 1])
        if end <= start:  # zero-width content token: attach to the current word if any
            if groups:
                groups[-1].append(pos)
            continue
        if groups and start == prev_end:
            groups[-1].append(pos)
            spans[-1] = (spans[-1][0], end)
        else:
            groups.append([pos])
            spans.append((start, end))
        prev_end = end
    names = [text[s:e] for s, e in spans]
    return groups, names, spans
