"""Explanation: persistence, row/output selection, transforms and shape validation."""

from __future__ import annotations

import dataclasses
import re

import models
import numpy as np
import pandas as pd
import pytest
import torch

import xai
from xai import METHODS, Explanation, InvalidExplanationError

W = torch.tensor([[1.0, 0.5], [-2.0, 1.0], [0.5, -3.0], [3.0, 0.25]])
COLUMNS = ["age", "income", "debt", "score"]
X = torch.tensor([[1.0, 1.0, 0.0, 1.0], [2.0, -1.0, 1.0, 0.5], [3.0, 2.0, 2.0, -1.0]])
BASELINE = torch.tensor([0.5, 0.0, 1.0, -1.0])


def tabular() -> Explanation:
    """Occlusion of a 2-output linear model: values[i, o, j] = W[j, o] * (x_ij - b_j)."""
    model = models.Linear(W, torch.tensor([0.1, -0.2]))
    return xai.explain(model, pd.DataFrame(X.numpy(), columns=COLUMNS), method="occlusion",
                       target="all", baseline=BASELINE)


@pytest.fixture(scope="module")
def text_exp(tiny_bert):
    texts = ["the movie was great", "a very boring plot and bad actors !", "fun film"]
    return xai.explain(tiny_bert, texts, method="shapley_sampling", n_permutations=4,
                       random_state=0)


def assert_same(a: torch.Tensor | None, b: torch.Tensor | None) -> None:
    assert a is not None
    assert b is not None
    assert a.dtype == b.dtype
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_tabular_values_are_closed_form():
    exp = tabular()
    expected = W.T[None] * (X - BASELINE)[:, None, :]
    torch.testing.assert_close(exp.values, expected, rtol=1e-6, atol=1e-6)


def test_save_load_round_trip_tabular(tmp_path):
    exp = tabular()
    exp.save(tmp_path / "tab")
    back = Explanation.load(tmp_path / "tab")
    for key in ("values", "predictions", "base_values"):
        assert_same(getattr(back, key), getattr(exp, key))
    assert_same(back.target.indices, exp.target.indices)
    assert back.target.names == exp.target.names == (("output 0", "output 1"),) * 3
    assert back.feature_mask is None
    assert exp.feature_mask is None
    assert back.names == exp.names == (tuple(COLUMNS),) * 3
    assert back.method == "occlusion"
    assert back.modality == "tabular"
    assert back.multiplies_by_inputs is exp.multiplies_by_inputs
    assert dict(back.model_info) == dict(exp.model_info)
    assert set(back.params) == set(exp.params)
    assert_same(back.params["baseline"], BASELINE)
    assert {k: v for k, v in back.params.items() if k != "baseline"} == \
        {k: v for k, v in exp.params.items() if k != "baseline"}
    assert set(back.extras) == set(exp.extras)
    for key, val in exp.extras.items():
        assert_same(back.extras[key], val)
    # the saved params rebuild the method, which reproduces the values
    again = METHODS.get(back.method)(**back.params).explain(
        models.Linear(W, torch.tensor([0.1, -0.2])), X, target="all")
    torch.testing.assert_close(again.values, back.values, rtol=1e-6, atol=1e-6)


def test_save_load_round_trip_ragged_text(tmp_path, text_exp):
    text_exp.save(tmp_path / "text")
    back = Explanation.load(tmp_path / "text")
    for key in ("values", "predictions", "base_values", "feature_mask"):
        assert_same(getattr(back, key), getattr(text_exp, key))
    assert_same(back.target.indices, text_exp.target.indices)
    assert back.target.names == text_exp.target.names
    assert back.texts == text_exp.texts
    assert back.names == text_exp.names
    assert [len(n) for n in back.names] == [4, 8, 2]
    assert back.feature_mask.sum(-1).tolist() == [4, 8, 2]
    assert back.modality == "text"
    assert dict(back.params) == dict(text_exp.params)
    assert dict(back.model_info) == dict(text_exp.model_info)
    assert "stderr" in text_exp.extras
    assert set(back.extras) == set(text_exp.extras)
    for key, val in text_exp.extras.items():
        if isinstance(val, torch.Tensor):
            assert_same(back.extras[key], val)
        else:  # e.g. the estimator's name
            assert back.extras[key] == val


@pytest.mark.parametrize(("index", "rows", "width"), [
    (slice(1, 3), [1, 2], 8), ([0, 2], [0, 2], 4), (-1, [2], 2), (0, [0], 4)])
def test_getitem_selects_rows_and_trims_padding(text_exp, index, rows, width):
    sub = text_exp[index]
    assert len(sub) == len(rows)
    assert sub.n_features == width
    torch.testing.assert_close(sub.values, text_exp.values[rows][..., :width], rtol=0, atol=0)
    assert_same(sub.feature_mask, text_exp.feature_mask[rows][:, :width])
    assert_same(sub.predictions, text_exp.predictions[rows])
    assert_same(sub.base_values, text_exp.base_values[rows])
    assert_same(sub.target.indices, text_exp.target.indices[rows])
    assert sub.names == tuple(text_exp.names[r] for r in rows)
    assert sub.texts == tuple(text_exp.texts[r] for r in rows)
    assert len(sub.features) == len(rows)
    assert_same(sub.extras["stderr"], text_exp.extras["stderr"][rows][..., :width])


def test_getitem_out_of_range_raises_index_error(text_exp):
    with pytest.raises(IndexError, match="Index 3 is out of range for an Explanation of 3"):
        text_exp[3]


def test_for_output_by_position_and_name():
    exp = tabular()
    for key in (1, -1, "output 1"):
        one = exp.for_output(key)
        assert one.n_outputs == 1
        torch.testing.assert_close(one.values, exp.values[:, 1:2], rtol=0, atol=0)
        assert_same(one.predictions, exp.predictions[:, 1:2])
        assert_same(one.base_values, exp.base_values[:, 1:2])
        assert one.target.indices.tolist() == [[1]] * 3
        assert one.target.names == (("output 1",),) * 3
    with pytest.raises(IndexError, match="Output 2 is out of range"):
        exp.for_output(2)
    with pytest.raises(InvalidExplanationError, match="'output 7' is not explained"):
        exp.for_output("output 7")


def test_top_k_orders_by_abs_value():
    exp = tabular()
    expected = exp.values.abs().argsort(dim=-1, descending=True)[..., :2]
    assert exp.top_k(2).tolist() == expected.tolist()
    by_value = exp.top_k(1, by="value")
    assert by_value.tolist() == exp.values.argmax(-1, keepdim=True).tolist()


@pytest.mark.parametrize("k", [1, 2, 5, 100])
def test_top_k_never_returns_padding(text_exp, k):
    top = text_exp.top_k(k)
    n_real = text_exp.feature_mask.sum(-1)
    assert top.shape == (3, 1, min(k, 2))  # capped by the shortest example (2 words)
    assert bool((top < n_real[:, None, None]).all())
    for i in range(3):
        real = text_exp.values[i, 0, : int(n_real[i])].abs()
        torch.testing.assert_close(text_exp.values[i, 0, top[i, 0]].abs(),
                                   real.sort(descending=True).values[: top.shape[-1]],
                                   rtol=0, atol=0)


def test_normalize_l1_and_max_abs(text_exp):
    l1 = text_exp.normalize("l1")
    torch.testing.assert_close(l1.values.abs().sum(-1), torch.ones(3, 1), rtol=1e-5, atol=1e-6)
    mx = text_exp.normalize("max_abs")
    torch.testing.assert_close(mx.values.abs().amax(-1), torch.ones(3, 1), rtol=1e-6, atol=1e-6)
    pad = ~text_exp.feature_mask[:, None, :].expand_as(l1.values)
    assert bool((l1.values[pad] == 0).all())
    scale = text_exp.values.abs().sum(-1, keepdim=True)
    torch.testing.assert_close(l1.values * scale, text_exp.values, rtol=1e-5, atol=1e-9)


def test_to_pandas_one_row_per_real_feature(text_exp):
    df = text_exp.to_pandas()
    assert len(df) == 4 + 8 + 2
    for row in df.itertuples():
        assert row.value == pytest.approx(float(text_exp.values[row.example, 0, row.feature]),
                                          rel=1e-6, abs=0)
        assert row.feature_name == text_exp.names[row.example][row.feature]
        assert row.output == text_exp.target.names[row.example][0]
    assert df.groupby("example").size().tolist() == [4, 8, 2]
    for i, group in df.groupby("example"):
        best = group.loc[group["rank"] == 1, "feature"].item()
        n = len(text_exp.names[i])
        assert best == int(text_exp.values[i, 0, :n].abs().argmax())
        assert sorted(group["rank"]) == list(range(1, n + 1))


def test_to_pandas_tabular_covers_every_output():
    exp = tabular()
    df = exp.to_pandas()
    assert len(df) == 3 * 2 * 4
    pivot = df.pivot_table(index=["example", "output"], columns="feature", values="value")
    torch.testing.assert_close(torch.tensor(pivot.to_numpy(), dtype=torch.float32),
                               exp.values.reshape(6, 4), rtol=1e-6, atol=0)


def test_wrong_prediction_shape_names_the_shapes():
    exp = tabular()
    with pytest.raises(InvalidExplanationError) as err:
        dataclasses.replace(exp, predictions=torch.zeros(3, 3))
    assert str(err.value) == ("Explanation.predictions has shape (3, 3), but values of shape "
                              "(3, 2, 4) need (3, 2).")


def test_wrong_values_ndim_is_rejected():
    exp = tabular()
    with pytest.raises(InvalidExplanationError, match=r"got \(3, 8\)"):
        dataclasses.replace(exp, values=exp.values.reshape(3, 8))


def test_normalize_with_an_unknown_norm_is_refused():
    with pytest.raises(xai.InvalidParameterError, match=re.escape(
            "The 'how' parameter of Explanation.normalize must be a str among {'l1', "
            "'max_abs'}. Got 'l3' instead.")) as err:
        tabular().normalize("l3")
    assert (err.value.parameter, err.value.value) == ("how", "l3")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"k": 2, "by": "rank"}, "The 'by' parameter of Explanation.top_k must be a str among "
                             "{'abs', 'value'}. Got 'rank' instead."),
    ({"k": 0}, "The 'k' parameter of Explanation.top_k must be an int in the range [1, inf). "
               "Got 0 instead."),
    ({"k": 1.5}, "The 'k' parameter of Explanation.top_k must be an int in the range [1, inf). "
                 "Got 1.5 instead."),
])
def test_top_k_refuses_bad_arguments(kwargs, message):
    with pytest.raises(xai.InvalidParameterError, match=re.escape(message)):
        tabular().top_k(**kwargs)


def test_for_output_refuses_bad_names_and_types_and_lists_the_outputs():
    exp = tabular()
    with pytest.raises(InvalidExplanationError, match=re.escape(
            "Output 'output 7' is not explained in every example of this Explanation. Outputs "
            "explained in every example: 'output 0', 'output 1'. Pass one of them, or a "
            "position in 0-1.")):
        exp.for_output("output 7")
    with pytest.raises(IndexError, match=re.escape(
            "Output 2 is out of range for an Explanation of 2 outputs. Pass a position in "
            "-2..1, or an output name: 'output 0', 'output 1'.")):
        exp.for_output(2)
    for bad in (1.0, True, None):
        with pytest.raises(xai.InvalidParameterError, match=re.escape(
                "The 'output' parameter of Explanation.for_output must be an int position or "
                f"an output name (str). Got {bad!r} ({type(bad).__name__}) instead.")):
            exp.for_output(bad)


def test_for_output_keeps_the_model_scores():
    exp = tabular()
    one = exp.for_output(1)
    assert_same(one.target.scores, exp.target.scores)
    torch.testing.assert_close(one.target.explained_scores(), exp.predictions[:, 1:],
                               rtol=1e-6, atol=1e-6)


def test_getitem_refuses_out_of_range_sequences_and_other_types():
    exp = tabular()
    with pytest.raises(IndexError, match=re.escape(
            "Index 7 is out of range for an Explanation of 3 examples. Pass positions in "
            "-3..2.")):
        exp[[0, 7]]
    for bad in ("a", 1.0, [0.5], [True]):
        with pytest.raises(TypeError, match=re.escape(
                "An Explanation is indexed by an int, a slice or a sequence of ints; got "
                f"{type(bad).__name__} {bad!r}.")):
            exp[bad]
    assert exp[np.int64(-1)].values.tolist() == exp.values[2:].tolist()
    assert exp[torch.tensor([2, 0])].values.tolist() == exp.values[[2, 0]].tolist()
    assert [len(e) for e in exp] == [1, 1, 1]  # iteration stops at the IndexError


def test_plot_with_an_unknown_kind_is_refused():
    with pytest.raises(xai.InvalidParameterError, match=re.escape(
            "The 'kind' parameter of Explanation.plot must be a str among {'auto', 'bar', "
            "'graph', 'heatmap', 'text'}. Got 'pie' instead.")):
        tabular().plot("pie")
