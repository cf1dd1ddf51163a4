"""Adapter for any callable ``fn(x) -> scores``; also the simplest test double."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from .._capabilities import Capability, Modality, OutputKind
from ..exceptions import InvalidParameterError
from ._base import Batch, ModelAdapter
from ._calls import as_scores, describe_call, model_call
from ._tabular import attach_forward_args, prepare_tabular, tabular_features
from ._torch import check_feature_names, check_output_kind

__all__ = ["CallableAdapter"]


class CallableAdapter(ModelAdapter):
    """A plain function from a numeric batch to scores.

    Parameters
    ----------
    fn : callable
        Called with a float64 numpy array of shape (n, n_features) (bool or integer inputs keep
        their dtype; a float32 tensor when ``accepts="tensor"``), or with one array per input
        and then the ``forward_args`` when several are explained (``fn(x1, x2, *args)``);
        returns an array-like of shape (n,) or (n, n_outputs).
    modality : {"tabular", "image"}, default="tabular"
    output_names : sequence of str, optional
    n_features : int, optional
        Checked against the inputs when given.
    accepts : {"numpy", "tensor"}, default="numpy"
    background : array-like, optional
    feature_names : sequence of str, optional
        The names of the function's input columns, in the order it takes them (tabular only).
        A DataFrame is then aligned by column name (``xai.explain(fn, df,
        adapter_options={"feature_names": [...]})``): its columns may come in any order, and a
        missing or unexpected column is an InvalidInputError. Implies ``n_features``.
    output_kind : {"scores", "logits", "probabilities", "log_probabilities"}, default="scores"
        What the function returns (see :class:`TorchModuleAdapter`).
    """

    capabilities: ClassVar[Capability] = Capability.FORWARD

    def __init__(
        self,
        fn: Callable[[Any], Any],
        *,
        modality: Modality = "tabular",
        output_names: Sequence[str] | None = None,
        n_features: int | None = None,
        accepts: str = "numpy",
        background: Any = None,
        feature_names: Sequence[str] | None = None,
        output_kind: OutputKind = "scores",
    ) -> None:
        self.output_kind = check_output_kind(output_kind, owner="CallableAdapter")
        self._model = fn
        self.modality = modality
        self._output_names = tuple(output_names) if output_names is not None else None
        self.feature_names = check_feature_names(feature_names, owner="CallableAdapter",
                                                 modality=modality)
        if self.feature_names is not None and n_features not in (None, len(self.feature_names)):
            msg = (f"The 'n_features' parameter of CallableAdapter is {n_features}, but "
                   f"'feature_names' has {len(self.feature_names)} names. Pass only feature_names.")
            raise InvalidParameterError(msg, owner="CallableAdapter", parameter="n_features",
                                        value=n_features)
        self.n_features = n_features
        self.accepts = accepts
        self.background = None if background is None else prepare_tabular(
            background, model_name=_name(fn), name="background", owner="CallableAdapter",
            columns=self.feature_names).inputs
        self.n_calls = 0

    def output_names(self) -> tuple[str, ...] | None:
        return self._output_names

    def prepare(self, inputs: Any) -> Batch:
        return prepare_tabular(inputs, model_name=_name(self._model), n_features=self.n_features,
                               exact_2d=self.modality == "tabular", columns=self.feature_names,
                               several=True)

    def predict(self, inputs: Batch) -> torch.Tensor:
        x = inputs.inputs
        args = [*(self._convert(t) for t in inputs.attributed()),
                *(self._convert(a) if isinstance(a, torch.Tensor) else a
                  for a in inputs.call_args())]
        self.n_calls += 1
        with model_call(_name(self._model), "CallableAdapter", describe_call(args[0])):
            out = self._model(*args)
        scores = as_scores(out, x.shape[0], model=_name(self._model), adapter="CallableAdapter",
                           noun="function")
        return self.same_outputs(scores, model=_name(self._model), noun="function")

    def _convert(self, t: torch.Tensor) -> Any:
        """A tensor as the function takes it: itself, or a numpy array (float64 for floats;
        bool and integer arrays keep their dtype)."""
        if self.accepts == "tensor":
            return t
        return t.numpy().astype(np.float64) if t.is_floating_point() else t.numpy()

    def with_forward_args(self, batch: Batch, forward_args: Any) -> Batch:
        return attach_forward_args(batch, forward_args)

    def features(self, batch: Batch, *, granularity: str = "auto", baseline: Any = "auto",
                 owner: str = "explain", groups: Any = None) -> tuple[Any, ...]:
        return tabular_features(batch, baseline=baseline, owner=owner, background=self.background,
                                groups=groups)

    def describe(self) -> dict[str, str]:
        return {"adapter": "CallableAdapter", "model": _name(self._model)}

    def __repr__(self) -> str:
        return f"CallableAdapter({_name(self._model)})"


def _name(fn: Any) -> str:
    return getattr(fn, "__name__", type(fn).__name__)
