"""engine="ray": the same rows as the local engine, whatever the chunking and the worker."""

from __future__ import annotations

import pandas as pd
import pytest
import ray

from xai.batch import score
from xai.demo import load_credit_model, split_credit

KW = {"methods": ["occlusion", "shapley_sampling"], "metrics": ["faithfulness_correlation"],
      "method_params": {"shapley_sampling": {"n_permutations": 8}},
      "metric_params": {"faithfulness_correlation": {"n_subsets": 20}}, "random_state": 1,
      "show_progress": False}


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
    local = score("demo-credit", data, batch_size=4, **KW)
    # a model spec: each of the 2 actors loads the model once; other chunks than local
    on_ray = score("demo-credit", data, batch_size=2, engine="ray", num_workers=2,
                   output=tmp_path / "ray.parquet", **KW)
    assert set(on_ray["status"]) == {"ok"}
    pd.testing.assert_frame_equal(on_ray.drop(columns="elapsed"), local.drop(columns="elapsed"))
    # a model object is shipped to the workers; one chunk per example this time
    objs = score(load_credit_model(), data.iloc[:3], batch_size=1, engine="ray", num_workers=2,
                 target="1", method_params={"shapley_sampling": {"n_permutations": 8}},
                 methods=["shapley_sampling"], random_state=1, show_progress=False)
    want = score(load_credit_model(), data.iloc[:3], batch_size=3, target="1",
                 method_params={"shapley_sampling": {"n_permutations": 8}},
                 methods=["shapley_sampling"], random_state=1, show_progress=False)
    pd.testing.assert_frame_equal(objs.drop(columns="elapsed"), want.drop(columns="elapsed"))


@pytest.mark.slow
def test_ray_adds_methods_to_an_output_like_the_local_engine(local_ray, tmp_path):
    _, x_test, _, _ = split_credit(random_state=0)
    data = x_test.iloc[:4].reset_index(drop=True)
    out = tmp_path / "s.jsonl"
    ray_kw = {"output": out, "engine": "ray", "num_workers": 2, "batch_size": 2,
              "show_progress": False, "random_state": 1}
    score("demo-credit", data, methods=["occlusion"], **ray_kw)
    added = score("demo-credit", data, methods=["shapley_sampling"], resume="add",
                  method_params={"shapley_sampling": {"n_permutations": 8}}, **ray_kw)
    assert added.attrs["summary"]["examples_scored"] == 4
    local = score("demo-credit", data, methods=["occlusion", "shapley_sampling"],
                  method_params={"shapley_sampling": {"n_permutations": 8}}, random_state=1,
                  show_progress=False)
    pd.testing.assert_frame_equal(added.drop(columns="elapsed"), local.drop(columns="elapsed"))
