"""metrics.audit: known answers (issue 17, req. 6), cost (req. 8), groups, errors and views."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

import metrics
import xai
from metrics.agreement import agreement
from xai.exceptions import (
    IncompatibleModelError,
    InvalidExplanationError,
    InvalidParameterError,
    XAIWarning,
)

W = torch.tensor([1.0, -0.8, 0.6, 0.5, -0.4, 0.3])


class Interaction(torch.nn.Module):
    """f = w.x + x6 * x0 * x1 (spec C-4): additive where the flag x6 is 0, an interaction where
    it is 1. Two outputs (f, -f)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x[:, :6] @ W.to(x.dtype) + x[:, 6] * x[:, 0] * x[:, 1]
        return torch.stack([out, -out], 1)


class RowCounter:
    """Rows that reach the model's forward (a pre-hook)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.rows = 0
        model.register_forward_pre_hook(self._hook)

    def _hook(self, module: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        self.rows += int(args[0].shape[0])


def data(n: int, seed: int, flag: np.ndarray | None = None) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, 7)).astype(np.float32)
    x[:, 6] = (np.arange(n) % 2) if flag is None else flag
    return x


OCC = ("occlusion", {"baseline": "zeros"})
IG = ("integrated_gradients", {"baseline": "zeros"})
FC = ("faithfulness_correlation", {"subset_fraction": 0.3, "n_subsets": 50})
FAST = {"n_bootstrap": 400, "n_permutations": 400}


# -- known answers ---------------------------------------------------------------------------
def test_a_deterministic_method_is_exactly_stable_across_seeds():
    x = data(30, 0)
    report = metrics.audit(Interaction(), x, [OCC], vary={"occlusion": {"random_state": [0, 1, 2]}},
                           target=0, **FAST)
    sim = report.stability[report.stability["kind"] == "similarity"].set_index("measure")
    assert sim.loc["spearman", "mean"] == 1.0
    assert sim.loc["top_k_overlap", "mean"] == 1.0
    assert sim.loc["spearman", "spread"] == 0.0
    assert sim.loc["spearman", "n"] == 30


def test_kernel_shap_with_a_small_budget_is_not_stable_across_seeds():
    x = data(30, 0)
    ks = ("kernel_shap", {"baseline": "zeros", "budget": 16, "max_exact": 0, "paired": False})
    report = metrics.audit(Interaction(), x, [ks], vary={"kernel_shap": {"random_state": [0, 1, 2]}},
                           target=0, **FAST)
    row = report.stability.set_index("measure").loc["spearman"]
    assert row["mean"] < 0.95
    assert row["spread"] > 0.01
    # the same seeds twice: identical maps, stability exactly 1 (the seed is the only change)
    again = metrics.audit(Interaction(), x, [ks], vary={"kernel_shap": {"random_state": [3, 3]}},
                          target=0, **FAST)
    assert again.stability.set_index("measure").loc["spearman", "mean"] == 1.0


def test_faithfulness_gap_by_design_has_an_interval_that_excludes_zero():
    # group A: flag 0, additive model, occlusion is exact: faithfulness correlation is 1 for
    # every example; group B: the interaction x0 * x1 breaks additivity
    x = data(200, 2024)
    groups = np.where(x[:, 6] == 1, "B", "A")
    report = metrics.audit(Interaction(), x, [OCC, IG], [FC], groups=groups, target=0,
                           reference_group="A", random_state=0, **FAST)
    disp = report.disparity.set_index(["method", "group"])
    for method in ("occlusion", "integrated_gradients"):
        a, b = disp.loc[(method, "A")], disp.loc[(method, "B")]
        assert a["mean"] == pytest.approx(1.0, abs=1e-6)
        assert (a["ci_low"], a["ci_high"]) == pytest.approx((1.0, 1.0), abs=1e-6)
        assert a["n"] == b["n"] == 100
        gap = report.gaps[(report.gaps["method"] == method)
                          & (report.gaps["statistic"] == "difference")].iloc[0]
        assert gap["group"] == "B"
        assert gap["reference"] == "A"
        assert gap["gap"] == pytest.approx(b["mean"] - 1.0, abs=1e-6)
        assert gap["ci_high"] < 0  # the interval excludes 0
        assert gap["p_value"] == pytest.approx(1 / 401)  # no relabelling reaches the gap
    # Holm over the report's two tests: the smaller p doubled, then the running max
    diffs = report.gaps[report.gaps["statistic"] == "difference"]
    assert diffs["p_holm"].tolist() == pytest.approx([2 / 401, 2 / 401])


def test_no_difference_gives_intervals_that_cover_zero_in_at_least_90_of_100_seeds():
    covered = 0
    for seed in range(100):
        x = data(120, 1000 + seed, flag=np.ones(120))  # the interaction for everyone
        labels = np.random.default_rng(seed).integers(0, 2, 120)
        report = metrics.audit(Interaction(), x, [OCC], [FC], groups=labels, target=0,
                               random_state=seed, n_bootstrap=500, n_permutations=200)
        gap = report.gaps[report.gaps["statistic"] == "difference"].iloc[0]
        covered += bool(gap["ci_low"] <= 0 <= gap["ci_high"])
    assert covered >= 90


# -- agreement --------------------------------------------------------------------------------
def test_agreement_rows_equal_metrics_agreement_on_the_explanations():
    model = Interaction()
    x = data(25, 1)
    report = metrics.audit(model, x, [OCC, IG], measures=("feature", "rank", "sign",
                                                          "signed_rank", "rank_correlation",
                                                          "pairwise_rank", "kendall"),
                           top_k=3, target=0, **FAST)
    a = xai.explain(model, x, method="occlusion", baseline="zeros", target=0)
    b = xai.explain(model, x, method="integrated_gradients", baseline="zeros", target=0)
    want = agreement(a, b, k=3)
    per = report.agreement_per_example
    for measure, values in want.items():
        got = per[per["measure"] == measure]["value"].to_numpy()
        np.testing.assert_allclose(got, values[:, 0].numpy(), rtol=0, atol=1e-12)
        row = report.agreement.set_index("measure").loc[measure]
        assert row["mean"] == pytest.approx(float(np.nanmean(values.numpy())), abs=1e-12)
        assert row["ci_low"] <= row["mean"] <= row["ci_high"]
    assert set(report.agreement["method_a"]) == {"occlusion"}
    matrix = report.agreement_matrix("rank_correlation")
    assert matrix.loc["occlusion", "integrated_gradients"] == pytest.approx(
        float(np.nanmean(want["rank_correlation"].numpy())), abs=1e-12)
    assert matrix.loc["occlusion", "occlusion"] == 1.0


def test_on_the_additive_part_occlusion_and_ig_agree_exactly():
    # flag 0: the model is linear and both methods give w_j x_j
    x = data(20, 3, flag=np.zeros(20))
    report = metrics.audit(Interaction(), x, [OCC, IG], target=0, **FAST)
    means = report.agreement.set_index("measure")["mean"]
    assert means.loc[["feature", "rank", "sign", "signed_rank", "rank_correlation",
                      "pairwise_rank"]].tolist() == pytest.approx([1.0] * 6, abs=1e-9)


def test_different_feature_spaces_are_refused_with_a_typed_error():
    """Two jobs whose maps cover different features: the audit refuses to compare them."""
    from metrics.audit import Variant, _Builder

    def rows(names: list[str]) -> pd.DataFrame:
        return pd.DataFrame({"id": ["0"], "status": ["ok"], "error": [None],
                             "feature_names": [names], "attributions": [[1.0] * len(names)]})

    va, vb = Variant("a", "occlusion", {}, 0), Variant("b", "lime", {}, 0)
    builder = _Builder([va, vb], {va.key: rows(["x", "y"]), vb.key: rows(["x", "z"])}, ["0"], [],
                       1, ["feature"], 10, 10, 0.95, 0)
    with pytest.raises(InvalidExplanationError, match="different features"):
        builder.agreement(["a", "b"])


# -- cost -------------------------------------------------------------------------------------
def test_model_rows_equal_the_sum_of_the_explanations_and_metrics_rows(tmp_path):
    x = data(24, 5)
    model = Interaction()
    counter = RowCounter(model)
    ks = ("kernel_shap", {"baseline": "zeros", "budget": 32})
    report = metrics.audit(model, x, [OCC, ks], [FC, "complexity"],
                           vary={"kernel_shap": {"random_state": [0, 1]}}, target=0,
                           output=tmp_path / "audit", random_state=0, **FAST)
    audit_rows = counter.rows
    counter.rows = 0
    # the same work by hand: occlusion, kernel_shap seed 0 (shared by the sweep), seed 1
    for name, params, seed in (("occlusion", OCC[1], 0), ("kernel_shap", ks[1], 0),
                               ("kernel_shap", ks[1], 1)):
        exp = xai.explain(model, x, method=name, target=0, random_state=seed, **params)
        metrics.evaluate(exp, model, [metrics.FaithfulnessCorrelation(subset_fraction=0.3,
                                                                      n_subsets=50),
                                      "complexity"], random_state=seed)
    assert audit_rows == counter.rows > 0
    # a second call resumes every job from output: no model row at all, the same tables
    counter.rows = 0
    again = metrics.audit(model, x, [OCC, ks], [FC, "complexity"],
                          vary={"kernel_shap": {"random_state": [0, 1]}}, target=0,
                          output=tmp_path / "audit", random_state=0, **FAST)
    assert counter.rows == 0
    pd.testing.assert_frame_equal(again.agreement, report.agreement)
    pd.testing.assert_frame_equal(again.stability, report.stability)
    assert len(list((tmp_path / "audit" / "rows").glob("*.parquet"))) == 3


# -- groups -----------------------------------------------------------------------------------
def test_groups_from_a_series_are_matched_by_index_not_position():
    x = data(40, 6)
    frame = pd.DataFrame(x, columns=[f"f{j}" for j in range(7)], index=range(100, 140))
    labels = pd.Series(np.where(x[:, 6] == 1, "B", "A"), index=frame.index)
    shuffled = labels.sample(frac=1.0, random_state=0)
    kw = {"target": 0, "random_state": 0, **FAST}
    by_index = metrics.audit(Interaction(), frame, [OCC], [FC], groups=shuffled, **kw)
    by_list = metrics.audit(Interaction(), frame, [OCC], [FC], groups=list(labels), **kw)
    pd.testing.assert_frame_equal(by_index.disparity, by_list.disparity)
    by_fn = metrics.audit(Interaction(), frame, [OCC], [FC],
                          groups=lambda row: "B" if row["f6"] == 1 else "A", **kw)
    pd.testing.assert_frame_equal(by_fn.disparity, by_list.disparity)
    by_mask = metrics.audit(Interaction(), frame, [OCC], [FC], groups=x[:, 6] == 1, **kw)
    assert sorted(by_mask.disparity["group"]) == [False, True]
    assert by_mask.disparity.set_index("group").loc[True, "mean"] == pytest.approx(
        by_list.disparity.set_index("group").loc["B", "mean"], abs=1e-12)


def test_a_column_of_the_data_names_the_groups():
    x = data(20, 7)
    frame = pd.DataFrame(x, columns=[f"f{j}" for j in range(7)])
    labels = np.where(x[:, 6] == 1, "B", "A")
    kw = {"target": 0, "random_state": 0, **FAST}
    by_list = metrics.audit(Interaction(), frame, [OCC], [FC], groups=list(labels), **kw)
    with pytest.raises(InvalidParameterError, match="f0, f1"):
        metrics.audit(Interaction(), frame, [OCC], [FC], groups="sex", **kw)
    by_name = metrics.audit(Interaction(), frame, [OCC], [FC], groups="f6", **kw)
    assert by_name.disparity["mean"].tolist() == pytest.approx(
        by_list.disparity["mean"].tolist(), abs=1e-12)


def test_small_groups_are_flagged_with_their_count_and_unlabelled_examples_noted():
    x = data(30, 8)
    labels: list[object] = ["A"] * 22 + ["B"] * 5 + [None] * 3
    report = metrics.audit(Interaction(), x, [OCC], [FC], groups=labels, target=0,
                           min_group_size=10, **FAST)
    b = report.disparity.set_index("group").loc["B"]
    assert bool(b["too_small"])
    assert b["n"] == 5
    assert np.isnan(b["mean"])
    assert report.disparity.set_index("group").loc["A", "n"] == 22
    gap = report.gaps[report.gaps["statistic"] == "difference"].iloc[0]
    assert np.isnan(gap["gap"])
    assert np.isnan(gap["p_value"])
    assert any("3 example(s) have no group label" in note for note in report.notes)


def test_one_group_warns_and_leaves_the_disparity_tables_empty():
    x = data(12, 9)
    with pytest.warns(XAIWarning, match="1 group"):
        report = metrics.audit(Interaction(), x, [OCC], [FC], groups=["A"] * 12, target=0, **FAST)
    assert report.disparity.empty
    assert report.gaps.empty


# -- recommend --------------------------------------------------------------------------------
def _report(summary: list[tuple[str, str, float, float, float]],
            higher: dict[str, bool]) -> metrics.AuditReport:
    frame = pd.DataFrame(summary, columns=["metric", "method", "mean", "ci_low", "ci_high"])
    empty = pd.DataFrame()
    return metrics.AuditReport(
        agreement=pd.DataFrame(columns=["method_a", "method_b", "measure", "mean"]),
        agreement_per_example=empty, stability=empty, disparity=empty, gaps=empty, scores=empty,
        methods=tuple(dict.fromkeys(frame["method"])), metrics=tuple(dict.fromkeys(frame["metric"])),
        higher_is_better=higher, metric_summary=frame)


def test_recommend_picks_a_separated_winner_and_says_why():
    report = _report([("comprehensiveness", "ig", 0.40, 0.35, 0.45),
                      ("comprehensiveness", "lime", 0.20, 0.15, 0.25),
                      ("max_sensitivity", "ig", 0.9, 0.8, 1.0),
                      ("max_sensitivity", "lime", 0.1, 0.05, 0.15)],
                     {"comprehensiveness": True, "max_sensitivity": False})
    rec = report.recommend(prefer=["comprehensiveness", "max_sensitivity"])
    assert rec.method == "ig"
    assert "comprehensiveness" in rec.reason
    assert "0.4 [0.35, 0.45]" in rec.reason
    # the preference order decides: max_sensitivity first picks lime (lower is better)
    assert report.recommend(prefer=["max_sensitivity"]).method == "lime"
    assert rec.evidence.set_index("method").loc["ig", "comprehensiveness"] == 0.40


def test_recommend_goes_to_the_next_metric_when_intervals_overlap_and_may_find_no_winner():
    report = _report([("comprehensiveness", "ig", 0.40, 0.30, 0.50),
                      ("comprehensiveness", "lime", 0.38, 0.28, 0.48),
                      ("max_sensitivity", "ig", 0.9, 0.8, 1.0),
                      ("max_sensitivity", "lime", 0.1, 0.05, 0.15),
                      ("complexity", "ig", 2.0, 1.9, 2.1),
                      ("complexity", "lime", 2.05, 1.95, 2.15)],
                     {"comprehensiveness": True, "max_sensitivity": False, "complexity": False})
    rec = report.recommend(prefer=["comprehensiveness", "max_sensitivity"])
    assert rec.method == "lime"
    assert "does not separate" in rec.reason
    assert "max_sensitivity" in rec.reason
    none = report.recommend(prefer=["comprehensiveness", "complexity"])
    assert none.method is None
    assert none.reason.startswith("No clear winner among")
    with pytest.raises(InvalidParameterError, match="prefer"):
        report.recommend(prefer=["infidelity"])


def test_recommend_needs_metrics():
    report = metrics.audit(Interaction(), data(8, 10), [OCC, IG], target=0, **FAST)
    with pytest.raises(InvalidParameterError, match="scored none"):
        report.recommend()


# -- views ------------------------------------------------------------------------------------
def test_html_and_pandas_views_hold_the_tables():
    x = data(20, 11)
    report = metrics.audit(Interaction(), x, [OCC, IG], [FC], groups=x[:, 6] == 1, target=0,
                           vary={"occlusion": {"random_state": [0, 1]}}, **FAST)
    page = report.to_html()
    for heading in ("Recommendation", "Agreement between methods", "Stability to hyperparameters",
                    "Disparity across groups", "Gaps between groups"):
        assert heading in page
    assert page == report._repr_html_() or "<h4>" in report._repr_html_()
    stacked = report.to_pandas()
    assert set(stacked["table"]) == {"agreement", "stability", "metric_summary", "disparity",
                                     "gaps"}
    assert len(stacked[stacked["table"] == "agreement"]) == len(report.agreement)
    pd.testing.assert_frame_equal(report.to_pandas("gaps"), report.gaps)
    with pytest.raises(InvalidParameterError, match="table"):
        report.to_pandas("nope")
    import matplotlib

    matplotlib.use("Agg")
    ax = report.plot_agreement("rank_correlation")
    value = report.agreement_matrix("rank_correlation").iloc[0, 1]
    assert f"{value:.2f}" in [t.get_text() for t in ax.texts]


# -- errors -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("kwargs", "parameter"), [
    ({"methods": []}, "methods"),
    ({"methods": "occlusion"}, "methods"),
    ({"methods": ["occlusion", "occlusion"]}, "methods"),
    ({"methods": [("occlusion", {"random_state": 1})]}, "methods"),
    ({"vary": {"lime": {"random_state": [0, 1]}}}, "vary"),
    ({"vary": {"occlusion": {"window": [1]}}}, "vary"),
    ({"top_k": 0}, "top_k"),
    ({"top_k": 1.5}, "top_k"),
    ({"measures": ["spearman"]}, "measures"),
    ({"on_incompatible": "ignore"}, "on_incompatible"),
    ({"groups": ["A", "B"]}, "groups"),
    ({"min_group_size": 1}, "min_group_size"),
    ({"groups": ["A"] * 4 + ["B"] * 4, "reference_group": "C"}, "reference_group"),
])
def test_bad_arguments_raise_typed_errors_naming_the_parameter(kwargs, parameter):
    args = {"methods": ["occlusion"], "metrics": [FC], "target": 0, **FAST, **kwargs}
    with pytest.raises(InvalidParameterError) as err:
        metrics.audit(Interaction(), data(8, 12), **args)
    assert err.value.parameter == parameter


def test_a_method_that_cannot_explain_the_model_is_skipped_or_raised():
    from sklearn.linear_model import LogisticRegression

    x = data(40, 13)
    clf = LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))
    with pytest.warns(XAIWarning, match="leaves out 'ig'"):
        report = metrics.audit(clf, x, ["ig", "occlusion"], **FAST)
    assert list(report.skipped) == ["ig"]
    assert "GRADIENTS" in report.skipped["ig"]
    assert report.methods == ("occlusion",)
    with pytest.raises(IncompatibleModelError):
        metrics.audit(clf, x, ["ig", "occlusion"], on_incompatible="raise", **FAST)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", XAIWarning)
        with pytest.raises(InvalidParameterError, match="no method"):
            metrics.audit(clf, x, ["ig"], **FAST)


def test_the_seed_floor_of_a_parameter_sweep_is_the_seed_sweeps_similarity():
    x = data(20, 14)
    ks = ("kernel_shap", {"baseline": "zeros", "budget": 24, "max_exact": 0})
    report = metrics.audit(Interaction(), x, [ks], target=0, **FAST,
                           vary={"kernel_shap": {"random_state": [0, 1, 2],
                                                 "paired": [True, False]}})
    sim = report.stability[report.stability["kind"] == "similarity"].set_index(
        ["parameter", "measure"])
    for measure in ("spearman", "top_k_overlap"):
        assert sim.loc[("paired", measure), "seed_floor"] == sim.loc[("random_state", measure),
                                                                      "mean"]
        assert np.isnan(sim.loc[("random_state", measure), "seed_floor"])
