"""DataFrame inputs, baselines and backgrounds are aligned by column name to the model's features.

Before this, a frame whose columns came in another order than the model was fitted on was fed by
position: wrong predictions and attributions without any error (issue 10, bug 1).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import xai
from xai.exceptions import InvalidInputError, InvalidParameterError

COLS = ["age", "income", "debt", "years"]
REV = COLS[::-1]


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    scale = np.array([10.0, 1000.0, 100.0, 1.0])  # different scales: a swap changes everything
    return pd.DataFrame(rng.normal(size=(80, 4)) * scale + scale, columns=COLS)


@pytest.fixture(scope="module")
def pipe(frame):
    y = (frame["income"] / 1000 - frame["debt"] / 100 > 0).astype(int)
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(frame, y)


def _raises(err, msg):
    return pytest.raises(err, match=re.escape(msg))


def test_reordered_frame_gives_the_values_of_the_fitted_order(pipe, frame):
    x = frame.iloc[:3]
    ref = xai.explain(pipe, x[COLS], method="occlusion", target=1)
    rev = xai.explain(pipe, x[REV], method="occlusion", target=1)
    torch.testing.assert_close(rev.values, ref.values, rtol=0, atol=0)
    torch.testing.assert_close(rev.predictions, ref.predictions, rtol=0, atol=0)
    assert rev.feature_names == [tuple(COLS)] * 3  # the model's order, not the frame's
    expected = torch.tensor(pipe.predict_proba(x)[:, 1:], dtype=torch.float32)
    torch.testing.assert_close(rev.predictions, expected, rtol=0, atol=1e-6)


def test_a_frame_missing_a_fitted_column_is_an_error_naming_it(pipe, frame):
    msg = ("The 'inputs' DataFrame does not match the columns Pipeline expects: missing "
           "['debt']. Columns are matched by name, in any order: pass a DataFrame with exactly "
           "the columns ['age', 'income', 'debt', 'years'].")
    with _raises(InvalidInputError, msg) as info:
        xai.explain(pipe, frame.iloc[:2].drop(columns="debt"), method="occlusion")
    assert info.value.value == {"missing": ["debt"], "unexpected": []}


def test_renamed_and_extra_columns_are_named(pipe, frame):
    x = frame.iloc[:2].rename(columns={"debt": "Debt"}).assign(extra=1.0)
    msg = ("The 'inputs' DataFrame does not match the columns Pipeline expects: missing "
           "['debt']; unexpected ['Debt', 'extra']. Columns are matched by name")
    with _raises(InvalidInputError, msg):
        xai.explain(pipe, x, method="occlusion")


def test_numpy_inputs_stay_positional_and_take_the_fitted_names(pipe, frame):
    exp = xai.explain(pipe, frame.iloc[:2].to_numpy(), method="occlusion", target=1)
    ref = xai.explain(pipe, frame.iloc[:2], method="occlusion", target=1)
    torch.testing.assert_close(exp.values, ref.values, rtol=0, atol=0)
    assert exp.feature_names == [tuple(COLS)] * 2


def test_a_baseline_frame_is_aligned_by_name(pipe, frame):
    x, base = frame.iloc[:2], frame.iloc[40:42]  # paired row by row
    ref = xai.explain(pipe, x, method="occlusion", target=1, baseline=base[COLS])
    rev = xai.explain(pipe, x, method="occlusion", target=1, baseline=base[REV])
    torch.testing.assert_close(rev.values, ref.values, rtol=0, atol=0)
    torch.testing.assert_close(rev.base_values, ref.base_values, rtol=0, atol=0)


def test_a_baseline_frame_missing_a_column_is_a_parameter_error(pipe, frame):
    msg = ("The 'baseline' DataFrame does not match the columns of the explained inputs: missing "
           "['age']. Columns are matched by name, in any order")
    with _raises(InvalidParameterError, msg) as info:
        xai.explain(pipe, frame.iloc[:2], method="occlusion",
                    baseline=frame.iloc[40:42].drop(columns="age"))
    assert (info.value.owner, info.value.parameter) == ("Occlusion", "baseline")


def test_a_background_frame_is_aligned_by_name(pipe, frame):
    x, bg = frame.iloc[:2], frame.iloc[40:60]
    ref = xai.explain(pipe, x, method="occlusion", target=1, baseline="mean",
                      adapter_options={"background": bg[COLS]})
    rev = xai.explain(pipe, x, method="occlusion", target=1, baseline="mean",
                      adapter_options={"background": bg[REV]})
    torch.testing.assert_close(rev.values, ref.values, rtol=0, atol=0)
    msg = ("The 'background' DataFrame does not match the columns Pipeline expects: missing "
           "['years'].")
    with _raises(InvalidParameterError, msg) as info:
        xai.SklearnAdapter(pipe, background=bg.drop(columns="years"))
    assert (info.value.owner, info.value.parameter) == ("SklearnAdapter", "background")


def test_duplicate_column_names_are_refused(pipe, frame):
    x = frame.iloc[:2, [0, 1, 2, 3, 3]]
    x.columns = [*COLS, "years"]
    msg = ("The 'inputs' DataFrame has duplicate column names ['years'], so its columns cannot "
           "be matched to features by name. Give every column a unique name (or drop the "
           "repeats: frame.loc[:, ~frame.columns.duplicated()]).")
    with _raises(InvalidInputError, msg):
        xai.explain(pipe, x, method="occlusion")
    # also for a model that does not know its feature names
    with _raises(InvalidInputError, msg.replace("['years']", "['a']")):
        xai.explain(lambda a: a.sum(1), pd.DataFrame(np.ones((1, 2)), columns=["a", "a"]),
                    method="occlusion")


def test_demo_credit_model_reordered_test_rows():
    from xai.demo import load_credit_model, split_credit

    model = load_credit_model()
    _, x_test, _, _ = split_credit()
    cols = list(x_test.columns)
    ref = xai.explain(model, x_test.iloc[:2][cols], method="occlusion", target=1)
    rev = xai.explain(model, x_test.iloc[:2][cols[::-1]], method="occlusion", target=1)
    torch.testing.assert_close(rev.values, ref.values, rtol=0, atol=0)
    assert rev.feature_names[0] == tuple(str(c) for c in model.feature_names_in_)
    with _raises(InvalidInputError, f"missing [{cols[3]!r}]"):
        xai.explain(model, x_test.iloc[:2].drop(columns=cols[3]), method="occlusion")


# -- torch modules and callables: the feature_names adapter option ------------------------------

class _Weighted(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor([[1.0], [2.0], [3.0], [4.0]]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.w


def test_torch_module_feature_names_align_frames():
    x = pd.DataFrame([[1.0, 1.0, 1.0, 1.0], [1.0, 0.0, 2.0, 0.0]], columns=COLS)
    opts = {"feature_names": COLS}
    ref = xai.explain(_Weighted(), x, method="occlusion", adapter_options=opts)
    rev = xai.explain(_Weighted(), x[REV], method="occlusion", adapter_options=opts)
    # occlusion of a linear model towards 0: w * x, in the model's column order
    expected = torch.tensor([[[1.0, 2.0, 3.0, 4.0]], [[1.0, 0.0, 6.0, 0.0]]])
    torch.testing.assert_close(ref.values, expected)
    torch.testing.assert_close(rev.values, expected)
    assert rev.feature_names == [tuple(COLS)] * 2
    arr = xai.explain(_Weighted(), x.to_numpy(), method="occlusion", adapter_options=opts)
    assert arr.feature_names == [tuple(COLS)] * 2
    msg = ("The 'inputs' DataFrame does not match the columns _Weighted expects: missing "
           "['income'].")
    with _raises(InvalidInputError, msg):
        xai.explain(_Weighted(), x.drop(columns="income"), adapter_options=opts)
    msg = ("The 'inputs' have 3 features, but _Weighted expects 4. Pass inputs of shape "
           "(n_examples, 4).")
    with _raises(InvalidInputError, msg):
        xai.explain(_Weighted(), np.ones((1, 3)), adapter_options=opts)


def test_callable_feature_names_align_frames():
    def fn(a):
        return a @ np.array([1.0, 2.0, 3.0, 4.0])

    x = pd.DataFrame([[1.0, 1.0, 2.0, 0.0]], columns=COLS)
    rev = xai.explain(fn, x[REV], method="occlusion", adapter_options={"feature_names": COLS})
    torch.testing.assert_close(rev.values, torch.tensor([[[1.0, 2.0, 6.0, 0.0]]]))
    assert rev.feature_names == [tuple(COLS)]
    msg = ("The 'n_features' parameter of CallableAdapter is 3, but 'feature_names' has 4 names. "
           "Pass only feature_names.")
    with _raises(InvalidParameterError, msg):
        xai.CallableAdapter(fn, feature_names=COLS, n_features=3)


@pytest.mark.parametrize(("names", "why"), [
    (["a", "b", "a"], "duplicate names ['a']"),
    (["a", 1], "non-str names [1]"),
    ([], "no names"),
])
def test_invalid_feature_names(names, why):
    msg = (f"The 'feature_names' parameter of TorchModuleAdapter must hold one unique str per "
           f"input column. Got {why} instead.")
    with _raises(InvalidParameterError, msg) as info:
        xai.TorchModuleAdapter(_Weighted(), feature_names=names)
    assert info.value.parameter == "feature_names"


def test_feature_names_are_for_tabular_inputs_only():
    msg = ("The 'feature_names' parameter of TorchModuleAdapter names the columns of tabular "
           "inputs, but the modality is 'image'. Drop feature_names or use modality='tabular'.")
    with _raises(InvalidParameterError, msg):
        xai.TorchModuleAdapter(_Weighted(), modality="image", feature_names=COLS)
    with _raises(InvalidParameterError, "must be a sequence of str (one per input column). Got "
                                        "str instead."):
        xai.TorchModuleAdapter(_Weighted(), feature_names="age")
