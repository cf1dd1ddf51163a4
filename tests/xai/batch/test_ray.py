"""engine="ray": the same rows as the local engine, whatever the chunking and the worker."""

from __future__ import annotations

import pandas as pd
import pytest
import ray

from xai.batch import Job, RayEngine, score
from xai.demo import load_credit_model, split_credit

SHAPLEY = ("shapley_sampling", {"n_permutations": 8})
JOB = {"methods": ["occlusion", SHAPLEY],
       "metrics": [("faithfulness_correlation", {"n_subsets": 20})], "random_state": 1}


@pytest.fixture(scope="module")
def local_ray():
    started = not ray.is_initialized()
    yield
    if started:
        ray.shutdown()


@pytest.mark.slow
def test_ray_rows_equal_local_rows(local_ray, tmp_path):
    _, x_test, _, _ = split_credit(random_state=0)
    data = x_test.iloc[:9].reset_index(drop=True)
    local = score("demo-credit", data, Job(chunk_size=4, **JOB), show_progress=False)
    # a model spec: each of the 2 actors loads the model once; other chunks than local
    on_ray = score("demo-credit", data, Job(chunk_size=2, **JOB), engine=RayEngine(num_workers=2),
                   output=tmp_path / "ray.parquet", show_progress=False)
    assert set(on_ray["status"]) == {"ok"}
    pd.testing.assert_frame_equal(on_ray.drop(columns="elapsed"), local.drop(columns="elapsed"))
    # a model object is shipped to the workers; one chunk per example this time
    one = {"methods": [SHAPLEY], "target": "1", "random_state": 1}
    objs = score(load_credit_model(), data.iloc[:3], Job(chunk_size=1, **one),
                 engine=RayEngine(num_workers=2), show_progress=False)
    want = score(load_credit_model(), data.iloc[:3], Job(chunk_size=3, **one),
                 show_progress=False)
    pd.testing.assert_frame_equal(objs.drop(columns="elapsed"), want.drop(columns="elapsed"))


@pytest.mark.slow
def test_ray_adds_methods_to_an_output_like_the_local_engine(local_ray, tmp_path):
    _, x_test, _, _ = split_credit(random_state=0)
    data = x_test.iloc[:4].reset_index(drop=True)
    out = tmp_path / "s.jsonl"
    ray_kw = {"output": out, "engine": RayEngine(num_workers=2), "show_progress": False}
    score("demo-credit", data, Job(methods=["occlusion"], chunk_size=2, random_state=1),
          **ray_kw)
    added = score("demo-credit", data, Job(methods=[SHAPLEY], chunk_size=2, random_state=1),
                  resume="add", **ray_kw)
    assert added.attrs["summary"]["examples_scored"] == 4
    local = score("demo-credit", data, Job(methods=["occlusion", SHAPLEY], random_state=1),
                  show_progress=False)
    pd.testing.assert_frame_equal(added.drop(columns="elapsed"), local.drop(columns="elapsed"))


@pytest.mark.slow
def test_an_audit_on_ray_equals_the_local_audit(local_ray):
    import metrics

    _, x_test, _, _ = split_credit(random_state=0)
    data = x_test.iloc[:6].reset_index(drop=True)
    groups = (data["age"] > 35).map({True: "older", False: "younger"})
    kw = {"metrics": [("faithfulness_correlation", {"n_subsets": 20})], "groups": groups,
          "vary": {"occlusion": {"random_state": [0, 1]}}, "n_bootstrap": 200,
          "n_permutations": 200, "min_group_size": 2, "random_state": 1}
    local = metrics.audit("demo-credit", data, ["occlusion", SHAPLEY], chunk_size=6, **kw)
    on_ray = metrics.audit("demo-credit", data, ["occlusion", SHAPLEY], chunk_size=2,
                           engine=RayEngine(num_workers=2), **kw)
    for table in ("agreement", "stability", "metric_summary", "disparity", "gaps"):
        pd.testing.assert_frame_equal(getattr(on_ray, table), getattr(local, table))
    assert len(local.agreement) == 6
    assert local.disparity["n"].sum() == 2 * 6
