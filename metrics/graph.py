"""Fidelity of graph explanations: robust fidelity (Zheng et al., ICLR 2024), and PyG's fidelity
and characterization score (GraphFramEx, Amara et al. 2022).

The three metrics score explanations of graph models (``xai.explain(..., explain="edges")`` or
``"nodes"`` on a PyTorch Geometric model). Every perturbed graph of an example is scored in as
few model calls as ``batch_size`` allows.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import torch

import xai
from xai.adapters import ModelAdapter
from xai.exceptions import InvalidParameterError, XAIWarning
from xai.extend import (
    NONE_OK,
    Batch,
    Constraint,
    Interval,
    Options,
    as_probabilities,
    example_generators,
    fmt_value,
    score_masks,
)
from xai.features import GraphEdges, GraphNodes

from ._base import Category, Metric
from ._perturb import rows
from ._registry import register_metric

__all__ = ["Characterization", "Fidelity", "RobustFidelity", "binarize"]

_KEYS = ("fid_plus", "fid_minus", "fid_delta")


def _real_in(lo: float, hi: float, *, lo_closed: bool, hi_closed: bool) -> Any:
    def ok(v: Any) -> bool:
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or math.isnan(float(v)):
            return False
        f = float(v)
        above = f >= lo if lo_closed else f > lo
        below = f <= hi if hi_closed else f < hi
        return bool(above and below)

    return ok


@dataclasses.dataclass(frozen=True)
class _Alpha:
    """A constraint on alpha1/alpha2 whose description names the allowed range and the fix."""

    lo_closed: bool
    hi_closed: bool
    description: str
    invalid: float

    def is_satisfied_by(self, value: Any) -> bool:
        return bool(_real_in(0.0, 1.0, lo_closed=self.lo_closed,
                             hi_closed=self.hi_closed)(value))

    def invalid_value(self) -> Any:
        return self.invalid

    def __str__(self) -> str:
        return self.description


_ALPHA1 = _Alpha(False, True, "a float in the range (0, 1]: the probability that each "
                 "explanation unit is removed (the paper's default 0.1; 1 gives the original "
                 "Fid+, 0 would make Fid+ identically 0)", 0.0)
_ALPHA2 = _Alpha(True, False, "a float in the range [0, 1): the probability that each "
                 "non-explanation unit is kept (the paper's default 0.9; 0 gives the original "
                 "Fid-, 1 would make Fid- identically 0)", 1.0)


@dataclasses.dataclass(frozen=True)
class _Finite:
    """A finite real number."""

    def is_satisfied_by(self, value: Any) -> bool:
        return (isinstance(value, numbers.Real) and not isinstance(value, bool)
                and math.isfinite(float(value)))

    def invalid_value(self) -> Any:
        return math.nan

    def __str__(self) -> str:
        return "a finite float"


# -- binarising an explanation --------------------------------------------------------------------


def binarize(values: torch.Tensor, *, top_k: int | None = None,
             threshold: float | None = None, soft_mask: bool = False) -> torch.Tensor:
    """The hard explanation (bool, same shape) of unit values ``values`` (..., n_units).

    ``top_k``: the k highest-valued units of each row (ties go to the earlier unit; all units
    when k exceeds their number). ``threshold``: units whose value is strictly greater (the
    reference code's ``weight > 0.5``). Neither: values already in {0, 1} are used as they are;
    a soft mask (``soft_mask=True``: values that are not shares of the output, such as
    GNNExplainer's) in [0, 1] keeps the units above 0.5; any other values (attributions) keep
    the units that are positive and at least half the row's largest value.
    """
    if top_k is not None:
        k = min(int(top_k), int(values.shape[-1]))
        order = torch.argsort(-values, dim=-1, stable=True)
        out = torch.zeros_like(values, dtype=torch.bool)
        return out.scatter_(-1, order[..., :k], True)
    if threshold is not None:
        return values > threshold
    if bool(((values == 0) | (values == 1)).all()):
        return values == 1
    if soft_mask and bool(((values >= 0) & (values <= 1)).all()):
        return values > 0.5
    top = values.amax(-1, keepdim=True)
    return (values > 0) & (values >= 0.5 * top)


# -- shared checks ---------------------------------------------------------------------------------


def _probability_reason(explanation: xai.Explanation, name: str) -> str | None:
    kind = explanation.model_info.output_kind
    if as_probabilities(torch.zeros(1, 2), kind) is None:
        return (f"{name} needs a classifier's class scores (logits, log-probabilities or "
                f"probabilities), and this model's outputs were read as {kind!r}. If the model "
                "is a classifier, say what it returns: explain it with adapter_options="
                "{'output_kind': 'logits'} (or 'log_probabilities', 'probabilities'), or pass "
                "PyGAdapter(model, output_kind=...) as the model")
    return None


def _mean_over_examples(t: torch.Tensor) -> torch.Tensor:
    return t.float().mean(0)


@dataclasses.dataclass(frozen=True, kw_only=True)
class _GraphClassMetric(Metric):
    """A fidelity of graph-classifier explanations: needs the model's class scores."""

    higher_is_better: ClassVar[bool] = True
    category: ClassVar[Category] = "fidelity"
    modalities: ClassVar[frozenset[str]] = frozenset({"graph"})
    feature_spaces: ClassVar[tuple[type, ...]] = (GraphEdges, GraphNodes)
    reference: ClassVar[str] = "Amara et al. 2022, arXiv:2206.09677"
    #: The metric's name in the message of an explanation it cannot score.
    label: ClassVar[str]

    @classmethod
    def why_not(cls, explanation: xai.Explanation) -> str | None:
        reason = super().why_not(explanation)
        return reason if reason is not None else _probability_reason(explanation, cls.label)


# -- robust fidelity -------------------------------------------------------------------------------


@register_metric("robust_fidelity")
@dataclasses.dataclass(frozen=True, kw_only=True)
class RobustFidelity(_GraphClassMetric):
    """Robust fidelity of an edge explanation (Zheng et al., ICLR 2024): Fid+, Fid- and Fid_Delta
    on stochastically thinned explanation and complement edge sets.

    With G the input graph, G^exp the (binarised) explanation, y the explained output and
    E_a(H) the random subgraph keeping each unit of H independently with probability a::

        Fid_{a1,+}  = f(G)_y - E f(G - E_{a1}(G^exp))_y             (each explanation unit
                                                                     removed w.p. a1)
        Fid_{a2,-}  = f(G)_y - E f(G^exp + E_{a2}(G \\ G^exp))_y     (explanation kept; each other
                                                                     unit kept w.p. a2)
        Fid_Delta   = Fid_{a1,+} - Fid_{a2,-}

    The expectations are Monte-Carlo means over ``n_samples`` draws. The probability version
    uses the model's class probabilities f(.)_y; the accuracy version 1[argmax f(.) = y].
    ``scores`` is the probability Fid_Delta, (n_examples, n_outputs): higher is better.

    Parameters
    ----------
    alpha1 : float, default=0.1
        Probability that each explanation unit is removed, in (0, 1]; 1 gives the original Fid+.
    alpha2 : float, default=0.9
        Probability that each non-explanation unit is kept, in [0, 1); 0 gives the original Fid-.
    n_samples : int, default=50
        Monte-Carlo draws M per example and output (the paper's 50).
    top_k : int, optional
        Binarise by keeping the k highest-valued units (at least 1).
    threshold : float, optional
        Binarise by keeping the units whose value is strictly greater than ``threshold``.
        With neither ``top_k`` nor ``threshold``: values in {0, 1} are used as they are; masks
        in [0, 1] (explanations that do not multiply by the inputs, such as GNNExplainer's)
        keep the units above 0.5 (the reference code's rule); attributions (integrated
        gradients, occlusion, Shapley values, whose scale follows the model's output) keep the
        units that are positive and at least half the example's largest value.

    Notes
    -----
    Units are the explanation's features: an undirected edge (both directions) is one unit. The
    surgery is the explanation's ``mask_mode`` (by default, removed edges are deleted). Cost:
    1 + 2M rows per example (1 + 2M n_outputs with several outputs), batched. The authors' PyG
    port computes Fid- on the sampled complement alone (it drops the whole explanation and
    keeps about 10% of the rest); this follows the paper (eq. 3, Algorithm 2) and the authors'
    original code instead. An empty
    explanation has Fid+ = 0; an explanation covering the whole graph has Fid- = 0 (with a
    warning; the reference code returns 1 there).

    extras: "fid_plus", "fid_minus", "fid_delta" (probability version, (n, n_outputs)),
    "accuracy" (the same three keys, accuracy version), "stderr" ("fid_plus", "fid_minus":
    Monte-Carlo standard errors sd/sqrt(M) of the probability version, NaN when M = 1),
    "explanation_size" (units in the binarised explanation), "n_model_calls", "n_rows".

    References
    ----------
    .. [1] Zheng, Shirani, Wang, Cheng, Chen, Chen, Wei, Luo, "Towards Robust Fidelity for
           Evaluating Explainability of Graph Neural Networks", ICLR 2024,
           https://arxiv.org/abs/2310.01820
    """

    feature_spaces: ClassVar[tuple[type, ...]] = (GraphEdges,)
    reference: ClassVar[str] = "Zheng et al. 2024, arXiv:2310.01820"
    _constraints: ClassVar[Mapping[str, Sequence[Constraint]]] = {
        "alpha1": [_ALPHA1],
        "alpha2": [_ALPHA2],
        "n_samples": [Interval(int, 1, None, closed="left")],
        "top_k": [Interval(int, 1, None, closed="left"), NONE_OK],
        "threshold": [_Finite(), NONE_OK],
    }

    alpha1: float = 0.1
    alpha2: float = 0.9
    n_samples: int = 50
    top_k: int | None = None
    threshold: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _one_rule(self)

    label: ClassVar[str] = "robust fidelity"

    def _score(self, explanation: xai.Explanation, adapter: ModelAdapter, rng: torch.Generator,
               *, batch_size: int) -> tuple[torch.Tensor, dict[str, Any]]:
        n, o, m = len(explanation), explanation.n_outputs, self.n_samples
        gens = example_generators(rng, n)
        hard, keeps = [], []
        for row in rows(explanation):
            e = binarize(row.values, top_k=self.top_k, threshold=self.threshold,
                         soft_mask=not explanation.multiplies_by_inputs)  # (o, d)
            d = row.n_features
            gen = gens[row.index]
            drop = (torch.rand(o, m, d, generator=gen) < self.alpha1) & e[:, None]
            add = torch.rand(o, m, d, generator=gen) < self.alpha2
            plus = ~drop
            minus = e[:, None] | add
            keeps.append(torch.cat([torch.ones(1, d, dtype=torch.bool),
                                    plus.reshape(o * m, d), minus.reshape(o * m, d)]))
            hard.append(e)
        scores, n_calls = score_masks(adapter, explanation.features, keeps,
                                      batch_size=batch_size)
        kind = explanation.model_info.output_kind
        prob = {k: torch.zeros(n, o) for k in _KEYS}
        acc = {k: torch.zeros(n, o) for k in _KEYS}
        err = {k: torch.zeros(n, o) for k in _KEYS[:2]}
        size = torch.zeros(n, o, dtype=torch.long)
        full_graph = []
        for i, s in enumerate(scores):
            probs = as_probabilities(s, kind)
            assert probs is not None  # why_not refused the others
            right = s.argmax(-1)
            e = hard[i]
            for j in range(o):
                y = int(explanation.target.indices[i, j])
                p, a = probs[:, y], (right == y).float()
                parts = {"fid_plus": slice(1 + j * m, 1 + (j + 1) * m),
                         "fid_minus": slice(1 + (o + j) * m, 1 + (o + j + 1) * m)}
                for key, where in parts.items():
                    diff = p[0] - p[where]
                    prob[key][i, j] = diff.mean()
                    acc[key][i, j] = (a[0] - a[where]).mean()
                    err[key][i, j] = (diff.std() / math.sqrt(m)) if m > 1 else math.nan
                size[i, j] = int(e[j].sum())
                if size[i, j] == 0:  # nothing to remove: exactly 0
                    for t in (prob, acc, err):
                        t["fid_plus"][i, j] = 0.0
                if size[i, j] == e.shape[1]:  # nothing outside the explanation: exactly 0
                    for t in (prob, acc, err):
                        t["fid_minus"][i, j] = 0.0
                    full_graph.append(i)
        for t in (prob, acc):
            t["fid_delta"] = t["fid_plus"] - t["fid_minus"]
        if full_graph:
            warnings.warn(
                f"The explanation of example(s) {', '.join(map(str, sorted(set(full_graph))[:5]))} "
                "covers the whole graph: no unit is left to sample, so Fid- is 0 there. Use "
                "top_k or threshold for a smaller explanation.", XAIWarning, stacklevel=3)
        extras: dict[str, Any] = {
            **prob, "accuracy": acc, "stderr": err, "explanation_size": size,
            "n_model_calls": n_calls, "n_rows": sum(int(k.shape[0]) for k in keeps),
        }
        return prob["fid_delta"].clone(), extras


def _one_rule(metric: Any) -> None:
    """top_k and threshold are two rules for the same thing: at most one may be given."""
    if metric.top_k is not None and metric.threshold is not None:
        owner = type(metric).__name__
        msg = (f"The 'threshold' parameter of {owner} must be None when top_k is given (they "
               f"are two ways to binarise the explanation). Got top_k={metric.top_k} and "
               f"threshold={fmt_value(metric.threshold)}; pass only one of them.")
        raise InvalidParameterError(msg, owner=owner, parameter="threshold",
                                    value=metric.threshold)


# -- PyG's fidelity and characterization score -----------------------------------------------------


def _masked_inputs(fs: GraphEdges | GraphNodes, mask: torch.Tensor) -> Batch:
    """Copies of the example with soft masks (m, n_units) multiplied in, PyG's explain mode:
    an edge mask scales the edge's messages, a node mask the node's features."""
    row = fs.row
    if isinstance(fs, GraphEdges):
        inputs = mask[:, row.units].to(row.x.dtype)
        row = dataclasses.replace(row, mask_mode="mask")
    else:
        x = row.x[row.players]
        inputs = mask.to(x.dtype).reshape(*mask.shape, *([1] * (x.dim() - 1))) * x
    return Batch({"inputs": inputs}, graphs=(row,) * int(mask.shape[0]))


def _pyg_fidelity(explanation: xai.Explanation, adapter: ModelAdapter, mode: str, *,
                  batch_size: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Per-example PyG fid+ and fid- (n, n_outputs) and the number of model calls."""
    n, o = len(explanation), explanation.n_outputs
    batches = []
    for row in rows(explanation):
        fs = row.features
        assert isinstance(fs, GraphEdges | GraphNodes)  # feature_spaces
        mask = row.values.float()  # (o, d)
        batches.append(Batch.concat([fs.original(), _masked_inputs(fs, mask),
                                     _masked_inputs(fs, 1.0 - mask)]))
    merged = Batch.concat(batches)
    out = adapter.predict_batched(merged, batch_size)
    n_calls = -(-len(merged) // batch_size)
    parts = torch.split(out.argmax(-1), [len(b) for b in batches])
    fid_plus, fid_minus = torch.zeros(n, o), torch.zeros(n, o)
    for i, pred in enumerate(parts):
        y_hat, explain_y, complement_y = pred[0], pred[1:1 + o], pred[1 + o:]
        if mode == "model":
            fid_plus[i] = (complement_y != y_hat).float()
            fid_minus[i] = (explain_y != y_hat).float()
        else:
            y = explanation.target.indices[i]
            right = (y_hat == y).float()
            fid_plus[i] = (right - (complement_y == y).float()).abs()
            fid_minus[i] = (right - (explain_y == y).float()).abs()
    return fid_plus, fid_minus, n_calls


@register_metric("fidelity")
@dataclasses.dataclass(frozen=True, kw_only=True)
class Fidelity(_GraphClassMetric):
    """PyG's fidelity of a graph explanation (GraphFramEx, Amara et al. 2022), equal to
    ``torch_geometric.explain.metric.fidelity`` on the same model, graph and masks.

    The explanation's values are used as soft masks, as given: an edge mask multiplies the
    edge's messages (PyG's explain mode), a node mask the node's features. G_S is the graph
    with the mask, G_{C\\S} the graph with the complement 1 - mask. Accuracy only::

        "model":      fid+ = 1[y_hat(G_{C\\S}) != y_hat(G)]    fid- = 1[y_hat(G_S) != y_hat(G)]
        "phenomenon": fid+ = |1[y_hat(G) = y] - 1[y_hat(G_{C\\S}) = y]|
                      fid- = |1[y_hat(G) = y] - 1[y_hat(G_S) = y]|

    with y_hat = argmax of the model's scores and y the explained output
    (``explanation.target.indices``; PyG's ``explanation.target`` of a phenomenon explanation).
    PyG's numbers are the means over examples (extras "fid_plus_mean", "fid_minus_mean").
    ``scores`` = fid+ - fid- per example and output (higher is better).

    Parameters
    ----------
    mode : {"model", "phenomenon"}, default="model"
        PyG's ``explanation_type``: "model" compares with the model's prediction on the whole
        graph, "phenomenon" with the explained output.

    Notes
    -----
    Cost: 1 + 2 n_outputs rows per example (the graph, then G_S and G_{C\\S}), batched. Node
    tasks score the explained node, like PyG's ``explanation.index``. Soft-mask fidelity is PyG's
    quantity, not the paper's fidelity on hard edge sets: see ``robust_fidelity`` with
    ``alpha1=1, alpha2=0`` for that.

    extras: "fid_plus", "fid_minus" ((n, n_outputs)), "fid_plus_mean", "fid_minus_mean"
    ((n_outputs,)), "n_model_calls".

    References
    ----------
    .. [1] Amara, Ying, Zhang, Han, Shan, Brandes, Schemm, Zhang, "GraphFramEx: Towards
           Systematic Evaluation of Explainability Methods for Graph Neural Networks", LoG 2022,
           https://arxiv.org/abs/2206.09677
    """

    _constraints: ClassVar[Mapping[str, Sequence[Constraint]]] = {
        "mode": [Options({"model", "phenomenon"})],
    }

    mode: Literal["model", "phenomenon"] = "model"

    label: ClassVar[str] = "fidelity"

    def _score(self, explanation: xai.Explanation, adapter: ModelAdapter, rng: torch.Generator,
               *, batch_size: int) -> tuple[torch.Tensor, dict[str, Any]]:
        plus, minus, n_calls = _pyg_fidelity(explanation, adapter, self.mode,
                                             batch_size=batch_size)
        extras = {"fid_plus": plus, "fid_minus": minus,
                  "fid_plus_mean": _mean_over_examples(plus),
                  "fid_minus_mean": _mean_over_examples(minus), "n_model_calls": n_calls}
        return plus - minus, extras


def characterization(fid_plus: torch.Tensor, fid_minus: torch.Tensor, pos_weight: float,
                     neg_weight: float) -> torch.Tensor:
    """PyG's ``characterization_score``: (w+ + w-) / (w+ / fid+ + w- / (1 - fid-)), 0 where
    fid+ = 0 or fid- = 1 (as torch's division by zero gives there)."""
    return (pos_weight + neg_weight) / (pos_weight / fid_plus + neg_weight / (1.0 - fid_minus))


@register_metric("characterization")
@dataclasses.dataclass(frozen=True, kw_only=True)
class Characterization(_GraphClassMetric):
    """PyG's characterization score (GraphFramEx): the weighted harmonic mean of fid+ and
    1 - fid- of :class:`Fidelity`::

        charact = (w+ + w-) / (w+ / fid+ + w- / (1 - fid-))

    ``scores`` is the score of each example's own fid+/fid- (0 or 1 mostly, as these are
    accuracies); extras "value" is PyG's ``characterization_score`` of the mean fid+ and fid-
    over the examples (what PyG reports for the whole explanation), per output.

    Parameters
    ----------
    pos_weight : float, default=0.5
        w+, in [0, 1].
    neg_weight : float, default=0.5
        w-, in [0, 1]; w+ + w- must be 1 (within 1e-9).
    mode : {"model", "phenomenon"}, default="model"
        The fidelity's mode (see :class:`Fidelity`).

    Notes
    -----
    Cost: that of :class:`Fidelity` (3 rows per example and output). fid+ = 0 or fid- = 1 give
    0, like PyG (no guard).

    extras: "value" ((n_outputs,)), "fid_plus", "fid_minus" ((n, n_outputs)),
    "fid_plus_mean", "fid_minus_mean", "n_model_calls".

    References
    ----------
    .. [1] Amara et al., "GraphFramEx", LoG 2022, https://arxiv.org/abs/2206.09677
    """

    _constraints: ClassVar[Mapping[str, Sequence[Constraint]]] = {
        "pos_weight": [Interval(float, 0, 1, closed="both")],
        "neg_weight": [Interval(float, 0, 1, closed="both")],
        "mode": [Options({"model", "phenomenon"})],
    }

    pos_weight: float = 0.5
    neg_weight: float = 0.5
    mode: Literal["model", "phenomenon"] = "model"

    def __post_init__(self) -> None:
        super().__post_init__()
        total = self.pos_weight + self.neg_weight
        if abs(total - 1.0) > 1e-9:
            owner = type(self).__name__
            msg = (f"The 'neg_weight' parameter of {owner} must make pos_weight + neg_weight = 1 "
                   f"(the score is a weighted harmonic mean). Got pos_weight="
                   f"{fmt_value(self.pos_weight)} and neg_weight={fmt_value(self.neg_weight)} "
                   f"(sum {total:g}); pass neg_weight={fmt_value(1.0 - self.pos_weight)}.")
            raise InvalidParameterError(msg, owner=owner, parameter="neg_weight",
                                        value=self.neg_weight)

    label: ClassVar[str] = "characterization"

    def _score(self, explanation: xai.Explanation, adapter: ModelAdapter, rng: torch.Generator,
               *, batch_size: int) -> tuple[torch.Tensor, dict[str, Any]]:
        plus, minus, n_calls = _pyg_fidelity(explanation, adapter, self.mode,
                                             batch_size=batch_size)
        plus_mean, minus_mean = _mean_over_examples(plus), _mean_over_examples(minus)
        extras = {"value": characterization(plus_mean, minus_mean, self.pos_weight,
                                            self.neg_weight),
                  "fid_plus": plus, "fid_minus": minus, "fid_plus_mean": plus_mean,
                  "fid_minus_mean": minus_mean, "n_model_calls": n_calls}
        return characterization(plus, minus, self.pos_weight, self.neg_weight), extras
