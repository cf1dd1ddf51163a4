"""Adapter for PyTorch Geometric models: ``model(x, edge_index, ...)`` on graph or node tasks."""

from __future__ import annotations

import dataclasses
import inspect
import numbers
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Literal, cast

import torch

from .._capabilities import OUTPUT_KINDS, Capability, Modality, OutputKind
from .._validation import Options, check_param, fmt_value
from ..exceptions import InvalidInputError, InvalidParameterError, MissingDependencyError
from ..features.graph import GraphEdges, GraphNodes, GraphRow, MaskMode
from ._base import Batch, ModelAdapter
from ._calls import as_scores, describe_call, model_call, resolve_device

__all__ = ["PyGAdapter", "import_pyg", "is_pyg_data", "is_pyg_model"]

_EXTRA = "pip install 'posthoc-xai[graph]'"


def import_pyg(what: str) -> Any:
    """``torch_geometric``, or a MissingDependencyError (an ImportError) that names the extra
    to install."""
    try:
        import torch_geometric
    except ImportError as err:
        msg = f"{what} needs torch_geometric, which is not installed. Install it with: {_EXTRA}"
        raise MissingDependencyError(msg) from err
    return torch_geometric


def _is_from(obj: Any, class_name: str) -> bool:
    return any(c.__name__ == class_name and c.__module__.split(".")[0] == "torch_geometric"
               for c in type(obj).__mro__)


def is_pyg_model(obj: Any) -> bool:
    """A torch module with at least one PyG ``MessagePassing`` layer."""
    return isinstance(obj, torch.nn.Module) and any(_is_from(m, "MessagePassing")
                                                    for m in obj.modules())


def is_pyg_data(obj: Any) -> bool:
    """A PyG ``Data``/``Batch``, a ``Dataset``, or a non-empty list of ``Data``."""
    if _is_from(obj, "BaseData") or _is_from(obj, "Dataset"):
        return True
    return isinstance(obj, list | tuple) and len(obj) > 0 and all(_is_from(d, "BaseData")
                                                                  for d in obj)


@dataclasses.dataclass(frozen=True)
class _Call:
    """What the model's forward takes besides ``(x, edge_index)``."""

    batch: bool
    edge_attr: bool
    edge_weight: bool
    takes_edges: bool

    @classmethod
    def of(cls, module: torch.nn.Module) -> _Call:
        params = list(inspect.signature(module.forward).parameters.values())
        names = {p.name for p in params}
        var = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
        positional = [p for p in params if p.kind in (inspect.Parameter.POSITIONAL_ONLY,
                                                      inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        takes_edges = (len(positional) >= 2 or "edge_index" in names or any(
            p.kind is inspect.Parameter.VAR_POSITIONAL for p in params))
        return cls("batch" in names or var, "edge_attr" in names, "edge_weight" in names,
                   takes_edges)


class PyGAdapter(ModelAdapter):
    """A PyTorch Geometric model called as ``model(x, edge_index, ...)``, for graph or node tasks.

    Each example is a graph (graph task) or a node of a graph (node task, ``index=``). The
    players are its edges (``explain="edges"``) or its nodes (``explain="nodes"``); for a node
    task, those of the node's k-hop neighbourhood. The model runs on many perturbed copies at
    once, collated into one disjoint graph per call (``batch=`` passed to graph-task models that
    take it).

    Parameters
    ----------
    model : torch.nn.Module
        Called as ``model(x, edge_index)``, plus ``batch=`` (graph tasks: the graph of each
        node; without that parameter, one call per graph), ``edge_attr=`` and ``edge_weight=``
        when the forward takes them and the data has them. Returns (n_graphs, n_classes) for
        graph tasks, (n_nodes, n_classes) for node tasks.
    explain : {"edges", "nodes"}, default="edges"
        The players: edges (an undirected edge, stored in both directions, is one feature), or
        nodes (removed by setting their features to 0).
    index : int, sequence of int, int tensor or "all", optional
        Node task: the node(s) to explain, one example each ("all": every node). None: a graph task, one example
        per graph.
    k_hop : int, optional
        Node tasks: the radius of the neighbourhood whose edges or nodes are the players; None
        counts the model's MessagePassing layers. The model runs on the (L + 1)-hop
        neighbourhood, L the larger of k_hop and the number of layers, so its output at the
        node is the whole graph's (degree-normalised layers such as GCN see the same degrees).
    mask_mode : {"delete", "mask", "edge_weight"}, default="delete"
        How a removed edge leaves the graph: deleted from ``edge_index``; its messages
        multiplied by 0 (PyG's explain mode, the convention of ``torch_geometric.explain``); or
        a 0 in the ``edge_weight`` the model takes. Gradient methods always pass a continuous
        mask (through messages, or ``edge_weight`` with that mode).
    undirected : bool or "auto", default="auto"
        Whether the two directions of an edge are one feature. "auto": when the graph is
        undirected (every edge stored in both directions). True on a directed graph is an
        InvalidParameterError.
    output_kind : "auto" or one of :data:`xai.OutputKind`, default="auto"
        What the model returns; "auto" reads it from the first scores (log-probabilities when
        every row's exp sums to 1, probabilities when rows in [0, 1] sum to 1, logits
        otherwise; "scores" for one output).
    output_names : sequence of str, optional
        Class labels.
    device : torch.device or str, optional
    """

    capabilities: ClassVar[Capability] = Capability.FORWARD | Capability.GRADIENTS
    modality: Modality = "graph"
    #: Options that :func:`xai.explain` accepts as keyword arguments for this adapter.
    call_options: ClassVar[tuple[str, ...]] = ("explain", "index", "k_hop", "mask_mode",
                                               "undirected")

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        explain: Literal["edges", "nodes"] = "edges",
        index: Any = None,
        k_hop: int | None = None,
        mask_mode: MaskMode = "delete",
        undirected: bool | Literal["auto"] = "auto",
        output_kind: OutputKind | Literal["auto"] = "auto",
        output_names: Sequence[str] | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        import_pyg("PyGAdapter")
        owner = type(self).__name__
        check_param(owner, "explain", explain, [Options({"edges", "nodes"})])
        check_param(owner, "mask_mode", mask_mode, [Options({"delete", "mask", "edge_weight"})])
        check_param(owner, "output_kind", output_kind, [Options({"auto", *OUTPUT_KINDS})])
        if undirected not in (True, False, "auto"):
            msg = (f"The 'undirected' parameter of {owner} must be True, False or 'auto'. Got "
                   f"{fmt_value(undirected)} instead.")
            raise InvalidParameterError(msg, owner=owner, parameter="undirected",
                                        value=undirected)
        if k_hop is not None and (not isinstance(k_hop, numbers.Integral)
                                  or isinstance(k_hop, bool) or k_hop < 0):
            msg = (f"The 'k_hop' parameter of {owner} must be an int in the range [0, inf) or "
                   f"None (the number of message-passing layers). Got {fmt_value(k_hop)} "
                   "instead.")
            raise InvalidParameterError(msg, owner=owner, parameter="k_hop", value=k_hop)
        self._model = model
        self.call = _Call.of(model)
        if explain == "edges" and not self.call.takes_edges:
            msg = (f"explain='edges' attributes the edges, but {type(model).__name__}.forward "
                   "takes no edge_index (it has fewer than two arguments). Use "
                   "explain='nodes', or a model called as model(x, edge_index, ...).")
            raise InvalidParameterError(msg, owner=owner, parameter="explain", value=explain)
        if mask_mode == "edge_weight" and not self.call.edge_weight:
            msg = (f"mask_mode='edge_weight' passes the edge mask as the model's edge_weight, "
                   f"but {type(model).__name__}.forward has no edge_weight parameter. Use "
                   "mask_mode='delete' or 'mask'.")
            raise InvalidParameterError(msg, owner=owner, parameter="mask_mode", value=mask_mode)
        self.explain: Literal["edges", "nodes"] = explain
        self.index = index
        self.k_hop = None if k_hop is None else int(k_hop)
        self.mask_mode: MaskMode = mask_mode
        self.undirected = undirected
        self._output_kind = output_kind
        self._output_names = tuple(output_names) if output_names is not None else None
        self.device = resolve_device(device, model, owner=owner)

    # -- configuration -----------------------------------------------------------------------
    def configure(self, **options: Any) -> PyGAdapter:
        """A copy with ``options`` (those of :attr:`call_options`) changed."""
        current = {"explain": self.explain, "index": self.index, "k_hop": self.k_hop,
                   "mask_mode": self.mask_mode, "undirected": self.undirected,
                   "output_kind": self._output_kind, "output_names": self._output_names,
                   "device": self.device}
        return PyGAdapter(self._model, **{**current, **options})

    @property
    def output_kind(self) -> OutputKind:  # type: ignore[override]  # resolved on first call
        kind = self._output_kind
        return "scores" if kind == "auto" else kind

    def output_names(self) -> tuple[str, ...] | None:
        return self._output_names

    def is_classifier(self) -> bool:
        width = getattr(self, "_n_outputs", None)
        return self._output_names is not None or (width is not None and width > 1)

    def message_passing_layers(self) -> int:
        """The number of PyG MessagePassing layers of the model (the default ``k_hop``)."""
        return sum(1 for m in self._model.modules() if _is_from(m, "MessagePassing"))

    # -- inputs --------------------------------------------------------------------------------
    def prepare(self, inputs: Any) -> Batch:
        graphs = _as_graphs(inputs)
        rows: list[GraphRow] = []
        if self.index is None:
            for g, data in enumerate(graphs):
                x, edge_index, edge_attr = _check_graph(data, g)
                rows.append(self._graph_row(x, edge_index, edge_attr, g))
        else:
            if len(graphs) != 1:
                msg = (f"'index' picks nodes of one graph, but the inputs hold {len(graphs)} "
                       "graphs. Pass one Data for a node task, or drop 'index' for a graph "
                       "task.")
                raise InvalidParameterError(msg, owner="explain", parameter="index",
                                            value=self.index)
            x, edge_index, edge_attr = _check_graph(graphs[0], 0)
            for node in _check_index(self.index, int(x.shape[0])):
                rows.append(self._node_row(x, edge_index, edge_attr, node))
        values = [r.present() for r in rows]
        width = max(len(v) for v in values)
        inputs_ = torch.zeros(len(rows), width, *values[0].shape[1:], dtype=values[0].dtype)
        for i, v in enumerate(values):
            inputs_[i, :len(v)] = v
        return Batch({"inputs": inputs_}, graphs=tuple(rows))

    def _pairs(self, edge_index: torch.Tensor, n_nodes: int, position: int) -> bool:
        """Whether the two directions of an edge form one feature (checks ``undirected``)."""
        from torch_geometric.utils import is_undirected

        symmetric = bool(is_undirected(edge_index, num_nodes=n_nodes))
        if self.undirected is True and not symmetric:
            msg = (f"undirected=True pairs the two directions of every edge, but graph "
                   f"{position} is directed (some edge is stored in one direction only). Pass "
                   "undirected=False (each direction a feature), or make the graph undirected "
                   "with torch_geometric.utils.to_undirected.")
            raise InvalidParameterError(msg, owner="explain", parameter="undirected",
                                        value=True)
        return symmetric if self.undirected == "auto" else bool(self.undirected)

    def _graph_row(self, x: torch.Tensor, edge_index: torch.Tensor,
                   edge_attr: torch.Tensor | None, position: int) -> GraphRow:
        n, e = int(x.shape[0]), int(edge_index.shape[1])
        players = torch.arange(e) if self.explain == "edges" else torch.arange(n)
        return GraphRow(
            x=x, edge_index=edge_index, explain=self.explain, players=players,
            units=self._units(edge_index, players, n, position), index=None,
            mask_mode=self.mask_mode, edge_attr=edge_attr, node_ids=torch.arange(n),
            edge_ids=torch.arange(e), source_nodes=n, source_edges=e, position=position)

    def _node_row(self, x: torch.Tensor, edge_index: torch.Tensor,
                  edge_attr: torch.Tensor | None, node: int) -> GraphRow:
        from torch_geometric.utils import k_hop_subgraph

        n = int(x.shape[0])
        layers = self.message_passing_layers()
        k = layers if self.k_hop is None else self.k_hop
        inner, _, _, inner_edges = k_hop_subgraph(node, k, edge_index, num_nodes=n)
        subset, sub_index, mapping, edge_mask = k_hop_subgraph(  # all the model can see
            node, max(k, layers) + 1, edge_index, relabel_nodes=True, num_nodes=n)
        edge_ids = edge_mask.nonzero().flatten()
        in_inner = torch.zeros(n, dtype=torch.bool)
        in_inner[inner] = True
        if self.explain == "edges":
            players = inner_edges[edge_ids].nonzero().flatten()
        else:
            players = in_inner[subset].nonzero().flatten()
        return GraphRow(
            x=x[subset], edge_index=sub_index, explain=self.explain, players=players,
            units=self._units(sub_index, players, len(subset), node), index=int(mapping[0]),
            mask_mode=self.mask_mode,
            edge_attr=None if edge_attr is None else edge_attr[edge_ids], node_ids=subset,
            edge_ids=edge_ids, source_nodes=n, source_edges=int(edge_index.shape[1]),
            position=node)

    def _units(self, edge_index: torch.Tensor, players: torch.Tensor, n_nodes: int,
               position: int) -> torch.Tensor:
        """The feature of each player: for undirected edges, one per unordered pair, numbered
        in order of first appearance."""
        if self.explain == "nodes" or not self._pairs(edge_index, n_nodes, position):
            return torch.arange(len(players))
        ends = edge_index[:, players]
        key = torch.minimum(ends[0], ends[1]) * n_nodes + torch.maximum(ends[0], ends[1])
        _, inverse = torch.unique(key, return_inverse=True)
        first = torch.full((int(inverse.max()) + 1 if len(inverse) else 0,), len(inverse))
        first = first.scatter_reduce(0, inverse, torch.arange(len(inverse)), reduce="amin")
        rank = torch.empty_like(first)
        rank[first.argsort()] = torch.arange(len(first))
        return rank[inverse]

    def features(self, batch: Batch, *, granularity: str = "auto", baseline: Any = "auto",
                 owner: str = "explain", groups: Any = None) -> tuple[Any, ...]:
        zero = isinstance(baseline, int | float) and not isinstance(baseline, bool) and (
            baseline == 0)
        if not (isinstance(baseline, str) and baseline in ("auto", "zeros")) and not zero:
            msg = (f"The 'baseline' parameter of {owner} must be 'auto' for graphs (a removed "
                   f"edge is deleted, a removed node's features are 0). Got "
                   f"{fmt_value(baseline)} instead.")
            raise InvalidParameterError(msg, owner=owner, parameter="baseline", value=baseline)
        if groups is not None:
            msg = (f"The 'feature_groups' parameter of {owner} does not apply to graphs: every "
                   "edge (or node) is one feature. Leave it at None.")
            raise InvalidParameterError(msg, owner=owner, parameter="feature_groups",
                                        value=type(groups).__name__)
        graphs = batch.graphs or ()
        return tuple(GraphEdges(r) if r.explain == "edges" else GraphNodes(r) for r in graphs)

    # -- running the model -----------------------------------------------------------------------
    def predict(self, inputs: Batch) -> torch.Tensor:
        return self._run(inputs.inputs, inputs.graphs or (), soft=False)

    def path_forward(self, batch: Batch, n_inputs: int
                     ) -> tuple[Callable[..., torch.Tensor], tuple[torch.Tensor, ...]]:
        """Differentiable forward for gradient methods: ``forward(inputs, rows)``, where
        ``rows`` are row positions in ``batch`` (captum repeats them along the path) and an edge
        mask enters the messages continuously."""
        graphs = batch.graphs or ()

        def forward(values: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
            return self._run(values, [graphs[int(r)] for r in rows], soft=True)

        return forward, (torch.arange(len(batch)),)

    def _run(self, values: torch.Tensor, rows: Sequence[GraphRow], *, soft: bool
             ) -> torch.Tensor:
        xs, edges, attrs, weights, centres, offset = [], [], [], [], [], 0
        for r, row in enumerate(rows):
            x, edge_index, edge_attr, weight = row.x, row.edge_index, row.edge_attr, None
            if row.explain == "nodes":
                x = x.index_put((row.players,), values[r, :len(row.players)].to(x.dtype))
            else:
                mask = torch.ones(row.n_edges, dtype=values.dtype).index_put(
                    (row.players,), values[r, :len(row.players)])
                if soft or row.mask_mode != "delete":
                    weight = mask
                else:
                    keep = mask > 0.5
                    edge_index = edge_index[:, keep]
                    edge_attr = None if edge_attr is None else edge_attr[keep]
            xs.append(x)
            edges.append(edge_index + offset)
            attrs.append(edge_attr)
            weights.append(weight if weight is not None else
                           torch.ones(edge_index.shape[1], dtype=values.dtype))
            centres.append(None if row.index is None else offset + row.index)
            offset += int(x.shape[0])
        weighted = soft or any(r.mask_mode != "delete" for r in rows)
        weight_mode = "edge_weight" if any(r.mask_mode == "edge_weight" for r in rows) else "mask"
        sizes = [int(x.shape[0]) for x in xs]
        node_task = bool(rows) and rows[0].index is not None
        if node_task or self.call.batch or len(rows) == 1:
            out = self._forward(xs, edges, attrs, weights if weighted else None, weight_mode,
                                sizes, graph_task=not node_task)
        else:  # a graph-task model without a batch argument: one graph per call
            out = torch.cat([self._forward([xs[r]], [edges[r] - sum(sizes[:r])], [attrs[r]],
                                           [weights[r]] if weighted else None, weight_mode,
                                           [sizes[r]], graph_task=True)
                             for r in range(len(rows))])
        if node_task:
            out = out[torch.tensor(cast(list[int], centres))]
        scores = as_scores(out, len(rows), model=type(self._model).__name__,
                           adapter=type(self).__name__, noun="model")
        self._resolve_output_kind(scores)
        return self.same_outputs(scores, model=type(self._model).__name__)

    def _forward(self, xs: list[torch.Tensor], edges: list[torch.Tensor],
                 attrs: list[torch.Tensor | None], weights: list[torch.Tensor] | None,
                 weight_mode: str, sizes: list[int], *, graph_task: bool) -> torch.Tensor:
        from torch_geometric.explain.algorithm.utils import clear_masks, set_masks

        dev = self.device
        x = torch.cat(xs).to(dev)
        edge_index = torch.cat(edges, dim=1).to(dev)
        kwargs: dict[str, Any] = {}
        if graph_task and self.call.batch:
            kwargs["batch"] = torch.repeat_interleave(torch.arange(len(sizes)),
                                                      torch.tensor(sizes)).to(dev)
        if self.call.edge_attr and attrs and attrs[0] is not None:
            kwargs["edge_attr"] = torch.cat(cast(list[torch.Tensor], attrs)).to(dev)
        mask = None if weights is None else torch.cat(weights).to(dev)
        if mask is not None and weight_mode == "edge_weight":
            kwargs["edge_weight"] = mask
            mask = None
        name = type(self._model).__name__
        with model_call(name, type(self).__name__, describe_call(x),
                        hint="The model must take (x, edge_index, ...) and return one row of "
                             "scores per graph (graph task) or per node (node task)."):
            if mask is None:
                out = self._model(x, edge_index, **kwargs)
            else:
                set_masks(self._model, mask, edge_index, apply_sigmoid=False)
                try:
                    out = self._model(x, edge_index, **kwargs)
                finally:
                    clear_masks(self._model)
        if not isinstance(out, torch.Tensor):
            return out  # type: ignore[no-any-return]  # as_scores names the problem
        expected = len(sizes) if graph_task else int(x.shape[0])
        if out.dim() >= 1 and out.shape[0] != expected:
            what = ("one row per graph (pool the node embeddings with the 'batch' argument, "
                    "e.g. global_mean_pool(h, batch))" if graph_task else "one row per node")
            msg = (f"{name} returned {out.shape[0]} rows for {len(sizes)} graph(s) with "
                   f"{int(x.shape[0])} nodes in all; a {'graph' if graph_task else 'node'} "
                   f"task needs {what}. For a node task, pass index=<node id>.")
            raise InvalidInputError(msg, parameter="model output", value=tuple(out.shape))
        return out.float().cpu()

    def _resolve_output_kind(self, scores: torch.Tensor) -> None:
        if self._output_kind != "auto" or scores.shape[0] == 0:
            return
        with torch.no_grad():
            s = scores.detach()
            if s.shape[1] == 1:
                kind: OutputKind = "scores"
            elif bool((s <= 1e-6).all()) and torch.allclose(s.exp().sum(-1), torch.ones(
                    len(s)), atol=1e-4):
                kind = "log_probabilities"
            elif bool(((s >= 0) & (s <= 1)).all()) and torch.allclose(
                    s.sum(-1), torch.ones(len(s)), atol=1e-4):
                kind = "probabilities"
            else:
                kind = "logits"
        self._output_kind = kind

    def describe(self) -> dict[str, str]:
        out = {"adapter": type(self).__name__, "model": type(self._model).__name__,
               "explain": self.explain, "mask_mode": self.mask_mode}
        if self.index is not None:
            out["k_hop"] = str(self.message_passing_layers() if self.k_hop is None
                               else self.k_hop)
        return out


def _as_graphs(inputs: Any) -> list[Any]:
    if _is_from(inputs, "Batch") and hasattr(inputs, "to_data_list"):
        return list(inputs.to_data_list())
    if _is_from(inputs, "BaseData"):
        return [inputs]
    if _is_from(inputs, "Dataset"):
        return [inputs[i] for i in range(len(inputs))]
    if isinstance(inputs, list | tuple) and inputs and all(_is_from(d, "BaseData")
                                                           for d in inputs):
        return list(inputs)
    msg = ("A graph model takes a torch_geometric Data (one graph), a Batch, a list of Data or "
           f"a Dataset. Got {type(inputs).__name__} instead.")
    raise InvalidInputError(msg, parameter="inputs", value=type(inputs).__name__)


def _check_graph(data: Any, position: int
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    where = "The graph" if position == 0 else f"Graph {position}"
    edge_index = getattr(data, "edge_index", None)
    if edge_index is None:
        msg = (f"{where} has no edge_index. A Data needs edge_index, a (2, n_edges) int64 "
               "tensor of source and target nodes: Data(x=x, edge_index=edge_index).")
        raise InvalidInputError(msg, parameter="inputs", value="edge_index=None")
    x = getattr(data, "x", None)
    if not isinstance(x, torch.Tensor):
        msg = (f"{where} has no node features x. Pass Data(x=..., edge_index=...) with x a "
               "(n_nodes, n_features) tensor (e.g. torch.ones(n_nodes, 1) for a featureless "
               "graph).")
        raise InvalidInputError(msg, parameter="inputs", value="x=None")
    if not isinstance(edge_index, torch.Tensor) or edge_index.dim() != 2 or (
            edge_index.shape[0] != 2) or edge_index.is_floating_point():
        shape = tuple(edge_index.shape) if isinstance(edge_index, torch.Tensor) else None
        msg = (f"{where}'s edge_index must be a (2, n_edges) integer tensor; got "
               f"{type(edge_index).__name__} of shape {shape}.")
        raise InvalidInputError(msg, parameter="inputs", value=shape)
    edge_index = edge_index.long().cpu()
    n = int(x.shape[0])
    if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= n):
        msg = (f"{where}'s edge_index refers to node {int(edge_index.max())}, but x has {n} "
               "nodes (ids 0..n_nodes-1).")
        raise InvalidInputError(msg, parameter="inputs", value=int(edge_index.max()))
    x = x.cpu()
    if not x.is_floating_point():
        x = x.float()
    edge_attr = getattr(data, "edge_attr", None)
    return x, edge_index, (edge_attr.cpu() if isinstance(edge_attr, torch.Tensor) else None)


def _check_index(index: Any, n_nodes: int) -> list[int]:
    if isinstance(index, str) and index == "all":
        return list(range(n_nodes))
    if isinstance(index, torch.Tensor):
        index = index.flatten().tolist()
    if hasattr(index, "tolist") and not isinstance(index, numbers.Integral):
        index = index.tolist()
    nodes = [index] if isinstance(index, numbers.Integral) else index
    ok = isinstance(nodes, Sequence) and len(nodes) > 0 and all(
        isinstance(i, numbers.Integral) and not isinstance(i, bool) for i in nodes)
    if not ok:
        msg = ("The 'index' parameter of explain must be a node id (int), a sequence of them, "
               f"an int tensor or 'all'. Got {fmt_value(index)} instead.")
        raise InvalidParameterError(msg, owner="explain", parameter="index", value=index)
    bad = [int(i) for i in nodes if not 0 <= int(i) < n_nodes]
    if bad:
        msg = (f"The 'index' parameter of explain names node {bad[0]}, outside the graph, "
               f"which has {n_nodes} nodes (ids 0..{n_nodes - 1}).")
        raise InvalidParameterError(msg, owner="explain", parameter="index", value=bad[0],
                                    constraint=f"0 <= index < {n_nodes}")
    return [int(i) for i in nodes]
