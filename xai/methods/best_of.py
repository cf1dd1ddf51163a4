"""``best_of``: per example, the candidate explanation that scores best on the user's objective."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch

from .._capabilities import Capability, Modality
from .._objective import as_objective, is_objective
from .._registry import register_method
from .._validation import NONE_OK, Constraint, Options, Satisfies, int_seed
from ..adapters._base import Batch, ModelAdapter
from ..exceptions import InvalidParameterError
from ..explanation import Explanation, ResolvedTarget
from ..features._base import FeatureSpace
from ._base import AttributionOutput, Method

__all__ = ["BestOf"]


def _is_candidate(c: Any) -> bool:
    if isinstance(c, str | Method):
        return True
    return (isinstance(c, tuple | list) and len(c) == 2 and isinstance(c[0], str | Method)
            and isinstance(c[1], Mapping))


def _valid_candidates(value: Any) -> bool:
    return (isinstance(value, Sequence) and not isinstance(value, str) and len(value) > 0
            and all(_is_candidate(c) for c in value))


@register_method("best_of")
@dataclasses.dataclass(frozen=True, kw_only=True)
class BestOf(Method):
    """Run several explanation methods and keep, per example, the map the objective rates best.

    Each candidate explains all examples once (batched, as it would alone, with the same target);
    the objective scores every candidate's explanation with one shared seed, so random metrics
    draw the same perturbations for every candidate; per example the best score wins (ties and
    all-NaN rows go to the earliest candidate). The metric-adapted idea of BEE (Barkan et al.),
    applied to any methods: which explanation is best depends on the metric that judges it.

    Extras: ``chosen`` (per example: the winning candidate's label and index, and every
    candidate's objective value), ``objective_values`` (n_examples, n_candidates), ``candidates``
    (labels), ``objective``, ``direction``, and ``n_model_calls`` of the candidates (where they
    report it; the objective's own calls are not counted).

    Parameters
    ----------
    objective : metric or callable
        A metric object (``metrics.Comprehensiveness()``; its ``higher_is_better`` gives the
        direction) or a callable ``(explanation, model) -> per-example scores`` (an array of shape
        (n_examples,) or (n_examples, n_outputs), averaged over outputs).
    candidates : list
        Method names, ``Method`` instances or ``(name, params)`` pairs, e.g.
        ``[("integrated_gradients", {"baseline": "zeros"}), ("occlusion", {})]``. They must put
        their values on the same scale (all differences of the output, or none).
    direction : {"max", "min"} or None, default=None
        Whether higher or lower objective scores are better; required for a callable, and must
        agree with a metric's own direction when given.

    References
    ----------
    .. [1] Barkan, Elisha, Weill, Koenigstein, "BEE: Metric-Adapted Explanations via Baseline
           Exploration-Exploitation", AAAI 2025, https://arxiv.org/abs/2412.17512
    """

    requires: ClassVar[Capability] = Capability.FORWARD
    modalities: ClassVar[frozenset[Modality]] = frozenset({"tabular", "image", "text", "graph"})
    deterministic: ClassVar[bool] = False
    reference: ClassVar[str] = "Barkan et al. 2025, arXiv:2412.17512"
    _constraints: ClassVar[Mapping[str, Sequence[Constraint]]] = {
        "objective": [Satisfies(is_objective, "a metric or a callable (explanation, model) -> "
                                "per-example scores", invalid=42)],
        "candidates": [Satisfies(_valid_candidates, "a non-empty list of method names, Method "
                                 "instances or (name, params) pairs", invalid=[])],
        "direction": [Options({"max", "min"}), NONE_OK],
    }

    objective: Any
    candidates: Sequence[Any]
    direction: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        as_objective(self.objective, self.direction, owner="BestOf")
        scales = {m.multiplies_by_inputs for m in self.methods()}
        if len(scales) > 1:
            msg = ("BestOf's candidates put their values on different scales (some are "
                   "differences of the output, some are per unit of input, e.g. IG with "
                   "multiply_by_inputs=False): a per-example choice would mix them. Use "
                   "candidates of one kind.")
            raise InvalidParameterError(msg, owner="BestOf", parameter="candidates",
                                        value=self.labels())

    def _pairs(self) -> list[tuple[str | Method, dict[str, Any]]]:
        """Each candidate as (method name or instance, parameters given)."""
        return [(c, {}) if isinstance(c, str | Method) else (c[0], dict(c[1]))
                for c in self.candidates]

    def methods(self) -> list[Method]:
        """The candidates as Method instances (typed errors for unknown names or parameters)."""
        from .._explain import make_method

        return [make_method(m, params) if isinstance(m, str) else
                dataclasses.replace(m, **params) if params else m for m, params in self._pairs()]

    def labels(self) -> list[str]:
        """One label per candidate: the method and the parameters given (``#k`` on repeats)."""
        raw = [f"{m if isinstance(m, str) else m.name}"
               f"({', '.join(f'{k}={v!r}' for k, v in params.items())})"
               for m, params in self._pairs()]
        return [label if raw.count(label) == 1 else f"{label} #{k}"
                for k, label in enumerate(raw)]

    @property
    def multiplies_by_inputs(self) -> bool:
        return self.methods()[0].multiplies_by_inputs

    def check_compatible(self, adapter: ModelAdapter) -> None:
        super().check_compatible(adapter)
        for m in self.methods():
            m.check_compatible(adapter)

    def feature_spaces(self, adapter: ModelAdapter, batch: Batch) -> tuple[FeatureSpace, ...]:
        return self.methods()[0].feature_spaces(adapter, batch)

    def _attribute(self, adapter: ModelAdapter, batch: Batch, features: tuple[FeatureSpace, ...],
                   target: ResolvedTarget, *, batch_size: int,
                   rng: torch.Generator) -> AttributionOutput:
        objective = as_objective(self.objective, self.direction, owner="BestOf")
        labels = self.labels()
        exps: list[Explanation] = [
            m.explain(adapter, batch, target=target, batch_size=batch_size,
                      random_state=int_seed(rng)) for m in self.methods()]
        shapes = {tuple(e.values.shape) for e in exps}
        if len(shapes) > 1:
            msg = (f"BestOf's candidates explain different features (value shapes "
                   f"{sorted(shapes)}); choose candidates over the same features (same "
                   "granularity and feature groups).")
            raise InvalidParameterError(msg, owner="BestOf", parameter="candidates",
                                        value=labels)
        seed = int_seed(rng)
        scores = torch.stack([objective(e, adapter, batch_size=batch_size, seed=seed)
                              for e in exps], dim=1)  # (n, candidates)
        ranked = torch.nan_to_num(scores * objective.sign(), nan=-torch.inf)
        best = ranked.max(dim=1, keepdim=True).values
        chosen = (ranked == best).float().argmax(dim=1)  # the first of the best
        n = len(batch)
        values = torch.stack([e.values for e in exps])[chosen, torch.arange(n)]
        bases = [e.base_values for e in exps if e.base_values is not None]
        base = (torch.stack(bases)[chosen, torch.arange(n)] if len(bases) == len(exps)
                else None)
        calls = [int(c) for e in exps if (c := e.extras.get("n_model_calls")) is not None]
        extras: dict[str, Any] = {
            "chosen": [{"candidate": labels[int(c)], "index": int(c),
                        "objective": {lab: float(scores[i, k]) for k, lab in enumerate(labels)}}
                       for i, c in enumerate(chosen)],
            "objective_values": scores.float(), "candidates": labels,
            "objective": objective.name, "direction": objective.direction,
        }
        if len(calls) == len(exps):
            extras["n_model_calls"] = torch.tensor(sum(calls))
        per_example = tuple(exps[int(c)].features[i] for i, c in enumerate(chosen))
        out: torch.Tensor | list[torch.Tensor] = values
        if any(e.feature_mask is not None for e in exps):  # ragged (texts): unpad per example
            out = [values[i][:, : f.n_features] for i, f in enumerate(per_example)]
        return AttributionOutput(out, base_values=base, extras=extras, features=per_example)

