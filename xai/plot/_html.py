"""Self-contained HTML views of an Explanation (inline CSS, no JavaScript, no external resources).

``explanation_html`` is what ``Explanation._repr_html_`` shows in a notebook; ``report_html`` and
``table_html`` build the page of the ``xai demo`` report around such fragments.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .._validation import Interval, check_param, fmt_value
from ._bar import Row, get_row
from ._grid import output_grid

if TYPE_CHECKING:
    from ..explanation import Explanation

__all__ = ["explanation_html", "grid_html", "report_html", "scores_table_html", "table_html"]

_POS_RGB = (215, 48, 39)  # red: the feature raises the explained output
_NEG_RGB = (33, 102, 172)  # blue: the feature lowers it
_GOOD_RGB = (26, 152, 80)  # green: the better scores of a metric column

CSS = """
.xai-exp{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;font-size:13px;
  line-height:1.5;color:#222;background:#fff;padding:6px 8px;border:1px solid #ddd;
  border-radius:6px;max-width:960px}
.xai-head{margin-bottom:6px}.xai-head strong{font-size:14px}
.xai-params,.xai-model{color:#555;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}
.xai-row{margin:5px 0;line-height:2.0}
.xai-label{font-weight:600;margin-right:4px}
.xai-score{color:#555;margin-right:8px;font-family:ui-monospace,Menlo,Consolas,monospace}
.xai-tok{padding:2px 4px;margin:0 1px;border-radius:3px;white-space:pre}
.xai-bars{border-collapse:collapse;margin:2px 0 6px 12px}
.xai-bars td{padding:1px 6px;font-size:12px}
.xai-bars td.xai-name{text-align:right;max-width:220px;overflow:hidden;text-overflow:ellipsis;
  white-space:nowrap}
.xai-bars td.xai-val{font-family:ui-monospace,Menlo,Consolas,monospace;text-align:right}
.xai-bar{width:260px;display:flex}
.xai-bar>div{width:50%;display:flex;height:13px}
.xai-bar>div.xai-neg{justify-content:flex-end;border-right:1px solid #888}
.xai-bar i{display:block;height:100%}
.xai-more{color:#777;font-style:italic}
.xai-table{border-collapse:collapse;font-size:13px;margin:6px 0}
.xai-table th,.xai-table td{border:1px solid #ddd;padding:3px 8px;text-align:left}
.xai-table th{background:#f4f4f4}
.xai-table td.xai-num{text-align:right;font-family:ui-monospace,Menlo,Consolas,monospace}
.xai-table td.xai-nan{color:#999}
.xai-table tr.xai-mean td,.xai-table tr.xai-mean th{font-weight:700;border-top:2px solid #999}
.xai-table caption{caption-side:bottom;text-align:left;color:#555;font-size:12px;padding-top:3px}
.xai-note{color:#555;font-size:12px;margin:2px 0}
.xai-gwrap{overflow:auto;max-height:640px;max-width:100%;margin:2px 0 8px}
.xai-exp table.xai-grid{border-collapse:separate;border-spacing:1px;border:none;font-size:11px;
  line-height:1.2;table-layout:auto;margin:0}
.xai-exp table.xai-grid tr,.xai-exp table.xai-scores tr{background:#fff}
.xai-exp table.xai-grid th{font-weight:400;white-space:pre;background:#fff;padding:0;
  border:none;text-align:right;vertical-align:bottom}
.xai-exp table.xai-grid thead th{position:sticky;top:0;z-index:1}
.xai-exp table.xai-grid th.xai-corner{left:0;z-index:2;color:#777;padding-right:4px}
.xai-exp table.xai-grid th.xai-out{position:sticky;left:0;max-width:180px;overflow:hidden;
  text-overflow:ellipsis;padding-right:4px;vertical-align:middle}
.xai-exp table.xai-grid th.xai-ctx{text-align:center}
.xai-grid th.xai-ctx>span{writing-mode:vertical-rl;transform:rotate(180deg);display:inline-block;
  max-height:110px;overflow:hidden;text-overflow:ellipsis}
.xai-exp table.xai-grid td.xai-cell{width:14px;min-width:14px;height:14px;padding:0;border:none;
  outline:1px solid #eee}
"""

_PAGE_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;max-width:1000px;
  padding:0 16px;color:#222}
h1{font-size:22px}h2{font-size:17px;border-bottom:1px solid #ddd;padding-bottom:3px;margin-top:28px}
"""


def _e(obj: Any) -> str:
    return html.escape(str(obj), quote=True)


def _fmt(value: float) -> str:
    """A number as written in titles and cells: 6 significant digits."""
    return f"{value:.6g}"


def _background(value: float, scale: float) -> str:
    """CSS background for ``value``: red when positive, blue when negative, alpha = |value|/scale."""
    if value == 0 or scale <= 0 or math.isnan(value):
        return "transparent"
    r, g, b = _POS_RGB if value > 0 else _NEG_RGB
    alpha = min(abs(value) / scale, 1.0)
    return f"rgba({r},{g},{b},{alpha:.3f})"


def _header(exp: Explanation) -> str:
    params = ", ".join(f"{k}={fmt_value(v)}" for k, v in exp.params.items())
    model = exp.model_info.get("model", "")
    parts = [f"<strong>{_e(exp.method)}</strong>"]
    if params:
        parts.append(f'<span class="xai-params">({_e(params)})</span>')
    if model:
        parts.append(f'<span class="xai-model">model: {_e(model)}</span>')
    shape = f"{len(exp)} examples x {exp.n_outputs} outputs x {exp.n_features} features"
    parts.append(f'<span class="xai-model">{_e(shape)}</span>')
    return f'<div class="xai-head">{" ".join(parts)}</div>'


def _prefix(row: Row) -> str:
    score = "" if row.score is None else \
        f'<span class="xai-score">score {_e(f"{row.score:.4g}")}</span>'
    if row.probability is not None:
        score += f'<span class="xai-score">p={_e(f"{row.probability:.3f}")}</span>'
    return f'<span class="xai-label">{_e(row.label)}</span>{score}'


def _text_row(row: Row) -> str:
    scale = float(np.abs(row.values).max()) if len(row.values) else 0.0
    toks = []
    for word, value in zip(row.names, row.values, strict=True):
        bg = _background(float(value), scale)
        dark = scale > 0 and abs(float(value)) / scale > 0.65
        color = ";color:#fff" if dark else ""
        toks.append(f'<span class="xai-tok" title="{_fmt(float(value))}" '
                    f'style="background:{bg}{color}">{_e(word)}</span>')
    return f'<div class="xai-row">{_prefix(row)}{" ".join(toks)}</div>'


def _bar_row(row: Row, max_display: int) -> str:
    order = np.argsort(-np.abs(row.values), kind="stable")[:max_display]
    scale = float(np.abs(row.values[order]).max()) if len(order) else 0.0
    lines = []
    for j in order:
        value = float(row.values[j])
        width = 0.0 if scale == 0 else 100.0 * abs(value) / scale
        rgb = _POS_RGB if value > 0 else _NEG_RGB
        bar = f'<i style="width:{width:.1f}%;background:rgb{rgb}"></i>'
        neg, pos = ("", bar) if value > 0 else (bar, "")
        lines.append(
            f'<tr class="xai-feat" title="{_fmt(value)}"><td class="xai-name">{_e(row.names[j])}'
            f'</td><td><div class="xai-bar"><div class="xai-neg">{neg}</div><div>{pos}</div>'
            f'</div></td><td class="xai-val">{_e(f"{value:+.4g}")}</td></tr>')
    more = len(row.values) - len(order)
    if more > 0:
        lines.append(f'<tr><td class="xai-more" colspan="3">{more} more features</td></tr>')
    return (f'<div class="xai-row">{_prefix(row)}</div>'
            f'<table class="xai-bars">{"".join(lines)}</table>')


def grid_html(exp: Explanation, index: int = 0, *, max_grid: int = 64) -> str:
    """The outputs × features grid of example ``index`` as an HTML table (no JavaScript).

    Rows are the explained outputs (``exp.target.names[index]``: target or generated tokens,
    answers), columns the features (``exp.feature_names[index]``: context tokens or words).
    A cell is red (positive) or blue (negative) with opacity ``|value| / max |value|`` and has a
    tooltip naming its feature, its output and its value. Grids larger than ``max_grid`` on a side
    are downsampled into blocks (see :class:`xai.plot._grid.Grid`), with a note saying so.
    """
    check_param("grid_html", "max_grid", max_grid, [Interval(int, 1, None, closed="left")])
    grid = output_grid(exp, index, owner="grid_html", max_rows=max_grid, max_cols=max_grid)
    scale = grid.vmax
    head = ['<th class="xai-corner">output \u2193 / feature \u2192</th>']
    head += [f'<th class="xai-ctx" title="{_e(grid.describe_col(c))}"><span>{_e(name)}</span></th>'
             for c, name in enumerate(grid.col_names)]
    lines = []
    for r, name in enumerate(grid.row_names):
        title = grid.describe_row(r)
        if grid.scores is not None and not grid.downsampled:
            title += f", prediction {_fmt(grid.scores[grid.row_spans[r][0]])}"
        cells = [f'<th class="xai-out" title="{_e(title)}">{_e(name)}</th>']
        for c in range(len(grid.col_names)):
            value = float(grid.values[r, c])
            tip = f"{grid.describe_col(c)} \u2192 {grid.describe_row(r)}: {_fmt(value)}"
            cells.append(f'<td class="xai-cell" title="{_e(tip)}" '
                         f'style="background:{_background(value, scale)}"></td>')
        lines.append(f"<tr>{''.join(cells)}</tr>")
    n_o, n_f = grid.shape
    notes = [f"{n_o} outputs × {n_f} features; red cells are positive, blue negative, full "
             f"colour at |value| = {_fmt(scale)}.", grid.note()]
    if exp.texts is not None:
        text = exp.texts[index]
        text = text if len(text) <= 400 else text[:399] + "\u2026"
        notes.insert(0, f"text: {text}")
    note = "".join(f'<div class="xai-note">{_e(n)}</div>' for n in notes if n)
    return (f'<div class="xai-row xai-gen">{note}<div class="xai-gwrap"><table class="xai-grid">'
            f"<thead><tr>{''.join(head)}</tr></thead><tbody>{''.join(lines)}</tbody></table>"
            "</div></div>")


def explanation_html(exp: Explanation, *, max_examples: int = 20, max_display: int = 10,
                     max_grid: int = 64) -> str:
    """A self-contained HTML view of ``exp`` (inline CSS, no JavaScript).

    Text explanations show each example as a row of words whose background is red (positive) or
    blue (negative), with opacity ``|value| / max |value|`` of that example; hovering a word shows
    its value. Generation explanations (``modality == "generation"``: context length probing,
    Shapley for generated text) show an outputs × features grid per example (:func:`grid_html`).
    Other explanations show a small bar chart of the top features of each example.

    Parameters
    ----------
    exp : Explanation
        The explanation to show.
    max_examples : int, default=20
        Examples shown; the rest are counted in a final line.
    max_display : int, default=10
        Features per bar chart (tabular explanations).
    max_grid : int, default=64
        Largest number of rows and of columns of a generation grid; larger grids are
        downsampled into blocks, with a note.

    Returns
    -------
    str
        An HTML fragment (a ``<div>`` with its own ``<style>``) in which every text is escaped.
    """
    owner = "explanation_html"
    check_param(owner, "max_examples", max_examples, [Interval(int, 1, None, closed="left")])
    check_param(owner, "max_display", max_display, [Interval(int, 1, None, closed="left")])
    check_param(owner, "max_grid", max_grid, [Interval(int, 1, None, closed="left")])
    body = [_header(exp)]
    for i in range(min(len(exp), max_examples)):
        if exp.modality == "generation":
            body.append(grid_html(exp, i, max_grid=max_grid))
            continue
        for o in range(exp.n_outputs):
            row = get_row(exp, i, o, owner)
            body.append(_text_row(row) if exp.modality == "text" else _bar_row(row, max_display))
    if len(exp) > max_examples:
        body.append(f'<div class="xai-more">{len(exp) - max_examples} more examples not shown'
                    "</div>")
    return f'<div class="xai-exp"><style>{CSS}</style>{"".join(body)}</div>'


def _cell(value: Any) -> str:
    if value is None:
        return "<td></td>"
    if isinstance(value, bool):
        return f"<td>{_e(value)}</td>"
    if isinstance(value, int | float | np.number):
        text = f"{value:.4g}" if isinstance(value, float | np.floating) else str(value)
        return f'<td class="xai-num">{_e(text)}</td>'
    return f"<td>{_e(value)}</td>"


def table_html(rows: Sequence[Mapping[str, Any]]) -> str:
    """A simple HTML table: one column per key (in order of first appearance), one row per dict.

    Floats are written with 4 significant digits, None as an empty cell; all text is escaped.
    """
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_cell(row.get(c)) for c in columns) + "</tr>" for row in rows)
    return f'<table class="xai-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def report_html(sections: Iterable[tuple[str, str]], *, title: str = "posthoc-xai report") -> str:
    """A complete HTML page from ``(heading, html_fragment)`` pairs.

    Headings and the title are escaped; fragments are inserted as they are (build them with
    :func:`explanation_html`, :func:`table_html` or ``html.escape``).
    """
    parts = [f"<section><h2>{_e(heading)}</h2>\n{fragment}\n</section>"
             for heading, fragment in sections]
    return ("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{_e(title)}</title>\n<style>{_PAGE_CSS}{CSS}</style>\n</head>\n<body>\n"
            f"<h1>{_e(title)}</h1>\n" + "\n".join(parts) + "\n</body>\n</html>\n")


def _good_background(goodness: float) -> str:
    """Green with opacity 0.06 (worst of the column) to 0.6 (best)."""
    r, g, b = _GOOD_RGB
    return f"rgba({r},{g},{b},{0.06 + 0.54 * goodness:.3f})"


def _score_cell(value: float, lo: float, hi: float, higher_is_better: bool) -> str:
    if not math.isfinite(value):
        return f'<td class="xai-num xai-nan">{_e(value)}</td>'
    style = ""
    if hi > lo:
        t = (value - lo) / (hi - lo)
        style = f' style="background:{_good_background(t if higher_is_better else 1.0 - t)}"'
    return f'<td class="xai-num" title="{_fmt(value)}"{style}>{_e(f"{value:.4g}")}</td>'


def scores_table_html(scores: Mapping[str, Sequence[float]], higher_is_better: Mapping[str, bool],
                      row_labels: Sequence[str], *, caption: str = "") -> str:
    """Metric scores as a styled table: one row per example, one column per metric, a mean row.

    Within each column the background is green, darker for better scores (direction from
    ``higher_is_better``: the best score of a column has opacity 0.6, the worst 0.06). NaN and
    infinite scores are shown grey and left out of the colour scale and of the mean (the mean of
    the finite scores, as ``MetricResult.mean``). Column headers carry ↑ (higher is better) or
    ↓; all text is escaped.

    Parameters
    ----------
    scores : Mapping[str, Sequence[float]]
        Metric name -> one score per row (shorter columns are padded with NaN).
    higher_is_better : Mapping[str, bool]
        Direction of each metric.
    row_labels : Sequence[str]
        Label of each row, e.g. "example 0".
    caption : str, default=""
        Text under the table.

    Returns
    -------
    str
        An HTML ``<table class="xai-table xai-scores">`` (styled by the CSS of this module).
    """
    cols = {n: np.asarray(list(v), dtype=np.float64) for n, v in scores.items()}
    head = ['<th></th>']
    for name in cols:
        arrow, word = ("\u2191", "higher") if higher_is_better[name] else ("\u2193", "lower")
        head.append(f'<th title="{word} is better">{_e(name)} {arrow}</th>')
    bounds = {}
    for name, col in cols.items():
        finite = col[np.isfinite(col)]
        bounds[name] = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    body = []
    for r, label in enumerate(row_labels):
        cells = [f"<th>{_e(label)}</th>"]
        for name, col in cols.items():
            value = float(col[r]) if r < len(col) else math.nan
            cells.append(_score_cell(value, *bounds[name], higher_is_better[name]))
        body.append(f"<tr>{''.join(cells)}</tr>")
    means = []
    for col in cols.values():
        finite = col[np.isfinite(col)]
        mean = float(finite.mean()) if finite.size else math.nan
        cls = "xai-num" if math.isfinite(mean) else "xai-num xai-nan"
        means.append(f'<td class="{cls}" title="{_fmt(mean)}">{_e(f"{mean:.4g}")}</td>')
    body.append(f'<tr class="xai-mean"><th>mean</th>{"".join(means)}</tr>')
    cap = f"<caption>{_e(caption)}</caption>" if caption else ""
    return (f'<div class="xai-exp"><style>{CSS}</style><table class="xai-table xai-scores">{cap}'
            f"<thead><tr>{''.join(head)}</tr></thead><tbody>{''.join(body)}</tbody></table></div>")
