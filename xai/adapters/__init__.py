"""Model adapters: one class per kind of model, chosen by a declared rule table."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch

from ..exceptions import InvalidParameterError, UnsupportedModelError
from ._base import Batch, ModelAdapter
from ._callable import CallableAdapter
from ._sklearn import SklearnAdapter
from ._torch import TorchModuleAdapter

__all__ = [
    "ADAPTER_RULES",
    "Batch",
    "CallableAdapter",
    "HFCausalLMAdapter",
    "HFClassifierAdapter",
    "HFPipelineAdapter",
    "ModelAdapter",
    "PyGAdapter",
    "SklearnAdapter",
    "TorchModuleAdapter",
    "as_adapter",
]


def safe_isinstance(obj: Any, package: str, class_name: str) -> bool:
    """``isinstance`` against ``package.<...>.class_name`` without importing ``package``."""
    return any(
        c.__name__ == class_name and c.__module__.split(".")[0] == package
        for c in type(obj).__mro__
    )


def _is_hf_pair(obj: Any) -> bool:
    return (isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[0], torch.nn.Module)
            and safe_isinstance(obj[1], "transformers", "PreTrainedTokenizerBase"))


def _is_causal_lm(model: Any) -> bool:
    if any(c.__name__.endswith("ForCausalLM") for c in type(model).__mro__):
        return True
    if bool(getattr(getattr(model, "config", None), "is_decoder", False)):
        return True
    can_generate = getattr(model, "can_generate", None)
    try:
        return bool(can_generate()) if callable(can_generate) else False
    except Exception:  # noqa: BLE001  (a third-party probe must not break as_adapter)
        return False


def _construct(cls: type[ModelAdapter], *args: Any, **options: Any) -> ModelAdapter:
    """``cls(*args, **options)``, refusing an option that ``cls`` does not take by name.

    The options come from the user's ``adapter_options``: a typo there is an
    ``InvalidParameterError`` that lists the adapter's options, not the constructor's TypeError.
    """
    params = list(inspect.signature(cls).parameters.values())[len(args):]
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        accepted = [p.name for p in params if p.kind in (inspect.Parameter.KEYWORD_ONLY,
                                                         inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            msg = (f"The 'adapter_options' {unknown} are not options of {cls.__name__}, which "
                   f"this model is wrapped in. Its options are: {', '.join(accepted) or 'none'}.")
            raise InvalidParameterError(msg, owner=cls.__name__, parameter="adapter_options",
                                        value=unknown, constraint=", ".join(accepted))
    return cls(*args, **options)


def _is_hf_causal_pair(obj: Any) -> bool:
    return _is_hf_pair(obj) and _is_causal_lm(obj[0])


def _hf_causal_pair(obj: tuple[Any, Any], **options: Any) -> ModelAdapter:
    from ._causal import HFCausalLMAdapter

    return _construct(HFCausalLMAdapter, obj[0], obj[1], **options)


def _hf_pair(obj: tuple[Any, Any], **options: Any) -> ModelAdapter:
    from ._transformers import HFClassifierAdapter

    return _construct(HFClassifierAdapter, obj[0], obj[1], **options)


def _hf_pipeline(obj: Any, **options: Any) -> ModelAdapter:
    from ._transformers import HFPipelineAdapter

    return _construct(HFPipelineAdapter, obj, **options)


def _hf_model_alone(obj: Any, **options: Any) -> ModelAdapter:
    msg = (f"{type(obj).__name__} is a transformers model without its tokenizer. Pass "
           "(model, tokenizer) or a pipeline: xai.explain((model, tokenizer), texts).")
    raise UnsupportedModelError(msg)


def _is_pyg_model(obj: Any) -> bool:
    from ._pyg import is_pyg_model

    return is_pyg_model(obj)


def _pyg_adapter(obj: Any, **options: Any) -> ModelAdapter:
    from ._pyg import PyGAdapter

    return _construct(PyGAdapter, obj, **options)


def _is_graph_input(inputs: Any) -> bool:
    if isinstance(inputs, Batch):
        return inputs.graphs is not None
    from ._pyg import is_pyg_data

    return is_pyg_data(inputs)


def _is_sklearn(obj: Any) -> bool:
    return safe_isinstance(obj, "sklearn", "BaseEstimator") or (
        hasattr(obj, "fit") and hasattr(obj, "get_params") and
        any(hasattr(obj, r) for r in ("predict_proba", "decision_function", "predict")))


#: The rule table of ``as_adapter``: first matching predicate wins.
ADAPTER_RULES: tuple[tuple[str, Callable[[Any], bool], Callable[..., ModelAdapter]], ...] = (
    ("transformers causal LM + tokenizer", _is_hf_causal_pair, _hf_causal_pair),
    ("transformers model + tokenizer", _is_hf_pair, _hf_pair),
    ("transformers pipeline", lambda o: safe_isinstance(o, "transformers", "Pipeline"),
     _hf_pipeline),
    ("transformers model alone", lambda o: safe_isinstance(o, "transformers", "PreTrainedModel"),
     _hf_model_alone),
    ("fitted scikit-learn estimator", _is_sklearn, SklearnAdapter),
    ("torch_geometric GNN (a module with MessagePassing layers)", _is_pyg_model, _pyg_adapter),
    ("torch.nn.Module", lambda o: isinstance(o, torch.nn.Module), TorchModuleAdapter),
    ("callable", callable, CallableAdapter),
)


def as_adapter(model: Any, /, *, inputs: Any = None, **options: Any) -> ModelAdapter:
    """Wrap ``model`` in the first matching adapter of :data:`ADAPTER_RULES`.

    A torch module given graph ``inputs`` (PyG data, or a Batch of graph rows) is a graph
    model even without PyG layers of its own.

    Parameters
    ----------
    model : ModelAdapter, (model, tokenizer), transformers pipeline, scikit-learn estimator,
        torch.nn.Module or callable
    inputs : optional
        The inputs the model will be called on, when known.
    **options
        Passed to the adapter's constructor (``output_names``, ``background``, ``device``, ...).

    Raises
    ------
    UnsupportedModelError
        No rule matches; the message lists the supported kinds.
    """
    if isinstance(model, ModelAdapter):
        return model
    if inputs is not None and isinstance(model, torch.nn.Module) and _is_graph_input(inputs):
        return _pyg_adapter(model, **options)
    for _, predicate, factory in ADAPTER_RULES:
        if predicate(model):
            if isinstance(factory, type):
                return _construct(factory, model, **options)
            return factory(model, **options)
    hidden = ("transformers model alone", "transformers causal LM + tokenizer")  # covered by pair
    kinds = "; ".join(name for name, _, _ in ADAPTER_RULES if name not in hidden)
    msg = (f"Cannot explain an object of type {type(model).__name__}. Supported models: {kinds}; "
           "or a ModelAdapter instance.")
    raise UnsupportedModelError(msg)


def __getattr__(name: str) -> Any:
    if name in ("HFClassifierAdapter", "HFPipelineAdapter"):
        from . import _transformers

        return getattr(_transformers, name)
    if name == "PyGAdapter":
        from . import _pyg

        return _pyg.PyGAdapter
    if name == "HFCausalLMAdapter":
        from . import _causal

        return _causal.HFCausalLMAdapter
    raise AttributeError(name)
