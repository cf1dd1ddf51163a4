"""A graph explanation drawn on the graph: edge colour and width, or node colour, by value."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .._validation import Interval, check_param
from ..exceptions import InvalidExplanationError
from ..features.graph import GraphEdges, GraphNodes
from ._bar import _pyplot, _require, get_row

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from ..explanation import Explanation

__all__ = ["graph"]

#: Label of the collection drawing the feature edges (one line or arrow per edge feature).
EDGES_LABEL = "edge importance"
#: Label of the collection drawing the nodes.
NODES_LABEL = "nodes"
_HIGHLIGHT = "#ffb000"
_CONTEXT = "#c8c8c8"


def graph(
    exp: Explanation,
    *,
    index: int = 0,
    output: int | str = 0,
    layout_seed: int = 0,
    with_labels: bool = True,
    ax: Axes | None = None,
) -> Axes:
    """The graph of one example, coloured by its attributions.

    Edge features are drawn once each (an undirected edge as one line, a directed one as an
    arrow), coloured and widened by value; node features colour their nodes. Edges and nodes
    that are not features (the outer hop the model also sees in a node task) are light grey.
    The explained node of a node task has an orange ring. Colours run from white to red for
    values >= 0 (GNNExplainer's masks) and blue-white-red around 0 otherwise; a colour bar
    gives the scale. Nodes are placed by networkx's spring layout with ``seed=layout_seed``.

    Parameters
    ----------
    exp : Explanation
        An explanation of a graph model (features GraphEdges or GraphNodes).
    index : int, default=0
        Example (row of ``exp``) to plot.
    output : int or str, default=0
        Explained output column, by position or by output name.
    layout_seed : int, default=0
        Seed of the spring layout (the same seed gives the same drawing).
    with_labels : bool, default=True
        Write the user's node ids on the nodes.
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; a new figure is created when None.

    Returns
    -------
    matplotlib.axes.Axes
        The Axes drawn into; the feature edges are the collection labelled
        ``"edge importance"``, the nodes the one labelled ``"nodes"``.

    Raises
    ------
    InvalidExplanationError
        The explanation is not of a graph model.
    InvalidParameterError
        ``index``, ``output`` or ``layout_seed`` is out of range.
    MissingDependencyError
        matplotlib or networkx is not installed.
    """
    check_param("plot.graph", "layout_seed", layout_seed, [Interval(int, 0, None, closed="left")])
    row_values = get_row(exp, index, output, "plot.graph")
    fs = exp.features[index]
    if not isinstance(fs, GraphEdges | GraphNodes):
        msg = (f"plot.graph draws a graph explanation (features GraphEdges or GraphNodes), but "
               f"example {index} has {type(fs).__name__}. Use kind='bar'.")
        raise InvalidExplanationError(msg)
    plt = _pyplot()
    nx = _require("networkx", extra="plot")
    from matplotlib.colors import Normalize, TwoSlopeNorm

    row = fs.row
    values = row_values.values
    ids = row.node_ids.tolist()
    g = nx.Graph()
    g.add_nodes_from(ids)
    g.add_edges_from(row.node_ids[row.edge_index].T.tolist())
    pos = nx.spring_layout(g, seed=layout_seed)
    signed = bool((values < 0).any())
    top = float(np.abs(values).max()) if len(values) else 0.0
    top = top if top > 0 else 1.0
    norm: Any = TwoSlopeNorm(0.0, -top, top) if signed else Normalize(0.0, top)
    cmap = plt.get_cmap("RdBu_r" if signed else "Reds")
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 5.2), layout="constrained")
    edge_features = isinstance(fs, GraphEdges)
    units = row.unit_edges().tolist() if edge_features else []
    directed = edge_features and bool((np.bincount(row.units.numpy(),
                                                   minlength=row.n_units) == 1).any())
    context = {tuple(sorted(e)) for e in row.node_ids[row.edge_index].T.tolist()}
    if edge_features:
        context -= {tuple(sorted(e)) for e in units}
    if context:
        nx.draw_networkx_edges(g, pos, edgelist=sorted(context), edge_color=_CONTEXT, width=0.8,
                               style="dashed", ax=ax)
    if edge_features:
        order = np.argsort(np.abs(values), kind="stable")  # the strongest drawn last, on top
        drawn = nx.draw_networkx_edges(
            nx.DiGraph(units) if directed else g, pos, edgelist=[tuple(units[j]) for j in order],
            edge_color=[cmap(norm(values[j])) for j in order],
            width=[1.0 + 4.0 * abs(values[j]) / top for j in order], arrows=directed, ax=ax,
            node_size=300)
        if not isinstance(drawn, list):
            drawn.set_label(EDGES_LABEL)
        else:
            for patch in drawn:
                patch.set_label(EDGES_LABEL)
    node_colors: list[Any] = ["#ffffff"] * len(ids)
    if not edge_features:
        where = {int(n): k for k, n in enumerate(ids)}
        for k, p in enumerate(row.players.tolist()):
            node_colors[where[int(row.node_ids[p])]] = cmap(norm(values[k]))
        players = set(row.node_ids[row.players].tolist())
        node_colors = [c if n in players else _CONTEXT for c, n in zip(node_colors, ids,
                                                                         strict=True)]
    edgecolors = ["#333333"] * len(ids)
    linewidths = [1.0] * len(ids)
    if row.index is not None:
        centre = ids.index(row.position)
        edgecolors[centre], linewidths[centre] = _HIGHLIGHT, 3.5
    nodes = nx.draw_networkx_nodes(g, pos, nodelist=ids, node_color=node_colors,
                                   edgecolors=edgecolors, linewidths=linewidths, node_size=300,
                                   ax=ax)
    nodes.set_label(NODES_LABEL)
    if with_labels:  # white ids on dark nodes
        from matplotlib.colors import to_rgb

        for n, c in zip(ids, node_colors, strict=True):
            r, gr, b = to_rgb(c)
            x, y = pos[n]
            ax.text(float(x), float(y), str(n), ha="center", va="center", fontsize=8,
                    color="white" if 0.299 * r + 0.587 * gr + 0.114 * b < 0.5 else "black")
    mappable = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    what = "edge" if edge_features else "node"
    ax.figure.colorbar(mappable, ax=ax, shrink=0.8, label=f"{what} attribution")
    task = "" if row.index is None else f", node {row.position} (ringed)"
    ax.set_title(row_values.title() + task)
    ax.set_axis_off()
    return ax
