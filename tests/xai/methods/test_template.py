"""One template per method: every registered method runs through Method.explain."""

from __future__ import annotations

import pytest

from xai import METHODS
from xai.methods import Method


@pytest.mark.parametrize("name", METHODS.names())
def test_no_method_overrides_explain(name):
    # A method that needs another target or other inputs overrides a hook (_prepare,
    # _resolve_target, feature_spaces), so the Explanation is built in one place.
    cls = METHODS.get(name)
    assert cls.explain is Method.explain, f"{cls.__name__} overrides Method.explain"


def test_textgenshap_is_its_own_method_not_an_alias():
    assert METHODS.get("textgenshap").__name__ == "TextGenSHAP"
    assert METHODS.canonical("textgenshap") == "textgenshap"
    assert METHODS.aliases("shapley_sampling") == ()
