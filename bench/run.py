"""Run the side-by-side benchmarks and write ``docs/benchmarks.md``.

Usage::

    python bench/run.py            # every area, full repeats
    python bench/run.py --quick    # fewer repeats (a few minutes on 2 cores)

Each area script (``bench/<area>.py``) exposes ``run(quick: bool) -> Section``; this file also
holds the helpers they share: timing, model-call counting, machine description and the writer of
the markdown report. Areas are loaded from their files as ``bench_<area>`` (``metrics.py`` shares
its name with the ``metrics`` package). Writing the report replaces only the sections that were
run and keeps the others, so one area script can run alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib
import importlib.util
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["AREAS", "PEERS", "CallCounter", "Row", "Section", "area_main", "interleaved_times", "load_area",
           "load_average", "machine_info", "seeded_runs", "table", "write_doc"]

#: Benchmark scripts run by ``bench/run.py`` (module names in ``bench/``).
AREAS: tuple[str, ...] = ("attribution", "metrics", "groups", "graphs", "responsiveness", "bee",
                          "shapley", "shapley_overhead", "shapley_adjusted", "audit",
                          "amortized", "amortized_text")
BENCH_DIR: Path = Path(__file__).resolve().parent
DOC_PATH: Path = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


@dataclasses.dataclass
class Section:
    """One area's results: a markdown body (table, input, notes) under a title."""

    title: str
    markdown: str
    all_targets_met: bool


def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs))


@dataclasses.dataclass
class Row:
    """One line of the results table, built from the timed runs of both contenders.

    ``ours_times[i]`` and ``peer_times[i]`` come from the same interleaved round (or seed), so
    their ratio is paired: both saw the same machine load.
    """

    comparison: str
    ours_times: list[float]
    peer_times: list[float]
    calls: str
    rows: str
    accuracy: str
    target: str
    max_ratio: float | None = None  # the target on ``ratio``, if any
    values_ok: bool | None = None  # the target on the values, if any

    @property
    def ratio(self) -> float:
        """Median over rounds of ours / peer (paired)."""
        return median([o / p for o, p in zip(self.ours_times, self.peer_times, strict=True)])

    @property
    def min_ratio(self) -> float:
        return min(self.ours_times) / min(self.peer_times)

    @property
    def met(self) -> bool | None:
        if self.max_ratio is None and self.values_ok is None:
            return None
        return (self.max_ratio is None or self.ratio <= self.max_ratio) and \
            self.values_ok is not False


def table(rows: list[Row]) -> str:
    head = ("| comparison | ours (s) | peer (s) | ratio ours/peer | ratio of fastest runs | "
            "model calls ours / peer | rows ours / peer | values | target | met |")
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        met = "n/a" if r.met is None else ("yes" if r.met else "**no**")
        lines.append(f"| {r.comparison} | {median(r.ours_times):.3f} | "
                     f"{median(r.peer_times):.3f} | {r.ratio:.2f} | "
                     f"{r.min_ratio:.2f} | {r.calls} | {r.rows} | {r.accuracy} | {r.target} | "
                     f"{met} |")
    return "\n".join(lines)


class CallCounter:
    """Counts calls, rows and token positions of a ``torch.nn.Module``'s forward (a pre-hook).

    Rows are the first dimension of ``input_ids`` (keyword or first positional argument, or
    ``inputs_embeds``, or the ``hidden_states`` a decoder layer receives); positions are rows
    times the second dimension (sequence length) when there is one.
    """

    def __init__(self, module: torch.nn.Module) -> None:
        self.calls = self.rows = self.positions = 0
        self._handle = module.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module: torch.nn.Module, args: tuple[Any, ...],
              kwargs: dict[str, Any]) -> None:
        ids = kwargs.get("input_ids")
        if ids is None:
            ids = args[0] if args else kwargs.get("inputs_embeds", kwargs.get("hidden_states"))
        self.calls += 1
        self.rows += int(ids.shape[0])
        self.positions += int(ids.shape[0] * (ids.shape[1] if ids.dim() > 1 else 1))

    @contextmanager
    def count(self) -> Iterator[CallCounter]:
        """Reset the counts, then count what runs inside the block."""
        self.calls = self.rows = self.positions = 0
        yield self

    def close(self) -> None:
        self._handle.remove()


def interleaved_times(fns: dict[str, Callable[[], Any]], repeats: int,
                      counter: CallCounter | None = None
                      ) -> tuple[dict[str, list[float]], dict[str, tuple[Any, int, int]]]:
    """Wall times (``time.perf_counter``) of each function, runs interleaved to share noise.

    Every function first runs once untimed (warm-up), with ``counter`` counting its model calls
    and rows; then each of the ``repeats`` rounds runs all functions once, in an order rotated by
    one each round, so slow phases of a shared machine hit every contender alike.

    Returns
    -------
    times : dict of name to list of float
        Seconds of each timed run.
    warmup : dict of name to (result, model calls, model rows)
        The warm-up run's return value and counts (0, 0 without a counter).
    """
    warm: dict[str, tuple[Any, int, int]] = {}
    for name, fn in fns.items():
        if counter is None:
            warm[name] = (fn(), 0, 0)
            continue
        with counter.count():
            out = fn()
        warm[name] = (out, counter.calls, counter.rows)
    names = list(fns)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            start = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - start)
    print("  times (s): " + "; ".join(f"{n} " + " ".join(f"{t:.2f}" for t in ts)
                                      for n, ts in times.items()), flush=True)
    return times, warm


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(name: str) -> str:
    try:
        return str(importlib.import_module(name).__version__)
    except Exception:  # noqa: BLE001  # a missing peer is reported, not fatal
        return "not installed"


def load_average() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "unknown"


def seeded_runs(counter: CallCounter, fns: dict[str, Any], seeds: list[int],
                 exact: torch.Tensor) -> dict[str, dict[str, Any]]:
    """Run seeded estimators against an exact answer: times, calls/rows, mean errors per contender.

    Each function takes a seed and returns values comparable with ``exact``.

    A warm-up run of each comes first; then, seed by seed, the contenders run back to back (the
    order alternating) so that machine noise hits both alike.
    """
    for fn in fns.values():
        fn(seeds[0])
    acc: dict[str, dict[str, list[float]]] = {k: {"t": [], "maxabs": [], "rmse": [], "calls": [],
                                                  "rows": []} for k in fns}
    for k, seed in enumerate(seeds):
        order = list(fns) if k % 2 == 0 else list(fns)[::-1]
        for name in order:
            with counter.count():
                start = time.perf_counter()
                v = fns[name](seed)
                acc[name]["t"].append(time.perf_counter() - start)
            err = v - exact
            for key, val in (("maxabs", err.abs().max()), ("rmse", err.pow(2).mean().sqrt()),
                             ("calls", counter.calls), ("rows", counter.rows)):
                acc[name][key].append(float(val))
    print("  times (s): " + "; ".join(f"{n} " + " ".join(f"{t:.2f}" for t in a["t"])
                                      for n, a in acc.items()), flush=True)
    return {name: {"t": a["t"], "calls": int(a["calls"][0]),
                   "rows": int(a["rows"][0]), "maxabs": float(np.mean(a["maxabs"])),
                   "rmse": float(np.mean(a["rmse"]))} for name, a in acc.items()}


def machine_info() -> dict[str, str]:
    """Date, CPU, thread counts and library versions for the report header."""
    import os

    return {
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "cpu": _cpu_model(),
        "nproc": str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                     else os.cpu_count()),
        "torch threads": str(torch.get_num_threads()),
        "python": platform.python_version(),
        **{lib: _version(lib) for lib in ("torch", "captum", "shap", "quantus", "transformers",
                                          "numpy")},
    }


def render_section(section: Section, *, quick: bool, date: str) -> str:
    """One area's block: title, when and how it was measured, body."""
    stamp = f"_Measured {date}, {'quick' if quick else 'full'} mode._"
    return "\n".join([f"## {section.title}", "", stamp, "", section.markdown.rstrip(), ""])


def render(sections: Sequence[Section], *, quick: bool,
           kept: Sequence[tuple[str, str]] = ()) -> str:
    """The report: header (this machine, now), then ``kept`` blocks (title, text) from an
    earlier report, each replaced in place by the new section of the same title, then the
    remaining new sections."""
    info = machine_info()
    lines = ["# Benchmarks", "",
             "Side-by-side runs of our methods and the peer libraries, in one process, on the same "
             "model and inputs. Regenerate with `python bench/run.py` (or `--quick`, fewer repeats); "
             "`python bench/<area>.py` reruns one area and keeps the other sections, each of "
             "which says when it was measured.", "",
             f"- mode of the last run: {'quick' if quick else 'full'}"]
    lines += [f"- {k}: {v}" for k, v in info.items()]
    lines.append("")
    new = {s.title: render_section(s, quick=quick, date=info["date"]) for s in sections}
    for title, text in kept:
        lines.append(new.pop(title, text))
    lines += list(new.values())
    return "\n".join(lines)


def doc_sections(text: str) -> list[tuple[str, str]]:
    """The ``## `` blocks of a report as (title, text), in order (the header is dropped)."""
    blocks: list[tuple[str, str]] = []
    for line in text.splitlines():
        if line.startswith("## "):
            blocks.append((line[3:].strip(), ""))
        if blocks:
            title, body = blocks[-1]
            blocks[-1] = (title, body + line + "\n")
    return [(title, body.rstrip() + "\n") for title, body in blocks]


def write_doc(sections: Sequence[Section], *, quick: bool, path: Path = DOC_PATH) -> str:
    """Render the report with ``sections`` replacing (or joining) those already in ``path``,
    write it and return the text."""
    kept = doc_sections(path.read_text(encoding="utf-8")) if path.exists() else []
    text = render(sections, quick=quick, kept=kept)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return text


def load_area(name: str) -> Any:
    """Import ``bench/<name>.py`` as module ``bench_<name>``."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH_DIR / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


#: The peer libraries each area imports, checked before anything runs.
PEERS: dict[str, tuple[str, ...]] = {"groups": ("captum",), "graphs": ("torch_geometric",),
                                     "attribution": ("captum", "shap", "transformers"),
                                     "metrics": ("captum", "quantus"),
                                     # reachml needs its own venv (bench/reachml_compare.py);
                                     # the in-process comparison is a one-call-per-point loop
                                     "responsiveness": (),
                                     "bee": ("captum",),  # BEE vs captum's IG
                                     # shapiq is optional (not in [bench]): without it the area
                                     # says "not installed" and compares with shap only
                                     "shapley": ("shap",),
                                     # kernel_shap's backend="shap" is timed for reference
                                     "shapley_overhead": ("shap",),
                                     "shapley_adjusted": (),  # ours alone, same rows
                                     "audit": (),  # ours: the audit vs its own jobs
                                     "amortized": (),  # vs our kernel SHAP and sampling
                                     "amortized_text": ()}  # the same, on MiniLM


def missing_peers(areas: Sequence[str]) -> list[str]:
    """The peer packages of ``areas`` that are not installed."""
    names = sorted({name for area in areas for name in PEERS.get(area, ())})
    return [name for name in names if importlib.util.find_spec(name) is None]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and seeds")
    parser.add_argument("--no-write", action="store_true", help=f"do not write {DOC_PATH.name}")
    args = parser.parse_args(argv)
    missing = missing_peers(AREAS)
    if missing:
        print(f"bench: the peers {', '.join(missing)} are not installed. Install them with: "
              'pip install -e ".[bench]"', file=sys.stderr)
        return 2
    sys.modules.setdefault("run", sys.modules[__name__])  # area scripts import the helpers
    sections = [load_area(area).run(quick=args.quick) for area in AREAS]
    text = render(sections, quick=args.quick) if args.no_write else \
        write_doc(sections, quick=args.quick)
    print(text)
    missed = [s.title for s in sections if not s.all_targets_met]
    print(f"targets missed in: {', '.join(missed)}" if missed else "all targets met")
    return 0


def area_main(run_area: Callable[..., Section], description: str) -> int:
    """Command line of one area's script: ``--quick`` and ``--no-write``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and seeds")
    parser.add_argument("--no-write", action="store_true", help="do not write docs/benchmarks.md")
    args = parser.parse_args()
    section = run_area(quick=args.quick)
    if args.no_write:
        print(section.markdown)
    else:
        print(write_doc([section], quick=args.quick))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    raise SystemExit(main())
