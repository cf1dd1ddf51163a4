"""Horizontal bar plot of one example's attributions, plus helpers shared by the plot modules."""

from __future__ import annotations

import dataclasses
import importlib
from typing import TYPE_CHECKING, Any

import numpy as np

from .._validation import Interval, check_param
from ..exceptions import InvalidParameterError, MissingDependencyError

if TYPE_CHECKING:
    from types import ModuleType

    from matplotlib.axes import Axes

    from ..explanation import Explanation

__all__ = ["NEGATIVE_COLOR", "POSITIVE_COLOR", "bar"]

#: Colour of positive attributions (they raise the explained output).
POSITIVE_COLOR = "#d7301f"
#: Colour of negative attributions (they lower the explained output).
NEGATIVE_COLOR = "#2166ac"

_PURPOSE = {"plot": "plotting"}


def _require(module: str, *, extra: str) -> ModuleType:
    """Import ``module`` or raise MissingDependencyError naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        purpose = _PURPOSE.get(extra, f"this feature ({extra})")
        msg = (f"{purpose} requires {module}. Install it with: "
               f'pip install "posthoc-xai[{extra}]".')
        raise MissingDependencyError(msg) from err


def _pyplot() -> Any:
    """``matplotlib.pyplot``, or MissingDependencyError when matplotlib is not installed."""
    _require("matplotlib", extra="plot")
    return _require("matplotlib.pyplot", extra="plot")


@dataclasses.dataclass(frozen=True)
class Row:
    """One (example, output) of an Explanation, padding removed."""

    names: tuple[str, ...]
    values: np.ndarray  # (n_real_features,), float64
    label: str
    score: float | None
    method: str
    probability: float | None = None

    def title(self) -> str:
        """'<label> (prediction 0.93), <method>'."""
        score = "" if self.score is None else f" (prediction {self.score:.3g})"
        return f"{self.label}{score}, {self.method}"


def check_row(exp: Explanation, index: int, output: int | str, owner: str) -> tuple[int, int]:
    """Validate ``index`` and ``output`` against ``exp``; return them as column positions."""
    check_param(owner, "index", index, [Interval(int, 0, len(exp) - 1, closed="both")])
    if isinstance(output, str):
        names = exp.target.names[index]
        if output not in names:
            valid = ", ".join(repr(n) for n in names)
            msg = (f"The 'output' parameter of {owner} must be an explained output of example "
                   f"{index} ({valid}) or an int in the range [0, {exp.n_outputs - 1}]. "
                   f"Got {output!r} instead.")
            raise InvalidParameterError(msg, owner=owner, parameter="output", value=output)
        return index, names.index(output)
    check_param(owner, "output", output,
                [Interval(int, 0, exp.n_outputs - 1, closed="both")])
    return index, int(output)


def get_row(exp: Explanation, index: int, output: int | str, owner: str) -> Row:
    """The real (non-padding) features of example ``index`` for output ``output``."""
    index, col = check_row(exp, index, output, owner)
    valid = exp.valid(index)
    values = exp.values[index, col][valid].double().numpy()
    names = tuple(exp.names[index])[: len(values)]
    score = None if exp.predictions is None else float(exp.predictions[index, col])
    probs = exp.probabilities()
    prob = None if probs is None else float(probs[index, col])
    return Row(names, values, exp.target.names[index][col], score, exp.method, prob)


def bar(
    exp: Explanation,
    *,
    index: int = 0,
    output: int | str = 0,
    max_display: int = 10,
    ax: Axes | None = None,
) -> Axes:
    """Horizontal bars of one example's attributions, largest ``|value|`` at the top.

    Parameters
    ----------
    exp : Explanation
        The explanation to plot.
    index : int, default=0
        Example (row of ``exp``) to plot.
    output : int or str, default=0
        Explained output column, by position or by output name.
    max_display : int, default=10
        Number of features shown: the ``max_display`` largest by absolute value.
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; a new figure is created when None.

    Returns
    -------
    matplotlib.axes.Axes
        The Axes drawn into. Positive bars are red, negative bars blue; padding is never drawn.

    Raises
    ------
    InvalidParameterError
        If ``index``, ``output`` or ``max_display`` is out of range.
    MissingDependencyError
        If matplotlib is not installed.
    """
    check_param("plot.bar", "max_display", max_display, [Interval(int, 1, None, closed="left")])
    row = get_row(exp, index, output, "plot.bar")
    plt = _pyplot()
    order = np.argsort(-np.abs(row.values), kind="stable")[:max_display]
    vals = row.values[order]
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 1.2 + 0.38 * len(order)), layout="constrained")
    colors = [POSITIVE_COLOR if v > 0 else NEGATIVE_COLOR for v in vals]
    bars = ax.barh(np.arange(len(order)), vals, color=colors, height=0.7)
    ax.set_yticks(np.arange(len(order)), [row.names[j] for j in order])
    ax.invert_yaxis()
    ax.axvline(0.0, color="#777777", linewidth=0.8)
    ax.bar_label(bars, labels=[f"{v:+.3g}" for v in vals], padding=3, fontsize=8)
    ax.margins(x=0.2)
    shown = "" if len(order) == len(row.values) else \
        f" (top {len(order)} of {len(row.values)} features)"
    ax.set_xlabel(f"attribution{shown}")
    ax.set_title(row.title())
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return ax
