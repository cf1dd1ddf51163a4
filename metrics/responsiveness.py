"""Responsiveness of an explanation's reasons (Cheon et al., ICLR 2025): can people act on them?"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch

import xai
from xai.adapters import ModelAdapter
from xai.exceptions import InvalidExplanationError, XAIWarning
from xai.extend import Constraint, InstanceOf, Interval

from ._base import Category, Metric
from ._registry import register_metric

__all__ = ["Responsiveness", "reason_summary"]


@register_metric("responsiveness")
@dataclasses.dataclass(frozen=True, kw_only=True)
class Responsiveness(Metric):
    """Share of each example's top-k reasons that are responsive: acting on them can reach the
    target prediction.

    The reasons of an example are its ``top_k`` features by |attribution|, among those with
    |attribution| > 0 (the adverse-action reasons a lender would give). A reason is responsive
    when its responsiveness score (``method="responsiveness"``: the share of the feature's
    feasible changes under ``action_set`` that reach ``target``) is above 0. The score is
    ``#responsive reasons / #reasons``; NaN for an example with no reason or already predicted as
    the target (reachml scores those too; here they are left out, with a warning).

    Extras
    ------
    ``responsiveness`` (n, d) per-feature scores; ``reasons`` (feature names of each example's
    reasons, first output); ``n_reasons``; ``fixed_prediction`` (bool (n,): no feasible action
    found that reaches the target) and ``fixed_search`` ("exhaustive" proves it, "search" is a
    random and greedy search); ``at_target``; ``summary``, over the examples not at the target
    (the *denied*), first output: ``n_denied``, ``r_with_reasons`` (denied with at least one
    reason), and among those ``r_all_invalid`` (every reason unresponsive),
    ``r_at_least_1_invalid``, ``r_at_least_1_responsive``, ``r_all_responsive``,
    ``r_reasons_unresponsive`` (unresponsive reasons / all reasons), ``avg_n_reasons``; and over
    all denied ``r_denied_fixed`` and ``r_multi_feature_only`` (not fixed, yet no single feature
    responsive: recourse needs several features at once). Every share counts each row, so a data
    set with duplicate rows is weighted by multiplicity, as in the paper.

    Parameters
    ----------
    action_set : xai.ActionSet
        What each person can change (see `xai.ActionSet`).
    top_k : int, default=4
        Reasons per example (the paper's K = 4, as in US adverse-action notices).
    target : int, str or None, default=None
        The class to reach; None is class 1 ("approved"), or the one output of a
        single-output model.
    threshold, n_samples, max_enumerate, max_search
        As in ``xai.Responsiveness``.

    References
    ----------
    .. [1] Cheon, Wernerfelt, Friedler, Ustun, "Feature Responsiveness Scores: Model-Agnostic
           Explanations for Recourse", ICLR 2025, https://arxiv.org/abs/2410.22598
    """

    higher_is_better: ClassVar[bool] = True
    category: ClassVar[Category] = "responsiveness"
    modalities: ClassVar[frozenset[str]] = frozenset({"tabular"})
    reference: ClassVar[str] = "Cheon et al. 2025, arXiv:2410.22598"
    needs_params: ClassVar[tuple[str, ...]] = ("action_set",)
    _constraints: ClassVar[Mapping[str, Sequence[Constraint]]] = {
        "action_set": [InstanceOf((xai.ActionSet,), "an xai.ActionSet")],
        "top_k": [Interval(int, 1, None, closed="left")],
        "target": [InstanceOf((int, str, type(None)), "a class index, a class label or None")],
        "n_samples": [Interval(int, 1, None, closed="left")],
        "threshold": [Interval(float, 0, 1, closed="both"), InstanceOf((type(None),), "None")],
        "max_enumerate": [Interval(int, 1, None, closed="left")],
        "max_search": [Interval(int, 1, None, closed="left")],
    }

    action_set: xai.ActionSet
    top_k: int = 4
    target: Any = None
    threshold: float | None = None
    n_samples: int = 500
    max_enumerate: int = 1000
    max_search: int = 20_000

    @classmethod
    def _test_params(cls) -> list[dict[str, Any]]:
        """For the conformance fixtures: 6 standard-normal float features, free over [-5, 5]."""
        actions = xai.ActionSet([xai.ActionElement(f"x{j}", lb=-5.0, ub=5.0) for j in range(6)])
        return [{"action_set": actions, "n_samples": 16}]

    def _score(self, explanation: xai.Explanation, adapter: ModelAdapter, rng: torch.Generator,
               *, batch_size: int) -> tuple[torch.Tensor, dict[str, Any]]:
        assert explanation.inputs is not None  # checked by Metric.check
        x = explanation.inputs.inputs
        if x.dim() != 2 or explanation.n_features != x.shape[1]:
            msg = (f"The responsiveness metric reads each attribution as the reason of one "
                   f"column, but this explanation has {explanation.n_features} features for "
                   f"{x.shape[-1]} columns (feature groups?). Explain without feature_groups.")
            raise InvalidExplanationError(msg)
        method = xai.Responsiveness(action_set=self.action_set, n_samples=self.n_samples,
                                    threshold=self.threshold, max_enumerate=self.max_enumerate,
                                    max_search=self.max_search)
        resp_exp = method.explain(adapter, explanation.inputs, target=self.target, batch_size=batch_size,
                                  random_state=rng)
        resp = resp_exp.values[:, 0, :]
        at_target = resp_exp.extras["at_target"][:, 0]
        values = explanation.values  # (n, n_outputs, d)
        mag = values.abs()
        order = torch.argsort(mag, dim=-1, descending=True, stable=True)[..., : self.top_k]
        chosen = mag.gather(-1, order) > 0  # the top-k with |attribution| > 0
        responsive = (resp.unsqueeze(1).expand_as(values).gather(-1, order) > 0) & chosen
        n_reasons = chosen.sum(-1)
        scores = responsive.sum(-1).double() / n_reasons.clamp_min(1)
        scores[(n_reasons == 0) | at_target.unsqueeze(1)] = float("nan")
        if bool(at_target.any()):
            warnings.warn(f"{int(at_target.sum())} example(s) are already predicted as the "
                          "target; their responsiveness score is NaN. Explain only the people "
                          "who need recourse (e.g. the denied applicants).", XAIWarning,
                          stacklevel=3)
        names = explanation.names
        reasons = [[names[i][int(j)] for j, c in zip(order[i, 0], chosen[i, 0], strict=True) if c]
                   for i in range(len(explanation))]
        extras = {
            "responsiveness": resp, "reasons": reasons, "n_reasons": n_reasons[:, 0],
            "fixed_prediction": resp_exp.extras["fixed_prediction"][:, 0],
            "fixed_search": [s[0] for s in resp_exp.extras["fixed_search"]],
            "at_target": at_target,
            "summary": reason_summary(n_reasons[:, 0], responsive[:, 0].sum(-1),
                                      resp_exp.extras["fixed_prediction"][:, 0], at_target,
                                      (resp > 0).any(-1)),
            "n_model_calls": resp_exp.extras["n_model_calls"],
            "n_rows": resp_exp.extras["n_rows"],
        }
        return scores.float(), extras


def reason_summary(n_reasons: torch.Tensor, n_responsive: torch.Tensor, fixed: torch.Tensor,
                   at_target: torch.Tensor, any_responsive: torch.Tensor) -> dict[str, float]:
    """The paper's shares of reasons without recourse, over the denied (not at target) rows.

    Parameters are per row: the number of reasons, how many are responsive, the fixed-prediction
    flag, whether the row is at the target, whether any feature is responsive.
    """
    denied = ~at_target
    n_denied = int(denied.sum())
    with_reasons = denied & (n_reasons > 0)
    n_with = int(with_reasons.sum())

    def share(mask: torch.Tensor, of: int) -> float:
        return float(mask.sum()) / of if of else float("nan")

    invalid = n_reasons - n_responsive
    return {
        "n_denied": n_denied,
        "r_with_reasons": share(with_reasons, n_denied),
        "r_all_invalid": share(with_reasons & (n_responsive == 0), n_with),
        "r_at_least_1_invalid": share(with_reasons & (invalid > 0), n_with),
        "r_at_least_1_responsive": share(with_reasons & (n_responsive > 0), n_with),
        "r_all_responsive": share(with_reasons & (invalid == 0), n_with),
        "r_reasons_unresponsive": (float(invalid[with_reasons].sum())
                                   / max(int(n_reasons[with_reasons].sum()), 1)
                                   if n_with else float("nan")),
        "avg_n_reasons": float(n_reasons[denied].double().mean()) if n_denied else float("nan"),
        "r_denied_fixed": share(denied & fixed, n_denied),
        "r_multi_feature_only": share(denied & ~fixed & ~any_responsive, n_denied),
    }
