"""xai.plot (bar, text) and the HTML views, asserted on artists and on parsed HTML."""

from __future__ import annotations

import re
import sys
from html.parser import HTMLParser

import models
import numpy as np
import pandas as pd
import pytest
import torch

import xai
from xai import InvalidParameterError, MissingDependencyError
from xai.plot._bar import NEGATIVE_COLOR, POSITIVE_COLOR
from xai.plot._html import explanation_html, report_html, table_html

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402

COLUMNS = ["age", "income", "debt", "score", "tenure", "loans"]
W = torch.tensor([[1.0, -0.5], [-2.0, 1.0], [0.5, 0.25], [3.0, -1.5], [-0.25, 2.0], [0.75, 0.1]])
X = torch.tensor([[1.0, 1.0, 1.0, 1.0, 1.0, 1.0], [2.0, -1.0, 3.0, 0.5, 4.0, -2.0]])
TEXTS = ["the movie was great", "a very boring plot and bad actors !", "fun film <b>"]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def tab_exp():
    """Occlusion with a zero baseline on a linear model: values[i, o, j] = W[j, o] * X[i, j]."""
    model = models.Linear(W, torch.tensor([0.1, -0.2]))
    exp = xai.explain(model, pd.DataFrame(X.numpy(), columns=COLUMNS), method="occlusion",
                      target="all", baseline="zeros")
    torch.testing.assert_close(exp.values, W.T[None] * X[:, None, :], rtol=1e-6, atol=1e-6)
    return exp


@pytest.fixture(scope="module")
def text_exp(tiny_bert):
    exp = xai.explain(tiny_bert, TEXTS, method="occlusion")
    assert exp.names[2] == ("fun", "film", "<b>")
    assert exp.feature_mask.sum(-1).tolist() == [4, 8, 3]
    return exp


def by_abs(values: torch.Tensor) -> list[int]:
    return sorted(range(len(values)), key=lambda j: -abs(float(values[j])))


# -- bar ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("index", "output", "max_display"),
                         [(0, 0, 10), (1, 0, 3), (1, 1, 6), (0, 1, 1)])
def test_bar_draws_top_features_sorted_by_abs(tab_exp, index, output, max_display):
    ax = xai.plot.bar(tab_exp, index=index, output=output, max_display=max_display)
    values = tab_exp.values[index, output]
    order = by_abs(values)[:max_display]
    assert len(ax.patches) == min(max_display, len(COLUMNS))
    assert [t.get_text() for t in ax.get_yticklabels()] == [COLUMNS[j] for j in order]
    widths = [p.get_width() for p in ax.patches]
    np.testing.assert_allclose(widths, values[order].numpy(), rtol=1e-6, atol=0)
    for patch, j in zip(ax.patches, order, strict=True):
        color = POSITIVE_COLOR if values[j] > 0 else NEGATIVE_COLOR
        assert patch.get_facecolor() == to_rgba(color)
    name = f"output {output}"
    pred = float(tab_exp.predictions[index, output])
    assert ax.get_title() == f"{name} (prediction {pred:.3g}), occlusion"
    # the largest |value| is at the top of the plot
    tops = [p.get_y() for p in ax.patches]
    assert tops == sorted(tops)
    assert ax.yaxis_inverted()


def test_bar_uses_the_given_axes_and_output_names(tab_exp):
    fig, ax = plt.subplots()
    out = xai.plot.bar(tab_exp, index=1, output="output 1", ax=ax)
    assert out is ax
    assert out.figure is fig
    np.testing.assert_allclose(sorted(abs(p.get_width()) for p in ax.patches),
                               sorted(abs(tab_exp.values[1, 1]).tolist()), rtol=1e-6)


def test_bar_never_draws_padding(text_exp):
    ax = xai.plot.bar(text_exp, index=2, max_display=10)
    order = by_abs(text_exp.values[2, 0, :3])
    assert len(ax.patches) == 3
    assert [t.get_text() for t in ax.get_yticklabels()] == [text_exp.names[2][j] for j in order]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"index": 2}, "The 'index' parameter of plot.bar must be an int in the range [0, 1]. "
                   "Got 2 instead."),
    ({"index": -1}, "The 'index' parameter of plot.bar must be an int in the range [0, 1]. "
                    "Got -1 instead."),
    ({"output": 2}, "The 'output' parameter of plot.bar must be an int in the range [0, 1]. "
                    "Got 2 instead."),
    ({"output": "yes"}, "The 'output' parameter of plot.bar must be an explained output of "
                        "example 0 ('output 0', 'output 1') or an int in the range [0, 1]. "
                        "Got 'yes' instead."),
    ({"max_display": 0}, "The 'max_display' parameter of plot.bar must be an int in the range "
                         "[1, inf). Got 0 instead."),
])
def test_bar_rejects_bad_parameters(tab_exp, kwargs, message):
    with pytest.raises(InvalidParameterError) as err:
        xai.plot.bar(tab_exp, **kwargs)
    assert str(err.value) == message
    assert err.value.parameter == next(iter(kwargs))


# -- text -----------------------------------------------------------------------------------
@pytest.mark.parametrize("index", [0, 1, 2])
def test_text_draws_one_box_per_word(text_exp, index):
    ax = xai.plot.text(text_exp, index=index)
    words = text_exp.names[index]
    values = text_exp.values[index, 0, : len(words)]
    assert [t.get_text() for t in ax.texts] == list(words)
    cmap = matplotlib.colormaps["RdBu_r"]
    vmax = float(values.abs().max())
    for artist, value in zip(ax.texts, values.tolist(), strict=True):
        face = artist.get_bbox_patch().get_facecolor()
        np.testing.assert_allclose(face, cmap(0.5 + 0.5 * value / vmax), rtol=0, atol=1e-12)
        red, _, blue, _ = face
        assert (red > blue) == (value > 0)
    # the colour scale is symmetric: the largest |value| takes an end of the colormap
    j = int(values.abs().argmax())
    end = 1.0 if values[j] > 0 else 0.0
    assert ax.texts[j].get_bbox_patch().get_facecolor() == cmap(end)
    label, pred = text_exp.target.names[index][0], float(text_exp.predictions[index, 0])
    assert ax.get_title().startswith(f"{label} (prediction {pred:.3g}), occlusion\n")


def test_text_wraps_long_texts_inside_the_axes(tiny_bert):
    long = " ".join(["the movie was great and the plot was boring"] * 3)  # 29 tokens <= 32
    exp = xai.explain(tiny_bert, [long], method="occlusion")
    fig, ax = plt.subplots(figsize=(4, 3))
    out = xai.plot.text(exp, ax=ax)
    assert out is ax
    assert len(ax.texts) == len(exp.names[0]) == 27
    lines = sorted({t.get_position()[1] for t in ax.texts})
    assert len(lines) > 1
    right = ax.get_xlim()[1]
    assert all(t.get_position()[0] + len(t.get_text()) <= right for t in ax.texts)
    assert all(not t.get_parse_math() for t in ax.texts)


def test_text_rejects_unknown_cmap(text_exp):
    with pytest.raises(InvalidParameterError, match="The 'cmap' parameter of plot.text"):
        xai.plot.text(text_exp, cmap="not_a_colormap")


def test_explanation_plot_dispatches_on_modality(tab_exp, text_exp):
    assert len(text_exp.plot(index=1).texts) == 8
    assert len(tab_exp.plot(max_display=4).patches) == 4


def test_missing_matplotlib_raises_typed_error(monkeypatch, tab_exp):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(MissingDependencyError) as err:
        xai.plot.bar(tab_exp)
    assert str(err.value) == ('plotting requires matplotlib. Install it with: '
                              'pip install "posthoc-xai[plot]".')
    assert isinstance(err.value, ImportError)


# -- HTML -----------------------------------------------------------------------------------
class _Collect(HTMLParser):
    """Collects the rows of explanation_html: token spans and feature rows, with their text."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[dict[str, str]]] = []
        self.open: dict[str, str] | None = None
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        a = {k: v or "" for k, v in attrs}
        if a.get("class") in ("xai-row",) and tag == "div":
            self.rows.append([])
        if a.get("class") in ("xai-tok", "xai-feat"):
            self.rows[-1].append({**a, "text": ""})
            self.open = self.rows[-1][-1] if tag == "span" else None
        if a.get("class") == "xai-name":  # the feature name cell of a bar row
            self.open = self.rows[-1][-1]

    def handle_endtag(self, tag: str) -> None:
        if tag in ("span", "td"):
            self.open = None

    def handle_data(self, data: str) -> None:
        if self.open is not None:
            self.open["text"] += data


def parse(html: str) -> _Collect:
    parser = _Collect()
    parser.feed(html)
    return parser


def test_html_text_has_one_span_per_word(text_exp):
    html = explanation_html(text_exp)
    parsed = parse(html)
    assert html.count('class="xai-tok"') == 4 + 8 + 3
    assert len(parsed.rows) == 3
    for i, row in enumerate(parsed.rows):
        words = text_exp.names[i]
        values = text_exp.values[i, 0, : len(words)]
        assert [s["text"] for s in row] == list(words)
        vmax = float(values.abs().max())
        for span, value in zip(row, values.tolist(), strict=True):
            assert float(span["title"]) == pytest.approx(value, rel=1e-5)
            m = re.fullmatch(r"background:rgba\((\d+),(\d+),(\d+),([\d.]+)\)(;color:#fff)?",
                             span["style"])
            assert m is not None, span["style"]
            r, _, b, alpha = int(m[1]), int(m[2]), int(m[3]), float(m[4])
            assert (r > b) == (value > 0)
            assert alpha == pytest.approx(abs(value) / vmax, abs=5e-4)


def test_html_escapes_text_and_shows_label_and_score(text_exp):
    html = explanation_html(text_exp)
    assert "&lt;b&gt;" in html
    assert "<b>" not in html
    assert parse(html).rows[2][2]["text"] == "<b>"
    for i in range(3):
        assert f'<span class="xai-score">score {float(text_exp.predictions[i, 0]):.4g}</span>' \
            in html
    assert html.count('<span class="xai-label">NEGATIVE</span>') == 3
    assert "<strong>occlusion</strong>" in html
    assert "window=1" in html
    assert "<script" not in html
    assert "src=" not in html
    assert "href=" not in html


def test_html_tabular_bars(tab_exp):
    html = explanation_html(tab_exp, max_display=4)
    rows = parse(html).rows
    # one label row then one table per (example, output); feature rows attach to the label row
    assert len(rows) == 2 * 2
    for (i, o), row in zip([(0, 0), (0, 1), (1, 0), (1, 1)], rows, strict=True):
        values = tab_exp.values[i, o]
        order = by_abs(values)[:4]
        assert [r["text"] for r in row] == [COLUMNS[j] for j in order]
        assert [float(r["title"]) for r in row] == pytest.approx(values[order].tolist(), rel=1e-5)
    assert html.count("2 more features") == 4
    assert tab_exp._repr_html_() == explanation_html(tab_exp)


def test_html_limits_examples(text_exp):
    html = explanation_html(text_exp, max_examples=2)
    assert len(parse(html).rows) == 2
    assert "1 more examples not shown" in html
    with pytest.raises(InvalidParameterError, match="'max_examples' parameter"):
        explanation_html(text_exp, max_examples=0)


def test_report_and_table_html():
    table = table_html([{"metric": "comprehensiveness", "value": 0.123456, "n": 3},
                        {"metric": "<x>", "note": None, "value": 1.5}])
    cells = re.findall(r"<t[hd](?: [^>]*)?>(.*?)</t[hd]>", table)
    assert cells == ["metric", "value", "n", "note", "comprehensiveness", "0.1235", "3", "",
                     "&lt;x&gt;", "1.5", "", ""]
    page = report_html([("Scores & <ranks>", table)], title="demo <1>")
    assert page.startswith("<!doctype html>")
    assert "<title>demo &lt;1&gt;</title>" in page
    assert "<h2>Scores &amp; &lt;ranks&gt;</h2>" in page
    assert table in page
    assert "<script" not in page
    assert "src=" not in page
    assert "href=" not in page
