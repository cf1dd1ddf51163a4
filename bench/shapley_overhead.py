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

Run ``python bench/shapley_overhead.py [--quick] [--threads N]``.
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch

import xai

CONTENDERS: list[tuple[str, str, dict[str, Any]]] = [
    ("kernel_shap (native, paired)", "kernel_shap", {}),
    ("kernel_shap (native, unpaired)", "kernel_shap", {"paired": False}),
    ("kernel_shap (backend=shap)", "kernel_shap", {"backend": "shap"}),
    ("shapley_sampling permutation", "shapley_sampling", {"estimator": "permutation"}),
    ("shapley_sampling kernel", "shapley_sampling", {"estimator": "kernel"}),
    ("shapley_sampling leverage", "shapley_sampling", {"estimator": "leverage"}),
]


def best_of(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def raw_forward(adapter: Any, features: Any, n_rows: list[int], batch_size: int,
                repeats: int) -> float:
    """Seconds for the model alone on ``n_rows[i]`` masked rows of example i, batch_size a call."""
    gen = torch.Generator().manual_seed(0)
    chunks = []
    for fs, n in zip(features, n_rows, strict=True):
        keep = torch.rand(n, fs.n_features, generator=gen) < 0.5
        chunks += [fs.mask(keep[s:s + batch_size]) for s in range(0, n, batch_size)]

    def run() -> None:
        with torch.no_grad():
            for c in chunks:
                adapter.predict(c)

    return best_of(run, repeats)[0]


def time_model(name: str, model: Any, inputs: Any, budgets: list[int], batch_size: int,
               repeats: int, **kw: Any) -> list[tuple[str, int, float, float, int]]:
    adapter = xai.as_adapter(model)
    rows = []
    for budget in budgets:
        for label, method, extra in CONTENDERS:
            params = {"budget": budget, "max_exact": 0, **extra, **kw}
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    seconds, exp = best_of(lambda p=params, m=method: xai.explain(  # type: ignore[misc]
                        model, inputs, method=m, batch_size=batch_size, random_state=0, **p),
                        repeats)
            except (xai.exceptions.XAIError, TypeError) as err:  # e.g. an older API
                print(f"  {name} {label} B={budget}: n/a ({type(err).__name__})")
                continue
            n_rows = [int(r) for r in torch.as_tensor(exp.extras["n_rows"]).reshape(-1)]
            if len(n_rows) != len(exp.features):  # a total (older API): spread evenly
                n_rows = [n_rows[0] // len(exp.features)] * len(exp.features)
            raw = raw_forward(adapter, exp.features, n_rows, batch_size, repeats)
            rows.append((f"{name}: {label}", budget, seconds, raw, sum(n_rows)))
            print(f"  {name:8s} {label:32s} B={budget:5d} explain {seconds * 1e3:9.1f} ms  "
                  f"raw {raw * 1e3:9.1f} ms  ratio {seconds / raw:5.2f}  rows {sum(n_rows)}",
                  flush=True)
    return rows


def design_times(repeats: int) -> None:
    from xai.methods._regression import KernelDesign, LeverageDesign

    print("\nRegression designs alone (build + solve, one example, random scores):")
    for cls in (KernelDesign, LeverageDesign):
        for d in (12, 14, 20):
            for budget in (128, 512, 2048):
                def run(cls: Any = cls, d: int = d, budget: int = budget) -> None:
                    design = cls(d, budget, torch.Generator().manual_seed(0))
                    design.solve(torch.randn(design.rows.shape[0], 1))

                seconds = best_of(run, repeats * 3)[0]
                print(f"  {cls.__name__:15s} d={d:2d} B={budget:5d} {seconds * 1e3:7.2f} ms")


def credit(budgets: list[int], repeats: int) -> None:
    from xai.demo._credit_mlp import fit_credit_mlp
    from xai.demo._data import split_credit

    mlp = fit_credit_mlp()
    x = mlp.standardize(split_credit()[1])[:8]
    print(f"\nCredit MLP (d = 20, {len(x)} examples, batch_size 512):")
    time_model("credit", mlp.model, x, budgets, 512, repeats, target=1, baseline="zeros")


def sentiment(budgets: list[int], repeats: int) -> None:
    try:
        from xai.demo import load_sentiment_model, split_reviews

        model, tok = load_sentiment_model()
    except Exception as err:  # noqa: BLE001  (offline without the encoder package)
        print(f"\nMiniLM sentiment: not loaded ({type(err).__name__}: {err})")
        return
    adapter = xai.as_adapter((model, tok))
    text = next(t for t in split_reviews(random_state=0)[1]["text"] if len(t.split()) == 12
                and adapter.features(adapter.prepare([t]), granularity="word",
                                     baseline="pad")[0].n_features == 12)
    print(f"\nMiniLM sentiment (d = 12 words, 1 example, batch_size 64): {text!r}")
    time_model("minilm", (model, tok), [text], budgets, 64, repeats, target=1,
               granularity="word", baseline="pad")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one repeat, no text model")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    repeats = 1 if args.quick else args.repeats
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    design_times(repeats)
    credit([512, 2048], repeats)
    if not args.quick:
        sentiment([512], 1)


if __name__ == "__main__":
    main()
