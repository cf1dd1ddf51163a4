"""GNNExplainer as a method, graph explanations to and from PyG, their plot and save/load.

Cross-checks against PyG on the same inputs: our gnnexplainer values are PyG's own
``Explainer(model, GNNExplainer(...))`` masks with the same seed, and PyG's ``fidelity`` and
masked predictions give the same on ``exp.to_pyg()`` as on PyG's own explanation of those masks.
"""

from __future__ import annotations

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

pyg = pytest.importorskip("torch_geometric")

from torch_geometric.data import Data  # noqa: E402
from torch_geometric.explain import Explainer, GNNExplainer  # noqa: E402
from torch_geometric.explain import Explanation as PyGExplanation  # noqa: E402
from torch_geometric.explain.metric import fidelity  # noqa: E402
from torch_geometric.nn import GCNConv, global_mean_pool  # noqa: E402
from torch_geometric.utils import k_hop_subgraph, to_undirected  # noqa: E402

import metrics  # noqa: E402
import xai  # noqa: E402
from xai.adapters import as_adapter  # noqa: E402
from xai.exceptions import (  # noqa: E402
    InvalidExplanationError,
    InvalidInputError,
    InvalidParameterError,
)
from xai.features import GraphEdges  # noqa: E402

EPOCHS = 40


class GraphGCN(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2 = GCNConv(3, 8), GCNConv(8, 8)
        self.lin = torch.nn.Linear(8, 3)

    def forward(self, x, edge_index, batch=None):
        h = self.conv2(self.conv1(x, edge_index).relu(), edge_index).relu()
        if batch is None:
            batch = torch.zeros(x.shape[0], dtype=torch.long)
        return self.lin(global_mean_pool(h, batch))


class NodeGCN(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2 = GCNConv(3, 8), GCNConv(8, 3)

    def forward(self, x, edge_index):
        return self.conv2(self.conv1(x, edge_index).relu(), edge_index)


def _model(cls, seed):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return cls().eval()


@pytest.fixture(scope="module")
def graph_model():
    return _model(GraphGCN, 0)


@pytest.fixture(scope="module")
def node_model():
    return _model(NodeGCN, 1)


@pytest.fixture(scope="module")
def random_graph():
    g = torch.Generator().manual_seed(1)
    ei = to_undirected(torch.randint(0, 14, (2, 24), generator=g))
    ei = ei[:, ei[0] != ei[1]]
    return Data(x=torch.randn(14, 3, generator=g), edge_index=ei)


@pytest.fixture(scope="module")
def ring():
    """A 24-node ring with chords every 6 nodes: a node's 3-hop neighbourhood is a part of it."""
    n = 24
    src = torch.arange(n)
    ei = torch.cat([torch.stack([src, (src + 1) % n]),
                    torch.tensor([[0, 6, 12, 18], [3, 9, 15, 21]])], 1)
    g = torch.Generator().manual_seed(2)
    return Data(x=torch.randn(n, 3, generator=g), edge_index=to_undirected(ei))


def _pyg_explainer(model, *, task_level, edges=True, explanation_type="model", epochs=EPOCHS):
    return Explainer(model, GNNExplainer(epochs=epochs), explanation_type=explanation_type,
                     edge_mask_type="object" if edges else None,
                     node_mask_type=None if edges else "object",
                     model_config={"mode": "multiclass_classification", "task_level": task_level,
                                   "return_type": "raw"})


def _seeded(explainer, seed, *args, **kwargs):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return explainer(*args, **kwargs)


def _pair_mean(row, edge_mask):
    """Our value of each edge feature from a mask over the row's edges, computed here by hand:
    the mean over the directions stored for that unordered pair."""
    ends = row.edge_index[:, row.players]
    out = torch.zeros(row.n_units)
    for u in range(row.n_units):
        cols = (row.units == u).nonzero().flatten()
        a, b = ends[:, cols[0]].tolist()
        both = [j for j in range(len(row.players))
                if sorted(ends[:, j].tolist()) == sorted([a, b])]
        out[u] = edge_mask[row.players[both]].mean()
    return out


# -- gnnexplainer against PyG ----------------------------------------------------------------

def test_gnnexplainer_graph_task_equals_pyg_explainer_with_the_same_seed(graph_model,
                                                                         random_graph):
    exp = xai.explain(graph_model, random_graph, method="gnnexplainer", epochs=EPOCHS,
                      random_state=3)
    theirs = _seeded(_pyg_explainer(graph_model, task_level="graph"), 3, random_graph.x,
                     random_graph.edge_index)
    row = exp.features[0].row
    assert exp.method == "gnnexplainer"
    assert not exp.multiplies_by_inputs
    assert exp.n_features == random_graph.edge_index.shape[1] // 2  # undirected: one per pair
    torch.testing.assert_close(exp.extras["pyg_masks"][0, 0], theirs.edge_mask, rtol=0, atol=0)
    torch.testing.assert_close(exp.values[0, 0], _pair_mean(row, theirs.edge_mask), rtol=0,
                               atol=1e-7)
    assert exp.target.indices[0, 0] == int(graph_model(random_graph.x,
                                                       random_graph.edge_index).argmax())


def test_gnnexplainer_node_task_equals_pyg_on_the_neighbourhood(node_model, ring):
    exp = xai.explain(node_model, ring, method="gnnexplainer", index=5, epochs=EPOCHS,
                      random_state=0)
    row = exp.features[0].row
    subset, sub_index, mapping, _ = k_hop_subgraph(5, 3, ring.edge_index, relabel_nodes=True,
                                                   num_nodes=24)
    assert torch.equal(row.node_ids, subset)
    assert row.n_nodes < 24
    theirs = _seeded(_pyg_explainer(node_model, task_level="node"), 0, ring.x[subset],
                     sub_index, index=int(mapping[0]))
    torch.testing.assert_close(exp.extras["pyg_masks"][0, 0], theirs.edge_mask, rtol=0, atol=0)
    torch.testing.assert_close(exp.values[0, 0], _pair_mean(row, theirs.edge_mask), rtol=0,
                               atol=1e-7)
    # edges beyond 2 hops do not reach node 5: PyG's hard mask zeroes them, they are no features
    outside = torch.ones(row.n_edges, dtype=torch.bool)
    outside[row.players] = False
    assert outside.any()
    assert bool((theirs.edge_mask[outside] == 0).all())


def test_gnnexplainer_node_mask_equals_pyg(node_model, ring):
    exp = xai.explain(node_model, ring, method="gnnexplainer", index=5, explain="nodes",
                      epochs=EPOCHS, random_state=4)
    row = exp.features[0].row
    theirs = _seeded(_pyg_explainer(node_model, task_level="node", edges=False), 4,
                     row.x, row.edge_index, index=row.index)
    torch.testing.assert_close(exp.values[0, 0], theirs.node_mask[row.players, 0], rtol=0,
                               atol=0)


def test_gnnexplainer_explains_the_requested_class_as_pyg_phenomenon(graph_model,
                                                                     random_graph):
    pred = int(graph_model(random_graph.x, random_graph.edge_index).argmax())
    other = (pred + 1) % 3
    exp = xai.explain(graph_model, random_graph, method="gnnexplainer", target=other,
                      epochs=EPOCHS, random_state=0)
    theirs = _seeded(_pyg_explainer(graph_model, task_level="graph",
                                    explanation_type="phenomenon"), 0, random_graph.x,
                     random_graph.edge_index, target=torch.tensor([other]))
    assert exp.target.indices[0, 0] == other
    torch.testing.assert_close(exp.extras["pyg_masks"][0, 0], theirs.edge_mask, rtol=0, atol=0)


def test_gnnexplainer_seed_reproduces_and_leaves_the_global_rng(graph_model, random_graph):
    before = torch.get_rng_state()
    a, b, c = (xai.explain(graph_model, random_graph, method="gnnexplainer", epochs=10,
                           random_state=s).values for s in (0, 0, 1))
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c, atol=1e-3)


def test_gnnexplainer_several_graphs_each_as_alone(graph_model, random_graph, ring):
    both = xai.explain(graph_model, [random_graph, ring], method="gnnexplainer", epochs=10,
                       random_state=0)
    alone = xai.explain(graph_model, ring, method="gnnexplainer", epochs=10, random_state=0)
    assert both.feature_mask is not None  # 14-node and 24-node graphs: different widths
    torch.testing.assert_close(both.values[1, :, :alone.n_features], alone.values[0])


def test_gnnexplainer_refuses_unknown_coefficients():
    with pytest.raises(InvalidParameterError, match="edge_sise"):
        xai.methods.GNNExplainer(coeffs={"edge_sise": 0.1})


def test_gnnexplainer_coefficients_reach_pyg(graph_model, random_graph):
    exp = xai.explain(graph_model, random_graph, method="gnnexplainer", epochs=EPOCHS,
                      random_state=0, coeffs={"edge_size": 0.5})
    explainer = Explainer(graph_model, GNNExplainer(epochs=EPOCHS, edge_size=0.5),
                          explanation_type="model", edge_mask_type="object",
                          model_config={"mode": "multiclass_classification",
                                        "task_level": "graph", "return_type": "raw"})
    theirs = _seeded(explainer, 0, random_graph.x, random_graph.edge_index)
    torch.testing.assert_close(exp.extras["pyg_masks"][0, 0], theirs.edge_mask, rtol=0, atol=0)


# -- to_pyg / from_pyg --------------------------------------------------------------------------

def test_to_pyg_graph_task_spreads_values_on_the_users_edges(graph_model, random_graph):
    exp = xai.explain(graph_model, random_graph, method="occlusion")
    out = exp.to_pyg()
    assert isinstance(out, PyGExplanation)
    assert torch.equal(out.x, random_graph.x)
    assert torch.equal(out.edge_index,
                                                              random_graph.edge_index)
    torch.testing.assert_close(out.edge_mask, exp.features[0].edge_values(exp.values[0, 0]))
    assert out.target.tolist() == exp.target.indices[0].tolist()
    # PyG's subgraph keeps the edges with a positive mask
    sub = out.get_explanation_subgraph()
    positive = out.edge_mask > 0
    assert 0 < int(positive.sum()) < len(positive)
    assert torch.equal(sub.edge_index, random_graph.edge_index[:, positive])


def test_round_trip_graph_and_node_tasks(graph_model, node_model, random_graph, ring):
    cases = [
        (graph_model, random_graph, {}),
        (node_model, ring, {"index": [5, 17]}),
        (node_model, ring, {"index": 9, "explain": "nodes"}),
    ]
    for model, data, opts in cases:
        exp = xai.explain(model, data, method="occlusion", **opts)
        pygs = exp.to_pyg()
        pygs = pygs if isinstance(pygs, list) else [pygs]
        assert len(pygs) == len(exp)
        for i, p in enumerate(pygs):
            back = xai.Explanation.from_pyg(p, model)
            d = exp.features[i].n_features
            torch.testing.assert_close(back.values[0], exp.values[i, :, :d], rtol=0, atol=0)
            assert back.names[0] == exp.names[i]
            assert torch.equal(back.target.indices[0], exp.target.indices[i])
            torch.testing.assert_close(back.predictions[0], exp.predictions[i])
            assert back.method == "pyg"


def test_to_pyg_node_task_is_on_user_node_ids(node_model, ring):
    exp = xai.explain(node_model, ring, method="occlusion", index=[5, 17])
    second = exp.to_pyg(index=1)
    row = exp.features[1].row
    assert second.index.tolist() == [17]
    assert second.target[17] == exp.target.indices[1, 0]
    assert second.x.shape == ring.x.shape
    torch.testing.assert_close(second.x[row.node_ids], ring.x[row.node_ids])
    # every edge of the PyG explanation is an edge of the user's graph, at its user column
    torch.testing.assert_close(second.edge_index, ring.edge_index[:, row.edge_ids])
    spread = exp.features[1].edge_values(exp.values[1, 0, :exp.features[1].n_features])
    torch.testing.assert_close(second.edge_mask, spread[row.edge_ids])


def test_from_pyg_of_pyg_gnnexplainer_scores_like_our_method(graph_model, random_graph):
    theirs = _seeded(_pyg_explainer(graph_model, task_level="graph"), 0, random_graph.x,
                     random_graph.edge_index)
    back = xai.Explanation.from_pyg(theirs, graph_model, algorithm="GNNExplainer")
    ours = xai.explain(graph_model, random_graph, method="gnnexplainer", epochs=EPOCHS,
                       random_state=0)
    assert back.method == "pyg:GNNExplainer"
    torch.testing.assert_close(back.values, ours.values, rtol=0, atol=1e-7)
    names = metrics.METRICS.applicable(back)
    assert "fidelity" in names
    got = metrics.evaluate(back, graph_model, names, random_state=0)
    want = metrics.evaluate(ours, graph_model, names, random_state=0)
    for name in names:
        torch.testing.assert_close(got[name].scores, want[name].scores, atol=1e-6, rtol=0)


def test_from_pyg_attributes_node_mask_is_summed_over_features(node_model, ring):
    g = torch.Generator().manual_seed(0)
    mask = torch.rand(24, 3, generator=g)
    p = PyGExplanation(x=ring.x, edge_index=ring.edge_index, node_mask=mask,
                       index=torch.tensor([5]))
    back = xai.Explanation.from_pyg(p, node_model)
    row = back.features[0].row
    torch.testing.assert_close(back.values[0, 0], mask.sum(1)[row.node_ids[row.players]])


def test_pyg_fidelity_on_to_pyg_equals_pyg_on_its_own_explanation(graph_model, node_model,
                                                                  random_graph, ring):
    # graph task: PyG's own explanation, with the masks our values give
    ours = xai.explain(graph_model, random_graph, method="gnnexplainer", epochs=EPOCHS,
                       random_state=0)
    explainer = _pyg_explainer(graph_model, task_level="graph")
    own = _seeded(explainer, 0, random_graph.x, random_graph.edge_index)
    own.edge_mask = ours.features[0].edge_values(ours.values[0, 0])
    assert fidelity(explainer, ours.to_pyg()) == fidelity(explainer, own)
    # node task: to_pyg holds the neighbourhood only; PyG's own explanation is on the whole graph
    exp = xai.explain(node_model, ring, method="occlusion", index=5)
    node_explainer = _pyg_explainer(node_model, task_level="node")
    own = _seeded(node_explainer, 0, ring.x, ring.edge_index, index=5)
    mine = exp.to_pyg()
    own.edge_mask = exp.features[0].edge_values(exp.values[0, 0])
    for flip in (False, True):  # the explanation subgraph and its complement
        m_own = 1 - own.edge_mask if flip else own.edge_mask
        m_mine = 1 - mine.edge_mask if flip else mine.edge_mask
        a = node_explainer.get_masked_prediction(ring.x, ring.edge_index, None, m_own)[5]
        b = node_explainer.get_masked_prediction(mine.x, mine.edge_index, None, m_mine)[5]
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert fidelity(node_explainer, mine) == fidelity(node_explainer, own)


def test_to_pyg_refuses_tabular_explanations_and_bad_index(graph_model, random_graph):
    tab = xai.explain(torch.nn.Linear(3, 2), torch.randn(2, 3), method="occlusion", target=0)
    with pytest.raises(InvalidExplanationError, match="to_pyg"):
        tab.to_pyg()
    exp = xai.explain(graph_model, random_graph, method="occlusion")
    with pytest.raises(InvalidParameterError, match="index"):
        exp.to_pyg(index=3)


def test_from_pyg_refuses_a_mask_of_the_wrong_size(graph_model, random_graph):
    e = random_graph.edge_index.shape[1]
    bad = PyGExplanation(x=random_graph.x, edge_index=random_graph.edge_index,
                         edge_mask=torch.rand(e - 1))
    with pytest.raises(InvalidInputError, match=f"shape \\({e}"):
        xai.Explanation.from_pyg(bad, graph_model)
    bad_nodes = PyGExplanation(x=random_graph.x, edge_index=random_graph.edge_index,
                               node_mask=torch.rand(1, 3))
    with pytest.raises(InvalidInputError, match="common_attributes"):
        xai.Explanation.from_pyg(bad_nodes, graph_model)
    nodes_only = PyGExplanation(x=random_graph.x, edge_index=random_graph.edge_index,
                                node_mask=torch.rand(14, 1))
    with pytest.raises(InvalidParameterError, match="edge_mask"):
        xai.Explanation.from_pyg(nodes_only, graph_model, explain="edges")


# -- plot ---------------------------------------------------------------------------------------

def test_plot_draws_one_line_per_edge_feature_coloured_by_value(graph_model, random_graph):
    exp = xai.explain(graph_model, random_graph, method="gnnexplainer", epochs=EPOCHS,
                      random_state=0)
    ax = exp.plot()
    (edges,) = [c for c in ax.collections if c.get_label() == "edge importance"]
    assert len(edges.get_segments()) == exp.n_features
    # drawn weakest first; on the white-to-red scale a larger value is darker
    order = torch.argsort(exp.values[0, 0].abs(), stable=True)
    colours = torch.tensor(edges.get_colors()[:, :3]).sum(1)
    assert bool((colours[1:] <= colours[:-1] + 1e-9).all())
    vals = exp.values[0, 0, order]
    assert bool((vals[1:] >= vals[:-1]).all())
    widths = torch.tensor(edges.get_linewidths())
    assert torch.argmax(widths) == len(widths) - 1
    ax.figure.savefig(pytest.importorskip("pathlib").Path("/tmp") / "xai_graph_plot.png")
    matplotlib.pyplot.close(ax.figure)


def test_plot_node_task_rings_the_explained_node_and_colours_player_nodes(node_model, ring):
    exp = xai.explain(node_model, ring, method="occlusion", index=5, explain="nodes")
    ax = exp.plot()
    (nodes,) = [c for c in ax.collections if c.get_label() == "nodes"]
    row = exp.features[0].row
    rings = nodes.get_edgecolors()
    centre = row.node_ids.tolist().index(5)
    assert len(rings) == row.n_nodes
    assert tuple(rings[centre][:3]) != tuple(rings[(centre + 1) % row.n_nodes][:3])
    grey = [k for k, c in enumerate(nodes.get_facecolors()) if abs(c[0] - c[1]) < 1e-6
            and abs(c[0] - 200 / 255) < 1e-6]
    assert len(grey) == row.n_nodes - len(row.players)  # non-players are grey
    matplotlib.pyplot.close(ax.figure)


# -- save / load --------------------------------------------------------------------------------

def test_save_load_keeps_graph_features_and_scores_alike(tmp_path, graph_model, node_model,
                                                         random_graph, ring):
    cases = [
        (graph_model, xai.explain(graph_model, random_graph, method="gnnexplainer", epochs=10,
                                  random_state=0)),
        (node_model, xai.explain(node_model, ring, method="occlusion", index=[5, 17],
                                 mask_mode="mask")),
        (node_model, xai.explain(node_model, ring, method="occlusion", index=5,
                                 explain="nodes")),
    ]
    for k, (model, live) in enumerate(cases):
        live.save(tmp_path / str(k))
        loaded = xai.Explanation.load(tmp_path / str(k))
        assert torch.equal(loaded.values, live.values)
        assert loaded.names == live.names
        assert [type(f) for f in loaded.features] == [type(f) for f in live.features]
        adapter = as_adapter(model, inputs=loaded.inputs)
        for i in range(len(live)):
            d = live.features[i].n_features
            keep = torch.rand(4, d, generator=torch.Generator().manual_seed(i)) > 0.5
            torch.testing.assert_close(adapter.predict(loaded.features[i].mask(keep)),
                                       adapter.predict(live.features[i].mask(keep)), rtol=0,
                                       atol=0)
        names = metrics.METRICS.applicable(live)
        assert metrics.METRICS.applicable(loaded) == names
        assert "fidelity" in names
        want = metrics.evaluate(live, model, names, random_state=0)
        got = metrics.evaluate(loaded, model, names, random_state=0)
        for name in names:
            torch.testing.assert_close(got[name].scores, want[name].scores, rtol=0, atol=0)


def test_load_refuses_a_tampered_graph_row(tmp_path, graph_model, random_graph):
    import json

    exp = xai.explain(graph_model, random_graph, method="occlusion")
    exp.save(tmp_path)
    meta = json.loads((tmp_path / "explanation.json").read_text())
    meta["features"][0]["explain"] = "nodes"
    (tmp_path / "explanation.json").write_text(json.dumps(meta))
    with pytest.raises(InvalidExplanationError, match="'explain'"):
        xai.Explanation.load(tmp_path)


def test_graph_edges_type_is_kept(graph_model, random_graph, tmp_path):
    exp = xai.explain(graph_model, random_graph, method="occlusion")
    exp.save(tmp_path)
    loaded = xai.Explanation.load(tmp_path)
    assert isinstance(loaded.features[0], GraphEdges)
    assert torch.equal(loaded.features[0].row.units, exp.features[0].row.units)
