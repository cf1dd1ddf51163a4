"""posthoc-xai evaluators: score any ``xai.Explanation`` with ``metrics.evaluate``.

The import name ``metrics`` belongs to the ``posthoc-xai`` distribution (an unrelated
``metrics`` project exists on PyPI). ``metrics`` imports ``xai``, never the reverse.
This release ships the base types; the evaluators arrive with their own issue.
"""

from __future__ import annotations

from ._base import Metric, MetricResult
from ._registry import METRICS, register_metric

__all__ = ["METRICS", "Metric", "MetricResult", "register_metric"]
