"""Scoring many masked copies of many examples in as few model calls as ``batch_size`` allows."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ..adapters._base import Batch, ModelAdapter
from ..features._base import FeatureSpace

__all__ = ["score_masks"]


def _pad_values(features: Sequence[FeatureSpace]) -> dict[str, int]:
    pad = getattr(features[0], "pad_id", 0)
    return {"input_ids": int(pad)}


def score_masks(
    adapter: ModelAdapter,
    features: Sequence[FeatureSpace],
    keeps: Sequence[torch.Tensor],
    *,
    batch_size: int,
) -> tuple[list[torch.Tensor], int]:
    """Model scores for every keep-mask of every example.

    Parameters
    ----------
    features : one FeatureSpace per example
    keeps : one bool tensor (n_masks_i, n_features_i) per example

    Returns
    -------
    scores : list of tensors (n_masks_i, n_model_outputs), one per example
    n_calls : number of model calls made (ceil(total masks / batch_size))
    """
    counts = [int(k.shape[0]) for k in keeps]
    total = sum(counts)
    pads = _pad_values(features)
    outs: list[torch.Tensor] = []
    pending: list[Batch] = []
    n_pending = 0
    with torch.no_grad():
        for fs, keep in zip(features, keeps, strict=True):
            for start in range(0, keep.shape[0], batch_size):
                part = fs.mask(keep[start:start + batch_size])
                pending.append(part)
                n_pending += len(part)
                while n_pending >= batch_size:
                    merged = Batch.concat(pending, pad_values=pads)
                    outs.append(adapter.predict(merged.take(slice(0, batch_size))).float().cpu())
                    rest = merged.take(slice(batch_size, None))
                    pending, n_pending = ([rest], len(rest)) if len(rest) else ([], 0)
        if n_pending:
            outs.append(adapter.predict(Batch.concat(pending, pad_values=pads)).float().cpu())
    scores = torch.cat(outs, dim=0)
    return list(torch.split(scores, counts)), math.ceil(total / batch_size)
