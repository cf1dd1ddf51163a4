"""``xai.batch.score``: explain and evaluate a whole data set, locally or on Ray."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

import pandas as pd

from .._explain import select_method
from ..adapters import as_adapter
from ..exceptions import InvalidParameterError
from ._chunk import Job, Scorer, canonical_metrics
from ._data import Example, read_dataset
from ._io import OutputStore, columns
from ._models import ModelFactory

__all__ = ["score"]

Chunk = tuple[int, list[Example]]  # position of the first example, examples


def score(
    model: Any,
    dataset: Any,
    methods: Sequence[str] = ("auto",),
    metrics: Sequence[str] = (),
    *,
    output: str | os.PathLike[str] | None = None,
    engine: Literal["local", "ray"] = "local",
    batch_size: int = 64,
    resume: bool = False,
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
        ``<output>.parts/`` and merged at the end. None keeps the rows in memory only.
    engine : {"local", "ray"}, default="local"
        Where chunks run. "ray" runs the same per-chunk function on Ray Data actors.
    batch_size : int, default=64
        Examples per chunk: one explain call per method and one part file per chunk.
    resume : bool, default=False
        Finish an interrupted job: ids already in ``output`` or its parts are skipped.
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
        seed, status, error, elapsed``. ``attrs["summary"]`` holds counts and rows/s.
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
    store = None if output is None else OutputStore(output, job.metrics, resume=resume)
    done = store.done_ids() if store is not None and resume else set()
    position = {e.id: k for k, e in enumerate(examples)}
    todo = [e for e in examples if e.id not in done]
    chunks = [(position[todo[k].id], todo[k:k + batch_size])
              for k in range(0, len(todo), batch_size)]
    if engine == "ray":
        from ._ray import run_ray

        results = run_ray(factory, job, chunks, num_workers=num_workers or 2,
                          address=ray_address)
    else:
        results = ((first, scorer.score_chunk(chunk)) for first, chunk in chunks)
    kept = _consume(results, store, len(todo), show_progress)
    if store is not None:
        rows = store.merge([e.id for e in examples], names)
    else:
        rows = sorted(kept, key=lambda r: (position[r["id"]], names.index(r["method"])))
    table = pd.DataFrame.from_records(rows, columns=columns(job.metrics))
    seconds = time.perf_counter() - start
    table.attrs["summary"] = _summary(table, len(todo), len(examples) - len(todo), seconds)
    return table


def _check_args(engine: str, batch_size: Any, random_state: Any, methods: Sequence[str],
                resume: bool, output: Any) -> None:
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
    if resume and output is None:
        msg = "resume=True needs an output file to resume. Pass output='scores.parquet'."
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
    failed = int((table["status"] != "ok").sum())
    return {"examples_scored": n_run, "examples_skipped": n_skipped, "rows": len(table),
            "rows_ok": len(table) - failed, "rows_failed": failed, "seconds": seconds,
            "examples_per_s": n_run / seconds if seconds > 0 else float("nan")}
