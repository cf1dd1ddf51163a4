"""The configuration of a scoring job, recorded next to its output so that a resume can check it.

``score(..., output="scores.parquet")`` writes ``scores.parquet.job.json`` before its first row:
the model (its spec, and a SHA-256 fingerprint of a model file or folder), the methods and the
metrics with their effective parameters, the target, the seed and the input options.
``resume=True`` builds the same record for the job it is given and refuses a different one with
a `JobMismatchError` that names each difference; ``resume="add"`` accepts new methods and
records the extended job. `job_config` is the one builder of the record, for both engines.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..exceptions import InvalidParameterError
from ._models import LoadedModel, ModelFactory

if TYPE_CHECKING:
    from ._chunk import Scorer
    from ._job import Job

__all__ = ["FORMAT_VERSION", "JobConfig", "JobMismatchError", "canonical", "job_config",
           "reconcile"]

#: Version of the ``<output>.job.json`` record.
FORMAT_VERSION = 1
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_MISSING = "<not set>"


class JobMismatchError(InvalidParameterError):
    """``resume`` was given another job than the one that wrote the output.

    Attributes
    ----------
    differences : tuple of str
        One line per setting that differs, e.g. ``"random_state: 0 in the existing output,
        1 now"``.
    """

    def __init__(self, message: str, *, differences: Sequence[str]) -> None:
        super().__init__(message, parameter="resume", value=None)
        self.differences = tuple(differences)


@dataclasses.dataclass(frozen=True)
class JobConfig:
    """Everything that decides the values of a job's rows, in JSON types.

    Method and metric parameters are the effective ones (defaults included), made comparable
    by `canonical`. The engine, batch size and worker count are not part of it: they do not
    change a row.
    """

    model: str
    model_sha256: str | None
    methods: tuple[str, ...]
    method_params: Mapping[str, Mapping[str, Any]]
    metrics: tuple[str, ...]
    metric_params: Mapping[str, Mapping[str, Any]]
    target: Any
    random_state: int
    hash_inputs: bool
    id_column: str | None
    input_columns: tuple[str, ...] | None
    adapter_options: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The record as written to ``<output>.job.json``."""
        data = dataclasses.asdict(self)
        for key in ("methods", "metrics", "input_columns"):
            data[key] = None if data[key] is None else list(data[key])
        return {"format_version": FORMAT_VERSION, **data}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobConfig:
        """The record read back; KeyError/TypeError/ValueError when it is not one."""
        if data.get("format_version") != FORMAT_VERSION:
            msg = f"format_version {data.get('format_version')!r} is not {FORMAT_VERSION}"
            raise ValueError(msg)
        kw = {f.name: data[f.name] for f in dataclasses.fields(cls)}
        for key in ("methods", "metrics", "input_columns"):
            kw[key] = None if kw[key] is None else tuple(str(v) for v in kw[key])
        return cls(**kw)


def canonical(value: Any) -> Any:
    """``value`` in JSON types that compare equal when the values are equal.

    Arrays, tensors and frames become ``"<ndarray shape=(1, 20) sha256=...>"`` (a digest of
    their contents), objects with ``get_params`` their class and parameters, objects with
    ``to_dict`` (an ``xai.ActionSet``) their class and that dict, functions their
    qualified name, and anything else its ``repr`` without memory addresses.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, np.generic):
        return canonical(value.item())
    if isinstance(value, Mapping):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    if hasattr(value, "shape") and (hasattr(value, "__array__") or hasattr(value, "numpy")):
        return f"<{type(value).__name__} shape={tuple(value.shape)} sha256={_digest(value)}>"
    if not isinstance(value, type) and callable(getattr(value, "get_params", None)):
        return {"class": _qualname(type(value)), "params": canonical(value.get_params())}
    if not isinstance(value, type) and callable(getattr(value, "to_dict", None)):
        return {"class": _qualname(type(value)), "dict": canonical(value.to_dict())}  # ActionSet
    if callable(value):
        return f"<function {_qualname(value)}>"
    return _ADDRESS.sub("", repr(value))


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


def _digest(value: Any) -> str:
    import pandas as pd

    h = hashlib.sha256()
    if isinstance(value, pd.DataFrame | pd.Series):
        names = value.columns if isinstance(value, pd.DataFrame) else [value.name]
        h.update(repr([str(n) for n in names]).encode())
        h.update(pd.util.hash_pandas_object(value, index=False).to_numpy().tobytes())
        return h.hexdigest()[:16]
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    array = np.asarray(value)
    h.update(f"{array.dtype}{array.shape}".encode())
    h.update(repr(array.tolist()).encode() if array.dtype == object else
             np.ascontiguousarray(array).tobytes())
    return h.hexdigest()[:16]


def model_identity(factory: ModelFactory) -> tuple[str, str | None]:
    """The model's spec (or class) and a SHA-256 fingerprint of its file or folder, if any.

    A folder's fingerprint covers its JSON files and the names and sizes of the others, so a
    large Hugging Face folder is not read in full.
    """
    if factory.spec is None:
        obj = factory.obj.model if isinstance(factory.obj, LoadedModel) else factory.obj
        return f"<object {_qualname(type(obj))}>", None
    path = Path(factory.spec)
    if path.is_file():
        h = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        return factory.spec, h.hexdigest()
    if path.is_dir():
        h = hashlib.sha256()
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            h.update(f"{f.relative_to(path).as_posix()}:{f.stat().st_size}\n".encode())
            if f.suffix == ".json":
                h.update(f.read_bytes())
        return factory.spec, h.hexdigest()
    return factory.spec, None


def job_config(job: Job, scorer: Scorer, factory: ModelFactory) -> JobConfig:
    """The record of ``job`` as ``scorer`` runs it (effective parameters and target).

    Every setting comes from the `Job` (``chunk_size`` and ``batch_size`` are left out: they do
    not change a row); the method parameters and the target are the ones ``scorer`` resolved
    for the model (defaults filled in, ``"auto"`` picked).
    """
    model, digest = model_identity(factory)
    data = {
        "format_version": FORMAT_VERSION, "model": model, "model_sha256": digest,
        "methods": list(scorer.methods),
        "method_params": {n: canonical(m.get_params()) for n, m in scorer.methods.items()},
        "metrics": list(scorer.metrics),
        "metric_params": {n: canonical(m.get_params()) for n, m in scorer.metrics.items()},
        "target": canonical(scorer.target), "random_state": job.random_state,
        "hash_inputs": job.hash_inputs, "id_column": job.id_column,
        "input_columns": None if job.input_columns is None else list(job.input_columns),
        "adapter_options": canonical(job.adapter_options),
    }
    return JobConfig.from_dict(json.loads(json.dumps(data)))  # exactly as read back


def differences(old: JobConfig, new: JobConfig, *, add: bool) -> list[str]:
    """One line per setting of ``new`` that differs from ``old`` (methods too unless ``add``)."""
    a, b = old.to_dict(), new.to_dict()
    out: list[str] = []
    if a["model_sha256"] and b["model_sha256"]:  # the same file elsewhere is the same model
        if a["model_sha256"] != b["model_sha256"]:
            out.append(_line("model file contents (sha256)", a["model_sha256"][:16],
                             b["model_sha256"][:16]))
    elif a["model"] != b["model"]:
        out.append(_line("model", a["model"], b["model"]))
    for names, params in (("methods", "method_params"), ("metrics", "metric_params")):
        if set(a[names]) != set(b[names]) and not (add and names == "methods"):
            out.append(_line(names, a[names], b[names]))
        for name in (n for n in b[names] if n in a[names]):
            old_p, new_p = a[params][name], b[params][name]
            out += [_line(f"{name}.{k}", old_p.get(k, _MISSING), new_p.get(k, _MISSING))
                    for k in sorted({*old_p, *new_p}) if old_p.get(k, _MISSING) !=
                    new_p.get(k, _MISSING)]
    for key in ("target", "random_state", "hash_inputs", "id_column", "input_columns",
                "adapter_options"):
        if a[key] != b[key]:
            out.append(_line(key, a[key], b[key]))
    return out


def _line(label: str, old: Any, new: Any) -> str:
    return f"{label}: {_show(old)} in the existing output, {_show(new)} now"


def _show(value: Any) -> str:
    return value if value == _MISSING else repr(value)


def reconcile(stored: JobConfig | None, now: JobConfig, *, add: bool,
              output: str) -> JobConfig:
    """The record to keep: ``stored`` when ``now`` is the same job, extended when ``add``.

    Raises
    ------
    JobMismatchError
        ``now`` differs from ``stored``; the message lists every difference.
    """
    if stored is None:
        return now
    found = differences(stored, now, add=add)
    if found:
        more = [m for m in now.methods if m not in stored.methods]
        hint = (" To score the new methods for the examples already written, pass "
                "resume='add' (CLI: --resume --add)." if more and not add and
                not differences(stored, now, add=True) else "")
        msg = (f"The job differs from the one that wrote {output!r} (recorded in "
               f"{output + '.job.json'!r}): {'; '.join(found)}. Resume with the recorded "
               f"settings, or write to another output.{hint}")
        raise JobMismatchError(msg, differences=found)
    if not add:
        return stored
    methods = stored.methods + tuple(m for m in now.methods if m not in stored.methods)
    return dataclasses.replace(stored, methods=methods,
                               method_params={**stored.method_params, **now.method_params})
