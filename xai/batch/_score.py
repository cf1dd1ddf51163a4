"""``xai.batch.score``: explain and evaluate a whole data set, locally or on Ray."""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

import pandas as pd

from .._explain import select_method
from ..adapters import as_adapter
from ..exceptions import InvalidParameterError
from ._chunk import Job, Scorer, canonical_metrics
from ._config import JobConfig, job_config, reconcile
from ._data import Example, read_dataset
from ._io import OutputStore, columns
from ._models import ModelFactory

__all__ = ["N_REASONS", "describe_failures", "plan_chunks", "score"]

#: Distinct errors of failed rows kept in the summary.
N_REASONS = 3

#: Position of the first example, examples, methods to run for them.
Chunk = tuple[int, list[Example], tuple[str, ...]]


def score(
    model: Any,
    dataset: Any,
    methods: Sequence[str] = ("auto",),
    metrics: Sequence[str] = (),
    *,
    output: str | os.PathLike[str] | None = None,
    engine: Literal["local", "ray"] = "local",
    batch_size: int = 64,
    resume: bool | Literal["add"] = False,
    random_state: int = 0,
    id_column: str | None = None,
    input_columns: Sequence[str] | None = None,
    method_params: Mapping[str, Mapping[str, Any]] | None = None,
    metric_params: Mapping[str, Mapping[str, Any]] | None = None,
    target: Any = None,
    adapter_options: Mapping[str, Any] | None = None,
    hash_inputs: bool = False,
    num_workers: int | None = None,
    ray_address: str | None = None,
    show_progress: bool | None = None,
    trust_pickle: bool = False,
    trusted_types: Sequence[str] = (),
) -> pd.DataFrame:
    """Explain every example of ``dataset`` with each method, score it with each metric.

    Parameters
    ----------
    model : str or model
        A model spec (``"demo-credit"``, ``"demo-sentiment"``, a Hugging Face folder, a
        ``.skops`` file, ``"module:function"``; see :func:`xai.batch.load_model`) or anything
        ``xai.as_adapter`` accepts. On Ray a spec is loaded once per worker; an object is
        serialised to the workers.
    dataset : iterable, DataFrame, path or datasets.Dataset
        Texts or rows, a CSV/JSONL/Parquet file, or a ``datasets.Dataset`` saved on disk.
    methods : sequence of str, default=("auto",)
        Registry names (``xai.list_methods()``).
    metrics : sequence of str, default=()
        Metric registry names (``xai metrics``); one output column each.
    output : path, optional
        ``.parquet`` or ``.jsonl`` file. Finished chunks are written atomically to
        ``<output>.parts/`` and merged at the end; ``<output>.job.json`` records the job's
        configuration (model, methods and metrics with their effective parameters, target,
        seed, input options). None keeps the rows in memory only.
    engine : {"local", "ray"}, default="local"
        Where chunks run. "ray" runs the same per-chunk function on Ray Data actors.
    batch_size : int, default=64
        Examples per chunk: one explain call per method and one part file per chunk.
    resume : bool or "add", default=False
        True finishes an interrupted job: examples already in ``output`` or its parts are
        skipped. The job must be the one recorded in ``<output>.job.json``; another model,
        method list, parameter, metric, target, seed or input option raises
        `JobMismatchError`, which names each difference. ``"add"`` extends an existing output
        with new methods: ``methods`` lists the methods to add (one already in the output is
        accepted when its parameters are the recorded ones), only their rows are computed, and
        the record then lists the extended job. Every other setting must match the record.
    random_state : int, default=0
        Seed of every method and metric; each example gets its own generator seeded from it,
        so its values do not depend on its chunk or worker.
    id_column : str, optional
        Column of unique example ids (None: positions 0, 1, ...).
    input_columns : sequence of str, optional
        Input columns (default: the model's ``feature_names_in_``, else every other column;
        the ``text`` column for text models).
    method_params, metric_params : mapping, optional
        ``{name: {field: value}}`` for methods and metrics.
    target : int, str or None, default=None
        The explained output (one per example). None: the model spec's default, else the
        predicted class.
    adapter_options : mapping, optional
        Passed to ``xai.as_adapter``.
    hash_inputs : bool, default=False
        Write ``sha256:<hex>`` of each input instead of the input itself.
    num_workers : int, optional
        Ray actors (default 2).
    ray_address : str, optional
        Address of an existing Ray cluster; None starts a local one with ``num_workers`` CPUs.
    show_progress : bool, optional
        tqdm bar with rows/s and ETA; None shows it when stderr is a terminal.
    trust_pickle : bool, default=False
        Allow a pickle model spec (unpickling runs arbitrary code).
    trusted_types : sequence of str, default=()
        Extra types a ``.skops`` model may contain.

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
    _check_args(engine, batch_size, random_state, methods, resume, output)
    factory = (ModelFactory(spec=model, trust_pickle=trust_pickle,
                            trusted_types=tuple(trusted_types))
               if isinstance(model, str) else ModelFactory(obj=model))
    loaded = factory()
    adapter = as_adapter(loaded.model, **dict(adapter_options or {}))
    names = tuple(select_method(adapter) if m == "auto" else m for m in methods)
    job = Job(methods=names, metrics=canonical_metrics(metrics),
              method_params=dict(method_params or {}), metric_params=dict(metric_params or {}),
              target=target, random_state=random_state, hash_inputs=hash_inputs,
              input_columns=None if input_columns is None else tuple(input_columns),
              adapter_options=dict(adapter_options or {}))
    scorer = Scorer(factory, job, loaded)
    if adapter.modality not in ("text", "tabular"):
        msg = (f"Batch scoring handles text and tabular models; this model's inputs are "
               f"{adapter.modality!r}. Call xai.explain in a loop instead.")
        raise InvalidParameterError(msg, parameter="model", value=adapter.modality)
    default_columns = getattr(loaded.model, "feature_names_in_", None)
    examples = read_dataset(dataset, modality=adapter.modality, id_column=id_column,
                            input_columns=job.input_columns,
                            default_columns=None if default_columns is None else
                            [str(c) for c in default_columns])
    config = job_config(job, scorer, factory, id_column=id_column)
    store, done = None, {}
    if output is not None:
        store = OutputStore(output, job.metrics, resume=bool(resume))
        config = _reconcile(store, config, add=resume == "add")
        store.open(config)
        done = store.done_methods()
    chunks = plan_chunks(examples, config.methods, done, runnable=job.methods,
                         batch_size=batch_size)
    n_todo = sum(len(chunk) for _, chunk, _ in chunks)
    if engine == "ray":
        from ._ray import run_ray

        results = run_ray(factory, job, chunks, num_workers=num_workers or 2,
                          address=ray_address)
    else:
        results = ((first, scorer.score_chunk(chunk, todo)) for first, chunk, todo in chunks)
    kept = _consume(results, store, n_todo, show_progress)
    if store is not None:
        rows = store.merge([e.id for e in examples], config.methods)
    else:
        position = {e.id: k for k, e in enumerate(examples)}
        rows = sorted(kept, key=lambda r: (position[r["id"]], names.index(r["method"])))
    table = pd.DataFrame.from_records(rows, columns=columns(job.metrics))
    seconds = time.perf_counter() - start
    table.attrs["summary"] = _summary(table, n_todo, len(examples) - n_todo, seconds)
    return table


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
                batch_size: int) -> list[Chunk]:
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
    chunks = [(items[j][0], [e for _, e in items[j:j + batch_size]], key)
              for key, items in groups.items() for j in range(0, len(items), batch_size)]
    return sorted(chunks, key=lambda c: c[0])


def _check_args(engine: str, batch_size: Any, random_state: Any, methods: Sequence[str],
                resume: Any, output: Any) -> None:
    if engine not in ("local", "ray"):
        msg = f"The 'engine' parameter of score must be 'local' or 'ray'. Got {engine!r} instead."
        raise InvalidParameterError(msg, parameter="engine", value=engine)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        msg = (f"The 'batch_size' parameter of score must be an int in the range [1, inf). Got "
               f"{batch_size!r} instead.")
        raise InvalidParameterError(msg, parameter="batch_size", value=batch_size)
    if isinstance(random_state, bool) or not isinstance(random_state, int) or random_state < 0:
        msg = (f"The 'random_state' parameter of score must be a non-negative int (one seed for "
               f"the whole job). Got {random_state!r} instead.")
        raise InvalidParameterError(msg, parameter="random_state", value=random_state)
    if isinstance(methods, str) or not methods:
        msg = (f"The 'methods' parameter of score must be a non-empty list of method names. Got "
               f"{methods!r} instead.")
        raise InvalidParameterError(msg, parameter="methods", value=methods)
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
