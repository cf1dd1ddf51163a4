"""Responsiveness scores: the spec's known answers (reachml's test cases), closed forms, and the
rules of reachable sets (immutable -> 0, one-hot moves as a unit, linkages, sampling)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import xai
from xai.exceptions import InvalidInputError, InvalidParameterError


def rule(fn):
    """A classifier from a 0/1 decision rule on numpy rows: probabilities (1 - y, y)."""

    def model(x):
        y = fn(np.asarray(x, dtype=np.float64)).astype(np.float64)
        return np.stack([1 - y, y], axis=1)

    return model


def resp(fn, X, actions, **kw):
    kw.setdefault("random_state", 0)
    exp = xai.explain(rule(fn), np.asarray(X, dtype=np.float64), method="responsiveness",
                      action_set=actions, target=1,
                      adapter_options={"output_kind": "probabilities"}, **kw)
    return exp


def separable_actions(direction=0):
    X = np.array([[0.0, 0.0], [2.0, 1.0]])
    actions = xai.ActionSet.from_dataframe(X, names=["x1", "x2"])
    actions["x1"].ub = 5
    actions["x1"].step_direction = direction
    return X, actions


def above_two(x):
    return x[:, 0] > 2


# -- spec §7 known answers ---------------------------------------------------------------------

def test_rs1_rs2_separable_no_constraints():
    X, actions = separable_actions()
    exp = resp(above_two, X, actions)
    # R_1(0,0) = {1..5} x {0}: 3 of 5 above 2; R_1(2,1) = {0,1,3,4,5}: 3 of 5; x2 never matters
    torch.testing.assert_close(exp.values[:, 0], torch.tensor([[0.6, 0.0], [0.6, 0.0]]))
    assert exp.extras["n_actions"][:, 0].tolist() == [[5, 1], [5, 1]]
    assert bool(exp.extras["enumerated"].all())


def test_rs3_monotone():
    X, actions = separable_actions(direction=+1)
    exp = resp(above_two, X, actions)
    # (0,0): {1..5} -> 3/5; (2,1): {3,4,5} -> 1
    torch.testing.assert_close(exp.values[:, 0], torch.tensor([[0.6, 0.0], [1.0, 0.0]]))


def test_rs4_all_immutable_is_exactly_zero_and_fixed():
    X, actions = separable_actions()
    actions["x1"].actionable = False
    actions["x2"].actionable = False
    exp = resp(above_two, X, actions)
    assert exp.values.abs().sum() == 0
    assert exp.extras["fixed_prediction"][:, 0].tolist() == [True, True]
    assert exp.extras["fixed_search"] == [["exhaustive"], ["exhaustive"]]  # a proof


def thermometer_actions(direction=0):
    X = np.array([[0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    names = ["util_geq_25", "util_geq_50", "util_geq_75", "util_geq_100"]
    actions = xai.ActionSet.from_dataframe(X, names=names)
    actions.add_constraint(xai.Thermometer(names, step_direction=direction))
    return X, actions


def below_75(x):
    return x[:, 2] == 0


def test_rs5_rs6_thermometer_free():
    X, actions = thermometer_actions()
    exp = resp(below_75, X, actions)
    # (0,0,0,0): R_2 = {(1,1,0,0), (1,1,1,0), (1,1,1,1)}, one of three below 75
    torch.testing.assert_close(exp.values[0, 0], torch.tensor([1.0, 1 / 3, 0.0, 0.0]))
    torch.testing.assert_close(exp.values[1, 0], torch.tensor([1.0, 1.0, 1.0, 0.0]))
    assert exp.extras["n_actions"][0, 0].tolist() == [1, 3, 2, 1]


def test_rs7_thermometer_down_only():
    X, actions = thermometer_actions(direction=-1)
    exp = resp(below_75, X[:1], actions)
    assert exp.values.abs().sum() == 0


def test_rs8_linear_threshold_closed_form_on_random_integer_grids():
    rng = np.random.default_rng(7)
    for trial in range(5):
        d = 4
        ub = rng.integers(3, 9, d).astype(float)
        X = np.stack([rng.integers(0, ub + 1) for _ in range(12)]).astype(float)
        w, t = rng.normal(size=d), float(rng.normal())
        actions = xai.ActionSet.from_dataframe(X)
        for j in range(d):
            actions[j].lb, actions[j].ub = 0.0, float(ub[j])
            actions[j].variable_type = "int"
        exp = resp(lambda x, w=w, t=t: x @ w >= t, X, actions, find_fixed=False)
        for i, x in enumerate(X):
            for j in range(d):
                grid = np.arange(0, ub[j] + 1)
                grid = grid[grid != x[j]]
                rest = t - (x @ w - w[j] * x[j])
                expected = np.mean(w[j] * grid >= rest)
                assert float(exp.values[i, 0, j]) == pytest.approx(expected, abs=1e-6), (trial, i, j)


# -- rules of reachable sets -------------------------------------------------------------------

def test_one_hot_group_moves_as_a_unit():
    X = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    names = ["car", "education", "other"]
    actions = xai.ActionSet.from_dataframe(X, names=names)
    actions.add_constraint(xai.OneHot(names))
    seen = []

    def model(x):
        seen.append(np.asarray(x).copy())
        return rule(lambda z: z[:, 2] == 1)(x)

    exp = xai.explain(model, X, method="responsiveness", action_set=actions, target=1,
                      adapter_options={"output_kind": "probabilities"}, random_state=0)
    # from "car": dropping car reaches education or other (1 of 2); turning on education or
    # other is a switch of category (one action each)
    torch.testing.assert_close(exp.values[0, 0], torch.tensor([0.5, 0.0, 1.0]))
    torch.testing.assert_close(exp.values[1, 0], torch.tensor([0.0, 0.5, 1.0]))
    scored = np.concatenate(seen)
    assert np.all(scored.sum(axis=1) == 1), "every scored point keeps exactly one category"


def test_directional_linkage_moves_an_immutable_target():
    X = np.array([[0.0, 22.0], [2.0, 23.0]])
    actions = xai.ActionSet.from_dataframe(X, names=["years_at_residence", "age"])
    actions["years_at_residence"].ub = 5
    actions["age"].actionable = False
    actions.add_constraint(xai.DirectionalLinkage(["years_at_residence", "age"], scales=[1, 1]))
    # approved when age >= 25: only reachable through years at residence
    exp = resp(lambda x: x[:, 1] >= 25, X, actions)
    # (0, 22): years 1..5 bring age to 23..27, three reach 25; (2, 23): years 0,1,3,4,5 -> age
    # 21,22,24,25,26: two of five
    torch.testing.assert_close(exp.values[:, 0], torch.tensor([[0.6, 0.0], [0.4, 0.0]]))


def test_linkage_with_immutable_source_is_refused():
    X = np.array([[0.0, 22.0]])
    actions = xai.ActionSet.from_dataframe(X, names=["years_at_residence", "age"])
    actions["years_at_residence"].actionable = False
    with pytest.raises(InvalidParameterError, match="source 'years_at_residence' is immutable"):
        actions.add_constraint(xai.DirectionalLinkage(["years_at_residence", "age"]))


def test_if_then_constrains_the_reached_point():
    # if n_loans >= 2 then guarantor must be 1; approval needs n_loans >= 2
    X = np.array([[0.0, 0.0]])
    actions = xai.ActionSet.from_dataframe(np.array([[0.0, 0.0], [3.0, 1.0]]),
                                           names=["n_loans", "guarantor"])
    actions.add_constraint(xai.IfThen(if_=("n_loans", ">=", 2), then=("guarantor", "==", 1)))
    exp = resp(lambda x: x[:, 0] >= 2, X, actions)
    # n_loans -> 1 alone; -> 2 and 3 only with the guarantor: 2 of 3 values reach approval
    torch.testing.assert_close(exp.values[0, 0], torch.tensor([2 / 3, 0.0]))


def test_sampling_converges_to_enumeration_like_one_over_sqrt_n():
    rng = np.random.default_rng(3)
    X = rng.integers(0, 40, size=(6, 3)).astype(float)
    actions = xai.ActionSet.from_dataframe(X)
    for j in range(3):
        actions[j].lb, actions[j].ub = 0.0, 60.0
    w = np.array([1.0, -0.5, 0.3])

    def fn(x):
        return x @ w >= 25

    exact = resp(fn, X, actions, find_fixed=False).values
    errors = []
    ns = [25, 100, 400, 1600]
    for n in ns:
        errs = [float((resp(fn, X, actions, max_enumerate=10, n_samples=n, find_fixed=False,
                            random_state=s).values - exact).abs().mean()) for s in range(6)]
        errors.append(np.mean(errs))
    slope = np.polyfit(np.log(ns), np.log(errors), 1)[0]
    assert -0.75 < slope < -0.3, (errors, slope)
    assert errors[-1] < 0.02


def test_stderr_of_a_sampled_score_is_binomial():
    X = np.array([[0.0]])
    actions = xai.ActionSet([xai.ActionElement("x", lb=-1.0, ub=1.0)])
    exp = resp(lambda x: x[:, 0] > 0.5, X, actions, n_samples=400)
    p = float(exp.values[0, 0, 0])
    assert p == pytest.approx(0.25, abs=4 * np.sqrt(0.25 * 0.75 / 400))  # P(U(-1,1) > 0.5)
    assert float(exp.extras["stderr"][0, 0, 0]) == pytest.approx(np.sqrt(p * (1 - p) / 400),
                                                                 rel=1e-5)
    assert not bool(exp.extras["enumerated"][0, 0, 0])


def test_same_seed_same_values_and_no_global_rng():
    X = np.random.default_rng(0).normal(size=(5, 3))
    actions = xai.ActionSet.from_dataframe(X)
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    np_state = np.random.get_state()[1].copy()
    a = resp(lambda x: x.sum(1) > 1, X, actions, n_samples=50, random_state=4).values
    b = resp(lambda x: x.sum(1) > 1, X, actions, n_samples=50, random_state=4).values
    c = resp(lambda x: x.sum(1) > 1, X, actions, n_samples=50, random_state=5).values
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert np.array_equal(np.random.get_state()[1], np_state)


def test_duplicate_rows_and_candidates_are_scored_once():
    X, actions = separable_actions()
    calls = []

    def model(x):
        calls.append(len(x))
        return rule(above_two)(x)

    X3 = np.concatenate([X, X, X])
    exp = xai.explain(model, X3, method="responsiveness", action_set=actions, target=1,
                      adapter_options={"output_kind": "probabilities"}, random_state=0)
    assert torch.equal(exp.values[:2], exp.values[2:4])
    assert torch.equal(exp.values[:2],
                                                                        exp.values[4:])
    # (0,0) reaches {1..5}x{0} and (0,1); (2,1) reaches {0,1,3,4,5}x{1} and (2,0): 12
    # candidates, of which (2,0) and (0,1) appear twice: 10 distinct, plus the 2 distinct inputs,
    # whatever the number of duplicate rows
    assert int(exp.extras["n_rows"]) == 10 + 2
    assert int(exp.extras["n_model_calls"]) == 2  # inputs once, then candidates in one batch
    assert calls == [6, 2, 10]  # the target (all rows), then the engine's two calls


def test_dataframe_columns_are_matched_by_name():
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"a": rng.integers(0, 5, 30).astype(float),
                      "b": rng.integers(0, 3, 30).astype(float), "c": rng.normal(size=30)})
    y = (X["a"] + X["b"] > 4).astype(int)
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit(X, y)
    actions = xai.ActionSet.from_dataframe(X[["c", "b", "a"]])  # another column order
    actions["c"].actionable = False
    exp = xai.explain(model, X.iloc[:8], method="responsiveness", action_set=actions,
                      random_state=0)
    assert exp.values.shape == (8, 1, 3)
    assert exp.values[:, 0, 2].abs().sum() == 0  # c (immutable) is the data's third column
    extra = X.assign(d=1.0)
    with pytest.raises(InvalidInputError, match=r"\['d'\] are not in the action set"):
        xai.explain(LogisticRegression().fit(extra, y), extra, method="responsiveness",
                    action_set=actions)


def test_fixed_prediction_needs_two_features_at_once():
    # approval needs both x1 = 1 and x2 = 1: no single feature helps, a joint action does
    X = np.array([[0.0, 0.0], [0.0, 0.0]])
    actions = xai.ActionSet.from_dataframe(np.array([[0.0, 0.0], [1.0, 1.0]]))
    exp = resp(lambda x: (x[:, 0] == 1) & (x[:, 1] == 1), X[:1], actions)
    assert exp.values.abs().sum() == 0
    assert exp.extras["fixed_prediction"].tolist() == [[False]]
    assert exp.extras["fixed_search"] == [["exhaustive"]]
    actions["x1"].actionable = False
    exp = resp(lambda x: (x[:, 0] == 1) & (x[:, 1] == 1), X[:1], actions)
    assert exp.extras["fixed_prediction"].tolist() == [[True]]


def test_threshold_on_probabilities():
    X = np.array([[0.0]])
    actions = xai.ActionSet([xai.ActionElement("x", lb=0.0, ub=10.0, variable_type="int")])

    def model(x):
        p = np.asarray(x, dtype=np.float64)[:, 0] / 10
        return np.stack([1 - p, p], 1)

    kw = {"action_set": actions, "target": 1, "adapter_options": {"output_kind": "probabilities"}}
    argmax = xai.explain(model, X, method="responsiveness", **kw)
    strict = xai.explain(model, X, method="responsiveness", threshold=0.8, **kw)
    assert float(argmax.values[0, 0, 0]) == pytest.approx(6 / 10)  # p >= 0.5 for x in 5..10
    assert float(strict.values[0, 0, 0]) == pytest.approx(3 / 10)  # p >= 0.8 for x in 8..10


def test_rows_already_at_the_target_are_flagged():
    X, actions = separable_actions()
    X = np.array([[0.0, 0.0], [4.0, 1.0]])
    exp = resp(above_two, X, actions)
    assert exp.extras["at_target"][:, 0].tolist() == [False, True]
    assert exp.extras["fixed_search"][1] == ["at target"]


# -- bad input ---------------------------------------------------------------------------------

def test_action_set_is_required_with_a_fix():
    with pytest.raises(InvalidParameterError, match="'action_set' parameter of Responsiveness"):
        xai.explain(rule(above_two), np.zeros((1, 2)), method="responsiveness")


def test_rows_outside_the_bounds_are_refused_with_the_row_and_the_fix():
    X, actions = separable_actions()
    with pytest.raises(InvalidInputError, match=r"Row 1 .* x1 = 7, outside .* \[0, 5\]"):
        resp(above_two, np.array([[0.0, 0.0], [7.0, 0.0]]), actions)


def test_rows_breaking_a_constraint_are_refused():
    X = np.array([[1.0, 0.0], [0.0, 1.0]])
    actions = xai.ActionSet.from_dataframe(X, names=["a", "b"])
    actions.add_constraint(xai.OneHot(["a", "b"]))
    with pytest.raises(InvalidInputError, match=r"Row 0 .* breaks OneHot\(a, b\)"):
        resp(lambda x: x[:, 0] == 1, np.array([[1.0, 1.0]]), actions)


def test_feature_count_mismatch_for_arrays():
    X, actions = separable_actions()
    with pytest.raises(InvalidInputError, match="action set has 2 features but 'inputs' has 3"):
        resp(above_two, np.zeros((1, 3)), actions)


def test_torch_module_with_logits():
    torch_model = torch.nn.Linear(2, 2)
    with torch.no_grad():
        torch_model.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0]]))
        torch_model.bias.copy_(torch.tensor([0.0, -2.5]))
    # class 1 wins when x1 + x2 > 2.5
    X = np.array([[0.0, 1.0], [1.0, 0.0]], dtype=np.float32)
    actions = xai.ActionSet.from_dataframe(np.array([[0.0, 0.0], [3.0, 3.0]]))
    exp = xai.explain(torch_model, X, method="responsiveness", action_set=actions,
                      random_state=0)
    # (0,1): x1 in {1,2,3} -> sums 2,3,4: two win; x2 in {0,2,3} -> sums 0,2,3: one wins
    torch.testing.assert_close(exp.values[:, 0], torch.tensor([[2 / 3, 1 / 3], [1 / 3, 2 / 3]]))
