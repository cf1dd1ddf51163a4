"""BEE against captum's Integrated Gradients at an equal model-call budget, on the demo credit MLP.

BEE (``n_baselines=8``, ``n_steps=16``, default families with the training rows as background)
spends paths x (16 + 1) forward+backward rows per example on its paths, plus the objective's
forward passes. The peer is ``captum.attr.IntegratedGradients`` from the zero baseline (the
training mean of the standardised columns) with ``n_steps`` equal to BEE's path rows per example,
so both integrate with the same number of gradient rows; a second row gives captum its cheap
16-step run. Quality: infidelity at a metric seed BEE did not select on (ours: BEE's map; peer:
``xai.explain(method="integrated_gradients")`` with the same steps, whose values equal captum's,
checked). Also: the cost of fitting a policy, ``BEEPolicy.fit(rounds=500)``.

Run ``python bench/bee.py`` (full) or ``--quick``; writes the section "BEE (captum IG)" of
docs/benchmarks.md (replacing only that section).
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch

BENCH = str(Path(__file__).resolve().parent)
sys.path.insert(0, BENCH)

from run import (  # noqa: E402
    CallCounter,
    Row,
    Section,
    area_main,
    interleaved_times,
    load_average,
    table,
)

sys.path.remove(BENCH)  # bench/metrics.py would shadow the metrics package
sys.path.insert(0, str(Path(BENCH).parent))  # this checkout's xai

import metrics  # noqa: E402
import xai  # noqa: E402
from xai.demo import split_credit  # noqa: E402
from xai.demo._credit_mlp import fit_credit_mlp  # noqa: E402

TITLE = "BEE (captum IG)"
N_EXAMPLES = 100
TARGET = 1  # logit of "good" credit
N_BASELINES, N_STEPS = 8, 16
BEE_SEED, EVAL_SEED = 0, 101  # EVAL_SEED: a metric seed the selection did not use
POLICY_ROUNDS = 500


def infidelity(exp: xai.Explanation, model: torch.nn.Module) -> tuple[float, float]:
    """Mean infidelity at the held-out seed and its standard error over examples."""
    s = metrics.evaluate(exp, model, metrics="infidelity", random_state=EVAL_SEED)[
        "infidelity"].scores[:, 0].double()
    return float(s.mean()), float(s.std() / len(s) ** 0.5)


def compare(model: torch.nn.Module, x: torch.Tensor, background: torch.Tensor,
            objective: Any, counter: CallCounter, repeats: int, facts: list[str]) -> list[Row]:
    from captum.attr import IntegratedGradients

    def bee() -> xai.Explanation:
        return xai.explain(model, x, method="bee", objective=objective, n_baselines=N_BASELINES,
                           n_steps=N_STEPS, background=background, target=TARGET,
                           random_state=BEE_SEED)

    probe = bee()
    calls = probe.extras["model_calls"].double()
    budget = int(round(float(calls.mean())))  # BEE's path rows per example
    fams = ", ".join(f"{f} {n}" for f, n in sorted(
        {f: probe.extras["family"].count(f) for f in probe.extras["family"]}.items()))
    facts.append(f"BEE -> {probe.extras['objective']}: {float(probe.extras['n_paths'].double().mean()):.1f}"
                 f" paths and {budget} path rows (extras['model_calls']) per example; families "
                 f"chosen: {fams}.")
    rows = []
    for steps in (budget, N_STEPS):
        def peer(steps: int = steps) -> torch.Tensor:
            return torch.as_tensor(IntegratedGradients(model).attribute(
                x, baselines=0.0, target=TARGET, n_steps=steps, method="gausslegendre"))

        ig = xai.explain(model, x, method="integrated_gradients", baseline="zeros",
                         n_steps=steps, target=TARGET)
        diff = float((ig.values[:, 0] - peer()).abs().max())
        times, warm = interleaved_times({"ours": bee, "peer": peer}, repeats, counter)
        (ours_exp, ours_calls, ours_rows), (_, peer_calls, peer_rows) = warm["ours"], warm["peer"]
        o_inf, o_se = infidelity(ours_exp, model)
        p_inf, p_se = infidelity(ig, model)
        rows.append(Row(
            f"BEE -> {probe.extras['objective']} ({N_BASELINES} baselines x {N_STEPS} steps) vs "
            f"captum IntegratedGradients (zero baseline, n_steps={steps}"
            f"{', equal path rows' if steps == budget else ''}); {len(x)} rows",
            times["ours"], times["peer"], f"{ours_calls} / {peer_calls}",
            f"{ours_rows} / {peer_rows}",
            f"infidelity (seed {EVAL_SEED}) {o_inf:.4f} ± {o_se:.4f} / {p_inf:.4f} ± {p_se:.4f}; "
            f"our IG = captum to {diff:.0e}", "none set (quality at equal budget reported)"))
    return rows


def policy_cost(model: torch.nn.Module, background: torch.Tensor, rounds: int,
                counter: CallCounter) -> str:
    with counter.count():
        start = time.perf_counter()
        policy = xai.BEEPolicy.fit(model, background, objective=metrics.Infidelity(),
                                   rounds=rounds, background=background, target=TARGET,
                                   random_state=0)
        seconds = time.perf_counter() - start
    s = policy.summary
    played = ", ".join(f"{k} {v}" for k, v in s["played"].items())
    return (f"Fitting a policy: `BEEPolicy.fit(rounds={rounds}, objective=Infidelity())` on the "
            f"{len(background)} training rows took {seconds:.1f} s; path rows (summary "
            f"'model_calls') {s['model_calls']}, all forward calls of the MLP (paths, objective, "
            f"contexts) {counter.calls} with {counter.rows} rows; reward rate "
            f"{s['reward_rate']:.2f}; families played: {played}.")


def run(quick: bool = False) -> Section:
    repeats = 3 if quick else 7
    rounds = 100 if quick else POLICY_ROUNDS
    facts: list[str] = []
    load_start = load_average()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 20-64-2 MLP: see the metrics section's notes on threads
    try:
        fitted = fit_credit_mlp()
        x_train, x_test, _, _ = split_credit(random_state=0)
        background, x = fitted.standardize(x_train), fitted.standardize(x_test.iloc[:N_EXAMPLES])
        model = fitted.model
        counter = CallCounter(model)
        rows: list[Row] = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # captum deprecation chatter, IG convergence at 16
            for objective in (metrics.Infidelity(), metrics.FaithfulnessCorrelation()):
                rows += compare(model, x, background, objective, counter, repeats, facts)
                print(table(rows), flush=True)
            facts.append(policy_cost(model, background, rounds, counter))
        counter.close()
    finally:
        torch.set_num_threads(threads)
    facts.append(f"Load average (1 min) of the machine at the start / end of these runs: "
                 f"{load_start} / {load_average()} (2 cores; above 2 means other jobs competed).")
    md = "\n".join([
        f"Model: the demo credit MLP (`xai.demo._credit_mlp.fit_credit_mlp()`, 20-64-2 ReLU on "
        f"standardised columns), the first {N_EXAMPLES} held-out rows of "
        f"`split_credit(random_state=0)[1]`, target logit {TARGET}; BEE with n_baselines="
        f"{N_BASELINES}, n_steps={N_STEPS}, default families (zeros, uniform, gaussian, blur, "
        f"data) and the {len(background)} training rows as background, random_state={BEE_SEED}; "
        f"1 torch thread; median of {repeats} interleaved runs after one warm-up.", "",
        table(rows), "", *[f"- {fact}" for fact in facts], "", NOTES])
    return Section(TITLE, md, all(r.met is not False for r in rows))


NOTES = """Notes:

- Ratio < 1 means ours is faster. Calls and rows are forward calls of the MLP (a forward
  pre-hook) in the warm-up run; BEE's include its objective's forward passes (1000 noisy rows
  per draw for infidelity, 100 subsets for faithfulness correlation), which dominate its rows:
  at an equal number of *gradient* rows BEE still pays for the selection.
- Quality is infidelity (lower is better) at metric seed 101, not the seed BEE selected with,
  mean ± standard error over the rows; the "values" column gives ours / peer. The peer's map
  is `xai.explain(method="integrated_gradients", n_steps=...)` from zeros, equal to captum's.
  A fuller held-out study (two metrics, five seeds, text too) is in
  [BEE on real models](bee_results.md).
"""


def main() -> int:
    return area_main(run, __doc__.splitlines()[0])


if __name__ == "__main__":
    raise SystemExit(main())
