"""Data sets of ``xai.batch.score``: read any supported source into ids and examples.

An `Example` holds its id (a string), its input (a text, a row as a dict, or a list of numbers)
and an error when the row cannot be used (a cell that is not a number, say). Bad rows are kept
and written with ``status="error"``; they never stop the job.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import InvalidInputError, InvalidParameterError, MissingDependencyError

__all__ = ["Example", "read_dataset"]

SUFFIXES: tuple[str, ...] = (".csv", ".jsonl", ".json", ".parquet")


@dataclasses.dataclass(frozen=True)
class Example:
    """One example of the data set: id, input, and an error when the input is unusable."""

    id: str
    value: Any
    error: str | None = None


def read_dataset(dataset: Any, *, modality: str, id_column: str | None = None,
                 input_columns: Sequence[str] | None = None,
                 default_columns: Sequence[str] | None = None) -> list[Example]:
    """Read ``dataset`` into examples for a model of ``modality`` ("text" or "tabular").

    Parameters
    ----------
    dataset : iterable, DataFrame, path or datasets.Dataset
        Texts or rows; a CSV/JSONL/Parquet file; a ``datasets.Dataset`` folder (save_to_disk).
    modality : {"text", "tabular"}
    id_column : str, optional
        Column holding example ids; None numbers the examples 0, 1, ... in order.
    input_columns : sequence of str, optional
        Input columns. None: the "text" column (or the only other column) for text models;
        ``default_columns`` (a model's ``feature_names_in_``) or every other column for tables.
    default_columns : sequence of str, optional
        Columns the model expects, used when ``input_columns`` is None and all are present.

    Returns
    -------
    list of Example
    """
    frame = _to_frame(dataset)
    n_rows = len(frame) if frame is not None else len(items := list(dataset))
    if n_rows == 0:
        where = f" {str(dataset)!r}" if isinstance(dataset, str | os.PathLike) else ""
        msg = f"The data set{where} has no rows. Pass a data set with at least one example."
        raise InvalidInputError(msg, parameter="dataset", value=where.strip() or None)
    if frame is None:  # a plain sequence of texts or numeric rows
        if id_column is not None or input_columns is not None:
            msg = ("The 'id_column' and 'input_columns' parameters of score need a table "
                   "(DataFrame, CSV/JSONL/Parquet file, datasets.Dataset); got a plain "
                   f"{type(dataset).__name__} of inputs. Pass a DataFrame instead.")
            raise InvalidParameterError(msg, parameter="id_column", value=id_column)
        return [_plain_example(str(i), item, modality) for i, item in enumerate(items)]
    ids = _ids(frame, id_column)
    columns = _input_columns(frame, modality, id_column, input_columns, default_columns)
    if modality == "text":
        col = frame[columns[0]].tolist()
        return [Example(i, v) if isinstance(v, str) and v.strip() else
                Example(i, v, f"InvalidInputError: The text in column {columns[0]!r} is empty "
                              f"or not a string (got {v!r}).")
                for i, v in zip(ids, col, strict=True)]
    table, bad = _numeric(frame[list(columns)])
    records = table.to_dict(orient="records")
    return [Example(i, rec, bad.get(k)) for k, (i, rec) in enumerate(zip(ids, records,
                                                                          strict=True))]


def _to_frame(dataset: Any) -> pd.DataFrame | None:
    if isinstance(dataset, pd.DataFrame):
        return dataset.reset_index(drop=True)
    if isinstance(dataset, str | os.PathLike):
        return _read_path(Path(dataset))
    if hasattr(dataset, "to_pandas") and hasattr(dataset, "column_names"):  # datasets.Dataset
        frame: pd.DataFrame = dataset.to_pandas()
        return frame
    if isinstance(dataset, np.ndarray) and dataset.ndim == 2:
        return None
    if isinstance(dataset, Iterable):
        return None
    msg = (f"The 'dataset' parameter of score must be an iterable of inputs, a DataFrame, a "
           f"CSV/JSONL/Parquet path or a datasets.Dataset. Got {type(dataset).__name__} instead.")
    raise InvalidParameterError(msg, parameter="dataset", value=dataset)


def _read_path(path: Path) -> pd.DataFrame:
    if not path.exists():
        msg = (f"The data set {str(path)!r} does not exist. Pass a CSV, JSONL or Parquet file, "
               "or a folder written by datasets.Dataset.save_to_disk.")
        raise InvalidParameterError(msg, parameter="dataset", value=str(path))
    if path.is_dir():
        try:
            import datasets
        except ImportError as err:
            msg = (f"Reading the data set folder {str(path)!r} requires the datasets package. "
                   "Install it with: pip install datasets (or pass a CSV/JSONL/Parquet file).")
            raise MissingDependencyError(msg) from err
        frame: pd.DataFrame = datasets.load_from_disk(str(path)).to_pandas()
        return frame
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        msg = (f"The data set {str(path)!r} has an unsupported suffix {suffix!r}. Use one of: "
               f"{', '.join(SUFFIXES)}, or a datasets.Dataset folder.")
        raise InvalidParameterError(msg, parameter="dataset", value=str(path))
    try:
        if suffix == ".csv":
            return pd.read_csv(path)
        if suffix == ".parquet":
            return pd.read_parquet(path)
    except pd.errors.EmptyDataError as err:
        msg = (f"The data set {str(path)!r} is empty: it has no header line. Pass a CSV file "
               "with a header line and one example per line.")
        raise InvalidInputError(msg, parameter="dataset", value=str(path)) from err
    except (ValueError, OSError) as err:  # pandas' ParserError and pyarrow's errors among them
        kind = "CSV" if suffix == ".csv" else "Parquet"
        msg = (f"The data set {str(path)!r} is not a readable {kind} file "
               f"({type(err).__name__}: {_first_line(err)}). Fix the file, or pass another.")
        raise InvalidInputError(msg, parameter="dataset", value=str(path)) from err
    return _read_jsonl(path)


def _read_jsonl(path: Path) -> pd.DataFrame:
    """A JSON Lines file: one JSON object per line; a bad line is an error naming it."""
    records: list[dict[str, Any]] = []
    try:
        lines = path.read_text(encoding="utf-8").split("\n")  # not splitlines: JSON may hold U+2028
    except UnicodeDecodeError as err:
        msg = (f"The data set {str(path)!r} is not UTF-8 text ({err}). Write JSON Lines in "
               "UTF-8.")
        raise InvalidInputError(msg, parameter="dataset", value=str(path)) from err
    for k, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            msg = (f"Line {k} of the data set {str(path)!r} is not valid JSON ({err}); a "
                   "file cut short ends in such a line. Fix or remove that line.")
            raise InvalidInputError(msg, parameter="dataset", value=str(path)) from err
        if not isinstance(record, dict):
            msg = (f"Line {k} of the data set {str(path)!r} holds a JSON "
                   f"{type(record).__name__}, not an object. Write one JSON object per line "
                   'with the columns as keys: {"text": "..."}.')
            raise InvalidInputError(msg, parameter="dataset", value=str(path))
        records.append(record)
    return pd.DataFrame.from_records(records)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _ids(frame: pd.DataFrame, id_column: str | None) -> list[str]:
    if id_column is None:
        return [str(i) for i in range(len(frame))]
    _check_columns(frame, [id_column], "id_column")
    ids = [str(v) for v in frame[id_column].tolist()]
    dup = pd.Series(ids)[pd.Series(ids).duplicated()].tolist()
    if dup:
        msg = (f"The id column {id_column!r} must hold unique ids; {dup[0]!r} appears more than "
               "once. Resuming skips ids already written, so ids must name one example each.")
        raise InvalidInputError(msg, parameter="id_column", value=dup[0])
    return ids


def _check_columns(frame: pd.DataFrame, wanted: Sequence[str], parameter: str) -> None:
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        available = ", ".join(map(str, frame.columns))
        msg = (f"The {parameter!r} parameter of score names column {missing[0]!r}, which the data "
               f"set does not have. Available columns: {available}.")
        raise InvalidParameterError(msg, parameter=parameter, value=missing[0])


def _input_columns(frame: pd.DataFrame, modality: str, id_column: str | None,
                   input_columns: Sequence[str] | None,
                   default_columns: Sequence[str] | None) -> list[str]:
    if input_columns is not None:
        cols = [input_columns] if isinstance(input_columns, str) else list(input_columns)
        _check_columns(frame, cols, "input_columns")
    elif modality == "text":
        rest = [c for c in frame.columns if c != id_column]
        cols = ["text"] if "text" in frame.columns else rest
    elif default_columns is not None and all(c in frame.columns for c in default_columns):
        cols = list(default_columns)
    else:
        cols = [c for c in frame.columns if c != id_column]
    if modality == "text" and len(cols) != 1:
        available = ", ".join(map(str, frame.columns))
        msg = (f"A text model explains one text column; the data set has {len(cols)} candidate "
               f"columns. Pass input_columns=['<column>'] (CLI: --columns). Available columns: "
               f"{available}.")
        raise InvalidParameterError(msg, parameter="input_columns", value=cols)
    return [str(c) for c in cols]


def _numeric(table: pd.DataFrame) -> tuple[pd.DataFrame, dict[int, str]]:
    """Coerce mostly-numeric text columns to numbers; rows with unparsable cells get an error.

    A column counts as numeric when at least half of its non-empty cells parse as numbers; a
    column of category names stays as it is.
    """
    out = table.copy()
    bad: dict[int, str] = {}
    for col in table.columns:
        if pd.api.types.is_numeric_dtype(table[col]):
            continue
        parsed = pd.to_numeric(table[col], errors="coerce")
        present = table[col].notna()
        ok = parsed.notna() & present
        if int(present.sum()) == 0 or int(ok.sum()) * 2 < int(present.sum()):
            continue
        out[col] = parsed
        for k in np.flatnonzero((present & ~ok).to_numpy()).tolist():
            bad.setdefault(k, f"InvalidInputError: Column {col!r} holds "
                              f"{table[col].iloc[k]!r}, which is not a number.")
    return out, bad


def _plain_example(ident: str, item: Any, modality: str) -> Example:
    if modality == "text":
        if isinstance(item, str) and item.strip():
            return Example(ident, item)
        return Example(ident, item, f"InvalidInputError: The input is empty or not a string "
                                    f"(got {item!r}).")
    if isinstance(item, dict):
        return Example(ident, item)
    try:
        row = [float(v) for v in np.asarray(item).ravel().tolist()]
    except (TypeError, ValueError) as err:
        return Example(ident, item, f"InvalidInputError: The row {item!r} is not numeric ({err}).")
    return Example(ident, row)


def describe_input(value: Any) -> str | None:
    """The ``input`` column: the text itself, or the row as JSON (NaN written as null)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return json.dumps({str(k): _json_cell(v) for k, v in value.items()}, default=str)
    if isinstance(value, list):
        return json.dumps([_json_cell(v) for v in value], default=str)
    return repr(value)


def _json_cell(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v
