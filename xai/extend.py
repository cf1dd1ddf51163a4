"""The public surface for writing a method or a metric outside the package.

``xai.explain`` and the classes exported from ``xai`` are for people who explain models. This
module is for people who write new explainers: authors of third-party methods, and the
``metrics`` package itself, which imports nothing from a private ``xai._*`` module, only from
``xai``, its public subpackages and this module. Everything here is a stable name; the private
modules it re-exports from may move.

Writing a method
    ``Method`` (the base class: a frozen dataclass with one ``_attribute`` to implement),
    ``AttributionOutput`` (what ``_attribute`` returns), ``register_method`` and ``METHODS``
    (the registry, which also answers ``METHODS.compatible(adapter)``), ``Capability`` (what
    a method requires of an adapter), and the types of ``_attribute``'s arguments:
    ``ModelAdapter``, ``Batch``, ``FeatureSpace``, ``ResolvedTarget``.

Declaring and checking parameters
    ``Constraint`` (the protocol), ``Interval``, ``Options``, ``InstanceOf`` and ``NONE_OK``
    (the constraints a ``_constraints`` table holds), ``check_params`` (validate a dataclass
    instance against such a table, as ``__post_init__`` does), ``fmt_value`` (a value as an
    error message shows it).

Randomness and batching
    ``check_random_state`` (an int, a generator or None to a fresh ``torch.Generator``; global
    RNGs are never touched), ``example_generators`` (one generator per example, so a row's
    values do not depend on its batch), ``int_seed`` and ``numpy_rng`` (seeds for libraries
    that take their own), ``DEFAULT_BATCH_SIZE`` and ``resolve_batch_size`` (rows per model
    call, ``"auto"`` resolved per modality).

Running the model on masked inputs
    ``score_masks`` (model scores for every keep-mask of every example, batched across
    examples) and ``make_method`` (a registered method from its name and parameters, with the
    typed errors of ``xai.explain``).

Writing a metric
    ``Registry`` (the class of ``METHODS`` and of ``metrics.METRICS``) and
    ``scores_table_html`` (the metric table of notebooks and the demo report). The ``Metric``
    base class itself lives in ``metrics``.

Examples
--------
A method that attributes ``scale`` times each input (class attributes without an annotation are
not dataclass fields, which is how ``requires``, ``modalities`` and ``_constraints`` are set
here; in a module, annotate them as ``ClassVar``):

>>> from dataclasses import dataclass
>>> import xai
>>> from xai.extend import AttributionOutput, Capability, Interval, Method, register_method
>>> @dataclass(frozen=True, kw_only=True)
... class Gain(Method):
...     '''Inputs times a constant (an illustration).'''
...     requires = Capability.FORWARD
...     modalities = frozenset({"tabular"})
...     _constraints = {"scale": [Interval(float, 0, None, closed="neither")]}
...     scale: float = 1.0
...     def _attribute(self, adapter, batch, features, target, *, batch_size, rng):
...         x = batch.inputs.float()[:, None, :]
...         return AttributionOutput(values=self.scale * x.expand(-1, target.n_outputs, -1))
>>> with xai.METHODS.scoped():
...     _ = register_method("gain")(Gain)
...     exp = xai.explain(lambda x: x[:, :1], [[1.0, 2.0]], method="gain", scale=2.0)
>>> exp.values.tolist()
[[[2.0, 4.0]]]
"""

from __future__ import annotations

from typing import Any

from ._capabilities import Capability
from ._explain import make_method
from ._registry import METHODS, MethodRegistry, Registry, register_method
from ._validation import (
    NONE_OK,
    Constraint,
    InstanceOf,
    Interval,
    Options,
    check_params,
    check_random_state,
    fmt_value,
    int_seed,
    numpy_rng,
    required_fields,
)
from .adapters import Batch, ModelAdapter
from .explanation import ModelInfo, ResolvedTarget, as_probabilities
from .features import FeatureSpace, NamedFeatures
from .methods._base import (
    DEFAULT_BATCH_SIZE,
    AttributionOutput,
    Method,
    _resolve_batch_size,
    example_generators,
)
from .methods._bee_families import BaselineFamily, FamilyContext, Stats
from .methods._perturb import score_masks
from .plot._html import report_html, scores_table_html, table_html

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "METHODS",
    "NONE_OK",
    "AttributionOutput",
    "BaselineFamily",
    "Batch",
    "Capability",
    "Constraint",
    "FamilyContext",
    "FeatureSpace",
    "InstanceOf",
    "Interval",
    "Method",
    "MethodRegistry",
    "ModelAdapter",
    "ModelInfo",
    "NamedFeatures",
    "Options",
    "Registry",
    "ResolvedTarget",
    "Stats",
    "as_probabilities",
    "check_params",
    "check_random_state",
    "example_generators",
    "fmt_value",
    "int_seed",
    "make_method",
    "numpy_rng",
    "required_fields",
    "register_method",
    "report_html",
    "resolve_batch_size",
    "score_masks",
    "scores_table_html",
    "table_html",
]


def resolve_batch_size(batch_size: Any, adapter: ModelAdapter, owner: str) -> int:
    """Rows per model call: ``"auto"`` becomes the modality's default, an int is checked.

    Parameters
    ----------
    batch_size : int or "auto"
        What the caller asked for.
    adapter : ModelAdapter
        The model; its modality picks the default (``DEFAULT_BATCH_SIZE``, 256 otherwise).
    owner : str
        Named in the error message (the method's or metric's class name).

    Returns
    -------
    int
        The batch size, at least 1.

    Raises
    ------
    InvalidParameterError
        When ``batch_size`` is neither "auto" nor an int of at least 1.
    """
    return _resolve_batch_size(batch_size, adapter, owner)
