"""MkDocs hooks of the posthoc-xai site (``hooks:`` in ``mkdocs.yml``).

* Notebooks: every ``notebooks/*.ipynb`` of the repository becomes a page (rendered by
  mkdocs-jupyter, not executed) and an entry of the "Notebooks" section of the nav, so a
  notebook added later needs no edit here and a missing one breaks nothing.
* Facts: a line ``<!-- xai:facts method=NAME -->`` (or ``metric=NAME``) in a page is replaced by
  a table generated from the registries and the class's dataclass fields and
  ``_constraints``: registry name, aliases, class, requirements, reference and every
  parameter with its default and allowed values. The numbers come from the code, so they
  cannot drift from it.
* Overviews: ``<!-- xai:table methods -->`` (``metrics``) lists every registered name with a
  link to its page, so a method or metric registered without a page breaks the strict build.
* Markdown hygiene: bare special tokens (``[PAD]``) in prose are escaped (autorefs would read
  them as cross-references), and the Sphinx roles and citation labels that mkdocstrings leaves
  in rendered numpydoc docstrings are tidied.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
NAV_TITLE = "Notebooks"
#: Order of the notebooks that exist or are planned; any other notebook follows, by name.
NOTEBOOK_ORDER = ("quickstart", "text_methods", "smoothing_metrics", "generation",
                  "batch_scoring")
FACTS = re.compile(r"^<!-- xai:facts (method|metric)=([a-z0-9_]+) -->$", re.MULTILINE)
#: Special tokens written bare in prose ("[CLS] [PAD]") read as Markdown reference links, which
#: autorefs reports as broken cross-references; outside code they are escaped.
SPECIAL = re.compile(r"(?<![\\`])\[(CLS|SEP|PAD|MASK|UNK|BOS|EOS)\]")
FENCE = re.compile(r"^(```|~~~)")
#: Sphinx roles (":func:`x`") and citation labels (".. [1]") of numpydoc docstrings, which
#: mkdocstrings leaves as text: the role is dropped (the code span stays), the label kept.
ROLE = re.compile(r":(?:func|meth|class|mod|attr|data|obj):(?=<code)")
CITATION = re.compile(r"(^|<p>|\n)\.\. \[(\d+)\]")
TABLE = re.compile(r"^<!-- xai:table (methods|metrics) -->$", re.MULTILINE)
ARXIV = re.compile(r"arXiv:(\d{4}\.\d{4,5})")
DOI = re.compile(r"doi:(10\.[^\s;,]+[^\s;,.])")


def notebooks() -> list[str]:
    """Repository-relative paths of the notebooks, in nav order."""
    found = {p.stem: p for p in NOTEBOOKS.glob("*.ipynb")}
    order = [n for n in NOTEBOOK_ORDER if n in found]
    order += sorted(n for n in found if n not in NOTEBOOK_ORDER)
    return [f"notebooks/{n}.ipynb" for n in order]


def on_config(config: Any) -> Any:
    """Fill the (empty) "Notebooks" section of the nav with the notebooks that exist."""
    for entry in config["nav"] or []:
        if isinstance(entry, dict) and NAV_TITLE in entry:
            entry[NAV_TITLE] = ["notebooks/index.md", *notebooks()]
    return config


@event_priority(100)  # before mkdocs-jupyter's on_files, which wraps the .ipynb files
def on_files(files: Files, config: Any) -> Files:
    """Add the repository's notebooks (outside docs_dir) as documentation files."""
    for path in notebooks():
        if files.get_file_from_path(path) is None:
            files.append(File(path, src_dir=str(ROOT), dest_dir=config["site_dir"],
                              use_directory_urls=config["use_directory_urls"]))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Replace the ``<!-- xai:... -->`` markers by tables generated from the code."""
    markdown = _escape_special_tokens(markdown)
    markdown = TABLE.sub(lambda m: _table(m.group(1), page.file.src_uri), markdown)
    return FACTS.sub(lambda m: _facts(m.group(1), m.group(2)), markdown)


def _escape_special_tokens(markdown: str) -> str:
    """``[PAD]`` -> ``\\[PAD\\]`` outside fenced blocks and inline code spans."""
    out, fenced = [], False
    for line in markdown.split("\n"):
        if FENCE.match(line.lstrip()):
            fenced = not fenced
        elif not fenced and "[" in line:
            parts = line.split("`")  # even parts are outside inline code
            line = "`".join(SPECIAL.sub(r"\\[\1\\]", p) if k % 2 == 0 else p
                            for k, p in enumerate(parts))
        out.append(line)
    return "\n".join(out)


def _table(kind: str, src_uri: str) -> str:
    """Every registered method (metric) with a link to its page: a missing page is a broken
    link, which fails ``mkdocs build --strict``."""
    folder = f"{kind}/" if "/" not in src_uri else ""  # pages at the root link into the folder
    if kind == "methods":
        import xai

        lines = ["| method | aliases | needs | modalities | summary | paper |",
                 "|---|---|---|---|---|---|"]
        for m in xai.list_methods():
            summary = _summary(xai.METHODS.get(m["name"]))
            lines.append(f"| [`{m['name']}`]({folder}{m['name']}.md) | {_codes(m['aliases'])} | "
                         f"`{m['requires']}` | {', '.join(m['modalities'])} | "
                         f"{_cell(summary)} | {_link(m['reference'])} |")
    else:
        import metrics

        lines = ["| metric | aliases | better | category | summary | paper |",
                 "|---|---|---|---|---|---|"]
        for name in metrics.METRICS.names():
            cls = metrics.METRICS.get(name)
            summary = _summary(cls)
            better = "higher" if cls.higher_is_better else "lower"
            lines.append(f"| [`{name}`]({folder}{name}.md) | "
                         f"{_codes(metrics.METRICS.aliases(name))} | {better} | {cls.category} | "
                         f"{_cell(summary)} | {_link(cls.reference)} |")
    return "\n".join([*lines, ""])


def on_page_content(html: str, page: Any, config: Any, files: Files) -> str:
    """Tidy what mkdocstrings leaves of Sphinx markup in the rendered docstrings."""
    return CITATION.sub(lambda m: f"{m.group(1)}[{m.group(2)}]", ROLE.sub("", html))


# -- facts tables ---------------------------------------------------------------------------

def _facts(kind: str, name: str) -> str:
    if kind == "method":
        import xai

        cls = xai.METHODS.get(name)
        info = next(m for m in xai.list_methods() if m["name"] == name)
        rows = [("registry name", f"`{name}`"),
                ("aliases", _codes(info["aliases"])),
                ("class", f"`xai.{cls.__name__}`"),
                ("needs", f"`{info['requires']}`"),
                ("modalities", _codes(info["modalities"])),
                ("deterministic", "yes" if info["deterministic"] else
                 "no (seeded by `random_state`)"),
                ("reference", _link(info["reference"]))]
    else:
        import metrics

        cls = metrics.METRICS.get(name)
        rows = [("registry name", f"`{name}`"),
                ("aliases", _codes(metrics.METRICS.aliases(name))),
                ("class", f"`metrics.{cls.__name__}`"),
                ("better", "higher" if cls.higher_is_better else "lower"),
                ("category", cls.category),
                ("modalities", _codes(sorted(cls.modalities))),
                ("calls the model", "yes" if cls.needs_model else "no"),
                ("re-explains the inputs", "yes" if cls.needs_reexplain else "no"),
                ("reference", _link(cls.reference))]
    lines = ["| property | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows), ""]
    lines += _parameters(cls)
    return "\n".join(lines)


def _parameters(cls: type) -> list[str]:
    fields = [f for f in dataclasses.fields(cls) if f.init]
    if not fields:
        return ["No parameters.", ""]
    constraints = getattr(cls, "_constraints", {})
    out = ["| parameter | default | allowed values (checked at construction) |",
           "|---|---|---|"]
    for f in fields:
        if f.default is not dataclasses.MISSING:
            default = f"`{f.default!r}`"
        elif f.default_factory is not dataclasses.MISSING:
            default = f"`{f.default_factory()!r}`"
        else:
            default = "required"
        allowed = " or ".join(str(c) for c in constraints.get(f.name, ())) or "see Parameters below"
        out.append(f"| `{f.name}` | {_pipes(default)} | {_cell(allowed)} |")
    return [*out, ""]


def _summary(cls: type) -> str:
    """The first paragraph of a class docstring, on one line."""
    return " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split())


def _pipes(text: str) -> str:
    return text.replace("|", "\\|")


def _cell(text: str) -> str:
    """Table-cell text: pipes escaped, option sets ``{...}`` as code (attr_list reads them)."""
    return re.sub(r"\{[^}]*\}", lambda m: f"`{m.group(0)}`", _pipes(text))


def _codes(items: Any) -> str:
    return ", ".join(f"`{i}`" for i in items) or "none"


def _link(reference: str) -> str:
    """A reference string with its arXiv ids and DOIs turned into links."""
    if not reference:
        return "none"
    out = ARXIV.sub(lambda m: f"[{m.group(0)}](https://arxiv.org/abs/{m.group(1)})", reference)
    return DOI.sub(lambda m: f"[{m.group(0)}](https://doi.org/{m.group(1)})", out)
