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

if TYPE_CHECKING:
    from ..explanation import Explanation

__all__ = ["explanation_html", "report_html", "table_html"]

_POS_RGB = (215, 48, 39)  # red: the feature raises the explained output
_NEG_RGB = (33, 102, 172)  # blue: the feature lowers it

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


def explanation_html(exp: Explanation, *, max_examples: int = 20, max_display: int = 10) -> str:
    """A self-contained HTML view of ``exp`` (inline CSS, no JavaScript).

    Text explanations show each example as a row of words whose background is red (positive) or
    blue (negative), with opacity ``|value| / max |value|`` of that example; hovering a word shows
    its value. Other explanations show a small bar chart of the top features of each example.

    Parameters
    ----------
    exp : Explanation
        The explanation to show.
    max_examples : int, default=20
        Examples shown; the rest are counted in a final line.
    max_display : int, default=10
        Features per bar chart (non-text explanations).

    Returns
    -------
    str
        An HTML fragment (a ``<div>`` with its own ``<style>``) in which every text is escaped.
    """
    owner = "explanation_html"
    check_param(owner, "max_examples", max_examples, [Interval(int, 1, None, closed="left")])
    check_param(owner, "max_display", max_display, [Interval(int, 1, None, closed="left")])
    body = [_header(exp)]
    for i in range(min(len(exp), max_examples)):
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
