"""Dependencies point one way (docs/architecture.md): core xai <- xai.extend <- metrics <- app.

The core of ``xai`` (everything but the application layer: ``xai/batch``, ``xai/cli.py``,
``xai/demo``) never imports ``metrics``; the application layer imports it only inside functions;
``metrics`` imports only public ``xai`` modules (no dotted component starts with ``_``); no
production module imports ``xai.testing``; and no import hides a cycle: every module imports in a
fresh interpreter in any order, and no import inside a function reaches a module that imports
the caller at load.
"""

from __future__ import annotations

import ast
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPLICATION = ("xai.batch", "xai.cli", "xai.demo")

#: Cycles that still hide behind an import inside a function: (caller, callee). Each is a debt,
#: not a pattern: remove the entry with the cycle.
KNOWN_LAZY_CYCLES: set[tuple[str, str]] = set()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources() -> dict[str, Path]:
    """Every production module of xai and metrics, by dotted name."""
    return {_module_name(p): p for pkg in ("xai", "metrics") for p in sorted((ROOT / pkg).rglob("*.py"))}


SOURCES = _sources()


def _absolute(path: Path, node: ast.ImportFrom) -> str:
    """The dotted module of a ``from ... import`` (relative imports resolved)."""
    if node.level == 0:
        return node.module or ""
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _imports(path: Path) -> list[tuple[str, bool]]:
    """``(module, at_load)`` for every import that runs (``if TYPE_CHECKING:`` blocks skipped).

    ``from a import b`` yields ``a.b`` when that is a module of ours, else ``a``; ``at_load`` is
    False for an import inside a function.
    """
    out: list[tuple[str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for stmt in child.orelse:
                    visit(stmt, in_function)
                continue
            inner = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef |
                                              ast.Lambda)
            if isinstance(child, ast.Import):
                out.extend((alias.name, not inner) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                module = _absolute(path, child)
                for alias in child.names:
                    sub = f"{module}.{alias.name}"
                    out.append((sub if sub in SOURCES else module, not inner))
            visit(child, inner)

    visit(ast.parse(path.read_text()), False)
    return out


def _is_under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _application(module: str) -> bool:
    return any(_is_under(module, app) for app in APPLICATION)


def test_core_xai_never_imports_metrics():
    offenders = [(m, target) for m, p in SOURCES.items()
                 if _is_under(m, "xai") and not _application(m)
                 for target, _ in _imports(p) if _is_under(target, "metrics")]
    assert offenders == []


def test_application_layer_imports_metrics_only_inside_functions():
    at_load = [(m, target) for m, p in SOURCES.items() if _application(m)
               for target, load in _imports(p) if load and _is_under(target, "metrics")]
    assert at_load == []
    lazily = {m for m, p in SOURCES.items() if _application(m)
              for target, load in _imports(p) if not load and _is_under(target, "metrics")}
    assert {"xai.batch._chunk", "xai.demo._run"} <= lazily  # the two former entry points


def test_metrics_imports_only_public_xai_modules():
    private = [(m, target) for m, p in SOURCES.items() if _is_under(m, "metrics")
               for target, _ in _imports(p)
               if _is_under(target, "xai") and any(c.startswith("_") for c in target.split("."))]
    assert private == []


def test_no_production_module_imports_xai_testing():
    offenders = [(m, target) for m, p in SOURCES.items() if not _is_under(m, "xai.testing")
                 for target, _ in _imports(p) if _is_under(target, "xai.testing")]
    assert offenders == []


def _lazy_cycles() -> set[tuple[str, str]]:
    """(caller, callee): an import inside a function of ``caller`` of a module that imports
    ``caller`` at load, directly or through other imports at load."""
    def known(target: str) -> str | None:
        while target and target not in SOURCES:
            target = target.rpartition(".")[0]
        return target or None

    at_load: dict[str, set[str]] = {m: set() for m in SOURCES}
    lazy: dict[str, set[str]] = {m: set() for m in SOURCES}
    for m, p in SOURCES.items():
        for target, load in _imports(p):
            dep = known(target)
            if dep is not None and dep != m:
                (at_load if load else lazy)[m].add(dep)

    def reachable(start: str) -> set[str]:
        seen, todo = {start}, [start]
        while todo:
            for nxt in at_load[todo.pop()] - seen:
                seen.add(nxt)
                todo.append(nxt)
        return seen

    return {(m, dep) for m in SOURCES for dep in lazy[m] if m in reachable(dep)}


def test_no_import_inside_a_function_hides_a_cycle():
    assert _lazy_cycles() == KNOWN_LAZY_CYCLES


@pytest.mark.parametrize(("base", "facade"), [("xai.methods._base", "xai._explain"),
                                              ("xai.methods.smoothed", "xai._explain"),
                                              ("metrics._base", "metrics._evaluate")])
def test_base_classes_never_call_up_into_the_facade(base, facade):
    # Compatibility lives on the registries (METHODS.compatible, METRICS.applicable).
    assert [t for t, _ in _imports(SOURCES[base]) if _is_under(t, facade)] == []


_IMPORT_ALL = """
import importlib, json, sys
failed = []
for name in json.loads(sys.argv[1]):
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as err:  # an optional extra that is not installed
        if (err.name or "").split(".")[0] in ("xai", "metrics"):
            failed.append(f"{name}: {err!r}")
    except Exception as err:
        failed.append(f"{name}: {err!r}")
print(json.dumps(failed))
"""


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_every_module_imports_in_a_fresh_interpreter_in_any_order(seed):
    names = sorted(SOURCES)
    random.Random(seed).shuffle(names)
    out = subprocess.run([sys.executable, "-c", _IMPORT_ALL, json.dumps(names)],
                         capture_output=True, text=True, check=True, cwd=ROOT, timeout=300)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_importing_xai_does_not_load_metrics():
    code = ("import sys, xai, xai.extend, xai.batch, xai.demo, xai.cli; "
            "print('metrics' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT)
    assert out.stdout.strip() == "False"
