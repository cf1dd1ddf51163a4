"""``xai.batch.score``: explain and evaluate a whole data set, locally or on Ray."""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

import pandas as pd

from ..exceptions import InvalidParameterError
from ._chunk import Scorer
from ._config import JobConfig, job_config, reconcile
from ._data import Example, read_dataset
from ._io import OutputStore, columns
from ._job import Job, LocalEngine, RayEngine
from ._legacy import upgrade
from ._models import ModelFactory

__all__ = ["N_REASONS", "describe_failures", "plan_chunks", "score"]

#: Distinct errors of failed rows kept in the summary.
N_REASONS = 3

#: Position of the first example, examples, methods to run for them.
Chunk = tuple[int, list[Example], tuple[str, ...]]


def score(
    model: Any,
    dataset: Any,
    job: Job | None = None,
    *,
    output: str | os.PathLike[str] | None = None,
    engine: LocalEngine | RayEngine | None = None,
    resume: bool | Literal["add"] = False,
    show_progress: bool | None = None,
    trust_pickle: bool = False,
    trusted_types: Sequence[str] = (),
    **deprecated: Any,
) -> pd.DataFrame:
    """Explain every example of ``dataset`` with each method of ``job``, score it with each metric.

    Parameters
    ----------
    model : str or model
        A model spec (``"demo-credit"``, ``"demo-sentiment"``, a Hugging Face folder, a
        ``.skops`` file, ``"module:function"``; see :func:`xai.batch.load_model`) or anything
        ``xai.as_adapter`` accepts. On Ray a spec is loaded once per worker; an object is
        serialised to the workers.
    dataset : iterable, DataFrame, path or datasets.Dataset
        Texts or rows, a CSV/JSONL/Parquet file, or a ``datasets.Dataset`` saved on disk.
    job : Job, optional
        What to compute: methods, metrics, target, seed, chunk size, input options (see
        `Job`). None: ``Job()``, the model's default method and no metric.
    output : path, optional
        ``.parquet`` or ``.jsonl`` file. Finished chunks are written atomically to
        ``<output>.parts/`` and merged at the end; ``<output>.job.json`` records the job
        (model, methods and metrics with their effective parameters, target, seed, input
        options). None keeps the rows in memory only.
    engine : LocalEngine or RayEngine, optional
        Where chunks run (default: ``LocalEngine()``). ``RayEngine(num_workers=4)`` runs the
        same per-chunk function on Ray Data actors, with the same rows.
    resume : bool or "add", default=False
        True finishes an interrupted job: examples already in ``output`` or its parts are
        skipped. The job must be the one recorded in ``<output>.job.json``; another model,
        method list, parameter, metric, target, seed or input option raises
        `JobMismatchError`, which names each difference. ``"add"`` extends an existing output
        with new methods: the job's methods are the methods to add (one already in the output
        is accepted when its parameters are the recorded ones), only their rows are computed,
        and the record then lists the extended job. Every other setting must match the record.
    show_progress : bool, optional
        tqdm bar with rows/s and ETA; None shows it when stderr is a terminal.
    trust_pickle : bool, default=False
        Allow a pickle model spec (unpickling runs arbitrary code).
    trusted_types : sequence of str, default=()
        Extra types a ``.skops`` model may contain.
    **deprecated
        The keywords of the previous release (``methods``, ``metrics``, ``method_params``,
        ``metric_params``, ``batch_size`` -- examples per chunk, now ``Job.chunk_size`` --,
        ``target``, ``random_state``, ``id_column``, ``input_columns``, ``adapter_options``,
        ``hash_inputs``, ``num_workers``, ``ray_address``, and ``engine="local"/"ray"``) still
        work for this release and raise a DeprecationWarning that gives the new spelling.

    Returns
    -------
    pandas.DataFrame
        One row per (example, method), in data-set order: ``id, input, method, target,
        prediction, attributions, feature_names``, one column per metric, ``method_params,
        seed, status, error, elapsed``. ``attrs["summary"]`` holds counts, rows/s and, under
        ``"errors"``, the most frequent distinct errors of failed rows as ``(error, rows)``
        pairs (at most `N_REASONS`; ``"distinct_errors"`` counts them all).

    Raises
    ------
    JobMismatchError
        ``resume`` was given another job than the one recorded with ``output``.
    InvalidParameterError
        A bad argument, an output that exists without ``resume``, or one that cannot be
        written.
    InvalidInputError
        The data set (or an existing output to resume) cannot be read, or has no rows.
    """
    start = time.perf_counter()
    spec, runner = upgrade(job, engine, deprecated)
    _check_args(resume, output)
    factory = (ModelFactory(spec=model, trust_pickle=trust_pickle,
                            trusted_types=tuple(trusted_types))
               if isinstance(model, str) else ModelFactory(obj=model))
    loaded = factory()
    the_job = spec if isinstance(spec, Job) else spec.build(loaded.model)
    scorer = Scorer(factory, the_job, loaded)
    if scorer.adapter.modality not in ("text", "tabular", "graph"):
        msg = (f"Batch scoring handles text, tabular and graph models; this model's inputs are "
               f"{scorer.adapter.modality!r}. Call xai.explain in a loop instead.")
        raise InvalidParameterError(msg, parameter="model", value=scorer.adapter.modality)
    examples = _examples(dataset, scorer)
    config = job_config(the_job, scorer, factory)
    store, done = None, {}
    if output is not None:
        store = OutputStore(output, tuple(scorer.metrics), resume=bool(resume))
        config = _reconcile(store, config, add=resume == "add")
        store.open(config)
        done = store.done_methods()
    names = tuple(scorer.methods)
    chunks = plan_chunks(examples, config.methods, done, runnable=names,
                         chunk_size=the_job.chunk_size)
    n_todo = sum(len(chunk) for _, chunk, _ in chunks)
    if isinstance(runner, RayEngine):
        from ._ray import run_ray

        results = run_ray(factory, the_job, chunks, num_workers=runner.num_workers,
                          address=runner.address)
    else:
        results = ((first, scorer.score_chunk(chunk, todo)) for first, chunk, todo in chunks)
    kept = _consume(results, store, n_todo, show_progress)
    if store is not None:
        rows = store.merge([e.id for e in examples], config.methods)
    else:
        position = {e.id: k for k, e in enumerate(examples)}
        rows = sorted(kept, key=lambda r: (position[r["id"]], names.index(r["method"])))
    table = pd.DataFrame.from_records(rows, columns=columns(tuple(scorer.metrics)))
    seconds = time.perf_counter() - start
    table.attrs["summary"] = _summary(table, n_todo, len(examples) - n_todo, seconds)
    return table


def _examples(dataset: Any, scorer: Scorer) -> list[Example]:
    if scorer.adapter.modality == "graph":
        from ._graphs import read_graphs

        return read_graphs(dataset, index=getattr(scorer.adapter, "index", None))
    default_columns = getattr(scorer.loaded.model, "feature_names_in_", None)
    return read_dataset(dataset, modality=scorer.adapter.modality,
                        id_column=scorer.job.id_column, input_columns=scorer.job.input_columns,
                        default_columns=None if default_columns is None else
                        [str(c) for c in default_columns])


def _reconcile(store: OutputStore, config: JobConfig, *, add: bool) -> JobConfig:
    """The job record to write: refuses another job than the stored one (see `reconcile`)."""
    stored = store.stored_config()
    if add and stored is None:
        msg = (f"resume='add' adds methods to an existing output, and {str(store.path)!r} does "
               "not exist. Check the path, or run the job without resume to start it.")
        raise InvalidParameterError(msg, parameter="output", value=str(store.path))
    return reconcile(stored, config, add=add, output=str(store.path))


def plan_chunks(examples: Sequence[Example], methods: Sequence[str],
                done: Mapping[str, set[str]], *, runnable: Sequence[str],
                chunk_size: int) -> list[Chunk]:
    """Chunks of the examples that lack a row for some of ``methods``, in data-set order.

    Examples that lack the same methods are chunked together; each chunk runs only those.

    Raises
    ------
    InvalidParameterError
        An example lacks a method that this run cannot compute (not in ``runnable``).
    """
    groups: dict[tuple[str, ...], list[tuple[int, Example]]] = {}
    for k, e in enumerate(examples):
        missing = tuple(m for m in methods if m not in done.get(e.id, ()))
        if missing:
            groups.setdefault(missing, []).append((k, e))
    for m in methods:
        lacking = sum(len(v) for key, v in groups.items() if m in key)
        if lacking and m not in runnable:
            msg = (f"The output has no {m!r} row for {lacking} example(s), and this run does not "
                   f"compute {m!r}: resume='add' runs only the methods it is given. Finish the "
                   f"job first with resume=True (CLI: --resume) and all its methods, or add "
                   f"{m!r}, with its recorded parameters, to the methods.")
            raise InvalidParameterError(msg, parameter="methods", value=list(runnable))
    chunks = [(items[j][0], [e for _, e in items[j:j + chunk_size]], key)
              for key, items in groups.items() for j in range(0, len(items), chunk_size)]
    return sorted(chunks, key=lambda c: c[0])


def _check_args(resume: Any, output: Any) -> None:
    if resume not in (False, True, "add"):
        msg = (f"The 'resume' parameter of score must be False, True or 'add'. Got {resume!r} "
               "instead.")
        raise InvalidParameterError(msg, parameter="resume", value=resume)
    if resume and output is None:
        msg = (f"resume={resume!r} needs an output file to resume. Pass "
               "output='scores.parquet'.")
        raise InvalidParameterError(msg, parameter="resume", value=resume)


def _consume(results: Iterator[tuple[int, list[dict[str, Any]]]], store: OutputStore | None,
             n_examples: int, show_progress: bool | None) -> list[dict[str, Any]]:
    """Write each finished chunk (or keep it when there is no output file); drive the bar."""
    from tqdm import tqdm

    show = sys.stderr.isatty() if show_progress is None else show_progress
    kept: list[dict[str, Any]] = []
    with tqdm(total=n_examples, desc="xai score", unit="row", disable=not show,
              file=sys.stderr) as bar:
        for first, rows in results:
            if store is not None:
                store.write_part(first, rows)
            else:
                kept.extend(rows)
            ids = {r["id"] for r in rows}
            failed = sum(r["status"] != "ok" for r in rows)
            bar.update(len(ids))
            if failed:
                bar.set_postfix_str(f"{failed} failed in last chunk")
    return kept


def _summary(table: pd.DataFrame, n_run: int, n_skipped: int, seconds: float) -> dict[str, Any]:
    failed = table["status"] != "ok"
    reasons = Counter(str(e) if e else "unknown error" for e in table.loc[failed, "error"])
    ranked = sorted(reasons.items(), key=lambda kv: -kv[1])  # stable: ties in row order
    return {"examples_scored": n_run, "examples_skipped": n_skipped, "rows": len(table),
            "rows_ok": int((~failed).sum()), "rows_failed": int(failed.sum()),
            "errors": ranked[:N_REASONS], "distinct_errors": len(reasons), "seconds": seconds,
            "examples_per_s": n_run / seconds if seconds > 0 else float("nan")}


def describe_failures(summary: Mapping[str, Any], *, width: int = 160) -> str:
    """``"2 of 24 rows failed: ValueError: ... (2 rows)"``, with the first distinct errors.

    Each error is cut to its first line and ``width`` characters.
    """
    def short(text: str) -> str:
        line = text.strip().splitlines()[0] if text.strip() else text
        return line if len(line) <= width else line[:width - 3] + "..."

    shown = "; ".join(f"{short(e)} ({n} row{'s' if n != 1 else ''})"
                      for e, n in summary["errors"])
    more = summary["distinct_errors"] - len(summary["errors"])
    rest = f"; and {more} other distinct error{'s' if more != 1 else ''}" if more > 0 else ""
    return f"{summary['rows_failed']} of {summary['rows']} rows failed: {shown}{rest}"
