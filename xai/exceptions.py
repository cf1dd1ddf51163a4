"""Errors and warnings raised by posthoc-xai.

Exception hierarchy:

* XAIError
  x InvalidParameterError(XAIError, ValueError)    - a method/metric parameter violates its constraint
  x InvalidInputError(XAIError, ValueError)        - inputs cannot be used (shape, dtype, empty, non-finite)
  x InvalidTargetError(XAIError, ValueError)       - target index/label does not exist for this model
  x InvalidExplanationError(XAIError, ValueError)  - inconsistent Explanation fields, or attributions a metric cannot rank
  x UnknownNameError(XAIError, ValueError)         - no method/metric registered under that name
  x UnsupportedModelError(XAIError, TypeError)     - as_adapter() cannot wrap this object (or it is not fitted)
  x IncompatibleModelError(XAIError, TypeError)    - the method needs a capability the adapter lacks
  x MissingDependencyError(XAIError, ImportError)  - an optional extra is not installed
* XAIWarning(UserWarning)
  x ConvergenceWarning      - IG |delta| or Shapley stderr above tolerance
  x IgnoredParameterWarning - a parameter has no effect for this model/modality
  x TruncationWarning       - a text was longer than the model's maximum length and was truncated

Every error carries its context as attributes (``parameter``, ``value``, ``available``...) and
inherits from ``ValueError``/``TypeError``/``ImportError`` so that plain ``except ValueError`` keeps
working.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "ConvergenceWarning",
    "IgnoredParameterWarning",
    "IncompatibleModelError",
    "InvalidExplanationError",
    "InvalidInputError",
    "InvalidParameterError",
    "InvalidTargetError",
    "MissingDependencyError",
    "TruncationWarning",
    "UnknownNameError",
    "UnsupportedModelError",
    "XAIError",
    "XAIWarning",
]


class XAIError(Exception):
    """Base class of every error raised by posthoc-xai."""


class InvalidParameterError(XAIError, ValueError):
    """A method or metric parameter violates its constraint."""

    def __init__(
        self,
        message: str,
        *,
        owner: str | None = None,
        parameter: str | None = None,
        value: Any = None,
        constraint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.owner = owner
        self.parameter = parameter
        self.value = value
        self.constraint = constraint


class InvalidInputError(XAIError, ValueError):
    """The inputs cannot be used: wrong shape or dtype, empty, or not finite."""

    def __init__(self, message: str, *, parameter: str = "inputs", value: Any = None) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.value = value


class InvalidTargetError(XAIError, ValueError):
    """The target index or label does not exist for this model."""

    def __init__(self, message: str, *, value: Any = None, available: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.parameter = "target"
        self.value = value
        self.available = tuple(available)


class InvalidExplanationError(XAIError, ValueError):
    """The fields of an Explanation are inconsistent, or its attributions cannot be used."""


class UnknownNameError(XAIError, ValueError):
    """No method or metric is registered under that name."""

    def __init__(self, message: str, *, kind: str, name: str, available: Sequence[str]) -> None:
        super().__init__(message)
        self.kind = kind
        self.name = name
        self.available = tuple(available)


class UnsupportedModelError(XAIError, TypeError):
    """``as_adapter`` cannot wrap this object, or the model cannot be used as it is (not fitted)."""


class IncompatibleModelError(XAIError, TypeError):
    """The method needs a capability or modality that the model adapter does not provide."""

    def __init__(self, message: str, *, method: str = "", compatible: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.method = method
        self.compatible = tuple(compatible)


class MissingDependencyError(XAIError, ImportError):
    """An optional dependency is not installed."""


class XAIWarning(UserWarning):
    """Base class of every warning issued by posthoc-xai."""


class ConvergenceWarning(XAIWarning):
    """An estimate did not converge: IG's completeness gap or a sampling error is above tolerance."""


class IgnoredParameterWarning(XAIWarning):
    """A parameter has no effect for this model or modality."""


class TruncationWarning(XAIWarning):
    """A text was longer than the model's maximum length and was truncated."""
