"""The metric registry (the same Registry class as ``xai``'s method registry)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from xai.extend import Registry

if TYPE_CHECKING:
    import xai

    from ._base import Metric

__all__ = ["METRICS", "MetricRegistry", "register_metric"]


if TYPE_CHECKING:
    _MetricRegistryBase = Registry[type[Metric]]
else:  # Metric is not importable here at run time (it imports this module)
    _MetricRegistryBase = Registry


class MetricRegistry(_MetricRegistryBase):
    """The metric registry: a Registry that also answers which metrics can score an explanation.

    Applicability lives here, beside the names, so that ``Metric`` (whose error messages list
    the metrics that would apply) never calls up into ``metrics.evaluate``.
    """

    def applicable(self, explanation: xai.Explanation) -> list[str]:
        """Registered metrics that can score ``explanation`` (and do not re-run the method)."""
        return [name for name in self.names() if self.get(name).applies_to(explanation)
                and not self.get(name).needs_reexplain]


METRICS: MetricRegistry = MetricRegistry("metric")
register_metric = METRICS.register
