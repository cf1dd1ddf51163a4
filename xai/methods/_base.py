"""The Method contract: a frozen dataclass of parameters and one ``_attribute`` to implement."""

from __future__ import annotations

import dataclasses
import math
import numbers
import warnings
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import torch

from .._capabilities import Capability, Modality
from .._registry import METHODS
from .._target import resolve_target
from .._validation import Constraint, check_params, check_random_state, fmt_value
from ..adapters import as_adapter
from ..adapters._base import Batch, ModelAdapter
from ..exceptions import (
    IgnoredParameterWarning,
    IncompatibleModelError,
    InvalidExplanationError,
    InvalidParameterError,
)
from ..explanation import Explanation, ModelInfo, ResolvedTarget
from ..features._base import FeatureSpace
from ._budget import Cost, check_cost, input_row_bytes

__all__ = ["AttributionOutput", "Method", "example_generators"]

DEFAULT_BATCH_SIZE = {"text": 64, "tabular": 8192, "image": 64, "graph": 128}  # tabular calls are cheap per row


@dataclasses.dataclass
class AttributionOutput:
    """What ``_attribute`` returns: values per example, plus optional base values and extras.

    ``values`` is a tensor (n_examples, n_outputs, n_features) or one (n_outputs, n_features_i)
    tensor per example when examples have different numbers of features.
    """

    values: torch.Tensor | Sequence[torch.Tensor]
    base_values: torch.Tensor | None = None
    extras: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: The explained outputs when the method only learns them while attributing (the answers of
    #: a generation game, the scores of context-length probing); None keeps the resolved target.
    target: ResolvedTarget | None = None
    #: The players when attributing chose them (hierarchical levels); None keeps the inputs'.
    features: tuple[FeatureSpace, ...] | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Method(ABC):
    """Base of every attribution method (template method: :meth:`explain` calls ``_attribute``)."""

    name: ClassVar[str]
    requires: ClassVar[Capability] = Capability.FORWARD
    modalities: ClassVar[frozenset[Modality]] = frozenset({"tabular", "image", "text"})
    deterministic: ClassVar[bool] = True
    _constraints: ClassVar[Mapping[str, Sequence[Constraint]]] = {}

    def __post_init__(self) -> None:
        check_params(self, self._constraints)

    @classmethod
    def _test_params(cls) -> list[dict[str, Any]]:
        """Cheap parameter sets for the conformance suite."""
        return [{}]

    def get_params(self) -> dict[str, Any]:
        """The method's parameters as a dict (``type(self)(**get_params())`` equals ``self``)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @property
    def multiplies_by_inputs(self) -> bool:
        """True when the values are on the scale of f(x) - f(baseline) (they sum to about it):
        removal and Shapley methods, IG with ``multiply_by_inputs=True``. False for
        gradient-like values (per unit of input change) and for scores that are not
        differences. Recorded on every Explanation; metrics read it to put perturbations and
        attributions on one scale."""
        return True

    # -- template -------------------------------------------------------------------------
    def explain(
        self,
        model: Any,
        inputs: Any,
        *,
        target: Any = None,
        batch_size: int | Literal["auto"] = "auto",
        random_state: int | torch.Generator | None = None,
        adapter_options: Mapping[str, Any] | None = None,
        forward_args: Any = None,
    ) -> Explanation:
        """Explain ``model`` on ``inputs``; see :func:`xai.explain` for the parameters."""
        adapter, bs, rng = self._setup(model, batch_size, random_state, adapter_options)
        for name, why in self.inapplicable(adapter).items():
            warnings.warn(f"{type(self).__name__}'s '{name}' has no effect on this "
                          f"{adapter.modality} model: {why}. Leave it at its default.",
                          IgnoredParameterWarning, stacklevel=3)
        batch = self._prepare(adapter, inputs)
        if forward_args is not None:
            batch = adapter.with_forward_args(batch, forward_args)
        with adapter.session():
            tgt = self._resolve_target(adapter, batch, target, batch_size=bs)
            features = self.feature_spaces(adapter, batch)
            self.check_cost(batch, features, tgt.n_outputs, bs)
            out = self._attribute(adapter, batch, features, tgt, batch_size=bs, rng=rng)
        return self._pack(out, adapter, batch, out.features or features, out.target or tgt)

    # -- hooks (override these, never explain) --------------------------------------------
    def _prepare(self, adapter: ModelAdapter, inputs: Any) -> Batch:
        """The validated inputs (default: ``adapter.prepare``; a ``Batch`` another method
        already prepared passes through); a method that reads its own input form (a prompt with
        documents) overrides this."""
        if isinstance(inputs, Batch):
            return inputs
        return adapter.prepare(inputs)

    def _resolve_target(self, adapter: ModelAdapter, batch: Batch, target: Any, *,
                        batch_size: int) -> ResolvedTarget:
        """The outputs to explain, with the model's scores at the inputs.

        The default scores ``batch`` (``batch_size`` rows per call) and resolves ``target``
        against the scores (``"predicted"``, an index, a label, ...). A method whose outputs are
        not the model's output columns (generated tokens, answers, target tokens of a text)
        overrides this; it may leave ``scores`` None and return them, or outputs only found
        while attributing, in ``AttributionOutput.target``.
        """
        return resolve_target(adapter, adapter.predict_batched(batch, batch_size), target)

    def _setup(self, model: Any, batch_size: int | Literal["auto"],
               random_state: int | torch.Generator | None,
               adapter_options: Mapping[str, Any] | None = None,
               ) -> tuple[ModelAdapter, int, torch.Generator]:
        """The adapter (checked compatible), the resolved batch size and the generator of a call."""
        adapter = as_adapter(model, **(adapter_options or {}))
        self.check_compatible(adapter)
        bs = _resolve_batch_size(batch_size, adapter, type(self).__name__)
        return adapter, bs, check_random_state(random_state, owner=type(self).__name__)

    def inapplicable(self, adapter: ModelAdapter) -> dict[str, str]:
        """Fields set away from their default that do nothing for ``adapter``'s model, each
        with the reason; :meth:`explain` warns (IgnoredParameterWarning) instead of silently
        ignoring them. Extend it for a method's own fields."""
        out = {}
        if adapter.modality in ("tabular", "image") and getattr(self, "granularity",
                                                                 "auto") != "auto":
            out["granularity"] = "it picks the units of a text (words or tokens)"
        return out

    @classmethod
    def requirements(cls, modality: str) -> Capability:
        """Capabilities the method needs on an adapter of ``modality`` (default: ``requires``)."""
        return cls.requires

    @classmethod
    def supports(cls, adapter: ModelAdapter) -> bool:
        """Whether the method can explain models behind ``adapter``."""
        return (adapter.modality in cls.modalities
                and cls.requirements(adapter.modality) in adapter.capabilities)

    @classmethod
    def check_supports(cls, adapter: ModelAdapter) -> None:
        """Raise IncompatibleModelError if the class cannot explain models behind ``adapter``
        (a capability or the modality is missing). Checked before the parameters when a method
        is made by name, so a text-only method on a tabular model says so first."""
        if cls.supports(adapter):
            return
        works = ", ".join(METHODS.compatible(adapter)) or "none"
        missing = cls.requirements(adapter.modality) & ~adapter.capabilities
        if adapter.modality not in cls.modalities:
            msg = (f"Method {cls.name!r} does not support {adapter.modality!r} inputs "
                   f"({adapter!r}). Methods that work with this model: {works}.")
        else:
            msg = (f"Method {cls.name!r} needs {'+'.join(missing.names())}, but {adapter!r} "
                   f"does not provide it. Methods that work with this model: {works}.")
        raise IncompatibleModelError(msg, method=cls.name, compatible=METHODS.compatible(adapter))

    def check_compatible(self, adapter: ModelAdapter) -> None:
        """Raise IncompatibleModelError if the adapter lacks a capability or the modality."""
        self.check_supports(adapter)

    def cost(self, features: tuple[FeatureSpace, ...], n_outputs: int, batch_size: int,
             row_bytes: int) -> Cost | None:
        """Up-front estimate of a call's model rows and memory; None for a method whose cost is
        fixed by the input (no sampling budget).

        Parameters
        ----------
        features : the feature space of each example
        n_outputs : explained outputs per example
        batch_size : rows per model call
        row_bytes : bytes of one model input row
        """
        return None

    def check_cost(self, batch: Batch, features: tuple[FeatureSpace, ...], n_outputs: int,
                   batch_size: int) -> None:
        """Refuse an absurd budget (InvalidParameterError with the estimate) before any work."""
        cost = self.cost(features, n_outputs, batch_size, input_row_bytes(batch))
        if cost is not None:
            check_cost(cost)

    def feature_spaces(self, adapter: ModelAdapter, batch: Batch) -> tuple[FeatureSpace, ...]:
        """The feature space of each example (granularity, baseline and feature groups from the
        fields of those names, when the method has them)."""
        groups = getattr(self, "feature_groups", None)  # passed only when set, so an adapter
        # written before feature groups existed keeps working without them
        extra = {} if groups is None else {"groups": groups}
        return adapter.features(  # type: ignore[call-arg]  # every adapter accepts owner
            batch, granularity=getattr(self, "granularity", "auto"),
            baseline=getattr(self, "baseline", "auto"), owner=type(self).__name__, **extra)

    @abstractmethod
    def _attribute(self, adapter: ModelAdapter, batch: Batch, features: tuple[FeatureSpace, ...],
                   target: ResolvedTarget, *, batch_size: int,
                   rng: torch.Generator) -> AttributionOutput:
        """Compute values only; the base packs them into an Explanation."""

    def _pack(self, out: AttributionOutput, adapter: ModelAdapter, batch: Batch,
              features: tuple[FeatureSpace, ...], tgt: ResolvedTarget) -> Explanation:
        values, mask = _pad_values(out.values, [f.n_features for f in features])
        if not bool(torch.isfinite(values).all()):
            msg = (f"{type(self).__name__} produced non-finite attributions. The model may output "
                   "NaN or inf for some perturbed inputs; check it on the baseline input.")
            raise InvalidExplanationError(msg)
        return Explanation(
            values=values, feature_mask=mask, features=features, inputs=batch, target=tgt,
            predictions=tgt.explained_scores(), method=self.name,
            base_values=out.base_values, params=self.get_params(), extras=out.extras,
            model_info=ModelInfo.of(adapter), multiplies_by_inputs=self.multiplies_by_inputs)


def _pad_values(values: torch.Tensor | Sequence[torch.Tensor],
                widths: list[int]) -> tuple[torch.Tensor, torch.Tensor | None]:
    if isinstance(values, torch.Tensor):
        return values.detach().float().cpu(), None
    out = pad_stack([v.detach().float().cpu() for v in values])
    mask = torch.arange(out.shape[-1]).unsqueeze(0) < torch.tensor(
        [v.shape[-1] for v in values]).unsqueeze(1)
    return out, (None if bool(mask.all()) else mask)


def _resolve_batch_size(batch_size: Any, adapter: ModelAdapter, owner: str) -> int:
    if isinstance(batch_size, str) and batch_size == "auto":
        return DEFAULT_BATCH_SIZE.get(adapter.modality, 256)
    ok = isinstance(batch_size, numbers.Integral) and not isinstance(batch_size, bool)
    if not ok or batch_size < 1:
        msg = (f"The 'batch_size' parameter of {owner} must be an int in the range [1, inf) or "
               f"'auto'. Got {fmt_value(batch_size)} instead.")
        raise InvalidParameterError(msg, owner=owner, parameter="batch_size", value=batch_size)
    return int(batch_size)  # a huge one is refused by check_cost when its chunk cannot fit


def example_generators(rng: torch.Generator, n: int) -> list[torch.Generator]:
    """One generator per example, all seeded alike, so a row's result does not depend on its batch."""
    seed = int(torch.randint(0, 2**62, (1,), generator=rng).item())
    return [torch.Generator().manual_seed(seed) for _ in range(n)]


def warn_if(condition: bool, message: str, category: type[Warning]) -> None:
    """Issue ``message`` as a warning attributed to the user's call when ``condition`` holds."""
    if condition:
        warnings.warn(message, category, stacklevel=4)


def relative_gap(delta: torch.Tensor, span: torch.Tensor) -> torch.Tensor:
    """|delta| / |span| with 0/0 = 0 (used for convergence checks)."""
    span = span.abs()
    rel = delta.abs() / span.clamp_min(1e-12)
    return torch.where(span < 1e-12, torch.where(delta.abs() < 1e-6, 0.0, math.inf), rel)


def pad_stack(parts: list[torch.Tensor]) -> torch.Tensor:
    """Stack (o, d_i) tensors into (n, o, max d_i), zero-padded on the feature axis."""
    width = max(p.shape[-1] for p in parts)
    out = torch.zeros(len(parts), parts[0].shape[0], width)
    for i, p in enumerate(parts):
        out[i, :, : p.shape[-1]] = p
    return out
