"""The FeatureSpace protocol: interpretable features of one example and how to switch them off."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

import torch

if TYPE_CHECKING:
    from ..adapters._base import Batch

__all__ = ["FeatureSpace"]


@runtime_checkable
class FeatureSpace(Protocol):
    """Interpretable features of one example and how to switch them off.

    The "removed" value (zeros, a mean, ``[MASK]``, ``[PAD]``, deletion) is fixed when the space is
    built, so every method and every metric removes features the same way.
    """

    @property
    def n_features(self) -> int: ...

    @property
    def feature_names(self) -> tuple[str, ...]: ...

    def mask(self, keep: torch.Tensor) -> Batch:
        """Model input for each row of ``keep`` (bool, (n_masks, n_features)); False = removed."""
        ...

    def baseline(self) -> Batch:
        """Model input with every feature removed."""
        ...

    def reshape(self, values: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """Map (..., n_features) values back to the input's own shape (grouped tensors, tokens;
        one tensor per input for a model that takes several)."""
        ...


def check_keep(keep: torch.Tensor, n_features: int) -> torch.Tensor:
    """Normalise a keep-mask to bool (n_masks, n_features); internal invariant, not user input."""
    keep = torch.as_tensor(keep, dtype=torch.bool)
    if keep.dim() == 1:
        keep = keep.unsqueeze(0)
    assert keep.shape[1] == n_features, (keep.shape, n_features)
    return keep
