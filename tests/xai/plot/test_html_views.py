"""Notebook views: the generation grid (HTML and matplotlib heatmap), tabular bars, score table."""

from __future__ import annotations

import re

import models
import numpy as np
import pandas as pd
import pytest
import torch
import transformers
from dom import Elements

import xai
from xai import InvalidParameterError
from xai.adapters import HFCausalLMAdapter
from xai.explanation import ResolvedTarget
from xai.plot._html import explanation_html, grid_html, scores_table_html

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

WORDS = ("the", "cat", "sat", "on", "mat", "a", "dog", "ran", "to", "park", "and", "big", "red")
TEXT = "the cat sat on the mat and a dog ran to the big red park"
RGBA = re.compile(r"background:rgba\((\d+),(\d+),(\d+),([\d.]+)\)")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def word_tokenizer():
    from tokenizers import Tokenizer, pre_tokenizers
    from tokenizers.models import WordLevel

    vocab = {t: i for i, t in enumerate(["<pad>", "<bos>", "<eos>", "<unk>", *WORDS])}
    tok = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
        unk_token="<unk>", model_max_length=64)


@pytest.fixture(scope="module")
def clp_exp():
    """Context length probing on a tiny random GPT-2: values (1, 14 targets, 15 context)."""
    config = transformers.GPT2Config(vocab_size=4 + len(WORDS), n_positions=64, n_embd=32,
                                     n_layer=2, n_head=2, bos_token_id=1, eos_token_id=2)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = transformers.GPT2LMHeadModel(config).eval()
    exp = xai.explain(HFCausalLMAdapter(model, word_tokenizer()), TEXT,
                      method="context_length_probing", max_context=4)
    assert exp.modality == "generation"
    assert exp.values.shape == (1, 14, 15)
    assert exp.target.names[0] == tuple(TEXT.split()[1:])
    return exp


def gen_exp(values, rows, cols, mask=None, texts=None):
    """A generation Explanation as Shapley for generated text builds it: outputs = answers."""
    n, o, _ = values.shape
    return xai.Explanation(
        values=values, target=ResolvedTarget(torch.arange(o).repeat(n, 1), rows),
        method="shapley_sampling", params={}, feature_mask=mask,
        features=tuple(xai.NamedFeatures(c, text=None if texts is None else texts[i])
                       for i, c in enumerate(cols)),
        model_info=xai.ModelInfo(modality="generation", output_kind="log_probabilities"))


def colour(style: str) -> tuple[int, int, int, float] | None:
    m = RGBA.search(style)
    return None if m is None else (int(m[1]), int(m[2]), int(m[3]), float(m[4]))


# -- generation grid ------------------------------------------------------------------------
def test_grid_has_one_cell_per_output_and_feature(clp_exp):
    html = explanation_html(clp_exp)
    assert clp_exp._repr_html_() == html
    doc = Elements(html)
    cells = doc.by_class("xai-cell")
    assert len(cells) == 14 * 15
    assert [e["text"] for e in doc.by_class("xai-ctx")] == TEXT.split()
    assert [e["text"] for e in doc.by_class("xai-out")] == TEXT.split()[1:]
    values = clp_exp.values[0]
    vmax = float(values.abs().max())
    for k, cell in enumerate(cells):
        r, c = divmod(k, 15)
        value = float(values[r, c])
        assert cell["title"].startswith(f"{TEXT.split()[c]!r} (#{c}) \u2192 "
                                        f"{TEXT.split()[r + 1]!r} (#{r}): ")
        assert float(cell["title"].rsplit(": ", 1)[1]) == pytest.approx(value, rel=1e-5)
        rgba = colour(cell["style"])
        if value == 0:
            assert cell["style"] == "background:transparent"
        else:
            red, _, blue, alpha = rgba
            assert (red > blue) == (value > 0)
            assert alpha == pytest.approx(abs(value) / vmax, abs=5e-4)
    # context length probing: a context token never explains an earlier target (j >= t is 0)
    assert all(cells[r * 15 + c]["style"] == "background:transparent"
               for r in range(14) for c in range(r + 1, 15))
    pred = float(clp_exp.predictions[0, 0])
    assert doc.by_class("xai-out")[0]["title"] == f"'cat' (#0), prediction {pred:.6g}"
    assert f"text: {TEXT}" in html
    assert "<script" not in html


def test_grid_of_answers_escapes_labels_and_drops_padding():
    values = torch.tensor([[[1.0, -2.0, 0.5, 0.0], [0.0, 3.0, -1.0, 2.0]],
                           [[-1.0, 1.0, 9.0, 9.0], [2.0, 0.5, 9.0, 9.0]]])
    mask = torch.tensor([[True] * 4, [True, True, False, False]])
    exp = gen_exp(values, (("<b>Paris</b>", 'a "q"'), ("x & y", "\n")),
                  (("What", " is", "<i>", "?"), ("Hi", " ")), mask,
                  texts=("What is <i>?", "Hi "))
    html = explanation_html(exp)
    assert "<b>" not in html
    assert "<i>" not in html
    assert "&lt;b&gt;Paris&lt;/b&gt;" in html
    assert "a &quot;q&quot;" in html
    assert "x &amp; y" in html
    doc = Elements(html)
    grids = [Elements(g) for g in html.split('<div class="xai-row xai-gen">')[1:]]
    assert [len(g.by_class("xai-cell")) for g in grids] == [2 * 4, 2 * 2]  # padding dropped
    assert len(doc.by_class("xai-cell")) == 12
    assert [e["text"] for e in grids[0].by_class("xai-out")] == ["<b>Paris</b>", 'a "q"']
    assert [e["text"] for e in grids[0].by_class("xai-ctx")] == ["What", " is", "<i>", "?"]
    # a newline output and a blank feature are shown as visible marks
    assert [e["text"] for e in grids[1].by_class("xai-out")] == ["x & y", "\u21b5"]
    assert [e["text"] for e in grids[1].by_class("xai-ctx")] == ["Hi", "\u2423"]
    # colour scale per example: example 1 has max |value| 2 (the padded 9s are not shown)
    reds = [colour(c["style"]) for c in grids[1].by_class("xai-cell")]
    assert reds[2][3] == pytest.approx(1.0)
    assert reds[0][:3] == (33, 102, 172)  # -1: blue
    assert reds[0][3] == pytest.approx(0.5)


def test_grid_downsamples_large_grids_into_blocks():
    gen = torch.Generator().manual_seed(0)
    values = torch.randn(1, 256, 250, generator=gen)
    exp = gen_exp(values, (tuple(f"t{i}" for i in range(256)),),
                  (tuple(f"c{j}" for j in range(250)),))
    html = grid_html(exp, 0, max_grid=64)
    cells = Elements(html).by_class("xai-cell")
    assert len(cells) == 64 * 63  # rows in blocks of 4, columns in blocks of 4 (last one of 2)
    assert len(html) < 1_000_000
    assert "Downsampled from 256 × 250 to 64 × 63 cells" in html
    v = values[0].double().numpy()
    expected = v[8:12, 4:8].sum(axis=1).mean()  # row block 2, column block 1
    title = cells[2 * 63 + 1]["title"]
    assert title.startswith("'c4'\u2026'c7' (#4\u20137) \u2192 't8'\u2026't11' (#8\u201311): ")
    assert float(title.rsplit(": ", 1)[1]) == pytest.approx(expected, rel=1e-5)
    last = v[252:256, 248:250].sum(axis=1).mean()
    assert float(cells[-1]["title"].rsplit(": ", 1)[1]) == pytest.approx(last, rel=1e-5)
    # every cell shown when the grid fits
    assert len(Elements(grid_html(exp, 0, max_grid=256)).by_class("xai-cell")) == 256 * 250
    with pytest.raises(InvalidParameterError, match="The 'max_grid' parameter of grid_html"):
        grid_html(exp, 0, max_grid=0)


# -- matplotlib heatmap ---------------------------------------------------------------------
def test_generation_plot_is_an_outputs_by_features_heatmap(clp_exp):
    ax = clp_exp.plot()
    assert len(ax.images) == 1
    np.testing.assert_allclose(ax.images[0].get_array(), clp_exp.values[0].numpy(),
                               rtol=0, atol=0)
    vmax = float(clp_exp.values.abs().max())
    assert ax.images[0].get_clim() == pytest.approx((-vmax, vmax))
    assert [t.get_text() for t in ax.get_xticklabels()] == TEXT.split()
    assert [t.get_text() for t in ax.get_yticklabels()] == TEXT.split()[1:]
    assert ax.get_title() == "context_length_probing: 14 outputs × 15 features"
    assert xai.plot.text(clp_exp).images[0].get_array().shape == (14, 15)
    # one explicit output still gives the heat strip of that target
    strip = xai.plot.text(clp_exp, output=3)
    assert [t.get_text() for t in strip.texts] == TEXT.split()
    assert strip.get_title().startswith("the (prediction")


def test_heatmap_thins_ticks_of_long_axes():
    values = torch.linspace(-1, 1, 100 * 120).reshape(1, 100, 120)
    exp = gen_exp(values, (tuple(f"t{i}" for i in range(100)),),
                  (tuple(f"c{j}" for j in range(120)),))
    fig, ax = plt.subplots()
    out = xai.plot.heatmap(exp, max_ticks=30, ax=ax)
    assert out is ax
    assert [t.get_text() for t in ax.get_xticklabels()] == [f"c{j}" for j in range(0, 120, 4)]
    assert [t.get_text() for t in ax.get_yticklabels()] == [f"t{i}" for i in range(0, 100, 4)]
    assert ax.images[0].get_array().shape == (100, 120)


# -- tabular bars ---------------------------------------------------------------------------
def test_tabular_html_bars_have_width_and_side_of_their_value():
    w = torch.tensor([3.0, -1.5, 0.75, -0.3])
    model = models.Linear(w)
    df = pd.DataFrame([[1.0, 1.0, 1.0, 1.0]], columns=["age", "debt", "<inc>", "loans"])
    exp = xai.explain(model, df, method="occlusion", baseline="zeros")
    torch.testing.assert_close(exp.values[0, 0], w, rtol=1e-6, atol=1e-6)
    doc = Elements(explanation_html(exp))
    feats = doc.by_class("xai-feat")
    assert [e["text"].split("+")[0].split("-")[0] for e in feats] == ["age", "debt", "<inc>",
                                                                      "loans"]
    rows = re.findall(r'<tr class="xai-feat".*?</tr>', explanation_html(exp))
    for row, value in zip(rows, [3.0, -1.5, 0.75, -0.3], strict=True):
        neg, pos = re.search(r'<div class="xai-neg">(.*?)</div><div>(.*?)</div>', row).groups()
        bar = pos if value > 0 else neg
        assert (pos if value < 0 else neg) == ""
        width = float(re.search(r"width:([\d.]+)%", bar)[1])
        assert width == pytest.approx(100 * abs(value) / 3.0, abs=0.05)
        assert ("rgb(215, 48, 39)" in bar) == (value > 0)
    assert "&lt;inc&gt;" in explanation_html(exp)


# -- score table ----------------------------------------------------------------------------
def test_scores_table_colours_by_direction_and_averages_finite_scores():
    html = scores_table_html({"faith <r>": [0.2, 0.9, float("nan")], "infidelity": [3.0, 1.0, 2.0]},
                             {"faith <r>": True, "infidelity": False},
                             ["example 0", "example 1", "example 2"], caption="method: ig")
    assert "faith &lt;r&gt; \u2191" in html
    assert "infidelity \u2193" in html
    rows = re.findall(r"<tr(?: class=\"xai-mean\")?>(.*?)</tr>", html.split("<tbody>")[1])
    assert len(rows) == 4
    cells = [re.findall(r"<td([^>]*)>(.*?)</td>", r) for r in rows]
    assert [c[0][1] for c in cells] == ["0.2", "0.9", "nan", "0.55"]
    assert [c[1][1] for c in cells] == ["3", "1", "2", "2"]
    alpha = [[colour(attrs)[3] if colour(attrs) else None for attrs, _ in row] for row in cells]
    # higher is better: 0.9 is the darkest, 0.2 the lightest; NaN is not coloured
    assert alpha[0][0] == pytest.approx(0.06)
    assert alpha[1][0] == pytest.approx(0.6)
    assert alpha[2][0] is None
    assert "xai-nan" in cells[2][0][0]
    # lower is better: 1.0 darkest, 3.0 lightest, 2.0 half-way
    assert [alpha[r][1] for r in range(3)] == pytest.approx([0.06, 0.6, 0.33])
    assert alpha[3] == [None, None]  # the mean row is not coloured
    assert "<caption>method: ig</caption>" in html
