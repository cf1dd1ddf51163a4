"""Bad models, DataFrames, baselines and devices, for every registered method that takes them.

Issue 10, requirement 5 (with tests/test_bad_inputs.py): each case asserts the exception type and
pins the message.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Any

import numpy as np
import pytest
import torch
from bad_inputs import configured, fixture, raises, works

import xai
from xai import METHODS
from xai.testing import toy_inputs

# -- models that fail or answer oddly ----------------------------------------------------------


class _Broken(torch.nn.Module):
    """A torch model whose forward raises its own error."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        msg = "the model's own error"
        raise RuntimeError(msg)


class _Odd(torch.nn.Module):
    """A torch model returning something other than scores."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.linear = torch.nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> Any:
        y = self.linear(x)
        return {"tuple": (y, y), "none": None, "dict": {"hidden": y}, "str": "abc", "list": [y],
                "inf": y * float("inf")}[self.kind]


_TORCH_METHODS = [n for n in METHODS.names() if n in works(fixture("torch_mlp"))]


@pytest.mark.parametrize("model", ["broken", "too_few_columns"])
@pytest.mark.parametrize("name", _TORCH_METHODS)
def test_a_model_error_propagates_as_itself_with_a_note(name, model):
    fx = fixture("torch_mlp")
    if model == "broken":
        module, x, text, where = _Broken(), fx.inputs, "the model's own error", "_Broken"
    else:  # the model itself refuses 4 columns: no adapter check pre-empts it
        module, x, text, where = fx.model, fx.inputs[:, :4], "mat1 and mat2 shapes", "Sequential"
    with pytest.raises(RuntimeError, match=re.escape(text)) as err:
        xai.explain(module, x, method=configured(name), target=0)
    assert type(err.value) is RuntimeError  # not re-raised as an xai error
    note = (f"posthoc-xai: raised by {where} when TorchModuleAdapter called it on a float32 "
            f"tensor of shape ({len(x)}, {x.shape[1]}) on cpu.")
    assert any(n.startswith(note) for n in getattr(err.value, "__notes__", [])), err.value


_NEEDS_SCORES = ("but TorchModuleAdapter needs a tensor or numeric array of shape (n_examples,) "
                 "or (n_examples, n_outputs). Return the scores (logits, probabilities or "
                 "regression outputs) as a tensor or numeric array; wrap the model in a function "
                 "that picks them out of its output if needed.")
_ODD_OUTPUTS = {
    "tuple": f"_Odd returned a tuple of 2 items, {_NEEDS_SCORES}",
    "none": f"_Odd returned None, {_NEEDS_SCORES}",
    "dict": f"_Odd returned a dict without 'logits' (keys: ['hidden']), {_NEEDS_SCORES}",
    "str": f"_Odd returned a str ('abc'), {_NEEDS_SCORES}",
    "list": f"_Odd returned a list of 1 items, {_NEEDS_SCORES}",
    "inf": ("_Odd returned NaN or inf scores for 4 of 4 rows (rows [0, 1, 2, 3] of the batch it "
            "was called on). Attributions need finite scores for the inputs and for their "
            "perturbed copies (features set to the baseline): make the model's outputs finite, "
            "for example by clamping log-probabilities."),
}


@pytest.mark.parametrize("kind", list(_ODD_OUTPUTS))
@pytest.mark.parametrize("name", _TORCH_METHODS)
def test_an_odd_model_output_is_named(name, kind):
    with raises(xai.InvalidInputError, _ODD_OUTPUTS[kind]):
        xai.explain(_Odd(kind), fixture("torch_mlp").inputs, method=configured(name), target=0)


# -- DataFrames, baselines, devices ------------------------------------------------------------

_COLUMNS = ["a", "b", "c", "d", "e"]
_SKLEARN_METHODS = [n for n in METHODS.names() if n in works(fixture("sklearn_logreg"))]


@functools.cache
def _frame_model() -> tuple[Any, Any]:
    """A LogisticRegression fitted on a DataFrame (it knows its feature names), and 4 rows."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    train = pd.DataFrame(toy_inputs(60, seed=2), columns=_COLUMNS)
    labels = (train["a"] > 0).astype(int) + (train["b"] > 1).astype(int)
    return LogisticRegression().fit(train, labels), pd.DataFrame(toy_inputs(), columns=_COLUMNS)


_FRAME_MISMATCH = ("The 'inputs' DataFrame does not match the columns LogisticRegression expects: "
                   "{}. Columns are matched by name, in any order: pass a DataFrame with exactly "
                   "the columns ['a', 'b', 'c', 'd', 'e'].")


@pytest.mark.parametrize("name", _SKLEARN_METHODS)
def test_dataframe_columns_are_matched_by_name(name):
    model, frame = _frame_model()
    method = configured(name)
    if isinstance(method, xai.Responsiveness):  # its action set names the columns too
        method = dataclasses.replace(method, action_set=xai.ActionSet.from_dataframe(frame))
    want = xai.explain(model, frame, method=method, target=0, random_state=0)
    got = xai.explain(model, frame[_COLUMNS[::-1]], method=method, target=0, random_state=0)
    torch.testing.assert_close(got.values, want.values, rtol=0, atol=0)
    if "baseline" not in {f.name for f in dataclasses.fields(method)}:
        return
    first = frame.iloc[[0]]
    want = xai.explain(model, frame, method=dataclasses.replace(method, baseline=first),
                       target=0, random_state=0)
    got = xai.explain(model, frame, target=0, random_state=0,
                      method=dataclasses.replace(method, baseline=first[_COLUMNS[::-1]]))
    torch.testing.assert_close(got.values, want.values, rtol=0, atol=0)


@pytest.mark.parametrize("case", ["missing", "unexpected", "duplicate"])
@pytest.mark.parametrize("name", _SKLEARN_METHODS)
def test_dataframe_columns_that_do_not_match_are_named(name, case):
    model, frame = _frame_model()
    if case == "missing":
        bad, msg = frame.drop(columns="c"), _FRAME_MISMATCH.format("missing ['c']")
    elif case == "unexpected":
        bad, msg = frame.assign(f=1.0), _FRAME_MISMATCH.format("unexpected ['f']")
    else:
        bad = frame.set_axis(["a", "b", "c", "d", "a"], axis=1)
        msg = ("The 'inputs' DataFrame has duplicate column names ['a'], so its columns cannot be "
               "matched to features by name. Give every column a unique name (or drop the "
               "repeats: frame.loc[:, ~frame.columns.duplicated()]).")
    with raises(xai.InvalidInputError, msg) as err:
        xai.explain(model, bad, method=configured(name), target=0)
    assert err.value.parameter == "inputs"


_BASELINE_METHODS = [n for n in _TORCH_METHODS
                     if "baseline" in {f.name for f in dataclasses.fields(METHODS.get(n))}]


@pytest.mark.parametrize("baseline", ["nan", "array_with_inf"])
@pytest.mark.parametrize("name", _BASELINE_METHODS)
def test_a_non_finite_baseline_is_named(name, baseline):
    fx = fixture("torch_mlp")
    owner = METHODS.get(name).__name__
    if baseline == "nan":
        value: Any = float("nan")
        msg = (f"The 'baseline' parameter of {owner} must be a finite number or array. Got nan "
               "instead. Use baseline='zeros', 'mean' or a finite value.")
    else:
        value = np.zeros(5)
        value[3] = np.inf
        msg = (f"The 'baseline' parameter of {owner} contains NaN or infinite values (1 of them, "
               "first at positions [(3,)]). Pass a finite baseline (impute the missing values), "
               "or use baseline='zeros' or 'mean'.")
    method = dataclasses.replace(configured(name), baseline=value)
    with raises(xai.InvalidParameterError, msg) as err:
        xai.explain(fx.model, fx.inputs, method=method, target=0)
    assert err.value.parameter == "baseline"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a torch without CUDA")
@pytest.mark.parametrize("name", _TORCH_METHODS)
def test_an_unavailable_device_is_named(name):
    fx = fixture("torch_mlp")
    msg = ("The 'device' parameter of TorchModuleAdapter is 'cuda', but CUDA is not available "
           "(torch.cuda.is_available() is False). Use device='cpu', or device=None to run the "
           "model where its parameters are.")
    with raises(xai.InvalidParameterError, msg) as err:
        xai.explain(fx.model, fx.inputs, method=configured(name), adapter_options={"device": "cuda"})
    assert err.value.parameter == "device"
