"""PyGAdapter: graph and node tasks explained through the generic methods, with known answers."""

from __future__ import annotations

import pytest
import torch

import xai
from xai.exceptions import InvalidInputError, InvalidParameterError
from xai.features import GraphEdges, GraphNodes

pyg = pytest.importorskip("torch_geometric")
from torch_geometric.data import Batch as PygBatch  # noqa: E402
from torch_geometric.data import Data  # noqa: E402
from torch_geometric.nn import GCNConv, SimpleConv, global_add_pool, global_mean_pool  # noqa: E402
from torch_geometric.utils import to_undirected  # noqa: E402


class EdgeLinear(torch.nn.Module):
    """sum over edges (u -> v) of m_e * (w . x_u), through one sum-aggregating layer: linear in
    the edge mask, so IG is exact and each undirected edge's value is w.x_u + w.x_v."""

    def __init__(self, w: torch.Tensor, squash: bool = False) -> None:
        super().__init__()
        self.conv = SimpleConv(aggr="sum")
        self.w = w
        self.squash = squash

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor,
                batch: torch.Tensor | None = None) -> torch.Tensor:
        h = self.conv(x, edge_index) @ self.w  # (n_nodes,)
        if batch is None:
            batch = torch.zeros(len(x), dtype=torch.long)
        s = global_add_pool(h[:, None], batch)
        s = torch.tanh(0.1 * s) if self.squash else s
        return torch.cat([-s, s], dim=1)


class GCN(torch.nn.Module):
    def __init__(self, n_in: int = 3, hidden: int = 8, seed: int = 0,
                 takes_batch: bool = True) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.c1, self.c2 = GCNConv(n_in, hidden), GCNConv(hidden, hidden)
        self.lin = torch.nn.Linear(hidden, 2)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
        self.takes_batch = takes_batch

    def embed(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        return self.c2(self.c1(x, edge_index).relu(), edge_index).relu()

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor,
                batch: torch.Tensor | None = None) -> torch.Tensor:
        if batch is None:
            batch = torch.zeros(len(x), dtype=torch.long)
        return self.lin(global_mean_pool(self.embed(x, edge_index), batch))


class GCNNoBatch(GCN):
    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.lin(self.embed(x, edge_index).mean(0, keepdim=True))


class NodeGCN(GCN):
    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.lin(self.embed(x, edge_index))


def graph(seed: int, n: int = 7, extra: int = 4) -> Data:
    gen = torch.Generator().manual_seed(seed)
    ring = torch.stack([torch.arange(n), (torch.arange(n) + 1) % n])
    chords = torch.randint(0, n, (2, extra), generator=gen)
    chords = chords[:, chords[0] != chords[1]]
    ei = to_undirected(torch.cat([ring, chords], dim=1), num_nodes=n)
    return Data(x=torch.randn(n, 3, generator=gen), edge_index=ei)


def big_graph(n: int = 40) -> Data:
    gen = torch.Generator().manual_seed(3)
    ei = to_undirected(torch.randint(0, n, (2, 2 * n), generator=gen), num_nodes=n)
    ei = ei[:, ei[0] != ei[1]]
    return Data(x=torch.randn(n, 3, generator=gen), edge_index=ei)


W = torch.tensor([1.0, -0.5, 2.0])


def unit_closed_form(data: Data, exp_features: GraphEdges) -> torch.Tensor:
    """w.x_u + w.x_v per undirected unit (the exact IG / occlusion / Shapley value of an edge
    of EdgeLinear: its two directed messages)."""
    row = exp_features.row
    per_edge = data.x[row.edge_index[0, row.players]] @ W
    return torch.zeros(row.n_units).index_add_(0, row.units, per_edge)


def test_ig_on_an_edge_linear_gnn_is_exact_and_complete() -> None:
    data = graph(0)
    model = EdgeLinear(W)
    exp = xai.explain(model, data, method="integrated_gradients", explain="edges", target=1)
    fs = exp.features[0]
    assert isinstance(fs, GraphEdges)
    assert fs.n_features == data.edge_index.shape[1] // 2  # both directions are one feature
    torch.testing.assert_close(exp.values[0, 0], unit_closed_form(data, fs), atol=1e-5,
                               rtol=1e-5)
    # completeness: the values sum to f(G) - f(G with every edge mask at 0)
    torch.testing.assert_close(exp.values.sum(-1), exp.predictions - exp.base_values,
                               atol=1e-5, rtol=1e-5)
    assert float(exp.extras["convergence_delta"].abs().max()) < 1e-5


@pytest.mark.parametrize("mask_mode", ["delete", "mask"])
@pytest.mark.parametrize("method", ["occlusion", "shapley_sampling"])
def test_removal_methods_match_the_closed_form_and_give_0_to_an_ignored_edge(
        method: str, mask_mode: str) -> None:
    data = graph(1)
    data.x[0] = 0.0
    data.x[1] = 0.0  # the ring edge 0-1 carries two zero messages: the model ignores it
    model = EdgeLinear(W)
    exp = xai.explain(model, data, method=method, explain="edges", target=1,
                      mask_mode=mask_mode, random_state=0)
    fs = exp.features[0]
    expected = unit_closed_form(data, fs)
    torch.testing.assert_close(exp.values[0, 0], expected, atol=1e-5, rtol=1e-5)
    ignored = fs.feature_names.index("0—1")
    assert float(exp.values[0, 0, ignored]) == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("method", ["occlusion", "shapley_sampling"])
def test_a_dummy_edge_gets_0_under_a_nonlinear_model(method: str) -> None:
    data = graph(2, n=6, extra=2)
    data.x[2] = 0.0
    data.x[3] = 0.0
    model = EdgeLinear(W, squash=True)
    exp = xai.explain(model, data, method=method, explain="edges", n_permutations=20,
                      random_state=0) if method == "shapley_sampling" else xai.explain(
        model, data, method=method, explain="edges")
    ignored = exp.features[0].feature_names.index("2—3")
    assert float(exp.values[0, 0, ignored]) == pytest.approx(0.0, abs=1e-6)
    assert float(exp.values[0, 0].abs().max()) > 1e-2  # the other edges matter


@pytest.mark.parametrize("method", ["integrated_gradients", "occlusion", "shapley_sampling"])
def test_a_graph_explained_in_a_batch_equals_it_explained_alone(method: str) -> None:
    graphs = [graph(s, n=5 + s, extra=s + 1) for s in range(3)]
    model = GCN()
    kw = {"random_state": 0, "n_permutations": 10} if method == "shapley_sampling" else {}
    together = xai.explain(model, PygBatch.from_data_list(graphs), method=method, **kw)
    for i, g in enumerate(graphs):
        alone = xai.explain(model, g, method=method, **kw)
        d = alone.n_features
        torch.testing.assert_close(together.values[i, :, :d], alone.values[0], atol=1e-5,
                                   rtol=1e-4)
        assert not bool(together.values[i, :, d:].any())  # padding stays 0


def test_a_model_without_a_batch_argument_runs_one_graph_per_call() -> None:
    graphs = [graph(s) for s in range(3)]
    with_batch, without = GCN(), GCNNoBatch()
    a = xai.explain(with_batch, graphs, method="occlusion")
    b = xai.explain(without, graphs, method="occlusion")
    torch.testing.assert_close(a.values, b.values, atol=1e-5, rtol=1e-4)


def test_ig_edges_and_nodes_equal_pygs_captum_explainer() -> None:
    from torch_geometric.explain import Explainer
    from torch_geometric.explain.algorithm import CaptumExplainer

    data, model = graph(4), GCN()
    for kind in ("edges", "nodes"):
        ours = xai.explain(model, data, method="integrated_gradients", explain=kind, target=1)
        explainer = Explainer(
            model, algorithm=CaptumExplainer("IntegratedGradients"),
            explanation_type="phenomenon",  # explains the given target class
            edge_mask_type="object" if kind == "edges" else None,
            node_mask_type="attributes" if kind == "nodes" else None,
            model_config={"mode": "multiclass_classification", "task_level": "graph",
                          "return_type": "raw"})
        theirs = explainer(data.x, data.edge_index, target=torch.tensor([1]))
        fs = ours.features[0]
        if kind == "edges":
            assert isinstance(fs, GraphEdges)
            torch.testing.assert_close(fs.edge_values(ours.values[0, 0]),
                                       _pair_sums(theirs.edge_mask, fs), atol=1e-5, rtol=1e-4)
        else:
            assert isinstance(fs, GraphNodes)
            torch.testing.assert_close(ours.values[0, 0], theirs.node_mask.sum(-1), atol=1e-5,
                                       rtol=1e-4)


def _pair_sums(edge_mask: torch.Tensor, fs: GraphEdges) -> torch.Tensor:
    """PyG's per-direction IG values summed per undirected edge, spread back on both."""
    units = torch.zeros(fs.n_features).index_add_(0, fs.row.units, edge_mask[fs.row.players])
    return fs.edge_values(units)


def test_a_node_task_runs_on_the_neighbourhood_with_the_full_graphs_output() -> None:
    data, model = big_graph(), NodeGCN()
    nodes = [0, 5, 17]
    exp = xai.explain(model, data, method="occlusion", explain="edges", index=nodes)
    with torch.no_grad():
        full = model(data.x, data.edge_index)[nodes]
    torch.testing.assert_close(exp.target.scores, full, atol=1e-5, rtol=1e-5)
    from torch_geometric.utils import k_hop_subgraph

    for i, node in enumerate(nodes):
        row = exp.features[i].row
        assert row.position == node
        assert int(row.node_ids[row.index]) == node
        _, _, _, inner = k_hop_subgraph(node, 2, data.edge_index, num_nodes=data.num_nodes)
        # the players are the edges of the 2-hop neighbourhood (2 GCN layers), both directions
        assert set(row.edge_ids[row.players].tolist()) == set(inner.nonzero().flatten().tolist())
        # removing one player edge on the neighbourhood = removing it from the whole graph
        keep = torch.ones(exp.features[i].n_features, dtype=torch.bool)
        keep[0] = False
        ours = model_predict(model, exp.features[i].mask(keep))[0]
        removed = row.edge_ids[row.players[row.units == 0]]
        kept = torch.ones(data.edge_index.shape[1], dtype=torch.bool)
        kept[removed] = False
        with torch.no_grad():
            whole = model(data.x, data.edge_index[:, kept])[node]
        torch.testing.assert_close(ours, whole, atol=1e-5, rtol=1e-5)


def model_predict(model: torch.nn.Module, batch: xai.Batch) -> torch.Tensor:
    with torch.no_grad():
        return xai.adapters.as_adapter(model, inputs=batch).predict(batch)


def test_node_features_are_removed_by_zeroing_them() -> None:
    data, model = big_graph(), NodeGCN()
    exp = xai.explain(model, data, method="occlusion", explain="nodes", index=3, k_hop=1)
    fs = exp.features[0]
    assert isinstance(fs, GraphNodes)
    neighbours = set(data.edge_index[0, data.edge_index[1] == 3].tolist()) | {3}
    assert {int(n) for n in fs.row.node_ids[fs.row.players]} == neighbours
    x = data.x.clone()
    first = int(fs.row.node_ids[fs.row.players[0]])
    x[first] = 0.0
    with torch.no_grad():
        drop = model(data.x, data.edge_index)[3] - model(x, data.edge_index)[3]
    out = int(exp.target.indices[0, 0])
    assert float(exp.values[0, 0, 0]) == pytest.approx(float(drop[out]), abs=1e-5)


def test_directed_graphs_have_one_feature_per_direction() -> None:
    data = Data(x=torch.randn(3, 3), edge_index=torch.tensor([[0, 1, 1], [1, 2, 0]]))
    exp = xai.explain(EdgeLinear(W), data, method="occlusion", target=1)
    assert exp.features[0].feature_names == ("0→1", "1→2", "1→0")  # not undirected: 1->2 alone
    both = Data(x=data.x, edge_index=to_undirected(data.edge_index))
    exp = xai.explain(EdgeLinear(W), both, method="occlusion", target=1)
    assert exp.features[0].feature_names == ("0—1", "1—2")
    exp = xai.explain(EdgeLinear(W), both, method="occlusion", target=1, undirected=False)
    assert len(exp.features[0].feature_names) == 4
    with pytest.raises(InvalidParameterError, match="undirected=True") as err:
        xai.explain(EdgeLinear(W), data, method="occlusion", undirected=True)
    assert err.value.parameter == "undirected"


def test_bad_graph_inputs_get_typed_errors_that_name_the_fix() -> None:
    model = GCN()
    with pytest.raises(InvalidInputError, match="no edge_index"):
        xai.explain(model, Data(x=torch.randn(3, 3)), method="occlusion")
    with pytest.raises(InvalidParameterError, match="outside the graph") as err:
        xai.explain(NodeGCN(), graph(0), method="occlusion", index=99)
    assert err.value.parameter == "index"

    class NoEdges(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = SimpleConv()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.sum(0, keepdim=True)

    with pytest.raises(InvalidParameterError, match="takes no edge_index") as err:
        xai.explain(NoEdges(), graph(0), method="occlusion", explain="edges")
    assert err.value.parameter == "explain"
    with pytest.raises(InvalidParameterError, match="'auto' for graphs"):
        xai.explain(model, graph(0), method="occlusion", baseline="mean")
    with pytest.raises(InvalidParameterError, match="explain"):
        xai.explain(model, graph(0), method="occlusion", explain="faces")
    with pytest.raises(InvalidInputError, match="takes a torch_geometric Data"):
        xai.explain(model, torch.randn(3, 3), method="occlusion")
    with pytest.raises(InvalidInputError, match="one row per graph"):
        xai.explain(NodeGCN(), graph(0), method="occlusion")  # a node model without index


def test_the_adapter_is_chosen_by_the_rule_table_and_records_its_options() -> None:
    adapter = xai.adapters.as_adapter(GCN())
    assert type(adapter).__name__ == "PyGAdapter"
    exp = xai.explain(GCN(), graph(0), method="occlusion", explain="nodes")
    assert exp.modality == "graph"
    assert exp.model_info.details["explain"] == "nodes"
    assert exp.model_info.output_kind == "logits"


def test_everything_imports_without_pyg_and_the_error_names_the_extra() -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['torch_geometric'] = None\n"
        "import torch, xai, metrics, xai.batch, xai.cli, xai.plot\n"
        "class M(torch.nn.Module):\n"
        "    def forward(self, x, edge_index): return x\n"
        "try:\n"
        "    xai.adapters.PyGAdapter(M())\n"
        "except xai.MissingDependencyError as err:\n"
        "    print(err)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip() == ("PyGAdapter needs torch_geometric, which is not installed. "
                                  "Install it with: pip install 'posthoc-xai[graph]'")
