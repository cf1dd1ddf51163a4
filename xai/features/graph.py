"""Features of graphs: the edges or the nodes of one graph (or of a node's neighbourhood).

A graph example is a :class:`GraphRow`: the graph the model runs on, which of its edges or nodes
are the players, and the node whose output is explained (node tasks). The features are the
players: every other edge and node stays as it is in every perturbed copy. The row's
``"inputs"`` tensor says how much of each player is present (an edge mask, or the players'
node features), so the generic methods perturb it like any tensor: removal sets an edge's mask
to 0 (the edge is deleted, or its messages are zeroed) and a node's features to 0.

The module needs no ``torch_geometric``: the adapter builds PyG objects from these tensors.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch

from ..adapters._base import Batch
from .tensor import TensorFeatures

__all__ = ["GraphEdges", "GraphNodes", "GraphRow"]

#: How a removed edge leaves the graph: deleted from ``edge_index``; its messages multiplied by
#: the mask (PyG's explain mode, any MessagePassing layer); or the mask passed as the model's
#: ``edge_weight`` argument.
MaskMode = Literal["delete", "mask", "edge_weight"]


@dataclasses.dataclass(frozen=True, eq=False)
class GraphRow:
    """One graph example: the graph the model runs on and its players.

    Attributes
    ----------
    x : torch.Tensor (n_nodes, n_node_features)
        Node features.
    edge_index : torch.Tensor of int64 (2, n_edges)
        Directed edges (an undirected edge is stored in both directions).
    explain : {"edges", "nodes"}
        What the players are.
    players : torch.Tensor of int64
        Positions of the player edges (into ``edge_index``'s columns) or nodes (into ``x``).
    units : torch.Tensor of int64
        For edge players: the feature of each player edge (the two directions of an undirected
        edge share one); for node players, ``arange(len(players))``.
    index : int or None
        Node task: the explained node (a position in ``x``); None for a graph task.
    mask_mode : {"delete", "mask", "edge_weight"}
        How a removed edge leaves the graph (see :data:`MaskMode`).
    edge_attr : torch.Tensor (n_edges, ...) or None
        Edge features, kept aligned with the surviving edges.
    node_ids : torch.Tensor of int64 (n_nodes,)
        Each node's id in the graph the user passed (node tasks run on a neighbourhood).
    edge_ids : torch.Tensor of int64 (n_edges,)
        Each edge's column in the user's ``edge_index``.
    source_nodes, source_edges : int
        Size of the user's graph (to map explanations back onto it).
    position : int
        The graph's position among the inputs (graph tasks) or the explained node's id in the
        user's graph (node tasks).
    """

    x: torch.Tensor
    edge_index: torch.Tensor
    explain: Literal["edges", "nodes"]
    players: torch.Tensor
    units: torch.Tensor
    index: int | None
    mask_mode: MaskMode
    edge_attr: torch.Tensor | None
    node_ids: torch.Tensor
    edge_ids: torch.Tensor
    source_nodes: int
    source_edges: int
    position: int

    @property
    def n_nodes(self) -> int:
        return int(self.x.shape[0])

    @property
    def n_edges(self) -> int:
        return int(self.edge_index.shape[1])

    @property
    def n_units(self) -> int:
        return int(self.units.max()) + 1 if self.units.numel() else 0

    def present(self) -> torch.Tensor:
        """The row's ``"inputs"`` with every player present: an all-ones edge mask (one entry
        per player edge), or the player nodes' features."""
        if self.explain == "edges":
            return torch.ones(len(self.players), dtype=self.x.dtype)
        return self.x[self.players]

    def unit_edges(self) -> torch.Tensor:
        """(n_units, 2): one (source, target) pair per edge feature, in the user's node ids
        (the first direction met for an undirected edge)."""
        first = torch.full((self.n_units,), -1, dtype=torch.long)
        order = torch.arange(len(self.units) - 1, -1, -1)
        first[self.units[order]] = order  # the last write wins: the first occurrence
        ends = self.edge_index[:, self.players[first]]
        return self.node_ids[ends].T

    def feature_names(self) -> tuple[str, ...]:
        if self.explain == "nodes":
            return tuple(f"node {int(self.node_ids[p])}" for p in self.players)
        pairs = self.unit_edges().tolist()
        counts = torch.bincount(self.units, minlength=self.n_units).tolist()
        return tuple(f"{u}{'—' if c == 2 else '→'}{v}" for (u, v), c in zip(pairs, counts,
                                                                              strict=True))


class _GraphFeatures(TensorFeatures):
    """The players of one :class:`GraphRow` as features (a TensorFeatures of the row's
    ``"inputs"`` whose removed value is 0, with the graph attached to every masked copy)."""

    def __init__(self, row: GraphRow, *, feature_mask: torch.Tensor,
                 names: tuple[str, ...] | None = None) -> None:
        x = row.present()
        super().__init__(x, torch.zeros_like(x), feature_mask=feature_mask,
                         names=names if names is not None else row.feature_names(),
                         context=Batch({}, graphs=(row,)))
        self.row = row

    def original(self) -> Batch:
        return Batch({"inputs": self.x.unsqueeze(0).clone()}, graphs=(self.row,))


class GraphEdges(_GraphFeatures):
    """The edges of one graph as features; an undirected edge (both directions) is one feature.

    Removing an edge deletes it from ``edge_index`` (``mask_mode="delete"``, the default), or
    zeroes its messages (``"mask"``, PyG's explain mode) or its ``edge_weight``. Nodes stay,
    isolated if need be. Node tasks: only the edges of the explained node's k-hop neighbourhood
    are features.
    """

    def __init__(self, row: GraphRow) -> None:
        super().__init__(row, feature_mask=row.units)

    def edge_values(self, values: torch.Tensor) -> torch.Tensor:
        """Feature values (..., n_features) as a value per edge of the user's graph (..., E):
        both directions of an undirected edge get its value, edges that are not features 0."""
        out = torch.zeros(*values.shape[:-1], self.row.source_edges, dtype=values.dtype)
        out[..., self.row.edge_ids[self.row.players]] = values[..., self.row.units]
        return out

    def __repr__(self) -> str:
        return (f"GraphEdges(n_features={self.n_features}, n_nodes={self.row.n_nodes}, "
                f"n_edges={self.row.n_edges})")


class GraphNodes(_GraphFeatures):
    """The nodes of one graph as features: removing a node sets its features to 0 (PyG's
    node mask), leaving its edges in place. Node tasks: the nodes of the explained node's
    k-hop neighbourhood."""

    def __init__(self, row: GraphRow) -> None:
        width = int(row.x.shape[1]) if row.x.dim() > 1 else 1
        ids = torch.arange(len(row.players)).repeat_interleave(width)
        super().__init__(row, feature_mask=ids.reshape(row.present().shape))

    def node_values(self, values: torch.Tensor) -> torch.Tensor:
        """Feature values (..., n_features) as a value per node of the user's graph (..., N)."""
        out = torch.zeros(*values.shape[:-1], self.row.source_nodes, dtype=values.dtype)
        out[..., self.row.node_ids[self.row.players]] = values
        return out

    def __repr__(self) -> str:
        return f"GraphNodes(n_features={self.n_features}, n_nodes={self.row.n_nodes})"
