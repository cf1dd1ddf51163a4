"""The responsiveness metric: share of an explanation's top-k reasons that people can act on."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
import torch

import metrics
import xai
from xai.exceptions import InvalidExplanationError, InvalidParameterError, XAIWarning


def rule(fn):
    def model(x):
        y = fn(np.asarray(x, dtype=np.float64)).astype(np.float64)
        return np.stack([1 - y, y], axis=1)

    return model


#: Approval needs x0 + x1 >= 3 on integer features in [0, 3]; x2 is immutable, x3 does nothing.
NAMES = ["x0", "x1", "x2", "x3"]
MODEL = rule(lambda x: x[:, 0] + x[:, 1] + 0 * x[:, 2] >= 3)


def setup(values, X=None):
    """Actions, the denied rows, and an occlusion explanation with hand-set values."""
    X = np.array([[0.0, 0.0, 1.0, 2.0], [1.0, 1.0, 0.0, 0.0], [2.0, 0.0, 3.0, 1.0]]) \
        if X is None else X
    actions = xai.ActionSet.from_dataframe(np.array([[0.0] * 4, [3.0] * 4]), names=NAMES)
    actions["x2"].actionable = False
    opts = {"adapter_options": {"output_kind": "probabilities"}}
    exp = xai.explain(MODEL, X, method="occlusion", target=1, **opts)
    exp = dataclasses.replace(exp, values=torch.tensor(values, dtype=torch.float32)[:, None, :])
    return actions, exp


def test_scores_count_responsive_reasons_among_the_top_k():
    # row 0 (0,0): x0 alone reaches 3? no (x0 <= 3: x0 = 3 -> 3 >= 3 yes) -> resp(x0) = 1/3
    # x2 immutable, x3 irrelevant -> resp 0
    values = [[0.5, 0.0, -0.9, 0.2],   # reasons x2, x0, x3 (x1 has 0 attribution): 1 of 3
              [0.1, 0.2, 0.3, 0.4],    # top-2: x3, x2 -> 0 of 2
              [0.0, 0.0, 0.0, 0.0]]    # no reason -> NaN
    actions, exp = setup(values)
    res = metrics.evaluate(exp, MODEL, ["responsiveness"], action_set=actions, top_k=3,
                           random_state=0)["responsiveness"]
    torch.testing.assert_close(res.scores[:2, 0], torch.tensor([1 / 3, 1 / 3]))
    assert torch.isnan(res.scores[2, 0])
    assert res.extras["reasons"][:2] == [["x2", "x0", "x3"], ["x3", "x2", "x1"]]
    assert res.extras["n_reasons"].tolist() == [3, 3, 0]
    resp = res.extras["responsiveness"]
    assert resp[:, 2].abs().sum() == 0
    assert resp[:, 3].abs().sum() == 0
    # x0 from 0 with x1 = 0: values 1..3, only 3 reaches: 1/3; from 1 with x1 = 1: 0,2,3 -> 2/3
    torch.testing.assert_close(resp[:2, 0], torch.tensor([1 / 3, 2 / 3]))


def test_summary_shares_recounted_by_hand():
    values = [[0.0, 0.0, -0.9, 0.2],   # reasons x2, x3: all unresponsive
              [0.1, 0.2, 0.3, 0.4],    # x3, x2, x1, x0: 2 of 4 responsive
              [0.0, 0.5, 0.0, 0.0]]    # x1 only: responsive (2 + x1 reaches 3 at x1 = 1..3)
    actions, exp = setup(values)
    res = metrics.evaluate(exp, MODEL, ["responsiveness"], action_set=actions, top_k=4,
                           random_state=0)["responsiveness"]
    torch.testing.assert_close(res.scores[:, 0], torch.tensor([0.0, 0.5, 1.0]))
    s = res.extras["summary"]
    assert s["n_denied"] == 3
    assert s["r_with_reasons"] == 1.0
    assert s["r_all_invalid"] == pytest.approx(1 / 3)
    assert s["r_at_least_1_invalid"] == pytest.approx(2 / 3)
    assert s["r_at_least_1_responsive"] == pytest.approx(2 / 3)
    assert s["r_all_responsive"] == pytest.approx(1 / 3)
    assert s["r_reasons_unresponsive"] == pytest.approx((2 + 2 + 0) / (2 + 4 + 1))
    assert s["avg_n_reasons"] == pytest.approx(7 / 3)
    assert s["r_denied_fixed"] == 0.0
    assert s["r_multi_feature_only"] == 0.0


def test_duplicate_rows_weigh_by_multiplicity():
    values = [[0.0, 0.0, -0.9, 0.2], [0.0, 0.5, 0.0, 0.0]]
    X = np.array([[0.0, 0.0, 1.0, 2.0], [2.0, 0.0, 3.0, 1.0]])
    actions, exp = setup(values, X)
    X3 = X[[0, 0, 0, 1]]
    actions3, exp3 = setup([values[0]] * 3 + [values[1]], X3)
    one = metrics.evaluate(exp, MODEL, ["responsiveness"], action_set=actions)["responsiveness"]
    three = metrics.evaluate(exp3, MODEL, ["responsiveness"],
                             action_set=actions3)["responsiveness"]
    assert one.extras["summary"]["r_all_invalid"] == 0.5
    assert three.extras["summary"]["r_all_invalid"] == 0.75
    assert int(three.extras["n_rows"]) == int(one.extras["n_rows"])  # duplicates cost nothing


def test_fixed_predictions_and_multi_feature_recourse():
    # approval needs x0 = 3 and x1 = 3 together (one feature alone never reaches)
    model = rule(lambda x: (x[:, 0] == 3) & (x[:, 1] == 3))
    X = np.array([[0.0, 0.0, 0.0, 0.0]] * 2)
    actions = xai.ActionSet.from_dataframe(np.array([[0.0] * 4, [3.0] * 4]), names=NAMES)
    exp = xai.explain(model, X, method="occlusion", target=1,
                      adapter_options={"output_kind": "probabilities"})
    exp = dataclasses.replace(exp, values=torch.ones(2, 1, 4))
    res = metrics.evaluate(exp, model, ["responsiveness"], action_set=actions)["responsiveness"]
    assert res.extras["fixed_prediction"].tolist() == [False, False]
    assert res.extras["summary"]["r_multi_feature_only"] == 1.0
    actions["x1"].actionable = False
    res = metrics.evaluate(exp, model, ["responsiveness"], action_set=actions)["responsiveness"]
    assert res.extras["fixed_prediction"].tolist() == [True, True]
    assert res.extras["fixed_search"] == ["exhaustive", "exhaustive"]
    assert res.extras["summary"]["r_denied_fixed"] == 1.0
    assert res.scores.abs().sum() == 0


def test_rows_at_the_target_are_nan_with_a_warning():
    values = [[0.5, 0.5, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0]]
    actions, exp = setup(values, np.array([[0.0, 0.0, 1.0, 0.0], [3.0, 3.0, 0.0, 0.0]]))
    with pytest.warns(XAIWarning, match="1 example\\(s\\) are already predicted as the target"):
        res = metrics.evaluate(exp, MODEL, ["responsiveness"], action_set=actions)
    scores = res["responsiveness"].scores[:, 0]
    assert not torch.isnan(scores[0])
    assert torch.isnan(scores[1])
    assert res["responsiveness"].extras["summary"]["n_denied"] == 1


def test_any_method_on_a_real_sklearn_model():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.integers(0, 4, size=(200, 4)).astype(float)
    y = (X[:, 0] + X[:, 1] - 0.5 * X[:, 2] > 3).astype(int)
    model = LogisticRegression().fit(X, y)
    actions = xai.ActionSet.from_dataframe(X, names=NAMES)
    actions["x2"].actionable = False
    denied = X[model.predict(X) == 0][:10]
    for method, kw in (("kernel_shap", {"random_state": 0}), ("lime", {"random_state": 0}),
                       ("occlusion", {}), ("shapley_sampling", {"random_state": 0})):
        exp = xai.explain(model, denied, method=method, target=1, **kw)
        res = metrics.evaluate(exp, model, ["responsiveness"], action_set=actions, top_k=2,
                               random_state=0)["responsiveness"]
        resp = xai.explain(model, denied, method="responsiveness", action_set=actions,
                           random_state=0)
        # the metric's per-feature scores are the method's (all features discrete: exact)
        torch.testing.assert_close(res.extras["responsiveness"], resp.values[:, 0])
        mag = exp.values[:, 0].abs()
        top = mag.argsort(dim=1, descending=True, stable=True)[:, :2]
        real = mag.gather(1, top) > 0
        expected = ((resp.values[:, 0].gather(1, top) > 0) & real).sum(1) / real.sum(1)
        torch.testing.assert_close(res.scores[:, 0].double(), expected.double(), msg=method)


def test_parameters_reach_only_metrics_that_take_them():
    actions, exp = setup([[0.5, 0.0, -0.9, 0.2]] * 3)
    with pytest.raises(InvalidParameterError, match="'action_st', which none of the metrics"):
        metrics.evaluate(exp, MODEL, ["responsiveness"], action_st=actions)
    with pytest.raises(InvalidParameterError, match="'action_set' parameter of Responsiveness "
                       "is required"):
        metrics.evaluate(exp, MODEL, ["responsiveness"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        both = metrics.evaluate(exp, MODEL, ["responsiveness", "complexity"],
                                action_set=actions, top_k=1)
    assert both["responsiveness"].params["top_k"] == 1
    # without an action set the default list leaves responsiveness out; with one it is in
    assert "responsiveness" not in metrics.METRICS.applicable(exp)
    assert "responsiveness" in metrics.METRICS.applicable(exp, {"action_set"})


def test_grouped_explanations_are_refused():
    from sklearn.linear_model import LogisticRegression

    X = np.random.default_rng(0).integers(0, 4, size=(40, 4)).astype(float)
    model = LogisticRegression().fit(X, (X.sum(1) > 6).astype(int))
    actions = xai.ActionSet.from_dataframe(X, names=NAMES)
    exp = xai.explain(model, X[:3], method="occlusion", feature_groups={"a": [0, 1]})
    with pytest.raises(InvalidExplanationError, match="feature groups"):
        metrics.evaluate(exp, model, ["responsiveness"], action_set=actions)


def test_responsiveness_values_are_not_scored_as_attributions():
    actions, _ = setup([[0.0] * 4] * 3)
    X = np.array([[0.0, 0.0, 1.0, 2.0]])
    resp = xai.explain(MODEL, X, method="responsiveness", action_set=actions,
                       adapter_options={"output_kind": "probabilities"})
    assert metrics.METRICS.applicable(resp, {"action_set"}) == []
    with pytest.raises(xai.IncompatibleModelError, match="not attributions"):
        metrics.evaluate(resp, MODEL, ["comprehensiveness"])
