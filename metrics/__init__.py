"""posthoc-xai evaluators: score any ``xai.Explanation`` with ``metrics.evaluate``.

The import name ``metrics`` belongs to the ``posthoc-xai`` distribution (an unrelated
``metrics`` project exists on PyPI). ``metrics`` imports ``xai``, never the reverse.
"""

from __future__ import annotations

from . import complexity, faithfulness  # noqa: F401  (registration)
from ._base import Metric, MetricResult
from ._evaluate import Evaluation, compare, evaluate
from ._registry import METRICS, register_metric
from .audit import AuditReport, Recommendation, audit
from .complexity import Complexity
from .faithfulness import (
    AOPCComprehensiveness,
    AOPCSufficiency,
    Comprehensiveness,
    FaithfulnessCorrelation,
    LogOdds,
    Sufficiency,
)
from .graph import Characterization, Fidelity, RobustFidelity
from .infidelity import Infidelity
from .responsiveness import Responsiveness
from .sensitivity import AvgSensitivity, MaxSensitivity

__all__ = [
    "METRICS",
    "AOPCComprehensiveness",
    "AOPCSufficiency",
    "AuditReport",
    "AvgSensitivity",
    "Characterization",
    "Complexity",
    "Comprehensiveness",
    "Evaluation",
    "FaithfulnessCorrelation",
    "Fidelity",
    "Infidelity",
    "LogOdds",
    "MaxSensitivity",
    "Metric",
    "MetricResult",
    "Recommendation",
    "Responsiveness",
    "RobustFidelity",
    "Sufficiency",
    "audit",
    "compare",
    "evaluate",
    "register_metric",
]
