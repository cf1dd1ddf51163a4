"""The result of every method: attributions plus everything needed to plot, save and evaluate."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from ._capabilities import Modality
from ._explanation_io import FORMAT_VERSION, load_explanation, save_explanation
from ._records import ModelInfo, ResolvedTarget, as_probabilities
from ._validation import Interval, Options, check_param
from .exceptions import InvalidExplanationError, InvalidParameterError
from .features.tensor import MultiTensorFeatures, TensorFeatures

if TYPE_CHECKING:
    from .adapters._base import Batch
    from .features._base import FeatureSpace

__all__ = ["FORMAT_VERSION", "Explanation", "ModelInfo", "ResolvedTarget", "as_probabilities"]


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class Explanation:
    """Attributions for a batch of examples, with everything needed to plot, save and evaluate them.

    Every fact has one owner: feature names and texts are read from ``features``, the modality
    and the kind of scores from ``model_info``.

    Attributes
    ----------
    values : torch.Tensor of shape (n_examples, n_outputs, n_features)
        Attribution of each feature to each explained output. float32, on CPU. Padding (see
        ``feature_mask``) holds 0.
    target : ResolvedTarget
        Explained output indices (n_examples, n_outputs), output names and the model's scores.
    method : str
        Registry name of the method that produced this.
    params : Mapping[str, Any]
        The method's resolved parameters; ``METHODS.get(method)(**params)`` reproduces it.
    features : tuple of FeatureSpace, length n_examples
        The interpretable features of each example; metrics perturb through these. A
        hand-built explanation passes :class:`~xai.features.NamedFeatures`.
    feature_mask : torch.Tensor of shape (n_examples, n_features) or None
        False marks padding when examples have different numbers of features (text).
    inputs : Batch or None
        The explained inputs as normalised by the adapter.
    predictions : torch.Tensor of shape (n_examples, n_outputs) or None
        Model scores at the inputs for the explained outputs.
    base_values : torch.Tensor of shape (n_examples, n_outputs) or None
        Model scores with every feature removed, when the method defines one.
    extras : Mapping[str, Any]
        Diagnostics, e.g. "convergence_delta", "stderr", "n_model_calls".
    model_info : ModelInfo
        Adapter and model class, modality, output kind and adapter details.
    multiplies_by_inputs : bool
        The method's :attr:`~xai.methods.Method.multiplies_by_inputs`: True when values sum to
        about f(x) - f(baseline) (IG, occlusion, Shapley); metrics use it to compare
        attributions with perturbations on the right scale.
    """

    values: torch.Tensor
    target: ResolvedTarget
    method: str
    params: Mapping[str, Any]
    features: tuple[FeatureSpace, ...]
    feature_mask: torch.Tensor | None = None
    inputs: Batch | None = None
    predictions: torch.Tensor | None = None
    base_values: torch.Tensor | None = None
    extras: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    model_info: ModelInfo = dataclasses.field(default_factory=ModelInfo)
    multiplies_by_inputs: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.model_info, ModelInfo):
            if not isinstance(self.model_info, Mapping):
                msg = ("Explanation.model_info must be a ModelInfo (or a mapping of its fields); "
                       f"got {type(self.model_info).__name__}.")
                raise InvalidExplanationError(msg)
            object.__setattr__(self, "model_info", ModelInfo.from_mapping(self.model_info))
        object.__setattr__(self, "features", tuple(self.features))
        v = self.values
        if v.dim() != 3:
            msg = f"Explanation.values must have shape (n_examples, n_outputs, n_features); got {tuple(v.shape)}."
            raise InvalidExplanationError(msg)
        n, o, f = v.shape
        checks = {
            "target.indices": (self.target.indices, (n, o)),
            "feature_mask": (self.feature_mask, (n, f)),
            "predictions": (self.predictions, (n, o)),
            "base_values": (self.base_values, (n, o)),
        }
        for name, (t, shape) in checks.items():
            if t is not None and tuple(t.shape) != shape:
                msg = (f"Explanation.{name} has shape {tuple(t.shape)}, but values of shape "
                       f"{tuple(v.shape)} need {shape}.")
                raise InvalidExplanationError(msg)
        if len(self.features) != n:
            msg = (f"Explanation has {n} examples but {len(self.features)} feature spaces; pass "
                   "one per example (xai.features.NamedFeatures(names) for a hand-built one).")
            raise InvalidExplanationError(msg)
        widths = [f] * n if self.feature_mask is None else \
            [int(m.sum()) for m in self.feature_mask]
        for i, (fs, width) in enumerate(zip(self.features, widths, strict=True)):
            if fs.n_features != width:
                msg = (f"Explanation.features[{i}] has {fs.n_features} features, but example {i} "
                       f"has {width} values (the width of values, less its padding).")
                raise InvalidExplanationError(msg)

    # -- shape ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.values.shape[0])

    @property
    def n_outputs(self) -> int:
        return int(self.values.shape[1])

    @property
    def n_features(self) -> int:
        """Width of ``values`` (the largest number of features when examples differ)."""
        return int(self.values.shape[2])

    @property
    def feature_names(self) -> list[tuple[str, ...]]:
        """Feature names per example (from ``features``): column names, or tokens/words."""
        return [fs.feature_names for fs in self.features]

    @property
    def names(self) -> tuple[tuple[str, ...], ...]:
        """Feature names per example, as a tuple (same as :attr:`feature_names`)."""
        return tuple(fs.feature_names for fs in self.features)

    @property
    def texts(self) -> tuple[str, ...] | None:
        """The explained text of each example (from ``features``); None for non-text inputs."""
        texts = [getattr(fs, "text", None) for fs in self.features]
        if not texts or not all(isinstance(t, str) for t in texts):
            return None
        return tuple(texts)  # type: ignore[arg-type]  # every item is a str (checked above)

    @property
    def modality(self) -> Modality:
        """The model's modality (from ``model_info``)."""
        return self.model_info.modality

    @property
    def multiply_by_inputs(self) -> bool:
        """Same as :attr:`multiplies_by_inputs` (its earlier name, kept as an alias)."""
        return self.multiplies_by_inputs

    def values_for(self, input: int = 0) -> torch.Tensor:  # noqa: A002  # captum's word
        """The attributions of input tensor ``input``, shaped like it: (n_examples, n_outputs,
        *input_shape) (a model that takes several tensors has their features side by side in
        ``values``). Each element gets the value of its feature, so a group's value appears on
        every element of the group (captum's convention for ``feature_mask``).

        Raises
        ------
        InvalidExplanationError
            The features are not elements of tensors (text, names only).
        IndexError
            ``input`` is not the position of an explained input.
        """
        kinds = {type(fs).__name__ for fs in self.features}
        if not all(isinstance(fs, TensorFeatures | MultiTensorFeatures) for fs in self.features):
            msg = (f"values_for() maps values back onto input tensors, but this explanation's "
                   f"features are {', '.join(sorted(kinds))}. Use values and feature_names.")
            raise InvalidExplanationError(msg)
        n_inputs = len(self.features[0].xs) if isinstance(
            self.features[0], MultiTensorFeatures) else 1
        if isinstance(input, bool) or not isinstance(input, int | np.integer) or not \
                -n_inputs <= int(input) < n_inputs:
            msg = (f"Input {input!r} is out of range: the model takes {n_inputs} input "
                   f"tensor(s). Pass a position in 0..{n_inputs - 1}.")
            raise IndexError(msg)
        k = int(input) % n_inputs
        parts: list[torch.Tensor] = []
        for i, fs in enumerate(self.features):
            v = self.values[i][:, : fs.n_features]
            if isinstance(fs, MultiTensorFeatures):
                parts.append(fs.reshape(v)[k])
            elif isinstance(fs, TensorFeatures):
                parts.append(fs.reshape(v))
        return torch.stack(parts)

    def valid(self, index: int) -> torch.Tensor:
        """Bool mask of real (non-padding) features of example ``index``."""
        if self.feature_mask is None:
            return torch.ones(self.n_features, dtype=torch.bool)
        return self.feature_mask[index]

    def __getitem__(self, index: int | slice | Sequence[int]) -> Explanation:
        rows = _rows(index, len(self))
        idx = torch.as_tensor(rows, dtype=torch.long)

        def sel(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.index_select(0, idx)

        width = self.n_features
        if self.feature_mask is not None:
            width = max((int(self.feature_mask[r].sum()) for r in rows), default=0)
        mask = sel(self.feature_mask)
        return dataclasses.replace(
            self, values=self.values.index_select(0, idx)[..., :width],
            feature_mask=None if mask is None else mask[:, :width],
            target=self.target.take(rows), predictions=sel(self.predictions),
            base_values=sel(self.base_values), features=tuple(self.features[r] for r in rows),
            inputs=None if self.inputs is None else self.inputs.take(rows),
            extras={k: _take_extra(v, idx, len(self), width, self.n_features)
                    for k, v in self.extras.items()},
        )

    def for_output(self, output: int | str) -> Explanation:
        """Keep one output column (by position, or by name when all examples share it)."""
        col = self._output_column(output)
        sl = slice(col, col + 1)
        n, o = len(self), self.n_outputs
        return dataclasses.replace(
            self, values=self.values[:, sl],
            target=ResolvedTarget(self.target.indices[:, sl],
                                  tuple((nm[col],) for nm in self.target.names),
                                  self.target.scores),
            predictions=None if self.predictions is None else self.predictions[:, sl],
            base_values=None if self.base_values is None else self.base_values[:, sl],
            extras={k: v[:, sl] if isinstance(v, torch.Tensor) and tuple(v.shape[:2]) == (n, o)
                    else v for k, v in self.extras.items()})

    def _output_column(self, output: Any) -> int:
        """The column of ``output``: a position (negative counts from the end) or a name."""
        o = self.n_outputs
        shared = [c for c in range(o) if all(nm[c] == self.target.names[0][c]
                                             for nm in self.target.names)] if len(self) else []
        names = ", ".join(repr(self.target.names[0][c]) for c in shared) or "none"
        if isinstance(output, str):
            for col in shared:
                if self.target.names[0][col] == output:
                    return col
            msg = (f"Output {output!r} is not explained in every example of this Explanation. "
                   f"Outputs explained in every example: {names}. Pass one of them, or a "
                   f"position in 0-{o - 1}.")
            raise InvalidExplanationError(msg)
        if isinstance(output, bool) or not isinstance(output, int | np.integer):
            msg = (f"The 'output' parameter of Explanation.for_output must be an int position "
                   f"or an output name (str). Got {output!r} ({type(output).__name__}) instead.")
            raise InvalidParameterError(msg, owner="Explanation.for_output", parameter="output",
                                        value=output)
        if not -o <= output < o:
            msg = (f"Output {output} is out of range for an Explanation of {o} outputs. Pass a "
                   f"position in {-o}..{o - 1}, or an output name: {names}.")
            raise IndexError(msg)
        return int(output) % o

    def probabilities(self) -> torch.Tensor | None:
        """Probability of each explained output, (n_examples, n_outputs), when it is known.

        Read by ``model_info.output_kind``: the softmax of logits (transformers classifiers),
        the scores themselves for probabilities (``predict_proba``), the exponential of
        log-probabilities; None for other scores (or after loading a file of format version 1,
        which did not save the scores).
        """
        scores = self.target.scores
        if scores is None:
            return None
        probs = as_probabilities(scores, self.model_info.output_kind)
        return None if probs is None else probs.gather(1, self.target.indices)

    # -- transforms -----------------------------------------------------------------------
    def top_k(self, k: int, *, by: Literal["value", "abs"] = "abs") -> torch.Tensor:
        """Indices of the k largest attributions, (n_examples, n_outputs, k); padding never wins.

        ``k`` (at least 1) is capped by the number of real features of the shortest example.
        ``by="abs"`` ranks by magnitude, ``by="value"`` by signed value.
        """
        check_param("Explanation.top_k", "k", k, [Interval(int, 1, None, closed="left")])
        check_param("Explanation.top_k", "by", by, [Options({"value", "abs"})])
        score = self.values.abs() if by == "abs" else self.values.clone()
        k = min(int(k), self.n_features)
        if self.feature_mask is not None:
            score = score.masked_fill(~self.feature_mask[:, None, :], float("-inf"))
            k = min(k, int(self.feature_mask.sum(-1).min()))
        return score.topk(k, dim=-1).indices

    def normalize(self, how: Literal["l1", "max_abs"] = "max_abs") -> Explanation:
        """A new Explanation with values scaled per (example, output); zeros stay zeros.

        ``how="l1"`` divides by the sum of absolute values, ``"max_abs"`` by the largest one.
        """
        check_param("Explanation.normalize", "how", how, [Options({"l1", "max_abs"})])
        denom = self.values.abs().sum(-1, keepdim=True) if how == "l1" else \
            self.values.abs().amax(-1, keepdim=True)
        return dataclasses.replace(self, values=self.values / denom.clamp_min(1e-12))

    def to_numpy(self) -> dict[str, np.ndarray]:
        """values, target, predictions, base_values and feature_mask as numpy arrays."""
        out = {"values": self.values.numpy(), "target": self.target.indices.numpy()}
        for key in ("predictions", "base_values", "feature_mask"):
            t = getattr(self, key)
            if t is not None:
                out[key] = t.numpy()
        return out

    def to_pandas(self) -> Any:
        """Tidy table: one row per (example, output, feature) with its value and rank."""
        import pandas as pd

        rows = []
        for i in range(len(self)):
            valid = self.valid(i)
            for o in range(self.n_outputs):
                vals = self.values[i, o][valid]
                order = (-vals.abs()).argsort().argsort()
                for j, name in enumerate(self.features[i].feature_names):
                    rows.append({"example": i, "output": self.target.names[i][o], "feature": j,
                                 "feature_name": name, "value": float(vals[j]),
                                 "rank": int(order[j]) + 1})
        return pd.DataFrame(rows)

    # -- PyTorch Geometric ----------------------------------------------------------------
    def to_pyg(self, index: int | None = None, *, output: int | str = 0) -> Any:
        """This graph explanation as ``torch_geometric.explain.Explanation`` (PyG's
        visualisation, ``get_explanation_subgraph`` and ``metric.fidelity`` run on it).

        Each PyG explanation is on the user's graph: ``x`` and ``edge_index`` in the user's node
        ids, ``edge_mask`` (E,) giving both directions of an undirected edge its value (0 for
        edges that are not features) or ``node_mask`` (N, 1), and ``target`` the explained
        class. A node task holds the neighbourhood the model ran on (other nodes have zero
        features and no edges, which leaves the explained node's output unchanged), ``index``
        the explained node and ``target`` the class at that node (-1 elsewhere).

        Parameters
        ----------
        index : int, optional
            The example to convert. None: the only example, or a list of PyG explanations, one
            per example, when there are several.
        output : int or str, default=0
            The explained output (position or name) whose values become the mask.

        Raises
        ------
        InvalidExplanationError
            The explanation is not of a graph model.
        """
        from ._graph_pyg import to_pyg

        return to_pyg(self, index, output=output)

    @classmethod
    def from_pyg(cls, pyg_explanation: Any, model: Any, *, explain: str | None = None,
                 target: Any = None, algorithm: str | None = None,
                 adapter_options: Mapping[str, Any] | None = None) -> Explanation:
        """An Explanation of any PyG explainer's output, scorable with our metrics.

        The model runs on the PyG explanation's graph (``x``, ``edge_index``) through the
        graph adapter; a set ``index`` makes it a node task. The features are the edges
        (``edge_mask``: an undirected edge gets the mean of its two directions' masks) or the
        nodes (``node_mask``, summed over its columns for an ``"attributes"`` mask).

        Parameters
        ----------
        pyg_explanation : torch_geometric.explain.Explanation
        model : torch.nn.Module
            The model the PyG explanation explains.
        explain : {"edges", "nodes"}, optional
            Which mask to read; None: the edge mask when there is one, else the node mask.
        target : optional
            The explained class (as for :func:`xai.explain`); None: the integer ``target`` of
            the PyG explanation when it has one, else the predicted class.
        algorithm : str, optional
            Recorded as ``method="pyg:<algorithm>"`` (``"pyg"`` without it).
        adapter_options : mapping, optional
            Graph adapter options (``mask_mode``, ``k_hop``, ``undirected``) for the metrics.

        Raises
        ------
        InvalidInputError
            A mask whose size does not match the graph, or no mask.
        """
        from ._graph_pyg import from_pyg

        return from_pyg(cls, pyg_explanation, model, explain=explain, target=target,
                        algorithm=algorithm, adapter_options=adapter_options)

    # -- display --------------------------------------------------------------------------
    def plot(self, kind: Literal["auto", "bar", "text", "heatmap", "graph"] = "auto",
             **kwargs: Any) -> Any:
        """Plot with matplotlib (needs the [plot] extra); returns the Axes.

        ``kind="auto"`` draws text as a token heat strip, generation as an outputs × features
        heatmap, a graph model's explanation as the graph (:func:`xai.plot.graph.graph`),
        anything else as bars.
        """
        from . import plot

        check_param("Explanation.plot", "kind", kind,
                    [Options({"auto", "bar", "text", "heatmap", "graph"})])
        name = kind if kind != "auto" else \
            {"text": "text", "generation": "heatmap", "graph": "graph"}.get(self.modality, "bar")
        if name == "graph":
            from .plot.graph import graph

            return graph(self, **kwargs)
        return getattr(plot, name)(self, **kwargs)

    def _repr_html_(self) -> str:
        """Notebook view: token heatmap (text), outputs × features grid (generation), or bars."""
        from .plot._html import explanation_html

        return explanation_html(self)

    def __repr__(self) -> str:
        return (f"Explanation(method={self.method!r}, n_examples={len(self)}, "
                f"n_outputs={self.n_outputs}, n_features={self.n_features})")

    # -- persistence ----------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write ``path/explanation.json`` (metadata) and ``path/values.safetensors`` (tensors).

        The inputs and the feature spaces are saved with their state (tensor, multi-tensor,
        text, token, word and graph features), so a loaded explanation can be scored by the
        metrics like the live one; a feature space of another kind is saved by its names (it
        loads as :class:`~xai.features.NamedFeatures`). Non-JSON parameter values are stored as
        their ``repr``.
        """
        save_explanation(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Explanation:
        """Read what :meth:`save` wrote, inputs and feature spaces included (files of format
        version 1 or 2 have neither: their features load as ``NamedFeatures``).

        Raises
        ------
        FileNotFoundError
            ``path`` does not exist.
        InvalidExplanationError
            A file is missing, damaged or inconsistent (names against values, dtypes, shapes),
            or was written in an unsupported format version.
        """
        return load_explanation(cls, path)


def _rows(index: Any, n: int) -> list[int]:
    """Row positions selected by an int, a slice or a sequence of ints (IndexError if out of range)."""
    if isinstance(index, slice):
        rows = list(range(n))[index]
    elif _is_int(index):
        rows = [int(index)]
    elif isinstance(index, Sequence | np.ndarray | torch.Tensor) and not isinstance(index, str) \
            and all(_is_int(i) for i in index):
        rows = [int(i) for i in index]
    else:
        msg = (f"An Explanation is indexed by an int, a slice or a sequence of ints; got "
               f"{type(index).__name__} {index!r}. Use exp[i], exp[a:b] or exp[[i, j]].")
        raise TypeError(msg)
    bad = [i for i in rows if not -n <= i < n]
    if bad:
        msg = (f"Index {bad[0]} is out of range for an Explanation of {n} examples. Pass "
               f"positions in {-n}..{n - 1}.")
        raise IndexError(msg)
    return [i % n for i in rows]


def _is_int(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return value.dim() == 0 and not value.is_floating_point() and value.dtype != torch.bool
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def _take_extra(value: Any, idx: torch.Tensor, n: int, width: int, n_features: int) -> Any:
    if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape[0] == n:
        value = value.index_select(0, idx)
        if value.dim() == 3 and value.shape[-1] == n_features:  # per feature, like values
            value = value[..., :width]
    return value
