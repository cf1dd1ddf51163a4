"""The result of every method: attributions plus everything needed to plot, save and evaluate."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from .exceptions import InvalidExplanationError

if TYPE_CHECKING:
    from .adapters._base import Batch
    from .features._base import FeatureSpace

__all__ = ["Explanation", "ResolvedTarget"]

FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True, eq=False)
class ResolvedTarget:
    """Explained output indices (n_examples, n_outputs) and their names."""

    indices: torch.Tensor
    names: tuple[tuple[str, ...], ...]
    scores: torch.Tensor | None = None  # the model's scores at the inputs, all outputs

    @property
    def n_outputs(self) -> int:
        return int(self.indices.shape[1])

    def take(self, rows: Sequence[int]) -> ResolvedTarget:
        scores = None if self.scores is None else self.scores[list(rows)]
        return ResolvedTarget(self.indices[list(rows)], tuple(self.names[i] for i in rows), scores)

    def explained_scores(self) -> torch.Tensor:
        """The model's scores at the inputs for the explained outputs, (n_examples, n_outputs)."""
        assert self.scores is not None, "target was resolved without scores"
        return self.scores.gather(1, self.indices)


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class Explanation:
    """Attributions for a batch of examples, with everything needed to plot, save and evaluate them.

    Attributes
    ----------
    values : torch.Tensor of shape (n_examples, n_outputs, n_features)
        Attribution of each feature to each explained output. float32, on CPU. Padding (see
        ``feature_mask``) holds 0.
    feature_mask : torch.Tensor of shape (n_examples, n_features) or None
        False marks padding when examples have different numbers of features (text).
    features : tuple of FeatureSpace, length n_examples
        The interpretable features used; metrics perturb through these. Empty after ``load``.
    inputs : Batch or None
        The explained inputs as normalised by the adapter. None after ``load``.
    target : ResolvedTarget
        Explained output indices (n_examples, n_outputs) and output names.
    predictions : torch.Tensor of shape (n_examples, n_outputs) or None
        Model scores at the inputs for the explained outputs.
    base_values : torch.Tensor of shape (n_examples, n_outputs) or None
        Model scores with every feature removed, when the method defines one.
    method : str
        Registry name of the method that produced this.
    params : Mapping[str, Any]
        The method's resolved parameters; ``METHODS.get(method)(**params)`` reproduces it.
    extras : Mapping[str, Any]
        Diagnostics, e.g. "convergence_delta", "stderr", "n_model_calls".
    model_info : Mapping[str, str]
        Adapter class, model class and name, resolved adapter options.
    multiply_by_inputs : bool
        True when values sum to about f(x) - f(baseline) (IG, occlusion, Shapley); metrics use it
        to compare attributions with perturbations on the right scale.
    names : tuple of tuple of str
        Feature names per example (cached from ``features``; the only names after ``load``).
    texts : tuple of str or None
        The explained texts, for text models.
    """

    values: torch.Tensor
    target: ResolvedTarget
    method: str
    params: Mapping[str, Any]
    names: tuple[tuple[str, ...], ...]
    feature_mask: torch.Tensor | None = None
    features: tuple[FeatureSpace, ...] = ()
    inputs: Batch | None = None
    predictions: torch.Tensor | None = None
    base_values: torch.Tensor | None = None
    extras: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    model_info: Mapping[str, str] = dataclasses.field(default_factory=dict)
    multiply_by_inputs: bool = True
    modality: str = "tabular"
    texts: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
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
        if len(self.names) != n or (self.features and len(self.features) != n):
            msg = f"Explanation has {n} examples but {len(self.names)} name lists."
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
        """Feature names per example: column names, or the tokens/words of each text."""
        return list(self.names)

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
            width = max(int(self.feature_mask[r].sum()) for r in rows)
        mask = sel(self.feature_mask)
        return dataclasses.replace(
            self, values=self.values.index_select(0, idx)[..., :width],
            feature_mask=None if mask is None else mask[:, :width],
            target=self.target.take(rows), predictions=sel(self.predictions),
            base_values=sel(self.base_values), names=tuple(self.names[r] for r in rows),
            features=tuple(self.features[r] for r in rows) if self.features else (),
            inputs=None if self.inputs is None else self.inputs.take(rows),
            texts=None if self.texts is None else tuple(self.texts[r] for r in rows),
            extras={k: _take_extra(v, idx, len(self), width, self.n_features)
                    for k, v in self.extras.items()},
        )

    def for_output(self, output: int | str) -> Explanation:
        """Keep one output column (by position, or by name when all examples share it)."""
        col = output if isinstance(output, int) else self._output_column(output)
        if not -self.n_outputs <= col < self.n_outputs:
            msg = f"Output {col} is out of range for an Explanation of {self.n_outputs} outputs."
            raise IndexError(msg)
        col %= self.n_outputs
        sl = slice(col, col + 1)
        n, o = len(self), self.n_outputs
        return dataclasses.replace(
            self, values=self.values[:, sl],
            target=ResolvedTarget(self.target.indices[:, sl],
                                  tuple((nm[col],) for nm in self.target.names)),
            predictions=None if self.predictions is None else self.predictions[:, sl],
            base_values=None if self.base_values is None else self.base_values[:, sl],
            extras={k: v[:, sl] if isinstance(v, torch.Tensor) and tuple(v.shape[:2]) == (n, o)
                    else v for k, v in self.extras.items()})

    def _output_column(self, name: str) -> int:
        for col in range(self.n_outputs):
            if all(nm[col] == name for nm in self.target.names):
                return col
        msg = f"Output {name!r} is not explained in every example of this Explanation."
        raise InvalidExplanationError(msg)

    def probabilities(self) -> torch.Tensor | None:
        """Probability of each explained output, (n_examples, n_outputs), when it is known.

        The softmax of the scores for models that output logits (transformers classifiers), the
        scores themselves for ``predict_proba`` models, None otherwise (or after ``load``).
        """
        scores = self.target.scores
        if scores is None:
            return None
        if self.model_info.get("output") == "logits":
            return scores.softmax(-1).gather(1, self.target.indices)
        if self.model_info.get("response") == "predict_proba":
            return scores.gather(1, self.target.indices)
        return None

    # -- transforms -----------------------------------------------------------------------
    def top_k(self, k: int, *, by: Literal["value", "abs"] = "abs") -> torch.Tensor:
        """Indices of the k largest attributions, (n_examples, n_outputs, k); padding never wins.

        ``k`` is capped by the number of real features of the shortest example.
        """
        score = self.values.abs() if by == "abs" else self.values.clone()
        k = min(k, self.n_features)
        if self.feature_mask is not None:
            score = score.masked_fill(~self.feature_mask[:, None, :], float("-inf"))
            k = min(k, int(self.feature_mask.sum(-1).min()))
        return score.topk(k, dim=-1).indices

    def normalize(self, how: Literal["l1", "max_abs"] = "max_abs") -> Explanation:
        """A new Explanation with values scaled per (example, output); zeros stay zeros."""
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
                for j, name in enumerate(self.names[i]):
                    rows.append({"example": i, "output": self.target.names[i][o], "feature": j,
                                 "feature_name": name, "value": float(vals[j]),
                                 "rank": int(order[j]) + 1})
        return pd.DataFrame(rows)

    # -- display --------------------------------------------------------------------------
    def plot(self, kind: Literal["auto", "bar", "text", "heatmap"] = "auto",
             **kwargs: Any) -> Any:
        """Plot with matplotlib (needs the [plot] extra); returns the Axes.

        ``kind="auto"`` draws text as a token heat strip, generation as an outputs × features
        heatmap, anything else as bars.
        """
        from . import plot

        name = kind if kind != "auto" else \
            {"text": "text", "generation": "heatmap"}.get(self.modality, "bar")
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
        """Write ``path/explanation.json`` (metadata) and ``path/values.safetensors`` (tensors)."""
        from safetensors.torch import save_file

        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {"values": self.values.contiguous(), "target": self.target.indices.contiguous()}
        for key in ("predictions", "base_values", "feature_mask"):
            t = getattr(self, key)
            if t is not None:
                tensors[key] = t.contiguous()
        extras_json = {}
        for key, val in self.extras.items():
            if isinstance(val, torch.Tensor):
                tensors[f"extras.{key}"] = val.detach().cpu().contiguous()
            else:
                extras_json[key] = val
        save_file(tensors, str(folder / "values.safetensors"))
        meta = {
            "format_version": FORMAT_VERSION, "method": self.method,
            "params": _jsonable(self.params), "names": [list(n) for n in self.names],
            "target_names": [list(n) for n in self.target.names],
            "model_info": dict(self.model_info), "multiply_by_inputs": self.multiply_by_inputs,
            "modality": self.modality, "texts": None if self.texts is None else list(self.texts),
            "extras": _jsonable(extras_json),
        }
        (folder / "explanation.json").write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Explanation:
        """Read what :meth:`save` wrote. ``features`` and ``inputs`` are not restored."""
        from safetensors.torch import load_file

        folder = Path(path)
        meta = json.loads((folder / "explanation.json").read_text())
        t = load_file(str(folder / "values.safetensors"))
        extras: dict[str, Any] = dict(_from_json(meta.get("extras", {})))
        extras.update({k[len("extras."):]: v for k, v in t.items() if k.startswith("extras.")})
        return cls(
            values=t["values"], target=ResolvedTarget(t["target"], tuple(
                tuple(n) for n in meta["target_names"])),
            method=meta["method"], params=_from_json(meta["params"]),
            names=tuple(tuple(n) for n in meta["names"]), feature_mask=t.get("feature_mask"),
            predictions=t.get("predictions"), base_values=t.get("base_values"), extras=extras,
            model_info=meta["model_info"], multiply_by_inputs=meta["multiply_by_inputs"],
            modality=meta["modality"], texts=None if meta["texts"] is None else tuple(meta["texts"]),
        )


def _rows(index: int | slice | Sequence[int], n: int) -> list[int]:
    if isinstance(index, int):
        if not -n <= index < n:
            msg = f"Index {index} is out of range for an Explanation of {n} examples."
            raise IndexError(msg)
        return [index % n]
    if isinstance(index, slice):
        return list(range(n))[index]
    return [int(i) for i in index]


def _take_extra(value: Any, idx: torch.Tensor, n: int, width: int, n_features: int) -> Any:
    if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape[0] == n:
        value = value.index_select(0, idx)
        if value.dim() == 3 and value.shape[-1] == n_features:  # per feature, like values
            value = value[..., :width]
    return value


def _from_json(obj: Any) -> Any:
    """Undo :func:`_jsonable` for arrays: ``{"__array__": [...]}`` becomes a tensor again."""
    if isinstance(obj, dict):
        if set(obj) == {"__array__"}:
            return torch.tensor(obj["__array__"])
        return {k: _from_json(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_from_json(v) for v in obj]
    return obj


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor | np.ndarray):
        return {"__array__": np.asarray(obj).tolist()}
    if isinstance(obj, str | int | float | bool) or obj is None:
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    return repr(obj)
