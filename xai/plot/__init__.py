"""Plots of an Explanation with matplotlib (the ``[plot]`` extra); every function returns Axes.

``bar`` (top features of one example), ``text`` (token heat strip; a generation explanation
gives the outputs × features heatmap), ``heatmap`` (outputs × features of one example) and
``graph`` (a graph explanation drawn on its graph: edge or node importance, networkx layout).

No function calls ``plt.show()``: display is left to the caller (a notebook shows the figure,
a script calls ``plt.show()`` or ``ax.figure.savefig(...)``). ``explanation_html`` and
``report_html`` in :mod:`xai.plot._html` build self-contained HTML without matplotlib.
"""

from __future__ import annotations

from ._bar import bar
from ._heatmap import heatmap
from ._text import text
from .graph import graph

__all__ = ["bar", "graph", "heatmap", "text"]
