"""Side by side: reachml's responsiveness scores vs ``xai.explain(..., method="responsiveness")``.

The reference library ``reachml`` (Cheon et al., ICLR 2025) lives in its own virtual environment
(it pins numpy 2.1 / pandas 2.2 and needs a MIP solver); this script runs in two halves.

1. Under reachml's python (no torch, no xai needed), score every case and write a JSON file::

       python -m venv /tmp/reachml-env
       /tmp/reachml-env/bin/pip install reachml scipy scikit-learn cplex
       /tmp/reachml-env/bin/python bench/reachml_compare.py --out bench/reachml_results.json

   ``PYTHONPATH=DIR`` with a source tree of reachml in ``DIR/reachml`` scores with that version
   instead (``--label`` names it in the file); ``--append`` adds a run to an existing file, so one
   JSON can hold several reachml versions.

2. Under the main environment's python, rebuild the same cases with ``xai.ActionSet``, score them
   with ``xai.explain(model, X, method="responsiveness", ...)`` and print a table::

       PYTHONPATH=. python bench/reachml_compare.py --compare bench/reachml_results.json

The cases (all defined below in a library-neutral form, so both halves read the same
definitions): the spec's known answers RS-1..RS-7 (``tests/test_scorer.py`` of reachml; spec
``../shared/references/metrics/responsiveness.md`` §7), the linear-threshold closed form RS-8 on
random integer grids, and three extras: a one-hot group (OH-1), a directional linkage into an
immutable feature (DL-1) and a continuous feature with an exact answer (CT-1, sampling only).
Every model is a linear threshold ``1[w.x > t]`` (or ``>=``), so the expected values are exact.

What it found (December 2026, this machine, Python 3.11, no commercial solver licence):

* ``pip install reachml`` gives **0.2.0a1** (a refactor later than the spec's commit ``b3f09df``,
  with a SCIP backend via PySCIPOpt 6.3.0). Its ``__init__`` also imports scipy and scikit-learn,
  which it does not declare; and its SCIP backend imports ``cplex`` unconditionally
  (``mip/backends/scip_utils.py`` -> ``cplex_utils.py``: ``ModuleNotFoundError: No module named
  'cplex'`` on the first joint MIP), so linked/encoded features need the ``cplex`` module even
  under SCIP. ``pip install cplex`` (IBM's free community edition 22.2.0.1, problem-size limited,
  no licence) fixes that; reachml then picks CPLEX as default solver.
* 0.2.0a1 **fails its own thermometer known answers** (RS-5 gives (0.5, 1/3, 0, 0) instead of
  (1, 1/3, 0, 0); RS-6 gives (1, 1, 1, 0.75) instead of (1, 1, 1, 0); same for the -1 variant at
  (1,1,1,1)), with CPLEX and with SCIP alike: in ``_find_actions`` the early stop "an action that
  changes only j was found" is commented out (``# TODO``), so R_j keeps every joint action with
  a_j fixed. ``pytest tests/test_scorer.py``: 2 failed, 10 passed.
* reachml at the spec's commit ``b3f09df`` (source tree from the GitHub snapshot, same venv,
  CPLEX community edition) passes all 12 of its scorer tests and every case below.
* reachml's ``SamplingScorer`` draws from numpy's global RNG; this script seeds it per case.
  Its sampled scores sit within 4 SE of the closed forms (largest gap 0.04 at n=500).
* ``--compare`` with our ``xai.explain(..., method="responsiveness")`` (first run against the
  recourse core while it was still uncommitted, 2026-12-05): every discrete case equals reachml
  ``b3f09df``'s enumeration and the expected value up to float32 rounding (largest difference
  2.4e-08); it differs from PyPI 0.2.0a1 exactly where 0.2.0a1 misses the known answers
  (0.5 / 0.75 on RS-5/6/7). CT-1 (sampling, n=500): ours 0.31, reachml 0.28, exact 0.3.
  Time for the 2-4 points of a case: ours 2-9 ms, reachml 3-80 ms (CPLEX MIPs on the
  thermometer, one-hot and linkage partitions), both on this machine's CPU.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

N_SAMPLES = 500
SEED = 0

# ----------------------------------------------------------------------------------------------
# cases, library-neutral
# ----------------------------------------------------------------------------------------------
# A case: columns, data (rows the action set's types/bounds are inferred from), overrides
# (per-feature fields set afterwards), constraints, model (w, t, op), points to score,
# expected scores per point (None where no closed form), and which reachml scorers to run.


def _separable(name: str, overrides: dict[str, dict[str, Any]], expected: list[list[float]],
               note: str) -> dict[str, Any]:
    return {"id": name, "note": note, "columns": ["x1", "x2"],
            "data": [[0, 0], [2, 1]],
            "overrides": {"x1": {"ub": 5, **overrides.get("x1", {})},
                          "x2": dict(overrides.get("x2", {}))},
            "constraints": [], "model": {"w": [1, 0], "t": 2, "op": ">"},
            "points": [[0, 0], [2, 1]], "expected": expected,
            "scorers": ["enumerate", "sample"]}


def _thermometer(name: str, step_direction: int, immutable: bool, expected: list[list[float]],
                 note: str) -> dict[str, Any]:
    cols = ["CreditUtil_geq_25", "CreditUtil_geq_50", "CreditUtil_geq_75", "CreditUtil_geq_100"]
    overrides = {c: {"actionable": False} for c in cols} if immutable else {}
    return {"id": name, "note": note, "columns": cols,
            "data": [[0, 0, 0, 0], [1, 1, 1, 1]], "overrides": overrides,
            "constraints": [{"kind": "thermometer", "names": cols,
                             "step_direction": step_direction}],
            # approved iff CreditUtil_geq_75 == 0, i.e. -x3 > -1
            "model": {"w": [0, 0, -1, 0], "t": -1, "op": ">"},
            "points": [[0, 0, 0, 0], [1, 1, 1, 1]], "expected": expected,
            "scorers": ["enumerate"]}


def linear_closed_form(point: Sequence[int], grids: Sequence[Sequence[int]],
                       w: Sequence[float], t: float,
                       op: str) -> list[float]:
    """Spec §1: resp_j = |{v in G_j minus x_j : f(x with x_j = v) = 1}| / |G_j minus x_j|."""
    out = []
    for j, grid in enumerate(grids):
        rest = sum(w[k] * point[k] for k in range(len(point)) if k != j)
        others = [v for v in grid if v != point[j]]
        hits = [v for v in others if (w[j] * v + rest > t if op == ">" else w[j] * v + rest >= t)]
        out.append(len(hits) / len(others) if others else 0.0)
    return out


def _predict(w: Sequence[float], t: float, op: str, X: np.ndarray) -> np.ndarray:
    s = np.asarray(X, dtype=np.float64) @ np.asarray(w, dtype=np.float64)
    return (s > t if op == ">" else s >= t).astype(np.int64)


def _linear_grid_case(seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    d = 3
    lbs = [int(v) for v in rng.integers(-3, 1, size=d)]
    ubs = [lb + int(v) for lb, v in zip(lbs, rng.integers(2, 7, size=d), strict=True)]
    w = [int(v) for v in rng.choice([-3, -2, -1, 1, 2, 3], size=d)]
    grids = [list(range(lb, ub + 1)) for lb, ub in zip(lbs, ubs, strict=True)]
    every = np.array(list(itertools.product(*grids)))
    scores = every @ np.array(w)
    t = float(np.quantile(scores, 0.6))  # about 40% approved
    denied = every[_predict(w, t, ">=", every) == 0]
    pick = rng.choice(len(denied), size=min(4, len(denied)), replace=False)
    points = [[int(v) for v in denied[i]] for i in sorted(pick)]
    cols = [f"z{j}" for j in range(d)]
    return {"id": f"RS-8/seed{seed}",
            "note": f"linear threshold 1[w.x >= t], w={w}, t={t:g}, grids "
                    + ", ".join(f"[{lb},{ub}]" for lb, ub in zip(lbs, ubs, strict=True)),
            "columns": cols, "data": [lbs, ubs, *points],
            "overrides": {c: {"lb": lb, "ub": ub}
                          for c, lb, ub in zip(cols, lbs, ubs, strict=True)},
            "constraints": [], "model": {"w": w, "t": t, "op": ">="}, "points": points,
            "expected": [linear_closed_form(p, grids, w, t, ">=") for p in points],
            "scorers": ["enumerate", "sample"]}


def cases() -> list[dict[str, Any]]:
    """Every case, in table order."""
    out = [
        _separable("RS-1/2", {}, [[0.6, 0.0], [0.6, 0.0]],
                   "x1 int [0,5], x2 bool, approved iff x1 > 2; no constraints"),
        _separable("RS-3", {"x1": {"step_direction": 1}, "x2": {"step_direction": 1}},
                   [[0.6, 0.0], [1.0, 0.0]], "same, every feature step_direction +1"),
        _separable("RS-4", {"x1": {"actionable": False}, "x2": {"actionable": False}},
                   [[0.0, 0.0], [0.0, 0.0]], "same, every feature immutable"),
        _thermometer("RS-5/6", 0, False, [[1.0, 1 / 3, 0.0, 0.0], [1.0, 1.0, 1.0, 0.0]],
                     "thermometer CreditUtil>=25/50/75/100, approved iff >=75 is 0"),
        _thermometer("RS-7", -1, False, [[0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 0.0]],
                     "same, thermometer step_direction -1"),
        _thermometer("RS-4t", 0, True, [[0.0] * 4, [0.0] * 4],
                     "same, every feature immutable"),
    ]
    out += [_linear_grid_case(seed) for seed in (0, 1, 2)]
    out.append({
        "id": "OH-1", "note": "one-hot a/b/c (moves as a unit), approved iff c == 1",
        "columns": ["cat_a", "cat_b", "cat_c"], "data": [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
        "overrides": {}, "constraints": [{"kind": "onehot",
                                          "names": ["cat_a", "cat_b", "cat_c"]}],
        "model": {"w": [0, 0, 1], "t": 1, "op": ">="}, "points": [[1, 0, 0], [0, 1, 0]],
        # switching a off lands on b or c (1/2); switching b on lands on b (0); c on: 1
        "expected": [[0.5, 0.0, 1.0], [0.0, 0.5, 1.0]], "scorers": ["enumerate"]})
    out.append({
        "id": "DL-1", "note": "years (int 0..5) -> age (int 20..40, immutable), scales [1, 1]; "
                              "approved iff age >= 25",
        "columns": ["years", "age"], "data": [[0, 20], [5, 40]],
        "overrides": {"age": {"actionable": False}},
        "constraints": [{"kind": "linkage", "names": ["years", "age"], "scales": [1, 1]}],
        "model": {"w": [0, 1], "t": 25, "op": ">="}, "points": [[0, 22], [2, 23]],
        # years + a (a in 1..5 at years=0; a in -2..3 at years=2) moves age by a
        "expected": [[0.6, 0.0], [0.4, 0.0]], "scorers": ["enumerate"]})
    out.append({
        "id": "CT-1", "note": "x float [0,10], approved iff x > 7; a ~ U[lb-x, ub-x]",
        "columns": ["x", "k"], "data": [[0.0, 0], [10.0, 1], [2.5, 0]],
        "overrides": {"k": {"actionable": False}}, "constraints": [],
        "model": {"w": [1, 0], "t": 7, "op": ">"}, "points": [[2.0, 0], [6.0, 1]],
        # 2 + a > 7 for a in (5, 8] of [-2, 8]; 6 + a > 7 for a in (1, 4] of [-6, 4]
        "expected": [[0.3, 0.0], [0.3, 0.0]], "scorers": ["sample"]})
    return out


# ----------------------------------------------------------------------------------------------
# half 1: reachml
# ----------------------------------------------------------------------------------------------


def _reachml_action_set(rm: Any, case: dict[str, Any]) -> Any:
    from reachml.constraints import (
        DirectionalLinkage,
        OneHotEncoding,
        ThermometerEncoding,
    )

    A = rm.ActionSet(pd.DataFrame(case["data"], columns=case["columns"]))
    for name, fields in case["overrides"].items():
        for key, value in fields.items():
            setattr(A[name], key, value)
    for c in case["constraints"]:
        if c["kind"] == "thermometer":
            A.constraints.add(constraint=ThermometerEncoding(
                names=c["names"], step_direction=c["step_direction"]))
        elif c["kind"] == "onehot":
            A.constraints.add(constraint=OneHotEncoding(names=c["names"]))
        elif c["kind"] == "linkage":
            A.constraints.add(constraint=DirectionalLinkage(names=c["names"], scales=c["scales"]))
        else:
            msg = f"unknown constraint kind {c['kind']!r}"
            raise ValueError(msg)
    return A


def _reachml_version(rm: Any) -> str:
    v = getattr(rm, "__version__", None)
    if v is None:  # a source tree on PYTHONPATH: the installed distribution is another copy
        try:
            from importlib.metadata import distribution
            dist = distribution("reachml")
            here = Path(rm.__file__).resolve().parent
            if Path(str(dist.locate_file("reachml"))).resolve() == here:
                v = dist.version
        except Exception:
            pass
    return "unknown (source tree)" if v is None else str(v)


def run_reachml(label: str | None) -> dict[str, Any]:
    """Score every case with reachml; return the JSON record."""
    try:
        import reachml as rm
        from reachml.scoring import ResponsivenessScorer
    except ImportError as err:
        sys.exit(
            f"reachml is not importable here ({type(err).__name__}: {err}).\n"
            "Run this half with the reachml venv's python, e.g.\n"
            "  python -m venv /tmp/reachml-env && /tmp/reachml-env/bin/pip install "
            "reachml scipy scikit-learn cplex\n"
            "  /tmp/reachml-env/bin/python bench/reachml_compare.py --out FILE")
    try:
        from reachml.utils import DEFAULT_SOLVER
        solver = str(DEFAULT_SOLVER)
    except ImportError:
        solver = "cplex"
    record: dict[str, Any] = {
        "label": label or f"reachml {_reachml_version(rm)}",
        "version": _reachml_version(rm), "module": str(Path(rm.__file__).parent),
        "solver": solver, "python": sys.version.split()[0],
        "numpy": np.__version__, "pandas": pd.__version__, "n_samples": N_SAMPLES,
        "seed": SEED, "cases": {}}
    for case in cases():
        m = case["model"]

        def predict(X: np.ndarray, m: dict[str, Any] = m) -> np.ndarray:
            return _predict(m["w"], m["t"], m["op"], X)

        out: dict[str, Any] = {}
        for method in case["scorers"]:
            t0 = time.perf_counter()
            try:
                A = _reachml_action_set(rm, case)
                scorer = ResponsivenessScorer(action_set=A, method=method)
                rows = []
                for p in case["points"]:
                    x = np.asarray(p, dtype=np.float64)
                    if method == "sample":
                        np.random.seed(SEED)  # noqa: NPY002  (reachml samples from the global RNG)
                        s = scorer.score(x, predict, target=1, n=N_SAMPLES)
                    else:
                        s = scorer.score(x, predict, target=1)
                    rows.append([float(v) for v in s])
                out[method] = {"scores": rows, "seconds": time.perf_counter() - t0}
            except Exception as err:  # record reachml's own failures, keep going
                out[method] = {"error": f"{type(err).__name__}: {err}"}
        record["cases"][case["id"]] = out
    return record


def _fmt(row: list[float] | None) -> str:
    return "-" if row is None else "(" + ", ".join(f"{v:.3g}" for v in row) + ")"


def _maxdiff(a: list[float] | None, b: list[float] | None) -> float | None:
    if a is None or b is None:
        return None
    return float(np.max(np.abs(np.asarray(a, dtype=float) - np.asarray(b, dtype=float))))


def print_reachml(record: dict[str, Any]) -> None:
    """Table of one reachml run against the expected values."""
    print(f"\n{record['label']}  (module {record['module']}, solver {record['solver']}, "
          f"n={record['n_samples']} for sampling)")
    print(f"{'case':14} {'point':16} {'expected':24} {'enumerate':24} {'sample':24} ok")
    for case in cases():
        res = record["cases"][case["id"]]
        for i, (p, exp) in enumerate(zip(case["points"], case["expected"], strict=True)):
            cells, ok = [], True
            for method in ("enumerate", "sample"):
                r = res.get(method)
                if r is None:
                    cells.append("-")
                elif "error" in r:
                    cells.append("ERR " + r["error"][:20])
                    ok = False
                else:
                    got = r["scores"][i]
                    cells.append(_fmt(got))
                    tol = 1e-9 if method == "enumerate" else _sampling_tol(exp)
                    ok &= (_maxdiff(got, exp) or 0.0) <= tol
            print(f"{case['id']:14} {_fmt(p):16} {_fmt(exp):24} {cells[0]:24} {cells[1]:24} "
                  f"{'yes' if ok else 'NO'}")


def _sampling_tol(expected: list[float]) -> float:
    """Four standard errors of a share estimated from N_SAMPLES draws (at least 0.02)."""
    return max(0.02, 4 * max(math.sqrt(p * (1 - p) / N_SAMPLES) for p in expected))


# ----------------------------------------------------------------------------------------------
# half 2: ours
# ----------------------------------------------------------------------------------------------


def _xai_action_set(xai: Any, case: dict[str, Any]) -> Any:
    actions = xai.ActionSet.from_dataframe(pd.DataFrame(case["data"], columns=case["columns"]))
    for name, fields in case["overrides"].items():
        for key, value in fields.items():
            setattr(actions[name], key, value)
    for c in case["constraints"]:
        if c["kind"] == "thermometer":
            actions.add_constraint(xai.Thermometer(c["names"], step_direction=c["step_direction"]))
        elif c["kind"] == "onehot":
            actions.add_constraint(xai.OneHot(c["names"]))
        elif c["kind"] == "linkage":
            actions.add_constraint(xai.DirectionalLinkage(c["names"], scales=c["scales"]))
        else:
            msg = f"unknown constraint kind {c['kind']!r}"
            raise ValueError(msg)
    return actions


def run_ours(case: dict[str, Any]) -> tuple[list[list[float]] | None, str, float]:
    """Our scores for the case's points: (rows or None, error text, seconds)."""
    import xai

    m = case["model"]

    def model(X: np.ndarray) -> np.ndarray:
        # hard labels as one-hot probabilities of (denied, approved): argmax and a 0.5 threshold
        # on the approved column agree with reachml's ``predict(x') == target``
        y = _predict(m["w"], m["t"], m["op"], X)
        return np.stack([1 - y, y], axis=1).astype(np.float64)

    t0 = time.perf_counter()
    try:
        actions = _xai_action_set(xai, case)
        X = pd.DataFrame(case["points"], columns=case["columns"])
        exp = xai.explain(model, X, method="responsiveness", action_set=actions, target=1,
                          n_samples=N_SAMPLES, random_state=SEED,
                          adapter_options={"feature_names": case["columns"],
                                           "output_kind": "probabilities"})
        vals = np.asarray(exp.values.detach().cpu().numpy() if hasattr(exp.values, "detach")
                          else exp.values, dtype=np.float64)
        rows = vals.reshape(len(case["points"]), -1).tolist()
        return rows, "", time.perf_counter() - t0
    except Exception as err:
        return None, f"{type(err).__name__}: {err}", time.perf_counter() - t0


def compare(paths: list[str]) -> int:
    """Print case, expected, each reachml run, ours, and the largest differences."""
    records: list[dict[str, Any]] = []
    for path in paths:
        data = json.loads(Path(path).read_text())
        records += data.get("runs", [data])
    try:
        import xai
        has_ours = hasattr(xai, "ActionSet")
    except ImportError:
        has_ours = False
    if not has_ours:
        print("xai.ActionSet is not importable (run with PYTHONPATH=<repo> under the main "
              "environment, once xai/recourse has landed); showing reachml only.")
    for r in records:
        print(f"[{r['label']}] module {r['module']}, solver {r['solver']}, numpy {r['numpy']}")
    header = f"{'case':14} {'point':14} {'expected':22}"
    for j, _ in enumerate(records):
        header += f" {'reachml#' + str(j) + ' enum':22} {'reachml#' + str(j) + ' sample':22}"
    header += f" {'ours':22}"
    header += "".join(f" {'|ours-#' + str(j) + '|':>10}" for j, _ in enumerate(records))
    header += f" {'|ours-exp|':>10} {'tol':>6} ok"
    print(header)
    worst_ok = True
    for case in cases():
        ours, err, secs = run_ours(case) if has_ours else (None, "", 0.0)
        discrete = case["scorers"] != ["sample"]
        for i, (p, exp) in enumerate(zip(case["points"], case["expected"], strict=True)):
            line = f"{case['id']:14} {_fmt(p):14} {_fmt(exp):22}"
            diffs: list[float | None] = []
            for r in records:
                res = r["cases"].get(case["id"], {})
                for method in ("enumerate", "sample"):
                    cell = res.get(method)
                    if cell is None:
                        line += f" {'-':22}"
                    elif "error" in cell:
                        line += f" {'ERR':22}"
                    else:
                        line += f" {_fmt(cell['scores'][i]):22}"
                # per run: ours vs reachml's exact scorer (enumeration), else its sampler
                best = res.get("enumerate") or res.get("sample") or {}
                diffs.append(_maxdiff(ours[i], best["scores"][i])
                             if ours is not None and "scores" in best else None)
            mine = ours[i] if ours is not None else None
            d_exp = _maxdiff(mine, exp)
            tol = 1e-6 if discrete else _sampling_tol(exp)  # our values are float32
            ok = d_exp is not None and d_exp <= tol
            worst_ok &= ok or not has_ours
            line += (f" {_fmt(mine) if mine is not None else ('ERR' if err else '-'):22}"
                     + "".join(f" {'-' if d is None else f'{d:.3g}':>10}" for d in diffs)
                     + f" {'-' if d_exp is None else f'{d_exp:.3g}':>10} {tol:6.3g}"
                     f" {'yes' if ok else ('-' if not has_ours else 'NO')}")
            print(line)
        if has_ours and err:
            print(f"    ours failed on {case['id']}: {err}")
        elif has_ours:
            print(f"    ours: {secs * 1e3:.1f} ms for {len(case['points'])} points")
    print("\n|ours-#j|: largest difference from reachml run j's enumeration (its sampler where "
          "it has no enumeration, CT-1); 'ok' checks ours against the expected value (exact up to float32 rounding for "
          f"discrete cases, 4 SE for sampling at n={N_SAMPLES}).")
    return 0 if worst_ok else 1


def main(argv: list[str] | None = None) -> int:
    """Command line: ``--out FILE`` (reachml half) or ``--compare FILE ...`` (our half)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("--out", help="write reachml's scores to this JSON file")
    ap.add_argument("--label", help="name of this reachml run in the JSON file")
    ap.add_argument("--append", action="store_true",
                    help="add this run to the runs already in --out")
    ap.add_argument("--compare", nargs="+", metavar="FILE",
                    help="JSON files from --out; scores ours with xai and prints the table")
    args = ap.parse_args(argv)
    if args.compare:
        return compare(args.compare)
    record = run_reachml(args.label)
    print_reachml(record)
    if args.out:
        path = Path(args.out)
        runs: list[dict[str, Any]] = []
        if args.append and path.exists():
            old = json.loads(path.read_text())
            runs = old.get("runs", [old])
        runs = [r for r in runs if r["label"] != record["label"]] + [record]
        path.write_text(json.dumps({"runs": runs}, indent=1) + "\n")
        print(f"\nwrote {path} ({len(runs)} run(s))")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
