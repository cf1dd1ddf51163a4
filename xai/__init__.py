"""posthoc-xai: post-hoc explanations behind one call, ``xai.explain(model, inputs, method=...)``.

The import name ``xai`` belongs to the ``posthoc-xai`` distribution (an unrelated ``xai`` project
exists on PyPI).
"""

from __future__ import annotations

from . import exceptions
from ._capabilities import Capability, Modality, OutputKind
from ._explain import compatible_methods, explain, list_methods, select_method
from ._registry import METHODS, Registry, register_method
from .adapters import (
    Batch,
    CallableAdapter,
    ModelAdapter,
    SklearnAdapter,
    TorchModuleAdapter,
    as_adapter,
)
from .amortized import AmortizedExplainer
from .exceptions import (
    ConvergenceWarning,
    IgnoredParameterWarning,
    IncompatibleModelError,
    InvalidExplanationError,
    InvalidInputError,
    InvalidParameterError,
    InvalidTargetError,
    MissingDependencyError,
    TruncationWarning,
    UnknownNameError,
    UnsupportedModelError,
    XAIError,
    XAIWarning,
)
from .explanation import Explanation, ModelInfo, ResolvedTarget
from .features import (
    FeatureSpace,
    GraphEdges,
    GraphNodes,
    NamedFeatures,
    TensorFeatures,
    TextFeatures,
    TokenFeatures,
    WordFeatures,
)
from .features.resamplers import (
    Candidates,
    CausalLMResampler,
    MaskedLMResampler,
    TokenResampler,
)
from .methods import (
    BEE,
    OLM,
    BEEPolicy,
    BestOf,
    ContextLengthProbing,
    GNNExplainer,
    InputMarginalization,
    IntegratedGradients,
    KernelShap,
    Lime,
    Method,
    Occlusion,
    Responsiveness,
    ShapleySampling,
    Smoothed,
    TextGenSHAP,
)
from .recourse import (
    ActionElement,
    ActionSet,
    DirectionalLinkage,
    IfThen,
    OneHot,
    Thermometer,
)

__version__ = "0.1.0"

__all__ = [
    "ActionElement",
    "AmortizedExplainer",
    "ActionSet",
    "DirectionalLinkage",
    "IfThen",
    "OneHot",
    "Responsiveness",
    "Thermometer",
    "BEE",
    "METHODS",
    "OLM",
    "BEEPolicy",
    "Batch",
    "BestOf",
    "CallableAdapter",
    "Candidates",
    "Capability",
    "CausalLMResampler",
    "ContextLengthProbing",
    "ConvergenceWarning",
    "Explanation",
    "FeatureSpace",
    "GNNExplainer",
    "GraphEdges",
    "GraphNodes",
    "IgnoredParameterWarning",
    "IncompatibleModelError",
    "InputMarginalization",
    "IntegratedGradients",
    "InvalidExplanationError",
    "InvalidInputError",
    "InvalidParameterError",
    "InvalidTargetError",
    "KernelShap",
    "Lime",
    "MaskedLMResampler",
    "Method",
    "MissingDependencyError",
    "Modality",
    "ModelAdapter",
    "ModelInfo",
    "NamedFeatures",
    "Occlusion",
    "OutputKind",
    "Registry",
    "ResolvedTarget",
    "ShapleySampling",
    "SklearnAdapter",
    "Smoothed",
    "TensorFeatures",
    "TextFeatures",
    "TextGenSHAP",
    "TokenFeatures",
    "TokenResampler",
    "TorchModuleAdapter",
    "TruncationWarning",
    "UnknownNameError",
    "UnsupportedModelError",
    "WordFeatures",
    "XAIError",
    "XAIWarning",
    "as_adapter",
    "compatible_methods",
    "exceptions",
    "explain",
    "list_methods",
    "register_method",
    "select_method",
    "__version__",
]

#: Submodules loaded on first attribute access, so ``import xai`` stays light: ``xai.batch``
#: (Ray, pyarrow) and ``xai.extend`` (for authors of methods and metrics).
_LAZY_SUBMODULES = frozenset({"batch", "extend"})


def __getattr__(name: str) -> object:
    if name in _LAZY_SUBMODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
