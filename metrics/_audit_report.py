"""`AuditReport`: the tables of ``metrics.audit``, its recommendation and its views."""

from __future__ import annotations

import dataclasses
import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xai.exceptions import InvalidParameterError, MissingDependencyError
from xai.extend import fmt_value

__all__ = ["AuditReport", "Recommendation"]

_TABLES = ("agreement", "stability", "metric_summary", "disparity", "gaps")


@dataclasses.dataclass
class Recommendation:
    """The method ``AuditReport.recommend`` picks, or None, and why.

    Attributes
    ----------
    method : str or None
        The recommended method; None when the preferred metrics do not separate the methods
        ("no clear winner").
    reason : str
        The evidence that decided, in words: metric means with intervals, in the order of
        preference, plus the winner's agreement with the other methods and its stability.
    evidence : pandas.DataFrame
        One row per method: each preferred metric's mean and interval, the mean rank
        correlation with the other methods and the lowest map stability (Spearman) over its
        varied hyperparameters.
    """

    method: str | None
    reason: str
    evidence: pd.DataFrame

    def __str__(self) -> str:
        return self.reason

    def _repr_html_(self) -> str:
        from xai.extend import table_html

        head = "No clear winner" if self.method is None else \
            f"Recommended: <strong>{html.escape(self.method)}</strong>"
        rows = []
        for r in self.evidence.to_dict("records"):  # "mean [low, high]" in one cell per metric
            row: dict[str, Any] = {}
            for key, value in r.items():
                if f"{key} ci" in r:
                    row[key] = f"{value:.4g} {r[f'{key} ci']}"
                elif not key.endswith(" ci"):
                    row[key] = None if isinstance(value, float) and math.isnan(value) else value
            rows.append(row)
        return (f"<p>{head}</p><p>{html.escape(self.reason)}</p>"
                f'<div style="overflow-x:auto">{table_html(rows)}</div>')


@dataclasses.dataclass
class AuditReport:
    """What ``metrics.audit`` found: agreement, stability and disparity tables.

    Attributes
    ----------
    agreement : pandas.DataFrame
        One row per (method_a, method_b, measure): ``k`` (top-k measures), ``mean`` over
        examples with its bootstrap interval ``ci_low``/``ci_high``, ``n`` examples and
        ``n_nan`` where the measure is undefined (e.g. a constant map).
    agreement_per_example : pandas.DataFrame
        The same per example: ``id, method_a, method_b, measure, value``.
    stability : pandas.DataFrame
        One row per (method, parameter, measure). ``kind="similarity"``: ``spearman`` and
        ``top_k_overlap`` of the maps over all pairs of the parameter's values (SAM), ``mean``
        over examples of the per-example mean, ``spread`` = sqrt(mean per-example variance over
        the pairs). ``kind="metric"``: a metric across the values: ``mean`` of the per-example
        means, ``spread`` = sqrt(mean per-example variance over the values), and the lowest and
        highest data-set mean over the values (``mean_min``, ``mean_max``). ``seed_floor``: for
        a hyperparameter of a method whose ``random_state`` is varied too, the seed sweep's
        similarity; a parameter whose similarity is not below it changes the maps no more
        than the seed does.
    metric_summary : pandas.DataFrame
        One row per (metric, method): mean over all examples with its bootstrap interval.
    disparity : pandas.DataFrame
        One row per (metric, method, group): ``n`` scored examples, ``n_nan``, ``too_small``
        (fewer than ``min_group_size``: no mean is given), ``mean``, ``ci_low``, ``ci_high``.
    gaps : pandas.DataFrame
        ``statistic="difference"``: mean of ``group`` minus mean of ``reference`` with a
        stratified bootstrap interval, a two-sided permutation ``p_value`` and its Holm
        adjustment over the report (``p_holm``); ``"max_gap"`` and ``"mean_gap"``
        (Balagopalan et al.) over all groups with intervals.
    scores : pandas.DataFrame
        The rows behind the tables: one per (example, method setting), with the group, the
        metrics and the status.
    skipped : dict
        Methods left out because they cannot explain the model, with the reason.
    failures : pandas.DataFrame
        Rows that failed (``variant, id, error``); they are left out of every table.
    notes : list of str
        Caveats found while aggregating (small groups, unlabelled examples).
    """

    agreement: pd.DataFrame
    agreement_per_example: pd.DataFrame
    stability: pd.DataFrame
    disparity: pd.DataFrame
    gaps: pd.DataFrame
    scores: pd.DataFrame
    methods: tuple[str, ...]
    metrics: tuple[str, ...]
    higher_is_better: Mapping[str, bool]
    metric_summary: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    skipped: Mapping[str, str] = dataclasses.field(default_factory=dict)
    failures: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    top_k: int | float = 5
    confidence: float = 0.95
    model_name: str = ""
    n_examples: int = 0
    notes: list[str] = dataclasses.field(default_factory=list)

    def __repr__(self) -> str:
        return (f"AuditReport(model={self.model_name!r}, examples={self.n_examples}, "
                f"methods={list(self.methods)}, metrics={list(self.metrics)}, "
                f"agreement={len(self.agreement)} rows, stability={len(self.stability)} rows, "
                f"disparity={len(self.disparity)} rows)")

    # recommendation ------------------------------------------------------------------------
    def recommend(self, prefer: Sequence[str] | None = None) -> Recommendation:
        """The method to use, chosen by the preferred metrics in order, with the evidence.

        For the first preferred metric, the method with the best mean wins if its interval
        does not overlap any other method's; the methods whose intervals overlap the best one
        go on to the next metric. When the metrics run out with several methods left, the
        answer is "no clear winner" (``method=None``), with the intervals that overlap.

        Parameters
        ----------
        prefer : sequence of str, optional
            Metric names of the audit, most important first (default: all, in audit order).

        Raises
        ------
        InvalidParameterError
            The audit scored no metric, or ``prefer`` names one it did not score.
        """
        if not self.metrics:
            msg = ("recommend ranks methods by metric scores, and this audit scored none. Run "
                   "metrics.audit(..., metrics=['comprehensiveness', 'max_sensitivity']).")
            raise InvalidParameterError(msg, owner="AuditReport.recommend", parameter="prefer",
                                        value=prefer)
        if prefer is None:
            prefer = list(self.metrics)
        if isinstance(prefer, str) or not isinstance(prefer, Sequence) or not prefer or \
                any(m not in self.metrics for m in prefer):
            bad = prefer if isinstance(prefer, str) or not isinstance(prefer, Sequence) else \
                next((m for m in prefer if m not in self.metrics), prefer)
            msg = (f"The 'prefer' parameter of recommend must list metrics of this audit "
                   f"({', '.join(self.metrics)}). Got {fmt_value(bad)} instead.")
            raise InvalidParameterError(msg, owner="AuditReport.recommend", parameter="prefer",
                                        value=prefer)
        summary = self.metric_summary.set_index(["metric", "method"])
        candidates = [m for m in self.methods
                      if math.isfinite(float(summary.loc[(prefer[0], m), "mean"]))]
        if not candidates:
            reason = (f"No method has a {prefer[0]} score (every row failed or was NaN; see "
                      "report.failures): nothing to recommend.")
            return Recommendation(None, reason, self._evidence(prefer))
        steps: list[str] = []
        winner = None
        for metric in prefer:
            stats = {m: summary.loc[(metric, m)] for m in candidates}
            sign = 1.0 if self.higher_is_better[metric] else -1.0
            ranked = sorted(candidates, key=lambda m: -sign * float(stats[m]["mean"]))
            best = stats[ranked[0]]
            tied = [m for m in ranked if m == ranked[0] or _overlap(stats[m], best)]
            word = "higher" if self.higher_is_better[metric] else "lower"
            shown = "; ".join(f"{m} {_est(stats[m])}" for m in ranked)
            if len(tied) == 1:
                winner = ranked[0]
                steps.append(f"{winner} has the best {metric} ({word} is better): {shown}; its "
                             f"{self.confidence:.0%} interval overlaps no other method's.")
                break
            steps.append(f"{metric} ({word} is better) does not separate "
                         f"{', '.join(tied)}: {shown} (intervals overlap).")
            candidates = tied
        if winner is None:
            reason = ("No clear winner among " + ", ".join(candidates) + ". " + " ".join(steps))
        else:
            reason = " ".join(steps) + self._caveats(winner)
        return Recommendation(winner, reason, self._evidence(prefer))

    def _caveats(self, method: str) -> str:
        parts = []
        agree = self._mean_rank_correlation(method)
        if math.isfinite(agree):
            parts.append(f" Its mean rank correlation with the other methods is {agree:.2f}.")
        stab = self._min_stability(method)
        if stab is not None:
            param, value = stab
            parts.append(f" Its maps' lowest stability (Spearman over the values of {param}) "
                         f"is {value:.2f}" + (" -- unstable, check the setting." if value < 0.5
                                              else "."))
        return "".join(parts)

    def _mean_rank_correlation(self, method: str) -> float:
        t = self.agreement
        if t.empty:
            return math.nan
        rows = t[(t["measure"] == "rank_correlation")
                 & ((t["method_a"] == method) | (t["method_b"] == method))]
        return float(rows["mean"].mean()) if len(rows) else math.nan

    def _min_stability(self, method: str) -> tuple[str, float] | None:
        t = self.stability
        if t.empty:
            return None
        rows = t[(t["method"] == method) & (t["measure"] == "spearman")]
        if rows.empty or not np.isfinite(rows["mean"]).any():
            return None
        row = rows.loc[rows["mean"].idxmin()]
        return str(row["parameter"]), float(row["mean"])

    def _evidence(self, prefer: Sequence[str]) -> pd.DataFrame:
        summary = self.metric_summary.set_index(["metric", "method"])
        rows = []
        for m in self.methods:
            row: dict[str, Any] = {"method": m}
            for metric in prefer:
                s = summary.loc[(metric, m)]
                row[metric] = float(s["mean"])
                row[f"{metric} ci"] = f"[{s['ci_low']:.4g}, {s['ci_high']:.4g}]"
            row["mean rank correlation"] = self._mean_rank_correlation(m)
            stab = self._min_stability(m)
            row["min stability (spearman)"] = math.nan if stab is None else stab[1]
            rows.append(row)
        return pd.DataFrame(rows)

    # views ---------------------------------------------------------------------------------
    def agreement_matrix(self, measure: str = "rank_correlation") -> pd.DataFrame:
        """Methods x methods mean agreement for ``measure`` (1 on the diagonal)."""
        if measure not in set(self.agreement["measure"]) and len(self.methods) > 1:
            msg = (f"The 'measure' parameter of agreement_matrix must be one of the audit's "
                   f"measures ({', '.join(dict.fromkeys(self.agreement['measure']))}). Got "
                   f"{fmt_value(measure)} instead.")
            raise InvalidParameterError(msg, owner="AuditReport", parameter="measure",
                                        value=measure)
        out = pd.DataFrame(np.eye(len(self.methods)), index=list(self.methods),
                           columns=list(self.methods))
        for _, r in self.agreement[self.agreement["measure"] == measure].iterrows():
            out.loc[r["method_a"], r["method_b"]] = r["mean"]
            out.loc[r["method_b"], r["method_a"]] = r["mean"]
        return out

    def plot_agreement(self, measure: str = "rank_correlation", *, ax: Any = None) -> Any:
        """Heatmap of the agreement matrix (matplotlib Axes), values written in the cells."""
        try:
            import matplotlib.pyplot as plt
        except ImportError as err:
            msg = ("plot_agreement needs matplotlib. Install it with: pip install "
                   "'posthoc-xai[plot]'.")
            raise MissingDependencyError(msg) from err
        matrix = self.agreement_matrix(measure)
        if ax is None:
            size = 1.2 + 0.9 * len(matrix)
            _, ax = plt.subplots(figsize=(size + 1.5, size))
        image = ax.imshow(matrix.to_numpy(dtype=float), vmin=-1 if measure in (
            "rank_correlation", "kendall") else 0, vmax=1, cmap="viridis")
        ax.set_xticks(range(len(matrix)), matrix.columns, rotation=45, ha="right")
        ax.set_yticks(range(len(matrix)), matrix.index)
        for i in range(len(matrix)):
            for j in range(len(matrix)):
                v = float(matrix.iloc[i, j])
                ax.text(j, i, "nan" if not math.isfinite(v) else f"{v:.2f}", ha="center",
                        va="center", color="white" if v < 0.6 else "black", fontsize=9)
        ax.set_title(f"Agreement: {measure} (mean over examples)")
        ax.figure.colorbar(image, ax=ax, fraction=0.046)
        return ax

    def to_pandas(self, table: str | None = None) -> pd.DataFrame:
        """One table by name, or (None) every summary table stacked with a ``table`` column.

        Names: ``agreement``, ``agreement_per_example``, ``stability``, ``metric_summary``,
        ``disparity``, ``gaps``, ``scores``, ``failures``.
        """
        names = (*_TABLES, "agreement_per_example", "scores", "failures")
        if table is not None:
            if table not in names:
                msg = (f"The 'table' parameter of to_pandas must be one of {', '.join(names)}. "
                       f"Got {fmt_value(table)} instead.")
                raise InvalidParameterError(msg, owner="AuditReport", parameter="table",
                                            value=table)
            return getattr(self, table).copy()
        frames = [getattr(self, n).assign(table=n) for n in _TABLES if len(getattr(self, n))]
        if not frames:
            return pd.DataFrame(columns=["table"])
        out = pd.concat(frames, ignore_index=True)
        return out[["table", *[c for c in out.columns if c != "table"]]]

    def to_html(self, path: str | Path | None = None) -> str:
        """A self-contained HTML page of the report (no JavaScript); written to ``path`` if given."""
        from xai.extend import report_html

        page = report_html(self._sections(), title=f"Explanation audit: {self.model_name}")
        if path is not None:
            Path(path).write_text(page, encoding="utf-8")
        return page

    def _repr_html_(self) -> str:
        parts = [f"<h3>Explanation audit: {html.escape(self.model_name)}</h3>"]
        for heading, fragment in self._sections():
            parts.append(f"<h4>{html.escape(heading)}</h4>{fragment}")
        return '<div class="xai-exp">' + "".join(parts) + "</div>"

    def _sections(self) -> list[tuple[str, str]]:
        from xai.extend import table_html

        def table(frame: pd.DataFrame, caption: str = "") -> str:
            if frame.empty:
                return '<p class="xai-note">(empty)</p>'
            cap = f'<p class="xai-note">{html.escape(caption)}</p>' if caption else ""
            records = [{k: _cell(v) for k, v in r.items()} for r in frame.to_dict("records")]
            return f'<div style="overflow-x:auto">{table_html(records)}</div>{cap}'

        overview = [f"{self.n_examples} examples; methods: {', '.join(self.methods)}; metrics: "
                    f"{', '.join(self.metrics) or 'none'}; top-k: {self.top_k}; intervals: "
                    f"{self.confidence:.0%} bootstrap."]
        overview += [f"Left out: {m} ({why})" for m, why in self.skipped.items()]
        if len(self.failures):
            overview.append(f"{len(self.failures)} row(s) failed and are left out.")
        overview += self.notes
        sections = [("Overview", "".join(f"<p>{html.escape(t)}</p>" for t in overview))]
        if self.metrics and len(self.metric_summary):
            rec = self.recommend()
            sections.append(("Recommendation", rec._repr_html_()))
            sections.append(("Metrics per method", table(self.metric_summary)))
        if len(self.methods) > 1:
            sections.append(("Agreement between methods", self._matrices_html()
                             + table(self.agreement, "Higher is better for every measure; "
                                     "1 = the same ranking.")))
        if len(self.stability):
            sections.append(("Stability to hyperparameters (SAM)", table(self.stability)))
        if len(self.disparity):
            sections.append(("Disparity across groups", table(self.disparity)))
            sections.append(("Gaps between groups", table(self.gaps)))
        return sections

    def _matrices_html(self) -> str:
        cells = []
        for measure in dict.fromkeys(self.agreement["measure"]):
            m = self.agreement_matrix(measure)
            head = "".join(f"<th>{html.escape(str(c))}</th>" for c in m.columns)
            body = "".join(
                f"<tr><th>{html.escape(str(i))}</th>"
                + "".join(_matrix_cell(float(v)) for v in m.loc[i]) + "</tr>" for i in m.index)
            cells.append(f'<div style="display:inline-block;margin:0 18px 10px 0;'
                         f'vertical-align:top"><div class="xai-note">{html.escape(measure)}'
                         f'</div><table class="xai-table"><thead><tr><th></th>{head}</tr>'
                         f"</thead><tbody>{body}</tbody></table></div>")
        return "<div>" + "".join(cells) + "</div>"


def _matrix_cell(v: float) -> str:
    if not math.isfinite(v):
        return '<td class="xai-num xai-nan">nan</td>'
    alpha = 0.08 + 0.6 * min(1.0, abs(v))
    rgb = "26,152,80" if v >= 0 else "215,48,39"
    return f'<td class="xai-num" style="background:rgba({rgb},{alpha:.2f})">{v:.2f}</td>'


def _cell(v: Any) -> Any:
    if isinstance(v, list | tuple | dict):
        return ", ".join(map(str, v)) if not isinstance(v, dict) else str(v)
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def _overlap(a: Any, b: Any) -> bool:
    lo_a, hi_a, lo_b, hi_b = (float(a["ci_low"]), float(a["ci_high"]), float(b["ci_low"]),
                              float(b["ci_high"]))
    if not all(math.isfinite(x) for x in (lo_a, hi_a, lo_b, hi_b)):
        return True  # no interval: cannot be told apart
    return lo_a <= hi_b and lo_b <= hi_a


def _est(s: Any) -> str:
    return f"{float(s['mean']):.4g} [{float(s['ci_low']):.4g}, {float(s['ci_high']):.4g}]"
