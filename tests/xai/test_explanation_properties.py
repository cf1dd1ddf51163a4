"""Property tests: save/load round trips of random Explanations, and the documented ranges of
the metrics on random small models with random attributions."""

from __future__ import annotations

import dataclasses
import math
import struct
import tempfile
import warnings
from typing import Any

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import explanations, finite, linear_problems

import metrics
import xai

SAVED = ("values", "feature_mask", "predictions", "base_values", "names", "method", "params",
         "extras", "model_info", "multiplies_by_inputs", "modality", "texts")


def same(a: Any, b: Any) -> bool:
    """Equal in type, dtype, shape and value; NaN equals NaN, -0.0 differs from 0.0."""
    if isinstance(a, torch.Tensor | np.ndarray):
        if type(a) is not type(b) or a.dtype != b.dtype or tuple(a.shape) != tuple(b.shape):
            return False
        flat_a = torch.as_tensor(a).reshape(-1).tolist()
        return all(same(x, y) for x, y in zip(flat_a, torch.as_tensor(b).reshape(-1).tolist(),
                                              strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or struct.pack("<d", a) == struct.pack("<d", b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(
            same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def bitwise(a: torch.Tensor | None, b: torch.Tensor | None) -> bool:
    """The same bytes (NaN payloads and signed zeros included)."""
    if a is None or b is None:
        return a is b
    return a.dtype == b.dtype and a.shape == b.shape and bytes(
        a.contiguous().reshape(-1).view(torch.uint8).numpy()) == bytes(
        b.contiguous().reshape(-1).view(torch.uint8).numpy())


def _as_plain(value: Any) -> Any:
    return dict(value) if isinstance(value, dict) else value


@settings(max_examples=30, deadline=None)
@given(explanations())
def test_save_load_round_trips_everything_that_is_saved(exp):
    with tempfile.TemporaryDirectory() as folder:
        exp.save(folder)
        back = xai.Explanation.load(folder)
    for field in ("values", "feature_mask", "predictions", "base_values"):
        assert bitwise(getattr(back, field), getattr(exp, field)), field
    assert bitwise(back.target.indices, exp.target.indices)
    assert bitwise(back.target.scores, exp.target.scores)
    assert back.target.names == exp.target.names
    for field in SAVED[4:]:
        assert same(_as_plain(getattr(back, field)), _as_plain(getattr(exp, field))), field
    assert [type(f) for f in back.features] == [type(f) for f in exp.features]
    assert back.inputs is None
    assert len(back.to_pandas()) == len(exp.to_pandas())


@st.composite
def scored_problems(draw):  # type: ignore[no-untyped-def]
    """A 2-class logistic model on 1-5 features, inputs, and random attributions (any sign,
    zeros included) in place of the method's."""
    w, b, x, base = draw(linear_problems(max_features=5))
    n, d = x.shape
    values = torch.tensor(draw(st.lists(finite | st.just(0.0), min_size=n * d,
                                        max_size=n * d))).reshape(n, 1, d)
    return w, b, x, base, values


def _logistic(w: torch.Tensor, b: float) -> xai.CallableAdapter:
    def proba(z: np.ndarray) -> np.ndarray:
        p = 1 / (1 + np.exp(-(z @ w.double().numpy() + b)))
        return np.stack([1 - p, p], axis=1)

    return xai.CallableAdapter(proba, output_names=["neg", "pos"])


#: Metric, parameters, and the closed range its finite scores lie in.
BOUNDS = {
    "faithfulness_correlation": ({"n_subsets": 8}, (-1.0, 1.0)),
    "comprehensiveness": ({"fraction": 0.5}, (-1.0, 1.0)),
    "sufficiency": ({"fraction": 0.5}, (-1.0, 1.0)),
    "aopc_comprehensiveness": ({}, (-1.0, 1.0)),
    "aopc_sufficiency": ({}, (-1.0, 1.0)),
    "log_odds": ({"fraction": 0.5}, (math.log(1e-12), -math.log(1e-12))),
    "infidelity": ({"n_perturbations": 16}, (0.0, math.inf)),
}


@settings(max_examples=30, deadline=None)
@given(scored_problems())
def test_metric_scores_stay_in_their_documented_ranges(problem):
    w, b, x, base, values = problem
    model = _logistic(w, b)
    exp = xai.explain(model, x.numpy(), method="occlusion", target="pos", baseline=base)
    exp = dataclasses.replace(exp, values=values)
    d = x.shape[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", xai.XAIWarning)  # NaN for constant attributions
        complexity = metrics.Complexity()(exp, model).scores
        results = {name: metrics.METRICS.get(name)(**params)(exp, model, random_state=0).scores
                   for name, (params, _) in BOUNDS.items()}
        avg, mx = (metrics.METRICS.get(name)(n_samples=3)(exp, model, random_state=0).scores
                   for name in ("avg_sensitivity", "max_sensitivity"))
    zero = (values == 0).all(-1)
    assert bool(complexity[zero].isnan().all())
    finite_c = complexity[~zero]
    assert bool(((finite_c >= 0) & (finite_c <= math.log(d) + 1e-5)).all()), complexity
    for name, (_, (lo, hi)) in BOUNDS.items():
        scores = results[name]
        ok = scores.isnan() | ((scores >= lo - 1e-6) & (scores <= hi + 1e-6))
        assert bool(ok.all()), (name, scores)
    for name in ("comprehensiveness", "sufficiency", "aopc_comprehensiveness", "log_odds"):
        assert bool(results[name].isfinite().all()), name  # defined for every attribution
    assert bool((avg >= 0).all() & (avg <= mx + 1e-6).all()), (avg, mx)  # same samples
