"""``evaluate()`` and ``compare()``: many metrics on one or several explanations."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import torch

import xai
from xai.adapters import as_adapter
from xai.exceptions import InvalidParameterError
from xai.extend import required_fields

from ._base import Metric, MetricResult
from ._compare import check_same_inputs, labelled_explanations
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
                              "higher_is_better": r.higher_is_better} for n, r in self.items()],
                            columns=["metric", "method", "mean", "higher_is_better"])

    def _repr_html_(self) -> str:
        """Styled table: one row per (example, output), one column per metric, a mean row.

        Cells are green, darker for the better scores of each column; see
        ``xai.extend.scores_table_html``.
        """
        from xai.extend import scores_table_html

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
    cls = METRICS.get(metric)
    params = dict(params or {})
    fields = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(params) - fields)
    if unknown:
        msg = (f"{cls.__name__} got an unexpected parameter {unknown[0]!r}. Valid parameters of "
               f"{cls.__name__}: {', '.join(sorted(fields)) or 'none'}.")
        raise InvalidParameterError(msg, owner=cls.__name__, parameter=unknown[0],
                                    value=params[unknown[0]])
    missing = [n for n in required_fields(cls) if n not in params]
    if missing:
        example = {"action_set": "action_set=xai.ActionSet.from_dataframe(X_train)"}.get(
            missing[0], f"{missing[0]}=...")
        msg = (f"The {missing[0]!r} parameter of {cls.__name__} is required: pass it to "
               f"evaluate ({example}) or configure the metric ({cls.__name__}(...)).")
        raise InvalidParameterError(msg, owner=cls.__name__, parameter=missing[0])
    return cls(**params)


def _taken(metric: str | Metric, params: Mapping[str, Any]) -> dict[str, Any]:
    """The ``params`` that the metric named ``metric`` has fields for (none for an instance)."""
    if not isinstance(metric, str) or not params:
        return {}
    fields = {f.name for f in dataclasses.fields(METRICS.get(metric))}
    return {k: v for k, v in params.items() if k in fields}


def applicable_metrics(exp: xai.Explanation) -> list[str]:
    """Registered metrics that can score ``exp`` (and do not re-run the method)."""
    return METRICS.applicable(exp)


def evaluate(explanation: xai.Explanation, model: Any,
             metrics: str | Metric | Sequence[str | Metric] | None = None, *,
             batch_size: int | str = "auto",
             random_state: int | torch.Generator | None = None, **params: Any) -> Evaluation:
    """Score ``explanation`` with each metric.

    Parameters
    ----------
    explanation : xai.Explanation
    model : the explained model (or its adapter)
    metrics : str, Metric, or a sequence of them, optional
        Registry names (``metrics.METRICS.names()``) or configured instances; a single one is
        the same as a list of one. None means every applicable metric that does not re-explain
        (sensitivity is opt-in: it re-runs the method).
    batch_size : int or "auto", default="auto"
        Rows per model call.
    random_state : int, torch.Generator or None
        One seed for all metrics; each metric draws from its own generator seeded from it.
    **params
        Metric parameters by name (``action_set=actions, top_k=4``), given to every metric named
        by a string that has a parameter of that name. A parameter that no such metric takes is
        an InvalidParameterError; a configured Metric instance keeps its own parameters.

    Returns
    -------
    Evaluation
        A dict of metric name to MetricResult, with ``to_pandas()`` and ``summary()``.
    """
    adapter = as_adapter(model, inputs=explanation.inputs)
    out = Evaluation()
    for metric in _metric_list(explanation, metrics, params):
        seed = random_state if not isinstance(random_state, torch.Generator) else \
            int(torch.randint(0, 2**62, (1,), generator=random_state).item())
        out[metric.name] = metric(explanation, adapter, batch_size=batch_size, random_state=seed)
    return out


def _metric_list(explanation: xai.Explanation,
                 metrics: str | Metric | Sequence[str | Metric] | None,
                 params: Mapping[str, Any] | None = None) -> list[Metric]:
    """Metric instances to run, the named ones made with the ``params`` they take; a metric
    listed twice is refused (results are keyed by name)."""
    params = dict(params or {})
    if metrics is None:
        chosen: list[str | Metric] = list(METRICS.applicable(explanation, params))
    elif isinstance(metrics, str | Metric):
        chosen = [metrics]
    elif isinstance(metrics, Sequence | set | frozenset) and all(
            isinstance(m, str | Metric) for m in metrics):
        chosen = list(metrics)
    else:
        msg = (f"The 'metrics' parameter of evaluate must be a metric name, a Metric, a list of "
               f"them or None. Got {metrics!r} instead.")
        raise InvalidParameterError(msg, owner="evaluate", parameter="metrics", value=metrics)
    unused = sorted(set(params) - {p for m in chosen if isinstance(m, str)
                                   for p in _taken(m, params)})
    if unused:
        named = [m for m in chosen if isinstance(m, str)]
        msg = (f"evaluate got the metric parameter {unused[0]!r}, which none of the metrics "
               f"named by string ({', '.join(named) or 'none'}) takes. Check its spelling, or "
               "configure the metric that needs it: metrics.METRICS.get(name)(...).")
        raise InvalidParameterError(msg, owner="evaluate", parameter=unused[0],
                                    value=params[unused[0]])
    out = [make_metric(m, _taken(m, params)) for m in chosen]
    names = [m.name for m in out]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        msg = (f"The 'metrics' parameter of evaluate lists {twice[0]!r} more than once; results "
               "are keyed by metric name, so each metric may appear once. Evaluate the other "
               "settings in a separate call.")
        raise InvalidParameterError(msg, owner="evaluate", parameter="metrics", value=metrics)
    return out


def compare(explanations: Sequence[xai.Explanation] | Mapping[str, xai.Explanation],
            model: Any, metrics: str | Metric | Sequence[str | Metric] | None = None, *,
            names: Sequence[str] | None = None, batch_size: int | str = "auto",
            random_state: int | torch.Generator | None = None, **params: Any) -> Any:
    """Methods side by side: one row per explanation, one column per metric (mean score).

    Parameters
    ----------
    explanations : sequence of xai.Explanation, or a mapping of label to Explanation
        All must explain the same inputs (same shape and values), else InvalidExplanationError.
    model, metrics, batch_size, random_state, **params
        As in :func:`evaluate`. Every explanation is scored with the same metrics and seed, so
        the perturbations drawn are identical across methods.
    names : sequence of str, optional
        Row labels, one per explanation. By default the method name, with the parameters that
        differ between explanations of the same method (``"occlusion(window=2)"``), and
        ``" #k"`` appended if that is not enough to tell them apart.

    Returns
    -------
    pandas.DataFrame
        Indexed by label (index name ``"method"``), in the order given.
    """
    import pandas as pd

    labelled = labelled_explanations(explanations, names)
    check_same_inputs(labelled)
    frames = []
    for label, exp in labelled:
        res = evaluate(exp, model, metrics, batch_size=batch_size, random_state=random_state,
                       **params)
        frames.append(res.summary().assign(method=label))
    table = pd.concat(frames, ignore_index=True)
    out = table.pivot(index="method", columns="metric", values="mean")
    return out.reindex([label for label, _ in labelled])

