"""Saving and loading an Explanation: ``explanation.json`` (metadata) + ``values.safetensors``.

Everything read back is validated: the format version, the type of every metadata field, the
dtype and shape of every tensor, and the feature names against ``values``. A damaged or tampered
folder raises :class:`~xai.exceptions.InvalidExplanationError` naming the file and the problem; a
folder that does not exist raises :class:`FileNotFoundError`.

Format versions: 1 (arrays in ``params``/``extras`` stored as plain lists), 2 (arrays keep their
dtype and shape, tuples stay tuples, tensor dtypes are recorded, ``target.scores`` saved) and 3
(the inputs and the feature spaces are saved, so a loaded explanation scores like a live one;
``model_info`` is a typed record with the output kind). Versions 1 and 2 load with
:class:`~xai.features.NamedFeatures` and no inputs: they can be plotted and scored for
complexity, not re-perturbed.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NoReturn

import numpy as np
import torch

from ._capabilities import MODALITIES, OUTPUT_KINDS
from ._records import ModelInfo, ResolvedTarget
from .adapters._base import Batch
from .exceptions import InvalidExplanationError
from .features.graph import GraphEdges, GraphNodes, GraphRow
from .features.named import NamedFeatures
from .features.tensor import MultiTensorFeatures, TensorFeatures
from .features.text import TextFeatures, TokenFeatures, WordFeatures

if TYPE_CHECKING:
    from .explanation import Explanation
    from .features._base import FeatureSpace

__all__ = ["FORMAT_VERSION", "SUPPORTED_VERSIONS", "load_explanation", "save_explanation"]

FORMAT_VERSION = 3
SUPPORTED_VERSIONS = (1, 2, 3)
META, TENSORS = "explanation.json", "values.safetensors"
#: Optional per-example tensors and the dtype kind each must have.
_OPTIONAL = {"predictions": "float", "base_values": "float", "feature_mask": "bool",
             "target_scores": "float"}
_KINDS = {"float": (torch.float16, torch.bfloat16, torch.float32, torch.float64),
          "int": (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8),
          "bool": (torch.bool,)}
#: Metadata fields of every version: the JSON types each may have.
_COMMON: dict[str, tuple[type, ...]] = {
    "method": (str,), "params": (dict,), "target_names": (list,), "model_info": (dict,),
    "extras": (dict,)}
_FIELDS: dict[int, dict[str, tuple[type, ...]]] = {
    1: {**_COMMON, "names": (list,), "multiply_by_inputs": (bool,), "modality": (str,),
        "texts": (list, type(None))},
    3: {**_COMMON, "features": (list,), "inputs": (dict, type(None)),
        "multiplies_by_inputs": (bool,)}}
_FIELDS[2] = _FIELDS[1]
#: Feature spaces saved with their state; any other kind is saved by name (NamedFeatures).
_TEXT_KINDS: dict[str, type[TextFeatures]] = {
    "TextFeatures": TextFeatures, "TokenFeatures": TokenFeatures, "WordFeatures": WordFeatures}
_REMOVALS = ("pad", "mask", "unk", "delete")
#: Graph feature spaces, saved with their GraphRow's tensors.
_GRAPH_KINDS: dict[str, type[GraphEdges | GraphNodes]] = {"GraphEdges": GraphEdges,
                                                          "GraphNodes": GraphNodes}
_GRAPH_TENSORS = ("x", "edge_index", "players", "units", "node_ids", "edge_ids")


# -- save --------------------------------------------------------------------------------------
def save_explanation(exp: Explanation, path: str | os.PathLike[str]) -> None:
    """Write ``path/explanation.json`` and ``path/values.safetensors`` (format version 3)."""
    from safetensors.torch import save_file

    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    fields: dict[str, torch.Tensor | None] = {
        "values": exp.values, "target": exp.target.indices, "predictions": exp.predictions,
        "base_values": exp.base_values, "feature_mask": exp.feature_mask,
        "target_scores": exp.target.scores}
    extras_json = {}
    for key, val in exp.extras.items():
        if isinstance(val, torch.Tensor):
            fields[f"extras.{key}"] = val
        else:
            extras_json[key] = val
    features = []
    for i, fs in enumerate(exp.features):
        state, tensors = _feature_state(fs)
        features.append(state)
        fields.update({f"features.{i}.{k}": v for k, v in tensors.items()})
    inputs = None
    saved_inputs = None if exp.inputs is None else _static_state(
        dataclasses.replace(exp.inputs, tensors={}))
    if exp.inputs is not None and saved_inputs is not None:
        inputs = {"texts": None if exp.inputs.texts is None else list(exp.inputs.texts),
                  "columns": None if exp.inputs.columns is None else list(exp.inputs.columns),
                  "context": saved_inputs[0]}
        fields.update({f"inputs.{k}": v for k, v in exp.inputs.tensors.items()})
        fields.update({f"inputs_{k}": v for k, v in saved_inputs[1].items()})
    # clone: safetensors refuses tensors that share memory (a view of values in extras)
    tensors = {k: v.detach().cpu().clone().contiguous() for k, v in fields.items()
               if v is not None}
    save_file(tensors, str(folder / TENSORS))
    info = exp.model_info
    meta = {
        "format_version": FORMAT_VERSION, "method": exp.method, "params": jsonable(exp.params),
        "target_names": [list(n) for n in exp.target.names],
        "model_info": {"adapter": info.adapter, "model": info.model, "modality": info.modality,
                       "output_kind": info.output_kind, "details": dict(info.details)},
        "multiplies_by_inputs": exp.multiplies_by_inputs, "features": features,
        "inputs": inputs, "extras": jsonable(extras_json),
        "dtypes": {k: str(v.dtype).removeprefix("torch.") for k, v in tensors.items()},
    }
    (folder / META).write_text(json.dumps(meta, indent=2))


def _feature_state(fs: FeatureSpace) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The JSON state and the tensors of one feature space (by name only if not savable)."""
    names = [str(n) for n in fs.feature_names]
    if isinstance(fs, GraphEdges | GraphNodes):
        row = fs.row
        extra = {} if row.edge_attr is None else {"row.edge_attr": row.edge_attr}
        return ({"kind": type(fs).__name__, "names": names, "explain": row.explain,
                 "index": row.index, "mask_mode": row.mask_mode, "source_nodes": row.source_nodes,
                 "source_edges": row.source_edges, "position": row.position},
                {**{f"row.{k}": getattr(row, k) for k in _GRAPH_TENSORS}, **extra})
    context = getattr(fs, "context", None)
    saved_context = _static_state(context)
    if type(fs) is TensorFeatures and saved_context is not None:
        return ({"kind": "TensorFeatures", "names": names, "context": saved_context[0],
                 "columns": None if fs.columns is None else list(fs.columns)},
                {"x": fs.x, "baseline": fs.base, "ids": fs.feature_ids, **saved_context[1]})
    if type(fs) is MultiTensorFeatures and saved_context is not None:
        parts = {}
        for k, (x, base, ids) in enumerate(zip(fs.xs, fs.bases, fs.feature_ids, strict=True)):
            parts.update({f"x.{k}": x, f"baseline.{k}": base, f"ids.{k}": ids})
        return ({"kind": "MultiTensorFeatures", "names": names, "n_inputs": len(fs.xs),
                 "context": saved_context[0]}, {**parts, **saved_context[1]})
    if isinstance(fs, TextFeatures) and type(fs).__name__ in _TEXT_KINDS:
        return ({"kind": type(fs).__name__, "names": names,
                 "groups": [list(g) for g in fs.groups], "removal": fs.removal,
                 "replace_id": fs.replace_id, "pad_id": fs.pad_id, "text": fs.text,
                 "spans": [list(s) for s in fs.spans]},
                {f"tensors.{k}": v for k, v in fs.tensors.items()})
    text = getattr(fs, "text", None)
    kind = fs.kind if isinstance(fs, NamedFeatures) else type(fs).__name__
    if saved_context is None:
        kind += " (with a forward argument that cannot be saved)"
    return ({"kind": "NamedFeatures", "names": names, "source": kind,
             "text": text if isinstance(text, str) else None}, {})


_JSON_SCALARS = (str, int, float, bool, type(None))


def _static_state(batch: Batch | None) -> tuple[dict[str, Any] | None,
                                                 dict[str, torch.Tensor]] | None:
    """The forward arguments of ``batch`` (its ``args_*`` tensors and static values) as JSON
    and tensors: ``({"static": [[position, value or None]], "tensor_static": [positions]},
    tensors)``; ({None}, {}) without any; None when a static value is neither a tensor nor a
    JSON scalar (it cannot be saved)."""
    if batch is None:
        return None, {}
    tensors = {f"context.{k}": v for k, v in batch.tensors.items() if k.startswith("args_")}
    static, tensor_static = [], []
    for j, value in batch.static_args:
        if isinstance(value, torch.Tensor):
            tensors[f"static.{j}"] = value
            tensor_static.append(j)
        elif isinstance(value, _JSON_SCALARS):
            static.append([j, value])
        else:
            return None
    return {"static": static, "tensor_static": tensor_static}, tensors


def jsonable(obj: Any) -> Any:
    """JSON form of params/extras: arrays as ``{"__array__", "dtype", "shape"}``, tuples marked."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, tuple):
        return {"__tuple__": [jsonable(v) for v in obj]}
    if isinstance(obj, list):
        return [jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor | np.ndarray):
        arr = obj.detach().cpu() if isinstance(obj, torch.Tensor) else obj
        return {"__array__": arr.tolist(), "dtype": str(arr.dtype).removeprefix("torch."),
                "shape": list(arr.shape), "numpy": isinstance(obj, np.ndarray)}
    if isinstance(obj, str | int | float | bool) or obj is None:
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    return repr(obj)


def from_json(obj: Any) -> Any:
    """Undo :func:`jsonable` (version 1 arrays, ``{"__array__": [...]}``, also read back)."""
    if isinstance(obj, dict):
        if "__array__" in obj and set(obj) <= {"__array__", "dtype", "shape", "numpy"}:
            return _array(obj)
        if set(obj) == {"__tuple__"} and isinstance(obj["__tuple__"], list):
            return tuple(from_json(v) for v in obj["__tuple__"])
        return {k: from_json(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [from_json(v) for v in obj]
    return obj


def _array(obj: dict[str, Any]) -> torch.Tensor | np.ndarray:
    if "dtype" not in obj:  # format version 1
        old: torch.Tensor = torch.tensor(obj["__array__"])
        return old
    stored = "float32" if obj["dtype"] == "bfloat16" else obj["dtype"]  # numpy has no bfloat16
    arr: np.ndarray = np.asarray(obj["__array__"], dtype=stored).reshape(obj["shape"])
    if obj.get("numpy"):
        return arr
    dtype: torch.dtype = getattr(torch, obj["dtype"])
    return torch.from_numpy(arr).to(dtype)


# -- load --------------------------------------------------------------------------------------
def load_explanation(cls: type[Explanation], path: str | os.PathLike[str]) -> Explanation:
    """Read and validate what :func:`save_explanation` wrote (any supported version)."""
    folder = Path(path)
    if not folder.exists():
        msg = (f"No saved Explanation at '{folder}': the path does not exist. Pass the folder "
               "that Explanation.save() wrote.")
        raise FileNotFoundError(msg)
    if not folder.is_dir():
        _fail(folder, "it is a file, not a folder", f"Pass the folder that contains {META} "
              f"and {TENSORS}")
    meta = _read_meta(folder)
    t = _read_tensors(folder, meta)
    _check_consistency(folder, meta, t)
    params, extras = (_decode(folder, meta, k) for k in ("params", "extras"))
    extras.update({k[len("extras."):]: v for k, v in t.items() if k.startswith("extras.")})
    if meta["format_version"] >= 3:
        features = tuple(_feature_space(folder, i, state, _prefixed(t, f"features.{i}."))
                         for i, state in enumerate(meta["features"]))
        inputs = _inputs(folder, meta["inputs"], _prefixed(t, "inputs."), len(t["values"]),
                         _prefixed(t, "inputs_static."))
        rows = [f.row for f in features if isinstance(f, GraphEdges | GraphNodes)]
        if inputs is not None and rows and len(rows) == len(features):
            inputs = dataclasses.replace(inputs, graphs=tuple(rows))  # the graphs the model ran on
        info = _model_info(folder, meta["model_info"])
        multiplies = meta["multiplies_by_inputs"]
    else:
        texts = meta["texts"] or [None] * len(meta["names"])
        features = tuple(NamedFeatures(n, text=s) for n, s in zip(meta["names"], texts,
                                                                   strict=True))
        inputs = None
        legacy = {**_decode(folder, meta, "model_info"), "modality": meta["modality"]}
        info = ModelInfo.from_mapping(legacy)
        multiplies = meta["multiply_by_inputs"]
    try:
        return cls(
            values=t["values"], target=ResolvedTarget(
                t["target"], tuple(tuple(n) for n in meta["target_names"]),
                t.get("target_scores")),
            method=meta["method"], params=params, features=features,
            feature_mask=t.get("feature_mask"), inputs=inputs, predictions=t.get("predictions"),
            base_values=t.get("base_values"), extras=extras, model_info=info,
            multiplies_by_inputs=multiplies)
    except InvalidExplanationError as err:
        _fail(folder, str(err).rstrip("."), cause=err)


def _prefixed(t: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in t.items() if k.startswith(prefix)}


def _model_info(folder: Path, info: Mapping[str, Any]) -> ModelInfo:
    kinds = {"adapter": str, "model": str, "modality": str, "output_kind": str, "details": dict}
    for key, kind in kinds.items():
        if not isinstance(info.get(key), kind):
            _fail(folder, f"model_info.{key} in {META} must be a JSON "
                  f"{'object' if kind is dict else 'string'}, got {_short(info.get(key))}")
    for key, allowed in (("modality", MODALITIES), ("output_kind", OUTPUT_KINDS)):
        if info[key] not in allowed:
            _fail(folder, f"model_info.{key} in {META} is {info[key]!r}, not one of "
                  f"{', '.join(map(repr, allowed))}")
    details = info["details"]
    if not all(isinstance(v, str) for v in details.values()):
        _fail(folder, f"model_info.details in {META} must map names to strings")
    return ModelInfo(adapter=info["adapter"], model=info["model"], modality=info["modality"],
                     output_kind=info["output_kind"], details=details)


def _inputs(folder: Path, state: Mapping[str, Any] | None, tensors: dict[str, torch.Tensor],
            n: int, static: dict[str, torch.Tensor]) -> Batch | None:
    """The saved model inputs: tensors of n rows, the texts and the column names."""
    if state is None:
        if tensors:
            _fail(folder, f"{TENSORS} holds input tensors, but 'inputs' in {META} is null")
        return None
    if not tensors:
        _fail(folder, f"'inputs' in {META} is set, but {TENSORS} holds no 'inputs.*' tensor")
    for key, tensor in tensors.items():
        if tensor.dim() == 0 or tensor.shape[0] != n:
            _fail(folder, f"the 'inputs.{key}' tensor has shape {tuple(tensor.shape)}, but "
                  f"'values' has {n} examples (one row each)")
    texts, columns = state.get("texts"), state.get("columns")
    _check_strings(folder, "inputs.texts", texts, n)
    _check_strings(folder, "inputs.columns", columns, None)
    context = _context(folder, f"'inputs' in {META}", state.get("context"), {}, static)
    return Batch(tensors, texts=None if texts is None else tuple(texts),
                 columns=None if columns is None else tuple(columns),
                 static_args=() if context is None else context.static_args)


def _context(folder: Path, where: str, state: Any, rows: dict[str, torch.Tensor],
             static: dict[str, torch.Tensor]) -> Batch | None:
    """The forward arguments _static_state saved: row tensors, static tensors and values."""
    if state is None:
        if rows or static:
            _fail(folder, f"{where} has forward-argument tensors but no 'context'")
        return None
    if not isinstance(state, dict) or not isinstance(state.get("static"), list) or \
            not isinstance(state.get("tensor_static"), list):
        _fail(folder, f"{where} has a 'context' that is not an object with 'static' and "
              "'tensor_static' lists")
    args: list[tuple[int, Any]] = []
    for item in state["static"]:
        if not (isinstance(item, list) and len(item) == 2 and _is_index(item[0], None)
                and isinstance(item[1], _JSON_SCALARS)):
            _fail(folder, f"{where} has a static forward argument {_short(item)}, not a "
                  "[position, value] pair")
        args.append((item[0], item[1]))
    for j in state["tensor_static"]:
        if not _is_index(j, None) or str(j) not in static:
            _fail(folder, f"{where} lists the static tensor argument {_short(j)}, which "
                  f"{TENSORS} does not hold")
        args.append((j, static[str(j)]))
    if not rows and not args:
        return None
    return Batch(rows, static_args=tuple(sorted(args, key=lambda a: a[0])))


def _feature_space(folder: Path, i: int, state: Mapping[str, Any],
                   t: dict[str, torch.Tensor]) -> FeatureSpace:
    """Rebuild feature space ``i`` from its saved state (the kinds _feature_state writes)."""
    where = f"features[{i}] in {META}"
    kind = state["kind"]

    def need(ok: bool, problem: str) -> None:
        if not ok:
            _fail(folder, f"{where} {problem}")

    def tensor(key: str, dim: int | None = None) -> torch.Tensor:
        need(key in t, f"is a {kind}, but {TENSORS} has no 'features.{i}.{key}' tensor")
        need(dim is None or t[key].dim() == dim, f"needs a {dim}-d 'features.{i}.{key}' tensor, "
             f"got shape {tuple(t[key].shape)}")
        return t[key]

    if kind in _GRAPH_KINDS:
        return _graph_features(folder, where, i, state, t)
    if kind == "NamedFeatures":
        need(not t, f"is saved by name only, but {TENSORS} holds tensors for it")
        source = state.get("source", "NamedFeatures")
        need(isinstance(source, str), "has a 'source' that is not a string")
        return NamedFeatures(state["names"], text=state.get("text"), kind=source)
    if kind in ("TensorFeatures", "MultiTensorFeatures"):
        n_inputs = state.get("n_inputs", 1) if kind == "MultiTensorFeatures" else 1
        need(_is_index(n_inputs, None) and n_inputs >= 1, "needs an int 'n_inputs'")
        suffix = [""] if kind == "TensorFeatures" else [f".{k}" for k in range(n_inputs)]
        xs, bases, id_parts = [], [], []
        for sfx in suffix:
            x, base, part = tensor(f"x{sfx}"), tensor(f"baseline{sfx}"), tensor(f"ids{sfx}", 1)
            need(tuple(base.shape) == tuple(x.shape), f"has a baseline of shape "
                 f"{tuple(base.shape)} for an input of shape {tuple(x.shape)}")
            need(part.dtype in _KINDS["int"] and part.numel() == x.numel(),
                 f"needs one int feature id per input element ({x.numel()})")
            xs.append(x)
            bases.append(base)
            id_parts.append(part.long())
        n = len(state["names"])
        flat = torch.cat(id_parts)
        need(bool(flat.numel() == 0 or (flat.min() >= 0 and flat.max() == n - 1)),
             f"has feature ids outside 0..{n - 1} (one per name)")
        context = _context(folder, where, state.get("context"),
                           {k[len("context."):]: v for k, v in t.items()
                            if k.startswith("context.")},
                           {k[len("static."):]: v for k, v in t.items()
                            if k.startswith("static.")})
        if kind == "MultiTensorFeatures":
            return MultiTensorFeatures(xs, bases, feature_masks=id_parts, names=state["names"],
                                       context=context)
        columns = state.get("columns")
        _check_strings(folder, f"features[{i}].columns", columns, None)
        return TensorFeatures(xs[0], bases[0], feature_mask=id_parts[0].reshape(xs[0].shape),
                              names=state["names"], context=context,
                              columns=None if columns is None else tuple(columns))
    need(kind in _TEXT_KINDS, f"has kind {_short(kind)}, not one of 'TensorFeatures', "
         f"'MultiTensorFeatures', {', '.join(map(repr, [*_TEXT_KINDS, *_GRAPH_KINDS]))} or 'NamedFeatures'")
    tensors = {k[len("tensors."):]: v for k, v in t.items()}
    ids = tensor("tensors.input_ids", 1)
    need(all(v.dim() == 1 and v.shape[0] == ids.shape[0] for v in tensors.values()),
         "has token tensors of different lengths")
    groups = state.get("groups")
    need(isinstance(groups, list) and len(groups) == len(state["names"]) and all(
        isinstance(g, list) and all(_is_index(p, ids.shape[0]) for p in g) for g in groups),
        f"needs one list of token positions (0..{ids.shape[0] - 1}) per feature name")
    need(state.get("removal") in _REMOVALS, f"has removal {_short(state.get('removal'))}, not "
         f"one of {', '.join(map(repr, _REMOVALS))}")
    need(state["removal"] == "delete" or _is_index(state.get("replace_id"), None),
         "needs an int 'replace_id' for its removal")
    need(_is_index(state.get("pad_id"), None), "needs an int 'pad_id'")
    spans, text = state.get("spans"), state.get("text")
    need(text is None or isinstance(text, str), "has a 'text' that is not a string")
    need(isinstance(spans, list) and all(
        isinstance(s, list) and len(s) == 2 and all(_is_index(c, None) for c in s)
        for s in spans), "needs 'spans' as a list of [start, end] pairs")
    checked_groups: list[list[int]] = state["groups"]  # the checks above hold
    checked_spans: list[list[int]] = state["spans"]
    return _TEXT_KINDS[kind](tensors, checked_groups, state["names"], removal=state["removal"],
                             replace_id=state.get("replace_id"), pad_id=state["pad_id"],
                             text=text, spans=[(s, e) for s, e in checked_spans])


def _graph_features(folder: Path, where: str, i: int, state: Mapping[str, Any],
                    t: dict[str, torch.Tensor]) -> GraphEdges | GraphNodes:
    """Rebuild a GraphEdges/GraphNodes from its GraphRow's saved tensors and fields."""
    kind = state["kind"]

    def need(ok: bool, problem: str) -> None:
        if not ok:
            _fail(folder, f"{where} {problem}")

    for key in _GRAPH_TENSORS:
        need(f"row.{key}" in t, f"is a {kind}, but {TENSORS} has no 'features.{i}.row.{key}' "
             "tensor")
    need(set(t) <= {f"row.{k}" for k in (*_GRAPH_TENSORS, "edge_attr")},
         f"has unexpected tensors {sorted(t)}")
    explain: Literal["edges", "nodes"] = "edges" if kind == "GraphEdges" else "nodes"
    need(state.get("explain") == explain, f"is a {kind}, but its 'explain' is "
         f"{_short(state.get('explain'))}, not {explain!r}")
    need(state.get("mask_mode") in ("delete", "mask", "edge_weight"),
         f"has mask_mode {_short(state.get('mask_mode'))}, not 'delete', 'mask' or "
         "'edge_weight'")
    for key in ("source_nodes", "source_edges", "position"):
        need(_is_index(state.get(key), None), f"needs a non-negative int {key!r}")
    x, edge_index = t["row.x"], t["row.edge_index"]
    ints = {k: t[f"row.{k}"] for k in ("edge_index", "players", "units", "node_ids",
                                       "edge_ids")}
    for key, tensor in ints.items():
        need(tensor.dtype in _KINDS["int"], f"needs an int 'row.{key}' tensor")
        need(tensor.dim() == (2 if key == "edge_index" else 1),
             f"has a 'row.{key}' tensor of shape {tuple(tensor.shape)}")
        need(tensor.numel() == 0 or int(tensor.min()) >= 0, f"has negative 'row.{key}' entries")
    n, e = int(x.shape[0]) if x.dim() else -1, int(edge_index.shape[-1])
    players, units = ints["players"].long(), ints["units"].long()
    need(x.dim() in (1, 2) and x.dtype in _KINDS["float"], "needs a float (n_nodes[, F]) 'row.x'")
    need(edge_index.shape[0] == 2 and (e == 0 or int(edge_index.max()) < n),
         f"needs a (2, n_edges) 'row.edge_index' with node ids below {n}")
    need(len(ints["node_ids"]) == n and len(ints["edge_ids"]) == e,
         "needs one 'row.node_ids' entry per node and one 'row.edge_ids' entry per edge")
    need(n == 0 or int(ints["node_ids"].max()) < state["source_nodes"],
         "has node ids beyond 'source_nodes'")
    need(e == 0 or int(ints["edge_ids"].max()) < state["source_edges"],
         "has edge ids beyond 'source_edges'")
    need(len(units) == len(players) and (len(players) == 0 or int(players.max()) < (
        e if explain == "edges" else n)), "needs one 'row.units' entry per player, and players "
         "that are edges (or nodes) of the graph")
    need(len(units) == 0 or bool((torch.bincount(units) > 0).all()),
         "has 'row.units' that skip a feature number")
    index = state.get("index")
    need(index is None or _is_index(index, n), f"has an 'index' that is not a node below {n}")
    edge_attr = t.get("row.edge_attr")
    need(edge_attr is None or (edge_attr.dim() >= 1 and edge_attr.shape[0] == e),
         "has a 'row.edge_attr' without one row per edge")
    row = GraphRow(x=x, edge_index=ints["edge_index"].long(), explain=explain, players=players,
                   units=units, index=index, mask_mode=state["mask_mode"], edge_attr=edge_attr,
                   node_ids=ints["node_ids"].long(), edge_ids=ints["edge_ids"].long(),
                   source_nodes=state["source_nodes"], source_edges=state["source_edges"],
                   position=state["position"])
    fs = _GRAPH_KINDS[kind](row)
    need(list(fs.feature_names) == list(state["names"]),
         "has names that differ from those of its graph")
    return fs


def _is_index(value: Any, below: int | None) -> bool:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    return ok and (below is None or value < below)


def _check_strings(folder: Path, key: str, value: Any, n: int | None) -> None:
    """``value`` must be None or a list of str (of length ``n`` when given)."""
    if value is None:
        return
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value) or (
            n is not None and len(value) != n):
        count = "" if n is None else f"{n} "
        _fail(folder, f"'{key}' in {META} must be a list of {count}strings, got "
              f"{_short(value)}")


def _decode(folder: Path, meta: Mapping[str, Any], key: str) -> dict[str, Any]:
    """The JSON object ``meta[key]`` with its arrays and tuples rebuilt."""
    try:
        return dict(from_json(meta[key]))
    except (ValueError, TypeError, AttributeError, KeyError) as err:
        _fail(folder, f"the {key!r} field of {META} holds an array that cannot be rebuilt "
              f"({err})", cause=err)


def _fail(folder: Path, problem: str, fix: str | None = None, *,
          cause: BaseException | None = None) -> NoReturn:
    """Raise InvalidExplanationError: what is wrong with the saved folder, and the fix."""
    fix = fix or ("The files were changed or damaged after Explanation.save(); save the "
                  "explanation again")
    msg = f"Cannot load the Explanation saved at '{folder}': {problem}. {fix}."
    raise InvalidExplanationError(msg) from cause


def _read_meta(folder: Path) -> dict[str, Any]:
    file = folder / META
    if not file.is_file():
        _fail(folder, f"{META} is missing", f"A saved Explanation is a folder with {META} and "
              f"{TENSORS}, as Explanation.save() writes it")
    try:
        meta = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        _fail(folder, f"{META} is not valid JSON ({err})", cause=err)
    except (OSError, UnicodeDecodeError) as err:
        _fail(folder, f"{META} cannot be read ({err})", cause=err)
    if not isinstance(meta, dict):
        _fail(folder, f"{META} holds a JSON {type(meta).__name__}, not an object")
    _check_version(folder, meta.get("format_version"))
    for key, types in _FIELDS[meta["format_version"]].items():
        if key not in meta:
            _fail(folder, f"{META} has no {key!r} field")
        if not isinstance(meta[key], types):
            want = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            _fail(folder, f"the {key!r} field of {META} must be a JSON {want}, got "
                  f"{type(meta[key]).__name__} {_short(meta[key])}")
    if "modality" in meta and meta["modality"] not in MODALITIES:
        _fail(folder, f"the 'modality' field of {META} is {meta['modality']!r}, not one of "
              f"{', '.join(map(repr, MODALITIES))}")
    return meta


def _check_version(folder: Path, version: Any) -> None:
    supported = ", ".join(map(str, SUPPORTED_VERSIONS[:-1])) + f" and {SUPPORTED_VERSIONS[-1]}"
    if version is None:
        _fail(folder, f"{META} has no 'format_version' field")
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        _fail(folder, f"{META} has format_version {version}, but this version of posthoc-xai "
              f"reads format versions {supported} only", "It was written by a newer "
              'posthoc-xai: upgrade it (pip install -U "posthoc-xai") to load this file')
    if version not in SUPPORTED_VERSIONS or isinstance(version, bool):
        _fail(folder, f"{META} has format_version {_short(version)}, but posthoc-xai reads "
              f"format versions {supported}")


def _read_tensors(folder: Path, meta: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    file = folder / TENSORS
    if not file.is_file():
        _fail(folder, f"{TENSORS} is missing", f"A saved Explanation is a folder with {META} and "
              f"{TENSORS}, as Explanation.save() writes it")
    try:
        t = load_file(str(file))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        _fail(folder, f"{TENSORS} is not a readable safetensors file ({err})", cause=err)
    for key in ("values", "target"):
        if key not in t:
            _fail(folder, f"{TENSORS} has no {key!r} tensor")
    prefixes = ("extras.", "features.", "inputs.", "inputs_static.") \
        if meta["format_version"] >= 3 else ("extras.",)
    unknown = sorted(k for k in t if k not in {"values", "target", *_OPTIONAL}
                     and not k.startswith(prefixes))
    if unknown:
        _fail(folder, f"{TENSORS} has unexpected tensors {', '.join(map(repr, unknown))}")
    kinds = {"values": "float", "target": "int", **_OPTIONAL}
    for key, kind in kinds.items():
        if key in t and t[key].dtype not in _KINDS[kind]:
            _fail(folder, f"the {key!r} tensor in {TENSORS} has dtype "
                  f"{str(t[key].dtype).removeprefix('torch.')}, but it must be {kind}")
    written = meta.get("dtypes")
    if written is not None:
        _check_written_dtypes(folder, written, t)
    if "target" in t:
        t["target"] = t["target"].long()
    return t


def _check_written_dtypes(folder: Path, written: Any, t: Mapping[str, torch.Tensor]) -> None:
    if not isinstance(written, dict):
        _fail(folder, f"the 'dtypes' field of {META} must be a JSON object")
    if set(written) != set(t):
        _fail(folder, f"{META} lists the tensors {sorted(written)}, but {TENSORS} holds "
              f"{sorted(t)}")
    for key, tensor in t.items():
        dtype = str(tensor.dtype).removeprefix("torch.")
        if written[key] != dtype:
            _fail(folder, f"the {key!r} tensor in {TENSORS} has dtype {dtype}, but "
                  f"{written[key]!r} was written")


def _check_consistency(folder: Path, meta: Mapping[str, Any],
                       t: Mapping[str, torch.Tensor]) -> None:
    """Every tensor and name list against the shape of ``values``."""
    v = t["values"]
    if v.dim() != 3:
        _fail(folder, f"'values' has shape {tuple(v.shape)}, not (n_examples, n_outputs, "
              "n_features)")
    n, o, f = v.shape
    shapes = {"target": (n, o), "predictions": (n, o), "base_values": (n, o),
              "feature_mask": (n, f)}
    for key, shape in shapes.items():
        if key in t and tuple(t[key].shape) != shape:
            _fail(folder, f"{key!r} has shape {tuple(t[key].shape)}, but 'values' of shape "
                  f"{(n, o, f)} needs {shape}")
    if "target_scores" in t and (t["target_scores"].dim() != 2 or t["target_scores"].shape[0] != n):
        _fail(folder, f"'target_scores' has shape {tuple(t['target_scores'].shape)}, but "
              f"'values' of shape {(n, o, f)} needs ({n}, n_model_outputs)")
    mask = t.get("feature_mask")
    widths = [f] * n if mask is None else [int(m.sum()) for m in mask]
    if meta["format_version"] >= 3:
        states = meta["features"]
        if len(states) != n:
            _fail(folder, f"{META} has {len(states)} 'features', but 'values' has {n} examples")
        for i, state in enumerate(states):
            if not isinstance(state, dict) or not isinstance(state.get("kind"), str):
                _fail(folder, f"features[{i}] in {META} must be an object with a 'kind', got "
                      f"{_short(state)}")
        names = [state.get("names") for state in states]
        _check_str_lists(folder, "names", names, widths, "the example's real features",
                         key_format="features[{i}].names")
    else:
        _check_str_lists(folder, "names", meta["names"], widths, "the example's real features")
        texts = meta["texts"]
        if texts is not None and (len(texts) != n or not all(isinstance(s, str) for s in texts)):
            _fail(folder, f"'texts' must be a list of {n} strings (one per example), got "
                  f"{_short(texts)}")
    _check_str_lists(folder, "target_names", meta["target_names"], [o] * n,
                     "the explained outputs")


def _check_str_lists(folder: Path, key: str, lists: list[Any], lengths: list[int],
                     what: str, *, key_format: str = "{key}[{i}]") -> None:
    """``lists`` must hold one list of str per example, of the given lengths."""
    if len(lists) != len(lengths):
        _fail(folder, f"{META} has {len(lists)} {key!r} lists, but 'values' has "
              f"{len(lengths)} examples")
    for i, (names, length) in enumerate(zip(lists, lengths, strict=True)):
        where = key_format.format(key=key, i=i)
        if not isinstance(names, list) or not all(isinstance(s, str) for s in names):
            _fail(folder, f"{where} in {META} must be a list of strings, got {_short(names)}")
        if len(names) != length:
            _fail(folder, f"{where} in {META} has {len(names)} names, but example {i} has "
                  f"{length} ({what})")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
