"""Graph explanations and robust fidelity against PyG, on trained GNNs.

Four comparisons, in this one process, on the same models, graphs and explained classes:

1. Integrated Gradients over edges, graph task: ours vs PyG's
   ``Explainer(model, CaptumExplainer("IntegratedGradients"))`` (edge mask through the messages,
   zero baseline, 50 Gauss-Legendre steps on both sides) on BA-2Motifs graphs and the trained
   GIN of ``xai.demo.graphs`` (sum pooling; the GCN's max pooling has tied maxima on symmetric
   motifs, where the two libraries' batched scatter-max pass the gradient to different tied
   nodes, so per-edge values differ while their sums agree). PyG explains one graph per call of its Explainer; ours all graphs
   in one ``explain``. Values must agree (PyG's two directions summed per undirected edge).
2. The same for a node task: a 3-layer GCN trained here on BA-Shapes (``ExplainerDataset`` with
   house motifs, fixed seed), explained nodes one by one by PyG, together by ours.
3. Robust fidelity (Zheng et al. 2024, M = 50 samples per side) vs a naive loop that rebuilds
   and runs each of the 1 + 2M perturbed graphs alone, with the very same draws: values equal,
   model calls and time compared.
4. Our ``fidelity`` vs ``torch_geometric.explain.metric.fidelity`` on the same soft masks (IG
   values min-max scaled to [0, 1]): values equal, time compared.

Run ``python bench/graphs.py`` (full) or ``--quick``; writes the section "Graphs (PyG)" of
docs/benchmarks.md (replacing only that section).
"""

from __future__ import annotations

import dataclasses
import sys
import warnings
from pathlib import Path
from typing import Any

import torch

BENCH = str(Path(__file__).resolve().parent)
sys.path.insert(0, BENCH)

from run import Row, Section, area_main, interleaved_times, load_average, table  # noqa: E402

sys.path.remove(BENCH)  # bench/metrics.py would shadow the metrics package
sys.path.insert(0, str(Path(BENCH).parent))  # this checkout's xai

import metrics  # noqa: E402
import xai  # noqa: E402
from xai.demo.graphs import load_ba2motifs, load_graph_model  # noqa: E402
from xai.extend import as_probabilities, check_random_state, example_generators  # noqa: E402

TITLE = "Graphs (PyG)"
N_GRAPHS = 20
N_NODES = 20
M = 50


class GraphCounter:
    """Forward calls of a GNN and the graphs they ran (``batch.max() + 1``, or 1)."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.calls = self.rows = 0
        self._handle = module.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module: torch.nn.Module, args: tuple[Any, ...],
              kwargs: dict[str, Any]) -> None:
        batch = kwargs.get("batch", args[2] if len(args) > 2 else None)
        self.calls += 1
        self.rows += 1 if batch is None else int(batch.max()) + 1

    class _Scope:
        def __init__(self, counter: GraphCounter) -> None:
            self.counter = counter

        def __enter__(self) -> GraphCounter:
            self.counter.calls = self.counter.rows = 0
            return self.counter

        def __exit__(self, *exc: object) -> None:
            return None

    def count(self) -> GraphCounter._Scope:
        return GraphCounter._Scope(self)

    def close(self) -> None:
        self._handle.remove()


def pair_sums(edge_mask: torch.Tensor, fs: Any) -> torch.Tensor:
    """Per-direction values summed per feature (undirected edge)."""
    return torch.zeros(fs.n_features).index_add_(0, fs.row.units, edge_mask[fs.row.players])


def pyg_ig(model: torch.nn.Module, task: str) -> Any:
    from torch_geometric.explain import Explainer
    from torch_geometric.explain.algorithm import CaptumExplainer

    return Explainer(model, algorithm=CaptumExplainer("IntegratedGradients"),
                     explanation_type="phenomenon", edge_mask_type="object",
                     model_config={"mode": "multiclass_classification", "task_level": task,
                                   "return_type": "raw"})


def bench_ig_graphs(model: torch.nn.Module, graphs: list[Any], counter: GraphCounter,
                    repeats: int) -> Row:
    targets = [int(model(g.x, g.edge_index).argmax()) for g in graphs]
    explainer = pyg_ig(model, "graph")

    def ours() -> xai.Explanation:
        return xai.explain(model, graphs, method="integrated_gradients", explain="edges",
                           target=targets)

    def peer() -> list[torch.Tensor]:
        return [explainer(g.x, g.edge_index, target=torch.tensor([t])).edge_mask.detach()
                for g, t in zip(graphs, targets, strict=True)]

    times, warm = interleaved_times({"ours": ours, "peer": peer}, repeats, counter)
    (exp, oc, orows), (masks, pc, prows) = warm["ours"], warm["peer"]
    diff = max(float((exp.values[i, 0, :exp.features[i].n_features]
                      - pair_sums(masks[i], exp.features[i])).abs().max())
               for i in range(len(graphs)))
    return Row(f"IG over edges, graph task: {len(graphs)} BA-2Motifs graphs, trained GIN, vs "
               "PyG Explainer(CaptumExplainer('IntegratedGradients'))", times["ours"],
               times["peer"], f"{oc} / {pc}", f"{orows} / {prows}",
               f"max abs diff {diff:.1e}", "values equal (<= 1e-5)", values_ok=diff <= 1e-5)


def train_ba_shapes() -> tuple[torch.nn.Module, Any, float]:
    """A 3-layer GCN node classifier trained on BA-Shapes (seeded, global RNG untouched)."""
    from torch_geometric.datasets import ExplainerDataset
    from torch_geometric.datasets.graph_generator import BAGraph
    from torch_geometric.nn import GCNConv

    class NodeGCN(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.convs = torch.nn.ModuleList([GCNConv(10, 32), GCNConv(32, 32), GCNConv(32, 32)])
            self.lin = torch.nn.Linear(32, 4)

        def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
            for conv in self.convs:
                x = conv(x, edge_index).relu()
            return self.lin(x)

    from xai.demo.graphs import _seeded  # PyG's BA generator draws from numpy's global RNG too

    with _seeded(0):
        data = ExplainerDataset(graph_generator=BAGraph(num_nodes=300, num_edges=5),
                                motif_generator="house", num_motifs=80)[0]
        data.x = torch.ones(data.num_nodes, 10)
        model = NodeGCN()
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        for _ in range(300):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(data.x, data.edge_index), data.y)
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
    model.eval()
    with torch.no_grad():
        acc = float((model(data.x, data.edge_index).argmax(1) == data.y).float().mean())
    return model, data, acc


def bench_ig_nodes(model: torch.nn.Module, data: Any, counter: GraphCounter,
                   repeats: int) -> Row:
    with torch.no_grad():
        pred = model(data.x, data.edge_index).argmax(1)
    nodes = [int(v) for v in (data.y > 0).nonzero().flatten()[:N_NODES]]  # motif nodes
    explainer = pyg_ig(model, "node")

    def ours() -> xai.Explanation:
        return xai.explain(model, data, method="integrated_gradients", explain="edges",
                           index=nodes, target=[int(pred[v]) for v in nodes])

    def peer() -> list[torch.Tensor]:
        return [explainer(data.x, data.edge_index, target=pred, index=v).edge_mask.detach()
                for v in nodes]

    times, warm = interleaved_times({"ours": ours, "peer": peer}, repeats, counter)
    (exp, oc, orows), (masks, pc, prows) = warm["ours"], warm["peer"]
    diff = 0.0
    for i in range(len(nodes)):
        fs = exp.features[i]
        ours_edges = fs.edge_values(exp.values[i, 0, :fs.n_features])
        theirs = fs.edge_values(pair_sums(masks[i][fs.row.edge_ids], fs))
        diff = max(diff, float((ours_edges - theirs).abs().max()))
    return Row(f"IG over edges, node task: {len(nodes)} BA-Shapes motif nodes, trained 3-layer "
               "GCN, vs the same PyG Explainer (index=node)", times["ours"], times["peer"],
               f"{oc} / {pc}", f"{orows} / {prows}", f"max abs diff {diff:.1e}",
               "values equal (<= 1e-5)", values_ok=diff <= 1e-5)


def naive_robust_fidelity(exp: xai.Explanation, model: torch.nn.Module,
                          metric: Any, seed: int) -> torch.Tensor:
    """Fid_Δ (probability) per graph, one forward per perturbed graph, with the metric's draws:
    one generator per example from the seed, then Bernoulli(α1) for Fid+ and Bernoulli(α2) for
    Fid- over the explanation's units (edges deleted from edge_index)."""
    from metrics.graph import binarize

    gens = example_generators(check_random_state(seed), len(exp))
    kind = exp.model_info.output_kind
    out = torch.zeros(len(exp))
    for i, fs in enumerate(exp.features):
        row, d = fs.row, fs.n_features
        e = binarize(exp.values[i, :, :d], top_k=metric.top_k, threshold=metric.threshold)[0]
        drop = (torch.rand(1, M, d, generator=gens[i]) < metric.alpha1)[0] & e
        add = (torch.rand(1, M, d, generator=gens[i]) < metric.alpha2)[0]
        y = int(exp.target.indices[i, 0])

        def prob(keep_units: torch.Tensor, row: Any = row, y: int = y) -> float:
            keep = keep_units[row.units]
            with torch.no_grad():
                s = model(row.x, row.edge_index[:, keep])
            p = as_probabilities(s, kind)
            assert p is not None
            return float(p[0, y])

        full = prob(torch.ones(d, dtype=torch.bool))
        plus = sum(full - prob(~drop[m]) for m in range(M)) / M
        minus = sum(full - prob(e | add[m]) for m in range(M)) / M
        out[i] = plus - minus
    return out


def bench_robust(model: torch.nn.Module, exp: xai.Explanation, counter: GraphCounter,
                 repeats: int) -> Row:
    metric = metrics.RobustFidelity(n_samples=M)

    def ours() -> torch.Tensor:
        return metrics.evaluate(exp, model, [metric], random_state=0)["robust_fidelity"].scores

    def peer() -> torch.Tensor:
        return naive_robust_fidelity(exp, model, metric, 0)

    times, warm = interleaved_times({"ours": ours, "peer": peer}, repeats, counter)
    (o, oc, orows), (p, pc, prows) = warm["ours"], warm["peer"]
    diff = float((o[:, 0] - p).abs().max())
    return Row(f"Robust fidelity (M = {M}, α1 = 0.1, α2 = 0.9) of IG explanations of "
               f"{len(exp)} BA-2Motifs graphs vs a naive loop (one forward per perturbed graph, "
               "same draws)", times["ours"], times["peer"], f"{oc} / {pc}",
               f"{orows} / {prows}", f"max abs diff of Fid_Δ {diff:.1e}",
               "values equal (<= 1e-5)", values_ok=diff <= 1e-5)


def bench_fidelity(model: torch.nn.Module, exp: xai.Explanation, counter: GraphCounter,
                   repeats: int) -> Row:
    from torch_geometric.explain import Explainer
    from torch_geometric.explain.algorithm import DummyExplainer
    from torch_geometric.explain.metric import fidelity

    v = exp.values
    lo, hi = v.amin(-1, keepdim=True), v.amax(-1, keepdim=True)
    soft = dataclasses.replace(exp, values=((v - lo) / (hi - lo).clamp_min(1e-12)) * (
        exp.feature_mask[:, None].float() if exp.feature_mask is not None else 1.0))
    explainer = Explainer(model, algorithm=DummyExplainer(), explanation_type="model",
                          edge_mask_type="object",
                          model_config={"mode": "multiclass_classification",
                                        "task_level": "graph", "return_type": "raw"})
    pyg_exps = [soft.to_pyg(index=i) for i in range(len(soft))]

    def ours() -> torch.Tensor:
        res = metrics.evaluate(soft, model, ["fidelity"])["fidelity"]
        return torch.stack([res.extras["fid_plus"][:, 0], res.extras["fid_minus"][:, 0]])

    def peer() -> torch.Tensor:
        return torch.tensor([fidelity(explainer, e) for e in pyg_exps]).T

    times, warm = interleaved_times({"ours": ours, "peer": peer}, repeats, counter)
    (o, oc, orows), (p, pc, prows) = warm["ours"], warm["peer"]
    diff = float((o - p).abs().max())
    return Row(f"fidelity (PyG's, 'model' mode) of the same IG explanations, min-max scaled "
               f"to soft masks, {len(exp)} graphs, vs torch_geometric.explain.metric.fidelity",
               times["ours"], times["peer"], f"{oc} / {pc}", f"{orows} / {prows}",
               f"max abs diff of fid+ and fid- {diff:.1e}", "values equal",
               values_ok=diff == 0.0)


def run(quick: bool = False) -> Section:
    repeats = 3 if quick else 7
    load_start = load_average()
    graphs = load_ba2motifs()[:N_GRAPHS]
    model, gin = (load_graph_model(f"{k}-ba2motifs").eval() for k in ("gcn", "gin"))
    node_model, ba_shapes, node_acc = train_ba_shapes()
    counter, node_counter = GraphCounter(model), GraphCounter(node_model)
    gin_counter = GraphCounter(gin)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyG and captum chatter
        rows = [bench_ig_graphs(gin, graphs, gin_counter, repeats)]
        print(table(rows), flush=True)
        rows.append(bench_ig_nodes(node_model, ba_shapes, node_counter, repeats))
        exp = xai.explain(model, graphs, method="integrated_gradients", explain="edges")
        rows.append(bench_robust(model, exp, counter, repeats))
        rows.append(bench_fidelity(model, exp, counter, repeats))
    for c in (counter, node_counter, gin_counter):
        c.close()
    md = "\n".join([
        f"Models: the GIN (IG row) and the GCN (fidelity rows) of "
        f"`xai.demo.graphs.load_graph_model('gin-ba2motifs' / 'gcn-ba2motifs')` on the first "
        f"{N_GRAPHS} graphs of `load_ba2motifs()`; a 3-layer GCN trained here on BA-Shapes "
        f"(300-node BA graph + 80 house motifs, seed 0, training accuracy {node_acc:.3f}) for "
        f"the node task. Median of {repeats} interleaved runs after one warm-up; torch threads "
        f"{torch.get_num_threads()}; load average at start / end {load_start} / "
        f"{load_average()}.", "", table(rows), "", NOTES])
    return Section(TITLE, md, all(r.met is not False for r in rows))


NOTES = """Notes:

- Ratio < 1 means ours is faster. Calls are forward calls of the GNN, rows the graphs they ran
  (a collated batch of k graphs is k rows), counted in the warm-up run. The node-task model
  takes no `batch` argument, so there a call counts as one row whatever it holds (ours: the
  50 path points of all 20 neighbourhoods in 11 calls).
- IG: both integrate the edge mask from 0 to 1 through PyG's explain mode (messages multiplied
  by the mask). Ours collates the 50 path points of every graph into `batch_size`-row calls;
  PyG's Explainer runs one graph (one node) per call of the explainer. PyG gives one value per
  direction; ours one per undirected edge (their sum).
- Robust fidelity: ours puts the 1 + 2M = 101 perturbed copies of each graph into collated
  calls of `batch_size` graphs; the naive loop runs them one by one with the same draws, as the
  authors' reference code does.
- Fidelity: PyG's metric runs 3 forwards per explanation (full graph, explanation, complement);
  ours collates them over all graphs, plus one check that the explanation's predictions are the
  model's (20 rows), which every metric makes.
"""


def main() -> int:
    return area_main(run, __doc__.splitlines()[0])


if __name__ == "__main__":
    raise SystemExit(main())
