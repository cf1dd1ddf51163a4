"""ActionSet: inference from data, checks where a contradiction is made, constraints, files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import xai
from xai.exceptions import InvalidInputError, InvalidParameterError, UnknownNameError


@pytest.fixture
def frame():
    return pd.DataFrame({
        "age": [23.0, 45.0, 31.0],
        "n_credit_cards": [0.0, 3.0, 1.0],
        "savings": [1.5, 20.25, 3.0],
        "years_at_residence": [1.0, 10.0, 2.0],
        "purpose_car": [1.0, 0.0, 0.0],
        "purpose_education": [0.0, 1.0, 0.0],
        "purpose_other": [0.0, 0.0, 1.0],
        "checking_geq_0": [1.0, 1.0, 0.0],
        "checking_geq_200": [0.0, 1.0, 0.0],
    })


def contract_actions(frame):
    actions = xai.ActionSet.from_dataframe(frame)
    actions["age"].actionable = False
    actions["n_credit_cards"].step_ub = 2
    actions["savings"].step_direction = +1
    actions.add_constraint(xai.OneHot(["purpose_car", "purpose_education", "purpose_other"]))
    actions.add_constraint(xai.Thermometer(["checking_geq_0", "checking_geq_200"],
                                           step_direction=+1))
    actions.add_constraint(xai.DirectionalLinkage(["years_at_residence", "age"], scales=[1, 1]))
    return actions


def test_types_and_bounds_are_inferred(frame):
    actions = xai.ActionSet.from_dataframe(frame)
    assert actions.names == tuple(frame.columns)
    assert [actions[n].variable_type for n in ("age", "savings", "purpose_car")] == \
        ["int", "float", "bool"]
    assert (actions["savings"].lb, actions["savings"].ub) == (1.5, 20.25)
    assert (actions["purpose_car"].lb, actions["purpose_car"].ub) == (0.0, 1.0)
    assert all(e.actionable and e.step_direction == 0 for e in actions)


def test_partitions_follow_the_constraints(frame):
    actions = contract_actions(frame)
    assert actions.partition_of("age") == ("age", "years_at_residence")
    assert actions.partition_of("purpose_education") == ("purpose_car", "purpose_education",
                                                         "purpose_other")
    assert actions.partition_of("savings") == ("savings",)
    assert len(actions.partitions()) == 5


def test_save_load_round_trip(frame, tmp_path):
    actions = contract_actions(frame)
    actions.add_constraint(xai.IfThen(if_=("n_credit_cards", ">=", 2),
                                      then=("checking_geq_0", "==", 1)))
    path = tmp_path / "actions.json"
    actions.save(path)
    loaded = xai.ActionSet.load(path)
    assert loaded == actions
    assert loaded.to_dict() == json.loads(path.read_text())
    assert loaded.partitions() == actions.partitions()
    assert loaded["n_credit_cards"].step_ub == 2.0
    assert loaded["age"].actionable is False


def test_table_view_lists_every_feature_and_its_constraints(frame):
    actions = contract_actions(frame)
    table = actions.to_pandas()
    assert list(table.index) == list(frame.columns)
    assert table.loc["age", "constraints"] == "DirectionalLinkage(years_at_residence -> age x1)"
    assert table.loc["checking_geq_0", "constraints"].startswith("Thermometer(checking_geq_0 >=")
    assert not table.loc["age", "actionable"]
    assert table.loc["savings", "step_direction"] == 1
    assert repr(actions) == "ActionSet(9 features, 8 actionable, 3 constraints)"
    assert "n_credit_cards" in str(actions)
    assert "<table" in actions._repr_html_()


# -- contradictions are refused where they are made ---------------------------------------------

def test_direction_on_an_immutable_feature(frame):
    actions = xai.ActionSet.from_dataframe(frame)
    actions["age"].actionable = False
    with pytest.raises(InvalidParameterError, match="'step_direction' of feature 'age'.*"
                       "actionable = True first"):
        actions["age"].step_direction = 1
    actions["savings"].step_direction = 1
    with pytest.raises(InvalidParameterError, match="reset step_direction to 0"):
        actions["savings"].actionable = False


@pytest.mark.parametrize(("field", "value", "match"), [
    ("lb", 99.0, r"'lb' of feature 'age' must be <= ub = 45"),
    ("step_ub", -1.0, "step_lb <= 0 <= step_ub"),
    ("step_lb", 1.0, "step_lb <= 0 <= step_ub"),
    ("step_direction", 2, "-1 .* 0 .* \\+1"),
    ("variable_type", "bool", "compatible with the bounds"),
    ("actionable", "yes", "True or False"),
])
def test_element_values_are_checked(frame, field, value, match):
    actions = xai.ActionSet.from_dataframe(frame)
    with pytest.raises(InvalidParameterError, match=match) as info:
        setattr(actions["age"], field, value)
    assert info.value.parameter == field


def test_unknown_attribute_and_feature(frame):
    actions = xai.ActionSet.from_dataframe(frame)
    with pytest.raises(AttributeError, match="has no attribute 'direction'"):
        actions["age"].direction = 1
    with pytest.raises(UnknownNameError, match="no feature 'income'"):
        actions["income"]


def test_overlapping_one_hot_groups(frame):
    actions = xai.ActionSet.from_dataframe(frame)
    actions.add_constraint(xai.OneHot(["purpose_car", "purpose_education", "purpose_other"]))
    with pytest.raises(InvalidParameterError, match="'purpose_other' is already in OneHot"):
        actions.add_constraint(xai.OneHot(["purpose_other", "checking_geq_0"]))


def test_one_hot_needs_bool_columns_with_one_mutability(frame):
    actions = xai.ActionSet.from_dataframe(frame)
    with pytest.raises(InvalidParameterError, match="'age' is int"):
        actions.add_constraint(xai.OneHot(["age", "purpose_car"]))
    actions["purpose_car"].actionable = False
    with pytest.raises(InvalidParameterError, match="some of its features are actionable"):
        actions.add_constraint(xai.OneHot(["purpose_car", "purpose_education"]))


def test_circular_linkage(frame):
    actions = xai.ActionSet.from_dataframe(frame)
    actions.add_constraint(xai.DirectionalLinkage(["years_at_residence", "age"]))
    with pytest.raises(InvalidParameterError, match="circular"):
        actions.add_constraint(xai.DirectionalLinkage(["age", "years_at_residence"]))


def test_linkage_with_a_fractional_step_between_whole_features(frame):
    actions = xai.ActionSet.from_dataframe(frame)
    with pytest.raises(InvalidParameterError, match="by 0.5, which is not a whole number"):
        actions.add_constraint(xai.DirectionalLinkage(["years_at_residence", "age"],
                                                      scales=[2, 1]))


def test_if_then_value_outside_the_bounds(frame):
    actions = xai.ActionSet.from_dataframe(frame)
    with pytest.raises(InvalidParameterError, match="outside the feature's bounds"):
        actions.add_constraint(xai.IfThen(if_=("n_credit_cards", ">=", 9),
                                          then=("checking_geq_0", "==", 1)))


@pytest.mark.parametrize(("make", "match"), [
    (lambda: xai.OneHot("purpose_car"), "list of feature names"),
    (lambda: xai.OneHot(["a"]), "at least 2 names"),
    (lambda: xai.Thermometer(["a", "b"], step_direction=3), "-1, 0 or \\+1"),
    (lambda: xai.DirectionalLinkage(["a", "b"], scales=[1, 0]), "non-zero finite"),
    (lambda: xai.IfThen(if_=("a", "~", 1), then=("b", "==", 1)), "\\(name, op, value\\)"),
])
def test_constraint_arguments_are_checked(make, match):
    with pytest.raises(InvalidParameterError, match=match):
        make()


def test_non_numeric_frame_is_refused_with_the_fix():
    with pytest.raises(InvalidInputError, match=r"\['purpose'\] are not.*Encode them first"):
        xai.ActionSet.from_dataframe(pd.DataFrame({"purpose": ["car", "tv"], "age": [1, 2]}))


def test_bad_file_is_a_typed_error(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('{"format": "something else"}')
    with pytest.raises(InvalidInputError, match="not an action set file"):
        xai.ActionSet.load(path)
    with pytest.raises(InvalidInputError, match="Cannot read the action set file"):
        xai.ActionSet.load(tmp_path / "missing.json")
    path.write_text('{"format": "posthoc-xai/action-set", "elements": [{"lb": 0}]}')
    with pytest.raises(InvalidInputError, match=r"malformed \(KeyError: 'name'\)"):
        xai.ActionSet.load(path)


def test_check_data_snaps_float32_rounding_into_the_set():
    actions = xai.ActionSet.from_dataframe(np.array([[0.1, 3.0], [0.3, 5.0]]))
    snapped = actions.check_data(np.array([[np.float32(0.3), np.float32(4.0000002)]]))
    assert snapped.tolist() == [[0.3, 4.0]]
