"""Shared by the bad-input suites (tests/test_bad_inputs*.py): fixtures, cases, matchers.

Each method meets the first fixture it can explain among the conformance suite's
(``xai.testing.adapter_fixtures()``, plus a tiny causal LM here), with its first
parameter set (``xai.testing.params_for``).
"""

from __future__ import annotations

import functools
import re
import warnings
from typing import Any

import models
import pytest

import xai
from xai import METHODS
from xai.testing import AdapterFixture, adapter_fixtures, params_for

__all__ = ["CAUSAL_LM", "FIXTURES", "LABELLED_FIRST", "NUMERIC", "cases", "configured",
           "explain_with", "fixture", "raises", "works"]


def _causal_lm_case() -> tuple[Any, Any]:
    from xai.adapters import HFCausalLMAdapter

    return HFCausalLMAdapter(models.tiny_gpt2(), models.word_tokenizer()), "the cat sat on the mat"


CAUSAL_LM = AdapterFixture("causal_lm", _causal_lm_case, 1)
FIXTURES = (*adapter_fixtures(), CAUSAL_LM)
NUMERIC = ("torch_mlp", "callable", "sklearn_logreg")
LABELLED_FIRST = ("sklearn_logreg", "torch_mlp", "text_bert")
_FIXTURE_INPUTS = object()  # sentinel: explain the fixture's own inputs


@functools.cache
def works(fx: AdapterFixture) -> tuple[str, ...]:
    return tuple(xai.compatible_methods(fx.adapter()))


def _fixtures_of(name: str, among: tuple[str, ...] | None = None) -> list[AdapterFixture]:
    """The fixtures ``name`` can explain, in the order of ``among`` (default: FIXTURES)."""
    by_name = {fx.name: fx for fx in FIXTURES}
    order = among if among is not None else tuple(by_name)
    return [by_name[n] for n in order if n in by_name and name in works(by_name[n])]


def cases(among: tuple[str, ...] | None = None, *, every: str = "") -> list[Any]:
    """(method name, fixture) params: each method on its first fixture among ``among``, and the
    method ``every`` on all of them."""
    out = []
    for name in METHODS.names():
        fxs = _fixtures_of(name, among)
        for fx in fxs if name == every else fxs[:1]:
            out.append(pytest.param(name, fx, id=f"{name}-{fx.name}"))
    return out


def configured(name: str) -> xai.Method:
    cls = METHODS.get(name)
    return cls(**params_for(cls)[0])


def explain_with(name: str, fx: AdapterFixture, inputs: Any = _FIXTURE_INPUTS, **kwargs: Any) -> Any:
    kwargs.setdefault("target", fx.target)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", xai.ConvergenceWarning)
        return xai.explain(fx.model, fx.inputs if inputs is _FIXTURE_INPUTS else inputs,
                           method=configured(name), random_state=0, **kwargs)


def raises(exc: type[BaseException], message: str, *, whole: bool = True) -> Any:
    """pytest.raises matching ``message`` literally: the whole message, or a part of it."""
    pattern = re.escape(message)
    return pytest.raises(exc, match=f"^{pattern}$" if whole else pattern)


def fixture(name: str) -> AdapterFixture:
    return next(fx for fx in FIXTURES if fx.name == name)


def run_cli(capsys: Any, *argv: str) -> tuple[int, str]:
    """Exit code and stderr of ``xai *argv`` (argparse's own errors exit through SystemExit)."""
    from xai.cli import main

    try:
        code = main(list(argv))
    except SystemExit as stop:
        code = int(stop.code or 0)
    return code, capsys.readouterr().err
