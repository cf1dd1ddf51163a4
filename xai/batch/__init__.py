"""Batch scoring: explain and evaluate whole data sets, locally or on Ray.

>>> from xai.batch import Job, RayEngine, score
>>> job = Job(methods=["occlusion"], metrics=["faithfulness_correlation"], chunk_size=64)
>>> table = score("demo-credit", "applicants.csv", job, output="scores.parquet")  # doctest: +SKIP

One row per (example, method) with the attributions, metric scores, seed and status; finished
chunks are written atomically, so ``resume=True`` finishes a killed job without losing or
duplicating a row. The job's configuration is recorded next to the output: a resume with other
settings raises `JobMismatchError`, and ``resume="add"`` adds methods to a finished output.
``engine=RayEngine(num_workers=4)`` runs the same chunks on Ray Data actors. A `Job` holds what
decides the rows (methods, metrics, target, seed, chunk size, input options); the keywords
``score`` took before it still work for this release, with a DeprecationWarning.
"""

from __future__ import annotations

from ._config import JobMismatchError
from ._io import read_rows
from ._job import Job, LocalEngine, RayEngine
from ._models import DEMO_MODELS, LoadedModel, ModelFactory, load_model
from ._score import score

__all__ = ["DEMO_MODELS", "Job", "JobMismatchError", "LoadedModel", "LocalEngine", "ModelFactory",
           "RayEngine", "load_model", "read_rows", "score"]
