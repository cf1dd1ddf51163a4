"""Input normalisation and feature spaces shared by the tensor/tabular adapters."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..exceptions import InvalidInputError, InvalidParameterError
from ..features.tensor import TensorFeatures
from ._base import Batch

__all__ = ["prepare_tabular", "tabular_features", "to_tensor"]


def _is_dataframe(obj: Any) -> bool:
    return type(obj).__name__ == "DataFrame" and hasattr(obj, "columns")


def _is_text(obj: Any) -> bool:
    if isinstance(obj, str):
        return True
    return isinstance(obj, list | tuple) and len(obj) > 0 and all(isinstance(t, str) for t in obj)


def to_tensor(obj: Any, *, name: str = "inputs") -> tuple[torch.Tensor, tuple[str, ...] | None]:
    """Any array-like to a float32 CPU tensor, plus DataFrame column names."""
    columns: tuple[str, ...] | None = None
    if _is_dataframe(obj):
        columns = tuple(str(c) for c in obj.columns)
        from pandas.api.types import is_bool_dtype, is_numeric_dtype  # np.issubdtype fails on
        # pandas extension dtypes (StringDtype, the default for str columns in pandas 3)
        bad = [c for c, dt in zip(columns, obj.dtypes, strict=True)
               if not (is_numeric_dtype(dt) or is_bool_dtype(dt))]
        if bad:
            msg = (f"The {name!r} DataFrame has non-numeric columns {bad}. Encode them as numbers "
                   "(for example with pandas.factorize or an OrdinalEncoder) before explaining.")
            raise InvalidInputError(msg, parameter=name, value=bad)
        obj = obj.to_numpy(dtype=np.float64)
    if isinstance(obj, torch.Tensor):
        tensor = obj.detach().cpu()
    else:
        try:
            tensor = torch.from_numpy(np.array(obj, dtype=np.float64))
        except (TypeError, ValueError) as err:
            msg = (f"The {name!r} could not be converted to a numeric array ({err}). Pass a "
                   "numpy array, a tensor or a numeric DataFrame.")
            raise InvalidInputError(msg, parameter=name, value=type(obj).__name__) from err
    if not (tensor.is_floating_point() or tensor.dtype in (torch.bool, torch.int32, torch.int64,
                                                           torch.int16, torch.int8, torch.uint8)):
        msg = f"The {name!r} must hold real numbers. Got dtype {tensor.dtype} instead."
        raise InvalidInputError(msg, parameter=name, value=str(tensor.dtype))
    return tensor.to(torch.float32), columns


def prepare_tabular(
    inputs: Any,
    *,
    model_name: str,
    n_features: int | None = None,
    columns: Sequence[str] | None = None,
    exact_2d: bool = True,
) -> Batch:
    """Validate array-like inputs for a model that takes a numeric matrix (or tensor batch)."""
    if _is_text(inputs):
        msg = (f"{model_name} takes numeric inputs, but 'inputs' is text ({inputs!r:.60}). Pass a "
               "numeric array or DataFrame, or wrap a text model with its tokenizer: "
               "xai.explain((model, tokenizer), texts).")
        raise InvalidInputError(msg, value=inputs)
    x, cols = to_tensor(inputs)
    if x.dim() < 2 or (exact_2d and x.dim() != 2):
        msg = (f"Expected inputs with 2 dimensions (n_examples, n_features), got shape "
               f"{tuple(x.shape)}. Use x.reshape(1, -1) for a single example.")
        raise InvalidInputError(msg, value=tuple(x.shape))
    if x.shape[0] == 0:
        msg = "The 'inputs' batch is empty (0 examples). Pass at least one example."
        raise InvalidInputError(msg, value=tuple(x.shape))
    bad = ~torch.isfinite(x)
    if bool(bad.any()):
        where = [tuple(int(i) for i in w) for w in bad.nonzero()[:3]]
        msg = (f"The 'inputs' contain NaN or infinite values ({int(bad.sum())} of them, first at "
               f"positions {where}). Impute or drop them before explaining.")
        raise InvalidInputError(msg, value=where)
    if n_features is not None and x.shape[1] != n_features:
        msg = (f"The 'inputs' have {x.shape[1]} features, but {model_name} expects {n_features}. "
               f"Pass inputs of shape (n_examples, {n_features}).")
        raise InvalidInputError(msg, value=tuple(x.shape))
    if columns is not None:
        cols = tuple(str(c) for c in columns) if cols is None else cols
    return Batch({"inputs": x}, columns=cols)


def resolve_tensor_baseline(
    baseline: Any, x_shape: torch.Size, *, owner: str, background: torch.Tensor | None
) -> torch.Tensor:
    """A baseline spec ("zeros", "mean", a number, an array) as a tensor of one example's shape."""
    if isinstance(baseline, str):
        if baseline in ("auto", "zeros"):
            return torch.zeros(x_shape)
        if baseline == "mean":
            if background is None:
                msg = (f"The 'baseline' parameter of {owner} is 'mean', but the model has no "
                       "training data attached. Pass baseline=X_train (its mean is used) or "
                       "adapter_options={'background': X_train}.")
                raise InvalidParameterError(msg, owner=owner, parameter="baseline", value=baseline)
            return background.mean(0)
        msg = (f"The 'baseline' parameter of {owner} must be 'zeros', 'mean', a number or an "
               f"array for numeric inputs. Got {baseline!r} instead.")
        raise InvalidParameterError(msg, owner=owner, parameter="baseline", value=baseline)
    if isinstance(baseline, numbers.Real) and not isinstance(baseline, bool):
        return torch.full(x_shape, float(baseline))
    base, _ = to_tensor(baseline, name="baseline")
    if tuple(base.shape) == tuple(x_shape):
        return base
    if base.dim() == len(x_shape) + 1 and tuple(base.shape[1:]) == tuple(x_shape):
        return base.mean(0)
    msg = (f"The 'baseline' parameter of {owner} has shape {tuple(base.shape)}, but one example "
           f"has shape {tuple(x_shape)}. Pass a baseline of shape {tuple(x_shape)} or "
           f"(n_rows, {', '.join(map(str, x_shape))}) (its mean over rows is used).")
    raise InvalidParameterError(msg, owner=owner, parameter="baseline", value=tuple(base.shape))


def tabular_features(
    batch: Batch,
    *,
    baseline: Any,
    owner: str,
    background: torch.Tensor | None = None,
    feature_mask: torch.Tensor | None = None,
) -> tuple[TensorFeatures, ...]:
    """One TensorFeatures per row, all removing features towards the same baseline."""
    x = batch.inputs
    base = resolve_tensor_baseline(baseline, x.shape[1:], owner=owner, background=background)
    names = batch.columns if feature_mask is None and batch.columns else None
    return tuple(
        TensorFeatures(x[i], base, feature_mask=feature_mask, names=names, columns=batch.columns)
        for i in range(x.shape[0])
    )
