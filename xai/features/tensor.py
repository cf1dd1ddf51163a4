"""Features of tensor and tabular inputs: single elements, or groups given by a feature mask."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..adapters._base import Batch
from ._base import check_keep

__all__ = ["MultiTensorFeatures", "TensorFeatures"]


class _Numbered:
    """Features numbered 0..n-1 with a name each (the FeatureSpace protocol's two properties)."""

    _n: int
    _names: tuple[str, ...]

    @property
    def n_features(self) -> int:
        return self._n

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self._names


class TensorFeatures(_Numbered):
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
    context : Batch, optional
        The example's forward arguments that are not attributed (one row, see
        :meth:`Batch.context`), added to every masked input.
    """

    def __init__(
        self,
        x: torch.Tensor,
        baseline: torch.Tensor,
        *,
        feature_mask: torch.Tensor | None = None,
        names: Sequence[str] | None = None,
        columns: tuple[str, ...] | None = None,
        context: Batch | None = None,
    ) -> None:
        self.x = x
        self.context = context
        self.base = baseline.to(x.dtype).expand_as(x)
        flat_ids = (
            torch.arange(x.numel()) if feature_mask is None else feature_mask.reshape(-1).long()
        )
        self._ids = flat_ids
        self._n = int(flat_ids.max().item()) + 1 if flat_ids.numel() else 0
        self._names = tuple(names) if names is not None else tuple(f"x{i}" for i in range(self._n))
        self.columns = columns

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
        return Batch({"inputs": rows}, columns=self.columns).with_context(self.context)

    def baseline(self) -> Batch:
        return Batch({"inputs": self.base.unsqueeze(0).clone()},
                     columns=self.columns).with_context(self.context)

    def original(self) -> Batch:
        """The unperturbed example as a one-row batch."""
        return Batch({"inputs": self.x.unsqueeze(0).clone()},
                     columns=self.columns).with_context(self.context)

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



class MultiTensorFeatures(_Numbered):
    """Elements of several input tensors of one example as features (``model(x1, x2, ...)``).

    Features are numbered across the tensors: by default every element is one feature (those
    of the first tensor first); with ``feature_masks`` (one int tensor per input, ids shared
    across inputs, as captum's ``feature_mask``) elements with the same id, in any of the
    tensors, form one feature.

    Parameters
    ----------
    xs : sequence of torch.Tensor
        One example of each input (no batch dimension).
    baselines : sequence of torch.Tensor
        The value a removed element takes, one per input, shaped like it.
    feature_masks : sequence of int torch.Tensor, optional
        Global feature id of each element of each input (ids 0..k-1 over all inputs).
    names : sequence of str, optional
        One name per feature; defaults to ``"<input>:<element>"``.
    context : Batch, optional
        The example's non-attributed forward arguments (see :class:`TensorFeatures`).
    """

    def __init__(self, xs: Sequence[torch.Tensor], baselines: Sequence[torch.Tensor], *,
                 feature_masks: Sequence[torch.Tensor] | None = None,
                 names: Sequence[str] | None = None, context: Batch | None = None) -> None:
        self.xs = tuple(xs)
        self.bases = tuple(b.to(x.dtype).expand_as(x) for x, b in zip(xs, baselines, strict=True))
        if feature_masks is None:
            offsets = [0]
            for x in self.xs:
                offsets.append(offsets[-1] + x.numel())
            self._ids = tuple(torch.arange(x.numel()) + off for x, off in zip(self.xs, offsets,
                                                                             strict=False))
            default = [f"{k}:{j}" for k, x in enumerate(self.xs) for j in range(x.numel())]
        else:
            self._ids = tuple(m.reshape(-1).long() for m in feature_masks)
            default = None
        flat = torch.cat(self._ids) if self._ids else torch.zeros(0, dtype=torch.long)
        self._n = int(flat.max()) + 1 if flat.numel() else 0
        self._names = tuple(names) if names is not None else tuple(
            default if default is not None else (f"group {g}" for g in range(self._n)))
        self.context = context

    @property
    def feature_ids(self) -> tuple[torch.Tensor, ...]:
        """The global feature of each element of each input (flattened)."""
        return self._ids

    def mask(self, keep: torch.Tensor) -> Batch:
        keep = check_keep(keep, self._n)
        tensors = {}
        for k, (x, base, ids) in enumerate(zip(self.xs, self.bases, self._ids, strict=True)):
            elem = keep[:, ids].reshape(keep.shape[0], *x.shape)
            tensors[_key(k)] = torch.where(elem, x.unsqueeze(0), base.unsqueeze(0))
        return Batch(tensors).with_context(self.context)

    def baseline(self) -> Batch:
        return self.mask(torch.zeros(1, self._n, dtype=torch.bool))

    def original(self) -> Batch:
        """The unperturbed example as a one-row batch."""
        return self.mask(torch.ones(1, self._n, dtype=torch.bool))

    def reshape(self, values: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Feature values (..., n_features) spread onto each input's elements."""
        return tuple(values[..., ids].reshape(*values.shape[:-1], *x.shape)
                     for x, ids in zip(self.xs, self._ids, strict=True))

    def aggregate(self, element_values: Sequence[torch.Tensor]) -> torch.Tensor:
        """Sum element-level values (one (..., *x_k.shape) tensor per input) per feature."""
        total: torch.Tensor | None = None
        for x, ids, v in zip(self.xs, self._ids, element_values, strict=True):
            lead = v.shape[: v.dim() - x.dim()]
            flat = v.reshape(*lead, -1)
            part = torch.zeros(*lead, self._n, dtype=flat.dtype).index_add_(-1, ids, flat)
            total = part if total is None else total + part
        assert total is not None  # at least one input
        return total

    def __repr__(self) -> str:
        shapes = ", ".join(str(tuple(x.shape)) for x in self.xs)
        return f"MultiTensorFeatures(n_features={self._n}, shapes=[{shapes}])"


def _key(k: int) -> str:
    return "inputs" if k == 0 else f"inputs_{k}"
