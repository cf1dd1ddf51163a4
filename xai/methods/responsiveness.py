"""Feature responsiveness scores (Cheon et al., ICLR 2025): can acting on a feature reach the target?"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from .._capabilities import Capability, Modality
from .._records import as_probabilities
from .._registry import register_method
from .._target import resolve_target
from .._validation import Constraint, InstanceOf, Interval, int_seed
from ..adapters._base import Batch, ModelAdapter
from ..exceptions import InvalidParameterError
from ..explanation import ResolvedTarget
from ..features._base import FeatureSpace
from ..recourse import ActionSet, responsiveness_scores
from ._base import AttributionOutput, Method

__all__ = ["Responsiveness"]


@register_method("responsiveness")
@dataclasses.dataclass(frozen=True, kw_only=True)
class Responsiveness(Method):
    """Responsiveness of each feature: the share of its feasible changes that reach the target.

    ``resp_j(x) = |{x' in R_j(x) : f(x') = target}| / |R_j(x)|``, where ``R_j(x)`` holds the points
    reachable by acting on feature ``j`` under ``action_set`` (its partners in a one-hot group,
    thermometer or linkage moving as the constraints require), and 0 when no such action exists
    (an immutable feature, or no feasible move). Values lie in [0, 1]; they are not attributions
    and do not sum to anything. A feature is *responsive* when its score is above 0.

    ``R_j(x)`` is enumerated when j's partition is discrete and its action grid has at most
    ``max_enumerate`` points, and sampled (``n_samples`` draws) otherwise; see
    ``xai.recourse._reach`` for the exact rules. Every candidate point of every example goes
    through the model in batched calls, each distinct point once; identical rows are computed
    once.

    The target prediction is a hard label: the argmax class, or with ``threshold`` the target's
    probability at or above it. ``target`` is the class to reach (default 1, "approved"; a list
    or "all" explains each class as a target of its own); on a model with one output column the
    goal is that output at or above ``threshold`` (default 0.5 for probabilities, 0 for other
    scores).

    Extras, shaped like the values ((n, n_outputs, d)) or per example and output
    ((n, n_outputs)): ``stderr`` (0 where enumerated), ``n_actions`` (|R_j| or draws kept),
    ``enumerated``; ``at_target`` (people already at the target: their scores are computed as
    for anyone, as reachml does; the ``responsiveness`` metric leaves them out),
    ``fixed_prediction`` (no feasible action, on any features, found to reach the target),
    ``fixed_search`` (lists: how that was decided; "exhaustive" is a proof, "search" a random
    and greedy search); ``limits`` (the caps that decided between enumeration and sampling,
    and the size of the search); ``n_rows`` (distinct points scored) and ``n_model_calls``.

    Parameters
    ----------
    action_set : xai.ActionSet
        What can change; matched to DataFrame columns by name, to array columns by position.
    n_samples : int, default=500
        Draws per feature when sampling, and random joint actions in the fixed-prediction search.
    threshold : float or None, default=None
        Probability the target must reach; None uses the argmax label.
    max_enumerate : int, default=1000
        Largest action grid of a partition that is enumerated.
    max_search : int, default=20000
        Largest product of the partitions' actions enumerated by the fixed-prediction search.
    find_fixed : bool, default=True
        Search joint actions for people whom no single feature helps.

    References
    ----------
    .. [1] Cheon, Wernerfelt, Friedler, Ustun, "Feature Responsiveness Scores: Model-Agnostic
           Explanations for Recourse", ICLR 2025, https://arxiv.org/abs/2410.22598
    """

    requires: ClassVar[Capability] = Capability.FORWARD
    modalities: ClassVar[frozenset[Modality]] = frozenset({"tabular"})
    deterministic: ClassVar[bool] = False
    reference: ClassVar[str] = "Cheon et al. 2025, arXiv:2410.22598"
    _constraints: ClassVar[Mapping[str, Sequence[Constraint]]] = {
        "action_set": [InstanceOf((ActionSet,), "an xai.ActionSet")],
        "n_samples": [Interval(int, 1, None, closed="left")],
        "threshold": [Interval(float, 0, 1, closed="both"), InstanceOf((type(None),), "None")],
        "max_enumerate": [Interval(int, 1, None, closed="left")],
        "max_search": [Interval(int, 1, None, closed="left")],
        "find_fixed": [InstanceOf((bool,), "a bool")],
    }

    action_set: ActionSet
    n_samples: int = 500
    threshold: float | None = None
    max_enumerate: int = 1000
    max_search: int = 20_000
    find_fixed: bool = True

    @property
    def multiplies_by_inputs(self) -> bool:
        return False  # probabilities of reaching the target, not differences of the output

    def _resolve_target(self, adapter: ModelAdapter, batch: Batch, target: Any, *,
                        batch_size: int) -> ResolvedTarget:
        scores = adapter.predict_batched(batch, batch_size)
        if target is None:  # the class to reach: 1 ("approved"), or the one output
            target = 0 if scores.shape[1] == 1 else 1
        return resolve_target(adapter, scores, target)

    def _attribute(self, adapter: ModelAdapter, batch: Batch, features: tuple[FeatureSpace, ...],
                   target: ResolvedTarget, *, batch_size: int,
                   rng: torch.Generator) -> AttributionOutput:
        actions = self.action_set
        x = batch.inputs.detach().cpu().numpy().astype(np.float64)
        order = actions.align(batch.columns, x.shape[1])
        xa = actions.check_data(x[:, order])
        seed = int_seed(rng)
        n, n_out, d = len(x), target.n_outputs, x.shape[1]
        n_model = 1 if target.scores is None else int(target.scores.shape[1])
        values = np.zeros((n, n_out, d))
        stderr, n_actions = np.zeros((n, n_out, d)), np.zeros((n, n_out, d), dtype=np.int64)
        enumerated = np.zeros((n, n_out, d), dtype=bool)
        at_target, fixed = np.zeros((n, n_out), dtype=bool), np.zeros((n, n_out), dtype=bool)
        search = [["" for _ in range(n_out)] for _ in range(n)]
        n_rows = n_calls = 0
        back = np.empty_like(order)
        back[order] = np.arange(d)
        indices = target.indices.cpu().numpy()
        for o in range(n_out):  # each explained class, with the rows that explain it
            for t in np.unique(indices[:, o]).tolist():
                rows = np.flatnonzero(indices[:, o] == t)
                margin = goal_margin(adapter, batch, order, int(t), n_model, self.threshold)
                res = responsiveness_scores(
                    xa[rows], actions, margin, n_samples=self.n_samples,
                    max_enumerate=self.max_enumerate, max_search=self.max_search, seed=seed,
                    find_fixed=self.find_fixed, rows_per_call=batch_size)
                values[rows, o] = res.scores[:, back]  # back to the data's column order
                stderr[rows, o] = res.stderr[:, back]
                n_actions[rows, o] = res.n_actions[:, back]
                enumerated[rows, o] = res.enumerated[:, back]
                at_target[rows, o], fixed[rows, o] = res.at_target, res.fixed
                for r, how in zip(rows.tolist(), res.search, strict=True):
                    search[r][o] = how
                n_rows, n_calls = n_rows + res.n_rows, n_calls + res.n_calls
        extras = {
            "stderr": torch.as_tensor(stderr).float(), "n_actions": torch.as_tensor(n_actions),
            "enumerated": torch.as_tensor(enumerated), "at_target": torch.as_tensor(at_target),
            "fixed_prediction": torch.as_tensor(fixed), "fixed_search": search,
            "n_rows": torch.tensor(n_rows), "n_model_calls": torch.tensor(n_calls),
            "limits": {"n_samples": self.n_samples, "max_enumerate": self.max_enumerate,
                       "max_search": self.max_search},
        }
        return AttributionOutput(torch.as_tensor(values).float(), extras=extras)


def goal_margin(adapter: ModelAdapter, batch: Batch, order: np.ndarray, target: int,
                n_outputs: int, threshold: float | None,
                ) -> Callable[[np.ndarray], np.ndarray]:
    """Points in action-set column order -> how far each is past the target (>= 0: reached).

    Argmax label: the target's score minus the best other score. With ``threshold``: the
    target's probability minus it. One output column: the output minus ``threshold`` (0.5 for
    probabilities, 0 for other scores when None).
    """
    kind = getattr(adapter, "output_kind", "scores")
    dtype = batch.inputs.dtype
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))

    def margin(points: np.ndarray) -> np.ndarray:
        rows = torch.as_tensor(points[:, inverse], dtype=dtype)
        with torch.no_grad():
            scores = adapter.predict(Batch({"inputs": rows}, columns=batch.columns,
                                           static_args=batch.static_args)).double()
        if n_outputs == 1:
            cut = threshold if threshold is not None else (0.5 if kind == "probabilities"
                                                           else 0.0)
            return (scores[:, 0] - cut).numpy()
        if threshold is not None:
            probs = as_probabilities(scores, kind)
            if probs is None:
                msg = (f"threshold={threshold} compares a probability, but this model's outputs "
                       f"are {kind!r} with no probability reading. Leave threshold=None (the "
                       "argmax label).")
                raise InvalidParameterError(msg, owner="Responsiveness", parameter="threshold",
                                            value=threshold)
            return (probs[:, target] - threshold).numpy()
        others = scores.clone()
        others[:, target] = -torch.inf
        return (scores[:, target] - others.max(dim=1).values).numpy()

    return margin
