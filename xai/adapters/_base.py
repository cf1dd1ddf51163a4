"""The model adapter contract and the normalised input batch."""

from __future__ import annotations

import contextlib
import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from .._capabilities import Capability, Modality, OutputKind
from ..exceptions import InvalidInputError, InvalidParameterError

if TYPE_CHECKING:
    from ..features._base import FeatureSpace

__all__ = ["Batch", "ModelAdapter"]


@dataclasses.dataclass(frozen=True, eq=False)
class Batch:
    """Model input for ``n`` examples, validated once by :meth:`ModelAdapter.prepare`.

    Attributes
    ----------
    tensors : Mapping[str, torch.Tensor]
        Every tensor has ``n`` rows. Tabular/tensor models use ``"inputs"``; text models use
        ``"input_ids"`` and ``"attention_mask"`` (plus ``"token_type_ids"``, ``"offset_mapping"``
        and ``"special_tokens_mask"`` where the tokenizer provides them).
    texts : tuple of str or None
        The raw texts, for text models.
    columns : tuple of str or None
        Feature (column) names of tabular inputs.
    static_args : tuple of (int, object)
        Forward arguments without a batch dimension, by position among the forward arguments
        (the others are the ``"args_<position>"`` tensors); passed to every call unchanged.
    graphs : tuple of GraphRow or None
        Graph models: the graph each row runs on (``xai.features.GraphRow``: its nodes, edges
        and which of them the row's ``"inputs"`` switch on and off), aligned with the rows
        like ``texts``. Rows of different graphs have their ``"inputs"`` right-padded.

    Notes
    -----
    A model that takes several tensors has them as ``"inputs"``, ``"inputs_1"``,
    ``"inputs_2"``, ...; it is called as ``model(*attributed(), *call_args())``.
    """

    tensors: Mapping[str, torch.Tensor]
    texts: tuple[str, ...] | None = None
    columns: tuple[str, ...] | None = None
    static_args: tuple[tuple[int, Any], ...] = ()
    graphs: tuple[Any, ...] | None = None

    def __len__(self) -> int:
        return int(next(iter(self.tensors.values())).shape[0])

    @property
    def inputs(self) -> torch.Tensor:
        """The ``"inputs"`` tensor of a tabular/tensor batch (the first attributed tensor)."""
        return self.tensors["inputs"]

    def input_keys(self) -> tuple[str, ...]:
        """Keys of the attributed tensors, in the model's argument order."""
        keys = ["inputs"] if "inputs" in self.tensors else []
        k = 1
        while f"inputs_{k}" in self.tensors:
            keys.append(f"inputs_{k}")
            k += 1
        return tuple(keys)

    def attributed(self) -> tuple[torch.Tensor, ...]:
        """The attributed tensors, in the model's argument order."""
        return tuple(self.tensors[k] for k in self.input_keys())

    def n_forward_args(self) -> int:
        positions = [int(k[len("args_"):]) for k in self.tensors if k.startswith("args_")]
        return max([*positions, *(j for j, _ in self.static_args)], default=-1) + 1

    def call_args(self) -> tuple[Any, ...]:
        """The non-attributed forward arguments, in order (row tensors and static values)."""
        static = dict(self.static_args)
        return tuple(self.tensors[f"args_{j}"] if f"args_{j}" in self.tensors else static[j]
                     for j in range(self.n_forward_args()))

    def context(self, index: int) -> Batch | None:
        """Row ``index``'s forward arguments (one-row tensors and the static ones) and graph;
        None when the model takes none."""
        rows = {k: v[index:index + 1] for k, v in self.tensors.items() if k.startswith("args_")}
        graphs = None if self.graphs is None else (self.graphs[index],)
        if not rows and not self.static_args and graphs is None:
            return None
        return Batch(rows, static_args=self.static_args, graphs=graphs)

    def with_context(self, context: Batch | None) -> Batch:
        """This batch plus ``context``'s forward arguments, their one row repeated per row."""
        if context is None:
            return self
        n = len(self)
        tensors = dict(self.tensors)
        tensors.update({k: v.expand(n, *v.shape[1:]) for k, v in context.tensors.items()})
        graphs = None if context.graphs is None else context.graphs * n
        return dataclasses.replace(self, tensors=tensors, static_args=context.static_args,
                                   graphs=graphs)

    def take(self, index: int | slice | Sequence[int] | torch.Tensor) -> Batch:
        """The rows ``index`` as a new Batch (an int keeps the row dimension)."""
        if isinstance(index, int):
            index = [index]
        if isinstance(index, slice):
            rows = list(range(len(self)))[index]
        else:
            rows = [int(i) for i in index]
        idx = torch.as_tensor(rows, dtype=torch.long)
        tensors = {k: v.index_select(0, idx) for k, v in self.tensors.items()}
        texts = None if self.texts is None else tuple(self.texts[i] for i in rows)
        graphs = None if self.graphs is None else tuple(self.graphs[i] for i in rows)
        return Batch(tensors, texts=texts, columns=self.columns, static_args=self.static_args,
                     graphs=graphs)

    @staticmethod
    def concat(batches: Sequence[Batch], *, pad_values: Mapping[str, int] | None = None) -> Batch:
        """Stack batches row-wise; text tensors (and graph inputs) of different lengths are
        right-padded."""
        pad_values = pad_values or {}
        first = batches[0]
        tensors: dict[str, torch.Tensor] = {}
        for key in first.tensors:
            parts = [b.tensors[key] for b in batches]
            if parts[0].dim() >= 2 and len({p.shape[1] for p in parts}) > 1:
                width = max(p.shape[1] for p in parts)
                pad = pad_values.get(key, 0)
                parts = [_pad_right(p, width, pad) for p in parts]
            tensors[key] = torch.cat(parts, dim=0)
        texts = None if first.texts is None else tuple(t for b in batches for t in (b.texts or ()))
        graphs = (None if first.graphs is None else
                  tuple(g for b in batches for g in (b.graphs or ())))
        return Batch(tensors, texts=texts, columns=first.columns, static_args=first.static_args,
                     graphs=graphs)


def _pad_right(t: torch.Tensor, width: int, value: int) -> torch.Tensor:
    if t.shape[1] == width:
        return t
    shape = (t.shape[0], width - t.shape[1], *t.shape[2:])
    return torch.cat([t, torch.full(shape, value, dtype=t.dtype)], dim=1)


class ModelAdapter(ABC):
    """How to run one kind of model: the only place that knows the model's calling convention.

    Subclasses implement :meth:`predict` and :meth:`prepare`; optional abilities are declared in
    ``capabilities`` and implemented by the matching methods (``embedding_layer`` for EMBEDDINGS).
    """

    capabilities: ClassVar[Capability] = Capability.FORWARD
    modality: Modality = "tabular"
    #: What :meth:`predict` returns (see :data:`xai.OutputKind`); recorded on every Explanation.
    output_kind: OutputKind = "scores"
    #: Adapter options that :func:`xai.explain` also takes as keyword arguments (a graph
    #: model's ``explain="nodes"``, ``index=``); applied with :meth:`configure`.
    call_options: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def predict(self, inputs: Batch) -> torch.Tensor:
        """Scores of shape (n_examples, n_outputs), float32: logits, probabilities or outputs."""

    @abstractmethod
    def prepare(self, inputs: Any) -> Batch:
        """Validate and normalise raw inputs once; raise InvalidInputError on bad input."""

    @abstractmethod
    def features(
        self, batch: Batch, *, granularity: str = "auto", baseline: Any = "auto",
        groups: Any = None,
    ) -> tuple[FeatureSpace, ...]:
        """One FeatureSpace per example: what a feature is and how it is removed, and which
        features are switched on and off together (``groups``, a method's ``feature_groups``)."""

    def output_names(self) -> tuple[str, ...] | None:
        """Class labels (or output names) when the model has them."""
        return None

    def with_forward_args(self, batch: Batch, forward_args: Any) -> Batch:
        """``batch`` plus the model's non-attributed arguments (``xai.explain(...,
        forward_args=...)``); adapters that call a torch module or a function support them."""
        msg = (f"'forward_args' are passed to a torch module or a function after the explained "
               f"inputs, but {self!r} calls its model itself. Drop forward_args, or wrap the "
               "model in a function that takes the inputs and adds them.")
        raise InvalidParameterError(msg, owner="explain", parameter="forward_args",
                                    value=type(forward_args).__name__)

    def configure(self, **options: Any) -> ModelAdapter:
        """A copy of this adapter with ``options`` (names from :attr:`call_options`) changed."""
        msg = f"{type(self).__name__} takes no per-call options; got {sorted(options)}."
        raise InvalidParameterError(msg, owner="explain", parameter=sorted(options)[0])

    def path_forward(self, batch: Batch, n_inputs: int
                     ) -> tuple[Callable[..., torch.Tensor], tuple[torch.Tensor, ...]]:
        """The differentiable view of the model that gradient methods (captum) integrate:
        ``forward(*inputs, *row_args)``, with ``row_args`` the tensors that travel with each
        row (captum repeats them along the path).

        The default serves adapters with ``forward_tensor``: ``row_args`` are the forward
        arguments with a row per example, and the static ones are put back in place inside, so
        captum never tries to repeat them.
        """
        static = dict(batch.static_args)
        positions = range(batch.n_forward_args())
        row_args = tuple(batch.tensors[f"args_{j}"] for j in positions if j not in static)
        forward_tensor = getattr(self, "forward_tensor")  # noqa: B009  # GRADIENTS adapters

        def forward(*tensors: Any) -> torch.Tensor:
            rows = iter(tensors[n_inputs:])
            args = [static[j] if j in static else next(rows) for j in positions]
            return forward_tensor(*tensors[:n_inputs], *args)  # type: ignore[no-any-return]

        return forward, row_args

    def is_classifier(self) -> bool:
        """Whether ``target=None`` means the predicted class."""
        return self.output_names() is not None

    def describe(self) -> dict[str, str]:
        """Adapter and model identity plus resolved options, recorded in ``Explanation.model_info``
        (the modality and ``output_kind`` are recorded from the attributes, not from here)."""
        return {"adapter": type(self).__name__, "model": type(self.model).__name__}

    def same_outputs(self, scores: torch.Tensor, *, model: str, noun: str = "model"
                     ) -> torch.Tensor:
        """``scores`` (n, n_outputs) after checking that the model returned as many outputs as on
        its first call through this adapter (a model whose width depends on the batch would
        otherwise fail later as an IndexError, or explain the wrong output)."""
        width = int(scores.shape[1])
        first = getattr(self, "_n_outputs", None)
        if first is None:
            self._n_outputs = width
        elif width != first:
            msg = (f"{model} returned {width} output column(s) for a batch of "
                   f"{scores.shape[0]} rows, but {first} on earlier calls. The {noun} must "
                   "return the same outputs, shape (n_rows, n_outputs), for every batch.")
            raise InvalidInputError(msg, parameter="model output", value=tuple(scores.shape))
        return scores

    @property
    def model(self) -> Any:
        """The wrapped model object."""
        return getattr(self, "_model", None)

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """Eval mode for the duration; the model's training flags are restored on exit."""
        module = self.model if isinstance(self.model, torch.nn.Module) else None
        if module is None:
            yield
            return
        flags = [(m, m.training) for m in module.modules()]
        module.eval()
        try:
            yield
        finally:
            for m, flag in flags:
                m.training = flag

    def predict_batched(self, inputs: Batch, batch_size: int) -> torch.Tensor:
        """``predict`` in chunks of ``batch_size`` rows, without gradients."""
        outs = []
        with torch.no_grad():
            for start in range(0, len(inputs), batch_size):
                rows = inputs.take(slice(start, start + batch_size))
                outs.append(self.predict(rows).detach().float().cpu())
        return torch.cat(outs, dim=0)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({_short_repr(self.model)})"


def _short_repr(model: Any) -> str:
    text = repr(model)
    if "\n" in text or len(text) > 60:
        return f"{type(model).__name__}(...)"
    return text


def options_repr(options: Mapping[str, Any]) -> str:
    """``k=v`` pairs for describe()."""
    return ", ".join(f"{k}={v}" for k, v in options.items())
