"""Scoring one chunk of examples: the per-batch function both engines run.

A `Scorer` loads the model once (on a Ray worker: once per actor) and turns a chunk of examples
into output rows, one per (example, method). The chunk is explained in one call per method;
when that call fails, each example is explained alone so that one bad example costs one row.

Seeds: every method and metric samples with one generator per example, all seeded from
``random_state`` (``xai.methods._base.example_generators``), so an example's values do not depend
on which chunk, batch or worker it lands in. The ``seed`` column records the seed, and
``xai.explain(model, row, method=..., random_state=seed)`` gives the same values.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._explain import make_method, select_method
from .._registry import METHODS
from ..adapters import as_adapter
from ..exceptions import InvalidParameterError
from ..explanation import Explanation
from ..methods._base import Method
from ._data import Example, describe_input
from ._job import Job, MethodEntry, method_name
from ._models import LoadedModel, ModelFactory

__all__ = ["Scorer", "metric_registry"]


def metric_registry() -> Any:
    """The metric registry of the ``metrics`` package (``metrics.METRICS``).

    The application layer may import ``metrics``, lazily: ``import xai`` never loads it.
    """
    import metrics

    return metrics.METRICS


class Scorer:
    """Model, methods and metrics of a job, built once; `score_chunk` is the per-batch function."""

    def __init__(self, factory: ModelFactory, job: Job,
                 loaded: LoadedModel | None = None) -> None:
        self.job = job
        self.loaded = loaded if loaded is not None else factory()
        self.adapter = as_adapter(self.loaded.model, **dict(job.adapter_options))
        self.target = _target(self.adapter, job.target if job.target is not None
                              else self.loaded.target)
        self.methods = dict(self._method(entry) for entry in job.method_entries)
        self.params_json = {name: _params_json(m.get_params()) for name, m in self.methods.items()}
        for m in self.methods.values():
            m.check_compatible(self.adapter)
        self.metrics = {m.name: m for m in job.metric_objects}

    def _method(self, entry: MethodEntry) -> tuple[str, Method]:
        """(name, instance): an instance as configured; a name with the model's defaults."""
        if isinstance(entry, Method):
            return method_name(entry), entry
        name, params = entry[0], dict(entry[1])
        if name == "auto":
            name = select_method(self.adapter)
        cls_fields = {f.name for f in dataclasses.fields(METHODS.get(name))}
        for key, value in self.loaded.method_defaults.items():
            if key in cls_fields and key not in params:
                params[key] = value
        return name, make_method(name, params)

    def score_chunk(self, examples: Sequence[Example],
                    methods: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Output rows of ``examples``: one per (example, method), in method order.

        ``methods`` (default: all of the job's) names the methods to run, e.g. only those a
        resumed job has not written yet for these examples.
        """
        names = list(self.methods) if methods is None else [m for m in self.methods
                                                              if m in methods]
        good = [e for e in examples if e.error is None]
        by_method = {name: self._explain(self.methods[name], good) for name in names}
        return [self._row(e, name, by_method[name].get(e.id)) for e in examples for name in names]

    def _inputs(self, examples: Sequence[Example]) -> tuple[Any, Any]:
        """(adapter, inputs) of a chunk: a node task explains the chunk's nodes."""
        values = [e.value for e in examples]
        if self.adapter.modality == "graph":
            from ._graphs import graph_inputs

            return graph_inputs(self.adapter, values)
        if self.adapter.modality == "text":
            return self.adapter, values
        if isinstance(values[0], dict):
            return self.adapter, pd.DataFrame.from_records(values, columns=list(values[0]))
        return self.adapter, np.asarray(values, dtype=np.float64)

    def _explain(self, method: Method, examples: Sequence[Example]) -> dict[str, Any]:
        """Example id -> (explanation, row in it, metric scores, errors, seconds) or error text."""
        if not examples:
            return {}
        start = time.perf_counter()
        try:
            adapter, inputs = self._inputs(examples)
            exp = method.explain(adapter, inputs, target=self.target,
                                 batch_size=self.job.batch_size,
                                 random_state=self.job.random_state)
        except Exception as err:
            if len(examples) == 1:
                return {examples[0].id: _error_text(err)}
            out: dict[str, Any] = {}
            for e in examples:  # isolate the failing examples
                out.update(self._explain(method, [e]))
            return out
        if exp.n_outputs != 1:
            msg = (f"Batch scoring stores one explained output per example, but target "
                   f"{self.target!r} selects {exp.n_outputs}. Pass one target (an index or label).")
            raise InvalidParameterError(msg, parameter="target", value=self.target)
        scores, errors = self._metrics(exp)
        per_row = (time.perf_counter() - start) / len(examples)
        return {e.id: (exp, j, scores[j], errors[j], per_row) for j, e in enumerate(examples)}

    def _metrics(self, exp: Explanation) -> tuple[list[dict[str, float]], list[str | None]]:
        n = len(exp)
        scores: list[dict[str, float]] = [{} for _ in range(n)]
        errors: list[str | None] = [None] * n
        for name, metric in self.metrics.items():
            try:
                res = metric(exp, self.adapter, batch_size=self.job.batch_size,
                             random_state=self.job.random_state)
                for j in range(n):
                    scores[j][name] = float(res.scores[j, 0])
                continue
            except Exception:  # score the examples one by one to isolate the failure
                pass
            for j in range(n):
                try:
                    res = metric(exp[j], self.adapter, batch_size=self.job.batch_size,
                                 random_state=self.job.random_state)
                    scores[j][name] = float(res.scores[0, 0])
                except Exception as err:
                    scores[j][name] = math.nan
                    errors[j] = errors[j] or f"metric {name!r}: {_error_text(err)}"
        return scores, errors

    def _row(self, e: Example, method: str, result: Any) -> dict[str, Any]:
        if self.adapter.modality == "graph":
            from ._graphs import describe_graph

            text: str | None = describe_graph(e.value)
        else:
            text = describe_input(e.value)
        if self.job.hash_inputs and text is not None:
            import hashlib

            text = "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
        row: dict[str, Any] = {
            "id": e.id, "input": text, "method": method, "target": None, "prediction": None,
            "attributions": None, "feature_names": None, **dict.fromkeys(self.metrics),
            "method_params": self.params_json[method], "seed": self.job.random_state,
            "status": "error", "error": e.error, "elapsed": 0.0,
        }
        if result is None or isinstance(result, str):
            row["error"] = row["error"] or result
            return row
        exp, j, scores, error, seconds = result
        valid = exp.valid(j)
        row.update({
            "target": str(exp.target.names[j][0]),
            "prediction": None if exp.predictions is None else float(exp.predictions[j, 0]),
            "attributions": [float(v) for v in exp.values[j, 0][valid].tolist()],
            "feature_names": [str(n) for n in exp.features[j].feature_names],
            **scores, "status": "ok" if error is None else "error", "error": error,
            "elapsed": seconds,
        })
        return row


def _target(adapter: Any, target: Any) -> Any:
    """A digit string that is not a label of the model means an index (``--target 0``)."""
    if isinstance(target, str) and target.isdigit():
        names = adapter.output_names() or ()
        if target not in names:
            return int(target)
    return target


def _error_text(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


def _params_json(params: Mapping[str, Any]) -> str:
    def plain(v: Any) -> Any:
        if v is None or isinstance(v, str | int | float | bool):
            return v
        if isinstance(v, list | tuple):
            return [plain(x) for x in v]
        shape = getattr(v, "shape", None)
        if shape is not None:
            return f"<{type(v).__name__} shape={tuple(shape)}>"
        return repr(v)

    return json.dumps({k: plain(v) for k, v in params.items()}, sort_keys=True)
