"""Time per explanation of each Shapley estimator vs one raw batched forward of the same rows.

Issue 16, requirement 7: an explanation should take at most 1.15x the time of the model forward
of the rows it scores; what is left is our overhead (designing the coalitions, masking, solving
the regression). For each estimator and budget B (model rows per example, the empty and full
coalitions included) the script times ``xai.explain`` and, separately, the model alone on the
same number of masked rows (built beforehand by the explanation's feature spaces, so masking
is not in the raw time), in chunks of the same ``batch_size``, and prints a table with the
ratio. It also times the regression designs alone (build + solve, random scores), which is the
overhead that does not scale with the model.

Models: the demo credit MLP (20 standardized features, target "good", baseline zeros) and, if it
loads offline, the MiniLM sentiment model on one held-out 12-word review (word features, [PAD]
baseline). Every timing is the best of ``--repeats`` runs.

Run ``python bench/shapley_overhead.py [--quick] [--threads N] [--repeats R] [--no-write]``:
it prints the timings and writes its section of ``docs/benchmarks.md`` (``--no-write``: print
only); ``bench/run.py`` runs it as the area ``shapley_overhead`` (``run(quick)``). Quick mode
takes one repeat and skips the text model. The target (issue 16, req. 7) is a ratio
explanation / raw forward <= 1.15 for each of our estimators; shap's KernelExplainer
(``backend="shap"``) is listed for reference, without a target.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import Section, load_average, write_doc  # noqa: E402

import xai  # noqa: E402

TARGET = 1.15  # issue 16, req. 7: time per explanation <= 1.15 x the raw forward of its rows

CONTENDERS: list[tuple[str, str, dict[str, Any]]] = [
    ("kernel_shap (native, paired)", "kernel_shap", {}),
    ("kernel_shap (native, unpaired)", "kernel_shap", {"paired": False}),
    ("kernel_shap (backend=shap)", "kernel_shap", {"backend": "shap"}),
    ("shapley_sampling permutation", "shapley_sampling", {"estimator": "permutation"}),
    ("shapley_sampling kernel", "shapley_sampling", {"estimator": "kernel"}),
    ("shapley_sampling leverage", "shapley_sampling", {"estimator": "leverage"}),
    ("shapley_sampling stratified", "shapley_sampling", {"estimator": "stratified"}),
    ("shapley_sampling adjusted", "shapley_sampling", {"estimator": "adjusted"}),
]


def best_of(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def masked_chunks(features: Any, n_rows: list[int], batch_size: int) -> list[Any]:
    """``n_rows[i]`` random masked rows of example i, in chunks of ``batch_size`` (built once)."""
    gen = torch.Generator().manual_seed(0)
    chunks = []
    for fs, n in zip(features, n_rows, strict=True):
        keep = torch.rand(n, fs.n_features, generator=gen) < 0.5
        chunks += [fs.mask(keep[s:s + batch_size]) for s in range(0, n, batch_size)]
    return chunks


def time_model(name: str, model: Any, inputs: Any, budgets: list[int], batch_size: int,
               repeats: int, **kw: Any) -> list[tuple[str, int, float, float, int]]:
    """Best explanation time and best raw-forward time of each contender, the runs of the two
    alternating (explain, raw, explain, raw, ...) so that a slow phase of a shared machine hits
    both."""
    adapter = xai.as_adapter(model)
    rows = []
    for budget in budgets:
        for label, method, extra in CONTENDERS:
            params = {"budget": budget, "max_exact": 0, **extra, **kw}

            def explain(p: dict[str, Any] = params, m: str = method) -> Any:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    return xai.explain(model, inputs, method=m, batch_size=batch_size,
                                       random_state=0, **p)

            try:
                seconds, exp = best_of(explain, 1)
            except (xai.exceptions.XAIError, TypeError) as err:  # e.g. an older API
                print(f"  {name} {label} B={budget}: n/a ({type(err).__name__})")
                continue
            n_rows = [int(r) for r in torch.as_tensor(exp.extras["n_rows"]).reshape(-1)]
            if len(n_rows) != len(exp.features):  # a total (older API): spread evenly
                n_rows = [n_rows[0] // len(exp.features)] * len(exp.features)
            chunks = masked_chunks(exp.features, n_rows, batch_size)

            def forward(chunks: list[Any] = chunks) -> None:
                with torch.no_grad():
                    for c in chunks:
                        adapter.predict(c)

            raw = best_of(forward, 1)[0]
            for _ in range(repeats - 1):
                seconds = min(seconds, best_of(explain, 1)[0])
                raw = min(raw, best_of(forward, 1)[0])
            rows.append((f"{name}: {label}", budget, seconds, raw, sum(n_rows)))
            print(f"  {name:8s} {label:32s} B={budget:5d} explain {seconds * 1e3:9.1f} ms  "
                  f"raw {raw * 1e3:9.1f} ms  ratio {seconds / raw:5.2f}  rows {sum(n_rows)}",
                  flush=True)
    return rows


def design_times(repeats: int) -> list[tuple[str, int, int, float]]:
    """(design, d, budget, seconds) of building and solving each design alone."""
    from xai.methods._adjusted import AdjustedDesign
    from xai.methods._regression import KernelDesign, LeverageDesign
    from xai.methods._svarm import StratifiedDesign, stratified_least_rows

    print("\nRegression designs alone (build + solve, one example, random scores):")
    out = []
    for cls in (KernelDesign, LeverageDesign, StratifiedDesign, AdjustedDesign):
        for d in (12, 14, 20):
            for budget in (128, 512, 2048):
                if cls is StratifiedDesign and budget < stratified_least_rows(d):
                    continue

                def run(cls: Any = cls, d: int = d, budget: int = budget) -> None:
                    design = cls(d, budget, torch.Generator().manual_seed(0))
                    design.solve(torch.randn(design.rows.shape[0], 1))

                seconds = best_of(run, repeats * 3)[0]
                out.append((cls.__name__, d, budget, seconds))
                print(f"  {cls.__name__:16s} d={d:2d} B={budget:5d} {seconds * 1e3:7.2f} ms")
    return out


def credit(budgets: list[int], repeats: int) -> list[tuple[str, int, float, float, int]]:
    from xai.demo._credit_mlp import fit_credit_mlp
    from xai.demo._data import split_credit

    mlp = fit_credit_mlp()
    x = mlp.standardize(split_credit()[1])[:8]
    print(f"\nCredit MLP (d = 20, {len(x)} examples, batch_size 512):")
    return time_model("credit", mlp.model, x, budgets, 512, repeats, target=1,
                      baseline="zeros")


def sentiment(budgets: list[int], repeats: int) -> list[tuple[str, int, float, float, int]]:
    try:
        from xai.demo import load_sentiment_model, split_reviews

        model, tok = load_sentiment_model()
    except Exception as err:  # noqa: BLE001  (offline without the encoder package)
        print(f"\nMiniLM sentiment: not loaded ({type(err).__name__}: {err})")
        return []
    adapter = xai.as_adapter((model, tok))
    text = next(t for t in split_reviews(random_state=0)[1]["text"] if len(t.split()) == 12
                and adapter.features(adapter.prepare([t]), granularity="word",
                                     baseline="pad")[0].n_features == 12)
    print(f"\nMiniLM sentiment (d = 12 words, 1 example, batch_size 64): {text!r}")
    return time_model("minilm", (model, tok), [text], budgets, 64, repeats, target=1,
                      granularity="word", baseline="pad")


def run(quick: bool = False, repeats: int = 3) -> Section:
    """Time every contender against the raw forward of its rows; the markdown section."""
    repeats = 1 if quick else repeats
    load_start = load_average()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    designs = design_times(repeats)
    rows = credit([512, 2048], repeats)
    if not quick:
        rows += sentiment([512], repeats)  # best of repeats: one run swings 2-9x under load
    lines = ["| model: contender | B | explanation (ms) | raw forward (ms) | ratio | rows | "
             f"target ratio <= {TARGET} |", "|---|" + "---|" * 6]
    met = True
    for label, budget, seconds, raw, n in rows:
        ours = "backend=shap" not in label
        ok = seconds / raw <= TARGET
        met &= ok or not ours
        verdict = ("yes" if ok else "**no**") if ours else "n/a (shap's KernelExplainer)"
        lines.append(f"| {label} | {budget} | {seconds * 1e3:.1f} | {raw * 1e3:.1f} | "
                     f"{seconds / raw:.2f} | {n} | {verdict} |")
    budgets = sorted({b for _, _, b, _ in designs})
    cells: dict[tuple[str, int], dict[int, float]] = {}
    for name, d, budget, seconds in designs:
        cells.setdefault((name, d), {})[budget] = seconds
    design_lines = ["| design | d | " + " | ".join(f"B = {b} (ms)" for b in budgets) + " |",
                    "|---|---|" + "---|" * len(budgets)]
    design_lines += [f"| {name} | {d} | " + " | ".join(
        f"{by[b] * 1e3:.2f}" if b in by else "n/a (below its least rows)" for b in budgets)
        + " |" for (name, d), by in cells.items()]
    md = "\n".join([
        "Time per explanation of each Shapley estimator (`xai.explain(..., budget=B, "
        "max_exact=0, random_state=0)`, best of "
        f"{repeats} run{'s' if repeats > 1 else ''}) against the model alone (best of as many, "
        "alternating with the explanation's runs) on the same number "
        "of masked rows, built beforehand by the explanation's feature spaces and run in chunks "
        "of the same `batch_size`; the ratio is our overhead (designing coalitions, masking, "
        f"solving). Target (issue 16, req. 7): ratio <= {TARGET} for each of our estimators; "
        f"torch threads: {torch.get_num_threads()}"
        + (" (`--threads 1`: on a shared 2-core machine under load, 2 threads made single "
           "runs 10-300x slower from oversubscription)" if torch.get_num_threads() == 1 else "")
        + ". Credit MLP: d = 20, 8 examples, batch_size "
        "512, target \"good\", baseline zeros"
        + ("." if quick else "; MiniLM sentiment: one held-out 12-word review, word features, "
          "[PAD] baseline, batch_size 64, B = 512."), "", *lines, "",
        "Designs alone (build + solve for one example, random scores; best of "
        f"{repeats * 3} runs), the overhead that does not grow with the model:", "",
        *design_lines, "",
        "- On the credit MLP a forward of thousands of rows takes about a millisecond, so the "
        "fixed costs (coalition design, masking, the solve) dominate and no estimator can come "
        "near the target there; the MiniLM rows are the case the target is about.",
        f"- Load average (1 min) at the start / end: {load_start} / {load_average()}."
        + (" Quick mode: one repeat, no text model." if quick else "")])
    return Section("Shapley overhead (raw forward)", md, met)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one repeat, no text model")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="do not write docs/benchmarks.md")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    section = run(quick=args.quick, repeats=args.repeats)
    if args.no_write:
        print(section.markdown)
    else:
        print(write_doc([section], quick=args.quick))


if __name__ == "__main__":
    main()
