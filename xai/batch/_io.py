"""Output files of ``xai.batch.score``: atomic chunk files, resume, merge.

Each finished chunk is written to ``<output>.parts/part-<first row>-<token>.<suffix>`` through a
temporary file and ``os.replace``, so a killed job leaves only whole chunks (and perhaps a
``.tmp`` file, ignored and removed). The final file is written the same way from the previous
final file and the parts; then the parts folder is removed. The job's configuration is recorded
in ``<output>.job.json`` before the first chunk (`xai.batch._config`), and stays with the output.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..exceptions import InvalidInputError, InvalidParameterError, MissingDependencyError
from ._config import JobConfig

__all__ = ["OutputStore", "columns", "read_rows"]

#: Fixed columns before and after the metric columns.
HEAD: tuple[str, ...] = ("id", "input", "method", "target", "prediction", "attributions",
                         "feature_names")
TAIL: tuple[str, ...] = ("method_params", "seed", "status", "error", "elapsed")
FORMATS: dict[str, str] = {".parquet": "parquet", ".jsonl": "jsonl"}
_NAMES: dict[str, str] = {"parquet": "Parquet", "jsonl": "JSONL"}


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


def read_rows(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """All rows of an output file (Parquet or JSONL) as dicts; lists stay lists.

    Raises
    ------
    InvalidInputError
        The file cannot be read, or it holds something else than rows of ``xai score``.
    """
    return _read(Path(path), "")


def _read(path: Path, fix: str) -> list[dict[str, Any]]:
    fmt = _format(path)
    where = ""
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            rows: list[Any] = pq.read_table(path).to_pylist()
        else:
            rows = []
            with path.open(encoding="utf-8") as fh:
                for k, line in enumerate(fh, start=1):
                    where = f"line {k}: "
                    if line.strip():
                        rows.append(json.loads(line))
            where = ""
        bad = next((r for r in rows if not isinstance(r, dict) or not {"id", "method"} <= set(r)),
                   None)
        if bad is not None:
            msg = f"a row without 'id' and 'method' columns: {str(bad)[:80]}"
            raise ValueError(msg)
    except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid is a ValueError
        msg = (f"The file {str(path)!r} is not a readable {_NAMES[fmt]} output of xai score ({where}"
               f"{err}).{fix}")
        raise InvalidInputError(msg, parameter="output", value=str(path)) from err
    return rows


class OutputStore:
    """The output file, its parts folder and its job record (``<output>.job.json``)."""

    def __init__(self, output: str | os.PathLike[str], metric_names: Sequence[str], *,
                 resume: bool) -> None:
        self.path = Path(output)
        self.format = _format(self.path)
        if self.format == "parquet":
            _pyarrow()
        self.parts = Path(f"{self.path}.parts")
        self.record = Path(f"{self.path}.job.json")
        self.metric_names = list(metric_names)
        if not resume and self.exists():
            msg = (f"The output {str(self.path)!r} (or its parts folder) already exists. Pass "
                   "resume=True (CLI: --resume) to finish it, resume='add' (CLI: --resume "
                   "--add) to add methods to it, or remove it to start again.")
            raise InvalidParameterError(msg, parameter="output", value=str(self.path))

    def exists(self) -> bool:
        """Whether the output or its parts folder exists (a job to resume)."""
        return self.path.exists() or self.parts.exists()

    def stored_config(self) -> JobConfig | None:
        """The job record of the existing output (None when there is no output yet)."""
        if not self.exists():
            return None
        start_again = (f"Remove {str(self.path)!r} and {str(self.parts)!r} to start again, or "
                       "write to another output.")
        if not self.record.is_file():
            msg = (f"The output {str(self.path)!r} has no job record {str(self.record)!r}, so "
                   f"resuming cannot check that it is the same job (the output was written by "
                   f"an older xai, or the record was removed). {start_again}")
            raise InvalidInputError(msg, parameter="output", value=str(self.record))
        try:
            return JobConfig.from_dict(json.loads(self.record.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            msg = (f"The job record {str(self.record)!r} cannot be read ({type(err).__name__}: "
                   f"{err}). {start_again}")
            raise InvalidInputError(msg, parameter="output", value=str(self.record)) from err

    def open(self, config: JobConfig) -> None:
        """Create the parts folder and write the job record, before any row."""
        try:
            self.parts.mkdir(parents=True, exist_ok=True)
            for stale in self.parts.glob(".*.tmp"):  # a chunk in flight when the job was killed
                stale.unlink()
            tmp = self.record.with_name(f".{self.record.name}.{uuid.uuid4().hex[:8]}.tmp")
            tmp.write_text(json.dumps(config.to_dict(), indent=1) + "\n", encoding="utf-8")
            os.replace(tmp, self.record)
        except OSError as err:
            msg = (f"The output {str(self.path)!r} cannot be written: {err.strerror or err} "
                   f"({err.filename}). Pass an output in a folder you can write to.")
            raise InvalidParameterError(msg, parameter="output", value=str(self.path)) from err

    def _part_files(self) -> list[Path]:
        return sorted(p for p in self.parts.glob(f"part-*{self.path.suffix}"))

    def _rows(self) -> Iterator[dict[str, Any]]:
        if self.path.exists():
            yield from _read(self.path, " Restore it, or remove it to start again.")
        for f in self._part_files():
            yield from _read(f, " It is not a part that xai score wrote: move it away, then "
                                "resume.")

    def done_methods(self) -> dict[str, set[str]]:
        """Id -> methods already written for it (in the final file or in a finished part)."""
        done: dict[str, set[str]] = {}
        for row in self._rows():
            done.setdefault(str(row["id"]), set()).add(str(row["method"]))
        return done

    def write_part(self, first: int, rows: Sequence[Mapping[str, Any]]) -> None:
        """Write one finished chunk (``first``: position of its first example)."""
        name = f"part-{first:09d}-{uuid.uuid4().hex[:8]}{self.path.suffix}"
        write_rows(self.parts / name, rows, self.metric_names)

    def merge(self, order: Iterable[str], methods: Sequence[str]) -> list[dict[str, Any]]:
        """Final file = previous final file + parts, one row per (id, method), data-set order."""
        seen: dict[tuple[str, str], dict[str, Any]] = {}
        for row in self._rows():
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
