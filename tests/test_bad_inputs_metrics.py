"""Bad inputs to every registered metric: a typed error that names what is wrong.

Issue 10, requirement 5 (with tests/test_bad_inputs.py): each case asserts the exception type and
pins the message.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest
from bad_inputs import fixture, raises
from models import make_metric

import metrics
import xai
from metrics import METRICS
from xai._validation import fmt_value
from xai.testing import toy_inputs
from xai.testing._checks import _invalid_values

# -- metrics -----------------------------------------------------------------------------------


@functools.cache
def _scored() -> tuple[Any, Any]:
    """(explanation, model): occlusion of every class of the fixtures' LogisticRegression."""
    fx = fixture("sklearn_logreg")
    return xai.explain(fx.model, fx.inputs, method="occlusion", target="all"), fx.model


def _other_model(n_classes: int = 3, n_features: int = 5) -> Any:
    from sklearn.linear_model import LogisticRegression

    x = toy_inputs(60, n_features, seed=4)
    return LogisticRegression().fit(x, np.arange(60) % n_classes)


#: The metrics of tabular explanations (the cases below are tabular; graph-only metrics have
#: their own bad-input tests in tests/metrics/test_graph_fidelity.py).
_TABULAR = [n for n in METRICS.names() if "tabular" in METRICS.get(n).modalities]
_MODEL_METRICS = [n for n in _TABULAR if METRICS.get(n).needs_model]


@pytest.mark.parametrize("name", METRICS.names())
def test_a_misspelt_metric_suggests_it(name):
    exp, model = _scored()
    typo = name[:-1]
    msg = (f"Unknown metric {typo!r}. Did you mean {name!r}? Available metrics: "
           f"{', '.join(METRICS.names())}.")
    with raises(xai.UnknownNameError, msg) as err:
        metrics.evaluate(exp, model, [typo])
    assert (err.value.kind, err.value.name) == ("metric", typo)


def test_one_metric_may_be_named_by_a_str():
    exp, model = _scored()
    assert list(metrics.evaluate(exp, model, "complexity")) == ["complexity"]
    msg = ("Unknown metric 'infidelty'. Did you mean 'infidelity'? Available metrics: "
           f"{', '.join(METRICS.names())}.")
    with raises(xai.UnknownNameError, msg):
        metrics.evaluate(exp, model, "infidelty")


def _metric_paramcases() -> list[Any]:
    out = []
    for name in METRICS.names():
        cls = METRICS.get(name)
        for param, constraints in cls._constraints.items():
            for bad in _invalid_values(constraints):
                out.append(pytest.param(cls, param, bad,
                                        id=f"{name}-{param}={type(bad).__name__}:{bad!s:.12}"))
    return out


@pytest.mark.parametrize(("cls", "param", "bad"), _metric_paramcases())
def test_an_invalid_metric_parameter_is_named(cls, param, bad):
    head = f"The {param!r} parameter of {cls.__name__} must be "
    with raises(xai.InvalidParameterError, head, whole=False) as err:
        make_metric(cls.name, **{param: bad})
    assert str(err.value).endswith(f"Got {fmt_value(bad)} instead."), str(err.value)
    assert (err.value.parameter, err.value.value) == (param, bad)


_SCORE_WITH_ANOTHER_MODEL = "Score an explanation with the model that produced it."


@pytest.mark.parametrize("other", ["fewer_outputs", "fewer_features", "other_weights"])
@pytest.mark.parametrize("name", _MODEL_METRICS)
def test_an_explanation_of_another_model_is_refused(name, other):
    exp, _ = _scored()
    if other == "fewer_outputs":
        model = _other_model(n_classes=2)
        msg = (f"The explanation explains output 2, but this model has 2 outputs. "
               f"{_SCORE_WITH_ANOTHER_MODEL}")
    elif other == "fewer_features":
        model = _other_model(n_features=4)
        msg = ("The explanation's inputs cannot be run through this model (X has 5 features, but "
               "LogisticRegression is expecting 4 features as input.). "
               f"{_SCORE_WITH_ANOTHER_MODEL}")
    else:
        model = _other_model()
        msg = "This model's scores differ from the explanation's predictions by up to "
    with raises(xai.InvalidExplanationError, msg, whole=other != "other_weights") as err:
        make_metric(name)(exp, model)
    assert str(err.value).endswith(_SCORE_WITH_ANOTHER_MODEL)


@pytest.mark.parametrize(("param", "value"), [("random_state", "abc"), ("random_state", -1),
                                              ("batch_size", 0), ("batch_size", "big")])
@pytest.mark.parametrize("name", _TABULAR)
def test_a_bad_metric_call_argument_is_named(name, param, value):
    exp, model = _scored()
    cls = METRICS.get(name)
    allowed = ("must be a non-negative int, a torch.Generator or None" if param == "random_state"
               else "must be an int in the range [1, inf) or 'auto'")
    msg = f"The {param!r} parameter of {cls.__name__} {allowed}. Got {value!r} instead."
    with raises(xai.InvalidParameterError, msg) as err:
        make_metric(name)(exp, model, **{param: value})
    assert err.value.parameter == param
