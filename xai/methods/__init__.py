"""Attribution methods. Each module registers one method; the import order below is explicit."""

from . import (  # noqa: F401  (registration)
    bee,
    best_of,
    context_length_probing,
    gnnexplainer,
    input_marginalization,
    integrated_gradients,
    kernel_shap,
    lime,
    occlusion,
    olm,
    responsiveness,
    shapley_sampling,
    smoothed,
    textgenshap,
)
from ._base import AttributionOutput, Method
from ._bee_policy import BEEPolicy
from .bee import BEE
from .best_of import BestOf
from .context_length_probing import ContextLengthProbing
from .gnnexplainer import GNNExplainer
from .input_marginalization import InputMarginalization
from .integrated_gradients import IntegratedGradients
from .kernel_shap import KernelShap
from .lime import Lime
from .occlusion import Occlusion
from .olm import OLM
from .responsiveness import Responsiveness
from .shapley_sampling import ShapleySampling
from .smoothed import Smoothed
from .textgenshap import TextGenSHAP

__all__ = ["BEE", "OLM", "AttributionOutput", "BEEPolicy", "BestOf", "ContextLengthProbing", "GNNExplainer",
           "InputMarginalization",
           "IntegratedGradients", "KernelShap", "Lime", "Method", "Occlusion", "Responsiveness",
           "ShapleySampling",
           "Smoothed", "TextGenSHAP"]
