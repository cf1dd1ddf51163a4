"""Input normalisation and feature spaces shared by the tensor/tabular adapters."""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..exceptions import InvalidInputError, InvalidParameterError
from ..features.groups import resolve_groups, resolve_shared_groups
from ..features.tensor import MultiTensorFeatures, TensorFeatures
from ._base import Batch

__all__ = ["attach_forward_args", "is_multi_input", "prepare_tabular", "tabular_features",
           "to_tensor"]


def _is_dataframe(obj: Any) -> bool:
    return type(obj).__name__ == "DataFrame" and hasattr(obj, "columns")


def _is_text(obj: Any) -> bool:
    if isinstance(obj, str):
        return True
    return isinstance(obj, list | tuple) and len(obj) > 0 and all(isinstance(t, str) for t in obj)


def _error(msg: str, *, name: str, value: Any, owner: str | None) -> Exception:
    """InvalidInputError for 'inputs'; InvalidParameterError for a parameter of ``owner``."""
    if owner is None:
        return InvalidInputError(msg, parameter=name, value=value)
    return InvalidParameterError(msg, owner=owner, parameter=name, value=value)


def _preview(names: Sequence[str]) -> str:
    shown = list(names[:10])
    return f"{shown}"[:-1] + (f", ... ({len(names)} in all)]" if len(names) > 10 else "]")


def _frame_values(
    frame: Any, *, name: str, columns: Sequence[str] | None, expected_by: str,
    owner: str | None,
) -> tuple[np.ndarray, tuple[str, ...]]:
    """A numeric DataFrame as float64 values; with ``columns``, put in that order by name."""
    names = [str(c) for c in frame.columns]
    dup = sorted(c for c, k in Counter(names).items() if k > 1)
    if dup:
        msg = (f"The {name!r} DataFrame has duplicate column names {_preview(dup)}, so its "
               "columns cannot be matched to features by name. Give every column a unique name "
               "(or drop the repeats: frame.loc[:, ~frame.columns.duplicated()]).")
        raise _error(msg, name=name, value=dup, owner=owner)
    if columns is not None and names != list(columns):
        position = {c: i for i, c in enumerate(names)}
        missing = [c for c in columns if c not in position]
        unexpected = [c for c in names if c not in set(columns)]
        if missing or unexpected:
            parts = ([f"missing {_preview(missing)}"] if missing else []) + (
                [f"unexpected {_preview(unexpected)}"] if unexpected else [])
            msg = (f"The {name!r} DataFrame does not match the columns {expected_by}: "
                   f"{'; '.join(parts)}. Columns are matched by name, in any order: pass a "
                   f"DataFrame with exactly the columns {_preview(list(columns))}.")
            raise _error(msg, name=name, value={"missing": missing, "unexpected": unexpected},
                         owner=owner)
        frame = frame.iloc[:, [position[c] for c in columns]]
        names = list(columns)
    from pandas.api.types import is_bool_dtype, is_complex_dtype, is_numeric_dtype  # np.issubdtype
    # fails on pandas extension dtypes (StringDtype, the default for str columns in pandas 3)
    bad = [c for c, dt in zip(names, frame.dtypes, strict=True)
           if not (is_numeric_dtype(dt) or is_bool_dtype(dt)) or is_complex_dtype(dt)]
    if bad:
        msg = (f"The {name!r} DataFrame has non-numeric columns {bad}. Encode them as numbers "
               "(for example with pandas.factorize or an OrdinalEncoder) before explaining.")
        raise _error(msg, name=name, value=bad, owner=owner)
    return frame.to_numpy(dtype=np.float64), tuple(names)


def to_tensor(
    obj: Any, *, name: str = "inputs", columns: Sequence[str] | None = None,
    expected_by: str = "the model expects", owner: str | None = None,
) -> tuple[torch.Tensor, tuple[str, ...] | None]:
    """Any array-like to a CPU tensor, plus DataFrame column names.

    Floating point becomes float32; bool arrays and tensors stay bool, and integer torch tensors
    keep their dtype (token ids for an embedding lookup); integer numpy arrays and DataFrames
    become float32 as before (tabular data stored as ints is still numeric data).

    Parameters
    ----------
    obj : array-like, tensor or DataFrame
    name : str, default="inputs"
        What ``obj`` is, for the messages ("inputs", "baseline", "background").
    columns : sequence of str, optional
        The feature names the model knows. A DataFrame is reordered to them by name; missing or
        unexpected columns are an error. Arrays and tensors are taken as they are.
    expected_by : str
        Completes "does not match the columns ..." in the message for mismatched columns.
    owner : str, optional
        When given, errors are InvalidParameterError of ``owner``'s parameter ``name``;
        otherwise InvalidInputError.
    """
    frame_columns: tuple[str, ...] | None = None
    if _is_dataframe(obj):
        obj, frame_columns = _frame_values(obj, name=name, columns=columns,
                                           expected_by=expected_by, owner=owner)
    if isinstance(obj, torch.Tensor):
        tensor = obj.detach().cpu()
    else:
        try:
            arr = np.asarray(obj)
            if arr.dtype.kind not in "cb":
                arr = arr.astype(np.float64)
        except (TypeError, ValueError) as err:
            msg = (f"The {name!r} could not be converted to a numeric array ({err}). Pass a "
                   "numpy array, a tensor or a numeric DataFrame.")
            raise _error(msg, name=name, value=type(obj).__name__, owner=owner) from err
        tensor = torch.from_numpy(arr)
    if not (tensor.is_floating_point() or tensor.dtype in _INTEGERS):
        msg = (f"The {name!r} must hold real numbers. Got dtype {tensor.dtype} instead."
               + (" Pass the part to explain explicitly, e.g. x.real or x.abs()."
                  if tensor.is_complex() else ""))
        raise _error(msg, name=name, value=str(tensor.dtype), owner=owner)
    if tensor.is_floating_point():
        tensor = tensor.to(torch.float32)
    return tensor, frame_columns


_INTEGERS = (torch.bool, torch.int32, torch.int64, torch.int16, torch.int8, torch.uint8)


def prepare_tabular(
    inputs: Any,
    *,
    model_name: str,
    n_features: int | None = None,
    columns: Sequence[str] | None = None,
    exact_2d: bool = True,
    name: str = "inputs",
    owner: str | None = None,
    several: bool = False,
) -> Batch:
    """Validate array-like inputs for a model that takes a numeric matrix (or tensor batch).

    ``columns`` are the feature names the model knows: DataFrames are aligned to them by name and
    arrays are named by them (their width must then match). ``name`` and ``owner`` say what is
    validated when it is not the 'inputs' (an adapter's ``background``). With ``several``, a
    tuple of tensors or arrays is several attributed inputs (``model(x1, x2, ...)``).
    """
    if _is_text(inputs):
        msg = (f"{model_name} takes numeric inputs, but {name!r} is text ({inputs!r:.60}). Pass a "
               "numeric array or DataFrame, or wrap a text model with its tokenizer: "
               "xai.explain((model, tokenizer), texts).")
        raise _error(msg, name=name, value=inputs, owner=owner)
    if is_multi_input(inputs):
        if name != "inputs" or len(inputs) < 2 or not several:
            takes = ("a torch module or function can take several" if name == "inputs"
                     and len(inputs) > 1 else "it must be one array shaped like one input")
            msg = (f"The {name!r} is a tuple of {len(inputs)} arrays, but {model_name} takes one "
                   f"input matrix ({takes}). Pass one array.")
            raise _error(msg, name=name, value=len(inputs), owner=owner)
        return _prepare_parts(inputs, model_name=model_name, columns=columns)
    if columns is not None:
        columns = tuple(str(c) for c in columns)
        n_features = len(columns) if n_features is None else n_features
    x, cols = to_tensor(inputs, name=name, columns=columns, owner=owner,
                        expected_by=f"{model_name} expects")
    _check_matrix(x, name=name, model_name=model_name, n_features=n_features,
                  exact_2d=exact_2d, owner=owner)
    return Batch({"inputs": x}, columns=columns if columns is not None else cols)


def is_multi_input(inputs: Any) -> bool:
    """A tuple of tensors or arrays with a batch dimension (``model(x1, x2, ...)``); a tuple
    of numbers or of 1-d rows is one matrix, as before."""
    return isinstance(inputs, tuple) and len(inputs) > 0 and all(
        isinstance(p, torch.Tensor | np.ndarray) and p.ndim >= 2 for p in inputs)


def _prepare_parts(inputs: tuple[Any, ...], *, model_name: str,
                   columns: Sequence[str] | None) -> Batch:
    """Several attributed tensors, each (n, ...), the same n."""
    if columns is not None:
        msg = (f"{model_name} takes {len(inputs)} input tensors, but the adapter was given "
               "'feature_names' for one input matrix. Drop feature_names, or pass one matrix.")
        raise InvalidInputError(msg, parameter="inputs", value=len(inputs))
    parts = []
    for k, part in enumerate(inputs):
        x, _ = to_tensor(part, name=f"inputs[{k}]")
        _check_matrix(x, name=f"inputs[{k}]", model_name=model_name, n_features=None,
                      exact_2d=False, owner=None)
        parts.append(x)
    rows = [p.shape[0] for p in parts]
    if len(set(rows)) != 1:
        msg = (f"The input tensors have different numbers of rows {rows}; each holds one row "
               "per example. Pass tensors with the same first dimension.")
        raise InvalidInputError(msg, parameter="inputs", value=rows)
    return Batch({("inputs" if k == 0 else f"inputs_{k}"): p for k, p in enumerate(parts)})


def attach_forward_args(batch: Batch, forward_args: Any) -> Batch:
    """``batch`` with the model's non-attributed arguments: a tensor or array whose first
    dimension is the number of examples is split row by row with them (as captum's
    ``additional_forward_args``); anything else is passed unchanged to every call."""
    if forward_args is None:
        return batch
    args = forward_args if isinstance(forward_args, tuple) else (forward_args,)
    n = len(batch)
    tensors, static = dict(batch.tensors), []
    for j, arg in enumerate(args):
        if isinstance(arg, np.ndarray):
            arg = torch.from_numpy(arg)
        if isinstance(arg, torch.Tensor) and arg.dim() >= 1 and arg.shape[0] == n:
            tensors[f"args_{j}"] = arg.detach().cpu()
        else:
            static.append((j, arg))
    return dataclasses.replace(batch, tensors=tensors, static_args=tuple(static))


def _verb(name: str, plural: str) -> str:
    """'inputs' are plural, 'background' and 'baseline' singular."""
    if name == "inputs":
        return plural
    return {"have": "has"}.get(plural, plural + "s")


def _check_matrix(x: torch.Tensor, *, name: str, model_name: str, n_features: int | None,
                  exact_2d: bool, owner: str | None) -> None:
    if x.dim() < 2 or (exact_2d and x.dim() != 2):
        msg = (f"Expected {name} with 2 dimensions (n_examples, n_features), got shape "
               f"{tuple(x.shape)}. Use x.reshape(1, -1) for a single example.")
        raise _error(msg, name=name, value=tuple(x.shape), owner=owner)
    if x.shape[0] == 0:
        msg = f"The {name!r} batch is empty (0 examples). Pass at least one example."
        raise _error(msg, name=name, value=tuple(x.shape), owner=owner)
    bad = ~torch.isfinite(x)
    if bool(bad.any()):
        where = [tuple(int(i) for i in w) for w in bad.nonzero()[:3]]
        msg = (f"The {name!r} {_verb(name, 'contain')} NaN or infinite values "
               f"({int(bad.sum())} of them, first at "
               f"positions {where}). Impute or drop them before explaining.")
        raise _error(msg, name=name, value=where, owner=owner)
    if n_features is not None and x.shape[1] != n_features:
        msg = (f"The {name!r} {_verb(name, 'have')} {x.shape[1]} features, but {model_name} "
               f"expects {n_features}. "
               f"Pass {name} of shape (n_examples, {n_features}).")
        raise _error(msg, name=name, value=tuple(x.shape), owner=owner)


def resolve_tensor_baseline(
    baseline: Any, x_shape: torch.Size, *, owner: str, background: torch.Tensor | None,
    columns: Sequence[str] | None = None, n: int = 1,
) -> torch.Tensor:
    """A baseline spec as a tensor of shape (1, *x_shape) (one row for every example) or
    (n, *x_shape) (one row per example, paired with it).

    "zeros" and a number fill one row; "mean" is the mean row of the adapter's ``background``
    (a background set is averaged, never paired); an array is one example's shape, one row
    (1, *x_shape), or one row per example (n, *x_shape). A DataFrame baseline is aligned to
    ``columns`` (the inputs' feature names) by name. A baseline with NaN or inf, or of any
    other shape, is refused here, before any model call could be blamed for it.
    """
    shape = tuple(x_shape)
    if isinstance(baseline, str):
        if baseline in ("auto", "zeros"):
            return torch.zeros((1, *shape))
        if baseline == "mean":
            if background is None:
                msg = (f"The 'baseline' parameter of {owner} is 'mean', but the model has no "
                       "background data attached. Pass adapter_options={'background': X_train} "
                       "(its mean row is the baseline), or a baseline row.")
                raise InvalidParameterError(msg, owner=owner, parameter="baseline", value=baseline)
            return background.mean(0, keepdim=True)
        msg = (f"The 'baseline' parameter of {owner} must be 'zeros', 'mean', a number or an "
               f"array for numeric inputs. Got {baseline!r} instead.")
        raise InvalidParameterError(msg, owner=owner, parameter="baseline", value=baseline)
    if isinstance(baseline, numbers.Real) and not isinstance(baseline, bool):
        if not math.isfinite(float(baseline)):
            msg = (f"The 'baseline' parameter of {owner} must be a finite number or array. Got "
                   f"{float(baseline)} instead. Use baseline='zeros', 'mean' or a finite value.")
            raise InvalidParameterError(msg, owner=owner, parameter="baseline", value=baseline)
        return torch.full((1, *shape), float(baseline))
    base, _ = to_tensor(baseline, name="baseline", columns=columns, owner=owner,
                        expected_by="of the explained inputs")
    bad = ~torch.isfinite(base)
    if bool(bad.any()):
        where = [tuple(int(i) for i in w) for w in bad.nonzero()[:3]]
        msg = (f"The 'baseline' parameter of {owner} contains NaN or infinite values "
               f"({int(bad.sum())} of them, first at positions {where}). Pass a finite baseline "
               "(impute the missing values), or use baseline='zeros' or 'mean'.")
        raise InvalidParameterError(msg, owner=owner, parameter="baseline", value=where)
    if tuple(base.shape) == shape:
        return base.unsqueeze(0)
    if tuple(base.shape) in ((1, *shape), (n, *shape)):
        return base
    rows = (f"{base.shape[0]} rows" if base.dim() == len(shape) + 1
            and tuple(base.shape[1:]) == shape else f"shape {tuple(base.shape)}")
    dims = ", ".join(map(str, shape))
    msg = (f"The 'baseline' parameter of {owner} has {rows}, but the inputs are {n} "
           f"example(s) of shape {shape}. Pass one row ({shape} or (1, {dims}), used for every "
           f"example) or one row per example (({n}, {dims}), paired row by row). To average a "
           "background set, pass it as adapter_options={'background': rows} with "
           "baseline='mean'.")
    raise InvalidParameterError(msg, owner=owner, parameter="baseline", value=tuple(base.shape))


def tabular_features(
    batch: Batch,
    *,
    baseline: Any,
    owner: str,
    background: torch.Tensor | None = None,
    groups: Any = None,
) -> tuple[TensorFeatures | MultiTensorFeatures, ...]:
    """One feature space per row, removing features towards the baseline (shared, or paired
    with the row) in groups when ``groups`` is given (see :func:`resolve_groups`); several
    attributed tensors give :class:`MultiTensorFeatures`."""
    if len(batch.input_keys()) > 1:
        return _multi_features(batch, baseline=baseline, owner=owner, groups=groups)
    x = batch.inputs
    n = x.shape[0]
    base = _cast_baseline(resolve_tensor_baseline(
        baseline, x.shape[1:], owner=owner, background=background, columns=batch.columns, n=n),
        x, owner)
    resolved: Sequence[tuple[torch.Tensor | None, Sequence[str] | None]] = resolve_groups(
        groups, n=n, shape=x.shape[1:], columns=batch.columns, owner=owner) or \
        [(None, batch.columns)] * n
    return tuple(
        TensorFeatures(x[i], base[i % base.shape[0]], feature_mask=ids, names=names,
                       columns=batch.columns, context=batch.context(i))
        for i, (ids, names) in enumerate(resolved))


def _cast_baseline(base: torch.Tensor, x: torch.Tensor, owner: str) -> torch.Tensor:
    """The baseline in the inputs' dtype; for bool or integer inputs its values must be exact
    (False/True, whole numbers), never silently truncated."""
    if x.is_floating_point() or base.dtype == x.dtype:
        return base.to(x.dtype)
    cast = base.to(x.dtype)
    if not torch.equal(cast.to(base.dtype), base):
        kind = "True/False" if x.dtype == torch.bool else "whole numbers"
        msg = (f"The 'baseline' parameter of {owner} holds values that are not {kind}, but the "
               f"inputs are {str(x.dtype).removeprefix('torch.')}. Pass a baseline of the "
               "inputs' dtype (the default 'zeros' removes a feature as False or 0).")
        raise InvalidParameterError(msg, owner=owner, parameter="baseline",
                                    value=str(base.dtype))
    return cast


def _multi_features(batch: Batch, *, baseline: Any, owner: str,
                    groups: Any) -> tuple[MultiTensorFeatures, ...]:
    """Features over several attributed tensors: baselines one per input (a tuple), ids shared
    across inputs (a tuple of group masks, captum's convention)."""
    xs = batch.attributed()
    n, k = len(batch), len(xs)
    bases = baseline if isinstance(baseline, tuple) else (baseline,) * k
    if len(bases) != k:
        msg = (f"The 'baseline' parameter of {owner} is a tuple of {len(bases)}, but the model "
               f"takes {k} input tensors. Pass one baseline per input, or one for all.")
        raise InvalidParameterError(msg, owner=owner, parameter="baseline", value=len(bases))
    resolved = [_cast_baseline(resolve_tensor_baseline(b, x.shape[1:], owner=owner,
                                                       background=None, n=n), x, owner)
                for b, x in zip(bases, xs, strict=True)]
    masks = resolve_shared_groups(groups, n=n, shapes=[x.shape[1:] for x in xs], owner=owner)
    return tuple(
        MultiTensorFeatures([x[i] for x in xs], [b[i % b.shape[0]] for b in resolved],
                            feature_masks=None if masks is None else [m[i % m.shape[0]]
                                                                      for m in masks],
                            context=batch.context(i))
        for i in range(n))
