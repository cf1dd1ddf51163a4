"""Real runs of ``metrics.audit`` (issue 17, requirement 7): writes ``docs/audit_results.md``.

Three audits, every number in the page computed by this script:

1. **German credit, scikit-learn pipeline** (``"demo-credit"``): forward methods only (occlusion,
   Kernel SHAP, LIME, Shapley sampling; Integrated Gradients is listed too and the audit leaves it
   out with a warning, as it needs gradients). 500 applicants drawn without replacement from the
   1,000 by ``np.random.default_rng(0)``. Groups: (a) sex from ``personal_status`` (code 1 =
   "female : divorced/separated/married" -> female; codes 0, 2, 3 = the three male statuses ->
   male; code 4 "female : single" does not occur in the data); (b) age group from ``age`` in
   years: "<25", "25-40" (25 <= age <= 40), ">40". Both audits share one ``output`` folder, so
   the second one re-reads the rows and only re-aggregates.
2. **German credit, torch MLP** (``xai.demo._credit_mlp.fit_credit_mlp()``, standardized
   features): the same 500 applicants with Integrated Gradients (``n_steps`` varied) beside the
   forward methods, grouped by sex.
3. **MiniLM sentiment** (``"demo-sentiment"``) on Rotten Tomatoes snippets of the held-out split
   (``split_reviews(random_state=0)``). Group rule: a review is "women" if it matches the word
   list ``FEMALE_WORDS`` and not ``MALE_WORDS``, "men" if the reverse (whole words, case
   insensitive); reviews matching both or neither are not drawn. The first ``N_PER_GROUP`` of
   each group in the split's order are audited. Every method explains words
   (``granularity="word"``) so that agreement is defined; ``"kendall"`` is among the measures
   to compare with Neely et al. (HHAI 2022).

Run ``python bench/audit_real.py`` (about 25 minutes on 2 busy CPU cores) or ``--quick`` (a few
examples, for checking the script; it does not write the page unless ``--write``). The rows of
every job are kept under ``/tmp/audit_real/<run>/``, so a rerun resumes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import platform
import re
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

_HERE = Path(__file__).resolve().parent
# bench/metrics.py shares its name with the metrics package: import the package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
import metrics  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "audit_results.md"
OUT = Path("/tmp/audit_real")
SEED = 0
HTML_LIMIT = 300_000  # bytes: larger HTML reports are not written under docs/
WRITE_HTML = True

N_CREDIT = 500
N_PER_GROUP = 20
FEMALE_WORDS = ("she", "her", "hers", "herself", "woman", "women", "girl", "girls", "actress",
                "actresses", "mother", "daughter", "wife", "sister", "lady", "ladies", "heroine",
                "queen", "mom")
MALE_WORDS = ("he", "him", "his", "himself", "man", "men", "boy", "boys", "actor", "actors",
              "father", "son", "husband", "brother", "gentleman", "hero", "king", "dad", "guy",
              "guys")
SEX = {0: "male", 1: "female", 2: "male", 3: "male", 4: "female"}

CREDIT_METHODS: list[Any] = ["occlusion", ("kernel_shap", {"budget": 256}),
                             ("lime", {"n_samples": 256, "kernel_width": 25.0}),
                             ("shapley_sampling", {"budget": 256}),
                             "integrated_gradients"]
CREDIT_METRICS = ["faithfulness_correlation", "comprehensiveness", "max_sensitivity",
                  "complexity"]
CREDIT_VARY = {"kernel_shap": {"random_state": [0, 1, 2]},
               "lime": {"kernel_width": [5.0, 25.0, 75.0]}}
MLP_METHODS: list[Any] = [("integrated_gradients", {"n_steps": 64}), "occlusion",
                          ("kernel_shap", {"budget": 256}), ("shapley_sampling", {"budget": 256})]
MLP_VARY = {"integrated_gradients": {"n_steps": [8, 64, 256]},
            "kernel_shap": {"random_state": [0, 1, 2]}}
TEXT_METHODS: list[Any] = [
    ("integrated_gradients", {"granularity": "word", "n_steps": 32}),
    ("occlusion", {"granularity": "word"}),
    ("kernel_shap", {"granularity": "word", "budget": 128}),
    ("shapley_sampling", {"granularity": "word", "budget": 128}),
    ("lime", {"granularity": "word", "n_samples": 128})]
TEXT_METRICS = ["comprehensiveness", "sufficiency", "complexity"]
TEXT_VARY = {"integrated_gradients": {"n_steps": [16, 32]},
             "kernel_shap": {"random_state": [0, 1]}}
MEASURES = ["feature", "rank", "sign", "signed_rank", "rank_correlation", "pairwise_rank",
            "kendall"]
NEELY = ("Neely et al. (HHAI 2022) report mean Kendall tau between attribution methods on "
         "DistilBERT all <= .29, except IG vs Grad-SHAP (.39-.55) and DeepLIFT vs Deep-SHAP "
         "(.45-.60).")


@dataclasses.dataclass
class Run:
    key: str
    title: str
    report: Any
    seconds: float
    n: int
    setup: list[str]
    group_rule: str
    resumed: bool = False


# -- data --------------------------------------------------------------------------------------
def credit_sample(n: int) -> pd.DataFrame:
    from xai.demo import load_credit

    X, _ = load_credit()
    rows = np.sort(np.random.default_rng(SEED).choice(len(X), size=n, replace=False))
    return X.iloc[rows]


def sex_of(frame: pd.DataFrame) -> pd.Series:
    return frame["personal_status"].astype(int).map(SEX)


def age_group(frame: pd.DataFrame) -> pd.Series:
    age = frame["age"]
    return pd.Series(np.where(age < 25, "<25", np.where(age <= 40, "25-40", ">40")),
                     index=frame.index)


def _words(words: Sequence[str]) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(words) + r")\b", re.IGNORECASE)


def gender_rule(text: str) -> str | None:
    """"women" / "men" by the word lists; None when a review matches both or neither."""
    f, m = bool(_words(FEMALE_WORDS).search(text)), bool(_words(MALE_WORDS).search(text))
    return "women" if f and not m else "men" if m and not f else None


def review_sample(n_per_group: int) -> tuple[list[str], list[str]]:
    from xai.demo._data import split_reviews

    _, test = split_reviews(random_state=SEED)
    texts, groups = [], []
    counts = {"women": 0, "men": 0}
    for text in test["text"]:
        g = gender_rule(text)
        if g is not None and counts[g] < n_per_group:
            texts.append(text)
            groups.append(g)
            counts[g] += 1
    return texts, groups


# -- runs --------------------------------------------------------------------------------------
def _audit(model: Any, X: Any, groups: Any, out: str, record: bool = True,
           **kw: Any) -> tuple[Any, float]:
    """The report and the seconds of the call that computed its rows: a rerun resumes the
    rows from ``OUT/out`` and reports the time stored by the first, complete run."""
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = metrics.audit(model, X, groups=groups, output=OUT / out, top_k=5,
                               random_state=SEED, **kw)
    secs = time.perf_counter() - t0
    stored = OUT / out / "seconds.json"
    if not record:
        return report, secs
    if stored.exists():
        return report, float(json.loads(stored.read_text())["seconds"])
    stored.write_text(json.dumps({"seconds": secs}))
    return report, secs


def run_credit(n: int) -> list[Run]:
    X = credit_sample(n)
    kw = {"methods": CREDIT_METHODS, "metrics": CREDIT_METRICS, "vary": CREDIT_VARY,
          "measures": MEASURES}
    setup = [f"model `demo-credit` (scikit-learn logistic-regression pipeline), {n} applicants "
             f"drawn by `np.random.default_rng({SEED})`",
             f"methods `{CREDIT_METHODS}`", f"metrics `{CREDIT_METRICS}`",
             f"vary `{CREDIT_VARY}`", f"top_k 5, random_state {SEED}, 2000 bootstrap "
             "replicates and 2000 permutations"]
    sex, t_sex = _audit("demo-credit", X, sex_of(X), f"credit_n{n}", **kw)
    age, t_age = _audit("demo-credit", X, age_group(X), f"credit_n{n}", record=False, **kw)
    return [Run("credit_sex", "German credit (pipeline) by sex", sex, t_sex, n, setup,
                "sex from `personal_status`: code 1 (female : divorced/separated/married) = "
                "female; codes 0, 2, 3 (male : divorced/separated, single, married/widowed) = "
                "male"),
            Run("credit_age", "German credit (pipeline) by age group", age, t_age, n, setup,
                "age in years: <25, 25-40 (inclusive), >40", resumed=True)]


def run_credit_mlp(n: int) -> Run:
    from xai.demo._credit_mlp import fit_credit_mlp

    X = credit_sample(n)
    mlp = fit_credit_mlp()
    Z = pd.DataFrame(mlp.standardize(X).numpy(), columns=X.columns, index=X.index)
    model = mlp.model  # logits (bad, good); the audit explains the predicted class
    report, secs = _audit(model, Z, list(sex_of(X)), f"credit_mlp_n{n}", methods=MLP_METHODS,
                          metrics=CREDIT_METRICS, vary=MLP_VARY, measures=MEASURES,
                          target=1)
    setup = [f"model: torch MLP 20-64-2 of `fit_credit_mlp()` (held-out accuracy "
             f"{mlp.accuracy:.3f}) on standardized features; the same {n} applicants; "
             "baseline: the models' default (zeros = the training mean); target: class 1 (good)",
             f"methods `{MLP_METHODS}`", f"metrics `{CREDIT_METRICS}`", f"vary `{MLP_VARY}`",
             f"top_k 5, random_state {SEED}"]
    return Run("credit_mlp_sex", "German credit (torch MLP, with IG) by sex", report, secs, n,
               setup, "sex from `personal_status`, as above")


def run_sentiment(n_per_group: int) -> Run:
    texts, groups = review_sample(n_per_group)
    report, secs = _audit("demo-sentiment", texts, groups, "sentiment", methods=TEXT_METHODS,
                          metrics=TEXT_METRICS, vary=TEXT_VARY, measures=MEASURES)
    setup = [f"model `demo-sentiment` (MiniLM fine-tuned on the review snippets), {len(texts)} "
             f"held-out snippets of `split_reviews(random_state={SEED})`",
             f"methods `{TEXT_METHODS}`", f"metrics `{TEXT_METRICS}`", f"vary `{TEXT_VARY}`",
             f"top_k 5 words, random_state {SEED}; target: the predicted class"]
    rule = (f"the first {n_per_group} held-out snippets (split order) matching the female word "
            f"list and not the male one (\"women\"), and the first {n_per_group} matching the "
            "male list and not the female one (\"men\"); whole words, case-insensitive. Female: "
            f"{', '.join(FEMALE_WORDS)}. Male: {', '.join(MALE_WORDS)}. Snippets matching both "
            "or neither are not drawn.")
    return Run("sentiment_gender", "MiniLM sentiment by women/men mentions", report, secs,
               len(texts), setup, rule)


# -- markdown ----------------------------------------------------------------------------------
def fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return ""
    if isinstance(v, bool | np.bool_):
        return "yes" if v else ""
    if isinstance(v, float | np.floating):
        if math.isnan(v):
            return ""
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e4):
            return f"{v:.2e}"
        return f"{v:.{digits}f}"
    if isinstance(v, list | tuple):
        return ", ".join(map(str, v))
    return str(v).replace("|", "\\|")


def md_table(frame: pd.DataFrame, index: bool = False) -> str:
    if index:
        frame = frame.reset_index()
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |"
              for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def ci(mean: float, low: float, high: float) -> str:
    return f"{mean:.3f} [{low:.3f}, {high:.3f}]"


def pair_table(report: Any) -> pd.DataFrame:
    a = report.agreement
    out = a[a["measure"].isin(["rank_correlation", "kendall", "feature"])].copy()
    out["mean [95% CI]"] = [ci(r.mean, r.ci_low, r.ci_high) for r in out.itertuples()]
    return out.pivot_table(index=["method_a", "method_b"], columns="measure",
                           values="mean [95% CI]", aggfunc="first").reset_index()


def findings(run: Run) -> str:
    r = run.report
    out = []
    a = r.agreement
    rc = a[a["measure"] == "rank_correlation"].sort_values("mean")
    if len(rc):
        lo, hi = rc.iloc[0], rc.iloc[-1]
        out.append(f"Rank correlation between methods ranges from {lo['mean']:.2f} "
                   f"({lo.method_a} vs {lo.method_b}) to {hi['mean']:.2f} ({hi.method_a} vs "
                   f"{hi.method_b}); mean over pairs {rc['mean'].mean():.2f}.")
    kt = a[a["measure"] == "kendall"]
    if len(kt):
        over = kt[kt["mean"] > 0.29]
        out.append(f"Kendall tau-b: mean over pairs {kt['mean'].mean():.2f} (range "
                   f"{kt['mean'].min():.2f} to {kt['mean'].max():.2f}); {len(over)} of "
                   f"{len(kt)} pairs above Neely et al.'s 0.29"
                   + (": " + ", ".join(f"{x.method_a} vs {x.method_b} {x.mean:.2f}"
                                       for x in over.sort_values("mean").itertuples())
                      if len(over) else "") + ".")
    ft = a[a["measure"] == "feature"]
    if len(ft):
        out.append(f"Top-5 feature agreement: {ft['mean'].min():.2f} to {ft['mean'].max():.2f}.")
    st = r.stability[r.stability["measure"] == "spearman"]
    for row in st.itertuples():
        out.append(f"Stability of {row.method} over {row.parameter} {list(row.values)}: "
                   f"Spearman {row.mean:.2f} (spread {row.spread:.2f}).")
    g = r.gaps[r.gaps["statistic"] == "difference"].dropna(subset=["gap"])
    if len(g):
        sig = g[g["p_holm"] < 0.05]
        raw = g[g["p_value"] < 0.05]
        out.append(f"{len(g)} gaps tested: {len(raw)} with p < 0.05 before Holm, {len(sig)} "
                   "after" + (": " + "; ".join(
                       f"{x.metric} of {x.method}, {x.group} minus {x.reference} = "
                       f"{ci(x.gap, x.ci_low, x.ci_high)}, Holm p = {x.p_holm:.3g}"
                       for x in sig.itertuples()) if len(sig) else "") + ".")
        for metric in r.metrics:
            gm = g[g["metric"] == metric]
            if not len(gm):
                continue
            scale = r.metric_summary[r.metric_summary["metric"] == metric]["mean"].abs().mean()
            big = gm.loc[gm["gap"].abs().idxmax()]
            rel = f" ({abs(big.gap) / scale:.0%} of the metric's mean)" if scale > 0 else ""
            out.append(f"Largest {metric} gap: {big.method}, {big.group} minus {big.reference} "
                       f"= {ci(big.gap, big.ci_low, big.ci_high)}{rel}, p = {big.p_value:.3g}, "
                       f"Holm p = {big.p_holm:.3g}.")
    small = r.disparity[r.disparity["too_small"]]
    if len(small):
        out.append(f"Groups flagged too small: {sorted(set(map(str, small['group'])))}.")
    if r.metrics and r.metric_summary["n"].sum() > 0:
        rec = r.recommend()
        out.append("Recommendation: " + (f"**{rec.method}**." if rec.method else
                                         "no clear winner (intervals overlap)."))
    return " ".join(out)


def section(run: Run) -> str:
    r = run.report
    parts = [f"## {run.title}", "",
             "Setup: " + "; ".join(run.setup) + ".", "",
             f"Groups: {run.group_rule}.", ""]
    counts = r.disparity.drop_duplicates("group")[["group", "n"]] if len(r.disparity) else None
    if counts is not None:
        parts += ["Examples per group (scored): " + ", ".join(
            f"{g}: {n}" for g, n in zip(counts["group"], counts["n"], strict=True)) + ".", ""]
    how = ("the rows were read back from the first audit's output folder, so this is the "
           "aggregation alone" if run.resumed else "explanations, metrics and aggregation")
    parts += [f"Time: {run.seconds:.1f} s for {run.n} examples = **{run.seconds / run.n:.2f} s "
              f"per example** ({how}; {platform.processor() or platform.machine()}, "
              f"{_cores()} cores shared with other jobs).", ""]
    if r.skipped:
        parts += ["Left out: " + "; ".join(f"`{m}` ({why.split('.')[0]})"
                                            for m, why in r.skipped.items()) + ".", ""]
    if len(r.failures):
        parts += [f"Failed rows: {len(r.failures)} (left out).", ""]
    parts += ["**What we found.** " + findings(run), ""]
    if run.resumed:
        parts += ["Agreement, stability and metric summary are those of the previous section "
                  "(same rows); only the grouping differs.", ""]
    else:
        parts += ["### Agreement (mean over examples, 95% bootstrap CI)", "",
                  md_table(pair_table(r)), ""]
        for measure in ("rank_correlation", "kendall"):
            parts += [f"Matrix, {measure}:", "", md_table(r.agreement_matrix(measure), index=True),
                      ""]
        other = r.agreement[~r.agreement["measure"].isin(["rank_correlation", "kendall"])]
        wide = other.pivot_table(index=["method_a", "method_b"], columns="measure",
                                 values="mean").reset_index()
        parts += ["Other measures (means; k = 5 for the top-k ones):", "", md_table(wide), ""]
        st = r.stability.copy()
        st["mean [95% CI]"] = [ci(x.mean, x.ci_low, x.ci_high) for x in st.itertuples()]
        parts += ["### Stability (SAM: one setting varied, the others fixed)", "",
                  md_table(st[["method", "parameter", "values", "kind", "measure",
                               "mean [95% CI]", "spread", "mean_min", "mean_max"]]), ""]
        ms = r.metric_summary.copy()
        ms["mean [95% CI]"] = [ci(x.mean, x.ci_low, x.ci_high) for x in ms.itertuples()]
        ms["better"] = ["higher" if r.higher_is_better[m] else "lower" for m in ms["metric"]]
        parts += ["### Metric summary", "",
                  md_table(ms[["metric", "better", "method", "mean [95% CI]", "n", "n_nan"]]),
                  ""]
    d = r.disparity.copy()
    if len(d):
        d["mean [95% CI]"] = [ci(x.mean, x.ci_low, x.ci_high) if not x.too_small else ""
                              for x in d.itertuples()]
        parts += ["### Disparity (per-group means, 95% bootstrap CI)", "",
                  md_table(d[["metric", "method", "group", "n", "too_small", "mean [95% CI]"]]),
                  ""]
        g = r.gaps.copy()
        g["gap [95% CI]"] = [ci(x.gap, x.ci_low, x.ci_high) if not math.isnan(x.gap) else ""
                             for x in g.itertuples()]
        parts += ["### Gaps (group minus reference: stratified bootstrap CI, permutation p, "
                  "Holm over the report; max/mean gap over all groups)", "",
                  md_table(g[["metric", "method", "statistic", "group", "reference", "n",
                              "n_ref", "gap [95% CI]", "p_value", "p_holm"]]), ""]
    if r.notes:
        parts += ["Notes: " + " ".join(r.notes), ""]
    if r.metrics and r.metric_summary["n"].sum() > 0:
        parts += ["### Recommendation (`report.recommend()`, all metrics in audit order)", "",
                  "> " + str(r.recommend()), ""]
    html_path = ROOT / "docs" / f"audit_{run.key}.html"
    page = r.to_html()
    if not WRITE_HTML:
        pass
    elif len(page.encode()) < HTML_LIMIT:
        html_path.write_text(page, encoding="utf-8")
        parts += [f"HTML report: [audit_{run.key}.html](audit_{run.key}.html) "
                  f"({len(page.encode()) / 1000:.0f} KB).", ""]
    else:
        parts += [f"(HTML report not kept: {len(page.encode()) / 1000:.0f} KB.)", ""]
    return "\n".join(parts)


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def write(runs: Sequence[Run]) -> str:
    head = [
        "# Audit results on real models",
        "",
        "Generated by `python bench/audit_real.py` from the numbers of the runs below (do not "
        "edit by hand). What the tables mean: [the audit guide](audit.md). All intervals are "
        f"95% percentile bootstrap intervals over examples; every run uses random_state {SEED}.",
        "",
        f"Text agreement reference: {NEELY} Their methods differ from ours (DeepLIFT, "
        "Grad-SHAP, ... on DistilBERT token maps); ours are word-level maps of MiniLM.",
        "",
        f"Versions: python {platform.python_version()}, numpy {np.__version__}, pandas "
        f"{pd.__version__}, torch {_version('torch')}, scikit-learn {_version('scikit-learn')}.",
        ""]
    summary = ["| run | examples | s per example |", "|---|---|---|"]
    summary += [f"| {r.title} | {r.n} | {r.seconds / r.n:.2f}"
                + (" (aggregation only, rows resumed)" if r.resumed else "") + " |"
                for r in runs]
    text = "\n".join(head + summary + [""] + [section(r) for r in runs])
    DOC.write_text(text, encoding="utf-8")
    return text


def _version(name: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "n/a"


def main(argv: Sequence[str] | None = None) -> int:
    global OUT, WRITE_HTML
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few examples per run")
    parser.add_argument("--write", action="store_true", help="write the page even with --quick")
    parser.add_argument("--only", default="credit,mlp,sentiment",  # the page's order
                        help="comma-separated runs among credit, mlp, sentiment")
    args = parser.parse_args(argv)
    if args.quick:
        OUT = Path("/tmp/audit_real_quick")
        WRITE_HTML = args.write
    n_credit, n_text = (24, 4) if args.quick else (N_CREDIT, N_PER_GROUP)
    steps: dict[str, Callable[[], list[Run]]] = {
        "credit": lambda: run_credit(n_credit), "mlp": lambda: [run_credit_mlp(n_credit)],
        "sentiment": lambda: [run_sentiment(n_text)]}
    runs: list[Run] = []
    for name in args.only.split(","):
        t0 = time.perf_counter()
        runs += steps[name]()
        print(f"{name}: {time.perf_counter() - t0:.1f} s", flush=True)
    if not args.quick or args.write:
        write(runs)
        print(f"wrote {DOC}")
    else:
        for run in runs:
            print(section(run)[:3000])
    return 0


if __name__ == "__main__":
    sys.exit(main())
