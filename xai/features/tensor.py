"""Features of tensor and tabular inputs: single elements, or groups given by a feature mask."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..adapters._base import Batch
from ._base import check_keep

__all__ = ["TensorFeatures"]


class TensorFeatures:
    """Elements of one input tensor (or groups of them) as features.

    Parameters
    ----------
    x : torch.Tensor
        One example, any shape (no batch dimension).
    baseline : torch.Tensor
        Same shape as ``x``: the value a removed element takes.
    feature_mask : torch.Tensor of int, optional
        Same shape as ``x``; elements with the same id form one feature (ids 0..k-1).
        None makes every element a feature.
    names : sequence of str, optional
        One name per feature; defaults to ``x0, x1, ...``.
    columns : tuple of str, optional
        Column names passed on to the model input (scikit-learn models fitted on DataFrames).
    """

    def __init__(
        self,
        x: torch.Tensor,
        baseline: torch.Tensor,
        *,
        feature_mask: torch.Tensor | None = None,
        names: Sequence[str] | None = None,
        columns: tuple[str, ...] | None = None,
    ) -> None:
        self.x = x
        self.base = baseline.to(x.dtype).expand_as(x)
        flat_ids = (
            torch.arange(x.numel()) if feature_mask is None else feature_mask.reshape(-1).long()
        )
        self._ids = flat_ids
        self._n = int(flat_ids.max().item()) + 1 if flat_ids.numel() else 0
        self._names = tuple(names) if names is not None else tuple(f"x{i}" for i in range(self._n))
        self.columns = columns

    @property
    def n_features(self) -> int:
        return self._n

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self._names

    @property
    def feature_ids(self) -> torch.Tensor:
        """The feature of each element of ``x`` (flattened), ids 0..n_features-1."""
        return self._ids

    def element_keep(self, keep: torch.Tensor) -> torch.Tensor:
        """Feature-level keep (n_masks, n_features) to element-level keep (n_masks, *x.shape)."""
        keep = check_keep(keep, self._n)
        return keep[:, self._ids].reshape(keep.shape[0], *self.x.shape)

    def mask(self, keep: torch.Tensor) -> Batch:
        elem = self.element_keep(keep)
        rows = torch.where(elem, self.x.unsqueeze(0), self.base.unsqueeze(0))
        return Batch({"inputs": rows}, columns=self.columns)

    def baseline(self) -> Batch:
        return Batch({"inputs": self.base.unsqueeze(0).clone()}, columns=self.columns)

    def original(self) -> Batch:
        """The unperturbed example as a one-row batch."""
        return Batch({"inputs": self.x.unsqueeze(0).clone()}, columns=self.columns)

    def reshape(self, values: torch.Tensor) -> torch.Tensor:
        return values[..., self._ids].reshape(*values.shape[:-1], *self.x.shape)

    def aggregate(self, element_values: torch.Tensor) -> torch.Tensor:
        """Sum element-level values (..., *x.shape) into feature-level values (..., n_features)."""
        lead = element_values.shape[: element_values.dim() - self.x.dim()]
        flat = element_values.reshape(*lead, -1)
        out = torch.zeros(*lead, self._n, dtype=flat.dtype)
        return out.index_add_(-1, self._ids, flat)

    def __repr__(self) -> str:
        return f"TensorFeatures(n_features={self._n}, shape={tuple(self.x.shape)})"

