"""Graph data sets with ground-truth explanations, and the demo's trained GNNs.

* `load_ba2motifs`: a BA-2Motifs-style set (Luo et al. 2020) generated offline with PyG's
  ``ExplainerDataset``: 1,000 graphs of 25 nodes, a 20-node Barabási–Albert tree (one edge per
  new node) with one 5-node motif attached by one edge; class 0 carries a house (6 undirected
  motif edges), class 1 a 5-cycle (5 edges). ``data.edge_mask`` marks the motif edges.
* `load_mutag`: the 188 MUTAG molecules (TU Dortmund files vendored in ``data/mutag``), label 1
  mutagenic (125) and 0 not (63). ``data.edge_mask`` marks the N–O bonds of nitro groups (an N
  bonded to two O atoms that have no other bond), the ground truth used for mutagenic
  molecules after Ying et al. 2019 / Luo et al. 2020 (who also count NH2; MUTAG stores no
  hydrogen, so an amino group cannot be told apart from any other terminal N and is left out).
* `GCN` and `GIN`: graph classifiers ``forward(x, edge_index, batch=None)`` returning logits
  (n_graphs, 2); `load_graph_model` loads the committed weights ("gcn-ba2motifs",
  "gin-ba2motifs", "gcn-mutag", "gin-mutag").
* `degraded_explanations` and `fidelity_alignment`: the edit-distance experiment of Zheng et al.
  (ICLR 2024, Table 1).

Retrain with ``python -m xai.demo.train_graphs``. Needs ``torch_geometric``.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

from ..exceptions import InvalidParameterError, MissingDependencyError

__all__ = [
    "BETAS",
    "GRAPH_MODELS",
    "GRAPH_REPORT_PATH",
    "GCN",
    "GIN",
    "GraphModelSpec",
    "MUTAG_ATOMS",
    "alignment_table",
    "build_graph_model",
    "degraded_explanations",
    "fidelity_alignment",
    "load_ba2motifs",
    "load_graph_dataset",
    "load_graph_model",
    "load_mutag",
    "nitro_edge_mask",
    "split_graphs",
]

WEIGHTS_DIR = Path(__file__).parent / "weights"
MUTAG_DIR = Path(__file__).parent / "data" / "mutag"
GRAPH_REPORT_PATH: Path = WEIGHTS_DIR / "graph_training_report.json"

#: Node labels of MUTAG (README.txt of the TU files): atom types.
MUTAG_ATOMS: tuple[str, ...] = ("C", "N", "O", "F", "I", "Cl", "Br")
_N, _O = 1, 2

#: The degradation levels of Zheng et al. (β1 for removed ground-truth edges, β2 for added ones).
BETAS: tuple[float, ...] = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9)


def _pyg(what: str) -> Any:
    try:
        import torch_geometric
    except ImportError as err:
        msg = (f"{what} needs torch_geometric. Install it with: "
               'pip install "posthoc-xai[graph]".')
        raise MissingDependencyError(msg) from err
    return torch_geometric


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Run third-party code that draws from torch's and numpy's global RNGs (PyG's
    ``barabasi_albert_graph`` uses both) with a fixed seed, leaving the caller's global RNG
    states as they were."""
    state = np.random.get_state()  # noqa: NPY002  # PyG draws from it: saved and restored
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            np.random.seed(seed)  # noqa: NPY002
            yield
    finally:
        np.random.set_state(state)  # noqa: NPY002


# --------------------------------------------------------------------------------------------
# Data sets


def load_ba2motifs(n_graphs: int = 1000, *, seed: int = 0) -> list[Any]:
    """BA-2Motifs-style graphs with their ground-truth motif edges.

    Parameters
    ----------
    n_graphs : int, default 1000
        Number of graphs, even: half carry a house (label 0), half a 5-cycle (label 1); the
        classes alternate (house, cycle, house, ...).
    seed : int, default 0
        Seed of the generation (PyG's generators draw from torch's and numpy's global RNGs:
        they run inside ``torch.random.fork_rng`` and numpy's state is restored afterwards, so
        the caller's RNG states are untouched).

    Returns
    -------
    list of torch_geometric.data.Data
        Each with ``x`` (25, 10) filled with 0.1 (the original's constant features),
        ``edge_index`` (both directions of every edge), ``y`` (1,), ``edge_mask`` (bool, per
        directed edge: in the motif) and ``node_mask`` (bool, per node: in the motif).
    """
    if isinstance(n_graphs, bool) or not isinstance(n_graphs, int) or n_graphs < 2 or n_graphs % 2:
        msg = (f"load_ba2motifs: n_graphs must be an even int >= 2 (half houses, half cycles). "
               f"Got n_graphs={n_graphs!r}; pass e.g. n_graphs=1000.")
        raise InvalidParameterError(msg, owner="load_ba2motifs", parameter="n_graphs",
                                    value=n_graphs)
    _pyg("load_ba2motifs")
    from torch_geometric.data import Data
    from torch_geometric.datasets import ExplainerDataset
    from torch_geometric.datasets.graph_generator import BAGraph
    from torch_geometric.datasets.motif_generator import CycleMotif, HouseMotif

    half = n_graphs // 2
    with _seeded(seed):
        sets = [ExplainerDataset(graph_generator=BAGraph(num_nodes=20, num_edges=1),
                                 motif_generator=motif, num_motifs=1, num_graphs=half)
                for motif in (HouseMotif(), CycleMotif(5))]
    graphs = []
    for i in range(half):
        for label, dataset in enumerate(sets):
            g = dataset[i]
            graphs.append(Data(x=torch.full((g.num_nodes, 10), 0.1), edge_index=g.edge_index,
                               y=torch.tensor([label]), edge_mask=g.edge_mask > 0.5,
                               node_mask=g.node_mask > 0.5))
    return graphs


def nitro_edge_mask(data: Any) -> torch.Tensor:
    """Bool mask over ``data.edge_index``: the N–O bonds of nitro groups (both directions).

    A nitro group is an N atom bonded to at least two O atoms that have no other bond.
    ``data.x`` is MUTAG's one-hot atom type (`MUTAG_ATOMS`).
    """
    atom: torch.Tensor = data.x.argmax(dim=1)
    src, dst = data.edge_index
    degree = torch.bincount(src, minlength=atom.numel())
    terminal_o = (atom == _O) & (degree == 1)
    n_o = (atom[src] == _N) & terminal_o[dst]
    count = torch.bincount(src[n_o], minlength=atom.numel())
    nitro_n = (atom == _N) & (count >= 2)
    out: torch.Tensor = (nitro_n[src] & terminal_o[dst]) | (nitro_n[dst] & terminal_o[src])
    return out


def load_mutag() -> list[Any]:
    """The 188 MUTAG molecules, read by PyG's ``TUDataset`` from the vendored files.

    Returns
    -------
    list of torch_geometric.data.Data
        ``x`` (n_atoms, 7) one-hot atom type (`MUTAG_ATOMS`), ``edge_attr`` (n_bonds, 4) one-hot
        bond type (aromatic, single, double, triple), ``y`` (1,) with 1 = mutagenic (125
        graphs) and 0 = not (63), and ``edge_mask`` (bool, per directed edge): the N–O bonds
        of nitro groups (`nitro_edge_mask`). Every MUTAG molecule has one (the set was
        assembled from nitroaromatic compounds); the ground truth is meant for the mutagenic
        ones.
    """
    _pyg("load_mutag")
    from ..batch._graphs import read_tu  # the TU reader of batch scoring: a cached copy

    graphs = []
    for g in read_tu(MUTAG_DIR):
        g.edge_mask = nitro_edge_mask(g)
        graphs.append(g)
    return graphs


def load_graph_dataset(name: str) -> list[Any]:
    """``"ba2motifs"`` (`load_ba2motifs` with its defaults) or ``"mutag"`` (`load_mutag`)."""
    if name == "ba2motifs":
        return load_ba2motifs()
    if name == "mutag":
        return load_mutag()
    msg = f"load_graph_dataset: name must be 'ba2motifs' or 'mutag'. Got name={name!r}."
    raise InvalidParameterError(msg, owner="load_graph_dataset", parameter="name", value=name)


def split_graphs(n: int, *, seed: int = 0) -> tuple[list[int], list[int], list[int]]:
    """8:1:1 train/validation/test positions of ``n`` graphs, shuffled by a seeded
    ``torch.Generator`` (train ``int(0.8 n)``, validation ``int(0.1 n)``, test the rest)."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    n_train, n_val = int(0.8 * n), int(0.1 * n)
    return order[:n_train], order[n_train:n_train + n_val], order[n_train + n_val:]


# --------------------------------------------------------------------------------------------
# Models


class GCN(nn.Module):
    """Graph classifier: ``n_layers`` GCNConv layers (ReLU), mean and max pooling, a linear head.

    ``forward(x, edge_index, batch=None)`` returns logits (n_graphs, n_classes).
    ``normalize=False`` (the default here) uses GCNConv without the symmetric degree
    normalisation and self-loops (``h_i = W sum_j h_j + b`` over the neighbours): with it, on
    BA-2Motifs' constant node features, the model stayed at chance level (0.5 validation accuracy
    after 150 epochs at learning rates 0.003-0.01); without it, it separates the classes.
    """

    def __init__(self, in_channels: int, hidden: int = 32, n_layers: int = 3,
                 n_classes: int = 2, *, normalize: bool = False) -> None:
        super().__init__()
        _pyg("GCN")
        from torch_geometric.nn import GCNConv

        sizes = [in_channels] + [hidden] * n_layers
        self.convs = nn.ModuleList(GCNConv(a, b, normalize=normalize)
                                   for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        self.head = nn.Linear(2 * hidden, n_classes)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor,
                batch: torch.Tensor | None = None) -> torch.Tensor:
        from torch_geometric.nn import global_max_pool, global_mean_pool

        for conv in self.convs:
            x = torch.relu(conv(x, edge_index))
        pooled = torch.cat([global_mean_pool(x, batch), global_max_pool(x, batch)], dim=1)
        out: torch.Tensor = self.head(pooled)
        return out


class GIN(nn.Module):
    """Graph classifier: ``n_layers`` GINConv layers (two-layer MLPs), sum pooling of every
    layer's output (Xu et al. 2019), a linear head.

    ``forward(x, edge_index, batch=None)`` returns logits (n_graphs, n_classes).
    """

    def __init__(self, in_channels: int, hidden: int = 32, n_layers: int = 3,
                 n_classes: int = 2) -> None:
        super().__init__()
        _pyg("GIN")
        from torch_geometric.nn import GINConv

        sizes = [in_channels] + [hidden] * n_layers
        self.convs = nn.ModuleList(
            GINConv(nn.Sequential(nn.Linear(a, b), nn.ReLU(), nn.Linear(b, b)))
            for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        self.head = nn.Linear(hidden * n_layers, n_classes)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor,
                batch: torch.Tensor | None = None) -> torch.Tensor:
        from torch_geometric.nn import global_add_pool

        pooled = []
        for conv in self.convs:
            x = torch.relu(conv(x, edge_index))
            pooled.append(global_add_pool(x, batch))
        out: torch.Tensor = self.head(torch.cat(pooled, dim=1))
        return out


@dataclasses.dataclass(frozen=True)
class GraphModelSpec:
    """How one demo graph model is built and trained."""

    arch: str
    dataset: str
    in_channels: int
    hidden: int = 32
    n_layers: int = 3
    epochs: int = 60
    lr: float = 0.005
    batch_size: int = 64
    seed: int = 0

    @property
    def path(self) -> Path:
        return WEIGHTS_DIR / f"{self.arch}_{self.dataset}.safetensors"


#: The demo graph models, by name.
GRAPH_MODELS: dict[str, GraphModelSpec] = {
    "gcn-ba2motifs": GraphModelSpec("gcn", "ba2motifs", in_channels=10),
    "gin-ba2motifs": GraphModelSpec("gin", "ba2motifs", in_channels=10),
    "gcn-mutag": GraphModelSpec("gcn", "mutag", in_channels=7),
    "gin-mutag": GraphModelSpec("gin", "mutag", in_channels=7),
}


def _spec(name: str) -> GraphModelSpec:
    if name not in GRAPH_MODELS:
        msg = (f"load_graph_model: name must be one of {sorted(GRAPH_MODELS)}. "
               f"Got name={name!r}.")
        raise InvalidParameterError(msg, owner="load_graph_model", parameter="name", value=name)
    return GRAPH_MODELS[name]


def build_graph_model(name: str) -> nn.Module:
    """A freshly initialised model for ``name`` (initialised with the spec's seed inside
    ``torch.random.fork_rng``; the caller's RNG is untouched)."""
    spec = _spec(name)
    cls = GCN if spec.arch == "gcn" else GIN
    with _seeded(spec.seed):
        return cls(spec.in_channels, hidden=spec.hidden, n_layers=spec.n_layers)


def load_graph_model(name: str) -> nn.Module:
    """One of the committed demo graph models, in eval mode (no training at run time).

    Parameters
    ----------
    name : {"gcn-ba2motifs", "gin-ba2motifs", "gcn-mutag", "gin-mutag"}

    Returns
    -------
    GCN or GIN
        ``model(x, edge_index, batch=None)`` gives logits (n_graphs, 2).
    """
    spec = _spec(name)
    if not spec.path.is_file():
        msg = (f"load_graph_model: no weights for {name!r} at {spec.path}. Write them with: "
               "python -m xai.demo.train_graphs")
        raise FileNotFoundError(msg)
    model = build_graph_model(name)
    model.load_state_dict(load_file(str(spec.path)))
    model.eval()
    return model


# --------------------------------------------------------------------------------------------
# The edit-distance experiment (Zheng et al. 2024, Table 1)


def _gt_units(exp: Any, graphs: Sequence[Any]) -> list[torch.Tensor]:
    """Per example, a bool tensor over its edge units: in the ground truth."""
    out = []
    for features, g in zip(exp.features, graphs, strict=True):
        row = features.row
        gt = torch.zeros(features.n_features, dtype=torch.bool)
        gt[row.units] = g.edge_mask[row.edge_ids[row.players]].bool()
        out.append(gt)
    return out


def degraded_explanations(gt: torch.Tensor, beta1: float, beta2: float, n_candidates: int,
                          generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Ψ_{β1,β2}: ``n_candidates`` hard masks from the ground-truth units ``gt`` (bool, (d,)).

    Each candidate removes ``round(β1 |GT|)`` ground-truth units and adds
    ``round(β2 |non-GT|)`` other units, chosen uniformly at random.

    Returns
    -------
    masks : torch.Tensor of float32 (n_candidates, d)
        1 on the units of the degraded explanation.
    distance : torch.Tensor of int64 (n_candidates,)
        Edit distance to the ground truth (units removed plus units added).
    """
    inside, outside = gt.nonzero().flatten(), (~gt).nonzero().flatten()
    n_remove, n_add = round(beta1 * len(inside)), round(beta2 * len(outside))
    masks = gt.float().repeat(n_candidates, 1)
    for c in range(n_candidates):
        removed = inside[torch.randperm(len(inside), generator=generator)[:n_remove]]
        added = outside[torch.randperm(len(outside), generator=generator)[:n_add]]
        masks[c, removed] = 0.0
        masks[c, added] = 1.0
    distance = torch.full((n_candidates,), n_remove + n_add, dtype=torch.long)
    return masks, distance


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation with average ranks for ties (NaN when one side is
    constant)."""
    import pandas as pd

    ra = pd.Series(a).rank().to_numpy()
    rb = pd.Series(b).rank().to_numpy()
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


#: The six metrics of Table 1: (column, alpha1 = 1 and alpha2 = 0 for the original, extra key).
METRIC_COLUMNS: tuple[tuple[str, bool, str], ...] = (
    ("Fid+", False, "fid_plus"), ("Fid_a1,+", True, "fid_plus"),
    ("Fid-", False, "fid_minus"), ("Fid_a2,-", True, "fid_minus"),
    ("FidΔ", False, "fid_delta"), ("Fid_a1,a2,Δ", True, "fid_delta"),
)


def fidelity_alignment(model: nn.Module, graphs: Sequence[Any], *,
                       betas: Sequence[float] = BETAS, n_candidates: int = 10,
                       n_samples: int = 50, alpha1: float = 0.1, alpha2: float = 0.9,
                       random_state: int = 0) -> dict[str, Any]:
    """Zheng et al.'s edit-distance check of fidelity metrics on ground-truth explanations.

    For every (β1, β2) and every graph, `degraded_explanations` draws ``n_candidates`` degraded
    masks. ``metrics.RobustFidelity`` scores them twice: with ``alpha1``/``alpha2`` (robust)
    and with α1 = 1, α2 = 0 (the original Fid+, Fid-, FidΔ), probability version, for the class
    the model predicts on the whole graph. For each β2, the metric averaged over graphs and
    candidates at each β1 is rank-correlated (Spearman, six points) with the mean edit distance
    at that β1; the correlations are averaged over β2 (β2 values where either side is constant
    are left out of the average).

    Parameters
    ----------
    model : torch.nn.Module
        A graph classifier ``model(x, edge_index, batch=None)``.
    graphs : sequence of torch_geometric.data.Data
        Graphs with a bool ``edge_mask`` (the ground truth, per directed edge).
    betas : sequence of float
        The β levels (both for β1 and β2).
    n_candidates : int
        Degraded masks per graph and (β1, β2) (the paper's 10).
    n_samples : int
        Monte-Carlo draws of the robust metric (the paper's 50).
    alpha1, alpha2 : float
        The robust metric's parameters.
    random_state : int
        Seed of the degradations and of the metric's draws.

    Returns
    -------
    dict
        ``"spearman"``: column -> mean correlation over β2 (keys of `METRIC_COLUMNS`);
        ``"per_beta2"``: column -> the per-β2 correlations; ``"means"``: column ->
        (n_beta1, n_beta2) array of metric means; ``"distance"``: (n_beta1, n_beta2) mean edit
        distances.
    """
    import warnings

    import metrics
    import xai

    graphs = list(graphs)
    n = len(graphs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", xai.XAIWarning)
        exp = xai.explain(model, graphs * n_candidates, method="occlusion", explain="edges")
    gts = _gt_units(exp, graphs * n_candidates)[:n]
    generator = torch.Generator().manual_seed(random_state)
    nb = len(betas)
    means = {col: np.zeros((nb, nb)) for col, _, _ in METRIC_COLUMNS}
    dist = np.zeros((nb, nb))
    robust = metrics.RobustFidelity(alpha1=alpha1, alpha2=alpha2, n_samples=n_samples)
    original = metrics.RobustFidelity(alpha1=1.0, alpha2=0.0, n_samples=1)
    for j, b2 in enumerate(betas):
        for i, b1 in enumerate(betas):
            values = torch.zeros_like(exp.values)
            distances = []
            for k, gt in enumerate(gts):
                masks, d = degraded_explanations(gt, b1, b2, n_candidates, generator)
                for c in range(n_candidates):
                    values[c * n + k, :, :masks.shape[1]] = masks[c]
                distances.append(d.float())
            dist[i, j] = float(torch.cat(distances).mean())
            cand = dataclasses.replace(exp, values=values)
            seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", xai.XAIWarning)
                res = {True: robust(cand, model, random_state=seed),
                       False: original(cand, model, random_state=seed)}
            for col, is_robust, key in METRIC_COLUMNS:
                means[col][i, j] = float(res[is_robust].extras[key].float().mean())
    per_beta2 = {col: [_spearman(m[:, j], dist[:, j]) for j in range(nb)]
                 for col, m in means.items()}
    return {"spearman": {col: float(np.nanmean(v)) for col, v in per_beta2.items()},
            "per_beta2": per_beta2, "means": means, "distance": dist}


def alignment_table(results: dict[str, dict[str, Any]]) -> str:
    """A markdown table of ``fidelity_alignment(...)["spearman"]`` per model name."""
    cols = [c for c, _, _ in METRIC_COLUMNS]
    lines = ["| model | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for name, res in results.items():
        lines.append(f"| {name} | " + " | ".join(f"{res['spearman'][c]:+.3f}" for c in cols)
                     + " |")
    return "\n".join(lines)
