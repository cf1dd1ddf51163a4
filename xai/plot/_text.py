"""Token/word heat strip: each word of one example drawn as a box coloured by its attribution."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..exceptions import InvalidParameterError
from ._bar import _pyplot, get_row

if TYPE_CHECKING:
    from collections.abc import Sequence

    from matplotlib.axes import Axes

    from ..explanation import Explanation

__all__ = ["text"]

_FONT_SIZE = 11.0
_CHAR_WIDTH = 0.6  # advance of a monospace glyph, in em
_FIG_WIDTH = 8.0  # inches, when the function creates the figure


def _layout(words: Sequence[str], chars_per_line: int) -> list[tuple[int, int]]:
    """(line, column) of each word when wrapped at ``chars_per_line`` (one space between words)."""
    places, line, col = [], 0, 0
    for word in words:
        width = max(len(word), 1)
        if col > 0 and col + width > chars_per_line:
            line, col = line + 1, 0
        places.append((line, col))
        col += width + 1
    return places


def _colormap(cmap: Any) -> Any:
    import matplotlib as mpl

    if isinstance(cmap, mpl.colors.Colormap):
        return cmap
    try:
        return mpl.colormaps[cmap]
    except (KeyError, TypeError, ValueError) as err:
        msg = (f"The 'cmap' parameter of plot.text must be a matplotlib colormap or the name of "
               f"one, e.g. 'RdBu_r'. Got {cmap!r} instead.")
        raise InvalidParameterError(msg, owner="plot.text", parameter="cmap", value=cmap) from err


def _chars_per_line(ax: Axes) -> int:
    """How many monospace characters fit across ``ax``."""
    width_pt = ax.bbox.width * 72.0 / ax.figure.dpi
    return max(int(width_pt / (_FONT_SIZE * _CHAR_WIDTH)) - 1, 8)


def text(
    exp: Explanation,
    *,
    index: int = 0,
    output: int | str | None = None,
    cmap: Any = "RdBu_r",
    ax: Axes | None = None,
) -> Axes:
    """Draw one example's words as boxes coloured by their attribution (a heat strip).

    The colour scale is symmetric around 0: ``[-m, m]`` with ``m`` the largest ``|value|`` of
    the example, so with the default ``"RdBu_r"`` positive words are red and negative ones blue.
    A generation explanation (``exp.modality == "generation"``) with ``output=None`` gives the
    outputs × features heatmap of the example instead (:func:`xai.plot.heatmap`).

    Parameters
    ----------
    exp : Explanation
        The explanation to plot (a text explanation; feature names are the words or tokens).
    index : int, default=0
        Example (row of ``exp``) to plot.
    output : int, str or None, default=None
        Explained output column, by position or by output name. None means output 0, or every
        output (the heatmap) for a generation explanation.
    cmap : str or matplotlib.colors.Colormap, default="RdBu_r"
        Diverging colormap.
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; a new figure is created when None.

    Returns
    -------
    matplotlib.axes.Axes
        The Axes drawn into, with one text artist per word (padding is never drawn), or the
        heatmap's Axes.

    Raises
    ------
    InvalidParameterError
        If ``index``, ``output`` or ``cmap`` is invalid.
    MissingDependencyError
        If matplotlib is not installed.
    """
    if output is None and exp.modality == "generation":
        from ._heatmap import heatmap

        return heatmap(exp, index=index, cmap=cmap, ax=ax)
    row = get_row(exp, index, 0 if output is None else output, "plot.text")
    plt = _pyplot()
    colormap = _colormap(cmap)
    fig = None
    if ax is None:
        fig = plt.figure(figsize=(_FIG_WIDTH, 2.0))
        fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02)
        ax = fig.add_subplot()
    cpl = _chars_per_line(ax)
    places = _layout(row.names, cpl)
    n_lines = 1 + max((line for line, _ in places), default=0)
    if fig is not None:  # room for the lines plus a two-line title
        height = 0.75 + 0.4 * n_lines
        fig.set_figheight(height)
        fig.subplots_adjust(top=1.0 - 0.65 / height)
    vmax = float(np.abs(row.values).max()) if len(row.values) else 0.0
    scale = vmax if vmax > 0 else 1.0
    for word, value, (line, col) in zip(row.names, row.values, places, strict=True):
        face = colormap(0.5 + 0.5 * float(value) / scale)
        dark = abs(float(value)) / scale > 0.6
        ax.text(col, line + 0.5, word, family="monospace", fontsize=_FONT_SIZE, ha="left",
                va="center", color="white" if dark else "black", parse_math=False,
                bbox={"boxstyle": "round,pad=0.15", "facecolor": face, "edgecolor": "none"})
    ax.set_xlim(-0.5, cpl)
    ax.set_ylim(n_lines, 0)
    ax.set_axis_off()
    ax.set_title(f"{row.title()}\ncolour scale: -{vmax:.3g} to +{vmax:.3g}", fontsize=10)
    return ax
