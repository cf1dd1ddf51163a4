"""Feature spaces: what one interpretable feature is, and how it is switched off."""

from ._base import FeatureSpace
from .graph import GraphEdges, GraphNodes, GraphRow
from .named import NamedFeatures
from .tensor import MultiTensorFeatures, TensorFeatures
from .text import TextFeatures, TokenFeatures, WordFeatures

__all__ = ["FeatureSpace", "GraphEdges", "GraphNodes", "GraphRow", "MultiTensorFeatures", "NamedFeatures", "TensorFeatures", "TextFeatures", "TokenFeatures",
           "WordFeatures"]
