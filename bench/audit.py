"""Cost of ``metrics.audit`` per example: the batch jobs vs the aggregation, and no repeated work.

The audit explains every (method, setting) once through ``xai.batch.score`` and scores each
explanation with the metrics (the jobs), then builds the report tables from the rows (the
aggregation: agreement over method pairs, stability over the varied settings, disparity with
bootstrap intervals and permutation tests). This area times the two parts and counts the model
rows the audit makes (a counter on the scikit-learn pipeline's ``predict_proba``; a forward
pre-hook on MiniLM), against the same explanations and metrics computed directly with
``xai.explain`` + ``metrics.evaluate`` (the same methods, settings, seeds and model defaults):
the rows must be equal, i.e. the audit makes no model call beyond its explanations' and
metrics'.

Models: the demo credit pipeline (quick and full) and the MiniLM sentiment model (full only).
Run ``python bench/audit.py --quick --no-write`` (about a minute), or without ``--quick``;
``bench/run.py`` runs every area.
"""

from __future__ import annotations

import dataclasses
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

_HERE = Path(__file__).resolve().parent
# bench/metrics.py shares its name with the metrics package: import the package, not the file
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
import metrics  # noqa: E402

sys.path.insert(0, str(_HERE))

from run import CallCounter, Section, area_main, load_average  # noqa: E402

import xai  # noqa: E402

SEED = 0


@dataclasses.dataclass
class Setup:
    title: str
    spec: str
    X: Any
    groups: list[Any]
    methods: list[Any]
    metric_names: list[str]
    vary: dict[str, dict[str, list[Any]]]


@dataclasses.dataclass
class Result:
    setup: Setup
    n: int
    variants: int
    total: float  # seconds of the audit call
    jobs: float  # seconds in xai.batch.score (explanations + metrics)
    rows_audit: int
    calls_audit: int
    rows_direct: int
    direct: float  # seconds of the direct xai.explain + metrics.evaluate


class PredictCounter:
    """Counts calls and rows of a scikit-learn estimator's ``predict_proba`` (instance patch)."""

    def __init__(self, estimator: Any) -> None:
        self.calls = self.rows = 0
        self._estimator = estimator
        original = estimator.predict_proba

        def counted(x: Any) -> Any:
            self.calls += 1
            self.rows += int(x.shape[0])
            return original(x)

        estimator.predict_proba = counted

    @contextmanager
    def count(self) -> Iterator[PredictCounter]:
        self.calls = self.rows = 0
        yield self

    def close(self) -> None:
        del self._estimator.predict_proba


def _counter(model: Any) -> Any:
    import torch

    if isinstance(model, torch.nn.Module):
        return CallCounter(model)
    inner = getattr(model, "model", None)
    if isinstance(inner, torch.nn.Module):
        return CallCounter(inner)
    return PredictCounter(model)


@contextmanager
def _timed_jobs(box: list[float]) -> Iterator[None]:
    """Accumulate the seconds spent in ``xai.batch.score`` (the audit's jobs)."""
    import xai.batch as batch

    original = batch.score

    def timed(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            box[0] += time.perf_counter() - t0

    batch.score = timed
    try:
        yield
    finally:
        batch.score = original


def _unique_variants(setup: Setup) -> list[tuple[str, dict[str, Any], int]]:
    """(method, params, seed) of every distinct job the audit runs (as metrics.audit plans)."""
    out: dict[str, tuple[str, dict[str, Any], int]] = {}
    base = {}
    for entry in setup.methods:
        name, params = (entry, {}) if isinstance(entry, str) else (entry[0], dict(entry[1]))
        base[name] = params
        out[repr((name, sorted(params.items()), SEED))] = (name, params, SEED)
    for name, sweep in setup.vary.items():
        for param, values in sweep.items():
            for value in values:
                if param == "random_state":
                    key = (name, sorted(base[name].items()), int(value))
                    out.setdefault(repr(key), (name, base[name], int(value)))
                else:
                    params = {**base[name], param: value}
                    out.setdefault(repr((name, sorted(params.items()), SEED)),
                                   (name, params, SEED))
    return list(out.values())


def measure(setup: Setup) -> Result:
    from xai.batch import load_model

    loaded = load_model(setup.spec)
    counter = _counter(loaded.model)
    box = [0.0]
    try:
        with warnings.catch_warnings(), counter.count(), _timed_jobs(box):
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            metrics.audit(loaded, setup.X, methods=setup.methods, metrics=setup.metric_names,
                          vary=setup.vary, groups=setup.groups, random_state=SEED,
                          min_group_size=5)
            total = time.perf_counter() - t0
        rows_audit, calls_audit = counter.rows, counter.calls
        variants = _unique_variants(setup)
        inputs = setup.X
        target = loaded.target
        with warnings.catch_warnings(), counter.count():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            for name, params, seed in variants:
                kwargs = {**{k: v for k, v in loaded.method_defaults.items()
                             if k in _fields(name) and k not in params}, **params}
                exp = xai.explain(loaded.model, inputs, method=name, target=target,
                                  random_state=seed, **kwargs)
                metrics.evaluate(exp, loaded.model, setup.metric_names, random_state=seed)
            direct = time.perf_counter() - t0
        rows_direct = counter.rows
    finally:
        counter.close()
    return Result(setup, len(setup.groups), len(variants), total, box[0], rows_audit,
                  calls_audit, rows_direct, direct)


def _fields(name: str) -> set[str]:
    from xai._registry import METHODS

    return {f.name for f in dataclasses.fields(METHODS.get(METHODS.canonical(name)))}


def credit_setup(n: int) -> Setup:
    from xai.demo import load_credit

    X, _ = load_credit()
    X = X.iloc[np.sort(np.random.default_rng(SEED).choice(len(X), size=n, replace=False))]
    sex = ["female" if int(v) == 1 else "male" for v in X["personal_status"]]
    return Setup("demo-credit (scikit-learn pipeline)", "demo-credit", X, sex,
                 ["occlusion", ("kernel_shap", {"budget": 128}),
                  ("shapley_sampling", {"budget": 128})],
                 ["comprehensiveness", "faithfulness_correlation", "complexity"],
                 {"kernel_shap": {"random_state": [0, 1, 2]}})


def sentiment_setup(n: int) -> Setup:
    from xai.demo._data import split_reviews

    _, test = split_reviews(random_state=SEED)
    texts = list(test["text"].iloc[:n])
    groups = ["short" if len(t.split()) < 18 else "long" for t in texts]
    word = {"granularity": "word"}
    return Setup("demo-sentiment (MiniLM)", "demo-sentiment", texts, groups,
                 [("integrated_gradients", {**word, "n_steps": 16}), ("occlusion", word),
                  ("kernel_shap", {**word, "budget": 64})],
                 ["comprehensiveness", "complexity"],
                 {"kernel_shap": {"random_state": [0, 1]}})


def run(quick: bool = False) -> Section:
    setups = [credit_setup(32 if quick else 200)]
    if not quick:
        setups.append(sentiment_setup(16))
    results = [measure(s) for s in setups]
    lines = ["| model | examples | jobs (method settings) | audit s / example | jobs "
             "(explain + metrics) s / example | aggregation s / example | model rows: audit | "
             "model rows: explain + evaluate | equal |",
             "|---|---|---|---|---|---|---|---|---|"]
    ok = True
    for r in results:
        same = r.rows_audit == r.rows_direct
        ok = ok and same
        lines.append(
            f"| {r.setup.title} | {r.n} | {r.variants} | {r.total / r.n:.3f} | "
            f"{r.jobs / r.n:.3f} | {(r.total - r.jobs) / r.n:.4f} | {r.rows_audit:,} | "
            f"{r.rows_direct:,} | {'yes' if same else 'NO'} |")
    notes = [
        "",
        "Jobs: the time inside `xai.batch.score` (every explanation and metric of every method "
        "setting); aggregation: the rest of the `metrics.audit` call (loading aside: the model is "
        "loaded before), i.e. the agreement, stability and disparity tables with 2000 bootstrap "
        "replicates and 2000 permutations per row. Model rows are counted on the model "
        "(`predict_proba` of the pipeline; a forward pre-hook on MiniLM) for the audit and for "
        "the same methods, settings and seeds run with `xai.explain` + `metrics.evaluate`; equal "
        "counts mean the audit repeats no work (a varied value equal to the listed setting, "
        "here kernel_shap's random_state 0, is computed once).",
        "",
        "Setups: " + "; ".join(
            f"{r.setup.title}: methods {r.setup.methods}, metrics {r.setup.metric_names}, vary "
            f"{r.setup.vary}, groups by "
            + ("sex (personal_status)" if r.setup.spec == "demo-credit" else "length")
            for r in results) + f"; random_state {SEED}.",
        f"Load average at the end: {load_average()}.",
    ]
    return Section("metrics.audit cost per example", "\n".join(lines + notes), ok)


def main() -> int:
    return area_main(run, __doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())

