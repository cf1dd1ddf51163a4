"""Amortized explainers on the MiniLM sentiment model: error against exact Shapley, speed, fit.

Issue 18, requirement 5 (text). The demo sentiment model (frozen all-MiniLM-L6-v2 sentence
encoder plus its trained logistic head; target: the "fresh" logit) explained over words, words
outside the coalition replaced by [PAD] (the default game of every contender, the teacher's
included). Reviews come from ``split_reviews(random_state=0)``:

- Held-out test texts: the first ``N_TEST`` test reviews of 11 to 14 words (2^11 coalitions and
  more, so that no contender falls back to exact enumeration), explained against their **exact**
  Shapley values (all 2^d coalitions, the same game).
- Peers: ``kernel_shap`` and ``shapley_sampling`` at budgets of 100, 500 and 2,000 model rows per
  text, seeds 0 and 1; time per explanation = wall time of ``xai.explain`` on the test texts /
  texts.
- Amortized: ``xai.AmortizedExplainer.fit(model, train_texts, objective="distill",
  teacher="shapley_sampling", teacher_params=TEACHER_PARAMS, validation=val_texts, cache=...)``
  on training reviews of 4 to 20 words (``TEACHER_PARAMS = {"budget": 128, "max_exact": 128}``),
  then ``xai.explain(model, test, method=explainer)``. The head reads the encoder's frozen token
  states, so after the teacher's values are computed (once, cached) each further head is cheap:
  several widths are fitted on the same cache. FastSHAP is left out here: it scores fresh
  coalitions every epoch, which this CPU cannot afford at this scale (the guide reports a short
  run).
- Faithfulness (``metrics.evaluate``; random_state 0) of the best head, its teacher and kernel
  SHAP at 500 rows on the test texts.

Run ``python bench/amortized_text.py`` (full: about half an hour on 2 CPU cores, most of it the
teacher and the exact values) or ``--quick``; ``--no-write`` keeps ``docs/benchmarks.md``
untouched and ``--results PATH`` writes the section as a page (the project's
``docs/amortized_text_results.md`` is written that way). ``--cache DIR`` keeps the teacher's
values between runs (a killed run resumes).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

_HERE = Path(__file__).resolve().parent
# bench/metrics.py shares its name with the metrics package: import the package, not the file
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
import metrics  # noqa: E402

sys.path.insert(0, str(_HERE))

from amortized import GOAL_BUDGET, GOAL_SPEEDUP, peer_table  # noqa: E402
from run import Section, area_main, load_average, machine_info  # noqa: E402

import xai  # noqa: E402
from xai.demo import load_sentiment_model, split_reviews  # noqa: E402
from xai.methods.shapley_sampling import ShapleySampling  # noqa: E402

TARGET = 1  # the "fresh" logit
TEACHER_BUDGET = 128
# max_exact=budget: a short review is enumerated only when its 2^d coalitions fit the budget
# (the default, 1,024, would spend up to 1,024 rows on every review of 10 words or fewer)
TEACHER_PARAMS = {"budget": TEACHER_BUDGET, "max_exact": TEACHER_BUDGET}
METRICS = ("faithfulness_correlation", "comprehensiveness", "sufficiency")


@dataclasses.dataclass
class Scale:
    n_train: int
    n_val: int
    n_test: int
    test_words: tuple[int, int]
    seeds: tuple[int, ...]
    heads: tuple[tuple[int, ...], ...]
    epochs: int


FULL = Scale(n_train=2000, n_val=200, n_test=20, test_words=(11, 14), seeds=(0, 1),
             heads=((128,), (256, 256), (512, 512)), epochs=150)
QUICK = Scale(n_train=160, n_val=40, n_test=4, test_words=(11, 11), seeds=(0,),
              heads=((128,),), epochs=20)


@dataclasses.dataclass
class Data:
    model: Any
    train: list[str]
    val: list[str]
    test: list[str]


def n_words(texts: Any) -> np.ndarray:
    return texts.str.split().str.len().to_numpy()


def data(scale: Scale) -> Data:
    train_df, test_df = split_reviews(random_state=0)
    w = n_words(train_df["text"])
    pool = train_df["text"][(w >= 4) & (w <= 20)].tolist()
    lo, hi = scale.test_words
    wt = n_words(test_df["text"])
    test = test_df["text"][(wt >= lo) & (wt <= hi)].tolist()[:scale.n_test]
    return Data(load_sentiment_model(), pool[:scale.n_train],
                pool[scale.n_train:scale.n_train + scale.n_val], test)


def explain(d: Data, texts: list[str], method: Any, **params: Any) -> tuple[list[torch.Tensor],
                                                                              float]:
    """Per-text word values of the target (ragged), and the wall time of the call."""
    start = time.perf_counter()
    exp = xai.explain(d.model, texts, method=method, target=TARGET, **params)
    sec = time.perf_counter() - start
    values = exp.values[:, 0].double()
    return [values[i, :f.n_features] for i, f in enumerate(exp.features)], sec


def rmse(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    """RMSE over every word of every text."""
    return float(torch.cat([x - y for x, y in zip(a, b, strict=True)]).pow(2).mean().sqrt())


def exact(d: Data, cache: Path | None) -> tuple[list[torch.Tensor], float]:
    """Exact values of the test texts (read back from ``cache`` when a run stored them)."""
    key = hashlib.sha256(json.dumps(d.test).encode()).hexdigest()[:16]
    path = None if cache is None else cache / f"exact-{key}.pt"
    if path is not None and path.is_file():
        stored = torch.load(path, weights_only=True)
        return list(stored["values"]), float(stored["seconds"])
    values, sec = explain(d, d.test, ShapleySampling(
        max_exact=2**max(len(t.split()) for t in d.test)))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"values": values, "seconds": sec}, path)
    return values, sec


def peers(d: Data, ref: list[torch.Tensor], seeds: tuple[int, ...]
          ) -> dict[tuple[str, int], dict[str, Any]]:
    return peer_table(lambda method, budget, seed: explain(d, d.test, method, budget=budget,
                                                           random_state=seed),
                      lambda values: rmse(values, ref), len(d.test), seeds)


def fit_all(d: Data, ref: list[torch.Tensor], scale: Scale, cache: Path
            ) -> list[tuple[str, xai.AmortizedExplainer, dict[str, Any]]]:
    out = []
    for hidden in scale.heads:
        label = f"distill shapley_sampling@{TEACHER_BUDGET}, hidden {hidden}"
        am = xai.AmortizedExplainer.fit(
            d.model, d.train, validation=d.val, objective="distill", teacher="shapley_sampling",
            teacher_params=TEACHER_PARAMS, epochs=scale.epochs, patience=10,
            hidden=hidden, random_state=0, cache=cache, exact_max_features=0,
            show_progress=False)
        values, _ = explain(d, d.test, am)
        explain(d, d.test, am)  # warm
        per_row = float(np.median([explain(d, d.test, am)[1] for _ in range(5)])) / len(d.test)
        r = am.report
        res = {"rmse": rmse(values, ref), "fit_s": r.fit_seconds, "rows": r.model_rows,
               "epochs": f"{r.best_epoch}/{len(r.history)}", "n_train": r.n_train,
               "val_rmse_teacher": r.rmse_teacher, "per_row": per_row}
        print(f"{label}: {res}", flush=True)
        out.append((label, am, res))
    return out


def faithfulness(d: Data, am: xai.AmortizedExplainer) -> list[tuple[str, dict[str, float]]]:
    contenders = [("amortized (best head)", am, {}),
                  (f"teacher: shapley_sampling, budget {TEACHER_BUDGET}", "shapley_sampling",
                   {**TEACHER_PARAMS, "random_state": 0}),
                  ("kernel_shap, budget 500", "kernel_shap", {"budget": 500, "random_state": 0})]
    out = []
    for label, method, params in contenders:
        exp = xai.explain(d.model, d.test, method=method, target=TARGET, **params)
        res = metrics.evaluate(exp, d.model, list(METRICS), random_state=0)
        out.append((label, {m: res[m].mean() for m in METRICS}))
    return out


def f(v: float, digits: int = 4) -> str:
    return f"{v:.{digits}f}"


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f}"


def run(quick: bool = False, cache: Path | None = None) -> Section:
    """Measure everything and return the markdown section."""
    warnings.filterwarnings("ignore")
    load_start = load_average()
    scale = QUICK if quick else FULL
    d = data(scale)
    ref, ref_s = exact(d, cache)
    rms = float(torch.cat(ref).pow(2).mean().sqrt())
    words = [len(t.split()) for t in d.test]
    print(f"exact: {ref_s:.0f} s, RMS {rms:.4f}, words {words}", flush=True)
    peer = peers(d, ref, scale.seeds)
    with tempfile.TemporaryDirectory() as tmpdir:
        fits = fit_all(d, ref, scale, cache if cache is not None else Path(tmpdir) / "cache")
    best = min(fits, key=lambda t: t[2]["rmse"])
    faith = faithfulness(d, best[1])
    k500 = peer["kernel_shap", GOAL_BUDGET]
    b = best[2]
    speedup = k500["per_row"] / b["per_row"]
    err_met = b["rmse"] <= k500["rmse"]
    n = len(d.test)
    lines = [
        "MiniLM sentiment model (`xai.demo.load_sentiment_model()`: frozen all-MiniLM-L6-v2 "
        "plus its logistic head), target the \"fresh\" logit, words as players and [PAD] "
        f"removal for every method; {len(d.train):,} training and {len(d.val)} validation "
        "reviews of 4-20 words from `split_reviews(random_state=0)[0]`, and the first "
        f"{n} held-out reviews of {scale.test_words[0]}-{scale.test_words[1]} words "
        f"({min(words)}-{max(words)}, {sum(words)} words in all) from its test part. "
        f"{torch.get_num_threads()} torch threads.", "",
        f"**Reference**: exact Shapley values from all 2^d coalitions of each test review "
        f"({ref_s:.0f} s). RMS of the values: {rms:.4f}.", "",
        "### Error and time per explanation", "",
        f"RMSE over every word of the {n} test reviews (peers: mean over seeds "
        f"{', '.join(map(str, scale.seeds))}, ± the spread); time per explanation = wall time of "
        f"`xai.explain` on the {n} reviews / {n}.", "",
        "| method | budget (rows / text) | RMSE | RMSE / values' RMS | ms per explanation |",
        "|---|---|---|---|---|"]
    for (method, budget), r in peer.items():
        lines.append(f"| {method} | {budget:,} | {f(r['rmse'])} ± {f(r['rmse_sd'])} | "
                     f"{r['rmse'] / rms:.1%} | {ms(r['per_row'])} |")
    for label, _, r in fits:
        mark = " (best)" if r is b else ""
        lines.append(f"| amortized: {label}{mark} | 3 (+ fit) | {f(r['rmse'])} | "
                     f"{r['rmse'] / rms:.1%} | {ms(r['per_row'])} |")
    lines += ["", "The amortized explainer's 3 rows per text: f(x), f(all [PAD]) and the "
              "encoder pass that gives the token states.", "",
              "### Fitting", "",
              "| head | training texts | best epoch / run | fit s | model rows in the fit | "
              "validation RMSE vs teacher | break-even vs kernel SHAP@500 (explanations) |",
              "|---|---|---|---|---|---|---|"]
    for label, _, r in fits:
        saved = k500["per_row"] - r["per_row"]
        even = f"{r['fit_s'] / saved:,.0f}" if saved > 0 else "never"
        lines.append(f"| {label} | {r['n_train']:,} | {r['epochs']} | {r['fit_s']:.1f} | "
                     f"{r['rows']:,} | {f(r['val_rmse_teacher'])} | {even} |")
    lines += ["", "All heads share one cache of teacher values: the first fit pays for the "
              "teacher (its fit seconds and model rows), the later ones read it back and pay for "
              "the token states and the training only. Adam, batch size 32, lr 2e-3, patience "
              "10, `random_state=0`.", "",
              "### Goal (issue 18)", "",
              f"- Error no worse than kernel SHAP at {GOAL_BUDGET} rows: best amortized RMSE "
              f"{f(b['rmse'])} vs {f(k500['rmse'])}: **{'met' if err_met else 'not met'}** "
              f"(ratio {b['rmse'] / k500['rmse']:.1f}x).",
              f"- At least {GOAL_SPEEDUP:.0f}x faster per explanation: {speedup:.0f}x: "
              f"**{'met' if speedup >= GOAL_SPEEDUP else 'not met'}**.", "",
              "### Faithfulness (what the speed costs)", "",
              f"`metrics.evaluate(exp, model, {list(METRICS)}, random_state=0)` on the {n} test "
              "reviews, mean over reviews (faithfulness correlation and comprehensiveness: "
              "higher is better; sufficiency: lower is better).", "",
              "| explanation | " + " | ".join(METRICS) + " |", "|---|" + "---|" * len(METRICS)]
    lines += [f"| {label} | " + " | ".join(f"{v[m]:.4g}" for m in METRICS) + " |"
              for label, v in faith]
    lines += ["", f"Load average (1 min) at the start / end: {load_start} / {load_average()} "
              "(2 cores shared with other jobs)."]
    return Section("Amortized explainers (MiniLM sentiment)", "\n".join(lines),
                   err_met and speedup >= GOAL_SPEEDUP)


def write_results(section: Section, path: Path, *, quick: bool) -> None:
    info = machine_info()
    head = [f"# {section.title}", "",
            "Generated by `python bench/amortized_text.py --no-write --results "
            "docs/amortized_text_results.md` from the numbers of the run (do not edit by hand). "
            "What an amortized explainer is: [the guide](amortized.md); German credit: "
            "[its results](amortized_results.md).", "",
            f"_Measured {info['date']}, {'quick' if quick else 'full'} mode._", ""]
    head += [f"- {k}: {v}" for k, v in info.items() if k != "date"]
    path.write_text("\n".join([*head, "", section.markdown.rstrip(), ""]), encoding="utf-8")


def main() -> int:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--results", type=Path, default=None)
    pre.add_argument("--cache", type=Path, default=None)
    args, rest = pre.parse_known_args()
    sys.argv = [sys.argv[0], *rest]

    def run_area(quick: bool) -> Section:
        section = run(quick=quick, cache=args.cache)
        if args.results is not None:
            write_results(section, args.results, quick=quick)
        return section

    return area_main(run_area, "Amortized explainers vs kernel SHAP and Shapley sampling "
                               "(MiniLM sentiment); --results PATH writes the section as a page, "
                               "--cache DIR keeps the teacher's values.")


if __name__ == "__main__":
    raise SystemExit(main())
