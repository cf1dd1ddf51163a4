"""Graph fidelity metrics (issue 13): robust fidelity's known answers (spec robust_fidelity.md §7,
R-1..R-8) on toy message-passing models, and PyG parity of ``fidelity``/``characterization``."""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Literal

import pytest
import torch

pytest.importorskip("torch_geometric")

from torch_geometric.data import Batch as PyGBatch  # noqa: E402
from torch_geometric.data import Data  # noqa: E402
from torch_geometric.explain import Explainer, Explanation  # noqa: E402
from torch_geometric.explain.algorithm import ExplainerAlgorithm  # noqa: E402
from torch_geometric.explain.metric import characterization_score, fidelity  # noqa: E402
from torch_geometric.nn import (  # noqa: E402
    GCNConv,
    MessagePassing,
    global_add_pool,
    global_mean_pool,
)

import metrics  # noqa: E402
import xai  # noqa: E402
from metrics.graph import binarize  # noqa: E402
from xai.features import GraphEdges, GraphNodes  # noqa: E402

MOTIF = [(0, 1), (1, 2), (2, 3), (3, 0), (0, 4), (1, 4)]  # the house: 6 undirected edges
OTHER = [(4, 5), (5, 6), (6, 7), (7, 8), (8, 5), (2, 9), (9, 10), (3, 7)]


class MotifCount(MessagePassing):  # type: ignore[misc]
    """Sends 1 along every edge between two motif nodes (flag x[:, 0])."""

    def __init__(self) -> None:
        super().__init__(aggr="add")

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.propagate(edge_index, x=x)
        return out

    def message(self, x_i: torch.Tensor, x_j: torch.Tensor) -> torch.Tensor:
        return x_i[:, :1] * x_j[:, :1]


class Toy(torch.nn.Module):
    """"linear": P(class 1) = |M ∩ E(G)| / |M|. "accuracy": predicts class 1 (P = 0.9) iff at
    least 4 of the 6 motif edges are present, else class 0 (P(class 1) = 0.1)."""

    def __init__(self, kind: str = "linear") -> None:
        super().__init__()
        self.conv = MotifCount()
        self.kind = kind
        self.calls = 0

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor,
                batch: torch.Tensor | None = None) -> torch.Tensor:
        self.calls += 1
        if batch is None:
            batch = torch.zeros(x.shape[0], dtype=torch.long)
        present = global_add_pool(self.conv(x, edge_index), batch)[:, 0] / 2
        p = present / 6 if self.kind == "linear" else torch.where(present >= 3.5, 0.9, 0.1)
        return torch.stack([1 - p, p], -1)


Case = tuple[Toy, xai.Explanation]


def house() -> Data:
    edges = MOTIF + OTHER
    ei = torch.tensor(edges + [(b, a) for a, b in edges]).T
    x = torch.zeros(11, 1)
    x[:5] = 1.0
    return Data(x=x, edge_index=ei)


def motif_units(exp: xai.Explanation) -> torch.Tensor:
    """Bool (n_features,): the units of exp's first example that are motif edges."""
    pairs = edges(exp, 0).row.unit_edges().tolist()
    motif = {frozenset(e) for e in MOTIF}
    return torch.tensor([frozenset(p) in motif for p in pairs])


def edges(exp: xai.Explanation, i: int) -> GraphEdges:
    fs = exp.features[i]
    assert isinstance(fs, GraphEdges)
    return fs


def nodes(exp: xai.Explanation, i: int) -> GraphNodes:
    fs = exp.features[i]
    assert isinstance(fs, GraphNodes)
    return fs


def with_values(exp: xai.Explanation, hard: torch.Tensor) -> xai.Explanation:
    return dataclasses.replace(exp, values=hard.float().reshape(1, 1, -1))


@pytest.fixture(scope="module")
def linear_case() -> tuple[Toy, xai.Explanation]:
    model = Toy("linear")
    return model, xai.explain(model, house(), method="integrated_gradients", explain="edges")


@pytest.fixture(scope="module")
def accuracy_case() -> tuple[Toy, xai.Explanation]:
    model = Toy("accuracy")
    return model, xai.explain(model, house(), method="occlusion", explain="edges")


def robust(exp: xai.Explanation, model: Any, **params: Any) -> metrics.MetricResult:
    return metrics.RobustFidelity(**params)(exp, model, random_state=0)


def half_motif(exp: xai.Explanation) -> torch.Tensor:
    """Three of the six motif units (M')."""
    m = motif_units(exp)
    half = m.clone()
    half[m.nonzero().flatten()[3:]] = False
    assert int(half.sum()) == 3
    return half


# -- known answers (spec §7) -----------------------------------------------------------------------


def test_ig_on_the_edge_linear_toy_picks_out_the_motif(linear_case: Case) -> None:
    _, exp = linear_case
    m = motif_units(exp)
    assert int(m.sum()) == 6
    assert exp.n_features == 14
    torch.testing.assert_close(exp.values[0, 0], m.float() / 6, rtol=0, atol=1e-5)
    torch.testing.assert_close(binarize(exp.values[0]), m[None], rtol=0, atol=0)


def test_r1_original_metrics_on_the_motif(linear_case: Case) -> None:
    model, exp = linear_case
    res = robust(exp, model, alpha1=1.0, alpha2=0.0, n_samples=3)
    assert float(res.extras["fid_plus"][0, 0]) == pytest.approx(1.0, abs=1e-6)
    assert float(res.extras["fid_minus"][0, 0]) == pytest.approx(0.0, abs=1e-6)
    assert float(res.scores[0, 0]) == pytest.approx(1.0, abs=1e-6)
    assert float(res.extras["accuracy"]["fid_plus"][0, 0]) == 1.0
    assert int(res.extras["explanation_size"][0, 0]) == 6


@pytest.mark.parametrize(("alpha1", "m"), [
    pytest.param(0.1, 10_000, marks=pytest.mark.slow), (0.3, 2_000)])
def test_r2_r3_robust_fid_plus_is_alpha1_within_mc_error(linear_case: Case, alpha1: float,
                                                        m: int) -> None:
    model, exp = linear_case
    res = robust(exp, model, alpha1=alpha1, n_samples=m)
    est = float(res.extras["fid_plus"][0, 0])
    se = float(res.extras["stderr"]["fid_plus"][0, 0])
    # per-draw Fid+ = Bin(6, a1) / 6: sd = sqrt(a1 (1 - a1) / 6) / sqrt(M)
    assert se == pytest.approx(math.sqrt(alpha1 * (1 - alpha1) / 6 / m), rel=0.1)
    assert abs(est - alpha1) < 4 * se
    # the complement carries no motif edge: Fid- is 0 whatever is kept
    assert float(res.extras["fid_minus"][0, 0]) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.slow
def test_r4_accuracy_fid_plus_is_the_binomial_tail(accuracy_case: Case) -> None:
    model, exp = accuracy_case
    exp = with_values(exp, motif_units(exp))
    res = robust(exp, model, alpha1=0.1, n_samples=10_000)
    tail = sum(math.comb(6, j) * 0.1**j * 0.9 ** (6 - j) for j in range(3, 7))
    assert tail == pytest.approx(0.01585, abs=1e-5)
    se = math.sqrt(tail * (1 - tail) / 10_000)
    assert abs(float(res.extras["accuracy"]["fid_plus"][0, 0]) - tail) < 4 * se
    original = robust(exp, model, alpha1=1.0, alpha2=0.0, n_samples=2)
    assert float(original.extras["accuracy"]["fid_plus"][0, 0]) == 1.0


def test_r5_half_motif_probability_version(linear_case: Case) -> None:
    model, exp = linear_case
    exp = with_values(exp, half_motif(exp))
    res = robust(exp, model, alpha1=0.1, alpha2=0.9, n_samples=10_000)
    for key, want in (("fid_minus", 0.05), ("fid_plus", 0.05)):
        est = float(res.extras[key][0, 0])
        se = float(res.extras["stderr"][key][0, 0])
        assert 0 < se < 2e-3
        assert abs(est - want) < 4 * se, (key, est, se)
    assert int(res.extras["explanation_size"][0, 0]) == 3


@pytest.mark.parametrize(("alpha2", "m"), [
    pytest.param(0.9, 30_000, marks=pytest.mark.slow), (0.5, 2_000)])
def test_r6_half_motif_accuracy_version(accuracy_case: Case, alpha2: float, m: int) -> None:
    model, exp = accuracy_case
    exp = with_values(exp, half_motif(exp))
    res = robust(exp, model, alpha2=alpha2, n_samples=m)
    # y is kept iff 3 + Bin(3, a2) >= 4: Fid-^acc = P(Bin(3, a2) = 0) = (1 - a2)^3 (0.001)
    want = (1 - alpha2) ** 3
    se = math.sqrt(want * (1 - want) / m)
    assert abs(float(res.extras["accuracy"]["fid_minus"][0, 0]) - want) < 4 * se
    original = robust(exp, model, alpha1=1.0, alpha2=0.0, n_samples=2)
    assert float(original.extras["accuracy"]["fid_minus"][0, 0]) == 1.0


def test_r7_characterization_formula_matches_pyg() -> None:
    plus, minus = torch.tensor([0.8, 0.3, 0.0, 0.6]), torch.tensor([0.2, 0.5, 0.1, 1.0])
    for w in (0.5, 0.3):
        want = characterization_score(plus, minus, pos_weight=w, neg_weight=1 - w)
        got = metrics.graph.characterization(plus, minus, w, 1 - w)
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert float(metrics.graph.characterization(torch.tensor(0.8), torch.tensor(0.2),
                                                0.5, 0.5)) == pytest.approx(0.8, abs=1e-7)


def test_r8_alpha1_one_alpha2_zero_recovers_the_original_metric(linear_case: Case) -> None:
    model, exp = linear_case
    exp = with_values(exp, half_motif(exp))
    res = robust(exp, model, alpha1=1.0, alpha2=0.0, n_samples=5)
    assert float(res.extras["fid_plus"][0, 0]) == pytest.approx(0.5, abs=1e-6)
    assert float(res.extras["fid_minus"][0, 0]) == pytest.approx(0.5, abs=1e-6)
    assert float(res.extras["stderr"]["fid_plus"][0, 0]) == pytest.approx(0.0, abs=1e-7)


# -- contract, batching, edge cases ----------------------------------------------------------------


def test_evaluate_by_name_gives_the_documented_extras(linear_case: Case) -> None:
    model, exp = linear_case
    res = metrics.evaluate(exp, model, ["robust_fidelity", "fidelity", "characterization"],
                           random_state=0)
    r = res["robust_fidelity"]
    assert r.higher_is_better
    assert metrics.RobustFidelity.category == "fidelity"
    for key in ("fid_plus", "fid_minus", "fid_delta"):
        assert r.extras[key].shape == (1, 1)
        assert r.extras["accuracy"][key].shape == (1, 1)
    torch.testing.assert_close(r.scores, r.extras["fid_delta"], rtol=0, atol=0)
    torch.testing.assert_close(r.extras["fid_delta"],
                               r.extras["fid_plus"] - r.extras["fid_minus"], rtol=0, atol=0)
    assert r.extras["n_rows"] == 1 + 2 * 50
    # soft IG masks (1/6 on the motif) multiplied in: G_S has P(class 1) = 1/6, G_{C\S} 5/6
    f = res["fidelity"]
    assert float(f.extras["fid_plus"][0, 0]) == 0.0
    assert float(f.extras["fid_minus"][0, 0]) == 1.0
    assert float(res["characterization"].extras["value"][0]) == 0.0


def test_all_rows_are_scored_in_ceil_rows_over_batch_size_forwards() -> None:
    model = Toy("linear")
    exp = xai.explain(model, [house(), house()], method="integrated_gradients",
                      explain="edges")
    before = model.calls
    res = metrics.RobustFidelity(n_samples=50)(exp, model, batch_size=64, random_state=0)
    calls = model.calls - before - 1  # one call checks that the model matches the explanation
    assert res.extras["n_rows"] == 2 * 101
    assert res.extras["n_model_calls"] == math.ceil(202 / 64) == calls
    # the two examples are the same graph with the same explanation: same per-example seed
    torch.testing.assert_close(res.scores[0], res.scores[1], rtol=0, atol=0)


def test_top_k_binarises_before_sampling(linear_case: Case) -> None:
    model, exp = linear_case
    res = metrics.evaluate(exp, model, [metrics.RobustFidelity(alpha1=0.1, alpha2=0.9,
                                                               n_samples=50, top_k=5)],
                           random_state=0)["robust_fidelity"]
    assert int(res.extras["explanation_size"][0, 0]) == 5
    # the original metrics: the sixth motif edge is outside the 5-unit explanation
    orig = robust(exp, model, top_k=5, alpha1=1.0, alpha2=0.0, n_samples=1)
    assert float(orig.extras["fid_plus"][0, 0]) == pytest.approx(5 / 6, abs=1e-6)
    assert float(orig.extras["fid_minus"][0, 0]) == pytest.approx(1 / 6, abs=1e-6)


def test_empty_explanation_has_fid_plus_zero(linear_case: Case) -> None:
    model, exp = linear_case
    res = robust(exp, model, threshold=10.0, n_samples=20)
    assert int(res.extras["explanation_size"][0, 0]) == 0
    assert float(res.extras["fid_plus"][0, 0]) == 0.0
    assert float(res.extras["accuracy"]["fid_plus"][0, 0]) == 0.0
    # Fid- is still defined: G^exp is empty, each motif edge kept w.p. 0.9 -> 0.1 on average
    assert 0.0 < float(res.extras["fid_minus"][0, 0]) < 0.3


def test_whole_graph_explanation_has_fid_minus_zero_and_warns(linear_case: Case) -> None:
    model, exp = linear_case
    with pytest.warns(xai.XAIWarning, match="covers the whole graph"):
        res = robust(exp, model, top_k=100, n_samples=20)
    assert int(res.extras["explanation_size"][0, 0]) == 14
    assert float(res.extras["fid_minus"][0, 0]) == 0.0
    assert float(res.extras["stderr"]["fid_minus"][0, 0]) == 0.0


def test_binarize_rules() -> None:
    v = torch.tensor([[0.0, 1.0, 1.0, 0.0]])
    assert binarize(v).tolist() == [[False, True, True, False]]  # {0, 1}: as is
    v = torch.tensor([[0.2, -0.5, 0.11, 0.09, 0.0]])  # attributions: >= half the max, > 0
    assert binarize(v).tolist() == [[True, False, True, False, False]]
    assert binarize(torch.tensor([[-1.0, -2.0]])).tolist() == [[False, False]]
    assert binarize(v, threshold=0.1).tolist() == [[True, False, True, False, False]]
    ties = torch.tensor([[0.3, 0.5, 0.3, 0.3]])
    assert binarize(ties, top_k=2).tolist() == [[True, True, False, False]]
    assert binarize(ties, top_k=9).all()


def test_same_seed_same_values_different_seed_different_values(linear_case: Case) -> None:
    model, exp = linear_case
    metric = metrics.RobustFidelity(alpha1=0.5, alpha2=0.5, n_samples=30)
    a = metric(exp, model, random_state=3)
    b = metric(exp, model, random_state=3)
    c = metric(exp, model, random_state=4)
    for key in ("fid_plus", "fid_minus"):
        torch.testing.assert_close(a.extras[key], b.extras[key], rtol=0, atol=0)
    assert float(a.extras["fid_plus"][0, 0]) != float(c.extras["fid_plus"][0, 0])
    g = torch.Generator().manual_seed(3)
    d = metric(exp, model, random_state=g)
    e = metric(exp, model, random_state=torch.Generator().manual_seed(3))
    torch.testing.assert_close(d.scores, e.scores, rtol=0, atol=0)


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("param", "bad"), [("alpha1", 0.0), ("alpha1", 1.5), ("alpha1", -0.1),
                                            ("alpha2", 1.0), ("alpha2", -0.2), ("alpha1", "0.1"),
                                            ("alpha2", math.nan)])
def test_alpha_outside_its_range_is_named_with_the_fix(param: str, bad: Any) -> None:
    with pytest.raises(xai.InvalidParameterError, match=re.escape(
            f"The {param!r} parameter of RobustFidelity must be a float in the range ")) as err:
        metrics.RobustFidelity(**{param: bad})
    assert (err.value.parameter, err.value.owner) == (param, "RobustFidelity")
    assert "the paper's default" in str(err.value)
    assert "gives the original" in str(err.value)


@pytest.mark.parametrize(("params", "param"), [({"top_k": 0}, "top_k"),
                                               ({"top_k": 2.5}, "top_k"),
                                               ({"n_samples": 0}, "n_samples"),
                                               ({"threshold": math.inf}, "threshold"),
                                               ({"top_k": 3, "threshold": 0.5}, "threshold")])
def test_bad_binarisation_and_sample_parameters(params: dict[str, Any], param: str) -> None:
    with pytest.raises(xai.InvalidParameterError, match=re.escape(
            f"The {param!r} parameter of RobustFidelity must be")) as err:
        metrics.RobustFidelity(**params)
    assert err.value.parameter == param


def test_characterization_weights_must_sum_to_one() -> None:
    with pytest.raises(xai.InvalidParameterError, match=re.escape(
            "The 'neg_weight' parameter of Characterization must make pos_weight + "
            "neg_weight = 1")) as err:
        metrics.Characterization(pos_weight=0.5, neg_weight=0.6)
    assert "pass neg_weight=0.5" in str(err.value)
    assert metrics.Characterization(pos_weight=0.7, neg_weight=0.3).neg_weight == 0.3


@pytest.mark.parametrize("name", ["robust_fidelity", "fidelity", "characterization"])
def test_a_non_graph_explanation_is_refused(name: str) -> None:
    model = torch.nn.Sequential(torch.nn.Linear(3, 2))
    exp = xai.explain(model, torch.randn(2, 3, generator=torch.Generator().manual_seed(0)),
                      method="occlusion", target=0)
    assert not metrics.METRICS.get(name).applies_to(exp)
    with pytest.raises(xai.IncompatibleModelError, match=re.escape(
            f"Metric {name!r} does not apply to this explanation: it scores graph "
            "explanations, not 'tabular' ones.")):
        metrics.evaluate(exp, model, [name])


def test_a_node_explanation_is_refused_by_robust_fidelity() -> None:
    model = Toy("linear")
    exp = xai.explain(model, house(), method="occlusion", explain="nodes")
    with pytest.raises(xai.IncompatibleModelError, match="it needs GraphEdges features"):
        metrics.RobustFidelity()(exp, model)


class Score(torch.nn.Module):
    """One output per graph: a regressor."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = MotifCount()

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor,
                batch: torch.Tensor | None = None) -> torch.Tensor:
        if batch is None:
            batch = torch.zeros(x.shape[0], dtype=torch.long)
        out: torch.Tensor = global_add_pool(self.conv(x, edge_index), batch)
        return out


@pytest.mark.parametrize("name", ["robust_fidelity", "fidelity", "characterization"])
def test_a_regressor_is_refused_with_the_output_kind_fix(name: str) -> None:
    model = Score()
    exp = xai.explain(model, house(), method="occlusion", explain="edges")
    assert exp.model_info.output_kind == "scores"
    with pytest.raises(xai.IncompatibleModelError, match=re.escape(
            "this model's outputs were read as 'scores'. If the model is a classifier, say what "
            "it returns: explain it with adapter_options={'output_kind': 'logits'}")):
        metrics.METRICS.get(name)()(exp, model)


# -- parity with PyG's fidelity and characterization_score -----------------------------------------


class GCN(torch.nn.Module):
    def __init__(self, graph_task: bool, seed: int = 0) -> None:
        super().__init__()
        with torch.random.fork_rng():  # fixed weights, the global RNG left as it was
            torch.manual_seed(seed)
            self.c1, self.c2 = GCNConv(3, 16), GCNConv(16, 16)
            self.lin = torch.nn.Linear(16, 3)
        self.graph_task = graph_task

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor,
                batch: torch.Tensor | None = None) -> torch.Tensor:
        h = self.c2(self.c1(x, edge_index).relu(), edge_index).relu()
        if self.graph_task:
            h = global_mean_pool(h, batch)
        out: torch.Tensor = self.lin(h)
        return out


class Fixed(ExplainerAlgorithm):  # type: ignore[misc]
    """A PyG explainer algorithm that returns the masks it was given."""

    def __init__(self, edge_mask: torch.Tensor | None, node_mask: torch.Tensor | None) -> None:
        super().__init__()
        self.edge_mask, self.node_mask = edge_mask, node_mask

    def forward(self, model: Any, x: torch.Tensor, edge_index: torch.Tensor, *,
                target: torch.Tensor, index: Any = None, **kwargs: Any) -> Explanation:
        return Explanation(edge_mask=self.edge_mask, node_mask=self.node_mask)

    def supports(self) -> bool:
        return True


def random_graph(n: int, e: int, gen: torch.Generator) -> Data:
    src, dst = torch.randint(0, n, (2, e), generator=gen)
    keep = src != dst
    ei = torch.stack([src[keep], dst[keep]])
    ei = torch.unique(torch.cat([ei, ei.flip(0)], 1), dim=1)
    return Data(x=torch.randn(n, 3, generator=gen), edge_index=ei)


def pyg_explainer(model: Any, mode: str, level: str, edge_mask: Any, node_mask: Any) -> Explainer:
    return Explainer(model, algorithm=Fixed(edge_mask, node_mask), explanation_type=mode,
                     edge_mask_type=None if edge_mask is None else "object",
                     node_mask_type=None if node_mask is None else "object",
                     model_config={"mode": "multiclass_classification", "task_level": level,
                                   "return_type": "raw"})


@pytest.fixture(scope="module")
def graph_batch() -> tuple[GCN, list[Data]]:
    gen = torch.Generator().manual_seed(1)
    return GCN(graph_task=True), [random_graph(9, 14, gen) for _ in range(12)]


def _soft(exp: xai.Explanation, seed: int) -> xai.Explanation:
    gen = torch.Generator().manual_seed(seed)
    u = torch.rand(exp.values.shape, generator=gen)
    return dataclasses.replace(exp, values=torch.where(u < 0.5, u / 4, u))


@pytest.mark.parametrize("explain", ["edges", "nodes"])
@pytest.mark.parametrize("mode", ["model", "phenomenon"])
def test_fidelity_and_characterization_equal_pyg_on_a_graph_task(
        graph_batch: tuple[GCN, list[Data]], explain: str,
        mode: Literal["model", "phenomenon"]) -> None:
    model, graphs = graph_batch
    labels = torch.arange(len(graphs)) % 3  # a "phenomenon": labels not the predictions
    target = labels if mode == "phenomenon" else None
    exp = _soft(xai.explain(model, graphs, method="occlusion", explain=explain, target=target),
                seed=7)
    ours = metrics.evaluate(exp, model, [metrics.Fidelity(mode=mode),
                                         metrics.Characterization(mode=mode)])
    fid, char = ours["fidelity"], ours["characterization"]
    batch = PyGBatch.from_data_list(graphs)
    if explain == "edges":
        edge_mask = torch.cat([edges(exp, i).edge_values(exp.values[i, 0])
                               for i in range(len(exp))])
        node_mask = None
    else:
        edge_mask = None
        node_mask = torch.cat([nodes(exp, i).node_values(exp.values[i, 0])
                               for i in range(len(exp))])[:, None]
    explainer = pyg_explainer(model, mode, "graph", edge_mask, node_mask)
    explanation = explainer(batch.x, batch.edge_index, batch=batch.batch,
                            target=labels if mode == "phenomenon" else None)
    want_plus, want_minus = fidelity(explainer, explanation)
    assert float(fid.extras["fid_plus_mean"][0]) == pytest.approx(want_plus, abs=1e-6)
    assert float(fid.extras["fid_minus_mean"][0]) == pytest.approx(want_minus, abs=1e-6)
    want_char = characterization_score(torch.tensor(want_plus), torch.tensor(want_minus))
    assert float(char.extras["value"][0]) == pytest.approx(float(want_char), abs=1e-6)
    # the masks flip some predictions and not others, so the comparison can fail
    values = torch.cat([fid.extras["fid_plus"], fid.extras["fid_minus"]]).flatten()
    assert 0 < float(values.mean()) < 1, values
    # per-graph values: PyG's fidelity on each graph alone
    for i in (0, 1, 2):
        g = graphs[i]
        m_e = None if edge_mask is None else edges(exp, i).edge_values(exp.values[i, 0])
        m_n = None if node_mask is None else nodes(exp, i).node_values(exp.values[i, 0])[:, None]
        one = pyg_explainer(model, mode, "graph", m_e, m_n)
        ex = one(g.x, g.edge_index, batch=torch.zeros(g.num_nodes, dtype=torch.long),
                 target=labels[i:i + 1] if mode == "phenomenon" else None)
        assert (float(fid.extras["fid_plus"][i, 0]),
                float(fid.extras["fid_minus"][i, 0])) == pytest.approx(fidelity(one, ex))


def test_fidelity_equals_pyg_on_a_node_task() -> None:
    gen = torch.Generator().manual_seed(5)
    g = random_graph(24, 40, gen)
    model = GCN(graph_task=False, seed=2)
    nodes = [0, 3, 7, 11, 15, 19]
    exp = _soft(xai.explain(model, g, method="occlusion", explain="edges", index=nodes), seed=3)
    res = metrics.Fidelity()(exp, model)
    got = []
    for i, node in enumerate(nodes):
        mask = edges(exp, i).edge_values(exp.values[i, 0])
        explainer = pyg_explainer(model, "model", "node", mask, None)
        ex = explainer(g.x, g.edge_index, index=node)
        got.append(fidelity(explainer, ex))
    want = torch.tensor(got)
    torch.testing.assert_close(res.extras["fid_plus"][:, 0], want[:, 0], rtol=0, atol=0)
    torch.testing.assert_close(res.extras["fid_minus"][:, 0], want[:, 1], rtol=0, atol=0)
    assert 0 < float(want.mean()) < 1


def test_default_binarisation_of_a_soft_mask_is_the_reference_threshold(linear_case: Case
                                                                          ) -> None:
    model, exp = linear_case
    soft = torch.linspace(0.02, 0.7, exp.n_features)  # in [0, 1], largest 0.7
    as_mask = dataclasses.replace(exp, values=soft.reshape(1, 1, -1), multiplies_by_inputs=False)
    as_attr = dataclasses.replace(exp, values=soft.reshape(1, 1, -1))
    assert exp.multiplies_by_inputs  # integrated gradients: shares of f(x) - f(baseline)
    size_mask = robust(as_mask, model, n_samples=2).extras["explanation_size"]
    size_attr = robust(as_attr, model, n_samples=2).extras["explanation_size"]
    assert int(size_mask[0, 0]) == int((soft > 0.5).sum())
    assert int(size_attr[0, 0]) == int((soft >= 0.35).sum())
    assert int(size_mask[0, 0]) < int(size_attr[0, 0])
    assert binarize(soft[None], soft_mask=True).tolist() == [(soft > 0.5).tolist()]


def test_a_gnnexplainer_mask_is_thresholded_at_one_half() -> None:
    if "gnnexplainer" not in xai.METHODS.names():
        pytest.skip("gnnexplainer is not registered")
    model = Toy("linear")
    exp = xai.explain(model, house(), method="gnnexplainer", explain="edges", epochs=30,
                      random_state=0)
    assert not exp.multiplies_by_inputs
    res = robust(exp, model, n_samples=2)
    assert int(res.extras["explanation_size"][0, 0]) == int((exp.values[0, 0] > 0.5).sum())
