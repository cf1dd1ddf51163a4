"""Graph explanations to and from ``torch_geometric.explain.Explanation``.

:func:`to_pyg` puts one example's values on the user's graph as PyG masks, so PyG's
visualisation and metrics (``fidelity``, ``get_explanation_subgraph``) run on it;
:func:`from_pyg` turns any PyG explainer's masks into an :class:`~xai.Explanation` whose
feature spaces our metrics perturb.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch

from ._target import resolve_target
from ._validation import fmt_value
from .adapters import as_adapter
from .adapters._pyg import import_pyg
from .exceptions import InvalidExplanationError, InvalidInputError, InvalidParameterError
from .features.graph import GraphEdges, GraphNodes, GraphRow

if TYPE_CHECKING:
    from .explanation import Explanation

__all__ = ["from_pyg", "to_pyg", "unit_values"]


def to_pyg(exp: Explanation, index: int | None = None, *, output: int | str = 0) -> Any:
    """PyG explanation(s) of ``exp``; see :meth:`xai.Explanation.to_pyg`."""
    import_pyg("Explanation.to_pyg")
    kinds = sorted({type(fs).__name__ for fs in exp.features})
    if not exp.features or not all(isinstance(fs, GraphEdges | GraphNodes)
                                   for fs in exp.features):
        msg = (f"Explanation.to_pyg() needs a graph explanation (features GraphEdges or "
               f"GraphNodes, from a PyG model), but this {exp.modality} explanation's features are "
               f"{', '.join(kinds) or 'none'}. Use to_pandas() or values for other inputs.")
        raise InvalidExplanationError(msg)
    col = exp._output_column(output)
    if index is None:
        if len(exp) == 1:
            return _one(exp, 0, col)
        return [_one(exp, i, col) for i in range(len(exp))]
    ok = isinstance(index, numbers.Integral) and not isinstance(index, bool)
    if not ok or not -len(exp) <= int(index) < len(exp):
        msg = (f"The 'index' parameter of Explanation.to_pyg must be an example position in "
               f"{-len(exp)}..{len(exp) - 1} or None (every example). Got {fmt_value(index)} "
               "instead.")
        raise InvalidParameterError(msg, owner="Explanation.to_pyg", parameter="index",
                                    value=index)
    return _one(exp, int(index) % len(exp), col)


def _one(exp: Explanation, i: int, col: int) -> Any:
    """Example ``i``'s values of output ``col`` on the user's graph (node ids of the user's
    graph; for a node task, the neighbourhood the model ran on, other nodes isolated)."""
    from torch_geometric.explain import Explanation as PyGExplanation

    fs = exp.features[i]
    assert isinstance(fs, GraphEdges | GraphNodes)  # checked by to_pyg
    row = fs.row
    values = exp.values[i, col, : fs.n_features]
    x = row.x.new_zeros((row.source_nodes, *row.x.shape[1:]))
    x[row.node_ids] = row.x
    edge_index = row.node_ids[row.edge_index]
    cls = int(exp.target.indices[i, col])
    out: dict[str, Any] = {"x": x, "edge_index": edge_index}
    if isinstance(fs, GraphEdges):
        edge_mask = torch.zeros(row.n_edges)
        edge_mask[row.players] = values[row.units].float()
        out["edge_mask"] = edge_mask
    else:
        out["node_mask"] = fs.node_values(values.float()).unsqueeze(1)
    if row.index is None:
        out["target"] = torch.tensor([cls])
    else:
        target = torch.full((row.source_nodes,), -1, dtype=torch.long)
        target[row.position] = cls
        out["target"] = target
        out["index"] = torch.tensor([row.position])
    if row.edge_attr is not None:
        out["edge_attr"] = row.edge_attr
    pyg = PyGExplanation(**out)
    pyg._model_args = []  # noqa: SLF001  # what PyG's fidelity passes the model besides x, edges
    return pyg


def unit_values(row: GraphRow, edge_mask: torch.Tensor | None,
                node_mask: torch.Tensor | None) -> torch.Tensor:
    """One value per feature of ``row`` from masks over the row's own edges (E,) or nodes (N,)
    (the graph the model runs on, not the user's graph of a node task): an edge
    feature (the two directions of an undirected edge) gets the mean of its edges' masks."""
    if row.explain == "nodes":
        assert node_mask is not None
        return node_mask[row.players]
    assert edge_mask is not None
    total = torch.zeros(row.n_units, dtype=edge_mask.dtype).index_add_(
        0, row.units, edge_mask[row.players])
    return total / torch.bincount(row.units, minlength=row.n_units).clamp_min(1)


def from_pyg(cls: type[Explanation], pyg_explanation: Any, model: Any, *,
             explain: str | None = None, target: Any = None, algorithm: str | None = None,
             adapter_options: Mapping[str, Any] | None = None) -> Explanation:
    """Our Explanation of a PyG explanation; see :meth:`xai.Explanation.from_pyg`."""
    from .explanation import ModelInfo
    from .methods._base import _pad_values

    import_pyg("Explanation.from_pyg")
    edge_mask, node_mask, x, edge_index = _masks(pyg_explanation)
    if explain is None:
        explain = "edges" if edge_mask is not None else "nodes"
    if explain not in ("edges", "nodes"):
        msg = (f"The 'explain' parameter of Explanation.from_pyg must be 'edges', 'nodes' or "
               f"None (the mask the PyG explanation has). Got {fmt_value(explain)} instead.")
        raise InvalidParameterError(msg, owner="Explanation.from_pyg", parameter="explain",
                                    value=explain)
    if (edge_mask if explain == "edges" else node_mask) is None:
        have = "a node_mask" if node_mask is not None else "no mask"
        msg = (f"explain={explain!r} reads the PyG explanation's "
               f"{'edge_mask' if explain == 'edges' else 'node_mask'}, but it has {have}. Pass "
               f"explain={'nodes' if explain == 'edges' else 'edges'!r}, or an explanation "
               f"with that mask.")
        raise InvalidParameterError(msg, owner="Explanation.from_pyg", parameter="explain",
                                    value=explain)
    from torch_geometric.data import Data

    data = Data(x=x, edge_index=edge_index)
    edge_attr = pyg_explanation.get("edge_attr")
    if isinstance(edge_attr, torch.Tensor):
        data.edge_attr = edge_attr
    nodes = pyg_explanation.get("index")
    if isinstance(nodes, torch.Tensor):
        nodes = nodes.flatten().tolist()
    adapter = as_adapter(model, inputs=data).configure(
        **{**(adapter_options or {}), "explain": explain, "index": nodes})
    batch = adapter.prepare(data)
    features = adapter.features(batch)
    with adapter.session(), torch.no_grad():
        scores = adapter.predict(batch)
    tgt = resolve_target(adapter, scores, _pyg_target(pyg_explanation, target, nodes,
                                                        scores.shape[1]))
    rows = [fs.row for fs in features if isinstance(fs, GraphEdges | GraphNodes)]
    if len(rows) != len(features):
        msg = (f"Explanation.from_pyg runs the model through a graph adapter, but "
               f"{type(adapter).__name__} gave {type(features[0]).__name__} features. Pass the "
               "torch module the PyG explanation explains.")
        raise InvalidInputError(msg, parameter="model", value=type(model).__name__)
    values = [unit_values(row, None if edge_mask is None else edge_mask[row.edge_ids],
                          None if node_mask is None else node_mask[row.node_ids]).float().expand(
        tgt.indices.shape[1], -1).clone() for row in rows]
    packed, mask = _pad_values(values, [f.n_features for f in features])
    return cls(values=packed, feature_mask=mask, features=features, inputs=batch, target=tgt,
               predictions=tgt.explained_scores(), method=f"pyg:{algorithm}" if algorithm else
               "pyg", params={}, extras={}, model_info=ModelInfo.of(adapter),
               multiplies_by_inputs=False)


def _masks(pyg: Any) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor,
                              torch.Tensor]:
    """The PyG explanation's edge mask (E,), node mask summed over features (N,), x and
    edge_index, checked against each other."""
    x, edge_index = getattr(pyg, "x", None), getattr(pyg, "edge_index", None)
    if not isinstance(x, torch.Tensor) or not isinstance(edge_index, torch.Tensor) or not \
            hasattr(pyg, "get"):
        msg = ("The 'pyg_explanation' parameter of Explanation.from_pyg must be a "
               "torch_geometric.explain.Explanation with the graph it explains (x and "
               "edge_index, as Explainer(...)(x, edge_index) returns it). Got "
               f"{type(pyg).__name__} with x={type(x).__name__}, "
               f"edge_index={type(edge_index).__name__}.")
        raise InvalidInputError(msg, parameter="pyg_explanation", value=type(pyg).__name__)
    n, e = int(x.shape[0]), int(edge_index.shape[1]) if edge_index.dim() == 2 else -1
    edge_mask, node_mask = pyg.get("edge_mask"), pyg.get("node_mask")
    if edge_mask is None and node_mask is None:
        msg = ("The PyG explanation has neither an edge_mask nor a node_mask. Build it with "
               "edge_mask_type='object' or node_mask_type='object' (or 'attributes').")
        raise InvalidInputError(msg, parameter="pyg_explanation", value="no mask")
    if edge_mask is not None:
        edge_mask = edge_mask.detach().cpu().float()
        if edge_mask.dim() != 1 or edge_mask.shape[0] != e:
            msg = (f"The PyG explanation's edge_mask has shape {tuple(edge_mask.shape)}, but its "
                   f"edge_index has {e} edges: the mask needs one value per edge, shape ({e},).")
            raise InvalidInputError(msg, parameter="pyg_explanation.edge_mask",
                                    value=tuple(edge_mask.shape))
    if node_mask is not None:
        node_mask = node_mask.detach().cpu().float()
        if node_mask.dim() == 1:
            node_mask = node_mask.unsqueeze(1)
        if node_mask.dim() != 2 or node_mask.shape[0] != n:
            msg = (f"The PyG explanation's node_mask has shape {tuple(node_mask.shape)}, but x "
                   f"has {n} nodes: it needs one row per node, shape ({n}, 1) "
                   f"(node_mask_type='object') or ({n}, n_features) ('attributes'); a "
                   "'common_attributes' mask (1, n_features) has no value per node.")
            raise InvalidInputError(msg, parameter="pyg_explanation.node_mask",
                                    value=tuple(node_mask.shape))
        node_mask = node_mask.sum(1)
    return edge_mask, node_mask, x.detach().cpu(), edge_index.detach().cpu()


def _pyg_target(pyg: Any, target: Any, nodes: list[int] | None, n_out: int) -> Any:
    """``target`` when given; else the classes PyG explained (its int ``target``), else None
    (the predicted class)."""
    if target is not None:
        return target
    theirs = pyg.get("target")
    if not isinstance(theirs, torch.Tensor) or theirs.is_floating_point() or theirs.dim() != 1:
        return None
    picked = theirs if nodes is None else theirs[torch.tensor(nodes)] \
        if len(theirs) > max(nodes) else None
    if picked is None or len(picked) != (1 if nodes is None else len(nodes)) or not bool(
            ((picked >= 0) & (picked < n_out)).all()):
        return None
    return [int(c) for c in picked]
