"""Attribution methods. Each module registers one method; the import order below is explicit."""

from . import integrated_gradients, occlusion, shapley_sampling  # noqa: F401  (registration)
from ._base import AttributionOutput, Method
from .integrated_gradients import IntegratedGradients
from .occlusion import Occlusion
from .shapley_sampling import ShapleySampling

__all__ = ["AttributionOutput", "IntegratedGradients", "Method", "Occlusion", "ShapleySampling"]
