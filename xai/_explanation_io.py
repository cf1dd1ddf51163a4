"""Saving and loading an Explanation: ``explanation.json`` (metadata) + ``values.safetensors``.

Everything read back is validated: the format version, the type of every metadata field, the
dtype and shape of every tensor, and the name lists against ``values``. A damaged or tampered
folder raises :class:`~xai.exceptions.InvalidExplanationError` naming the file and the problem; a
folder that does not exist raises :class:`FileNotFoundError`.

Format versions: 1 (arrays in ``params``/``extras`` stored as plain lists) and 2 (arrays keep
their dtype and shape, tuples stay tuples, tensor dtypes are recorded, ``target.scores`` saved).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np
import torch

from ._capabilities import MODALITIES
from .exceptions import InvalidExplanationError

if TYPE_CHECKING:
    from .explanation import Explanation

__all__ = ["FORMAT_VERSION", "SUPPORTED_VERSIONS", "load_explanation", "save_explanation"]

FORMAT_VERSION = 2
SUPPORTED_VERSIONS = (1, 2)
META, TENSORS = "explanation.json", "values.safetensors"
#: Optional per-example tensors and the dtype kind each must have.
_OPTIONAL = {"predictions": "float", "base_values": "float", "feature_mask": "bool",
             "target_scores": "float"}
_KINDS = {"float": (torch.float16, torch.bfloat16, torch.float32, torch.float64),
          "int": (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8),
          "bool": (torch.bool,)}
#: Metadata fields: the JSON types each may have ("str list" = list of lists of str).
_FIELDS: dict[str, tuple[type, ...]] = {
    "method": (str,), "params": (dict,), "names": (list,), "target_names": (list,),
    "model_info": (dict,), "multiply_by_inputs": (bool,), "modality": (str,),
    "texts": (list, type(None)), "extras": (dict,)}


# -- save --------------------------------------------------------------------------------------
def save_explanation(exp: Explanation, path: str | os.PathLike[str]) -> None:
    """Write ``path/explanation.json`` and ``path/values.safetensors`` (format version 2)."""
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
    # clone: safetensors refuses tensors that share memory (a view of values in extras)
    tensors = {k: v.detach().cpu().clone().contiguous() for k, v in fields.items()
               if v is not None}
    save_file(tensors, str(folder / TENSORS))
    meta = {
        "format_version": FORMAT_VERSION, "method": exp.method,
        "params": jsonable(exp.params), "names": [list(n) for n in exp.names],
        "target_names": [list(n) for n in exp.target.names],
        "model_info": jsonable(exp.model_info), "multiply_by_inputs": exp.multiply_by_inputs,
        "modality": exp.modality, "texts": None if exp.texts is None else list(exp.texts),
        "extras": jsonable(extras_json),
        "dtypes": {k: str(v.dtype).removeprefix("torch.") for k, v in tensors.items()},
    }
    (folder / META).write_text(json.dumps(meta, indent=2))


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
    """Read and validate what :func:`save_explanation` wrote."""
    from .explanation import ResolvedTarget

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
    params, extras, info = (_decode(folder, meta, k) for k in ("params", "extras", "model_info"))
    extras.update({k[len("extras."):]: v for k, v in t.items() if k.startswith("extras.")})
    try:
        return cls(
            values=t["values"], target=ResolvedTarget(
                t["target"], tuple(tuple(n) for n in meta["target_names"]),
                t.get("target_scores")),
            method=meta["method"], params=params, names=tuple(tuple(n) for n in meta["names"]),
            feature_mask=t.get("feature_mask"), predictions=t.get("predictions"),
            base_values=t.get("base_values"), extras=extras, model_info=info,
            multiply_by_inputs=meta["multiply_by_inputs"], modality=meta["modality"],
            texts=None if meta["texts"] is None else tuple(meta["texts"]))
    except InvalidExplanationError as err:
        _fail(folder, str(err).rstrip("."), cause=err)


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
    for key, types in _FIELDS.items():
        if key not in meta:
            _fail(folder, f"{META} has no {key!r} field")
        if not isinstance(meta[key], types):
            want = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            _fail(folder, f"the {key!r} field of {META} must be a JSON {want}, got "
                  f"{type(meta[key]).__name__} {_short(meta[key])}")
    if meta["modality"] not in MODALITIES:
        _fail(folder, f"the 'modality' field of {META} is {meta['modality']!r}, not one of "
              f"{', '.join(map(repr, MODALITIES))}")
    return meta


def _check_version(folder: Path, version: Any) -> None:
    supported = " and ".join(map(str, SUPPORTED_VERSIONS))
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
    unknown = sorted(k for k in t if k not in {"values", "target", *_OPTIONAL}
                     and not k.startswith("extras."))
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
    _check_str_lists(folder, "names", meta["names"], widths, "the example's real features")
    _check_str_lists(folder, "target_names", meta["target_names"], [o] * n,
                     "the explained outputs")
    texts = meta["texts"]
    if texts is not None and (len(texts) != n or not all(isinstance(s, str) for s in texts)):
        _fail(folder, f"'texts' must be a list of {n} strings (one per example), got "
              f"{_short(texts)}")


def _check_str_lists(folder: Path, key: str, lists: list[Any], lengths: list[int],
                     what: str) -> None:
    """``lists`` must hold one list of str per example, of the given lengths."""
    if len(lists) != len(lengths):
        _fail(folder, f"{META} has {len(lists)} {key!r} lists, but 'values' has "
              f"{len(lengths)} examples")
    for i, (names, length) in enumerate(zip(lists, lengths, strict=True)):
        if not isinstance(names, list) or not all(isinstance(s, str) for s in names):
            _fail(folder, f"{key}[{i}] in {META} must be a list of strings, got {_short(names)}")
        if len(names) != length:
            _fail(folder, f"{key}[{i}] in {META} has {len(names)} names, but example {i} has "
                  f"{length} ({what})")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
