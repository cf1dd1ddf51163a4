"""Turn a user's ``target`` into explicit output indices per example."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ._records import ResolvedTarget
from .adapters._base import ModelAdapter
from .exceptions import InvalidTargetError

__all__ = ["resolve_target"]


def resolve_target(adapter: ModelAdapter, scores: torch.Tensor, target: Any) -> ResolvedTarget:
    """Resolve ``target`` against the model's scores (n_examples, n_outputs_of_model).

    Accepts None, "predicted", "all", an int, a class label, or one int/label per example.
    """
    if isinstance(target, ResolvedTarget):
        return ResolvedTarget(target.indices, target.names, scores)
    target = _from_array(target)
    n, n_out = scores.shape
    names = adapter.output_names()
    if names is not None and len(names) != n_out:
        names = None  # the declared names do not describe this output; fall back to indices
    if target is None:
        if n_out == 1:
            target = 0
        elif adapter.is_classifier():
            target = "predicted"
        else:
            msg = (f"The model has {n_out} outputs and no class labels, so target=None is "
                   f"ambiguous. Pass target=<index in 0-{n_out - 1}>, a list of indices, or 'all'.")
            raise InvalidTargetError(msg, value=None)
    if isinstance(target, str) and target == "predicted":
        idx = scores.argmax(dim=1, keepdim=True)
    elif isinstance(target, str) and target == "all":
        idx = torch.arange(n_out).expand(n, n_out).clone()
    elif _is_scalar(target):
        idx = torch.full((n, 1), _one(target, names, n_out), dtype=torch.long)
    elif isinstance(target, Sequence):
        items = list(target)
        if len(items) != n:
            msg = (f"The 'target' list has {len(items)} entries, but there are {n} examples. "
                   "Pass one target per example, or a single int or label for all.")
            raise InvalidTargetError(msg, value=target)
        idx = torch.tensor([[_one(t, names, n_out)] for t in items], dtype=torch.long)
    else:
        msg = (f"The 'target' parameter must be an int, a class label, a list with one per "
               f"example, 'predicted', 'all' or None. Got {target!r:.80} ({type(target).__name__}) "
               "instead.")
        raise InvalidTargetError(msg, value=target)
    labels = tuple(tuple(_label(int(i), names) for i in row) for row in idx)
    return ResolvedTarget(idx, labels, scores)


def _from_array(target: Any) -> Any:
    """A tensor or numpy target as the int (0-d) or list (1-d) it holds; refuse non-integers.

    Arrays of str labels (numpy dtype ``<U``) become lists of str.
    """
    if isinstance(target, torch.Tensor):
        kind, fix = "tensor", "target.long()"
        ok = not (target.is_floating_point() or target.is_complex() or target.dtype == torch.bool)
        ndim = target.dim()
        if ok:
            target = target.detach().cpu()
    elif isinstance(target, np.ndarray | np.generic) and not isinstance(target, np.integer):
        kind = "array" if isinstance(target, np.ndarray) else "numpy scalar"
        fix = "target.astype(int)" if kind == "array" else "int(target)"
        ok, ndim = target.dtype.kind in "iuUSO", target.ndim
    else:
        return target
    if not ok:
        msg = (f"The 'target' {kind} has dtype {target.dtype}, but targets are output indices "
               f"(or class labels). Pass integers: {fix}.")
        raise InvalidTargetError(msg, value=target)
    if ndim > 1:
        msg = (f"The 'target' {kind} has {ndim} dimensions. Pass one int or label for all "
               f"examples, or a 1-d {kind} with one per example.")
        raise InvalidTargetError(msg, value=target)
    return target.tolist()


def _is_scalar(t: Any) -> bool:
    return isinstance(t, str | numbers.Integral) and not isinstance(t, bool)


def _label(i: int, names: Sequence[str] | None) -> str:
    return names[i] if names is not None else f"output {i}"


def _one(t: Any, names: Sequence[str] | None, n_out: int) -> int:
    if isinstance(t, bool) or not isinstance(t, str | numbers.Integral):
        msg = f"Each target must be an int or a class label. Got {t!r} instead."
        raise InvalidTargetError(msg, value=t)
    if isinstance(t, str):
        if names is not None and t in names:
            return list(names).index(t)
        valid = ", ".join(repr(nm) for nm in names) if names else "none (the model has no labels)"
        msg = (f"Target {t!r} is not an output of this model. Valid targets: {valid} "
               f"(or indices 0-{n_out - 1}).")
        raise InvalidTargetError(msg, value=t, available=names or ())
    if not -n_out <= int(t) < n_out:
        msg = (f"Target {int(t)} is out of range for a model with {n_out} output"
               f"{'s' if n_out > 1 else ''}. Valid targets: indices 0-{n_out - 1}"
               + (f" or labels {', '.join(repr(x) for x in names)}." if names else "."))
        raise InvalidTargetError(msg, value=t, available=names or ())
    return int(t) % n_out
