"""The parameter sets the conformance suite builds each method from.

A method declares cheap parameter sets in its ``_test_params()`` classmethod. A built-in method
whose required field only a test fake can fill (the ``resampler`` of OLM and of input
marginalization) has its sets here instead, beside the fake, so that no production module
imports ``xai.testing`` (scikit-learn keeps such sets in its test-instance generator for the
same reason). A third-party method keeps using ``_test_params()``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..methods import BEE, OLM, BestOf, InputMarginalization, Method, Responsiveness
from ..recourse import ActionElement, ActionSet
from ._toys import UniformResampler

__all__ = ["TEST_PARAMS", "params_for"]


def _olm() -> list[dict[str, Any]]:
    return [{"resampler": UniformResampler(), "n_samples": 4},
            {"resampler": UniformResampler(), "n_samples": 3, "statistic": "std"}]


def _input_marginalization() -> list[dict[str, Any]]:
    return [{"resampler": UniformResampler()}]


def toy_action_set(n_features: int = 5) -> ActionSet:
    """Every feature of the toy inputs (standard normal) actionable over [-5, 5], floats."""
    return ActionSet([ActionElement(f"x{j}", lb=-5.0, ub=5.0) for j in range(n_features)])


def _responsiveness() -> list[dict[str, Any]]:
    return [{"action_set": toy_action_set(), "n_samples": 16},
            {"action_set": toy_action_set(), "n_samples": 8, "find_fixed": False}]


def l1_size(explanation: Any, model: Any) -> Any:
    """A toy objective for ``best_of``: the L1 norm of each example's values (sparser wins with
    direction="min")."""
    return explanation.values.abs().sum(dim=(1, 2))


def _best_of() -> list[dict[str, Any]]:
    # sampling candidates: best_of is as random as its candidates (the suite reads the class's
    # ``deterministic = False``)
    return [{"objective": l1_size, "direction": "min",
             "candidates": [("lime", {"n_samples": 40}), ("lime", {"n_samples": 60})]}]


def _bee() -> list[dict[str, Any]]:
    return [{"objective": l1_size, "direction": "min", "n_baselines": 3, "n_steps": 4},
            {"objective": l1_size, "direction": "max", "n_baselines": 2, "n_steps": 3,
             "families": ["gaussian", "uniform"],
             "integrand": "grad_x_act", "integration": "riemann_trapezoid"}]


#: Parameter sets of the built-in methods that need a test fake, by class (built on each call,
#: so that no check shares a fake with another).
TEST_PARAMS: dict[type[Method], Callable[[], list[dict[str, Any]]]] = {
    OLM: _olm,
    InputMarginalization: _input_marginalization,
    Responsiveness: _responsiveness,
    BestOf: _best_of,
    BEE: _bee,
}


def params_for(cls: type[Method]) -> list[dict[str, Any]]:
    """The parameter sets the conformance suite instantiates ``cls`` with.

    ``TEST_PARAMS[cls]()`` for a built-in method listed there, else ``cls._test_params()``.

    Examples
    --------
    >>> from xai.methods import OLM, Occlusion
    >>> params_for(Occlusion) == Occlusion._test_params()
    True
    >>> params_for(OLM)[0]["n_samples"]
    4
    """
    make = TEST_PARAMS.get(cls)
    return make() if make is not None else cls._test_params()
