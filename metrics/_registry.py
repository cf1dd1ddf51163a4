"""The metric registry (the same Registry class as ``xai``'s method registry)."""

from __future__ import annotations

from xai._registry import Registry

__all__ = ["METRICS", "register_metric"]

METRICS: Registry[type] = Registry("metric")
register_metric = METRICS.register
