"""``engine=RayEngine(...)``: the per-chunk function of the local engine on Ray Data actors.

Each chunk is one item of a Ray dataset; ``map_batches`` runs it on a pool of actors that load
the model once each (`ModelFactory`), and the driver writes each finished chunk as it arrives.
Chunks are the same as the local engine's, so the rows are identical.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..exceptions import MissingDependencyError
from ._chunk import Scorer
from ._data import Example
from ._job import Job
from ._models import ModelFactory

__all__ = ["run_ray"]


class _ChunkActor:
    """Ray actor: builds the Scorer (loads the model) once, then scores chunk after chunk."""

    def __init__(self, factory: ModelFactory, job: Job) -> None:
        self.scorer = Scorer(factory, job)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        out = [pickle.dumps(self.scorer.score_chunk(*pickle.loads(blob)))
               for blob in batch["chunk"]]
        return {"first": np.asarray(batch["first"]), "rows": np.asarray(out, dtype=object)}


def _ray() -> Any:
    try:
        import ray
    except ImportError as err:
        msg = ('engine=RayEngine() (CLI: --engine ray) requires Ray Data. Install it with: '
               'pip install "posthoc-xai[ray]".')
        raise MissingDependencyError(msg) from err
    return ray


def _init(ray: Any, num_workers: int, address: str | None) -> None:
    if ray.is_initialized():
        return
    if address is not None:
        ray.init(address=address, log_to_driver=False)
        return
    # Workers must import this very xai (also from a source checkout that is not installed).
    root = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    ray.init(num_cpus=num_workers, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path}})


def run_ray(factory: ModelFactory, job: Job,
            chunks: Sequence[tuple[int, list[Example], tuple[str, ...]]], *, num_workers: int,
            address: str | None) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """Score ``chunks`` on ``num_workers`` Ray actors; yield (first position, rows) as they finish.

    A chunk is (position of its first example, examples, methods to run for them).
    """
    if not chunks:
        return
    ray = _ray()
    _init(ray, num_workers, address)
    items = [{"first": first, "chunk": pickle.dumps((list(chunk), methods))}
             for first, chunk, methods in chunks]
    ds = ray.data.from_items(items, override_num_blocks=len(items))
    pool = ray.data.ActorPoolStrategy(size=min(num_workers, len(items)))
    scored = ds.map_batches(_ChunkActor, fn_constructor_args=(factory, job), batch_size=1,
                            compute=pool, num_cpus=1, batch_format="numpy")
    for batch in scored.iter_batches(batch_size=1, batch_format="numpy",
                                     prefetch_batches=0):
        for first, blob in zip(batch["first"], batch["rows"], strict=True):
            yield int(first), pickle.loads(blob)
