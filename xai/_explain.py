"""``explain()``: the one call, a thin layer over ``Method.explain``."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

import torch

from ._capabilities import Capability
from ._registry import METHODS
from ._validation import required_fields
from .adapters import as_adapter
from .adapters._base import ModelAdapter
from .exceptions import InvalidParameterError
from .explanation import Explanation
from .methods._base import Method

__all__ = ["compatible_methods", "explain", "list_methods", "make_method", "select_method"]

#: How ``method="auto"`` chooses: first rule whose capability the adapter has.
AUTO_RULES: tuple[tuple[Capability, str], ...] = (
    (Capability.GENERATION, "shapley_sampling"),
    (Capability.GRADIENTS, "integrated_gradients"),
    (Capability.FORWARD, "occlusion"),
)


def explain(
    model: Any,
    inputs: Any,
    *,
    method: str | Method = "auto",
    target: Any = None,
    batch_size: int | Literal["auto"] = "auto",
    random_state: int | torch.Generator | None = None,
    adapter_options: Mapping[str, Any] | None = None,
    forward_args: Any = None,
    **method_params: Any,
) -> Explanation:
    """Explain ``model``'s prediction(s) on ``inputs`` with one attribution method.

    Parameters
    ----------
    model : torch.nn.Module, (model, tokenizer), transformers pipeline, fitted scikit-learn
        estimator, callable, or ModelAdapter
    inputs : array-like, tensor, DataFrame, tuple of tensors, str or list of str
        A DataFrame is matched to the model's features by column name whenever the model knows
        them (a scikit-learn estimator or Pipeline fitted on a DataFrame, or the
        ``feature_names`` adapter option of a torch module or callable), so its columns may
        come in any order; a missing or unexpected column is an InvalidInputError. A tuple of
        tensors (or arrays), each with one row per example, is several inputs of a torch
        module or function (``model(x1, x2, ...)``), attributed together: ``exp.values`` has
        their features side by side and ``exp.values_for(k)`` gives input ``k``'s, shaped like
        it.
    method : str or Method, default="auto"
        Registry name (see :func:`list_methods`) or a configured Method instance. "auto" picks
        Shapley sampling for generators, Integrated Gradients for differentiable models and
        occlusion otherwise; the choice is recorded in ``Explanation.method``.
    target : int, str, sequence, integer tensor/array, "predicted", "all" or None, default=None
        Output(s) to explain. None means "predicted" for classifiers and output 0 for
        single-output models.
    batch_size : int or "auto", default="auto"
        Rows per model call (64 for text, 8192 for tabular when "auto": scikit-learn
        models pay a fixed cost per call, so fewer, larger calls are faster).
    random_state : int, torch.Generator or None, default=None
        Seed of the method's sampling; the same int gives the same values.
    adapter_options : mapping, optional
        Passed to the adapter (e.g. ``{"output_names": [...], "background": X_train}``, or
        ``{"feature_names": [...]}`` for a torch module or callable that takes columns in that
        order).
    forward_args : object or tuple, optional
        Arguments of a torch module or function that are not explained, passed after the
        inputs: ``model(*inputs, *forward_args)`` (captum's ``additional_forward_args``). A tensor
        or array with one row per example goes with its example into every perturbed copy;
        anything else is passed unchanged to every call.
    **method_params
        Fields of the chosen method; only allowed when ``method`` is a str. For a graph model
        (PyTorch Geometric) also the adapter's per-call options: what the features are
        (``explain="edges"`` or ``"nodes"``), which node(s) a node task explains (``index``),
        and ``k_hop``, ``mask_mode``, ``undirected`` (see :class:`xai.adapters.PyGAdapter`):
        ``xai.explain(gnn, data, method="occlusion", explain="nodes", index=7)``.

    Returns
    -------
    Explanation
        ``values`` of shape (n_examples, n_outputs, n_features).

    Examples
    --------
    >>> import torch, xai
    >>> model = torch.nn.Linear(3, 1)
    >>> exp = xai.explain(model, torch.ones(2, 3), method="ig", n_steps=8)
    >>> exp.values.shape
    torch.Size([2, 1, 3])
    """
    adapter = _adapter_for(model, inputs, adapter_options, method_params)
    if isinstance(method, Method):
        if method_params:
            names = ", ".join(sorted(method_params))
            msg = ("Pass parameters either in the Method instance or as keyword arguments, "
                   f"not both. Got {method!r} and the keyword arguments {names}: put them in "
                   f"the instance (dataclasses.replace(method, ...)) or pass "
                   f"method={type(method).name!r} with keyword arguments.")
            raise TypeError(msg)
        instance = method
    else:
        name = select_method(adapter) if method == "auto" else method
        instance = make_method(name, method_params, adapter)
    return instance.explain(adapter, inputs, target=target, batch_size=batch_size,
                            random_state=random_state, forward_args=forward_args)


def _adapter_for(model: Any, inputs: Any, adapter_options: Mapping[str, Any] | None,
                 method_params: dict[str, Any]) -> ModelAdapter:
    """The model's adapter; the adapter's per-call options (a graph model's ``explain``,
    ``index``, ...) are taken out of ``method_params`` and applied to it."""
    adapter = as_adapter(model, inputs=inputs, **(adapter_options or {}))
    options = {k: method_params.pop(k) for k in adapter.call_options if k in method_params}
    return adapter.configure(**options) if options else adapter


def make_method(name: str, params: Mapping[str, Any],
                adapter: ModelAdapter | None = None) -> Method:
    """Instantiate the registered method ``name`` with ``params`` (typed errors for bad fields).

    With ``adapter``, a method that cannot explain its model is refused (IncompatibleModelError)
    right after the parameter names are checked, before a required parameter is asked for.
    """
    cls = METHODS.get(name)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(params) - set(fields))
    if unknown:
        valid = ", ".join(sorted(fields)) or "none"
        msg = (f"{cls.__name__} got an unexpected parameter {unknown[0]!r}. Valid parameters "
               f"of {cls.__name__}: {valid}.")
        raise InvalidParameterError(msg, owner=cls.__name__, parameter=unknown[0],
                                    value=params[unknown[0]])
    if adapter is not None:
        cls.check_supports(adapter)
    missing = [n for n in required_fields(cls) if n not in params]
    if missing:
        msg = (f"The {missing[0]!r} parameter of {cls.__name__} is required: pass "
               f"{missing[0]}=... to xai.explain.")
        raise InvalidParameterError(msg, owner=cls.__name__, parameter=missing[0])
    return cls(**params)


def select_method(model: Any) -> str:
    """The method ``method="auto"`` picks for ``model`` (first matching rule of AUTO_RULES)."""
    adapter = as_adapter(model)
    for capability, name in AUTO_RULES:
        if capability in adapter.capabilities and name in METHODS:
            cls = METHODS.get(name)
            if cls.supports(adapter):
                return name
    return "occlusion"


def compatible_methods(model: Any) -> list[str]:
    """Names of the registered methods that can explain ``model``."""
    adapter = model if isinstance(model, ModelAdapter) else as_adapter(model)
    return METHODS.compatible(adapter)


def list_methods() -> list[dict[str, Any]]:
    """One row per registered method: name, aliases, class, requirements, modalities, paper."""
    rows = []
    for name in METHODS.names():
        cls = METHODS.get(name)
        doc = (cls.__doc__ or "").strip().splitlines()
        rows.append({
            "name": name, "aliases": METHODS.aliases(name), "class": cls.__name__,
            "requires": "+".join(cls.requires.names()),
            "modalities": tuple(sorted(cls.modalities)), "deterministic": cls.deterministic,
            "summary": doc[0] if doc else "", "reference": getattr(cls, "reference", ""),
        })
    return rows
