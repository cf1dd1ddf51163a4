"""How adapters call models: the device, a note on the model's own errors, checked scores.

Three rules shared by every adapter:

* ``device`` is resolved once, in the constructor, so that a GPU that is not there is a typed
  :class:`~xai.exceptions.InvalidParameterError` and not an ``AssertionError`` deep in torch.
* An exception raised by the model itself propagates **as itself** (same type, same object): the
  caller's ``except RuntimeError`` keeps working. :func:`model_call` only adds a note saying which
  adapter called the model on what.
* What the model returns is checked by :func:`as_scores`: a tensor or numeric array with one row
  per input row and finite values, or a typed error that names the model, what it returned and
  what is expected.
"""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch

from ..exceptions import InvalidInputError, InvalidParameterError, XAIError

__all__ = ["as_scores", "describe_call", "model_call", "resolve_device"]

_EXPECTED = "a tensor or numeric array of shape (n_examples,) or (n_examples, n_outputs)"


def resolve_device(device: Any, module: Any, *, owner: str) -> torch.device:
    """``device`` as a ``torch.device`` (None: the module's own); refuse one that is not there."""
    if device is None:
        param = next(iter(module.parameters()), None) if hasattr(module, "parameters") else None
        return param.device if param is not None else torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as err:
        msg = (f"The 'device' parameter of {owner} must be a torch.device or a device string "
               f"such as 'cpu' or 'cuda:0'. Got {device!r} instead.")
        raise InvalidParameterError(msg, owner=owner, parameter="device", value=device) from err
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = "CUDA is not available (torch.cuda.is_available() is False)"
        elif dev.index is not None and dev.index >= torch.cuda.device_count():
            why = f"this machine has {torch.cuda.device_count()} CUDA device(s)"
        else:
            return dev
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        why = "MPS is not available (torch.backends.mps.is_available() is False)"
    else:
        return dev
    msg = (f"The 'device' parameter of {owner} is '{dev}', but {why}. Use device='cpu', or "
           "device=None to run the model where its parameters are.")
    raise InvalidParameterError(msg, owner=owner, parameter="device", value=str(dev))


def describe_call(x: Any) -> str:
    """What a model was called with, for the note of :func:`model_call`."""
    if isinstance(x, torch.Tensor):
        return f"a {str(x.dtype).removeprefix('torch.')} tensor of shape {tuple(x.shape)} on {x.device}"
    if isinstance(x, np.ndarray):
        return f"a {x.dtype} numpy array of shape {x.shape}"
    if type(x).__name__ == "DataFrame":
        return f"a DataFrame of shape {x.shape} with columns {[str(c) for c in x.columns][:10]}"
    if isinstance(x, Mapping):
        parts = ", ".join(f"{k} of shape {tuple(v.shape)}" for k, v in x.items()
                          if isinstance(v, torch.Tensor))
        return f"tensors {parts}" if parts else f"a {type(x).__name__}"
    return f"a {type(x).__name__}"


@contextlib.contextmanager
def model_call(model: str, adapter: str, called_with: str, *, hint: str = "") -> Iterator[None]:
    """Let the model's own exception through unchanged, with a note naming the call.

    Errors of posthoc-xai itself (``XAIError``) pass without a note: their message already says
    what is wrong.
    """
    try:
        yield
    except XAIError:
        raise
    except Exception as err:
        note = f"posthoc-xai: raised by {model} when {adapter} called it on {called_with}."
        if hint:
            note += f" {hint}"
        if hasattr(err, "add_note"):  # Python >= 3.11
            err.add_note(note)
        raise


def as_scores(out: Any, n: int, *, model: str = "The model", adapter: str = "the adapter",
              noun: str = "model", fix: str = "") -> torch.Tensor:
    """Model output (tensor, array, HF output object) as float32 (n, n_outputs), checked.

    Parameters
    ----------
    out : Any
        What the model returned.
    n : int
        Number of input rows it was called on.
    model, adapter : str
        Names used in the error messages.
    noun : str
        What must return one row per input ("model", "function", "module").
    fix : str
        The last sentence of the message for an unusable output (a default is used when empty).

    Raises
    ------
    InvalidInputError
        The output is not numeric scores (None, a str, a tuple, a dict without ``logits``,
        complex numbers), has no values, has a number of rows other than ``n``, or holds NaN/inf.
    """
    t = _tensor_of(out, model=model, adapter=adapter, fix=fix)
    if t.numel() == 0:
        msg = (f"{model} returned no scores (shape {tuple(t.shape)}) for {n} input rows, but "
               f"{adapter} needs {_EXPECTED}. Check what the {noun} returns.")
        raise InvalidInputError(msg, parameter="model output", value=tuple(t.shape))
    t = t.float()
    if t.dim() == 0:
        t = t.reshape(1, 1)
    if t.dim() == 1:
        t = t.reshape(n, -1) if t.shape[0] == n else t.reshape(1, -1)
    t = t.reshape(t.shape[0], -1)
    if t.shape[0] != n:
        msg = (f"{model} returned {t.shape[0]} rows for {n} inputs. The {noun} must return one "
               "row of scores per input row.")
        raise InvalidInputError(msg, parameter="model output", value=tuple(t.shape))
    _check_finite(t, model)
    return t


def _tensor_of(out: Any, *, model: str, adapter: str, fix: str) -> torch.Tensor:
    if not isinstance(out, torch.Tensor) and hasattr(out, "logits"):
        out = out.logits  # a transformers ModelOutput
    elif isinstance(out, Mapping) and "logits" in out:
        out = out["logits"]
    if isinstance(out, torch.Tensor):
        if not (out.is_floating_point() or out.dtype in _INTEGERS):  # complex, quantized
            what = f"a tensor of dtype {out.dtype}"
            raise _refusal(what, model, adapter, fix)
        return out
    reason = _describe_output(out)
    if reason is None:
        try:
            arr = np.asarray(out)
        except (TypeError, ValueError, RuntimeError) as err:  # ragged lists, tensors needing grad
            reason = f"a {type(out).__name__} that is not an array ({err})"
        else:
            if arr.dtype.kind in "biuf":
                return torch.from_numpy(np.ascontiguousarray(arr))
            reason = f"an array of dtype {arr.dtype} ({_preview(arr)})"
    raise _refusal(reason, model, adapter, fix)


_INTEGERS = (torch.bool, torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)


def _describe_output(out: Any) -> str | None:
    """Why ``out`` cannot be scores, or None when numpy may still read it as numbers."""
    if out is None:
        return "None"
    if isinstance(out, str | bytes):
        return f"a {type(out).__name__} ({out!r:.40})"
    if isinstance(out, Mapping):
        return f"a {type(out).__name__} without 'logits' (keys: {[str(k) for k in out][:10]})"
    if isinstance(out, tuple | list):
        if any(isinstance(o, torch.Tensor | Mapping) or hasattr(o, "logits") for o in out):
            return f"a {type(out).__name__} of {len(out)} items"
        return None
    if isinstance(out, np.ndarray | numbers.Number):
        return None
    if hasattr(out, "__array__"):
        return None
    return f"an object of type {type(out).__name__}"


def _preview(arr: np.ndarray) -> str:
    flat = arr.reshape(-1)[:3].tolist()
    return ", ".join(repr(v) for v in flat) + (", ..." if arr.size > 3 else "")


def _refusal(what: str, model: str, adapter: str, fix: str) -> InvalidInputError:
    fix = fix or ("Return the scores (logits, probabilities or regression outputs) as a tensor "
                  "or numeric array; wrap the model in a function that picks them out of its "
                  "output if needed.")
    msg = f"{model} returned {what}, but {adapter} needs {_EXPECTED}. {fix}"
    return InvalidInputError(msg, parameter="model output", value=what)


def _check_finite(t: torch.Tensor, model: str) -> None:
    bad = ~torch.isfinite(t)
    if not bool(bad.any()):
        return
    rows = bad.any(dim=1).nonzero().reshape(-1).tolist()
    shown = f"{rows[:10]}"[:-1] + (", ...]" if len(rows) > 10 else "]")
    msg = (f"{model} returned NaN or inf scores for {len(rows)} of {t.shape[0]} rows (rows "
           f"{shown} of the batch it was called on). Attributions need finite scores for the "
           "inputs and for their perturbed copies (features set to the baseline): make the "
           "model's outputs finite, for example by clamping log-probabilities.")
    raise InvalidInputError(msg, parameter="model output", value=rows)
