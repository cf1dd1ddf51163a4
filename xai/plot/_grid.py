"""Outputs × features grid of one example: generation explanations (generated token or answer ×
context token), shared by the HTML view and the matplotlib heatmap.

Rows are ``exp.target.names[index]`` (the explained outputs: target tokens of context length
probing, generated tokens or answers of Shapley for generation) and columns are
``exp.feature_names[index]`` (padding removed). Large grids are downsampled into blocks of
consecutive rows and columns: a cell sums the values of its columns (the total attribution of a
run of context features, as words sum their tokens) and averages its rows.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

import numpy as np

from ._bar import check_row

if TYPE_CHECKING:
    from ..explanation import Explanation

__all__ = ["Grid", "output_grid", "show_token"]

_ELLIPSIS = "\u2026"


@dataclasses.dataclass(frozen=True)
class Grid:
    """The cells of one example's outputs × features grid, possibly downsampled into blocks."""

    values: np.ndarray  # (n_rows, n_cols) shown cells, float64
    row_names: tuple[str, ...]  # short label of each shown row
    col_names: tuple[str, ...]
    row_spans: tuple[tuple[int, int], ...]  # [start, stop) of the outputs in each shown row
    col_spans: tuple[tuple[int, int], ...]  # [start, stop) of the features in each shown column
    row_full: tuple[str, ...]  # every output name (not downsampled)
    col_full: tuple[str, ...]  # every feature name
    scores: tuple[float, ...] | None  # prediction of every output, when known

    @property
    def shape(self) -> tuple[int, int]:
        """(n_outputs, n_features) before downsampling."""
        return len(self.row_full), len(self.col_full)

    @property
    def downsampled(self) -> bool:
        return self.values.shape != self.shape

    @property
    def vmax(self) -> float:
        """Largest ``|value|`` of the shown cells (0 for an all-zero grid)."""
        return float(np.abs(self.values).max()) if self.values.size else 0.0

    def describe_row(self, r: int) -> str:
        return _describe(self.row_full, self.row_spans[r])

    def describe_col(self, c: int) -> str:
        return _describe(self.col_full, self.col_spans[c])

    def note(self) -> str:
        """One sentence on the downsampling ('' when every cell is shown)."""
        if not self.downsampled:
            return ""
        (n_o, n_f), (r, c) = self.shape, self.values.shape
        row_step = self.row_spans[0][1] - self.row_spans[0][0]
        col_step = self.col_spans[0][1] - self.col_spans[0][0]
        return (f"Downsampled from {n_o} × {n_f} to {r} × {c} cells: a cell sums the values of "
                f"up to {col_step} consecutive features and averages up to {row_step} "
                "consecutive outputs.")


def show_token(name: str) -> str:
    """A token as displayed in a label: newlines and tabs made visible, '␣' for a blank token."""
    shown = name.replace("\r", "").replace("\n", "\u21b5").replace("\t", "\u21e5")
    return shown if shown.strip() else "\u2423" * max(len(shown), 1)


def _describe(names: tuple[str, ...], span: tuple[int, int]) -> str:
    start, stop = span
    if stop - start == 1:
        return f"{names[start]!r} (#{start})"
    return f"{names[start]!r}{_ELLIPSIS}{names[stop - 1]!r} (#{start}\u2013{stop - 1})"


def _blocks(n: int, cap: int | None) -> list[tuple[int, int]]:
    step = 1 if cap is None or n <= cap else math.ceil(n / cap)
    return [(s, min(s + step, n)) for s in range(0, n, step)]


def _label(names: tuple[str, ...], span: tuple[int, int]) -> str:
    start, stop = span
    first = show_token(names[start])
    return first if stop - start == 1 else first + _ELLIPSIS


def output_grid(exp: Explanation, index: int, *, owner: str, max_rows: int | None = None,
                max_cols: int | None = None) -> Grid:
    """The grid of example ``index``: ``values[index]`` (outputs × real features).

    Parameters
    ----------
    exp : Explanation
    index : int
        Example to show; validated against ``len(exp)``.
    owner : str
        Name used in error messages.
    max_rows, max_cols : int or None
        Largest number of shown rows / columns; None keeps every one.

    Returns
    -------
    Grid
    """
    check_row(exp, index, 0, owner)
    valid = exp.valid(index)
    full = exp.values[index][:, valid].double().numpy()  # (n_outputs, n_real_features)
    rows_full = tuple(exp.target.names[index])
    cols_full = tuple(exp.feature_names[index])[: full.shape[1]]
    row_spans, col_spans = _blocks(full.shape[0], max_rows), _blocks(full.shape[1], max_cols)
    values = full
    if len(col_spans) < full.shape[1]:
        values = np.add.reduceat(values, [s for s, _ in col_spans], axis=1)
    if len(row_spans) < full.shape[0]:
        sizes = np.array([b - a for a, b in row_spans], dtype=np.float64)
        values = np.add.reduceat(values, [s for s, _ in row_spans], axis=0) / sizes[:, None]
    scores = None if exp.predictions is None else \
        tuple(float(s) for s in exp.predictions[index].tolist())
    return Grid(values=values, row_names=tuple(_label(rows_full, s) for s in row_spans),
                col_names=tuple(_label(cols_full, s) for s in col_spans),
                row_spans=tuple(row_spans), col_spans=tuple(col_spans), row_full=rows_full,
                col_full=cols_full, scores=scores)
