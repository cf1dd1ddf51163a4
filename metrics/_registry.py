"""The metric registry (the same Registry class as ``xai``'s method registry)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from xai._registry import Registry

if TYPE_CHECKING:
    from ._base import Metric

__all__ = ["METRICS", "register_metric"]

METRICS: Registry[type[Metric]] = Registry("metric")
register_metric = METRICS.register
