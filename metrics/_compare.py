"""Labels and input checks for :func:`metrics.compare`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

import xai
from xai.exceptions import InvalidExplanationError, InvalidParameterError
from xai.extend import fmt_value

__all__ = ["check_same_inputs", "labelled_explanations"]

_MISSING = object()


def labelled_explanations(explanations: Any, names: Sequence[str] | None
              ) -> list[tuple[str, xai.Explanation]]:
    """(label, explanation) pairs: the given names or mapping keys, else generated labels."""
    if isinstance(explanations, Mapping):
        if names is not None:
            msg = ("compare() takes row labels either as the keys of a mapping or as 'names', "
                   "not both. Pass a list of explanations with names=..., or the mapping alone.")
            raise InvalidParameterError(msg, owner="compare", parameter="names", value=names)
        names, explanations = list(explanations.keys()), list(explanations.values())
    if isinstance(explanations, xai.Explanation) or not isinstance(explanations, Sequence) \
            or not all(isinstance(e, xai.Explanation) for e in explanations):
        msg = ("The 'explanations' parameter of compare must be a list of xai.Explanation or a "
               f"mapping of label to Explanation. Got {fmt_value(explanations)} instead.")
        raise InvalidParameterError(msg, owner="compare", parameter="explanations",
                                    value=explanations)
    exps = list(explanations)
    if not exps:
        msg = "compare() needs at least one explanation; got an empty list. Pass explanations."
        raise InvalidParameterError(msg, owner="compare", parameter="explanations", value=exps)
    if names is None:
        return list(zip(default_labels(exps), exps, strict=True))
    labels = list(names)
    if len(labels) != len(exps) or not all(isinstance(n, str) for n in labels) \
            or len(set(labels)) != len(labels):
        msg = (f"The 'names' parameter of compare must be {len(exps)} distinct strings, one per "
               f"explanation. Got {fmt_value(names)} instead.")
        raise InvalidParameterError(msg, owner="compare", parameter="names", value=names)
    return list(zip(labels, exps, strict=True))


def default_labels(exps: Sequence[xai.Explanation]) -> list[str]:
    """Method names; same-method explanations add the parameters that differ between them."""
    labels = [e.method for e in exps]
    for method in {m for m in labels if labels.count(m) > 1}:
        group = [i for i, e in enumerate(exps) if e.method == method]
        keys = sorted({k for i in group for k in exps[i].params})
        differ = [k for k in keys if not all(
            _same(exps[group[0]].params.get(k, _MISSING), exps[i].params.get(k, _MISSING))
            for i in group)]
        if differ:
            for i in group:
                shown = ", ".join(f"{k}={_show(exps[i].params.get(k, _MISSING))}"
                                  for k in differ)
                labels[i] = f"{method}({shown})"
    for label in {lb for lb in labels if labels.count(lb) > 1}:  # still ambiguous: number them
        for k, i in enumerate([i for i, lb in enumerate(labels) if lb == label], start=1):
            labels[i] = f"{label} #{k}"
    return labels


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor | np.ndarray) or isinstance(b, torch.Tensor | np.ndarray):
        if type(a) is not type(b) or a.shape != b.shape or a.dtype != b.dtype:
            return False
        return bool(torch.equal(torch.as_tensor(a), torch.as_tensor(b)))
    try:
        return bool(a == b)
    except (TypeError, ValueError, RuntimeError):
        return a is b


def _show(value: Any) -> str:
    if value is _MISSING:
        return "unset"
    if isinstance(value, torch.Tensor | np.ndarray):
        arr = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value
        return repr(arr.tolist()) if arr.size <= 4 else fmt_value(value)
    return fmt_value(value)


def check_same_inputs(labelled: Sequence[tuple[str, xai.Explanation]]) -> None:
    """Every explanation must explain the inputs of the first one (shape and values)."""
    first_label, first = labelled[0]
    for label, exp in labelled[1:]:
        problem = _input_difference(first, exp)
        if problem is not None:
            msg = (f"compare() needs explanations of the same inputs, but {label!r} and "
                   f"{first_label!r} explain different inputs ({problem}). Explain the same "
                   "inputs with each method, then compare them.")
            raise InvalidExplanationError(msg)


def _input_difference(a: xai.Explanation, b: xai.Explanation) -> str | None:
    if len(a) != len(b):
        return f"{len(b)} examples vs {len(a)}"
    if a.texts is not None and b.texts is not None and a.texts != b.texts:
        i = next(i for i, (s, t) in enumerate(zip(a.texts, b.texts, strict=True)) if s != t)
        return f"text {i} is {_short(b.texts[i])} vs {_short(a.texts[i])}"
    if a.inputs is None or b.inputs is None:
        return None  # a loaded explanation keeps no inputs: nothing more to compare
    ta, tb = a.inputs.tensors, b.inputs.tensors
    for key in sorted(set(ta) & set(tb)):
        if ta[key].shape != tb[key].shape:
            return f"{key!r} of shape {tuple(tb[key].shape)} vs {tuple(ta[key].shape)}"
        same = torch.isclose(ta[key], tb[key], rtol=0, atol=0, equal_nan=True) \
            if ta[key].is_floating_point() else ta[key] == tb[key]
        if not bool(same.all()):
            row = int((~same).reshape(len(a), -1).any(-1).nonzero()[0, 0])
            return f"{key!r} differ at example {row}"
    return None


def _short(text: str) -> str:
    return repr(text) if len(text) <= 40 else repr(text[:37] + "...")
