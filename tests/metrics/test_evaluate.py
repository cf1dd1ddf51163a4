"""evaluate()/compare(), the registry, and the typed errors of the metrics."""

from __future__ import annotations

import dataclasses
import re

import models
import pytest
import torch

import metrics
import xai


@pytest.fixture
def linear_case():
    gen = torch.Generator().manual_seed(0)
    model = models.Linear(torch.randn(8, generator=gen))
    x = torch.randn(3, 8, generator=gen)
    return model, x


def test_evaluate_returns_one_result_per_metric(linear_case):
    model, x = linear_case
    exp = xai.explain(model, x, method="occlusion")
    res = metrics.evaluate(exp, model, ["faithfulness_correlation", "complexity",
                                        "comprehensiveness"], random_state=0)
    assert list(res) == ["faithfulness_correlation", "complexity", "comprehensiveness"]
    fc = res["faithfulness_correlation"]
    assert fc.higher_is_better
    assert fc.explanation_method == "occlusion"
    assert fc.scores.shape == (3, 1)
    torch.testing.assert_close(fc.scores, torch.ones(3, 1), rtol=0, atol=1e-6)
    table = res.to_pandas()
    assert len(table) == 9
    assert table.loc[table.metric == "complexity", "score"].tolist() == pytest.approx(
        res["complexity"].scores[:, 0].tolist(), abs=1e-7)


def test_default_metrics_are_the_applicable_cheap_ones(linear_case):
    model, x = linear_case
    exp = xai.explain(model, x, method="occlusion")
    res = metrics.evaluate(exp, model, random_state=0)
    # log-odds needs probabilities: a linear regressor's scores are not
    assert set(res) == {n for n in metrics.METRICS.names()
                        if not metrics.METRICS.get(n).needs_reexplain} - {"log_odds"}
    with pytest.raises(xai.IncompatibleModelError, match=re.escape(
            "Metric 'log_odds' does not apply to this explanation: log-odds needs probability "
            "outputs (a classifier), and these scores are not. Metrics that apply: ")):
        metrics.LogOdds()(exp, model)


def test_same_seed_same_scores(linear_case):
    model, x = linear_case
    exp = xai.explain(model, x, method="shapley_sampling", n_permutations=4, random_state=0)
    a = metrics.evaluate(exp, model, ["faithfulness_correlation"], random_state=3)
    b = metrics.evaluate(exp, model, ["faithfulness_correlation"], random_state=3)
    torch.testing.assert_close(a["faithfulness_correlation"].scores,
                               b["faithfulness_correlation"].scores, rtol=0, atol=0)


def test_compare_puts_methods_side_by_side(linear_case):
    model, x = linear_case
    exps = [xai.explain(model, x, method=m, random_state=0) for m in ("ig", "occlusion")]
    table = metrics.compare(exps, model, ["faithfulness_correlation", "complexity"],
                            random_state=0)
    assert list(table.index) == ["integrated_gradients", "occlusion"]
    # both are exact on a linear model: identical values, identical scores
    assert table.loc["occlusion", "faithfulness_correlation"] == pytest.approx(1.0, abs=1e-6)
    assert table.loc["integrated_gradients", "complexity"] == pytest.approx(
        table.loc["occlusion", "complexity"], abs=1e-6)


def test_unknown_metric_lists_the_available(linear_case):
    model, x = linear_case
    exp = xai.explain(model, x, method="occlusion")
    with pytest.raises(xai.UnknownNameError, match=re.escape(
            "Unknown metric 'infidelty'. Did you mean 'infidelity'? Available metrics: ")):
        metrics.evaluate(exp, model, ["infidelty"])


def test_explanation_of_another_model_is_rejected(linear_case):
    model, x = linear_case
    exp = xai.explain(model, x, method="occlusion")
    other = models.Linear(torch.ones(8))
    with pytest.raises(xai.InvalidExplanationError, match="computed for another model"):
        metrics.Comprehensiveness()(exp, other)
    wider = models.Linear(torch.ones(9))
    with pytest.raises(xai.InvalidExplanationError, match="cannot be run through this model"):
        metrics.Comprehensiveness()(exp, wider)


def test_target_beyond_the_model_outputs_is_rejected(mlp3):
    exp = xai.explain(mlp3, torch.randn(2, 6), method="occlusion", target=2)
    one_output = torch.nn.Sequential(torch.nn.Linear(6, 1))
    with pytest.raises(xai.InvalidExplanationError, match="explains output 2, but this model has 1"):
        metrics.Comprehensiveness()(exp, one_output)


def test_nan_attributions_are_rejected(linear_case):
    model, x = linear_case
    exp = xai.explain(model, x, method="occlusion")
    bad = dataclasses.replace(exp, values=exp.values.clone().fill_(float("nan")))
    with pytest.raises(xai.InvalidExplanationError, match="NaN or inf"):
        metrics.FaithfulnessCorrelation()(bad, model)


def test_loaded_explanation_cannot_be_rescored(linear_case, tmp_path):
    model, x = linear_case
    xai.explain(model, x, method="occlusion").save(tmp_path / "e")
    loaded = xai.Explanation.load(tmp_path / "e")
    with pytest.raises(xai.InvalidExplanationError, match="Score it before saving"):
        metrics.Comprehensiveness()(loaded, model)


def test_invalid_metric_parameters_name_the_parameter():
    with pytest.raises(xai.InvalidParameterError, match=re.escape(
            "The 'subset_fraction' parameter of FaithfulnessCorrelation must be a float in the "
            "range (0, 1). Got 1.5 instead.")):
        metrics.FaithfulnessCorrelation(subset_fraction=1.5)
    with pytest.raises(xai.InvalidParameterError, match="'by' parameter of Comprehensiveness"):
        metrics.Comprehensiveness(by="rank")


def test_evaluation_html_is_a_styled_table_of_examples_by_metrics(linear_case):
    model, x = linear_case
    exp = xai.explain(model, x, method="shapley_sampling", n_permutations=2, random_state=0)
    res = metrics.evaluate(exp, model, ["complexity", "infidelity"], random_state=0)
    html = res._repr_html_()
    head, body = html.split("<tbody>")
    assert re.findall(r"<th title=\"(\w+) is better\">([^<]*)</th>", head) == [
        ("lower", "complexity \u2193"), ("lower", "infidelity \u2193")]
    rows = re.findall(r"<tr(?: class=\"xai-mean\")?><th>([^<]*)</th>(.*?)</tr>", body)
    assert [label for label, _ in rows] == ["example 0", "example 1", "example 2", "mean"]
    for col, name in enumerate(["complexity", "infidelity"]):
        cells = [re.findall(r"<td([^>]*)>(.*?)</td>", r)[col] for _, r in rows]
        scores = res[name].scores[:, 0].tolist()
        shown = [float(re.search(r'title="([^"]+)"', a)[1]) for a, _ in cells]
        assert shown == pytest.approx([*scores, res[name].mean()], rel=1e-5)
        alphas = [float(m[1]) if (m := re.search(r"rgba\(26,152,80,([\d.]+)\)", a)) else None
                  for a, _ in cells]
        # lower is better: the smallest score is the darkest green, the largest the lightest
        best, worst = scores.index(min(scores)), scores.index(max(scores))
        assert alphas[best] == pytest.approx(0.6)
        assert alphas[worst] == pytest.approx(0.06)
        assert alphas[3] is None
    assert "method: shapley_sampling" in html
