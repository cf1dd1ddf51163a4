"""The HTML views in a real browser: headless Chromium renders the demo report and an executed
notebook's output; each page is screenshotted, checked for JavaScript/console errors, and its
highlighted tokens (and grid cells, bar rows) are counted in the DOM Chromium built.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from dom import Elements

import xai

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0"]
REVIEWS = ["a gorgeous, witty, seductive movie", "the plot is boring and the acting is bad"]

# Injected first in <head>: records console.error/warn calls, uncaught errors, failed resource
# loads (capture phase) and unhandled rejections, and writes them into <pre id="xai-errors">
# on load, where --dump-dom reads them back.
COLLECTOR = """<script>
window.__xaiErrors = [];
window.addEventListener('error', function (e) {
  var t = e.target;
  window.__xaiErrors.push(t && t !== window && (t.src || t.href)
    ? 'resource failed: ' + (t.src || t.href) : 'uncaught: ' + e.message);
}, true);
window.addEventListener('unhandledrejection', function (e) {
  window.__xaiErrors.push('unhandled rejection: ' + e.reason);
});
['error', 'warn'].forEach(function (k) {
  var f = console[k];
  console[k] = function () {
    window.__xaiErrors.push('console.' + k + ': ' + Array.prototype.join.call(arguments, ' '));
    return f.apply(console, arguments);
  };
});
window.addEventListener('load', function () {
  var p = document.createElement('pre');
  p.id = 'xai-errors';
  p.textContent = JSON.stringify(window.__xaiErrors);
  p.style.display = 'none';
  document.body.appendChild(p);
});
</script>"""


class Page:
    """What Chromium made of one HTML file."""

    def __init__(self, pixels: np.ndarray, dom: str, errors: list[str]) -> None:
        self.pixels, self.dom, self.errors = pixels, dom, errors
        self.elements = Elements(dom)

    def by_class(self, cls: str) -> list[dict[str, str]]:
        return self.elements.by_class(cls)

    def coloured(self, channel: str) -> int:
        """Pixels clearly red (channel "r") or blue ("b") against the other channel."""
        r, b = self.pixels[..., 0], self.pixels[..., 2]
        return int(((r - b > 0.2) if channel == "r" else (b - r > 0.2)).sum())


@pytest.fixture(scope="module")
def render(tmp_path_factory):
    """render(html) -> Page: screenshot (1200 x 2000) and DOM of ``html`` in headless Chromium."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is not installed (Debian package 'chromium')")
    image = pytest.importorskip("matplotlib.image")
    folder = tmp_path_factory.mktemp("browser")

    def chromium(page: Path, *args: str) -> subprocess.CompletedProcess[str]:
        profile = folder / "profile"
        cmd = [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True)

    def _render(html: str, name: str) -> Page:
        page = folder / f"{name}.html"
        page.write_text(html.replace("<head>", "<head>" + COLLECTOR, 1), encoding="utf-8")
        shot = folder / f"{name}.png"
        done = chromium(page, f"--screenshot={shot}", "--window-size=1200,2000", "--dump-dom")
        assert shot.is_file(), done.stderr[-2000:]
        found = re.search(r'<pre id="xai-errors"[^>]*>(.*?)</pre>', done.stdout, re.S)
        assert found is not None, "the error collector did not run"
        errors = json.loads(found[1].replace("&quot;", '"').replace("&amp;", "&"))
        # console lines Chromium itself logged (uncaught errors land here too)
        errors += [line for line in done.stderr.splitlines()
                   if ":CONSOLE" in line or "Uncaught" in line]
        return Page(image.imread(shot), done.stdout, errors)

    return _render


def test_the_error_check_catches_errors(render):
    page = render("<!doctype html><html><head></head><body><p>x</p><script>"
                  "console.error('boom'); undefinedFunction();</script>"
                  '<img src="missing.png"></body></html>', "broken")
    joined = "\n".join(page.errors)
    assert "console.error: boom" in joined
    assert "uncaught: Uncaught ReferenceError: undefinedFunction is not defined" in joined
    assert "resource failed: " in joined
    assert "missing.png" in joined


def _assert_visible(page: Page) -> None:
    assert page.pixels.shape[:2] == (2000, 1200)
    assert float(page.pixels[..., :3].var()) > 0  # not a blank page


def _assert_colours(page: Page, exp: xai.Explanation) -> None:
    """Red pixels when some value is strongly positive, blue when strongly negative."""
    scale = exp.values.abs().amax(-1, keepdim=True).clamp_min(1e-12)
    rel = exp.values / scale
    if bool((rel > 0.5).any()):
        assert page.coloured("r") > 50
    if bool((rel < -0.5).any()):
        assert page.coloured("b") > 50


def test_demo_report_in_chromium(render):
    from xai.demo import credit_baseline, load_credit_model, load_sentiment_model, split_credit
    from xai.plot._html import explanation_html, report_html

    reviews = xai.explain(load_sentiment_model(), REVIEWS, method="occlusion")
    _, test, _, _ = split_credit()
    credit = xai.explain(load_credit_model(), test.iloc[:2], method="occlusion",
                         baseline=credit_baseline(), target="1")
    page = render(report_html([("Movie reviews: occlusion", explanation_html(reviews)),
                               ("Credit applicants: occlusion", explanation_html(credit))],
                              title="posthoc-xai demo"), "report")
    assert page.errors == []
    _assert_visible(page)
    _assert_colours(page, reviews)
    tokens = page.by_class("xai-tok")
    assert len(tokens) == int(reviews.feature_mask.sum()) == 14
    assert [t["text"] for t in tokens] == [w for names in reviews.names for w in names]
    assert [float(t["title"]) for t in tokens] == pytest.approx(
        [float(v) for i in range(2) for v in reviews.values[i, 0, : len(reviews.names[i])]],
        rel=1e-5)
    bars = page.by_class("xai-feat")
    assert len(bars) == 2 * min(10, credit.n_features)
    assert "Credit applicants: occlusion" in page.dom


NOTEBOOK = [
    "import json\nimport torch, transformers, xai, metrics\n"
    "from xai.adapters import HFCausalLMAdapter\nfrom xai.testing import tiny_text_classifier",
    "bert = tiny_text_classifier()\n"
    "exp = xai.explain(bert, ['a fun film', 'boring plot and bad actors <b>'], "
    "method='occlusion')\nexp",
    # a tiny random GPT-2 with a word-level tokenizer, for a generation grid
    "from tokenizers import Tokenizer, pre_tokenizers\nfrom tokenizers.models import WordLevel\n"
    "words = ['<pad>', '<bos>', '<eos>', '<unk>', *'the cat sat on mat a dog ran'.split()]\n"
    "wl = Tokenizer(WordLevel({w: i for i, w in enumerate(words)}, unk_token='<unk>'))\n"
    "wl.pre_tokenizer = pre_tokenizers.Whitespace()\n"
    "tok = transformers.PreTrainedTokenizerFast(tokenizer_object=wl, bos_token='<bos>', "
    "eos_token='<eos>', pad_token='<pad>', unk_token='<unk>')\n"
    "torch.manual_seed(0)\n"
    "gpt2 = transformers.GPT2LMHeadModel(transformers.GPT2Config(vocab_size=len(words), "
    "n_positions=32, n_embd=16, n_layer=1, n_head=2, bos_token_id=1, eos_token_id=2)).eval()\n"
    "clp = xai.explain(HFCausalLMAdapter(gpt2, tok), 'the cat sat on the mat a dog ran', "
    "method='context_length_probing', max_context=4)\nclp",
    "metrics.evaluate(exp, bert, ['complexity', 'comprehensiveness'], random_state=0)",
    "print(json.dumps({'tokens': int(exp.feature_mask.sum()), "
    "'cells': clp.n_outputs * clp.n_features}))",
]


def test_notebook_output_in_chromium(render, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nbconvert = pytest.importorskip("nbconvert")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in NOTEBOOK])
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT)}}).execute()
    outputs = [o for c in nb.cells for o in c.outputs]
    assert [o for o in outputs if o.output_type == "error"] == []
    shown = [o for o in outputs if o.output_type == "execute_result"]
    assert [("text/html" in o.data) for o in shown] == [True, True, True]
    counts = json.loads(next(o.text for o in outputs if o.get("name") == "stdout"
                             and o.text.startswith("{")))
    html, _ = nbconvert.HTMLExporter().from_notebook_node(nb)
    # the machine is offline: drop nbconvert's own CDN scripts (require.js, MathJax)
    html = re.sub(r'<script[^>]*src="https?://[^"]*"[^>]*>\s*</script>', "", html)
    page = render(html, "notebook")
    assert page.errors == []
    _assert_visible(page)
    tokens = page.by_class("xai-tok")
    assert len(tokens) == counts["tokens"] == 3 + 6
    assert [t["text"] for t in tokens] == ["a", "fun", "film", "boring", "plot", "and", "bad",
                                           "actors", "<b>"]
    cells = page.by_class("xai-cell")
    assert len(cells) == counts["cells"] == 8 * 9
    assert [c["text"] for c in page.by_class("xai-ctx")] == ["the", "cat", "sat", "on", "the",
                                                              "mat", "a", "dog", "ran"]
    scores = page.by_class("xai-scores")
    assert len(scores) == 1
    assert "complexity \u2193" in scores[0]["text"]
    assert "comprehensiveness \u2191" in scores[0]["text"]
    assert page.coloured("r") > 50
