"""Feature spaces: what one interpretable feature is, and how it is switched off."""

from ._base import FeatureSpace
from .named import NamedFeatures
from .tensor import MultiTensorFeatures, TensorFeatures
from .text import TextFeatures, TokenFeatures, WordFeatures

__all__ = ["FeatureSpace", "MultiTensorFeatures", "NamedFeatures", "TensorFeatures", "TextFeatures", "TokenFeatures",
           "WordFeatures"]
