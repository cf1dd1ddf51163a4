"""The documentation site builds with ``mkdocs build --strict`` and covers the registries.

A method or metric registered without its page under ``docs/methods/`` or ``docs/metrics/``
fails here (and fails the strict build itself: the generated overview tables link every
registered name to its page).
"""

from __future__ import annotations

import dataclasses
import html
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import metrics
import xai

ROOT = Path(__file__).resolve().parent.parent


def _load_hooks():
    spec = importlib.util.spec_from_file_location("xai_docs_hooks", ROOT / "docs" / "_hooks.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Build the site once into a temporary folder; return (folder, build output)."""
    for name in ("mkdocs", "material", "mkdocstrings", "mkdocs_jupyter"):
        pytest.importorskip(name)
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    return out, proc


def _page(site_dir: Path, path: str) -> str:
    page = site_dir / path / "index.html"
    assert page.is_file(), f"no page {path}/ in the built site"
    return page.read_text(encoding="utf-8")


def _text(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


@pytest.mark.slow
def test_strict_build_passes_without_warnings(site):
    _, proc = site
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log
    assert [line for line in log.splitlines() if line.startswith("WARNING")] == []


@pytest.mark.slow
@pytest.mark.parametrize("info", xai.list_methods(), ids=lambda m: m["name"])
def test_page_per_method(site, info):
    site_dir, proc = site
    assert proc.returncode == 0, proc.stdout + proc.stderr
    page = _page(site_dir, f"methods/{info['name']}")
    text = _text(page)
    for alias in info["aliases"]:
        assert alias in text, f"alias {alias!r} missing on the page of {info['name']}"
    cls = xai.METHODS.get(info["name"])
    assert f'id="xai.{cls.__name__}"' in page  # the API section renders the class
    _assert_defaults_listed(cls, text)


@pytest.mark.slow
@pytest.mark.parametrize("name", metrics.METRICS.names())
def test_page_per_metric(site, name):
    site_dir, proc = site
    assert proc.returncode == 0, proc.stdout + proc.stderr
    page = _page(site_dir, f"metrics/{name}")
    text = _text(page)
    for alias in metrics.METRICS.aliases(name):
        assert alias in text, f"alias {alias!r} missing on the page of {name}"
    cls = metrics.METRICS.get(name)
    assert f'id="metrics.{cls.__name__}"' in page
    _assert_defaults_listed(cls, text)


def _assert_defaults_listed(cls: type, text: str) -> None:
    """Every parameter appears in the generated facts table next to its default's repr."""
    flat = " ".join(text.split())
    for field in dataclasses.fields(cls):
        if field.default is dataclasses.MISSING:
            continue
        row = f"{field.name} {field.default!r}"
        assert row in flat, f"{cls.__name__}: no row {row!r} in the parameter table"


@pytest.mark.slow
def test_api_page_documents_explain(site):
    site_dir, _ = site
    page = _page(site_dir, "api/xai")
    assert 'id="xai.explain"' in page
    assert "explain(" in _text(page)
    for api in ("api/explanation", "api/metrics", "api/adapters", "api/features",
                "api/exceptions"):
        assert "doc-heading" in _page(site_dir, api), f"{api} renders no docstring"


@pytest.mark.slow
def test_every_notebook_is_rendered_and_in_the_nav(site):
    site_dir, _ = site
    home = _page(site_dir, "")
    found = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert found
    for nb in found:
        page = _page(site_dir, f"notebooks/{nb.stem}")
        assert "jupyter-wrapper" in page  # rendered by mkdocs-jupyter
        assert f'href="notebooks/{nb.stem}/"' in home


def test_notebook_nav_order_and_glob():
    hooks = _load_hooks()
    paths = hooks.notebooks()
    stems = [Path(p).stem for p in paths]
    assert sorted(stems) == sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    planned = [s for s in hooks.NOTEBOOK_ORDER if s in stems]
    assert stems[:len(planned)] == planned
    assert stems[len(planned):] == sorted(stems[len(planned):])


def test_special_tokens_escaped_outside_code_only():
    hooks = _load_hooks()
    md = "baseline [CLS] [PAD] [SEP], `[PAD]` kept\n```\nx = '[MASK]'\n```\n[UNK] and [link](a.md)"
    out = hooks._escape_special_tokens(md)
    assert out == ("baseline \\[CLS\\] \\[PAD\\] \\[SEP\\], `[PAD]` kept\n```\nx = '[MASK]'\n```\n"
                   "\\[UNK\\] and [link](a.md)")


def test_reference_links():
    hooks = _load_hooks()
    out = hooks._link("Castro et al. 2009, doi:10.1016/j.cor.2008.04.004; Enouen et al. 2024, "
                      "arXiv:2312.01279")
    assert out == ("Castro et al. 2009, [doi:10.1016/j.cor.2008.04.004]"
                   "(https://doi.org/10.1016/j.cor.2008.04.004); Enouen et al. 2024, "
                   "[arXiv:2312.01279](https://arxiv.org/abs/2312.01279)")
