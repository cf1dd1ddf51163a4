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
    # responsiveness needs an action set, so it joins the default list only when one is given
    assert set(res) == {n for n in metrics.METRICS.names()
                        if not metrics.METRICS.get(n).needs_reexplain
                        and not metrics.METRICS.get(n).needs_params
                        and "tabular" in metrics.METRICS.get(n).modalities} - {"log_odds"}
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


def test_a_single_metric_name_is_one_metric(linear_case):
    model, x = linear_case
    exp = xai.explain(model, x, method="occlusion")
    one = metrics.evaluate(exp, model, "infidelity", random_state=0)
    listed = metrics.evaluate(exp, model, ["infidelity"], random_state=0)
    assert list(one) == ["infidelity"]
    torch.testing.assert_close(one["infidelity"].scores, listed["infidelity"].scores,
                               rtol=0, atol=0)
    inst = metrics.evaluate(exp, model, metrics.Complexity(), random_state=0)
    assert list(inst) == ["complexity"]


def test_bad_metrics_argument_and_duplicates_are_typed_errors(linear_case):
    model, x = linear_case
    exp = xai.explain(model, x, method="occlusion")
    with pytest.raises(xai.InvalidParameterError, match=re.escape(
            "The 'metrics' parameter of evaluate must be a metric name, a Metric, a list of "
            "them or None. Got 5 instead.")):
        metrics.evaluate(exp, model, 5)
    with pytest.raises(xai.InvalidParameterError, match=re.escape(
            "The 'metrics' parameter of evaluate lists 'comprehensiveness' more than once; "
            "results are keyed by metric name, so each metric may appear once. Evaluate the "
            "other settings in a separate call.")):
        metrics.evaluate(exp, model, [metrics.Comprehensiveness(fraction=0.1),
                                      "comprehensiveness"])


def test_compare_labels_same_method_explanations_by_their_differing_params(linear_case):
    model, x = linear_case
    exps = [xai.explain(model, x, method="occlusion", window=w) for w in (1, 2)]
    table = metrics.compare(exps, model, ["complexity"], random_state=0)
    assert list(table.index) == ["occlusion(window=1)", "occlusion(window=2)"]
    assert table.index.name == "method"
    for label, exp in zip(table.index, exps, strict=True):
        assert table.loc[label, "complexity"] == pytest.approx(
            metrics.Complexity()(exp, model).mean(), abs=1e-6)
    assert table.loc["occlusion(window=1)", "complexity"] != pytest.approx(
        table.loc["occlusion(window=2)", "complexity"], abs=1e-3)


def test_compare_numbers_explanations_it_cannot_tell_apart_and_keeps_their_order(linear_case):
    model, x = linear_case
    exps = [xai.explain(model, x, method=m, n_permutations=2, random_state=s)
            if m == "shapley_sampling" else xai.explain(model, x, method=m)
            for m, s in (("shapley_sampling", 0), ("occlusion", 0), ("shapley_sampling", 1))]
    table = metrics.compare(exps, model, ["complexity"])
    assert list(table.index) == ["shapley_sampling #1", "occlusion", "shapley_sampling #2"]


def test_compare_takes_names_or_a_mapping(linear_case):
    model, x = linear_case
    a, b = (xai.explain(model, x, method="occlusion", window=w) for w in (1, 2))
    by_names = metrics.compare([a, b], model, ["complexity"], names=["w1", "w2"])
    by_dict = metrics.compare({"w1": a, "w2": b}, model, ["complexity"])
    assert list(by_names.index) == list(by_dict.index) == ["w1", "w2"]
    assert by_names.equals(by_dict)
    with pytest.raises(xai.InvalidParameterError, match=re.escape(
            "The 'names' parameter of compare must be 2 distinct strings, one per explanation. "
            "Got ['w', 'w'] instead.")):
        metrics.compare([a, b], model, ["complexity"], names=["w", "w"])
    with pytest.raises(xai.InvalidParameterError, match=re.escape(
            "compare() takes row labels either as the keys of a mapping or as 'names', not "
            "both.")):
        metrics.compare({"w1": a}, model, ["complexity"], names=["x"])
    with pytest.raises(xai.InvalidParameterError, match=re.escape(
            "The 'explanations' parameter of compare must be a list of xai.Explanation or a "
            "mapping of label to Explanation. Got Explanation(method='occlusion', n_examples=3, "
            "n_outputs=1, n_features=8) instead.")):
        metrics.compare(a, model, ["complexity"])
    with pytest.raises(xai.InvalidParameterError, match=re.escape(
            "compare() needs at least one explanation; got an empty list.")):
        metrics.compare([], model, ["complexity"])


def test_compare_refuses_explanations_of_different_inputs(linear_case):
    model, x = linear_case
    a = xai.explain(model, x, method="occlusion")
    shifted = xai.explain(model, x + torch.eye(3, 8) * (torch.arange(3) == 2)[:, None],
                          method="ig")
    with pytest.raises(xai.InvalidExplanationError, match=re.escape(
            "compare() needs explanations of the same inputs, but 'integrated_gradients' and "
            "'occlusion' explain different inputs ('inputs' differ at example 2). Explain the "
            "same inputs with each method, then compare them.")):
        metrics.compare([a, shifted], model, ["complexity"])
    fewer = xai.explain(model, x[:2], method="ig")
    with pytest.raises(xai.InvalidExplanationError, match=re.escape(
            "explain different inputs (2 examples vs 3)")):
        metrics.compare([a, fewer], model, ["complexity"])


def test_compare_refuses_texts_that_differ(tiny_bert):
    a = xai.explain(tiny_bert, ["a fine film", "dull"], method="occlusion")
    b = xai.explain(tiny_bert, ["a fine film", "dull!"], method="occlusion")
    with pytest.raises(xai.InvalidExplanationError, match=re.escape(
            "explain different inputs (text 1 is 'dull!' vs 'dull')")):
        metrics.compare([a, b], tiny_bert, ["complexity"])
