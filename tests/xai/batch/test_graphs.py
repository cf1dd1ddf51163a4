"""Batch scoring of graph data sets: a TU folder or PyG data, one row per graph or per node."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import xai
from xai.batch import Job, score
from xai.exceptions import InvalidInputError, InvalidParameterError

pytest.importorskip("torch_geometric")
from torch_geometric.data import Data  # noqa: E402
from torch_geometric.nn import GCNConv, global_mean_pool  # noqa: E402
from torch_geometric.utils import to_undirected  # noqa: E402


class GraphGCN(torch.nn.Module):
    def __init__(self, n_in: int = 3, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.conv, self.lin = GCNConv(n_in, 8), torch.nn.Linear(8, 2)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor,
                batch: torch.Tensor | None = None) -> torch.Tensor:
        h = self.conv(x, edge_index).relu()
        if batch is None:
            batch = torch.zeros(len(x), dtype=torch.long)
        return self.lin(global_mean_pool(h, batch))


class NodeGCN(GraphGCN):
    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.lin(self.conv(x, edge_index).relu())


def small_graphs() -> list[Data]:
    """Three graphs with one-hot node labels (3 kinds), as a TU file would give them."""
    out = []
    for g, n in enumerate((4, 5, 6)):
        ring = torch.stack([torch.arange(n), (torch.arange(n) + 1) % n])
        labels = torch.tensor([(g + k) % 3 for k in range(n)])
        out.append(Data(x=torch.nn.functional.one_hot(labels, 3).float(),
                        edge_index=to_undirected(ring), y=torch.tensor([g % 2])))
    return out


def write_tu(folder: Path, name: str, graphs: list[Data]) -> None:
    """The TU format: 1-based node ids over the whole data set, one line per directed edge."""
    folder.mkdir(parents=True)
    edges, indicator, node_labels, graph_labels, offset = [], [], [], [], 0
    for g, data in enumerate(graphs):
        for u, v in data.edge_index.T.tolist():
            edges.append(f"{u + offset + 1}, {v + offset + 1}")
        indicator += [str(g + 1)] * data.num_nodes
        node_labels += [str(int(i)) for i in data.x.argmax(1)]
        graph_labels.append(str(int(data.y)))
        offset += data.num_nodes
    for suffix, lines in (("A", edges), ("graph_indicator", indicator),
                          ("node_labels", node_labels), ("graph_labels", graph_labels)):
        (folder / f"{name}_{suffix}.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_a_tu_folder_is_scored_one_row_per_graph_like_explain(tmp_path: Path,
                                                               cache: Path) -> None:
    graphs = small_graphs()
    write_tu(tmp_path / "TOY" / "raw", "TOY", graphs)
    model = GraphGCN()
    table = score(model, tmp_path / "TOY", Job(methods=["occlusion"], chunk_size=2),
                  show_progress=False)
    assert list(table["id"]) == ["0", "1", "2"]
    assert set(table["status"]) == {"ok"}
    assert list(table["input"]) == [f"graph with {g.num_nodes} nodes and "
                                    f"{g.edge_index.shape[1]} edges" for g in graphs]
    for i, g in enumerate(graphs):
        exp = xai.explain(model, g, method="occlusion")
        torch.testing.assert_close(torch.tensor(table["attributions"][i]), exp.values[0, 0],
                                   atol=1e-6, rtol=0)
        assert table["feature_names"][i] == list(exp.names[0])
    assert any(cache.rglob("TOY_A.txt"))  # processed from a cached copy, not the user's folder
    assert not (tmp_path / "TOY" / "processed").exists()


def test_a_node_task_scores_one_row_per_node_and_records_a_bad_node(cache: Path) -> None:
    graph = small_graphs()[2]
    model = NodeGCN()
    job = Job(methods=["integrated_gradients"], metrics=[], adapter_options={"index": [0, 4, 9]})
    table = score(model, [graph], job, show_progress=False)
    assert list(table["id"]) == ["0", "4", "9"]
    assert list(table["status"]) == ["ok", "ok", "error"]
    assert "node 9 is outside the graph" in table["error"][2]
    exp = xai.explain(model, graph, method="integrated_gradients", index=4)
    torch.testing.assert_close(torch.tensor(table["attributions"][1]), exp.values[0, 0],
                               atol=1e-6, rtol=0)
    every = score(model, [graph], Job(methods=["occlusion"], adapter_options={"index": "all"}),
                  show_progress=False)
    assert list(every["id"]) == [str(v) for v in range(graph.num_nodes)]


def test_bad_graph_data_sets_are_typed_errors(tmp_path: Path, cache: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInputError, match="no TU-format graph data set"):
        score(GraphGCN(), tmp_path / "empty", Job(methods=["occlusion"]), show_progress=False)
    with pytest.raises(InvalidParameterError, match="scores the nodes of one graph"):
        score(NodeGCN(), small_graphs(), Job(methods=["occlusion"],
                                             adapter_options={"index": [0]}),
              show_progress=False)
    with pytest.raises(InvalidParameterError, match="TU format"):
        score(GraphGCN(), [1, 2, 3], Job(methods=["occlusion"]), show_progress=False)


@pytest.mark.slow
def test_xai_score_runs_a_demo_gnn_on_the_vendored_tu_folder(tmp_path: Path, cache: Path) -> None:
    import pandas as pd

    from xai.cli import main
    from xai.demo.graphs import MUTAG_DIR, load_graph_model, load_mutag

    out = tmp_path / "scores.parquet"
    rc = main(["score", "--model", "gcn-mutag", "--data", str(MUTAG_DIR), "--methods",
               "occlusion", "--metrics", "fidelity", "--out", str(out), "--quiet"])
    assert rc == 0
    table = pd.read_parquet(out)
    graphs = load_mutag()
    assert len(table) == len(graphs) == 188
    assert set(table["status"]) == {"ok"}
    exp = xai.explain(load_graph_model("gcn-mutag"), graphs[7], method="occlusion")
    torch.testing.assert_close(torch.tensor(table["attributions"][7], dtype=torch.float32),
                               exp.values[0, 0], atol=1e-5, rtol=0)
    assert set(table["fidelity"].round(6)) <= {-1.0, 0.0, 1.0}  # fid+ - fid-, accuracies


def test_xai_score_flags_a_bad_index(capsys: pytest.CaptureFixture[str]) -> None:
    from xai.cli import main

    assert main(["score", "--model", "gcn-mutag", "--data", ".", "--index", "1,b",
                 "--out", "x.parquet"]) == 2
    assert "--index must be 'all' or comma-separated node ids" in capsys.readouterr().err
