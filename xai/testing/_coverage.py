"""The check that every parameter of a method or metric is covered by a declared constraint."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from typing import Any

__all__ = ["UNCONSTRAINED", "check_constraints_cover_fields"]

#: ``(class name, field)`` pairs allowed to go without a constraint, each with its reason in a
#: comment. Empty: every built-in field has one.
UNCONSTRAINED: frozenset[tuple[str, str]] = frozenset()


def check_constraints_cover_fields(cls: type[Any],
                                   allowed: Collection[tuple[str, str]] = UNCONSTRAINED) -> None:
    """Every ``__init__`` field of the dataclass ``cls`` (a Method or a Metric) has an entry in
    ``cls._constraints``, and every entry names a field (scikit-learn's parameter-validation
    check).

    A field without a constraint would be accepted whatever its value and fail later, inside
    the computation, with a message that does not name it.

    Examples
    --------
    >>> from xai.methods import Occlusion
    >>> check_constraints_cover_fields(Occlusion)
    """
    fields = [f.name for f in dataclasses.fields(cls) if f.init]
    constraints = getattr(cls, "_constraints", {})
    missing = [f for f in fields if f not in constraints and (cls.__name__, f) not in allowed]
    assert not missing, (f"{cls.__name__}._constraints has no entry for the field(s) {missing}: "
                         "declare the accepted values of each (xai.extend constraints).")
    unknown = sorted(set(constraints) - set(fields))
    assert not unknown, f"{cls.__name__}._constraints names non-fields {unknown}"
