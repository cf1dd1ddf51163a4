"""Recourse: what people can change (`ActionSet` and its constraints) and what those changes reach.

``xai.explain(model, X, method="responsiveness", action_set=actions)`` scores each feature by the
share of its feasible changes that reach the target prediction (Cheon et al., ICLR 2025); the
``responsiveness`` metric checks whether any explanation's top reasons are ones a person can act on.
"""

from ._action_set import ActionElement, ActionSet
from ._constraints import ActionConstraint, DirectionalLinkage, IfThen, OneHot, Thermometer
from ._reach import ReachResult, responsiveness_scores

__all__ = [
    "ActionConstraint",
    "ActionElement",
    "ActionSet",
    "DirectionalLinkage",
    "IfThen",
    "OneHot",
    "ReachResult",
    "Thermometer",
    "responsiveness_scores",
]
