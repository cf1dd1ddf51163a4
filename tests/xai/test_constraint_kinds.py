"""The constraint kinds added for fields that had none: ArrayLike, Satisfies and BASELINE."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import torch

from xai._validation import BASELINE, ArrayLike, Satisfies, check_param
from xai.exceptions import InvalidParameterError


@pytest.mark.parametrize(("value", "ok"), [
    (np.zeros(3), True), (torch.zeros(2), True), ([1.0, 2.0], True), ((1, 2), True),
    (pd.DataFrame({"a": [1.0]}), True), ("zeros", False), (None, False), (True, False),
    (object(), False),
])
def test_array_like(value, ok):
    assert ArrayLike().is_satisfied_by(value) is ok
    assert str(ArrayLike()) == "an array-like"
    assert not ArrayLike().is_satisfied_by(ArrayLike().invalid_value())


def test_satisfies_uses_the_predicate_and_its_description():
    even = Satisfies(lambda v: v % 2 == 0, "an even int", invalid=3)
    assert even.is_satisfied_by(4)
    assert not even.is_satisfied_by(even.invalid_value())
    assert not even.is_satisfied_by("x")  # a predicate that raises TypeError means "no"
    msg = "The 'k' parameter of Toy must be an even int. Got 5 instead."
    with pytest.raises(InvalidParameterError, match=re.escape(msg)):
        check_param("Toy", "k", 5, [even])


@pytest.mark.parametrize("value", ["auto", "zeros", "mean", "pad", "mask", "unk", "delete", 0,
                                   0.5, float("nan"), np.zeros(4), [0.0, 1.0]])
def test_baseline_accepts_every_kind_explain_resolves(value):
    # NaN passes here on purpose: explain() refuses it with the message that names the fix
    check_param("Occlusion", "baseline", value, BASELINE)


def test_baseline_refuses_other_strings_with_the_choices():
    msg = ("The 'baseline' parameter of Occlusion must be a str among {'auto', 'delete', 'mask', "
           "'mean', 'pad', 'unk', 'zeros'}, a number or an array-like. Got 'zero' instead.")
    with pytest.raises(InvalidParameterError, match=re.escape(msg)):
        check_param("Occlusion", "baseline", "zero", BASELINE)
