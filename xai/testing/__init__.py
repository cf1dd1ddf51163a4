"""The conformance suite every attribution method must pass, and the toy models it runs on.

Like scikit-learn's ``estimator_checks``: a method registered with :func:`xai.register_method`,
here or in a third-party package, is tested by the same checks as the built-in ones::

    from xai.testing import parametrize_with_checks

    @parametrize_with_checks()
    def test_methods_conform(check):
        check()

Each check takes a Method class, one of its parameter sets (:func:`params_for`: its
``_test_params()``, or ``TEST_PARAMS`` for a built-in method that needs a test fake) and an
:class:`AdapterFixture`, and raises ``AssertionError`` with the reason when the method breaks a
rule of the contract (DESIGN "Tests", items 1-7). The toy models never touch the global RNGs.

Metrics have their own suite (:func:`parametrize_with_metric_checks`, over a registry passed in,
since ``xai`` never imports ``metrics``): stateless, seeded, invalid parameters, row-vs-batch
invariance and direction (exact attributions beat shuffled ones). Both suites check that every
field has a declared constraint (:func:`check_constraints_cover_fields`).

Examples
--------
>>> from xai.testing import check_explanation_shape, adapter_fixtures
>>> from xai.methods import Occlusion
>>> check_explanation_shape(Occlusion, {}, adapter_fixtures()[0])
"""

from __future__ import annotations

from ._checks import (
    CHECKS,
    check_batch_invariance,
    check_explain_equivalence,
    check_explanation_shape,
    check_incompatible_adapter,
    check_invalid_params,
    check_method,
    check_model_untouched,
    check_seed,
    iter_checks,
    parametrize_with_checks,
)
from ._coverage import UNCONSTRAINED, check_constraints_cover_fields
from ._metric_checks import (
    METRIC_CHECKS,
    MetricFixture,
    check_metric_after_load,
    check_metric_batch_invariance,
    check_metric_direction,
    check_metric_invalid_params,
    check_metric_seed,
    check_metric_stateless,
    iter_metric_checks,
    metric_fixtures,
    parametrize_with_metric_checks,
)
from ._params import TEST_PARAMS, params_for
from ._toys import (
    NO_CAPABILITY,
    AdapterFixture,
    adapter_fixtures,
    tiny_text_classifier,
    tiny_tokenizer,
    toy_function,
    toy_inputs,
    toy_mlp,
)

__all__ = [
    "CHECKS",
    "METRIC_CHECKS",
    "NO_CAPABILITY",
    "TEST_PARAMS",
    "UNCONSTRAINED",
    "AdapterFixture",
    "MetricFixture",
    "adapter_fixtures",
    "check_batch_invariance",
    "check_constraints_cover_fields",
    "check_explain_equivalence",
    "check_explanation_shape",
    "check_incompatible_adapter",
    "check_invalid_params",
    "check_method",
    "check_metric_after_load",
    "check_metric_batch_invariance",
    "check_metric_direction",
    "check_metric_invalid_params",
    "check_metric_seed",
    "check_metric_stateless",
    "check_model_untouched",
    "check_seed",
    "iter_checks",
    "iter_metric_checks",
    "metric_fixtures",
    "params_for",
    "parametrize_with_checks",
    "parametrize_with_metric_checks",
    "tiny_text_classifier",
    "tiny_tokenizer",
    "toy_function",
    "toy_inputs",
    "toy_mlp",
]
