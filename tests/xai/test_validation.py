"""Constraints (scikit-learn wording), check_param messages, and random-state handling."""

from __future__ import annotations

import random
import re
from collections.abc import Callable

import numpy as np
import pytest
import torch

import xai
from xai._validation import (
    NONE_OK,
    InstanceOf,
    Interval,
    Options,
    check_param,
    check_random_state,
    fmt_value,
)
from xai.exceptions import InvalidParameterError


@pytest.mark.parametrize(("constraint", "text"), [
    (Interval(int, 1, None, closed="left"), "an int in the range [1, inf)"),
    (Interval(float, 0, 1, closed="both"), "a float in the range [0, 1]"),
    (Interval(float, 0, None, closed="neither"), "a float in the range (0, inf)"),
    (Interval(float, None, 0.5, closed="right"), "a float in the range (-inf, 0.5]"),
    (Interval(int, 2, 10, closed="right"), "an int in the range (2, 10]"),
    (Options({"word", "token", "auto"}), "a str among {'auto', 'token', 'word'}"),
    (Options({1, "x"}), "a value among {'x', 1}"),
    (InstanceOf((torch.Tensor,)), "an instance of Tensor"),
    (InstanceOf((bool,), "a bool"), "a bool"),
])
def test_constraint_wording(constraint, text):
    assert str(constraint) == text


@pytest.mark.parametrize(("constraint", "good", "bad"), [
    (Interval(int, 1, None, closed="left"), [1, 7, np.int64(3)], [0, -1, 1.5, 2.0, True, "3"]),
    (Interval(float, 0, 1, closed="both"), [0, 0.5, 1.0, np.float32(0.2)],
     [-0.1, 1.01, float("nan"), False]),
    (Interval(float, 0, 1, closed="neither"), [0.5], [0.0, 1.0]),
    (Options({"a", "b"}), ["a", "b"], ["c", None, ["a"]]),
    (InstanceOf((bool,), "a bool"), [True, False], [1, "yes"]),
    (InstanceOf((Callable,)), [len, lambda: 0], [3, "f"]),
])
def test_is_satisfied_by(constraint, good, bad):
    assert [constraint.is_satisfied_by(v) for v in good] == [True] * len(good)
    assert [constraint.is_satisfied_by(v) for v in bad] == [False] * len(bad)


@pytest.mark.parametrize("constraint", [
    Interval(int, 1, None, closed="left"), Interval(float, None, 0.5, closed="right"),
    Interval(float, 0, 1, closed="both"), Options({"a"}), InstanceOf((torch.Tensor,)),
])
def test_invalid_value_violates_its_constraint(constraint):
    assert not constraint.is_satisfied_by(constraint.invalid_value())


def test_check_param_message_lists_every_accepted_kind():
    constraints = [Interval(int, 1, None, closed="left"), Options({"auto"}), NONE_OK]
    msg = ("The 'n_samples' parameter of Foo must be an int in the range [1, inf), a str among "
           "{'auto'} or None. Got 0 instead.")
    with pytest.raises(InvalidParameterError, match=f"^{re.escape(msg)}$") as info:
        check_param("Foo", "n_samples", 0, constraints)
    err = info.value
    assert (err.owner, err.parameter, err.value) == ("Foo", "n_samples", 0)
    check_param("Foo", "n_samples", None, constraints)  # any one constraint is enough
    check_param("Foo", "n_samples", "auto", constraints)


def test_fmt_value_summarises_arrays_and_long_values():
    assert fmt_value(torch.zeros(2, 3)) == "Tensor of shape (2, 3)"
    assert fmt_value(np.zeros(4)) == "ndarray of shape (4,)"
    assert fmt_value("x" * 200) == repr("x" * 200)[:77] + "..."
    assert fmt_value(0.5) == "0.5"


# -- random state -------------------------------------------------------------------------------

def test_same_int_gives_the_same_stream():
    a = torch.rand(5, generator=check_random_state(7))
    b = torch.rand(5, generator=check_random_state(7))
    c = torch.rand(5, generator=check_random_state(8))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(a, c)


def test_int_seed_equals_a_generator_seeded_alike():
    a = torch.rand(5, generator=check_random_state(np.int64(3)))
    b = torch.rand(5, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_generator_is_passed_through():
    gen = torch.Generator().manual_seed(1)
    assert check_random_state(gen) is gen


def test_none_gives_fresh_unseeded_generators():
    a = torch.rand(4, generator=check_random_state(None))
    b = torch.rand(4, generator=check_random_state(None))
    assert not torch.equal(a, b)  # OS entropy: a collision has probability ~2**-96


@pytest.mark.parametrize(("seed", "shown"), [(-1, "-1"), (1.0, "1.0"), (True, "True"),
                                             (np.random.default_rng(0), "Generator(PCG64)")])
def test_bad_random_state_is_rejected(seed, shown):
    msg = (f"The 'random_state' parameter of Lime must be a non-negative int, a torch.Generator "
           f"or None. Got {shown}")
    with pytest.raises(InvalidParameterError, match=re.escape(msg)) as info:
        check_random_state(seed, owner="Lime")
    assert info.value.parameter == "random_state"


def _global_states():
    return torch.get_rng_state(), np.random.get_state(), random.getstate()  # noqa: NPY002


def _assert_same_states(before, after):
    assert torch.equal(before[0], after[0]), "torch global RNG state changed"
    assert before[1][0] == after[1][0]
    assert np.array_equal(before[1][1], after[1][1]), "numpy global RNG state changed"
    assert before[1][2:] == after[1][2:], "numpy global RNG state changed"
    assert before[2] == after[2], "python global RNG state changed"


@pytest.fixture
def restore_global_rng():
    """This test seeds the global RNGs to watch them; put them back afterwards."""
    before = _global_states()
    yield
    torch.set_rng_state(before[0])
    np.random.set_state(before[1])  # noqa: NPY002
    random.setstate(before[2])


@pytest.mark.usefixtures("restore_global_rng")
@pytest.mark.parametrize("random_state", [0, None, torch.Generator().manual_seed(5)])
def test_shapley_sampling_leaves_global_rng_state_alone(mlp3, random_state):
    x = np.random.default_rng(0).normal(size=(3, 6))
    torch.manual_seed(123)
    np.random.seed(123)  # noqa: NPY002  (the legacy global state is what we watch)
    before = _global_states()
    exp = xai.explain(mlp3, x, method="shapley_sampling", target=0, n_permutations=6,
                      random_state=random_state)
    _assert_same_states(before, _global_states())
    # efficiency holds for every draw: sum of values == f(x) - f(baseline)
    torch.testing.assert_close(exp.values.sum(-1), exp.predictions - exp.base_values,
                               rtol=1e-5, atol=1e-5)
    # nothing drew from the global streams: they continue exactly as freshly seeded ones
    fresh = torch.Generator().manual_seed(123)
    torch.testing.assert_close(torch.rand(3), torch.rand(3, generator=fresh), rtol=0, atol=0)
    np.testing.assert_array_equal(np.random.rand(3),  # noqa: NPY002
                                  np.random.RandomState(123).rand(3))
