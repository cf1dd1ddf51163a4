"""The metric registry (the same Registry class as ``xai``'s method registry)."""

from __future__ import annotations

from collections.abc import Collection
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

    def applicable(self, explanation: xai.Explanation,
                   given: Collection[str] = ()) -> list[str]:
        """Registered metrics that can score ``explanation`` (and do not re-run the method);
        a metric with required parameters (``needs_params``) only when they are in ``given``."""
        return [name for name in self.names() if self.get(name).applies_to(explanation)
                and not self.get(name).needs_reexplain
                and set(self.get(name).needs_params) <= set(given)]


METRICS: MetricRegistry = MetricRegistry("metric")
register_metric = METRICS.register
