"""Dependencies point one way: metrics imports xai, xai never imports metrics."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_xai_sources_never_import_metrics():
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "xai").rglob("*.py")
                 if "metrics" in _imported_modules(p)]
    assert offenders == []


def test_importing_xai_does_not_load_metrics():
    code = "import sys, xai, xai.demo, xai.cli; print('metrics' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT)
    assert out.stdout.strip() == "False"
