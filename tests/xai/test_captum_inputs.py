"""What a captum user brings: feature groups (captum's ``feature_mask``), several input tensors
with per-input baselines and extra forward arguments, baselines paired with their rows, and bool
inputs. Every value is checked against live captum on captum's own basic models, or against a
closed form."""

from __future__ import annotations

import re
import tempfile

import numpy as np
import pandas as pd
import pytest
import torch
from captum.attr import FeatureAblation, IntegratedGradients, ShapleyValues
from captum.testing.helpers.basic_models import (
    BasicModel2,
    BasicModel4_MultiArgs,
    BasicModel_ConvNet_One_Conv,
    BasicModel_MultiLayer,
    BasicModel_MultiLayer_MultiInput,
    BasicModelBoolInput,
)

import metrics
import xai

X1 = torch.tensor([[23.0, 100.0, 0.0], [20.0, 50.0, 30.0]])
X2 = torch.tensor([[20.0, 50.0, 30.0], [0.0, 100.0, 0.0]])
X3 = torch.tensor([[0.0, 100.0, 10.0], [2.0, 10.0, 3.0]])


def _cat(attr: tuple[torch.Tensor, ...]) -> torch.Tensor:
    return torch.cat([a.flatten(1) for a in attr], 1)


# -- feature groups -----------------------------------------------------------------------------
def test_grouped_occlusion_matches_captum_feature_ablation_with_a_mask():
    model, x = BasicModel_MultiLayer(), torch.tensor([[20.0, 50.0, 30.0]])
    ref = FeatureAblation(model).attribute(x, target=0, feature_mask=torch.tensor([[0, 0, 1]]))
    exp = xai.explain(model, x, method="occlusion", target=0, feature_groups=[0, 0, 1])
    assert exp.values.shape == (1, 1, 2)
    torch.testing.assert_close(exp.values[0, 0], ref[0, [0, 2]], rtol=0, atol=1e-4)
    torch.testing.assert_close(exp.values_for(0)[:, 0], ref, rtol=0, atol=1e-4)
    assert exp.feature_names == [("group 0", "group 1")]


def test_grouped_shapley_with_two_players_is_captums_exact_shapley():
    # two players: every antithetic pair holds both orders, so sampling is exact
    model, x = BasicModel_MultiLayer(), torch.tensor([[20.0, 50.0, 30.0], [1.0, -2.0, 3.0]])
    mask = torch.tensor([[0, 0, 1]])
    ref = ShapleyValues(model).attribute(x, target=0, feature_mask=mask)
    exp = xai.explain(model, x, method="shapley_sampling", target=0, feature_groups=mask,
                      n_permutations=2, random_state=0)
    torch.testing.assert_close(exp.values_for(0)[:, 0], ref, rtol=0, atol=1e-4)


def test_ig_summed_per_group_equals_captum_ig_summed_over_the_group():
    model, x = BasicModel_MultiLayer(), torch.tensor([[20.0, 50.0, 30.0]])
    ref = IntegratedGradients(model).attribute(x, target=0, n_steps=50)
    exp = xai.explain(model, x, method="ig", target=0, n_steps=50, feature_groups=[1, 0, 1])
    torch.testing.assert_close(exp.values[0, 0], torch.stack([ref[0, 1], ref[0, 0] + ref[0, 2]]),
                               rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("method", ["occlusion", "shapley_sampling", "kernel_shap", "ig"])
def test_one_group_of_every_feature_of_an_additive_model_gets_the_sum(method):
    w = torch.tensor([[1.5], [-2.0], [0.5], [3.0]])
    model = torch.nn.Linear(4, 1)
    with torch.no_grad():
        model.weight.copy_(w.T)
        model.bias.fill_(0.25)
    x = torch.tensor([[1.0, 2.0, -1.0, 0.5], [0.0, -1.0, 2.0, 1.0]])
    exp = xai.explain(model, x, method=method, target=0, feature_groups=[0, 0, 0, 0],
                      random_state=0)
    torch.testing.assert_close(exp.values[:, 0, 0], (x @ w)[:, 0], rtol=1e-5, atol=1e-5)


def test_dict_groups_on_the_demo_credit_model_are_named_and_additive():
    from xai.demo import load_credit_model, split_credit

    model, rows = load_credit_model(), split_credit()[1].iloc[:3]
    groups = {"loan": ["duration", "credit_amount", "installment_rate"],
              "history": ["credit_history", "existing_credits"]}
    exp = xai.explain(model, rows, method="shapley_sampling", target="1", n_permutations=20,
                      feature_groups=groups, random_state=0)
    names = exp.feature_names[0]
    assert len(names) == 20 - 5 + 2
    assert names.index("loan") == 1  # groups sit where their first column is
    assert "duration" not in names
    assert "purpose" in names
    torch.testing.assert_close(exp.values.sum(-1), exp.predictions - exp.base_values,
                               rtol=1e-5, atol=1e-5)  # efficiency over the groups
    # the groups are part of the feature space: saved, loaded and scored alike
    with tempfile.TemporaryDirectory() as folder:
        exp.save(folder)
        back = xai.Explanation.load(folder)
    assert back.feature_names == exp.feature_names
    a = metrics.evaluate(exp, model, ["comprehensiveness"])["comprehensiveness"].scores
    b = metrics.evaluate(back, model, ["comprehensiveness"])["comprehensiveness"].scores
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_per_example_groups_give_each_row_its_own_features():
    model = torch.nn.Linear(3, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 2.0, 3.0]]))
    x = torch.ones(2, 3)
    exp = xai.explain(model, x, method="occlusion", target=0,
                      feature_groups=[[0, 0, 1], [0, 1, 2]])
    assert exp.feature_mask is not None
    torch.testing.assert_close(exp[0].values[0, 0], torch.tensor([3.0, 3.0]))
    torch.testing.assert_close(exp[1].values[0, 0], torch.tensor([1.0, 2.0, 3.0]))


@pytest.mark.parametrize(("groups", "message"), [
    ([0, 1], "The 'feature_groups' parameter of Occlusion has shape (2,), but the inputs are "
             "2 example(s) of shape (3,). Pass one group id per element: an int array of shape "
             "(3,) or (1, 3) or (2, 3), or a dict of group name to columns."),
    ([0.5, 1, 2], "The 'feature_groups' parameter of Occlusion must hold integer group ids; "
                  "got dtype float64."),
    ([0, -1, 2], "The 'feature_groups' parameter of Occlusion holds the negative id -1."),
    ({"a": ["x0", "q"]}, "The group 'a' of 'feature_groups' (Occlusion) lists the column 'q', "
                         "which the inputs do not have. Columns: ['x0', 'x1', 'x2']."),
    ({"a": [0, 1], "b": [1]}, "The column 'x1' is in two groups of 'feature_groups' "
                              "(Occlusion): 'a' and 'b'. Put each column in one group."),
])
def test_bad_groups_are_typed_errors_naming_the_fix(groups, message):
    with pytest.raises(xai.InvalidParameterError, match=re.escape(message)) as err:
        xai.explain(torch.nn.Linear(3, 1), torch.ones(2, 3), method="occlusion", target=0,
                    feature_groups=groups)
    assert err.value.parameter == "feature_groups"


# -- several input tensors and forward arguments -------------------------------------------
def test_multi_input_occlusion_and_ig_match_captum_with_a_batched_and_a_static_argument():
    model = BasicModel_MultiLayer_MultiInput()
    fa = FeatureAblation(model).attribute((X1, X2), additional_forward_args=(X3, 1), target=0)
    occ = xai.explain(model, (X1, X2), method="occlusion", target=0, forward_args=(X3, 1))
    torch.testing.assert_close(occ.values[:, 0], _cat(fa), rtol=0, atol=1e-4)
    base = (torch.zeros(1, 3), torch.ones(1, 3))
    ig = IntegratedGradients(model).attribute((X1, X2), baselines=base, target=0,
                                              additional_forward_args=(X3, 1))
    ours = xai.explain(model, (X1, X2), method="ig", target=0, forward_args=(X3, 1),
                       baseline=("zeros", torch.ones(3)))
    torch.testing.assert_close(ours.values[:, 0], _cat(ig), rtol=1e-5, atol=1e-3)
    # completeness over all inputs together
    torch.testing.assert_close(ours.values.sum(-1), ours.predictions - ours.base_values,
                               rtol=1e-4, atol=1e-3)
    assert ours.values_for(1).shape == (2, 1, 3)
    torch.testing.assert_close(ours.values_for(1)[:, 0], ig[1], rtol=1e-5, atol=1e-3)


def test_two_input_model_shapley_and_kernel_shap_match_captums_exact_shapley():
    model = BasicModel2()
    a, b = torch.tensor([[3.0], [1.0], [0.5]]), torch.tensor([[1.0], [0.5], [2.0]])
    ref = _cat(ShapleyValues(model).attribute((a, b), target=0))
    shap = xai.explain(model, (a, b), method="shapley_sampling", target=0, n_permutations=2,
                       random_state=0)
    ks = xai.explain(model, (a, b), method="kernel_shap", target=0, random_state=0)
    torch.testing.assert_close(shap.values[:, 0], ref, rtol=0, atol=1e-5)
    torch.testing.assert_close(ks.values[:, 0], ref, rtol=0, atol=1e-4)


def test_groups_shared_across_inputs_match_captum():
    model = BasicModel_MultiLayer_MultiInput()
    masks = (torch.tensor([[0, 1, 2]]), torch.tensor([[0, 0, 3]]))
    fa = FeatureAblation(model).attribute((X1, X2), additional_forward_args=(X3, 1), target=0,
                                          feature_mask=masks)
    exp = xai.explain(model, (X1, X2), method="occlusion", target=0, forward_args=(X3, 1),
                      feature_groups=masks)
    assert exp.values.shape == (2, 1, 4)
    for k in range(2):
        torch.testing.assert_close(exp.values_for(k)[:, 0], fa[k], rtol=0, atol=1e-4)


def test_a_multi_input_conv_model_matches_captum():
    model = BasicModel_ConvNet_One_Conv()
    x = torch.arange(32.0).reshape(2, 1, 4, 4)
    x2 = torch.ones(2, 1, 4, 4)
    fa = FeatureAblation(model).attribute((x, x2), target=1)
    occ = xai.explain(model, (x, x2), method="occlusion", target=1)
    torch.testing.assert_close(occ.values_for(0)[:, 0], fa[0], rtol=0, atol=1e-4)
    torch.testing.assert_close(occ.values_for(1)[:, 0], fa[1], rtol=0, atol=1e-4)
    ig = IntegratedGradients(model).attribute((x, x2), target=1, n_steps=50)
    ours = xai.explain(model, (x, x2), method="ig", target=1, n_steps=50)
    torch.testing.assert_close(ours.values[:, 0], _cat(ig), rtol=1e-4, atol=1e-3)


def test_static_arguments_reach_every_call_and_a_tensor_argument_travels_with_its_row():
    model = BasicModel4_MultiArgs()
    a, b = torch.tensor([[10.0, 3.0], [4.0, 8.0]]), torch.tensor([[2.0, 6.0], [1.0, 4.0]])
    div = torch.tensor([[2.0, 1.0], [4.0, 0.5]])
    ref = FeatureAblation(model).attribute((a, b), additional_forward_args=(div, 1))
    exp = xai.explain(model, (a, b), method="occlusion", forward_args=(div, 1))
    torch.testing.assert_close(exp.values[:, 0], _cat(ref), rtol=0, atol=1e-5)
    with tempfile.TemporaryDirectory() as folder:
        exp.save(folder)
        back = xai.Explanation.load(folder)
    assert back.inputs.static_args == ((1, 1),)
    a_scores = metrics.evaluate(exp, model, ["faithfulness_correlation"], random_state=0)
    b_scores = metrics.evaluate(back, model, ["faithfulness_correlation"], random_state=0)
    torch.testing.assert_close(a_scores["faithfulness_correlation"].scores,
                               b_scores["faithfulness_correlation"].scores, rtol=0, atol=0)


def test_forward_args_on_a_text_model_are_refused(tiny_bert):
    with pytest.raises(xai.InvalidParameterError, match=re.escape(
            "'forward_args' are passed to a torch module or a function after the explained "
            "inputs, but HFClassifierAdapter")):
        xai.explain(tiny_bert, ["a film"], method="occlusion", forward_args=(1,))


def test_inputs_with_different_row_counts_are_refused():
    with pytest.raises(xai.InvalidInputError, match=re.escape(
            "The input tensors have different numbers of rows [2, 1]")):
        xai.explain(BasicModel2(), (torch.ones(2, 1), torch.ones(1, 1)), method="occlusion",
                    target=0)


# -- baselines ------------------------------------------------------------------------------
def test_a_baseline_row_per_example_is_paired_with_its_example():
    model = BasicModel_MultiLayer()
    x = torch.tensor([[20.0, 50.0, 30.0], [1.0, -2.0, 3.0]])
    base = torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.0, 5.0]])
    ref = FeatureAblation(model).attribute(x, baselines=base, target=0)
    exp = xai.explain(model, x, method="occlusion", target=0, baseline=base)
    torch.testing.assert_close(exp.values[:, 0], ref, rtol=0, atol=1e-4)
    for i in range(2):
        alone = xai.explain(model, x[i:i + 1], method="occlusion", target=0, baseline=base[i])
        torch.testing.assert_close(alone.values[0], exp.values[i], rtol=0, atol=0)
    ig = IntegratedGradients(model).attribute(x, baselines=base, target=0)
    ours = xai.explain(model, x, method="ig", target=0, baseline=base)
    torch.testing.assert_close(ours.values[:, 0], ig, rtol=1e-5, atol=1e-3)


def test_a_background_set_is_averaged_only_when_named_so():
    model = BasicModel_MultiLayer()
    x = torch.tensor([[20.0, 50.0, 30.0], [1.0, -2.0, 3.0]])
    background = torch.tensor([[0.0, 0.0, 0.0], [2.0, 4.0, 6.0], [4.0, 2.0, 0.0]])
    with pytest.raises(xai.InvalidParameterError, match=re.escape(
            "The 'baseline' parameter of Occlusion has 3 rows, but the inputs are 2 example(s) "
            "of shape (3,). Pass one row ((3,) or (1, 3), used for every example) or one row "
            "per example ((2, 3), paired row by row). To average a background set, pass it as "
            "adapter_options={'background': rows} with baseline='mean'.")):
        xai.explain(model, x, method="occlusion", target=0, baseline=background)
    mean = xai.explain(model, x, method="occlusion", target=0, baseline="mean",
                       adapter_options={"background": background})
    row = xai.explain(model, x, method="occlusion", target=0, baseline=background.mean(0))
    torch.testing.assert_close(mean.values, row.values, rtol=0, atol=0)


# -- dtypes -----------------------------------------------------------------------------------
def test_bool_inputs_stay_bool_and_removal_is_false():
    model = BasicModelBoolInput()
    x = torch.tensor([[True, False, True], [False, True, True]])
    ref = FeatureAblation(model).attribute(x, target=0)
    exp = xai.explain(model, x, method="occlusion", target=0)
    assert exp.inputs.inputs.dtype == torch.bool
    torch.testing.assert_close(exp.values[:, 0], ref.float(), rtol=0, atol=1e-4)
    sv = xai.explain(model, x, method="shapley_sampling", target=0, n_permutations=200,
                     random_state=0)
    torch.testing.assert_close(sv.values.sum(-1), sv.predictions - sv.base_values,
                               rtol=1e-5, atol=1e-4)
    with pytest.raises(xai.InvalidInputError, match=re.escape(
            "IntegratedGradients follows gradients through the inputs, but they are bool")):
        xai.explain(model, x, method="ig", target=0)


def test_integer_token_ids_reach_an_embedding_model_for_perturbation_methods():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Embedding(10, 4), torch.nn.Flatten(),
                                torch.nn.Linear(12, 2))
    ids = torch.tensor([[1, 2, 3], [4, 5, 6]])
    exp = xai.explain(model, ids, method="occlusion", target=0, baseline=0)
    with torch.no_grad():
        full = model(ids)[:, 0]
        drops = torch.stack([full - model(ids.index_fill(1, torch.tensor([j]), 0))[:, 0]
                             for j in range(3)], 1)
    torch.testing.assert_close(exp.values[:, 0], drops, rtol=1e-6, atol=1e-6)
    with pytest.raises(xai.InvalidParameterError, match=re.escape(
            "The 'baseline' parameter of Occlusion holds values that are not whole numbers, "
            "but the inputs are int64.")):
        xai.explain(model, ids, method="occlusion", target=0, baseline=0.5)


def test_a_bool_numpy_array_reaches_a_function_as_bool():
    seen = []

    def fn(z: np.ndarray) -> np.ndarray:
        seen.append(z.dtype)
        return z.astype(float) @ np.array([[1.0], [2.0], [-3.0]])

    exp = xai.explain(fn, np.array([[True, False, True]]), method="occlusion", target=0)
    assert set(seen) == {np.dtype(bool)}
    torch.testing.assert_close(exp.values[0, 0], torch.tensor([1.0, 0.0, -3.0]))


def test_a_dataframe_of_ints_is_still_numeric_data():
    frame = pd.DataFrame({"a": [1, 2], "b": [3, 4]})
    exp = xai.explain(lambda z: z.sum(1), frame, method="occlusion", baseline="zeros")
    assert exp.inputs.inputs.dtype == torch.float32


def test_a_parameter_that_does_nothing_for_the_model_warns():
    with pytest.warns(xai.IgnoredParameterWarning, match=re.escape(
            "Occlusion's 'granularity' has no effect on this tabular model: it picks the units "
            "of a text (words or tokens). Leave it at its default.")):
        exp = xai.explain(BasicModel_MultiLayer(), torch.ones(1, 3), method="occlusion",
                          target=0, granularity="word")
    assert exp.values.shape == (1, 1, 3)


def test_smoothing_refuses_what_it_cannot_noise():
    model = BasicModel_MultiLayer_MultiInput()
    with pytest.raises(xai.InvalidInputError, match=re.escape(
            "Smoothed re-explains noisy copies of one input tensor; it does not take several "
            "input tensors or forward_args yet.")):
        xai.explain(model, (X1, X2), method="smoothed", target=0, forward_args=(X3, 1))
    with pytest.raises(xai.InvalidInputError, match=re.escape(
            "Smoothed adds Gaussian noise to the inputs, but they are bool")):
        xai.explain(BasicModelBoolInput(), torch.ones(1, 3, dtype=torch.bool),
                    method="smoothed", target=0)


@pytest.mark.slow
def test_exact_shapley_on_multi_input_models_is_captums_shapley_values():
    # with n_samples >= 2**d - 2 shap enumerates every coalition: exact Shapley values
    model = BasicModel_MultiLayer_MultiInput()
    ref = ShapleyValues(model).attribute((X1, X2), additional_forward_args=(X3, 1), target=0)
    ks = xai.explain(model, (X1, X2), method="kernel_shap", target=0, forward_args=(X3, 1),
                     random_state=0)
    torch.testing.assert_close(ks.values[:, 0], _cat(ref), rtol=1e-4, atol=1e-2)
    sv = xai.explain(model, (X1, X2), method="shapley_sampling", target=0,
                     forward_args=(X3, 1))  # 2^6 coalitions <= max_exact: enumerated
    assert bool(sv.extras["exact"].all())
    torch.testing.assert_close(sv.values[:, 0], _cat(ref), rtol=1e-4, atol=1e-2)
    conv = BasicModel_ConvNet_One_Conv()
    x = torch.arange(32.0).reshape(2, 1, 4, 4)
    x2 = torch.ones(2, 1, 4, 4)
    halves = torch.tensor([[0, 0, 1, 1]] * 2 + [[2, 2, 2, 2]] * 2)[None, None]
    masks = (halves, halves + 3)  # 6 groups over the two inputs (captum enumerates 6! orders)
    ref = ShapleyValues(conv).attribute((x, x2), target=1, feature_mask=masks)
    ks = xai.explain(conv, (x, x2), method="kernel_shap", target=1, feature_groups=masks,
                     random_state=0)
    sv = xai.explain(conv, (x, x2), method="shapley_sampling", target=1, feature_groups=masks)
    for k in range(2):
        torch.testing.assert_close(ks.values_for(k)[:, 0], ref[k], rtol=1e-4, atol=1e-2)
        torch.testing.assert_close(sv.values_for(k)[:, 0], ref[k], rtol=1e-4, atol=1e-2)


@pytest.mark.parametrize(("groups", "message"), [
    (torch.tensor([0, 1, 2]), "The 'feature_groups' parameter of Occlusion must be a tuple of 2 "
                              "int arrays for a model that takes several input tensors"),
    ((torch.tensor([0, 1, 2]), torch.tensor([0, 1])),
     "The 'feature_groups' parameter of Occlusion (input 1) has shape (2,), but the inputs are "
     "2 example(s) of shape (3,). Pass one group id per element: an int array of shape (3,) "
     "or (1, 3) or (2, 3)."),
])
def test_bad_groups_over_several_inputs_name_the_input(groups, message):
    with pytest.raises(xai.InvalidParameterError, match=re.escape(message)):
        xai.explain(BasicModel_MultiLayer_MultiInput(), (X1, X2), method="occlusion", target=0,
                    forward_args=(X3, 1), feature_groups=groups)
