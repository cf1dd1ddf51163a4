"""Output files of ``xai.batch.score``: atomic chunk files, resume, merge.

Each finished chunk is written to ``<output>.parts/part-<first row>-<token>.<suffix>`` through a
temporary file and ``os.replace``, so a killed job leaves only whole chunks (and perhaps a
``.tmp`` file, ignored and removed). The final file is written the same way from the previous
final file and the parts; then the parts folder is removed.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..exceptions import InvalidParameterError, MissingDependencyError

__all__ = ["OutputStore", "columns", "read_rows"]

#: Fixed columns before and after the metric columns.
HEAD: tuple[str, ...] = ("id", "input", "method", "target", "prediction", "attributions",
                         "feature_names")
TAIL: tuple[str, ...] = ("method_params", "seed", "status", "error", "elapsed")
FORMATS: dict[str, str] = {".parquet": "parquet", ".jsonl": "jsonl"}


def columns(metric_names: Sequence[str]) -> list[str]:
    """Column order of the output: fixed columns, one per metric, then bookkeeping."""
    return [*HEAD, *metric_names, *TAIL]


def _arrow_schema(metric_names: Sequence[str]) -> Any:
    pa = _pyarrow()
    types = {"id": pa.string(), "input": pa.string(), "method": pa.string(),
             "target": pa.string(), "prediction": pa.float64(),
             "attributions": pa.list_(pa.float64()), "feature_names": pa.list_(pa.string()),
             "method_params": pa.string(), "seed": pa.int64(), "status": pa.string(),
             "error": pa.string(), "elapsed": pa.float64()}
    return pa.schema([(c, types.get(c, pa.float64())) for c in columns(metric_names)])


def _pyarrow() -> Any:
    try:
        import pyarrow as pa
    except ImportError as err:
        msg = ('Writing Parquet requires pyarrow. Install it with: pip install "posthoc-xai[batch]"'
               ', or write JSONL (output="scores.jsonl").')
        raise MissingDependencyError(msg) from err
    return pa


def _format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        msg = (f"The 'output' parameter of score must end in .parquet or .jsonl. Got "
               f"{str(path)!r} instead.")
        raise InvalidParameterError(msg, parameter="output", value=str(path))
    return fmt


def write_rows(path: Path, rows: Sequence[Mapping[str, Any]], metric_names: Sequence[str]) -> None:
    """Write ``rows`` to ``path`` atomically (temporary file, then ``os.replace``)."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    if _format(path) == "parquet":
        import pyarrow.parquet as pq

        schema = _arrow_schema(metric_names)
        table = _pyarrow().Table.from_pylist([dict(r) for r in rows], schema=schema)
        pq.write_table(table, tmp)
    else:
        with tmp.open("w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(_json_row(row, metric_names), allow_nan=False) + "\n")
    os.replace(tmp, path)


def _json_row(row: Mapping[str, Any], metric_names: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for c in columns(metric_names):
        v = row.get(c)
        if isinstance(v, float) and not math.isfinite(v):
            v = None
        out[c] = v
    return out


def read_rows(path: Path) -> list[dict[str, Any]]:
    """All rows of an output file (Parquet or JSONL) as dicts; lists stay lists."""
    if _format(path) == "parquet":
        import pyarrow.parquet as pq

        rows: list[dict[str, Any]] = pq.read_table(path).to_pylist()
        return rows
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


class OutputStore:
    """The output file and its parts folder; one per job."""

    def __init__(self, output: str | os.PathLike[str], metric_names: Sequence[str], *,
                 resume: bool) -> None:
        self.path = Path(output)
        self.format = _format(self.path)
        if self.format == "parquet":
            _pyarrow()
        self.parts = Path(f"{self.path}.parts")
        self.metric_names = list(metric_names)
        if not resume and (self.path.exists() or self.parts.exists()):
            msg = (f"The output {str(self.path)!r} (or its parts folder) already exists. Pass "
                   "resume=True (CLI: --resume) to finish it, or remove it to start again.")
            raise InvalidParameterError(msg, parameter="output", value=str(self.path))
        self.parts.mkdir(parents=True, exist_ok=True)
        for stale in self.parts.glob(".*.tmp"):  # a chunk in flight when the job was killed
            stale.unlink()

    def _part_files(self) -> list[Path]:
        return sorted(p for p in self.parts.glob(f"part-*{self.path.suffix}"))

    def done_ids(self) -> set[str]:
        """Ids already written: in the final file or in a finished part."""
        files = ([self.path] if self.path.exists() else []) + self._part_files()
        return {str(r["id"]) for f in files for r in read_rows(f)}

    def write_part(self, first: int, rows: Sequence[Mapping[str, Any]]) -> None:
        """Write one finished chunk (``first``: position of its first example)."""
        name = f"part-{first:09d}-{uuid.uuid4().hex[:8]}{self.path.suffix}"
        write_rows(self.parts / name, rows, self.metric_names)

    def merge(self, order: Iterable[str], methods: Sequence[str]) -> list[dict[str, Any]]:
        """Final file = previous final file + parts, one row per (id, method), data-set order."""
        files = ([self.path] if self.path.exists() else []) + self._part_files()
        seen: dict[tuple[str, str], dict[str, Any]] = {}
        for f in files:
            for row in read_rows(f):
                seen.setdefault((str(row["id"]), str(row["method"])), row)
        rank = {ident: k for k, ident in enumerate(order)}
        mrank = {m: k for k, m in enumerate(methods)}
        rows = sorted(seen.values(), key=lambda r: (rank.get(str(r["id"]), len(rank)),
                                                     str(r["id"]),
                                                     mrank.get(str(r["method"]), len(mrank)),
                                                     str(r["method"])))
        write_rows(self.path, rows, self.metric_names)
        shutil.rmtree(self.parts)
        return rows
