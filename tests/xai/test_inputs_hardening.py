"""Hostile inputs, baselines and targets get typed errors that name what is wrong (issue 10).

Texts that tokenize to nothing (bug 5), 0-d tensors/arrays as target (bug 8), NaN/inf baselines,
complex inputs and backgrounds with NaN.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from models import mlp, tiny_gpt2

import xai
from xai.exceptions import InvalidInputError, InvalidParameterError, InvalidTargetError

X2 = np.linspace(-1, 1, 12).reshape(2, 6)


def _raises(err, msg):
    return pytest.raises(err, match=re.escape(msg))


# -- texts that tokenize to nothing (bug 5) -----------------------------------------------------

def _no_tokens(i: int, text: str) -> str:
    return (f"Example {i} of 'inputs' ({text!r}) has no tokens to attribute: the tokenizer keeps "
            "none of its characters (only special tokens remain), so there are no words to "
            "explain. Remove it or pass a text with visible words.")


@pytest.mark.parametrize("text", ["\u200b\u200b", "\x01\x02", "\ufeff", "\u00ad"])
def test_a_text_without_tokens_is_refused(tiny_bert, text):
    with _raises(InvalidInputError, _no_tokens(1, text)) as info:
        xai.explain(tiny_bert, ["fun film", text], method="occlusion")
    assert info.value.value == text


def test_a_text_without_tokens_is_refused_by_a_pipeline(tiny_bert):
    transformers = pytest.importorskip("transformers")
    model, tok = tiny_bert
    pipe = transformers.pipeline("text-classification", model=model, tokenizer=tok)
    with _raises(InvalidInputError, _no_tokens(0, "\u200b")):
        xai.explain(pipe, "\u200b", method="occlusion")


def test_a_text_with_one_visible_word_is_kept(tiny_bert):
    exp = xai.explain(tiny_bert, "\u200b fun", method="occlusion")
    assert exp.feature_names == [("fun",)]


def test_a_text_without_tokens_is_refused_by_a_causal_lm():
    transformers = pytest.importorskip("transformers")
    from models import LM_WORDS
    from tokenizers import Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import WordLevel

    vocab = {t: i for i, t in enumerate(["<pad>", "<bos>", "<eos>", "<unk>", *LM_WORDS])}
    raw = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    raw.normalizer = normalizers.BertNormalizer(lowercase=False)  # drops control characters
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = transformers.PreTrainedTokenizerFast(
        tokenizer_object=raw, bos_token="<bos>", eos_token="<eos>", unk_token="<unk>",
        pad_token="<pad>", model_max_length=64)
    adapter = xai.as_adapter((tiny_gpt2(), tok))
    with _raises(InvalidInputError, _no_tokens(0, "\x01\u200b")):
        adapter.prepare(["\x01\u200b", "the cat"])


def test_the_empty_string_keeps_its_message(tiny_bert):
    msg = ("Example 0 of 'inputs' is an empty string: it has no words to explain. Remove it or "
           "pass a non-empty text.")
    with _raises(InvalidInputError, msg):
        xai.explain(tiny_bert, "", method="occlusion")


# -- tensors and arrays as target (bug 8) -------------------------------------------------------

@pytest.mark.parametrize("target", [torch.tensor(2), np.array(2), np.int64(2),
                                    torch.tensor(2, dtype=torch.uint8)],
                         ids=["tensor", "array", "numpy int", "uint8 tensor"])
def test_a_0d_target_is_the_int_it_holds(target):
    exp = xai.explain(mlp(), X2, method="occlusion", target=target)
    assert exp.target.indices.tolist() == [[2], [2]]


@pytest.mark.parametrize("target", [torch.tensor([0, 2]), np.array([0, 2])],
                         ids=["tensor", "array"])
def test_a_1d_target_is_one_int_per_example(target):
    exp = xai.explain(mlp(), X2, method="occlusion", target=target)
    assert exp.target.indices.tolist() == [[0], [2]]


@pytest.mark.parametrize(("target", "msg"), [
    (torch.tensor(1.0), "The 'target' tensor has dtype torch.float32, but targets are output "
                        "indices (or class labels). Pass integers: target.long()."),
    (np.array([0.5, 1.0]), "The 'target' array has dtype float64, but targets are output indices "
                           "(or class labels). Pass integers: target.astype(int)."),
    (np.float64(1.0), "The 'target' numpy scalar has dtype float64, but targets are output "
                      "indices (or class labels). Pass integers: int(target)."),
    (torch.tensor(True), "The 'target' tensor has dtype torch.bool, but targets are output "
                         "indices (or class labels). Pass integers: target.long()."),
    (torch.tensor([[0], [1]]), "The 'target' tensor has 2 dimensions. Pass one int or label for "
                               "all examples, or a 1-d tensor with one per example."),
], ids=["float tensor", "float array", "numpy float", "bool tensor", "2-d tensor"])
def test_a_non_integer_array_target_is_a_target_error(target, msg):
    with _raises(InvalidTargetError, msg) as info:
        xai.explain(mlp(), X2, method="occlusion", target=target)
    assert info.value.parameter == "target"


def test_an_out_of_range_0d_target_keeps_the_range_message():
    msg = "Target 5 is out of range for a model with 3 outputs. Valid targets: indices 0-2."
    with _raises(InvalidTargetError, msg):
        xai.explain(mlp(), X2, method="occlusion", target=torch.tensor(5))


# -- baselines with NaN or inf are the baseline's fault, not the model's -------------------------

@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_non_finite_array_baseline_is_a_parameter_error(bad):
    base = np.zeros(6)
    base[3] = bad
    msg = ("The 'baseline' parameter of Occlusion contains NaN or infinite values (1 of them, "
           "first at positions [(3,)]). Pass a finite baseline (impute the missing values), or "
           "use baseline='zeros' or 'mean'.")
    with _raises(InvalidParameterError, msg) as info:
        xai.explain(mlp(), X2, method="occlusion", target=0, baseline=base)
    assert (info.value.owner, info.value.parameter) == ("Occlusion", "baseline")


def test_a_non_finite_number_baseline_is_a_parameter_error():
    msg = ("The 'baseline' parameter of IntegratedGradients must be a finite number or array. Got "
           "nan instead. Use baseline='zeros', 'mean' or a finite value.")
    with _raises(InvalidParameterError, msg):
        xai.explain(mlp(), X2, method="integrated_gradients", target=0, baseline=float("nan"))


def test_a_background_with_nan_names_the_background():
    bg = np.zeros((4, 6))
    bg[2, 1] = np.nan
    msg = ("The 'background' contains NaN or infinite values (1 of them, first at positions "
           "[(2, 1)]). Impute or drop them before explaining.")
    with _raises(InvalidParameterError, msg) as info:
        xai.explain(mlp(), X2, method="occlusion", target=0, adapter_options={"background": bg})
    assert (info.value.owner, info.value.parameter) == ("TorchModuleAdapter", "background")


# -- complex inputs are refused, not cast to real ------------------------------------------------

@pytest.mark.parametrize("x", [X2 + 1j, torch.tensor(X2 + 1j), (X2 + 0j).tolist()],
                         ids=["array", "tensor", "list"])
def test_complex_inputs_are_refused(x):
    dtype = "torch.complex128"
    msg = (f"The 'inputs' must hold real numbers. Got dtype {dtype} instead. Pass the part to "
           "explain explicitly, e.g. x.real or x.abs().")
    with _raises(InvalidInputError, msg):
        xai.explain(mlp(), x, method="occlusion", target=0)


def test_a_complex_dataframe_column_is_refused():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [1 + 1j, 2 + 0j]})
    msg = ("The 'inputs' DataFrame has non-numeric columns ['b']. Encode them as numbers")
    with _raises(InvalidInputError, msg):
        xai.explain(lambda a: a.sum(1), frame, method="occlusion")


def test_a_complex_baseline_is_refused():
    msg = ("The 'baseline' must hold real numbers. Got dtype torch.complex128 instead.")
    with _raises(InvalidParameterError, msg):
        xai.explain(mlp(), X2, method="occlusion", target=0, baseline=np.zeros(6) + 1j)
