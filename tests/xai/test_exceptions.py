"""Bad inputs raise typed exceptions whose messages name the parameter, the value and the fix."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

import xai
from xai import METHODS, exceptions
from xai.exceptions import (
    IncompatibleModelError,
    InvalidInputError,
    InvalidParameterError,
    InvalidTargetError,
    TruncationWarning,
    UnknownNameError,
    UnsupportedModelError,
)

X2 = np.array([[0.5, -1.0, 0.2, 0.0, 1.5, -0.3], [1.0, 0.3, -0.7, 0.4, 0.0, 0.9]])


def _raises(exc_type, message):
    """pytest.raises with the exact type (not a subclass or base) and the message verbatim."""
    return pytest.raises(exc_type, match=f"^{re.escape(message)}$")


@pytest.mark.parametrize(("cls", "bases"), [
    (exceptions.InvalidParameterError, (exceptions.XAIError, ValueError)),
    (exceptions.InvalidInputError, (exceptions.XAIError, ValueError)),
    (exceptions.InvalidTargetError, (exceptions.XAIError, ValueError)),
    (exceptions.InvalidExplanationError, (exceptions.XAIError, ValueError)),
    (exceptions.UnknownNameError, (exceptions.XAIError, ValueError)),
    (exceptions.UnsupportedModelError, (exceptions.XAIError, TypeError)),
    (exceptions.IncompatibleModelError, (exceptions.XAIError, TypeError)),
    (exceptions.MissingDependencyError, (exceptions.XAIError, ImportError)),
    (exceptions.XAIWarning, (UserWarning,)),
    (exceptions.ConvergenceWarning, (exceptions.XAIWarning,)),
    (exceptions.IgnoredParameterWarning, (exceptions.XAIWarning,)),
    (exceptions.TruncationWarning, (exceptions.XAIWarning,)),
])
def test_exception_hierarchy(cls, bases):
    assert cls.__bases__ == bases  # plain `except ValueError` / `except TypeError` keeps working


# -- method names and parameters ---------------------------------------------------------------

def test_unknown_method_suggests_the_closest_name(mlp3):
    available = ", ".join(METHODS.names())
    msg = (f"Unknown method 'integrated_gradient'. Did you mean 'integrated_gradients'? "
           f"Available methods: {available}.")
    with _raises(UnknownNameError, msg) as info:
        xai.explain(mlp3, X2, method="integrated_gradient")
    assert info.value.kind == "method"
    assert info.value.name == "integrated_gradient"
    assert info.value.available == METHODS.names()
    assert {"integrated_gradients", "occlusion", "shapley_sampling"} <= set(info.value.available)


def test_unknown_method_without_a_close_match_has_no_suggestion(mlp3):
    msg = f"Unknown method 'saliency_xyz'. Available methods: {', '.join(METHODS.names())}."
    with _raises(UnknownNameError, msg):
        xai.explain(mlp3, X2, method="saliency_xyz")


def test_method_that_is_neither_str_nor_method(mlp3):
    with _raises(UnknownNameError, "Method names are str. Got 3 instead."):
        xai.explain(mlp3, X2, method=3)


def test_n_steps_zero(mlp3):
    msg = ("The 'n_steps' parameter of IntegratedGradients must be an int in the range [1, inf). "
           "Got 0 instead.")
    with _raises(InvalidParameterError, msg) as info:
        xai.explain(mlp3, X2, method="integrated_gradients", n_steps=0, target=0)
    err = info.value
    assert (err.owner, err.parameter, err.value) == ("IntegratedGradients", "n_steps", 0)
    assert err.constraint == "an int in the range [1, inf)"
    with _raises(InvalidParameterError, msg):  # same check on direct construction
        xai.IntegratedGradients(n_steps=0)


def test_option_not_in_the_list():
    msg = ("The 'integration' parameter of IntegratedGradients must be a str among "
           "{'gausslegendre', 'riemann_left', 'riemann_middle', 'riemann_right', "
           "'riemann_trapezoid'}. Got 'simpson' instead.")
    with _raises(InvalidParameterError, msg) as info:
        xai.IntegratedGradients(integration="simpson")
    assert info.value.value == "simpson"


def test_unknown_method_parameter_lists_the_valid_ones(mlp3):
    msg = ("IntegratedGradients got an unexpected parameter 'steps'. Valid parameters of "
           "IntegratedGradients: baseline, feature_groups, granularity, integration, "
           "multiply_by_inputs, n_steps, tolerance.")
    with _raises(InvalidParameterError, msg) as info:
        xai.explain(mlp3, X2, method="ig", steps=8)
    assert (info.value.parameter, info.value.value) == ("steps", 8)


def test_missing_required_method_field(mlp3):
    with METHODS.scoped():

        @xai.register_method("needs_scale")
        @dataclasses.dataclass(frozen=True, kw_only=True)
        class NeedsScale(xai.Occlusion):
            scale: float

        with _raises(InvalidParameterError,
                     "The 'scale' parameter of NeedsScale is required: pass scale=... to "
                     "xai.explain.") as info:
            xai.explain(mlp3, X2, method="needs_scale", target=0)
    assert info.value.parameter == "scale"


def test_method_instance_plus_keyword_arguments(mlp3):
    msg = ("Pass parameters either in the Method instance or as keyword arguments, not both. "
           "Got Occlusion(baseline='auto', feature_groups=None, window=1, stride=1, "
           "granularity='auto', clip=False) and the keyword arguments window: put them in the instance (dataclasses.replace(method, ...)) "
           "or pass method='occlusion' with keyword arguments.")
    with _raises(TypeError, msg):
        xai.explain(mlp3, X2, method=xai.Occlusion(), window=2, target=0)


def test_odd_n_permutations_with_antithetic_pairs(mlp3):
    msg = ("The 'n_permutations' parameter of ShapleySampling must be even when antithetic=True "
           "(permutations come in pairs). Got 3 instead. Use 4 or antithetic=False.")
    with _raises(InvalidParameterError, msg) as info:
        xai.explain(mlp3, X2, method="shapley_sampling", n_permutations=3, target=0)
    assert (info.value.parameter, info.value.value) == ("n_permutations", 3)


@pytest.mark.parametrize(("seed", "shown"), [(-1, "-1"), (0.5, "0.5"), (True, "True"),
                                             ("seed", "'seed'")])
def test_bad_random_state(mlp3, seed, shown):
    msg = ("The 'random_state' parameter of Occlusion must be a non-negative int, a "
           f"torch.Generator or None. Got {shown} instead.")
    with _raises(InvalidParameterError, msg) as info:
        xai.explain(mlp3, X2, method="occlusion", target=0, random_state=seed)
    assert info.value.parameter == "random_state"
    assert info.value.value is seed


@pytest.mark.parametrize(("size", "shown"), [(0, "0"), ("big", "'big'"), (2.0, "2.0")])
def test_bad_batch_size(mlp3, size, shown):
    msg = ("The 'batch_size' parameter of Occlusion must be an int in the range [1, inf) or "
           f"'auto'. Got {shown} instead.")
    with _raises(InvalidParameterError, msg) as info:
        xai.explain(mlp3, X2, method="occlusion", target=0, batch_size=size)
    assert info.value.parameter == "batch_size"


def test_mismatched_baseline_shape(mlp3):
    msg = ("The 'baseline' parameter of Occlusion has shape (4,), but the inputs are 2 "
           "example(s) of shape (6,). Pass one row ((6,) or (1, 6), used for every example) or "
           "one row per example ((2, 6), paired row by row). To average a background set, pass "
           "it as adapter_options={'background': rows} with baseline='mean'.")
    with _raises(InvalidParameterError, msg) as info:
        xai.explain(mlp3, X2, method="occlusion", baseline=np.zeros(4), target=0)
    assert (info.value.parameter, info.value.value) == ("baseline", (4,))


def test_ig_delete_baseline_on_text(tiny_bert):
    msg = ("The 'baseline' parameter of IntegratedGradients cannot be 'delete' for text: the "
           "path needs a baseline of the same length. Use 'pad', 'mask' or 'unk'.")
    with _raises(InvalidParameterError, msg) as info:
        xai.explain(tiny_bert, "the movie was great", method="ig", baseline="delete", n_steps=4)
    assert (info.value.parameter, info.value.value) == ("baseline", "delete")


# -- inputs -------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs(mlp3, bad):
    x = X2.copy()
    x[1, 4] = bad
    msg = ("The 'inputs' contain NaN or infinite values (1 of them, first at positions "
           "[(1, 4)]). Impute or drop them before explaining.")
    with _raises(InvalidInputError, msg) as info:
        xai.explain(mlp3, x, target=0)
    assert (info.value.parameter, info.value.value) == ("inputs", [(1, 4)])


def test_one_dimensional_array(mlp3):
    msg = ("Expected inputs with 2 dimensions (n_examples, n_features), got shape (4,). Use "
           "x.reshape(1, -1) for a single example.")
    with _raises(InvalidInputError, msg) as info:
        xai.explain(mlp3, np.ones(4), target=0)
    assert info.value.value == (4,)


def test_empty_array(mlp3):
    msg = "The 'inputs' batch is empty (0 examples). Pass at least one example."
    with _raises(InvalidInputError, msg):
        xai.explain(mlp3, np.empty((0, 6)), target=0)


def test_wrong_number_of_features_for_fitted_sklearn_model(logreg):
    model, _ = logreg
    msg = ("The 'inputs' have 3 features, but LogisticRegression expects 4. Pass inputs of shape "
           "(n_examples, 4).")
    with _raises(InvalidInputError, msg) as info:
        xai.explain(model, np.ones((2, 3)))
    assert info.value.value == (2, 3)


def test_string_input_to_a_tabular_model(mlp3):
    msg = ("Sequential takes numeric inputs, but 'inputs' is text ('the movie'). Pass a numeric "
           "array or DataFrame, or wrap a text model with its tokenizer: "
           "xai.explain((model, tokenizer), texts).")
    with _raises(InvalidInputError, msg):
        xai.explain(mlp3, "the movie", target=0)


def test_non_numeric_dataframe_column(logreg):
    pd = pytest.importorskip("pandas")
    model, _ = logreg
    frame = pd.DataFrame({"a": [1.0], "b": ["red"], "c": [0.0], "d": [2.0]})
    msg = ("The 'inputs' DataFrame has non-numeric columns ['b']. Encode them as numbers (for "
           "example with pandas.factorize or an OrdinalEncoder) before explaining.")
    with _raises(InvalidInputError, msg) as info:
        xai.explain(model, frame)
    assert info.value.value == ["b"]


def test_empty_string(tiny_bert):
    msg = ("Example 0 of 'inputs' is an empty string: it has no words to explain. Remove it or "
           "pass a non-empty text.")
    with _raises(InvalidInputError, msg):
        xai.explain(tiny_bert, "", method="occlusion")
    with _raises(InvalidInputError, msg.replace("Example 0", "Example 1")):
        xai.explain(tiny_bert, ["fun film", "   "], method="occlusion")


def test_empty_list_of_texts(tiny_bert):
    with _raises(InvalidInputError, "The 'inputs' batch is empty (0 texts). Pass at least one text."):
        xai.explain(tiny_bert, [], method="occlusion")


def test_non_str_in_a_list_of_texts(tiny_bert):
    with pytest.raises(InvalidInputError,
                       match=re.escape("Example 1 of 'inputs' is a") + r"n? int, "
                       + re.escape("not a str. Pass texts only.")) as info:
        xai.explain(tiny_bert, ["fun film", 3], method="occlusion")
    assert info.value.value == 3


def test_array_given_to_a_text_model(tiny_bert):
    msg = "A text model takes a str or a list of str as 'inputs'. Got ndarray instead."
    with _raises(InvalidInputError, msg):
        xai.explain(tiny_bert, np.ones((2, 3)), method="occlusion")


LONG_TEXT = "the movie " * 30  # 60 words -> 62 tokens with [CLS] and [SEP]; the limit is 32


def test_text_longer_than_max_length_warns_and_truncates(tiny_bert):
    msg = ("1 of the 'inputs' (first: example 0, 62 tokens) exceed the model's maximum length of "
           "32 tokens; they were truncated.")
    with pytest.warns(TruncationWarning, match=f"^{re.escape(msg)}$"):
        exp = xai.explain(tiny_bert, LONG_TEXT, method="occlusion")
    assert exp.features[0].n_tokens == 32  # 30 words + [CLS] + [SEP]
    assert exp.values.shape == (1, 1, 30)


def test_text_longer_than_max_length_is_an_error_when_asked(tiny_bert):
    msg = ("1 of the 'inputs' (first: example 1, 62 tokens) exceed the model's maximum length of "
           "32 tokens. Shorten them or use truncation='warn'.")
    with _raises(InvalidInputError, msg) as info:
        xai.explain(tiny_bert, ["fun film", LONG_TEXT], method="occlusion",
                    adapter_options={"truncation": "error"})
    assert info.value.value == [1]


# -- targets ------------------------------------------------------------------------------------

def test_target_out_of_range(mlp3):
    msg = "Target 5 is out of range for a model with 3 outputs. Valid targets: indices 0-2."
    with _raises(InvalidTargetError, msg) as info:
        xai.explain(mlp3, X2, method="occlusion", target=5)
    assert (info.value.parameter, info.value.value) == ("target", 5)


def test_unknown_target_label(tiny_bert):
    msg = ("Target 'positive' is not an output of this model. Valid targets: 'NEGATIVE', "
           "'POSITIVE' (or indices 0-1).")
    with _raises(InvalidTargetError, msg) as info:
        xai.explain(tiny_bert, "the movie was great", method="occlusion", target="positive")
    assert info.value.available == ("NEGATIVE", "POSITIVE")
    assert info.value.value == "positive"


def test_target_list_of_wrong_length(mlp3):
    msg = ("The 'target' list has 3 entries, but there are 2 examples. Pass one target per "
           "example, or a single int or label for all.")
    with _raises(InvalidTargetError, msg) as info:
        xai.explain(mlp3, X2, method="occlusion", target=[0, 1, 2])
    assert info.value.value == [0, 1, 2]


def test_target_none_is_ambiguous_without_labels(mlp3):
    msg = ("The model has 3 outputs and no class labels, so target=None is ambiguous. Pass "
           "target=<index in 0-2>, a list of indices, or 'all'.")
    with _raises(InvalidTargetError, msg):
        xai.explain(mlp3, X2, method="occlusion")


# -- models -------------------------------------------------------------------------------------

def test_gradient_method_on_sklearn_lists_compatible_methods(logreg):
    model, x = logreg
    works = xai.compatible_methods(model)
    assert {"occlusion", "shapley_sampling"} <= set(works)
    assert "integrated_gradients" not in works
    msg = ("Method 'integrated_gradients' needs GRADIENTS, but SklearnAdapter(LogisticRegression()) "
           f"does not provide it. Methods that work with this model: {', '.join(works)}.")
    with _raises(IncompatibleModelError, msg) as info:
        xai.explain(model, x[:2], method="integrated_gradients")
    assert info.value.method == "integrated_gradients"
    assert info.value.compatible == tuple(works)


def test_unfitted_sklearn_estimator():
    from sklearn.linear_model import LogisticRegression

    msg = ("This LogisticRegression instance is not fitted yet. Call 'fit' with appropriate "
           "arguments before explaining it.")
    with _raises(UnsupportedModelError, msg):
        xai.explain(LogisticRegression(), X2)


def test_unsupported_model_object():
    msg = ("Cannot explain an object of type int. Supported models: transformers model + "
           "tokenizer; transformers pipeline; fitted scikit-learn estimator; torch_geometric GNN (a "
           "module with MessagePassing layers); torch.nn.Module; callable; or a ModelAdapter "
           "instance.")
    with _raises(UnsupportedModelError, msg):
        xai.explain(3, X2)


def test_transformers_model_without_its_tokenizer(tiny_bert):
    model, _ = tiny_bert
    msg = ("BertForSequenceClassification is a transformers model without its tokenizer. Pass "
           "(model, tokenizer) or a pipeline: xai.explain((model, tokenizer), texts).")
    with _raises(UnsupportedModelError, msg):
        xai.explain(model, ["fun film"])
