"""`ActionSet`: which changes a person can make to each feature, and which features move together.

Follows the actionability model of Kothari et al. (ICLR 2024) and Cheon et al. (ICLR 2025) as
implemented in reachml's ``ActionSet``: per feature whether it is actionable, its bounds, its type,
the direction and size of the allowed steps; across features the constraints of
``xai.recourse._constraints``. Plain Python and numpy; no solver.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..exceptions import InvalidInputError, InvalidParameterError, UnknownNameError
from ._constraints import (
    ActionConstraint,
    DirectionalLinkage,
    IfThen,
    OneHot,
    Thermometer,
    constraint_from_dict,
)

__all__ = ["ActionElement", "ActionSet"]

VariableType = Literal["bool", "int", "float"]
FORMAT = "posthoc-xai/action-set"
FORMAT_VERSION = 1


def _error(element: str, parameter: str, value: Any, must: str, fix: str = "") -> InvalidParameterError:
    msg = (f"The {parameter!r} of feature {element!r} must be {must}. Got {value!r} instead."
           + (f" {fix}" if fix else ""))
    return InvalidParameterError(msg, owner=f"ActionSet[{element!r}]", parameter=parameter,
                                 value=value)


def _is_number(value: Any) -> bool:
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(float(value)))


class ActionElement:
    """What a person can do with one feature.

    Every attribute is checked when it is set (``actions["age"].actionable = False``), against the
    element's other attributes, so a contradiction is refused where it is made.

    Attributes
    ----------
    name : str
    actionable : bool
        False: the person cannot change it directly (it may still move through a
        `DirectionalLinkage`).
    lb, ub : float
        The values the feature may take (inferred from the data by `ActionSet.from_dataframe`).
    variable_type : {"bool", "int", "float"}
        bool and int features take whole values only.
    step_direction : {-1, 0, +1}
        +1: may only increase; -1: may only decrease; 0: both.
    step_lb, step_ub : float or None
        The largest decrease (a number <= 0) and increase (>= 0) of one action; None is unbounded.
    """

    _FIELDS = ("actionable", "lb", "ub", "variable_type", "step_direction", "step_lb", "step_ub")

    def __init__(self, name: str, *, lb: float, ub: float, variable_type: VariableType = "float",
                 actionable: bool = True, step_direction: int = 0, step_lb: float | None = None,
                 step_ub: float | None = None) -> None:
        object.__setattr__(self, "name", str(name))
        # set without cross-checks first, then check the whole element once
        for key, value in (("actionable", True), ("lb", -math.inf), ("ub", math.inf),
                           ("variable_type", "float"), ("step_direction", 0), ("step_lb", None),
                           ("step_ub", None)):
            object.__setattr__(self, key, value)
        self.variable_type = variable_type
        self.lb, self.ub = lb, ub
        self.actionable = actionable
        self.step_direction = step_direction
        self.step_lb, self.step_ub = step_lb, step_ub

    name: str
    actionable: bool
    lb: float
    ub: float
    variable_type: VariableType
    step_direction: int
    step_lb: float | None
    step_ub: float | None

    def __setattr__(self, key: str, value: Any) -> None:
        if key not in self._FIELDS:
            msg = (f"ActionElement has no attribute {key!r}; its attributes are "
                   f"{', '.join(self._FIELDS)}.")
            raise AttributeError(msg)
        object.__setattr__(self, key, self._checked(key, value))

    def _checked(self, key: str, value: Any) -> Any:  # noqa: C901  (one branch per attribute)
        name = self.name
        if key == "actionable":
            if not isinstance(value, bool | np.bool_):
                raise _error(name, key, value, "True or False")
            if not value and (self.step_direction != 0 or self.step_lb is not None
                              or self.step_ub is not None):
                raise _error(name, key, value, "True while the feature has a step_direction or "
                             "step bounds", "An immutable feature takes no steps: reset "
                             "step_direction to 0 and step_lb/step_ub to None first.")
            return bool(value)
        if key in ("lb", "ub"):
            if not _is_number(value):
                raise _error(name, key, value, "a finite number")
            value = float(value)
            if self.variable_type == "bool" and value not in (0.0, 1.0):
                raise _error(name, key, value, "0 or 1 for a bool feature")
            if self.variable_type == "int" and not value.is_integer():
                raise _error(name, key, value, "a whole number for an int feature")
            lb, ub = (value, self.ub) if key == "lb" else (self.lb, value)
            if lb > ub:
                raise _error(name, key, value, f"{'<=' if key == 'lb' else '>='} "
                             f"{'ub' if key == 'lb' else 'lb'} = {ub if key == 'lb' else lb:g}")
            return value
        if key == "variable_type":
            if value not in ("bool", "int", "float"):
                raise _error(name, key, value, "'bool', 'int' or 'float'")
            bounds = [b for b in (self.lb, self.ub) if math.isfinite(b)]
            if value == "bool" and any(b not in (0.0, 1.0) for b in bounds):
                raise _error(name, key, value, "compatible with the bounds "
                             f"[{self.lb:g}, {self.ub:g}]", "Set lb=0 and ub=1 first.")
            if value == "int" and any(not b.is_integer() for b in bounds):
                raise _error(name, key, value, "compatible with the bounds "
                             f"[{self.lb:g}, {self.ub:g}]", "Set whole-number bounds first.")
            return value
        if key == "step_direction":
            if isinstance(value, bool) or value not in (-1, 0, 1):
                raise _error(name, key, value, "-1 (decrease only), 0 (both) or +1 "
                             "(increase only)")
            if value != 0 and not self.actionable:
                raise _error(name, key, value, "0 for an immutable feature",
                             f"Set actions[{name!r}].actionable = True first, or leave the "
                             "direction at 0.")
            return int(value)
        # step_lb / step_ub
        if value is None:
            return None
        sign, must = (-1, "a number <= 0 (the largest decrease) or None") if key == "step_lb" \
            else (1, "a number >= 0 (the largest increase) or None")
        if not _is_number(value) or float(value) * sign < 0:
            raise _error(name, key, value, must, "step_lb <= 0 <= step_ub always (reachml's "
                         "README example has them swapped).")
        if not self.actionable:
            raise _error(name, key, value, "None for an immutable feature",
                         f"Set actions[{name!r}].actionable = True first.")
        return float(value)

    @property
    def discrete(self) -> bool:
        """bool and int features take whole values."""
        return self.variable_type != "float"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **{k: getattr(self, k) for k in self._FIELDS}}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ActionElement) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        parts = [f"{k}={getattr(self, k)!r}" for k in self._FIELDS]
        return f"ActionElement({self.name!r}, {', '.join(parts)})"


class ActionSet:
    """Per-feature actionability and cross-feature constraints for recourse and responsiveness.

    Build one from data with `from_dataframe` (types and bounds inferred), adjust its elements
    (``actions["age"].actionable = False``), add constraints (`OneHot`, `Thermometer`,
    `DirectionalLinkage`, `IfThen`), save it as JSON. The features tied by constraints form
    partitions (`partitions`); each partition moves as a unit in `responsiveness`.

    Parameters
    ----------
    elements : sequence of ActionElement
        One per feature, in the column order of the data.
    """

    def __init__(self, elements: Sequence[ActionElement]) -> None:
        names = [e.name for e in elements]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            msg = f"An ActionSet has one element per feature; {twice[0]!r} appears twice."
            raise InvalidParameterError(msg, owner="ActionSet", parameter="elements",
                                        value=twice[0])
        self._elements = list(elements)
        self._index = {n: i for i, n in enumerate(names)}
        self._constraints: list[ActionConstraint] = []

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_dataframe(cls, X: Any, *, names: Sequence[str] | None = None) -> ActionSet:
        """Infer the elements from data: every feature actionable, both directions, unbounded
        steps; bounds are the data's min and max; ``{0, 1}`` values make a bool, whole values an
        int, anything else a float.

        Parameters
        ----------
        X : pandas.DataFrame or 2-D array of numbers
        names : sequence of str, optional
            Feature names for an array (a DataFrame's columns are used otherwise).
        """
        values, cols = _matrix(X, names)
        elements = []
        for j, col in enumerate(cols):
            v = values[:, j]
            uniq = np.unique(v)
            if np.isin(uniq, (0.0, 1.0)).all():
                kind: VariableType = "bool"
            elif np.all(np.mod(v, 1) == 0):
                kind = "int"
            else:
                kind = "float"
            lo, hi = (0.0, 1.0) if kind == "bool" else (float(v.min()), float(v.max()))
            elements.append(ActionElement(col, lb=lo, ub=hi, variable_type=kind))
        return cls(elements)

    # -- container ---------------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self._elements)

    def __len__(self) -> int:
        return len(self._elements)

    def __iter__(self) -> Iterator[ActionElement]:
        return iter(self._elements)

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def __getitem__(self, key: str | int) -> ActionElement:
        if isinstance(key, numbers.Integral) and not isinstance(key, bool):
            if not -len(self) <= int(key) < len(self):
                msg = f"Feature position {key} is out of range for an ActionSet of {len(self)}."
                raise InvalidParameterError(msg, owner="ActionSet", parameter="key", value=key)
            return self._elements[int(key)]
        if key not in self._index:
            msg = (f"The action set has no feature {key!r}. Its features: "
                   f"{', '.join(self.names[:12])}{', ...' if len(self) > 12 else ''}.")
            raise UnknownNameError(msg, kind="feature", name=str(key), available=self.names)
        return self._elements[self._index[key]]

    def index(self, name: str) -> int:
        """Position of feature ``name``."""
        self[name]  # the typed error for an unknown name
        return self._index[name]

    @property
    def constraints(self) -> tuple[ActionConstraint, ...]:
        return tuple(self._constraints)

    def add_constraint(self, constraint: ActionConstraint) -> ActionConstraint:
        """Add a cross-feature constraint after checking it against the elements and the other
        constraints (InvalidParameterError for a contradiction). Returns the constraint."""
        if not isinstance(constraint, ActionConstraint):
            msg = (f"add_constraint takes an xai.OneHot, Thermometer, DirectionalLinkage or "
                   f"IfThen. Got {type(constraint).__name__} instead.")
            raise InvalidParameterError(msg, owner="ActionSet.add_constraint",
                                        parameter="constraint", value=constraint)
        for name in constraint.names:
            self[name]
        self._check_constraint(constraint)
        self._constraints.append(constraint)
        return constraint

    def _check_constraint(self, c: ActionConstraint) -> None:
        owner, what = "ActionSet.add_constraint", c.describe()

        def refuse(reason: str) -> None:
            msg = f"Cannot add {what}: {reason}"
            raise InvalidParameterError(msg, owner=owner, parameter="constraint", value=what)

        if isinstance(c, OneHot | Thermometer):
            not_bool = [n for n in c.names if self[n].variable_type != "bool"]
            if not_bool:
                refuse(f"its features must be bool (0/1) columns, and {not_bool[0]!r} is "
                       f"{self[not_bool[0]].variable_type}.")
            mutability = {self[n].actionable for n in c.names}
            if len(mutability) > 1:
                refuse("some of its features are actionable and some are not; a group moves as "
                       "a unit, so set .actionable the same for all of them.")
            for other in self._constraints:
                shared = set(c.names) & set(other.names)
                if isinstance(other, OneHot | Thermometer) and shared:
                    refuse(f"{sorted(shared)[0]!r} is already in {other.describe()}; encoding "
                           "groups may not overlap.")
        if isinstance(c, DirectionalLinkage):
            if not self[c.source].actionable:
                refuse(f"its source {c.source!r} is immutable, so nothing can trigger the link "
                       f"(set actions[{c.source!r}].actionable = True, or drop the linkage).")
            for target, ratio in zip(c.targets, c.ratios, strict=True):
                el = self[target]
                if el.discrete and self[c.source].discrete and not float(ratio).is_integer():
                    refuse(f"a unit change of {c.source!r} moves the {el.variable_type} feature "
                           f"{target!r} by {ratio:g}, which is not a whole number; fix scales.")
                for other in self._constraints:
                    if isinstance(other, DirectionalLinkage) and other.source == target and \
                            c.source in other.targets:
                        refuse(f"{other.describe()} already links {target!r} to {c.source!r}; "
                               "circular linkages are not allowed.")
        if isinstance(c, IfThen):
            for cond in (c.if_, c.then):
                el = self[cond[0]]
                if not el.lb <= cond[2] <= el.ub:
                    refuse(f"its value {cond[2]:g} for {cond[0]!r} is outside the feature's "
                           f"bounds [{el.lb:g}, {el.ub:g}].")

    # -- structure ---------------------------------------------------------------------------
    def partitions(self) -> list[tuple[int, ...]]:
        """Features that move together: the connected groups of the constraints (each feature
        not in any constraint is a group of one), as sorted positions, in feature order."""
        parent = list(range(len(self)))

        def root(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for c in self._constraints:
            first = root(self._index[c.names[0]])
            for n in c.names[1:]:
                parent[root(self._index[n])] = first
        groups: dict[int, list[int]] = {}
        for i in range(len(self)):
            groups.setdefault(root(i), []).append(i)
        return sorted((tuple(g) for g in groups.values()), key=lambda g: g[0])

    def partition_of(self, name: str) -> tuple[str, ...]:
        """The features that move with ``name`` (itself included)."""
        i = self.index(name)
        return next(tuple(self.names[k] for k in p) for p in self.partitions() if i in p)

    # -- data checks -------------------------------------------------------------------------
    def check_data(self, X: np.ndarray, *, parameter: str = "inputs") -> np.ndarray:
        """Check the rows of ``X`` (columns in this set's order) and return them snapped to the
        set: discrete values rounded, floats clipped into their bounds (removing float32
        rounding, within a 1e-6 relative tolerance). InvalidInputError when a row breaks a
        bound, a type or a constraint: responsiveness is defined from feasible points only."""
        X = np.array(X, dtype=np.float64)
        for j, el in enumerate(self._elements):
            col = X[:, j]
            slack_lo, slack_hi = 1e-6 * max(1.0, abs(el.lb)), 1e-6 * max(1.0, abs(el.ub))
            bad = np.flatnonzero((col < el.lb - slack_lo) | (col > el.ub + slack_hi))
            if bad.size:
                i = int(bad[0])
                msg = (f"Row {i} of {parameter!r} has {el.name} = {col[i]:g}, outside the action "
                       f"set's bounds [{el.lb:g}, {el.ub:g}] ({bad.size} row(s) in all). Widen "
                       f"them (actions[{el.name!r}].lb/.ub) or build the action set from data "
                       "that covers these rows.")
                raise InvalidInputError(msg, parameter=parameter, value=float(col[i]))
            if el.discrete:
                bad = np.flatnonzero(np.abs(col - np.round(col)) > 1e-6 * np.maximum(1, abs(col)))
                if bad.size:
                    i = int(bad[0])
                    msg = (f"Row {i} of {parameter!r} has {el.name} = {col[i]:g}, but the action "
                           f"set says it is {el.variable_type}. Set actions[{el.name!r}]"
                           ".variable_type = 'float' or pass whole values.")
                    raise InvalidInputError(msg, parameter=parameter, value=float(col[i]))
                col = np.round(col)
            X[:, j] = np.clip(col, el.lb, el.ub)
        for c in self._constraints:
            idx = [self._index[n] for n in c.names]
            sub = X[:, idx]
            bad = np.flatnonzero(~c.holds(sub, sub))  # a linkage holds on any one point
            if bad.size:
                i = int(bad[0])
                shown = ", ".join(f"{n}={v:g}" for n, v in zip(c.names, sub[i], strict=True))
                msg = (f"Row {i} of {parameter!r} breaks {c.describe()} ({shown}; {bad.size} "
                       "row(s) in all). Fix the encoding of these rows or the constraint.")
                raise InvalidInputError(msg, parameter=parameter, value=i)
        return X

    def align(self, columns: Sequence[str] | None, n_features: int, *,
              parameter: str = "inputs") -> np.ndarray:
        """Positions of this set's features among the data's ``columns`` (matched by name), or
        the identity for unnamed columns of the same count; InvalidInputError otherwise."""
        if columns is not None:
            missing = [n for n in self.names if n not in columns]
            extra = [c for c in columns if c not in self._index]
            if missing or extra:
                parts = []
                if missing:
                    parts.append(f"the action set's {missing[:5]} are not columns of the data")
                if extra:
                    parts.append(f"the data's columns {extra[:5]} are not in the action set")
                msg = (f"The action set and {parameter!r} must name the same features: "
                       f"{'; '.join(parts)}. Build the action set from the model's training "
                       "frame (xai.ActionSet.from_dataframe(X_train)).")
                raise InvalidInputError(msg, parameter=parameter, value=missing or extra)
            where = {c: i for i, c in enumerate(columns)}
            return np.array([where[n] for n in self.names], dtype=np.int64)
        if n_features != len(self):
            msg = (f"The action set has {len(self)} features but {parameter!r} has {n_features} "
                   "columns. Pass a DataFrame (matched by column name) or an array with one "
                   "column per action-set feature, in its order.")
            raise InvalidInputError(msg, parameter=parameter, value=n_features)
        return np.arange(len(self), dtype=np.int64)

    # -- views and files ---------------------------------------------------------------------
    def to_pandas(self) -> Any:
        """One row per feature: type, actionable, bounds, direction, step bounds, and the
        constraints that tie it to others."""
        import pandas as pd

        tied: dict[str, list[str]] = {n: [] for n in self.names}
        for c in self._constraints:
            for n in c.names:
                tied[n].append(c.describe())
        rows = [{**{k: v for k, v in e.to_dict().items()},
                 "constraints": "; ".join(tied[e.name])} for e in self._elements]
        frame = pd.DataFrame(rows).set_index("name")
        return frame[["variable_type", "actionable", "lb", "ub", "step_direction", "step_lb",
                      "step_ub", "constraints"]]

    def __repr__(self) -> str:
        n_act = sum(e.actionable for e in self._elements)
        n_con = len(self._constraints)
        return (f"ActionSet({len(self)} features, {n_act} actionable, "
                f"{n_con} constraint{'s' if n_con != 1 else ''})")

    def __str__(self) -> str:
        """The repr line, then the `to_pandas` table (``print(actions)``)."""
        import pandas as pd

        with pd.option_context("display.width", 140, "display.max_rows", 80):
            return f"{self!r}\n{self.to_pandas().to_string()}"

    def _repr_html_(self) -> str:
        return str(self.to_pandas().to_html())

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "format_version": FORMAT_VERSION,
                "elements": [e.to_dict() for e in self._elements],
                "constraints": [c.to_dict() for c in self._constraints]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ActionSet:
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            msg = (f"This is not an action set file (expected format {FORMAT!r}). Save one "
                   "with ActionSet.save.")
            raise InvalidInputError(msg, parameter="path", value=None)
        if int(data.get("format_version", 0)) > FORMAT_VERSION:
            msg = (f"The action set file has format version {data['format_version']}; this "
                   f"posthoc-xai reads up to {FORMAT_VERSION}. Upgrade posthoc-xai.")
            raise InvalidInputError(msg, parameter="path", value=data["format_version"])
        try:
            elements = []
            for e in data["elements"]:
                args = dict(e)
                name = args.pop("name")
                elements.append(ActionElement(name, **args))
            out = cls(elements)
            for c in data["constraints"]:
                out.add_constraint(constraint_from_dict(c))
        except (KeyError, TypeError, AttributeError) as err:  # a field missing or misspelled
            msg = (f"The action set file is malformed ({type(err).__name__}: {err}). Save one "
                   "with ActionSet.save.")
            raise InvalidInputError(msg, parameter="path", value=None) from err
        return out

    def save(self, path: str | Path) -> None:
        """Write the action set as JSON (elements and constraints)."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> ActionSet:
        """Read an action set written by `save`."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            msg = f"Cannot read the action set file {str(path)!r}: {err}."
            raise InvalidInputError(msg, parameter="path", value=str(path)) from err
        return cls.from_dict(data)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ActionSet) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]  # mutable


def _matrix(X: Any, names: Sequence[str] | None) -> tuple[np.ndarray, list[str]]:
    """Numeric float64 values and column names of a DataFrame or array; typed errors otherwise."""
    if hasattr(X, "columns") and hasattr(X, "dtypes"):
        from pandas.api.types import is_bool_dtype, is_numeric_dtype

        non_numeric = [str(c) for c, t in X.dtypes.items()
                       if not (is_numeric_dtype(t) or is_bool_dtype(t))]
        if non_numeric:
            msg = (f"ActionSet.from_dataframe needs numeric columns; {non_numeric[:5]} are not. "
                   "Encode them first (one-hot or ordinal codes), as the model sees them.")
            raise InvalidInputError(msg, parameter="X", value=non_numeric)
        cols = [str(c) for c in X.columns]
        values = X.to_numpy(dtype=np.float64)
    else:
        try:
            values = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError) as err:
            msg = f"ActionSet.from_dataframe needs a numeric DataFrame or 2-D array ({err})."
            raise InvalidInputError(msg, parameter="X", value=type(X).__name__) from err
        if values.ndim != 2:
            msg = (f"ActionSet.from_dataframe needs a 2-D table (rows x features). Got shape "
                   f"{values.shape}.")
            raise InvalidInputError(msg, parameter="X", value=values.shape)
        cols = [str(n) for n in names] if names is not None else \
            [f"x{j}" for j in range(values.shape[1])]
    if names is not None and len(names) != values.shape[1]:
        msg = f"'names' has {len(names)} entries for {values.shape[1]} columns."
        raise InvalidInputError(msg, parameter="names", value=len(names))
    if names is not None:
        cols = [str(n) for n in names]
    if values.shape[0] == 0 or not np.isfinite(values).all():
        why = "no rows" if values.shape[0] == 0 else "NaN or inf values"
        msg = (f"ActionSet.from_dataframe infers bounds from the data, and X has {why}. Pass "
               "the complete training data.")
        raise InvalidInputError(msg, parameter="X", value=values.shape)
    return values, cols

