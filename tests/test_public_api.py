"""The public surface: which ``xai`` and ``metrics`` are imported, and ``xai.__all__`` pinned."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

import xai

REPO = Path(__file__).resolve().parents[1]

#: The public names of ``xai``. Adding or removing one is an API change: update this list on purpose.
XAI_ALL = sorted([
    "ActionElement",
    "AmortizedExplainer",
    "ActionSet",
    "BEE",
    "BEEPolicy",
    "Batch",
    "BestOf",
    "CallableAdapter",
    "Candidates",
    "Capability",
    "CausalLMResampler",
    "ContextLengthProbing",
    "ConvergenceWarning",
    "DirectionalLinkage",
    "Explanation",
    "FeatureSpace",
    "GNNExplainer",
    "GraphEdges",
    "GraphNodes",
    "IfThen",
    "IgnoredParameterWarning",
    "IncompatibleModelError",
    "InputMarginalization",
    "IntegratedGradients",
    "InvalidExplanationError",
    "InvalidInputError",
    "InvalidParameterError",
    "InvalidTargetError",
    "KernelShap",
    "Lime",
    "METHODS",
    "MaskedLMResampler",
    "Method",
    "MissingDependencyError",
    "Modality",
    "ModelAdapter",
    "ModelInfo",
    "NamedFeatures",
    "OneHot",
    "OutputKind",
    "OLM",
    "Occlusion",
    "Registry",
    "ResolvedTarget",
    "Responsiveness",
    "ShapleySampling",
    "SklearnAdapter",
    "Smoothed",
    "TensorFeatures",
    "TextFeatures",
    "TextGenSHAP",
    "Thermometer",
    "TokenFeatures",
    "TokenResampler",
    "TorchModuleAdapter",
    "TruncationWarning",
    "UnknownNameError",
    "UnsupportedModelError",
    "WordFeatures",
    "XAIError",
    "XAIWarning",
    "__version__",
    "as_adapter",
    "compatible_methods",
    "exceptions",
    "explain",
    "list_methods",
    "register_method",
    "select_method",
])


def _inside_repo(path: str | None) -> bool:
    return path is not None and Path(path).resolve().is_relative_to(REPO)


def test_xai_is_this_project():
    # an unrelated "xai" distribution exists on PyPI; this must be ours
    assert _inside_repo(xai.__file__), f"xai imported from {xai.__file__}, not from {REPO}"
    assert Path(xai.__file__).resolve() == REPO / "xai" / "__init__.py"


def test_metrics_is_this_project():
    try:
        metrics = importlib.import_module("metrics")
    except ImportError as err:
        pytest.skip(f"the metrics package is not importable yet ({err})")
    path = getattr(metrics, "__file__", None)
    # tests/metrics (no __init__.py) would import as a namespace package with __file__ None
    assert path is not None, f"metrics resolved to a namespace package at {list(metrics.__path__)}"
    assert Path(path).resolve() == REPO / "metrics" / "__init__.py", f"metrics imported from {path}"


def test_xai_all_is_pinned():
    assert sorted(xai.__all__) == XAI_ALL
    assert len(set(xai.__all__)) == len(xai.__all__), "duplicate names in xai.__all__"


@pytest.mark.parametrize("name", XAI_ALL)
def test_every_public_name_exists(name):
    assert hasattr(xai, name)


def test_star_import_gives_exactly_all():
    namespace: dict[str, object] = {}
    exec("from xai import *", namespace)
    assert sorted(k for k in namespace if k != "__builtins__") == XAI_ALL


def test_every_exception_is_exported_at_top_level():
    for name in xai.exceptions.__all__:
        assert getattr(xai, name) is getattr(xai.exceptions, name)
        assert name in xai.__all__


def test_every_registered_method_class_is_exported():
    for name in xai.METHODS.names():
        cls = xai.METHODS.get(name)
        assert getattr(xai, cls.__name__, None) is cls, f"xai.{cls.__name__} is not exported"


#: The names of ``xai.extend``, the one surface for method and metric authors (and ``metrics``).
EXTEND_ALL = sorted([
    "DEFAULT_BATCH_SIZE", "METHODS", "NONE_OK", "AttributionOutput", "BaselineFamily", "Batch",
    "Capability", "Constraint", "FamilyContext", "FeatureSpace", "InstanceOf", "Interval", "Method", "MethodRegistry",
    "ModelAdapter", "ModelInfo", "NamedFeatures", "Options", "Registry", "ResolvedTarget", "Stats",
    "as_probabilities", "check_params", "check_random_state",
    "example_generators", "fmt_value", "int_seed", "make_method", "numpy_rng", "register_method",
    "report_html", "required_fields", "resolve_batch_size", "score_masks", "scores_table_html",
    "table_html",
])


def test_extend_all_is_pinned():
    import xai.extend

    assert sorted(xai.extend.__all__) == EXTEND_ALL
    assert all(hasattr(xai.extend, name) for name in EXTEND_ALL)
    # the same objects as the top level, not copies
    assert xai.extend.METHODS is xai.METHODS
    assert xai.extend.Method is xai.Method
    assert xai.extend.register_method is xai.register_method


def test_batch_and_extend_are_reachable_from_import_xai_on_first_use():
    # the issue-11 contract spells xai.batch.Job(...) after a plain `import xai`; the submodules
    # load on first access, so `import xai` itself stays light (neither is in sys.modules)
    import subprocess
    import sys

    code = ("import sys, xai; before = {'xai.batch', 'xai.extend', 'metrics'} & set(sys.modules); "
            "job = xai.batch.Job(methods=['occlusion'], chunk_size=8); "
            "print(sorted(before), job.chunk_size, xai.extend.Method is xai.Method)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]", "8", "True"]
