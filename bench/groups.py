"""Grouped features against captum's ``feature_mask`` on the demo credit MLP.

Two comparisons, in this one process, on the same model, inputs, baseline and groups (an int
group id per credit column, shared by all rows: ``feature_groups=ids`` here, captum's
``feature_mask=ids`` of shape (1, 20) there):

1. Grouped occlusion vs ``captum.attr.FeatureAblation`` with ``perturbations_per_eval`` 1
   (captum's default) and the number of groups. captum gives every column its group's value;
   ours gives one value per group. They must agree at one member of each group (asserted).
2. Grouped Shapley sampling vs ``captum.attr.ShapleyValueSampling`` at about the same model rows,
   both against the exact Shapley values of the grouped game (all 2^12 coalitions).

Run ``python bench/groups.py`` (full) or ``--quick``; writes the section "Grouped features
(captum)" of docs/benchmarks.md (replacing only that section).
"""

from __future__ import annotations

import math
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
    median,
    seeded_runs,
    table,
)

sys.path.remove(BENCH)  # bench/metrics.py would shadow the metrics package
sys.path.insert(0, str(Path(BENCH).parent))  # this checkout's xai

import xai  # noqa: E402
from xai.demo import split_credit  # noqa: E402
from xai.demo._credit_mlp import fit_credit_mlp  # noqa: E402

TITLE = "Grouped features (captum)"
N_EXAMPLES = 50
TARGET = 1  # logit of "good" credit
#: Credit columns grouped by theme: group name -> columns (12 groups of the 20 columns).
GROUPS: dict[str, tuple[str, ...]] = {
    "accounts": ("checking_status", "savings"),
    "loan terms": ("duration", "credit_amount", "installment_rate"),
    "credit record": ("credit_history", "existing_credits"),
    "purpose": ("purpose",),
    "work": ("employment", "job"),
    "family": ("personal_status", "num_dependents"),
    "other debtors": ("other_debtors",),
    "home": ("residence_since", "housing", "property"),
    "age": ("age",),
    "other plans": ("other_installment_plans",),
    "telephone": ("telephone",),
    "foreign worker": ("foreign_worker",),
}
CAPTUM_SAMPLES = 16  # captum's n_samples (permutations) for the Shapley row


def group_ids(columns: list[str]) -> torch.Tensor:
    """The group id (0..11, in GROUPS order) of each column."""
    of = {c: k for k, cols in enumerate(GROUPS.values()) for c in cols}
    assert sorted(of) == sorted(columns), "every column in exactly one group"
    return torch.tensor([of[c] for c in columns])


def exact_group_shapley(model: torch.nn.Module, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Exact Shapley values (n, g) of the grouped game v(S) = model(x with groups outside S at 0)."""
    g = int(ids.max()) + 1
    codes = torch.arange(2**g)
    on = (codes.unsqueeze(1) >> torch.arange(g)) & 1  # (2^g, g) coalition membership
    keep = on[:, ids].bool()  # (2^g, d)
    with torch.no_grad():
        v = torch.stack([model(torch.where(keep, row, 0.0))[:, TARGET] for row in x]).double()
    size = on.sum(1)
    weight = torch.tensor([math.factorial(s) * math.factorial(g - s - 1) / math.factorial(g)
                           if s < g else 0.0 for s in size.tolist()], dtype=torch.float64)
    out = torch.zeros(len(x), g, dtype=torch.float64)
    for i in range(g):
        without = codes[on[:, i] == 0]
        out[:, i] = ((v[:, without | (1 << i)] - v[:, without]) * weight[without]).sum(1)
    return out.float()


def _forward_time(model: torch.nn.Module, rows: torch.Tensor) -> float:
    """Fastest of 20 no_grad forwards of ``rows`` (seconds)."""
    best = math.inf
    with torch.no_grad():
        for _ in range(20):
            start = time.perf_counter()
            model(rows)
            best = min(best, time.perf_counter() - start)
    return best


def bench_occlusion(model: torch.nn.Module, x: torch.Tensor, ids: torch.Tensor,
                    counter: CallCounter, repeats: int, facts: list[str]) -> list[Row]:
    from captum.attr import FeatureAblation

    g = int(ids.max()) + 1
    members = torch.tensor([int((ids == k).nonzero()[0]) for k in range(g)])  # one per group

    def ours() -> torch.Tensor:
        return xai.explain(model, x, method="occlusion", feature_groups=ids.tolist(),
                           baseline="zeros", target=TARGET).values[:, 0]

    def peer(ppe: int) -> Any:
        def run() -> torch.Tensor:
            return torch.as_tensor(FeatureAblation(model).attribute(
                x, baselines=0.0, target=TARGET, feature_mask=ids.unsqueeze(0),
                perturbations_per_eval=ppe))
        return run

    def ungrouped() -> torch.Tensor:
        return xai.explain(model, x, method="occlusion", baseline="zeros",
                           target=TARGET).values[:, 0]

    rows = []
    for ppe in (1, g):
        fns = {"ours": ours, "peer": peer(ppe)} | ({"ungrouped": ungrouped} if ppe == 1 else {})
        times, warm = interleaved_times(fns, repeats, counter)
        if ppe == 1:
            t_group, t_single = median(times["ours"]), median(times["ungrouped"])
            t_forward = _forward_time(model, x.repeat(g + 1, 1))
            facts.append(
                f"Grouping costs nothing extra: ours on the {len(ids)} single columns takes "
                f"{t_single * 1e3:.1f} ms ({warm['ungrouped'][2]} rows) against "
                f"{t_group * 1e3:.1f} ms for the {g} groups. At this size ours is bound by "
                f"Python work per example (its masks and window sums are built example by "
                f"example: {t_group / len(x) * 1e3:.2f} ms per example in all), while one "
                f"forward of all {len(x) * (g + 1)} rows takes {t_forward * 1e3:.2f} ms (min of "
                f"20) and captum ablates all examples with one tensor operation per group.")
        (o, oc, orows), (p, pc, prows) = warm["ours"], warm["peer"]
        assert o.shape == (len(x), g), o.shape
        # captum repeats the group's value on every member; our value is the group's
        assert bool((p == p[:, members][:, ids]).all())
        diff = float((o - p[:, members]).abs().max())
        assert diff <= 1e-5, f"grouped occlusion differs from captum FeatureAblation by {diff}"
        rows.append(Row(
            f"Grouped occlusion ({g} groups of {len(ids)} credit columns, {len(x)} rows) vs "
            f"captum FeatureAblation with feature_mask (perturbations_per_eval={ppe})",
            times["ours"], times["peer"], f"{oc} / {pc}", f"{orows} / {prows}",
            f"max abs diff {diff:.1e} (captum at one member of each group)",
            "none set; diff <= 1e-5", values_ok=diff <= 1e-5))
    facts.append("Groups (id: columns): " + "; ".join(
        f"{k} {name}: {', '.join(cols)}" for k, (name, cols) in enumerate(GROUPS.items())) + ".")
    return rows


def bench_shapley(model: torch.nn.Module, x: torch.Tensor, ids: torch.Tensor,
                  counter: CallCounter, seeds: list[int], facts: list[str]) -> list[Row]:
    from captum.attr import ShapleyValueSampling

    g = int(ids.max()) + 1
    exact = exact_group_shapley(model, x, ids)
    facts.append(f"Exact grouped Shapley values (2^{g} = {2**g} coalitions per row, target logit "
                 f"{TARGET}): RMS over rows and groups {float(exact.pow(2).mean().sqrt()):.3f}.")

    def peer(seed: int) -> torch.Tensor:
        with torch.random.fork_rng():  # captum draws permutations from the global generator
            torch.manual_seed(seed)
            sv = torch.as_tensor(ShapleyValueSampling(model).attribute(
                x, baselines=0.0, target=TARGET, feature_mask=ids.unsqueeze(0),
                n_samples=CAPTUM_SAMPLES))
        members = torch.tensor([int((ids == k).nonzero()[0]) for k in range(g)])
        return sv[:, members]

    with counter.count():
        peer(0)
    peer_rows = counter.rows // len(x)  # per example, captum's f(x) and f(baseline) included
    # ours: one prediction row + n_permutations * (g - 1) + 2 rows per example, n even
    p = 2 * max(1, (peer_rows - 3) // (2 * (g - 1)))

    def ours(seed: int) -> torch.Tensor:
        kwargs: dict[str, Any] = {}
        if "max_exact" in xai.ShapleySampling.__dataclass_fields__:
            kwargs["max_exact"] = 0  # sample even though 2^12 coalitions are few
        return xai.explain(model, x, method="shapley_sampling", feature_groups=ids.tolist(),
                           n_permutations=p, baseline="zeros", target=TARGET,
                           random_state=seed, **kwargs).values[:, 0]

    stats = seeded_runs(counter, {"ours": ours, "peer": peer}, seeds, exact)
    o, q = stats["ours"], stats["peer"]
    return [Row(
        f"Grouped Shapley sampling ({p} permutations, antithetic) vs captum ShapleyValueSampling "
        f"with feature_mask (n_samples={CAPTUM_SAMPLES}); {g} groups, {len(x)} rows, "
        f"{len(seeds)} seeds", o["t"], q["t"], f"{o['calls']} / {q['calls']}",
        f"{o['rows']} / {q['rows']}",
        f"max abs err {o['maxabs']:.3f} / {q['maxabs']:.3f}; RMSE {o['rmse']:.4f} / "
        f"{q['rmse']:.4f}", "none set (accuracy at about equal rows reported)")]


def run(quick: bool = False) -> Section:
    repeats = 3 if quick else 7
    seeds = list(range(5 if quick else 20))
    facts: list[str] = []
    load_start = load_average()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 20-64-2 MLP: see the metrics section's notes on threads
    try:
        fitted = fit_credit_mlp()
        frame = split_credit(random_state=0)[1]
        x = fitted.standardize(frame.iloc[:N_EXAMPLES])
        ids = group_ids(list(frame.columns))
        model = fitted.model
        counter = CallCounter(model)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # captum deprecation chatter
            rows = bench_occlusion(model, x, ids, counter, repeats, facts)
            print(table(rows), flush=True)
            rows += bench_shapley(model, x, ids, counter, seeds, facts)
        counter.close()
    finally:
        torch.set_num_threads(threads)
    facts.append(f"Load average (1 min) of the machine at the start / end of these runs: "
                 f"{load_start} / {load_average()} (2 cores; above 2 means other jobs competed).")
    md = "\n".join([
        f"Model: the demo credit MLP (`xai.demo._credit_mlp.fit_credit_mlp()`, 20-64-2 ReLU on "
        f"standardised columns, held-out accuracy {fitted.accuracy:.3f}), the first {N_EXAMPLES} "
        f"held-out rows of `split_credit(random_state=0)[1]`, baseline 0 (the training mean), "
        f"target logit {TARGET}; 1 torch thread; median of {repeats} interleaved runs after one "
        f"warm-up (Shapley: one run per seed).", "",
        table(rows), "", *[f"- {fact}" for fact in facts], "", NOTES])
    return Section(TITLE, md, all(r.met is not False for r in rows))


NOTES = """Notes:

- Ratio < 1 means ours is faster. Calls and rows are forward calls of the MLP (a forward
  pre-hook), counted in the warm-up run (Shapley: the first seed). Ours includes the one
  prediction call with which `explain` resolves the target and gets f(x).
- Groups: ours takes `feature_groups=ids` (one int per column, shared by every row) and returns
  one value per group; captum takes `feature_mask=ids` of shape (1, 20) and writes each group's
  value on all its columns (checked: equal within each group), so the values are compared at
  the first column of each group.
- Occlusion: both remove one group at a time (its columns to 0); ours also scores the
  all-removed row for `base_values`. captum with `perturbations_per_eval=1` makes one call per
  group for all rows; with 12 it makes one call for all groups.
- Shapley: captum draws its permutations from torch's global generator (seeded per run inside
  `torch.random.fork_rng`, so the caller's state is untouched); ours takes `random_state`. Ours
  pairs each permutation with its reverse (antithetic) and shares the empty and full coalitions,
  so at about equal rows it draws more permutations. Errors are against exact Shapley values of
  the same grouped game, averaged over seeds.
"""


def main() -> int:
    return area_main(run, __doc__.splitlines()[0])


if __name__ == "__main__":
    raise SystemExit(main())
