"""``evaluate()`` and ``compare()``: many metrics on one or several explanations."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

import xai
from xai.adapters import as_adapter

from ._base import Metric, MetricResult
from ._registry import METRICS

__all__ = ["Evaluation", "compare", "evaluate", "make_metric"]


class Evaluation(dict[str, MetricResult]):
    """Metric name -> MetricResult, with a tidy-table view."""

    def to_pandas(self) -> Any:
        """One row per (metric, example, output): score, direction, explained method."""
        import pandas as pd

        rows = []
        for name, res in self.items():
            scores = res.scores if res.scores.dim() == 2 else res.scores[:, None]
            for i in range(scores.shape[0]):
                for o in range(scores.shape[1]):
                    rows.append({"metric": name, "method": res.explanation_method,
                                 "example": i, "output": o, "score": float(scores[i, o]),
                                 "higher_is_better": res.higher_is_better})
        return pd.DataFrame(rows)

    def summary(self) -> Any:
        """Mean score per metric (NaNs skipped), one row each."""
        import pandas as pd

        return pd.DataFrame([{"metric": n, "method": r.explanation_method, "mean": r.mean(),
                              "higher_is_better": r.higher_is_better} for n, r in self.items()])

    def _repr_html_(self) -> str:
        """Styled table: one row per (example, output), one column per metric, a mean row.

        Cells are green, darker for the better scores of each column; see
        ``xai.plot._html.scores_table_html``.
        """
        from xai.plot._html import scores_table_html

        if not self:
            return '<div class="xai-exp">Evaluation with no metric results.</div>'
        grids = {n: r.scores if r.scores.dim() == 2 else r.scores[:, None]
                 for n, r in self.items()}
        n_ex = max(g.shape[0] for g in grids.values())
        n_out = max(g.shape[1] for g in grids.values())
        labels = [f"example {i}" if n_out == 1 else f"example {i}, output {o}"
                  for i in range(n_ex) for o in range(n_out)]
        cols = {}
        for name, g in grids.items():  # pad to (n_ex, n_out) so that rows line up
            full = torch.full((n_ex, n_out), float("nan"), dtype=torch.float64)
            full[: g.shape[0], : g.shape[1]] = g.double()
            cols[name] = full.reshape(-1).tolist()
        methods = ", ".join(sorted({r.explanation_method for r in self.values()}))
        return scores_table_html(
            cols, {n: r.higher_is_better for n, r in self.items()}, labels,
            caption=f"method: {methods}; greener is better within each column")


def make_metric(metric: str | Metric, params: Mapping[str, Any] | None = None) -> Metric:
    """A Metric instance from a registry name (UnknownNameError lists the available ones)."""
    if isinstance(metric, Metric):
        return metric
    return METRICS.get(metric)(**(params or {}))


def applicable_metrics(exp: xai.Explanation) -> list[str]:
    """Registered metrics that can score ``exp`` (and do not re-run the method)."""
    return [n for n in METRICS.names() if METRICS.get(n).applies_to(exp)
            and not METRICS.get(n).needs_reexplain]


def evaluate(explanation: xai.Explanation, model: Any,
             metrics: Sequence[str | Metric] | None = None, *,
             batch_size: int | str = "auto",
             random_state: int | torch.Generator | None = None) -> Evaluation:
    """Score ``explanation`` with each metric.

    Parameters
    ----------
    explanation : xai.Explanation
    model : the explained model (or its adapter)
    metrics : sequence of str or Metric, optional
        Registry names (``metrics.METRICS.names()``) or configured instances. None means every
        applicable metric that does not re-explain (sensitivity is opt-in: it re-runs the method).
    batch_size : int or "auto", default="auto"
        Rows per model call.
    random_state : int, torch.Generator or None
        One seed for all metrics; each metric draws from its own generator seeded from it.

    Returns
    -------
    Evaluation
        A dict of metric name to MetricResult, with ``to_pandas()`` and ``summary()``.
    """
    adapter = as_adapter(model)
    chosen = applicable_metrics(explanation) if metrics is None else list(metrics)
    out = Evaluation()
    for m in chosen:
        metric = make_metric(m)
        seed = random_state if not isinstance(random_state, torch.Generator) else \
            int(torch.randint(0, 2**62, (1,), generator=random_state).item())
        out[metric.name] = metric(explanation, adapter, batch_size=batch_size, random_state=seed)
    return out


def compare(explanations: Sequence[xai.Explanation], model: Any,
            metrics: Sequence[str | Metric] | None = None, *,
            batch_size: int | str = "auto",
            random_state: int | torch.Generator | None = None) -> Any:
    """Methods side by side: one row per (method, metric) with the mean score.

    All explanations must explain the same inputs; each is scored with the same metrics and
    seed, so the perturbations drawn are identical across methods.
    """
    import pandas as pd

    frames = []
    for exp in explanations:
        res = evaluate(exp, model, metrics, batch_size=batch_size, random_state=random_state)
        frames.append(res.summary())
    table = pd.concat(frames, ignore_index=True)
    return table.pivot(index="method", columns="metric", values="mean")


#: Light settings for reports (``xai demo``): a few seconds per explanation on 2 CPUs.
REPORT_METRICS: dict[str, dict[str, Any]] = {
    "faithfulness_correlation": {"n_subsets": 30},
    "infidelity": {"n_perturbations": 50},
    "comprehensiveness": {},
    "sufficiency": {},
    "aopc_comprehensiveness": {},
    "log_odds": {},
    "complexity": {},
}


def report_scores(explanation: xai.Explanation, model: Any) -> dict[str, dict[str, Any]]:
    """Mean score of each applicable report metric: {name: {"mean": float, "higher_is_better"}}.

    Registered under the entry-point group ``xai.scorers`` so that ``xai demo`` can add a metric
    table to its report without ``xai`` importing ``metrics``.
    """
    out: dict[str, dict[str, Any]] = {}
    for name, params in REPORT_METRICS.items():
        if name not in METRICS or not METRICS.get(name).applies_to(explanation):
            continue
        res = METRICS.get(name)(**params)(explanation, model, random_state=0)
        out[name] = {"mean": res.mean(), "higher_is_better": res.higher_is_better}
    return out
