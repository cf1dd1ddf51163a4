"""Outputs × features heatmap of one example (generation explanations) with matplotlib."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .._validation import Interval, check_param
from ._bar import _pyplot
from ._grid import output_grid, show_token

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from ..explanation import Explanation

__all__ = ["heatmap"]


def _ticks(names: tuple[str, ...], max_ticks: int) -> tuple[np.ndarray, list[str]]:
    """Every position when they fit, else every k-th one (k = ceil(n / max_ticks))."""
    step = max(1, -(-len(names) // max_ticks))
    pos = np.arange(0, len(names), step)
    return pos, [show_token(names[p]) for p in pos]


def heatmap(
    exp: Explanation,
    *,
    index: int = 0,
    cmap: Any = "RdBu_r",
    max_ticks: int = 40,
    ax: Axes | None = None,
) -> Axes:
    """Draw one example's ``values[index]`` as an outputs × features heatmap.

    Rows are the explained outputs (``exp.target.names[index]``: target or generated tokens,
    answers), columns the features (``exp.feature_names[index]``: context tokens or words);
    padding is never drawn. The colour scale is symmetric, ``[-m, m]`` with ``m`` the largest
    ``|value|``, so with ``"RdBu_r"`` positive cells are red and negative ones blue.

    Parameters
    ----------
    exp : Explanation
        The explanation to plot (any modality; meant for generation explanations).
    index : int, default=0
        Example (row of ``exp``) to plot.
    cmap : str or matplotlib.colors.Colormap, default="RdBu_r"
        Diverging colormap.
    max_ticks : int, default=40
        Most tick labels per axis; longer axes label every k-th row or column.
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; a new figure is created when None.

    Returns
    -------
    matplotlib.axes.Axes
        The Axes drawn into, holding one image of shape (n_outputs, n_features) and a colorbar.

    Raises
    ------
    InvalidParameterError
        If ``index``, ``cmap`` or ``max_ticks`` is invalid.
    MissingDependencyError
        If matplotlib is not installed.
    """
    from ._text import _colormap

    check_param("plot.heatmap", "max_ticks", max_ticks, [Interval(int, 1, None, closed="left")])
    grid = output_grid(exp, index, owner="plot.heatmap")
    plt = _pyplot()
    colormap = _colormap(cmap)
    n_o, n_f = grid.shape
    if ax is None:
        width = min(max(4.0, 2.0 + 0.22 * n_f), 14.0)
        height = min(max(3.0, 1.6 + 0.22 * n_o), 14.0)
        _, ax = plt.subplots(figsize=(width, height), layout="constrained")
    vmax = grid.vmax if grid.vmax > 0 else 1.0
    image = ax.imshow(grid.values, cmap=colormap, vmin=-vmax, vmax=vmax, aspect="auto",
                      interpolation="nearest")
    xpos, xlab = _ticks(grid.col_full, max_ticks)
    ypos, ylab = _ticks(grid.row_full, max_ticks)
    ax.set_xticks(xpos, xlab, rotation=90, fontsize=8)
    ax.set_yticks(ypos, ylab, fontsize=8)
    for label in (*ax.get_xticklabels(), *ax.get_yticklabels()):
        label.set_parse_math(False)
    ax.set_xlabel("feature")
    ax.set_ylabel("output")
    ax.set_title(f"{exp.method}: {n_o} outputs × {n_f} features", fontsize=10)
    ax.figure.colorbar(image, ax=ax, label="attribution")
    return ax
