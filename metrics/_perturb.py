"""Shared machinery of the metrics: rows of an explanation, masked scoring, perturbation units.

Every metric perturbs inputs through the explanation's own feature spaces (``exp.features``), so
it plays the game that produced the explanation: the same baseline, mask token or deletion.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

import torch

import xai
from xai.adapters import Batch, ModelAdapter
from xai.exceptions import InvalidExplanationError
from xai.extend import score_masks
from xai.features import TensorFeatures

__all__ = ["Row", "attribution_units", "rows", "safe_div", "score_batches", "score_keeps"]


@dataclasses.dataclass(frozen=True)
class Row:
    """One example of an explanation, padding removed."""

    index: int
    values: torch.Tensor  # (n_outputs, n_features_i)
    targets: torch.Tensor  # (n_outputs,) model output indices
    features: xai.FeatureSpace

    @property
    def n_features(self) -> int:
        return int(self.values.shape[-1])


def rows(exp: xai.Explanation) -> Iterator[Row]:
    """The examples of ``exp`` with their real (non-padding) attributions and feature spaces."""
    if len(exp.features) != len(exp):
        msg = ("This explanation carries no feature spaces (a loaded or hand-built Explanation), "
               "so its inputs cannot be perturbed. Re-explain the inputs with the model.")
        raise InvalidExplanationError(msg)
    for i, fs in enumerate(exp.features):
        valid = exp.valid(i)
        yield Row(i, exp.values[i][:, valid], exp.target.indices[i], fs)


def score_keeps(adapter: ModelAdapter, exp: xai.Explanation, keeps: Sequence[torch.Tensor], *,
                batch_size: int) -> tuple[list[torch.Tensor], int]:
    """Scores of the explained outputs for keep-masks of each example (all in few model calls).

    Returns one (n_masks_i, n_outputs) tensor per example and the number of model calls.
    """
    scores, n_calls = score_masks(adapter, exp.features, keeps, batch_size=batch_size)
    return [s[:, exp.target.indices[i]] for i, s in enumerate(scores)], n_calls


def score_batches(adapter: ModelAdapter, exp: xai.Explanation, batches: Sequence[Batch], *,
                  batch_size: int) -> tuple[list[torch.Tensor], int]:
    """Like :func:`score_keeps` for ready-made perturbed inputs, one Batch per example."""
    pads = {"input_ids": int(getattr(exp.features[0], "pad_id", 0))}
    merged = Batch.concat(list(batches), pad_values=pads)
    out = adapter.predict_batched(merged, batch_size)
    counts = [len(b) for b in batches]
    n_calls = -(-len(merged) // batch_size)
    parts = torch.split(out, counts)
    return [p[:, exp.target.indices[i]] for i, p in enumerate(parts)], n_calls


def safe_div(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """num / den with 0 denominators replaced by 1 (captum's ``safe_div`` convention)."""
    return num / torch.where(den == 0, torch.ones_like(den), den)


def attribution_units(exp: xai.Explanation, fs: xai.FeatureSpace,
                      x_pert: torch.Tensor | None = None,
                      removed: torch.Tensor | None = None) -> torch.Tensor:
    """Perturbations in the units of the attributions, (n_perturbations, n_features).

    Attributions that are multiplied by the input (IG, occlusion, Shapley: they sum to about
    f(x) - f(baseline)) are compared with (x - x_pert) / (x - baseline) (captum's
    ``multiplies_by_inputs`` convention; 0/0 counts as 1); gradient-like attributions with
    x - x_pert. Either ``x_pert`` (perturbed tensors, (n, *x.shape); tensor features only) or
    ``removed`` (bool (n, n_features), True = feature switched off) is given.
    """
    if x_pert is None:
        assert removed is not None
        if exp.multiplies_by_inputs or not isinstance(fs, TensorFeatures):
            return removed.float()
        elem = fs.element_keep(~removed)
        x_pert = torch.where(elem, fs.x.unsqueeze(0), fs.base.unsqueeze(0))
    assert isinstance(fs, TensorFeatures)
    diff = fs.x.unsqueeze(0) - x_pert
    if exp.multiplies_by_inputs:
        frac = safe_div(diff, (fs.x - fs.base).unsqueeze(0).expand_as(diff))
        sizes = fs.aggregate(torch.ones_like(fs.x))
        return fs.aggregate(frac) / sizes.clamp_min(1)
    return fs.aggregate(diff)
