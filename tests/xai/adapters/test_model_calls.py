"""How adapters call models: the model's own errors pass unchanged (with a note), odd outputs and
wrong row counts are typed errors naming the model, and an unavailable device is refused early."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator, ClassifierMixin

import xai
from xai.exceptions import InvalidInputError, InvalidParameterError

X = np.ones((2, 3))
EXPECTED = "a tensor or numeric array of shape (n_examples,) or (n_examples, n_outputs)"
FIX = ("Return the scores (logits, probabilities or regression outputs) as a tensor or numeric "
       "array; wrap the model in a function that picks them out of its output if needed.")


def _raises(err, msg):
    return pytest.raises(err, match=re.escape(msg))


class Broken(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        msg = "CUDA out of memory (simulated)"
        raise RuntimeError(msg)


class Returns(torch.nn.Module):
    def __init__(self, out) -> None:  # noqa: ANN001
        super().__init__()
        self.out = out

    def forward(self, x: torch.Tensor):  # noqa: ANN201
        return self.out(x) if callable(self.out) else self.out


def _notes(err: BaseException) -> list[str]:
    return getattr(err, "__notes__", [])


# -- a model's own exception --------------------------------------------------------------------

def test_a_torch_models_own_error_propagates_as_itself_with_a_note():
    with pytest.raises(RuntimeError, match="CUDA out of memory") as info:
        xai.explain(Broken(), X, method="occlusion", target=0)
    assert type(info.value) is RuntimeError  # not InvalidInputError
    assert not isinstance(info.value, xai.XAIError)
    assert _notes(info.value) == [
        "posthoc-xai: raised by Broken when TorchModuleAdapter called it on a float32 tensor of "
        "shape (2, 3) on cpu. If that shape is not what the model takes, check the 'inputs'."]


def test_a_shape_mismatch_inside_the_model_keeps_torchs_error():
    model = torch.nn.Linear(4, 1)
    with pytest.raises(RuntimeError, match="mat1 and mat2 shapes cannot be multiplied") as info:
        xai.explain(model, X, method="occlusion")
    assert "on a float32 tensor of shape (2, 3) on cpu" in _notes(info.value)[0]


def test_the_same_exception_object_reaches_the_caller():
    err = KeyError("feature 'x' not found")

    def fn(a):
        raise err

    with pytest.raises(KeyError) as info:
        xai.explain(fn, X, method="occlusion")
    assert info.value is err
    assert _notes(err) == ["posthoc-xai: raised by fn when CallableAdapter called it on a float64 "
                           "numpy array of shape (2, 3)."]


def test_an_sklearn_estimators_own_error_gets_a_note():
    class Fails(ClassifierMixin, BaseEstimator):
        def fit(self, x, y):  # noqa: ANN001, ANN201
            self.classes_ = np.array([0, 1])
            self.n_features_in_ = 3
            return self

        def predict_proba(self, x):  # noqa: ANN001, ANN201
            msg = "estimator broke"
            raise ArithmeticError(msg)

    with pytest.raises(ArithmeticError, match="estimator broke") as info:
        xai.explain(Fails().fit(X, [0, 1]), X, method="occlusion")
    assert _notes(info.value) == [
        "posthoc-xai: raised by Fails.predict_proba when SklearnAdapter called it on a float64 "
        "numpy array of shape (2, 3)."]


def test_a_text_models_own_error_gets_a_note(tiny_bert):
    model, tok = tiny_bert
    adapter = xai.as_adapter((model, tok))
    batch = adapter.prepare(["fun film"])
    with pytest.raises(IndexError) as info:
        adapter.predict(xai.Batch({**batch.tensors, "input_ids": batch.tensors["input_ids"] + 10**6},
                                  texts=batch.texts))
    assert _notes(info.value)[0].startswith(
        "posthoc-xai: raised by BertForSequenceClassification when HFClassifierAdapter called it "
        "on tensors input_ids of shape (1, 4), ")


# -- odd outputs --------------------------------------------------------------------------------

@pytest.mark.parametrize(("out", "what"), [
    (None, "None"),
    ("positive", "a str ('positive')"),
    ((torch.ones(2, 1), torch.ones(2, 1)), "a tuple of 2 items"),
    ({"scores": torch.ones(2, 1)}, "a dict without 'logits' (keys: ['scores'])"),
    (torch.ones(2, 1, dtype=torch.complex64), "a tensor of dtype torch.complex64"),
    (object(), "an object of type object"),
])
def test_odd_torch_outputs_are_typed_errors(out, what):
    msg = f"Returns returned {what}, but TorchModuleAdapter needs {EXPECTED}. {FIX}"
    with _raises(InvalidInputError, msg) as info:
        xai.explain(Returns(out), X, method="occlusion", target=0)
    assert info.value.parameter == "model output"


def test_a_dict_with_logits_is_accepted():
    exp = xai.explain(Returns(lambda x: {"logits": x.sum(1, keepdim=True)}), X,
                      method="occlusion", target=0)
    torch.testing.assert_close(exp.values, torch.ones(2, 1, 3))


def test_a_callable_returning_strings_is_a_typed_error():
    msg = (f"fn returned an array of dtype <U3 ('yes', 'no'), but CallableAdapter needs "
           f"{EXPECTED}. {FIX}")

    def fn(a):
        return np.array(["yes", "no"])

    with _raises(InvalidInputError, msg):
        xai.explain(fn, X, method="occlusion")


def test_sklearn_predict_returning_labels_says_which_response_to_use():
    class Labels(BaseEstimator):
        def fit(self, x, y):  # noqa: ANN001, ANN201
            self.n_features_in_ = 3
            return self

        def predict(self, x):  # noqa: ANN001, ANN201
            return np.array(["bad", "good"] * len(x))[: len(x)]

    msg = (f"Labels.predict returned an array of dtype <U4 ('bad', 'good'), but SklearnAdapter "
           f"needs {EXPECTED}. Use a response that returns numbers, e.g. "
           "adapter_options={'response': 'predict_proba'} for a classifier.")
    with _raises(InvalidInputError, msg):
        xai.explain(Labels().fit(X, None), X, method="occlusion")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_scores_name_the_rows(bad):
    def fn(a):
        out = a.sum(1)
        out[1] = bad
        return out

    msg = ("fn returned NaN or inf scores for 1 of 3 rows (rows [1] of the batch it was called "
           "on). Attributions need finite scores for the inputs and for their perturbed copies "
           "(features set to the baseline): make the model's outputs finite, for example by "
           "clamping log-probabilities.")
    with _raises(InvalidInputError, msg) as info:
        xai.explain(fn, np.ones((3, 2)), method="occlusion")
    assert info.value.value == [1]


def test_empty_scores_are_a_typed_error():
    msg = (f"Returns returned no scores (shape (2, 0)) for 2 input rows, but TorchModuleAdapter "
           f"needs {EXPECTED}. Check what the module returns.")
    with _raises(InvalidInputError, msg):
        xai.explain(Returns(lambda x: x[:, :0]), X, method="occlusion")


# -- wrong number of rows -----------------------------------------------------------------------

@pytest.mark.parametrize("out", [lambda x: x[:1], lambda x: x.sum(), lambda x: x.reshape(-1)],
                         ids=["one row", "a scalar", "flattened"])
def test_a_torch_module_returning_the_wrong_number_of_rows(out):
    msg = "Returns returned 1 rows for 2 inputs. The module must return one row of scores per input row."
    with _raises(InvalidInputError, msg):
        xai.explain(Returns(out), X, method="occlusion", target=0)


def test_a_callable_returning_the_wrong_number_of_rows_keeps_its_message():
    msg = "fn returned 1 rows for 2 inputs. The function must return one row of scores per input row."

    def fn(a):
        return a[:1].sum(1)

    with _raises(InvalidInputError, msg):
        xai.explain(fn, X, method="occlusion")


# -- devices ------------------------------------------------------------------------------------

@pytest.mark.parametrize("device", ["cuda", torch.device("cuda:0")])
def test_cuda_device_without_cuda_is_a_parameter_error(monkeypatch, device):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    msg = (f"The 'device' parameter of TorchModuleAdapter is '{torch.device(device)}', but CUDA "
           "is not available (torch.cuda.is_available() is False). Use device='cpu', or "
           "device=None to run the model where its parameters are.")
    with _raises(InvalidParameterError, msg) as info:
        xai.explain(torch.nn.Linear(3, 1), X, adapter_options={"device": device})
    assert (info.value.parameter, info.value.value) == ("device", str(torch.device(device)))


def test_cuda_device_for_a_text_model_without_cuda(monkeypatch, tiny_bert):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with _raises(InvalidParameterError, "The 'device' parameter of HFClassifierAdapter is 'cuda'"):
        xai.as_adapter(tiny_bert, device="cuda")


def test_a_device_that_does_not_parse():
    msg = ("The 'device' parameter of TorchModuleAdapter must be a torch.device or a device "
           "string such as 'cpu' or 'cuda:0'. Got 'gpu' instead.")
    with _raises(InvalidParameterError, msg):
        xai.TorchModuleAdapter(torch.nn.Linear(3, 1), device="gpu")
