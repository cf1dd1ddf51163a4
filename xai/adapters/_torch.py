"""Adapter for plain ``torch.nn.Module`` models that map a float tensor to scores."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from .._capabilities import OUTPUT_KINDS, Capability, Modality, OutputKind
from .._validation import Options, check_param
from ..exceptions import InvalidParameterError
from ._base import Batch, ModelAdapter
from ._calls import as_scores, describe_call, model_call, resolve_device
from ._tabular import attach_forward_args, prepare_tabular, tabular_features

__all__ = ["TorchModuleAdapter", "as_scores", "check_feature_names", "check_output_kind"]


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
        Where to run the model; None means the device of its parameters. A device that is not
        available (``"cuda"`` on a CPU-only torch) is an InvalidParameterError.
    feature_names : sequence of str, optional
        The names of the model's input columns, in the order the model takes them (tabular only).
        A DataFrame is then aligned by column name (``xai.explain(model, df,
        adapter_options={"feature_names": [...]})``): its columns may come in any order, and a
        missing or unexpected column is an InvalidInputError. Arrays must have this many columns,
        and the names label the features of the explanation.
    output_kind : {"scores", "logits", "probabilities", "log_probabilities"}, default="scores"
        What the module returns. Declaring "logits" or "probabilities" lets
        :meth:`Explanation.probabilities` and the probability metrics (comprehensiveness,
        sufficiency, log-odds) read the scores as class probabilities.
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
        feature_names: Sequence[str] | None = None,
        output_kind: OutputKind = "scores",
    ) -> None:
        self.output_kind = check_output_kind(output_kind, owner=type(self).__name__)
        self._model = module
        self.modality = modality
        self._output_names = tuple(output_names) if output_names is not None else None
        self.feature_names = check_feature_names(feature_names, owner=type(self).__name__,
                                                 modality=modality)
        self.device = resolve_device(device, module, owner=type(self).__name__)
        self.background = None if background is None else prepare_tabular(
            background, model_name=type(module).__name__, exact_2d=False, name="background",
            owner=type(self).__name__, columns=self.feature_names).inputs

    def output_names(self) -> tuple[str, ...] | None:
        return self._output_names

    def prepare(self, inputs: Any) -> Batch:
        return prepare_tabular(inputs, model_name=type(self._model).__name__,
                               exact_2d=self.modality == "tabular", columns=self.feature_names,
                               several=True)

    def forward_tensor(self, *args: Any) -> torch.Tensor:
        """Differentiable forward: ``module(*args)``, the attributed tensors then the other
        forward arguments (captum's convention; used by gradient methods).

        An exception of the module itself propagates unchanged, with a note on the call.
        """
        name = type(self._model).__name__
        moved = [a.to(self.device) if isinstance(a, torch.Tensor) else a for a in args]
        with model_call(name, type(self).__name__, describe_call(moved[0]),
                        hint="If that shape is not what the model takes, check the 'inputs'."):
            out = self._model(*moved)
        scores = as_scores(out, moved[0].shape[0], model=name, adapter=type(self).__name__,
                           noun="module")
        return self.same_outputs(scores, model=name, noun="module")

    def predict(self, inputs: Batch) -> torch.Tensor:
        return self.forward_tensor(*inputs.attributed(), *inputs.call_args())

    def with_forward_args(self, batch: Batch, forward_args: Any) -> Batch:
        return attach_forward_args(batch, forward_args)

    def features(self, batch: Batch, *, granularity: str = "auto", baseline: Any = "auto",
                 owner: str = "explain", groups: Any = None) -> tuple[Any, ...]:
        return tabular_features(batch, baseline=baseline, owner=owner, background=self.background,
                                groups=groups)

    def describe(self) -> dict[str, str]:
        return {"adapter": type(self).__name__, "model": type(self._model).__name__}


def check_output_kind(output_kind: Any, *, owner: str) -> OutputKind:
    """The ``output_kind`` option, checked against :data:`xai.OutputKind`."""
    check_param(owner, "output_kind", output_kind, [Options(set(OUTPUT_KINDS))])
    kind: OutputKind = output_kind
    return kind


def check_feature_names(names: Any, *, owner: str, modality: str = "tabular",
                        ) -> tuple[str, ...] | None:
    """The ``feature_names`` option as a tuple of unique str (None stays None)."""
    if names is None:
        return None
    if hasattr(names, "tolist"):  # a numpy array or a pandas Index
        names = names.tolist()
    if isinstance(names, str) or not isinstance(names, Sequence):
        msg = (f"The 'feature_names' parameter of {owner} must be a sequence of str (one per "
               f"input column). Got {type(names).__name__} instead.")
        raise InvalidParameterError(msg, owner=owner, parameter="feature_names", value=names)
    out = tuple(names)
    if modality != "tabular":
        msg = (f"The 'feature_names' parameter of {owner} names the columns of tabular inputs, "
               f"but the modality is {modality!r}. Drop feature_names or use modality='tabular'.")
        raise InvalidParameterError(msg, owner=owner, parameter="feature_names", value=out)
    bad = [n for n in out if not isinstance(n, str)]
    dup = sorted((n for n, k in Counter(out).items() if k > 1), key=str)
    if bad or dup or not out:
        why = (f"non-str names {bad[:5]}" if bad else f"duplicate names {dup[:5]}" if dup
               else "no names")
        msg = (f"The 'feature_names' parameter of {owner} must hold one unique str per input "
               f"column. Got {why} instead.")
        raise InvalidParameterError(msg, owner=owner, parameter="feature_names", value=out)
    return out
