"""Attribution methods. Each module registers one method; the import order below is explicit."""

from . import (  # noqa: F401  (registration)
    integrated_gradients,
    kernel_shap,
    lime,
    occlusion,
    shapley_sampling,
    smoothed,
)
from ._base import AttributionOutput, Method
from .integrated_gradients import IntegratedGradients
from .kernel_shap import KernelShap
from .lime import Lime
from .occlusion import Occlusion
from .shapley_sampling import ShapleySampling
from .smoothed import Smoothed

__all__ = ["AttributionOutput", "IntegratedGradients", "KernelShap", "Lime", "Method", "Occlusion",
           "ShapleySampling", "Smoothed"]
