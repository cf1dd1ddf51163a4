"""Scoring many masked copies of many examples in as few model calls as ``batch_size`` allows.

Masks arrive as a stream of pieces (example index, keep rows) and their scores leave as a
stream, so a sampler holds at most about ``batch_size`` rows of masks, masked inputs and scores
at a time, whatever its budget.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Callable, Iterable, Sequence

import torch

from ..adapters._base import Batch, ModelAdapter
from ..features._base import FeatureSpace

__all__ = ["score_masks", "stream_scores"]

#: (example index, bool keep rows (m, n_features of that example))
Piece = tuple[int, torch.Tensor]


def _pad_values(features: Sequence[FeatureSpace]) -> dict[str, int]:
    pad = getattr(features[0], "pad_id", 0)
    return {"input_ids": int(pad)}


def row_pieces(n_rows: Sequence[int], masks: Callable[[int, int, int], torch.Tensor],
               batch_size: int) -> Iterable[Piece]:
    """Pieces of at most ``batch_size`` rows: example ``i``'s rows ``start:stop`` are built by
    ``masks(i, start, stop)`` only when the scorer reaches them."""
    for i, n in enumerate(n_rows):
        for start in range(0, n, batch_size):
            yield i, masks(i, start, min(start + batch_size, n))


class _Outbox:
    """Scores waiting to be handed to their pieces, in order."""

    def __init__(self, consume: Callable[[int, torch.Tensor], None]) -> None:
        self.consume = consume
        self.owners: collections.deque[tuple[int, int]] = collections.deque()
        self.scores: list[torch.Tensor] = []
        self.n_scores = 0

    def add(self, scores: torch.Tensor) -> None:
        self.scores.append(scores)
        self.n_scores += scores.shape[0]
        if not self.owners or self.owners[0][1] > self.n_scores:
            return
        buf, offset = torch.cat(self.scores), 0
        while self.owners and self.owners[0][1] <= buf.shape[0] - offset:
            i, n = self.owners.popleft()
            self.consume(i, buf[offset:offset + n])
            offset += n
        self.scores = [buf[offset:]]
        self.n_scores = buf.shape[0] - offset


def stream_scores(
    adapter: ModelAdapter,
    features: Sequence[FeatureSpace],
    pieces: Iterable[Piece],
    consume: Callable[[int, torch.Tensor], None],
    *,
    batch_size: int,
) -> int:
    """Score every piece's masks and hand each piece's scores to ``consume(i, scores)``, in order.

    The masked rows of consecutive pieces are packed into model calls of exactly ``batch_size``
    rows (the last call takes the rest), so the calls do not depend on how the rows were cut into
    pieces. A piece is built only when the previous calls have been made, and its scores
    (m, n_model_outputs) are handed over as soon as all its rows are scored.

    Returns
    -------
    int
        The number of model calls made.
    """
    pads = _pad_values(features)
    outbox = _Outbox(consume)
    pending: list[Batch] = []
    n_pending = n_calls = 0
    with torch.no_grad():
        for i, keep in pieces:
            part = features[i].mask(keep)
            pending.append(part)
            n_pending += len(part)
            outbox.owners.append((i, len(part)))
            while n_pending >= batch_size:
                merged = Batch.concat(pending, pad_values=pads)
                rest = merged.take(slice(batch_size, None))
                pending, n_pending = ([rest], len(rest)) if len(rest) else ([], 0)
                n_calls += 1
                outbox.add(adapter.predict(merged.take(slice(0, batch_size))).float().cpu())
        if n_pending:
            n_calls += 1
            outbox.add(adapter.predict(Batch.concat(pending, pad_values=pads)).float().cpu())
    return n_calls


def score_masks(
    adapter: ModelAdapter,
    features: Sequence[FeatureSpace],
    keeps: Sequence[torch.Tensor],
    *,
    batch_size: int,
) -> tuple[list[torch.Tensor], int]:
    """Model scores for every keep-mask of every example (masks given up front).

    Parameters
    ----------
    features : one FeatureSpace per example
    keeps : one bool tensor (n_masks_i, n_features_i) per example

    Returns
    -------
    scores : list of tensors (n_masks_i, n_model_outputs), one per example
    n_calls : number of model calls made (ceil(total masks / batch_size))
    """
    got: list[list[torch.Tensor]] = [[] for _ in keeps]
    pieces = row_pieces([int(k.shape[0]) for k in keeps],
                        lambda i, start, stop: keeps[i][start:stop], batch_size)
    stream_scores(adapter, features, pieces, lambda i, s: got[i].append(s),
                  batch_size=batch_size)
    total = sum(int(k.shape[0]) for k in keeps)
    width = next((g[0].shape[1] for g in got if g), 0)
    scores = [torch.cat(g) if g else torch.zeros(0, width) for g in got]
    return scores, math.ceil(total / batch_size)
