"""`Job`: what a batch scoring run computes, and the engines that run it.

A `Job` holds everything that decides the values of the output rows (methods, metrics, target,
seed, input options) plus how examples are chunked; `score` takes the model, the data, a `Job`
and where to run and write it. The record written next to an output (``<output>.job.json``) is
built from the `Job` (see ``_config.job_config``), so a job and its record cannot drift apart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, cast

from .._explain import make_method
from .._registry import METHODS
from ..exceptions import InvalidParameterError
from ..methods._base import Method

if TYPE_CHECKING:
    from metrics import Metric

__all__ = ["Job", "LocalEngine", "MethodEntry", "MethodSpec", "RayEngine", "method_name"]

#: A method of a job once normalised: a configured instance, or a registry name and parameters.
MethodEntry = Method | tuple[str, Mapping[str, Any]]
#: What ``Job(methods=...)`` accepts for one method.
MethodSpec = Method | str | tuple[str, Mapping[str, Any]]
_METHOD_FIX = ("Pass Method instances (xai.methods.KernelShap(n_samples=500)), registry names "
               "('occlusion', see xai.list_methods()) or (name, params) pairs.")


@dataclasses.dataclass(frozen=True)
class Job:
    """What to compute for every example of a data set (picklable: sent to Ray workers).

    Parameters
    ----------
    methods : sequence of Method, str or (str, mapping), default=("auto",)
        The methods to run, one output row per (example, method). A `Method` instance runs
        exactly as configured. A registry name, or a ``(name, params)`` pair, is built when the
        model is loaded, and the model's defaults (e.g. demo-credit's ``baseline`` row) fill the
        fields the params leave unset; ``"auto"`` picks the model's default method. Names are
        stored as ``(canonical name, params)`` pairs.
    metrics : sequence of Metric, str or (str, mapping), default=()
        The metrics to score each explanation with, one output column each; names and pairs
        are stored as configured `Metric` instances.
    target : int, str or None, default=None
        The explained output (one per example). None: the model spec's default, else the
        predicted class.
    random_state : int, default=0
        Seed of every method and metric; each example gets its own generator seeded from it,
        so its values do not depend on its chunk or worker.
    chunk_size : int, default=64
        Examples per chunk: one explain call per method and one part file per chunk.
    batch_size : int or "auto", default="auto"
        Rows per model call inside explain and the metrics, as in ``xai.explain``.
    id_column : str, optional
        Column of unique example ids (None: positions 0, 1, ...).
    input_columns : sequence of str, optional
        Input columns (default: the model's ``feature_names_in_``, else every other column;
        the ``text`` column for text models).
    adapter_options : mapping, optional
        Passed to ``xai.as_adapter``.
    hash_inputs : bool, default=False
        Write ``sha256:<hex>`` of each input instead of the input itself.

    Raises
    ------
    InvalidParameterError
        A field has the wrong type or value; the message names the field and the fix.
    UnknownNameError
        A method or metric name is not registered.
    """

    methods: Sequence[MethodSpec] = ("auto",)
    metrics: Sequence[Metric | str | tuple[str, Mapping[str, Any]]] = ()
    target: Any = None
    random_state: int = 0
    chunk_size: int = 64
    batch_size: int | Literal["auto"] = "auto"
    id_column: str | None = None
    input_columns: Sequence[str] | None = None
    adapter_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    hash_inputs: bool = False

    def __post_init__(self) -> None:
        _int_field("chunk_size", self.chunk_size, low=1, what="examples per chunk")
        _int_field("random_state", self.random_state, low=0, what="one seed for the whole job")
        if self.batch_size != "auto":
            _int_field("batch_size", self.batch_size, low=1,
                       what="rows per model call, or 'auto'")
        if self.id_column is not None and not isinstance(self.id_column, str):
            _fail("id_column", self.id_column, "must be a column name (str) or None",
                  "Pass id_column='key'.")
        if self.input_columns is not None:
            if isinstance(self.input_columns, str) or not all(
                    isinstance(c, str) for c in self.input_columns):
                _fail("input_columns", self.input_columns, "must be a list of column names",
                      "Pass input_columns=['age', 'income'].")
            object.__setattr__(self, "input_columns", tuple(self.input_columns))
        if not isinstance(self.adapter_options, Mapping):
            _fail("adapter_options", self.adapter_options, "must be a mapping",
                  "Pass adapter_options={'device': 'cpu'}.")
        object.__setattr__(self, "adapter_options", dict(self.adapter_options))
        if not isinstance(self.hash_inputs, bool):
            _fail("hash_inputs", self.hash_inputs, "must be True or False", "Pass a bool.")
        object.__setattr__(self, "methods", _methods(self.methods))
        object.__setattr__(self, "metrics", _metrics(self.metrics))

    @property
    def method_entries(self) -> tuple[MethodEntry, ...]:
        """The methods as normalised: instances and ``(canonical name, params)`` pairs."""
        return cast("tuple[MethodEntry, ...]", self.methods)

    @property
    def metric_objects(self) -> tuple[Metric, ...]:
        """The metrics as configured instances."""
        return cast("tuple[Metric, ...]", self.metrics)

    @property
    def metric_names(self) -> tuple[str, ...]:
        """Registry names of the metrics: the metric columns of the output."""
        return tuple(m.name for m in self.metric_objects)


def method_name(entry: MethodEntry) -> str:
    """The registry name of a normalised method entry (``"auto"`` before it is resolved)."""
    if isinstance(entry, Method):
        return str(getattr(type(entry), "name", None) or type(entry).__name__)
    return entry[0]


def _fail(field: str, value: Any, constraint: str, fix: str) -> None:
    msg = f"The {field!r} field of Job {constraint}. Got {value!r} instead. {fix}"
    raise InvalidParameterError(msg, owner="Job", parameter=field, value=value)


def _int_field(field: str, value: Any, *, low: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        _fail(field, value, f"must be an int in the range [{low}, inf) ({what})",
              f"Pass {field}={max(low, 1) if field != 'random_state' else 0}, for example.")


def _entries(field: str, value: Any, fix: str) -> list[Any]:
    if isinstance(value, str | Mapping) or not isinstance(value, Sequence):
        _fail(field, value, "must be a list", fix)
    return list(value)


def _pair(field: str, entry: Any, fix: str) -> tuple[str, dict[str, Any]]:
    """``entry`` as (name, params): a name alone, or a (name, mapping) pair."""
    if isinstance(entry, str):
        return entry, {}
    if (isinstance(entry, tuple | list) and len(entry) == 2 and isinstance(entry[0], str)
            and isinstance(entry[1], Mapping)):
        return entry[0], dict(entry[1])
    _fail(field, entry, "entries must be instances, names or (name, params) pairs", fix)
    raise AssertionError  # unreachable: _fail raises


def _methods(value: Any) -> tuple[MethodEntry, ...]:
    out: list[MethodEntry] = []
    for entry in _entries("methods", value, _METHOD_FIX):
        if isinstance(entry, Method):
            out.append(entry)
            continue
        name, params = _pair("methods", entry, _METHOD_FIX)
        if name == "auto":
            if params:
                _fail("methods", entry, "gives parameters to 'auto', which picks the method "
                      "from the model", "Name the method instead: ('kernel_shap', {...}).")
            out.append(("auto", {}))
            continue
        name = METHODS.canonical(name)  # UnknownNameError lists the methods
        fields = {f.name for f in dataclasses.fields(METHODS.get(name)) if f.init}
        if set(params) - fields:
            make_method(name, params)  # raises the typed unknown-parameter error
        out.append((name, params))
    if not out:
        _fail("methods", value, "must name at least one method", _METHOD_FIX)
    names = [method_name(e) for e in out]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        _fail("methods", value, f"lists {dup!r} twice; each method is one row per example",
              "Keep one configuration per method (run another job for the other one).")
    return tuple(out)


def _metrics(value: Any) -> tuple[Metric, ...]:
    from metrics import Metric
    from metrics._evaluate import make_metric

    fix = ("Pass Metric instances, registry names ('infidelity', see xai metrics) or "
           "(name, params) pairs.")
    out: list[Metric] = []
    for entry in _entries("metrics", value, fix):
        if not isinstance(entry, Metric):
            name, params = _pair("metrics", entry, fix)
            # typed errors: UnknownNameError lists the metrics, InvalidParameterError the fields
            entry = make_metric(name, params)
        if any(m.name == entry.name for m in out):
            _fail("metrics", value, f"lists {entry.name!r} twice",
                  "Keep one configuration per metric.")
        out.append(entry)
    return tuple(out)


@dataclasses.dataclass(frozen=True)
class LocalEngine:
    """Run the chunks one after another in this process (the default engine)."""


@dataclasses.dataclass(frozen=True)
class RayEngine:
    """Run the chunks on Ray Data actors, each loading the model once.

    Parameters
    ----------
    num_workers : int, default=2
        Ray actors.
    address : str, optional
        Address of an existing Ray cluster; None starts a local one with ``num_workers`` CPUs.
    """

    num_workers: int = 2
    address: str | None = None

    def __post_init__(self) -> None:
        n = self.num_workers
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            msg = (f"The 'num_workers' parameter of RayEngine must be an int in the range "
                   f"[1, inf). Got {n!r} instead. Pass num_workers=4, for example.")
            raise InvalidParameterError(msg, owner="RayEngine", parameter="num_workers", value=n)
        if self.address is not None and not isinstance(self.address, str):
            msg = (f"The 'address' parameter of RayEngine must be a Ray address (str) or None. "
                   f"Got {self.address!r} instead. Pass address='ray://host:10001', or None "
                   "to start a local cluster.")
            raise InvalidParameterError(msg, owner="RayEngine", parameter="address",
                                        value=self.address)
