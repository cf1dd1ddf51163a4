"""Bad inputs to every registered method: a typed error that names what is wrong.

Issue 10, requirement 5. Each case asserts the exception type and pins the message (it names
the input or parameter and the value). A case runs where it applies: each method meets the first
fixture it can explain among the conformance suite's (``xai.testing.adapter_fixtures()``, plus
a tiny causal LM here), with its first parameter set (``xai.testing.params_for``). Failing or
odd models, DataFrames, baselines and devices are in test_bad_inputs_models.py; metrics in
test_bad_inputs_metrics.py; the shared fixtures and matchers in bad_inputs.py.

Not repeated here: an invalid value for every constraint of every method parameter is the
conformance suite's ``check_invalid_params`` (tests/test_common.py::test_method_conforms,
ids ``<method>(...)-check_invalid_params``), every incompatible fixture is its
``check_incompatible_adapter``, and an absurd sampling budget of each sampler is
tests/xai/methods/test_budget.py.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
import torch
from bad_inputs import (
    FIXTURES,
    LABELLED_FIRST,
    NUMERIC,
    cases,
    configured,
    explain_with,
    fixture,
    raises,
    works,
)

import xai
from xai import METHODS
from xai.testing import NO_CAPABILITY, AdapterFixture

# -- names, parameters, the call itself --------------------------------------------------------


@pytest.mark.parametrize("name", METHODS.names())
def test_a_misspelt_method_suggests_it(name):
    typo = name[:-1]
    msg = (f"Unknown method {typo!r}. Did you mean {name!r}? Available methods: "
           f"{', '.join(METHODS.names())}.")
    fx = fixture("torch_mlp")
    with raises(xai.UnknownNameError, msg) as err:
        xai.explain(fx.model, fx.inputs, method=typo)
    assert (err.value.name, err.value.available) == (typo, METHODS.names())


@pytest.mark.parametrize("name", METHODS.names())
def test_an_unknown_parameter_is_named_with_the_valid_ones(name):
    cls = METHODS.get(name)
    valid = ", ".join(sorted(f.name for f in dataclasses.fields(cls) if f.init))
    msg = (f"{cls.__name__} got an unexpected parameter 'windw'. Valid parameters of "
           f"{cls.__name__}: {valid}.")
    fx = fixture("torch_mlp")
    with raises(xai.InvalidParameterError, msg) as err:
        xai.explain(fx.model, fx.inputs, method=name, windw=2)
    assert (err.value.parameter, err.value.value) == ("windw", 2)


@pytest.mark.parametrize("name", METHODS.names())
def test_an_instance_with_keyword_parameters_is_a_type_error(name):
    fx = fixture("torch_mlp")
    instance = configured(name)
    msg = ("Pass parameters either in the Method instance or as keyword arguments, not both. "
           f"Got {instance!r} and the keyword arguments window: put them in the instance "
           "(dataclasses.replace(method, ...)) or pass "
           f"method={type(instance).name!r} with keyword arguments.")
    with raises(TypeError, msg):
        xai.explain(fx.model, fx.inputs, method=instance, window=2)


@pytest.mark.parametrize(("model", "option", "accepted"), [
    ("sklearn_logreg", "device", "response, background"),
    ("torch_mlp", "colour",
     "modality, output_names, background, device, feature_names, output_kind"),
])
def test_an_unknown_adapter_option_lists_the_adapter_options(model, option, accepted):
    fx = fixture(model)
    adapter = type(fx.adapter()).__name__
    msg = (f"The 'adapter_options' [{option!r}] are not options of {adapter}, which this model "
           f"is wrapped in. Its options are: {accepted}.")
    with raises(xai.InvalidParameterError, msg) as err:
        xai.explain(fx.model, fx.inputs, adapter_options={option: "x"})
    assert (err.value.parameter, err.value.value) == ("adapter_options", [option])


@pytest.mark.parametrize("batch_size", [0, -3, 2.5, "big", True])
@pytest.mark.parametrize(("name", "fx"), cases())
def test_a_bad_batch_size_is_named(name, fx, batch_size):
    owner = METHODS.get(name).__name__
    msg = (f"The 'batch_size' parameter of {owner} must be an int in the range [1, inf) or "
           f"'auto'. Got {batch_size!r} instead.")
    with raises(xai.InvalidParameterError, msg) as err:
        explain_with(name, fx, batch_size=batch_size)
    assert (err.value.parameter, err.value.value) == ("batch_size", batch_size)


@pytest.mark.parametrize("random_state", ["abc", -1, 2.5, [0]])
@pytest.mark.parametrize(("name", "fx"), cases())
def test_a_bad_random_state_is_named(name, fx, random_state):
    owner = METHODS.get(name).__name__
    msg = (f"The 'random_state' parameter of {owner} must be a non-negative int, a "
           f"torch.Generator or None. Got {random_state!r} instead.")
    with raises(xai.InvalidParameterError, msg) as err:
        xai.explain(fx.model, fx.inputs, method=configured(name), random_state=random_state)
    assert err.value.parameter == "random_state"


def _incompatible(name: str) -> tuple[AdapterFixture, xai.ModelAdapter, str]:
    """The first fixture ``name`` cannot explain, its adapter, and the message to expect."""
    cls = METHODS.get(name)
    fx = next((f for f in FIXTURES if name not in works(f)), NO_CAPABILITY)
    adapter = fx.adapter()
    ok = ", ".join(works(fx)) if fx is not NO_CAPABILITY else "none"
    if adapter.modality not in cls.modalities:
        why = f"does not support {adapter.modality!r} inputs ({adapter!r})."
    else:
        missing = cls.requirements(adapter.modality) & ~adapter.capabilities
        why = f"needs {'+'.join(missing.names())}, but {adapter!r} does not provide it."
    return fx, adapter, f"Method {name!r} {why} Methods that work with this model: {ok}."


@pytest.mark.parametrize("name", METHODS.names())
def test_an_incompatible_model_lists_the_methods_that_work(name):
    fx, adapter, msg = _incompatible(name)
    with pytest.raises(xai.IncompatibleModelError) as err:
        xai.explain(adapter, fx.inputs, method=configured(name))
    assert err.value.method == name
    if METHODS.get(name).check_compatible is xai.Method.check_compatible:
        assert str(err.value) == msg
    else:  # its own reason (smoothed: the inner method's), the same frame
        head, tail = msg.split(" ", 2)[:2], msg.split(". ")[-1]
        assert str(err.value).startswith(" ".join(head)), str(err.value)
        assert str(err.value).endswith(tail), str(err.value)


def _required(name: str) -> list[str]:
    return [f.name for f in dataclasses.fields(METHODS.get(name)) if f.init
            and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]


@pytest.mark.parametrize("name", [n for n in METHODS.names() if _required(n)])
def test_an_incompatible_model_is_named_before_missing_parameters(name):
    # OLM on a tabular model says it is text-only rather than ask for a resampler first.
    fx, adapter, msg = _incompatible(name)
    with raises(xai.IncompatibleModelError, msg):
        xai.explain(adapter, fx.inputs, method=name)


@pytest.mark.parametrize("make", ["estimator", "pipeline"])
@pytest.mark.parametrize("name", [n for n in METHODS.names()
                                  if n in works(fixture("sklearn_logreg"))])
def test_an_unfitted_estimator_is_refused(name, make):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = LogisticRegression() if make == "estimator" else make_pipeline(
        StandardScaler(), LogisticRegression())
    msg = (f"This {type(model).__name__} instance is not fitted yet. Call 'fit' with appropriate "
           "arguments before explaining it.")
    with raises(xai.UnsupportedModelError, msg):
        xai.explain(model, np.ones((2, 5)), method=configured(name))


# -- inputs ------------------------------------------------------------------------------------

_TWO_D = ("Expected inputs with 2 dimensions (n_examples, n_features), got shape {}. Use "
          "x.reshape(1, -1) for a single example.")
_NOT_FINITE = ("The 'inputs' contain NaN or infinite values (1 of them, first at positions "
               "[{}]). Impute or drop them before explaining.")


def _numeric_inputs(case: str, x: np.ndarray, model: str) -> tuple[Any, str, bool]:
    """(bad inputs, expected message, whether the message is whole) for a (4, 5) batch ``x``."""
    if case in ("nan", "inf"):
        x = x.copy()
        x[1, 2] = np.nan if case == "nan" else -np.inf
    return {
        "one_dimension": (x[0], _TWO_D.format((5,)), True),
        "three_dimensions": (x[None], _TWO_D.format((1, 4, 5)), True),
        "empty": (x[:0], "The 'inputs' batch is empty (0 examples). Pass at least one example.",
                  True),
        "nan": (x, _NOT_FINITE.format((1, 2)), True),
        "inf": (x, _NOT_FINITE.format((1, 2)), True),
        "text": (["a b", "c"], f"{model} takes numeric inputs, but 'inputs' is text (['a b', 'c'])."
                 " Pass a numeric array or DataFrame, or wrap a text model with its tokenizer: "
                 "xai.explain((model, tokenizer), texts).", True),
        "complex": (x.astype(np.complex64), "The 'inputs' must hold real numbers. Got dtype "
                    "torch.complex64 instead.", False),
        "ragged": ([[1.0, 2.0], [3.0]], "The 'inputs' could not be converted to a numeric array",
                   False),
    }[case]


@pytest.mark.parametrize("case", ["one_dimension", "three_dimensions", "empty", "nan", "inf",
                                  "text", "complex", "ragged"])
@pytest.mark.parametrize(("name", "fx"), cases(NUMERIC, every="occlusion"))
def test_bad_numeric_inputs_are_named(name, fx, case):
    inputs, msg, whole = _numeric_inputs(case, fx.inputs, fx.adapter().describe()["model"])
    with raises(xai.InvalidInputError, msg, whole=whole) as err:
        explain_with(name, fx, inputs)
    assert err.value.parameter == "inputs"


@pytest.mark.parametrize(("name", "fx"), cases(("callable", "sklearn_logreg"),
                                                every="occlusion"))
def test_a_wrong_number_of_features_is_named(name, fx):
    model = fx.adapter().describe()["model"]
    msg = (f"The 'inputs' have 4 features, but {model} expects 5. Pass inputs of shape "
           "(n_examples, 5).")
    with raises(xai.InvalidInputError, msg):
        explain_with(name, fx, fx.inputs[:, :4])


_TEXT_CASES = {
    "empty": ([], "The 'inputs' batch is empty (0 texts). Pass at least one text."),
    "numeric": (np.ones((2, 5)), "A text model takes a str or a list of str as 'inputs'. Got "
                "ndarray instead."),
    "not_a_str": (["fine", 3], "Example 1 of 'inputs' is an int, not a str. Pass texts only."),
    "blank": (["fine", "  "], "Example 1 of 'inputs' is an empty string: it has no words to "
              "explain. Remove it or pass a non-empty text."),
}
_NO_TOKENS = ("Example 0 of 'inputs' ({!r}) has no tokens to attribute: the tokenizer keeps none "
              "of its characters (only special tokens remain), so there are no words to explain. "
              "Remove it or pass a text with visible words.")


#: Methods that explain one prompt per call (the players are its parts), not a batch of texts.
_ONE_PROMPT = {"textgenshap"}


@pytest.mark.parametrize("case", list(_TEXT_CASES))
@pytest.mark.parametrize(("name", "fx"), cases(("text_bert", "causal_lm")))
def test_bad_texts_are_named(name, fx, case):
    inputs, msg = _TEXT_CASES[case]
    if name in _ONE_PROMPT:  # a batch is refused before its texts are looked at
        msg = (f"'inputs' of {METHODS.get(name).__name__} for a language model must be one "
               "prompt: a str or a mapping with 'documents' (and optional 'prefix', 'suffix'). "
               f"Got {type(inputs).__name__} instead. Explain several prompts one call at a time.")
    with raises(xai.InvalidInputError, msg):
        explain_with(name, fx, inputs)


@pytest.mark.parametrize(("prompt", "msg"), [
    ("  ", "The prompt passed to {owner} is empty. Pass a non-empty text."),
    ({"prefix": "the cat", "documents": [], "suffix": "sat"},
     "The prompt has no players at granularity 'document' (no documents outside the fixed "
     "prefix/suffix). Pass documents, or a prompt with text to explain."),
])
@pytest.mark.parametrize("name", sorted(_ONE_PROMPT))
def test_a_prompt_without_players_is_named(name, prompt, msg):
    with raises(xai.InvalidInputError, msg.format(owner=METHODS.get(name).__name__)) as err:
        explain_with(name, fixture("causal_lm"), prompt)
    assert err.value.parameter == "inputs"


@pytest.mark.parametrize("text", ["\u200b\u200b", "\x01\x02"])
@pytest.mark.parametrize(("name", "fx"), cases(("text_bert",)))
def test_a_text_without_tokens_is_named(name, fx, text):
    with raises(xai.InvalidInputError, _NO_TOKENS.format(text)):
        explain_with(name, fx, [text, "fine"])


# -- targets -----------------------------------------------------------------------------------


def _target_message(case: str, fx: AdapterFixture) -> tuple[Any, str]:
    """(bad target, expected message) for the fixture's model and inputs."""
    n_out, n = fx.n_outputs, len(fx.inputs)
    labels = fx.adapter().output_names()
    shown = ", ".join(repr(lab) for lab in labels) if labels else ""
    valid = f"indices 0-{n_out - 1}" + (f" or labels {shown}." if labels else ".")
    wrong_kind = ("The 'target' parameter must be an int, a class label, a list with one per "
                  "example, 'predicted', 'all' or None. Got {} instead.")
    return {
        "too_large": (n_out, f"Target {n_out} is out of range for a model with {n_out} outputs. "
                      f"Valid targets: {valid}"),
        "too_negative": (-n_out - 1, f"Target {-n_out - 1} is out of range for a model with "
                         f"{n_out} outputs. Valid targets: {valid}"),
        "unknown_label": ("maybe", "Target 'maybe' is not an output of this model. Valid targets: "
                          f"{shown or 'none (the model has no labels)'} (or indices "
                          f"0-{n_out - 1})."),
        "float": (1.5, wrong_kind.format("1.5 (float)")),
        "bool": (True, wrong_kind.format("True (bool)")),
        "list_too_long": ([0] * (n + 1), f"The 'target' list has {n + 1} entries, but there are "
                          f"{n} examples. Pass one target per example, or a single int or label "
                          "for all."),
        "float_in_list": ([0.5] * n, "Each target must be an int or a class label. Got 0.5 "
                          "instead."),
    }[case]


#: Methods explain classifiers' outputs; language models' targets are texts (their own tests).
_TARGET_CASES = cases(LABELLED_FIRST)


@pytest.mark.parametrize("case", ["too_large", "too_negative", "unknown_label", "float", "bool",
                                  "list_too_long", "float_in_list"])
@pytest.mark.parametrize(("name", "fx"), _TARGET_CASES)
def test_a_bad_target_is_named(name, fx, case):
    target, msg = _target_message(case, fx)
    with raises(xai.InvalidTargetError, msg) as err:
        explain_with(name, fx, target=target)
    assert err.value.parameter == "target"


@pytest.mark.parametrize(("name", "fx"), cases(("torch_mlp", "sklearn_logreg", "text_bert")))
def test_a_zero_dimensional_target_is_its_int(name, fx):
    row = fx.rows()[0]
    want = explain_with(name, fx, row, target=1)
    for target in (torch.tensor(1), np.array(1), np.int64(1)):
        got = explain_with(name, fx, row, target=target)
        assert got.target.indices.tolist() == [[1]], type(target)
        torch.testing.assert_close(got.values, want.values, rtol=0, atol=0)
