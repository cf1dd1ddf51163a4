"""The metric conformance suite (xai.testing) over every registered metric, and its self-tests."""

from __future__ import annotations

import dataclasses
import re
from typing import ClassVar

import pytest
import torch

from metrics import METRICS, Comprehensiveness
from xai.testing import (
    check_constraints_cover_fields,
    check_metric_batch_invariance,
    check_metric_direction,
    check_metric_invalid_params,
    check_metric_seed,
    check_metric_stateless,
    iter_metric_checks,
    metric_fixtures,
    parametrize_with_metric_checks,
)

#: Metrics exempt from the direction check, with the reason.
NO_DIRECTION = {
    # the entropy of |values| does not depend on which feature carries which value, so a
    # shuffled explanation is exactly as complex as the exact one
    "complexity": "permutation-invariant",
    # sensitivity re-explains the input and its perturbations with the explanation's method and
    # compares those re-explanations: it rates the method's stability, and the explanation's
    # own values (exact or shuffled) do not enter the score
    "max_sensitivity": "re-explains: scores the method, not the values",
    "avg_sensitivity": "re-explains: scores the method, not the values",
    # whether the top reasons are features a person can act on, not whether they are the
    # model's reasons: a shuffled explanation may name more actionable features
    "responsiveness": "scores actionability, not faithfulness",
}

#: Metrics whose scores depend on the seed (random subsets, perturbations or neighbours).
RANDOM = {"faithfulness_correlation", "infidelity", "max_sensitivity", "avg_sensitivity",
          "robust_fidelity", "responsiveness"}
SEEDED = {name: name not in RANDOM for name in METRICS.names()}


@parametrize_with_metric_checks(METRICS, no_direction=NO_DIRECTION, deterministic=SEEDED)
def test_metric_conforms(check):
    check()


def _fixture(name):
    return next(fx for fx in metric_fixtures() if fx.name == name)


# -- the suite itself --------------------------------------------------------------------------

def test_every_metric_meets_direction_on_some_fixture():
    ids = [i for i, _ in iter_metric_checks(METRICS, no_direction=NO_DIRECTION)]
    for name in set(METRICS.names()) - set(NO_DIRECTION):
        assert any(i.startswith(f"{name}(") and i.endswith("check_metric_direction")
                   for i in ids), name
    assert not any(i.startswith("complexity(") and "direction" in i for i in ids)


def test_the_exact_fixture_is_the_closed_form():
    fx = _fixture("linear")
    x = torch.randn(5, 6, generator=torch.Generator().manual_seed(3))
    w = torch.tensor([3.0, -2.0, 1.5, -1.0, 0.5, 2.5])
    # w * (x - 0): occlusion's closed form for a linear model, and what occlusion computes
    torch.testing.assert_close(fx.explanation.values[:, 0], w * x, rtol=0, atol=0)
    # rolled by one feature: every value moves
    torch.testing.assert_close(fx.shuffled.values[..., 1:], fx.explanation.values[..., :-1],
                               rtol=0, atol=0)


def test_constraint_coverage_catches_a_field_without_a_constraint():
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Loose(Comprehensiveness):
        extra: int = 1

    msg = ("Loose._constraints has no entry for the field(s) ['extra']: declare the accepted "
           "values of each (xai.extend constraints).")
    with pytest.raises(AssertionError, match=re.escape(msg)):
        check_constraints_cover_fields(Loose)
    with pytest.raises(AssertionError, match=re.escape(msg)):
        check_metric_invalid_params(Loose, {})


def test_invalid_params_check_catches_an_unvalidated_constraint():
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Unchecked(Comprehensiveness):
        def __post_init__(self) -> None:
            pass

    with pytest.raises(AssertionError, match=re.escape("did not raise InvalidParameterError")):
        check_metric_invalid_params(Unchecked, {})


def test_stateless_check_catches_a_metric_that_keeps_state():
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Counting(Comprehensiveness):
        calls: ClassVar[list[int]] = []

        def _score(self, explanation, adapter, rng, *, batch_size):
            self.calls.append(1)
            scores, extras = super()._score(explanation, adapter, rng, batch_size=batch_size)
            return scores + len(self.calls), extras

    with pytest.raises(AssertionError, match="second call"):
        check_metric_stateless(Counting(), _fixture("linear"))


def test_seed_check_catches_a_metric_that_uses_the_global_rng():
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class GlobalRng(Comprehensiveness):
        def _score(self, explanation, adapter, rng, *, batch_size):
            return torch.rand(len(explanation), 1)

    with pytest.raises(AssertionError, match="same seed"):
        check_metric_seed(GlobalRng(), _fixture("linear"))


def test_seed_check_catches_a_random_metric_that_ignores_the_seed():
    with pytest.raises(AssertionError, match="random but seeds 0 and 1 agree"):
        check_metric_seed(Comprehensiveness(), _fixture("linear"), deterministic=False)


def test_batch_check_catches_batch_dependent_scores():
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Batchy(Comprehensiveness):
        def _score(self, explanation, adapter, rng, *, batch_size):
            scores, extras = super()._score(explanation, adapter, rng, batch_size=batch_size)
            return scores * len(explanation), extras

    with pytest.raises(AssertionError, match="row 0"):
        check_metric_batch_invariance(Batchy(), _fixture("linear"))


def test_direction_check_catches_a_reversed_metric():
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Reversed(Comprehensiveness):
        higher_is_better: ClassVar[bool] = False

    with pytest.raises(AssertionError, match="but lower is better"):
        check_metric_direction(Reversed(), _fixture("linear"))
