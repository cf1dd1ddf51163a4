"""Batch scoring: explain and evaluate whole data sets, locally or on Ray.

>>> from xai.batch import score
>>> table = score("demo-credit", "applicants.csv", methods=["occlusion"],
...               metrics=["faithfulness_correlation"], output="scores.parquet")  # doctest: +SKIP

One row per (example, method) with the attributions, metric scores, seed and status; finished
chunks are written atomically, so ``resume=True`` finishes a killed job without losing or
duplicating a row. The job's configuration is recorded next to the output: a resume with other
settings raises `JobMismatchError`, and ``resume="add"`` adds methods to a finished output.
``engine="ray"`` runs the same chunks on Ray Data actors.
"""

from __future__ import annotations

from ._config import JobMismatchError
from ._io import read_rows
from ._models import DEMO_MODELS, LoadedModel, ModelFactory, load_model
from ._score import score

__all__ = ["DEMO_MODELS", "JobMismatchError", "LoadedModel", "ModelFactory", "load_model",
           "read_rows", "score"]
