"""The keywords ``score`` took before `Job` and the engine objects (deprecated for one release).

``score(model, data, methods=[...], batch_size=8, engine="ray", num_workers=4)`` still works: it
warns once with the new spelling and runs the same job, row for row. The old ``batch_size``
counted examples per chunk; it becomes ``Job(chunk_size=...)``.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from .._explain import select_method
from ..adapters import as_adapter
from ..exceptions import InvalidParameterError
from ._job import Job, LocalEngine, RayEngine

__all__ = ["Engine", "LegacyJob", "upgrade"]

Engine = LocalEngine | RayEngine

#: Old keyword of score -> the Job field that replaces it.
JOB_FIELDS = {"methods": "methods", "metrics": "metrics", "method_params": "methods",
              "metric_params": "metrics", "batch_size": "chunk_size", "target": "target",
              "random_state": "random_state", "id_column": "id_column",
              "input_columns": "input_columns", "adapter_options": "adapter_options",
              "hash_inputs": "hash_inputs"}
#: Old keyword of score -> the RayEngine field that replaces it.
ENGINE_FIELDS = {"num_workers": "num_workers", "ray_address": "address"}


@dataclasses.dataclass(frozen=True)
class LegacyJob:
    """The old job keywords, turned into a `Job` once the model is known (for ``"auto"``)."""

    kwargs: Mapping[str, Any]

    def build(self, model: Any) -> Job:
        """The `Job` the old keywords describe; ``"auto"`` is picked for ``model`` as before."""
        kw = dict(self.kwargs)
        methods = kw.pop("methods", ("auto",))
        if isinstance(methods, str) or not methods:
            msg = (f"The 'methods' parameter of score must be a non-empty list of method "
                   f"names. Got {methods!r} instead.")
            raise InvalidParameterError(msg, parameter="methods", value=methods)
        method_params = dict(kw.pop("method_params", None) or {})
        auto = "auto"
        if "auto" in methods:
            auto = select_method(as_adapter(model, **dict(kw.get("adapter_options") or {})))
        names = list(dict.fromkeys(auto if m == "auto" else m for m in methods))
        metric_params = dict(kw.pop("metric_params", None) or {})
        metrics = list(dict.fromkeys(_canonical_metric(m) for m in kw.pop("metrics", ()) or ()))
        if "batch_size" in kw:
            kw["chunk_size"] = kw.pop("batch_size")
        if kw.get("adapter_options") is None:
            kw.pop("adapter_options", None)
        return Job(methods=[(n, method_params.get(n, {})) for n in names],
                   metrics=[(n, metric_params.get(n, {})) for n in metrics], **kw)


def _canonical_metric(name: str) -> str:
    from metrics import METRICS

    return METRICS.canonical(name)


def upgrade(job: Any, engine: Any, kwargs: Mapping[str, Any]) -> tuple[Job | LegacyJob, Engine]:
    """``score``'s job and engine from new or old arguments; warns when old ones are used.

    Raises
    ------
    TypeError
        A keyword ``score`` never took.
    InvalidParameterError
        A `Job` together with old job keywords, an engine object with old engine keywords, or
        an engine that is neither an engine object nor "local"/"ray".
    """
    unknown = [k for k in kwargs if k not in JOB_FIELDS and k not in ENGINE_FIELDS]
    if unknown:
        msg = f"score() got an unexpected keyword argument {unknown[0]!r}"
        raise TypeError(msg)
    job_kw = {k: v for k, v in kwargs.items() if k in JOB_FIELDS}
    engine_kw = {ENGINE_FIELDS[k]: v for k, v in kwargs.items()
                 if k in ENGINE_FIELDS and v is not None}
    old = list(kwargs)
    if isinstance(job, Job):
        if job_kw:
            fields = ", ".join(f"{JOB_FIELDS[k]}=" for k in job_kw)
            msg = (f"score got a Job and the keyword(s) {', '.join(f'{k}=' for k in job_kw)}, "
                   f"which the Job holds. Set them on the Job instead: Job({fields}...).")
            raise InvalidParameterError(msg, parameter=next(iter(job_kw)),
                                        value=next(iter(job_kw.values())))
        new_job: Job | LegacyJob = job
    else:
        if job is not None:  # score(model, data, ["occlusion"]): the old positional methods
            if "methods" in job_kw:
                msg = "score got the methods twice: as its third argument and as methods=."
                raise TypeError(msg)
            job_kw["methods"], old = job, ["methods", *old]
        new_job = LegacyJob(job_kw)
    new_engine = _engine(engine, engine_kw)
    if isinstance(engine, str):
        old.append("engine")
    if old:
        warnings.warn(_message(old, new_job, new_engine), DeprecationWarning, stacklevel=3)
    return new_job, new_engine


def _engine(engine: Any, engine_kw: Mapping[str, Any]) -> Engine:
    if engine is None or engine == "local":  # the Ray keywords were ignored here, as before
        return LocalEngine()
    if engine == "ray":
        return RayEngine(**engine_kw)
    if isinstance(engine, LocalEngine | RayEngine):
        if engine_kw:
            names = ", ".join(f"{k}=" for k in engine_kw)
            msg = (f"score got an engine object and the keyword(s) for the Ray engine "
                   f"({names}); set them on the engine: RayEngine(num_workers=..., address=...).")
            raise InvalidParameterError(msg, parameter="engine", value=engine)
        return engine
    msg = (f"The 'engine' parameter of score must be xai.batch.LocalEngine(), "
           f"xai.batch.RayEngine(...), or the deprecated 'local' or 'ray'. Got {engine!r} "
           "instead.")
    raise InvalidParameterError(msg, parameter="engine", value=engine)


def _message(old: Sequence[str], job: Job | LegacyJob, engine: Engine) -> str:
    """The deprecation warning: the old keywords and the same call in the new spelling."""
    used = ", ".join(f"{k}=" for k in old)
    fields = list(dict.fromkeys(JOB_FIELDS[k] for k in old if k in JOB_FIELDS))
    job_text = ("job" if isinstance(job, Job) else
                "xai.batch.Job(" + ", ".join(f"{f}=..." for f in fields) + ")")
    engine_text = ("" if isinstance(engine, LocalEngine) else
                   ", engine=xai.batch.RayEngine(num_workers=..., address=...)")
    msg = (f"score({used}) is deprecated and will be removed in the next release. Spell it "
           f"score(model, data, {job_text}{engine_text}).")
    if "batch_size" in old:
        msg += (" The old batch_size counted examples per chunk: it is Job(chunk_size=...) "
                "now, and Job(batch_size=...) counts rows per model call, as in xai.explain.")
    if "method_params" in old or "metric_params" in old:
        msg += (" Parameters go with each method or metric: a configured instance "
                "(xai.methods.KernelShap(n_samples=500)) or a (name, params) pair.")
    return msg
