"""GNNExplainer: a soft edge (or node) mask learned to keep a graph model's prediction."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch

from .._capabilities import Capability, Modality
from .._graph_pyg import unit_values
from .._registry import register_method
from .._validation import Constraint, InstanceOf, Interval, int_seed
from ..adapters._base import Batch, ModelAdapter
from ..exceptions import IncompatibleModelError, InvalidParameterError
from ..explanation import ResolvedTarget
from ..features._base import FeatureSpace
from ._base import AttributionOutput, Method, pad_stack

__all__ = ["GNNExplainer"]

#: Our output kinds as PyG's ``model_config.return_type``.
_RETURN_TYPES = {"logits": "raw", "log_probabilities": "log_probs", "probabilities": "probs",
                 "scores": "raw"}
#: GNNExplainer's regularisation coefficients that ``coeffs`` may override (PyG's defaults).
_COEFFS = ("edge_size", "edge_reduction", "node_feat_size", "node_feat_reduction", "edge_ent",
           "node_feat_ent", "EPS")


@register_method("gnnexplainer")
@dataclasses.dataclass(frozen=True, kw_only=True)
class GNNExplainer(Method):
    """GNNExplainer (PyG's ``torch_geometric.explain.algorithm.GNNExplainer``) on each example.

    For each example and explained class, a soft mask over the graph's edges (``explain=
    "edges"``) or nodes (``explain="nodes"``) is trained for ``epochs`` steps of Adam to keep
    the model's prediction of that class while staying small and crisp (PyG's size and entropy
    penalties). The value of a feature is the learned mask, ``sigmoid(m)`` in [0, 1]: for an
    undirected edge (one feature, two directions) the mean of the masks of its two directions.
    Edges outside the explained node's k-hop neighbourhood (node tasks) are not features.

    PyG runs as ``Explainer(model, GNNExplainer(epochs, lr, **coeffs), explanation_type=
    "phenomenon", edge_mask_type="object" (edges) or node_mask_type="object" (nodes),
    model_config=dict(mode="multiclass_classification", task_level="graph" or "node",
    return_type="raw"/"log_probs"/"probs"))`` with the resolved target class as the target, on
    the example's graph (node tasks: the neighbourhood the model runs on, with ``index`` the
    explained node). With the default target (the predicted class) this is PyG's
    ``explanation_type="model"``. A model with one output (``output_kind="scores"``) is
    explained as a regression (``mode="regression"``, ``explanation_type="model"``).

    GNNExplainer draws its initial masks from torch's global generator: each (example, class)
    run starts from ``torch.manual_seed(seed)`` inside ``torch.random.fork_rng()``, so the
    global state is left as it was. ``seed`` is ``random_state`` itself for an int (so
    ``torch.manual_seed(random_state)`` before PyG's own ``Explainer`` gives the same masks),
    one int drawn from a used ``torch.Generator``.

    Parameters
    ----------
    epochs : int, default=100
        Optimisation steps per example and class (PyG's default).
    lr : float, default=0.01
        Adam's learning rate (PyG's default).
    coeffs : dict, optional
        Overrides of PyG's ``GNNExplainer.coeffs``: ``edge_size`` (0.005), ``edge_ent`` (1.0),
        ``edge_reduction`` ("sum"), ``node_feat_size`` (1.0), ``node_feat_ent`` (0.1),
        ``node_feat_reduction`` ("mean"), ``EPS`` (1e-15).

    Notes
    -----
    ``extras["pyg_masks"]`` (n_examples, n_outputs, width) holds PyG's masks as returned, one
    value per edge (or node) of the graph the model ran on, zero-padded to the widest graph.

    References
    ----------
    .. [1] Ying, Bourgeois, You, Zitnik & Leskovec, "GNNExplainer: Generating Explanations for
           Graph Neural Networks", NeurIPS 2019, https://arxiv.org/abs/1903.03894
    """

    requires: ClassVar[Capability] = Capability.FORWARD | Capability.GRADIENTS
    modalities: ClassVar[frozenset[Modality]] = frozenset({"graph"})
    deterministic: ClassVar[bool] = False
    reference: ClassVar[str] = "Ying et al. 2019, arXiv:1903.03894"
    _constraints: ClassVar[Mapping[str, Sequence[Constraint]]] = {
        "epochs": [Interval(int, 1, None, closed="left")],
        "lr": [Interval(float, 0, None, closed="neither")],
        "coeffs": [InstanceOf((dict, type(None)), "a dict of GNNExplainer coefficients or None")],
    }

    epochs: int = 100
    lr: float = 0.01
    coeffs: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        unknown = sorted(set(self.coeffs or {}) - set(_COEFFS))
        if unknown:
            msg = (f"The 'coeffs' parameter of GNNExplainer has unknown key {unknown[0]!r}. "
                   f"Use keys among {', '.join(map(repr, _COEFFS))}.")
            raise InvalidParameterError(msg, owner="GNNExplainer", parameter="coeffs",
                                        value=unknown[0])

    @classmethod
    def _test_params(cls) -> list[dict[str, Any]]:
        return [{"epochs": 5}]

    @property
    def multiplies_by_inputs(self) -> bool:
        """False: a mask in [0, 1] per feature, not a share of f(x) - f(baseline)."""
        return False

    def check_compatible(self, adapter: ModelAdapter) -> None:
        super().check_compatible(adapter)
        layers = getattr(adapter, "message_passing_layers", None)
        if getattr(adapter, "explain", "nodes") == "edges" and (layers is None or layers() == 0):
            msg = ("Method 'gnnexplainer' learns an edge mask through PyG's MessagePassing layers "
                   f"(torch_geometric.explain), but {type(adapter.model).__name__} has none, "
                   "so the mask would get no gradient. Use explain='nodes', or a method that "
                   "removes edges (occlusion, shapley_sampling).")
            raise IncompatibleModelError(msg, method=self.name)

    def _attribute(self, adapter: ModelAdapter, batch: Batch, features: tuple[FeatureSpace, ...],
                   target: ResolvedTarget, *, batch_size: int,
                   rng: torch.Generator) -> AttributionOutput:
        seed = _seed(rng)
        values, raw = [], []
        for i, fs in enumerate(features):
            row = fs.row  # type: ignore[attr-defined]  # graph features carry their GraphRow
            per_output = [self._run(adapter, row, int(c), seed) for c in target.indices[i]]
            raw.append(torch.stack(per_output))
            values.append(torch.stack([unit_values(row, m, m) for m in per_output]))
        return AttributionOutput(values, extras={"pyg_masks": pad_stack(raw)})

    def _run(self, adapter: ModelAdapter, row: Any, cls: int, seed: int) -> torch.Tensor:
        """PyG's mask over the row's edges (E,) or nodes (N,) for class ``cls``."""
        from torch_geometric.explain import Explainer
        from torch_geometric.explain.algorithm import GNNExplainer as PyGGNNExplainer

        device = torch.device(getattr(adapter, "device", None) or "cpu")
        x, edge_index = row.x.to(device), row.edge_index.to(device)
        node_task = row.index is not None
        kind = adapter.output_kind
        regression = kind == "scores"
        edges = row.explain == "edges"
        explainer = Explainer(
            adapter.model, algorithm=PyGGNNExplainer(epochs=self.epochs, lr=self.lr,
                                                     **(self.coeffs or {})),
            explanation_type="model" if regression else "phenomenon",
            edge_mask_type="object" if edges else None,
            node_mask_type=None if edges else "object",
            model_config={"mode": "regression" if regression else "multiclass_classification",
                          "task_level": "node" if node_task else "graph",
                          "return_type": _RETURN_TYPES[kind]})
        kwargs = _model_kwargs(adapter, row, device)
        tgt = None
        if not regression:
            tgt = torch.full((row.n_nodes if node_task else 1,), cls, dtype=torch.long,
                             device=device)
        devices = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch.enable_grad():
            torch.manual_seed(seed)
            out = explainer(x, edge_index, target=tgt, index=row.index, **kwargs)
        mask: torch.Tensor = out.edge_mask if edges else out.node_mask
        return mask.detach().reshape(-1).float().cpu()


def _seed(rng: torch.Generator) -> int:
    """``random_state`` itself when ``rng`` is a fresh generator seeded with it (an int), else
    one int drawn from ``rng``."""
    fresh = torch.Generator().manual_seed(rng.initial_seed())
    if torch.equal(fresh.get_state(), rng.get_state()):
        return int(rng.initial_seed())
    return int_seed(rng)


def _model_kwargs(adapter: ModelAdapter, row: Any, device: torch.device) -> dict[str, Any]:
    """The keyword arguments the adapter passes the model besides (x, edge_index)."""
    call = getattr(adapter, "call", None)
    kwargs: dict[str, Any] = {}
    if call is None:
        return kwargs
    if row.index is None and call.batch:
        kwargs["batch"] = torch.zeros(row.n_nodes, dtype=torch.long, device=device)
    if call.edge_attr and row.edge_attr is not None:
        kwargs["edge_attr"] = row.edge_attr.to(device)
    return kwargs

