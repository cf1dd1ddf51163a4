"""Adapter for plain ``torch.nn.Module`` models that map a float tensor to scores."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from .._capabilities import Capability, Modality
from ..exceptions import InvalidInputError
from ._base import Batch, ModelAdapter
from ._tabular import prepare_tabular, tabular_features

__all__ = ["TorchModuleAdapter", "as_scores"]


def as_scores(out: Any, n: int) -> torch.Tensor:
    """Model output (tensor, array, HF output object) as float32 (n, n_outputs)."""
    if hasattr(out, "logits"):
        out = out.logits
    t = out if isinstance(out, torch.Tensor) else torch.as_tensor(out)
    t = t.float()
    if t.dim() == 0:
        t = t.reshape(1, 1)
    if t.dim() == 1:
        t = t.reshape(n, -1) if t.shape[0] == n else t.reshape(1, -1)
    return t.reshape(t.shape[0], -1)


class TorchModuleAdapter(ModelAdapter):
    """A ``torch.nn.Module`` that maps a float tensor ``(n, *shape)`` to scores ``(n, n_outputs)``.

    Parameters
    ----------
    module : torch.nn.Module
    modality : {"tabular", "image"}, default="tabular"
    output_names : sequence of str, optional
        Class labels; when given, ``target=None`` explains the predicted class.
    background : array-like, optional
        Training data; its mean is the ``baseline="mean"`` of tensor features.
    device : torch.device or str, optional
        Where to run the model; None means the device of its parameters.
    """

    capabilities: ClassVar[Capability] = Capability.FORWARD | Capability.GRADIENTS

    def __init__(
        self,
        module: torch.nn.Module,
        *,
        modality: Modality = "tabular",
        output_names: Sequence[str] | None = None,
        background: Any = None,
        device: torch.device | str | None = None,
    ) -> None:
        self._model = module
        self.modality = modality
        self._output_names = tuple(output_names) if output_names is not None else None
        self.background = None if background is None else prepare_tabular(
            background, model_name="background", exact_2d=False).inputs
        params = list(module.parameters())
        self.device = torch.device(device) if device is not None else (
            params[0].device if params else torch.device("cpu"))

    def output_names(self) -> tuple[str, ...] | None:
        return self._output_names

    def prepare(self, inputs: Any) -> Batch:
        return prepare_tabular(inputs, model_name=type(self._model).__name__,
                               exact_2d=self.modality == "tabular")

    def forward_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """Differentiable forward on a float tensor (used by gradient methods)."""
        out = self._model(x.to(self.device))
        return as_scores(out, x.shape[0])

    def predict(self, inputs: Batch) -> torch.Tensor:
        x = inputs.inputs
        try:
            return self.forward_tensor(x)
        except RuntimeError as err:
            msg = (f"{type(self._model).__name__} failed on inputs of shape {tuple(x.shape)}: "
                   f"{err}. Check the number of features the model expects.")
            raise InvalidInputError(msg, value=tuple(x.shape)) from err

    def features(self, batch: Batch, *, granularity: str = "auto", baseline: Any = "auto",
                 owner: str = "explain") -> tuple[Any, ...]:
        return tabular_features(batch, baseline=baseline, owner=owner, background=self.background)

    def describe(self) -> dict[str, str]:
        return {"adapter": type(self).__name__, "model": type(self._model).__name__,
                "modality": self.modality, "output": "model output (as returned by forward)"}
