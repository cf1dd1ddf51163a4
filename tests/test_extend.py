"""``xai.extend`` is enough to write a method and a metric outside the package, and the
registries answer compatibility (``METHODS.compatible``, ``METRICS.applicable``)."""

from __future__ import annotations

import dataclasses
import re
from typing import Any, ClassVar

import pytest
import torch

import metrics
import xai
from metrics._evaluate import applicable_metrics
from xai.extend import (
    METHODS,
    AttributionOutput,
    Capability,
    Interval,
    Method,
    check_random_state,
    example_generators,
    register_method,
)
from xai.testing import toy_function, toy_inputs


@dataclasses.dataclass(frozen=True, kw_only=True)
class Gain(Method):
    """``scale`` times each input: a third-party method written against xai.extend only."""

    requires: ClassVar[Capability] = Capability.FORWARD
    modalities: ClassVar[frozenset[str]] = frozenset({"tabular"})
    _constraints: ClassVar[dict[str, Any]] = {"scale": [Interval(float, 0, None, closed="neither")]}

    scale: float = 1.0

    def _attribute(self, adapter: Any, batch: Any, features: Any, target: Any, *,
                   batch_size: int, rng: torch.Generator) -> AttributionOutput:
        x = batch.inputs.float()[:, None, :]
        return AttributionOutput(values=self.scale * x.expand(-1, target.n_outputs, -1))


@dataclasses.dataclass(frozen=True, kw_only=True)
class MaxAbs(metrics.Metric):
    """The largest |attribution| per example and output: a third-party metric."""

    higher_is_better: ClassVar[bool] = False
    category: ClassVar[Any] = "complexity"
    needs_model: ClassVar[bool] = False

    def _score(self, explanation: xai.Explanation, adapter: Any, rng: torch.Generator, *,
               batch_size: int) -> torch.Tensor:
        return explanation.values.abs().amax(-1)


@pytest.fixture
def tabular():
    return xai.CallableAdapter(toy_function()), toy_inputs()


def test_a_method_written_against_extend_explains_and_validates(tabular):
    model, x = tabular
    with METHODS.scoped():
        register_method("gain")(Gain)
        exp = xai.explain(model, x[:1], method="gain", scale=2.0, target=0)
        torch.testing.assert_close(exp.values, 2.0 * torch.as_tensor(x[:1])[:, None, :],
                                   rtol=0, atol=0)
        msg = "The 'scale' parameter of Gain must be a float in the range (0, inf). Got 0.0 instead."
        with pytest.raises(xai.InvalidParameterError, match=re.escape(msg)):
            Gain(scale=0.0)
    assert "gain" not in METHODS


def test_a_metric_written_against_extend_scores(tabular):
    model, x = tabular
    exp = xai.explain(model, x[:2], method="occlusion", target=0)
    with metrics.METRICS.scoped():
        metrics.register_metric("max_abs")(MaxAbs)
        res = metrics.evaluate(exp, model, ["max_abs"])["max_abs"]
        assert "max_abs" in metrics.METRICS.applicable(exp)
    torch.testing.assert_close(res.scores, exp.values.abs().amax(-1), rtol=0, atol=0)


def test_methods_compatible_is_what_compatible_methods_answers(tabular):
    model, _ = tabular
    adapter = xai.as_adapter(model)
    assert METHODS.compatible(adapter) == ["best_of", "kernel_shap", "lime", "occlusion",
                                           "responsiveness", "shapley_sampling"]
    assert xai.compatible_methods(model) == METHODS.compatible(adapter)


def test_metrics_applicable_is_what_applicable_metrics_answers(tabular):
    model, x = tabular
    exp = xai.explain(model, x[:2], method="occlusion", target=0)
    assert metrics.METRICS.applicable(exp) == [
        "aopc_comprehensiveness", "aopc_sufficiency", "complexity", "comprehensiveness",
        "faithfulness_correlation", "infidelity", "sufficiency"]
    assert applicable_metrics(exp) == metrics.METRICS.applicable(exp)


def test_seeding_helpers_are_the_ones_methods_use():
    gens = example_generators(check_random_state(0), 2)
    draws = [torch.rand(3, generator=g) for g in gens]
    torch.testing.assert_close(draws[0], draws[1], rtol=0, atol=0)  # one seed for every example
