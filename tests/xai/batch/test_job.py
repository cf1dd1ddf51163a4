"""xai.batch.Job and the engine objects; the keywords score took before them still work."""

from __future__ import annotations

import json
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import metrics
import xai
from xai.adapters import CallableAdapter
from xai.batch import Job, LocalEngine, RayEngine, score
from xai.batch._legacy import upgrade
from xai.demo import split_credit
from xai.exceptions import InvalidParameterError, MissingDependencyError, UnknownNameError

sys.path.insert(0, str(Path(__file__).parent))
import batch_helpers  # noqa: E402

ROWS = np.arange(18, dtype=float).reshape(6, 3) / 7

#: The deprecation warning of the old spelling below (pinned: it is the migration guide).
OLD_SPELLING_WARNING = (
    "score(methods=, metrics=, method_params=, metric_params=, batch_size=, random_state=, "
    "target=) is deprecated and will be removed in the next release. Spell it score(model, "
    "data, xai.batch.Job(methods=..., metrics=..., chunk_size=..., random_state=..., "
    "target=...)). The old batch_size counted examples per chunk: it is Job(chunk_size=...) "
    "now, and Job(batch_size=...) counts rows per model call, as in xai.explain. Parameters go "
    "with each method or metric: a configured instance (xai.methods.KernelShap(n_samples=500)) "
    "or a (name, params) pair.")


@pytest.fixture(scope="module")
def applicants() -> pd.DataFrame:
    _, x_test, _, _ = split_credit(random_state=0)
    return x_test.iloc[:5].reset_index(drop=True)


def test_old_keywords_give_the_same_rows_and_record_with_a_warning(applicants, tmp_path):
    with pytest.warns(DeprecationWarning, match="is deprecated") as record:
        old = score("demo-credit", applicants, methods=["occlusion", "shapley_sampling"],
                    metrics=["faithfulness"],
                    method_params={"shapley_sampling": {"n_permutations": 4}},
                    metric_params={"faithfulness_correlation": {"n_subsets": 10}},
                    batch_size=2, random_state=3, target="1", output=tmp_path / "old.jsonl",
                    show_progress=False)
    assert [str(w.message) for w in record] == [OLD_SPELLING_WARNING]
    assert record[0].filename == __file__  # points at the caller
    job = Job(methods=["occlusion", ("shapley_sampling", {"n_permutations": 4})],
              metrics=[metrics.FaithfulnessCorrelation(n_subsets=10)], chunk_size=2,
              random_state=3, target="1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        new = score("demo-credit", applicants, job, output=tmp_path / "new.jsonl",
                    show_progress=False)
    pd.testing.assert_frame_equal(old.drop(columns="elapsed"), new.drop(columns="elapsed"))
    assert len(new) == 10
    assert set(new["status"]) == {"ok"}
    records = [json.loads(Path(f"{tmp_path / n}.jsonl.job.json").read_text())
               for n in ("old", "new")]
    assert records[0] == records[1]
    assert records[1]["metric_params"]["faithfulness_correlation"]["n_subsets"] == 10
    # the old batch_size was examples per chunk: 5 examples in chunks of 2 -> 3 part files
    assert old.attrs["summary"]["examples_scored"] == 5


def test_the_engine_strings_and_ray_keywords_map_to_engine_objects():
    with pytest.warns(DeprecationWarning, match=re.escape(
            "score(num_workers=, ray_address=, engine=) is deprecated and will be removed in "
            "the next release. Spell it score(model, data, job, "
            "engine=xai.batch.RayEngine(num_workers=..., address=...)).")):
        _, engine = upgrade(Job(), "ray", {"num_workers": 3, "ray_address": "auto"})
    assert engine == RayEngine(num_workers=3, address="auto")
    with pytest.warns(DeprecationWarning, match=re.escape(
            "score(engine=) is deprecated and will be removed in the next release. Spell it "
            "score(model, data, job).")):
        assert upgrade(Job(), "local", {})[1] == LocalEngine()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert upgrade(Job(), None, {})[1] == LocalEngine()
        assert upgrade(Job(), RayEngine(), {})[1] == RayEngine(num_workers=2)


def test_a_missing_ray_is_a_typed_error_with_the_install_line(applicants, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(MissingDependencyError, match=re.escape(
            'engine=RayEngine() (CLI: --engine ray) requires Ray Data. Install it with: '
            'pip install "posthoc-xai[ray]".')):
        score("demo-credit", applicants.iloc[:1], Job(methods=["occlusion"]),
              engine=RayEngine(), show_progress=False)


def test_the_old_positional_methods_list_still_works(applicants):
    with pytest.warns(DeprecationWarning, match=re.escape(
            "score(methods=) is deprecated and will be removed in the next release. Spell it "
            "score(model, data, xai.batch.Job(methods=...)).")):
        old = score("demo-credit", applicants.iloc[:2], ["occlusion"], show_progress=False)
    new = score("demo-credit", applicants.iloc[:2], Job(methods=["occlusion"]),
                show_progress=False)
    pd.testing.assert_frame_equal(old.drop(columns="elapsed"), new.drop(columns="elapsed"))


def test_new_and_old_arguments_do_not_mix(applicants):
    with pytest.raises(InvalidParameterError, match=re.escape(
            "score got a Job and the keyword(s) batch_size=, which the Job holds. Set them on "
            "the Job instead: Job(chunk_size=...).")):
        score("demo-credit", applicants, Job(), batch_size=8)
    with pytest.raises(InvalidParameterError, match=re.escape(
            "score got an engine object and the keyword(s) for the Ray engine (num_workers=); "
            "set them on the engine: RayEngine(num_workers=..., address=...).")):
        score("demo-credit", applicants, Job(), engine=RayEngine(), num_workers=4)
    with pytest.raises(TypeError, match=re.escape(
            "score() got an unexpected keyword argument 'chunk_size'")):
        score("demo-credit", applicants, chunk_size=8)


def test_names_are_normalised_and_instances_kept():
    kernel = xai.methods.KernelShap(n_samples=500)
    job = Job(methods=[kernel, "occlusion", ("shapley_sampling", {"n_permutations": 4})],
              metrics=["faithfulness", ("complexity", {})], input_columns=["a", "b"])
    assert job.methods == (kernel, ("occlusion", {}),
                           ("shapley_sampling", {"n_permutations": 4}))
    assert job.metrics == (metrics.FaithfulnessCorrelation(), metrics.Complexity())
    assert job.metric_names == ("faithfulness_correlation", "complexity")
    assert job.input_columns == ("a", "b")
    assert Job().methods == (("auto", {}),)


def test_a_method_instance_runs_as_configured_and_is_recorded(tmp_path):
    model = batch_helpers.fragile_linear()
    by_pair = score(model, ROWS, Job(methods=[("occlusion", {"window": 2})]),
                    show_progress=False)
    out = tmp_path / "s.jsonl"
    by_instance = score(model, ROWS, Job(methods=[xai.methods.Occlusion(window=2)]),
                        output=out, show_progress=False)
    pd.testing.assert_frame_equal(by_pair.drop(columns="elapsed"),
                                  by_instance.drop(columns="elapsed"))
    record = json.loads(Path(f"{out}.job.json").read_text())
    assert record["methods"] == ["occlusion"]
    assert record["method_params"]["occlusion"]["window"] == 2


def test_batch_size_is_rows_per_model_call_and_chunk_size_examples_per_chunk():
    sizes: list[int] = []

    def f(x: np.ndarray) -> np.ndarray:
        sizes.append(len(x))
        return x @ np.array([1.0, 2.0, 3.0])

    model = CallableAdapter(f, n_features=3)
    small = score(model, ROWS, Job(methods=["occlusion"], chunk_size=3, batch_size=2),
                  show_progress=False)
    assert max(sizes) == 2
    sizes.clear()
    auto = score(model, ROWS, Job(methods=["occlusion"], chunk_size=3), show_progress=False)
    assert max(sizes) == 12  # a chunk of 3 examples x 4 occlusion rows in one call
    pd.testing.assert_frame_equal(small.drop(columns="elapsed"), auto.drop(columns="elapsed"))


@pytest.mark.parametrize(("kwargs", "err", "message"), [
    ({"chunk_size": 0}, InvalidParameterError,
     "The 'chunk_size' field of Job must be an int in the range [1, inf) (examples per chunk). "
     "Got 0 instead. Pass chunk_size=1, for example."),
    ({"batch_size": "big"}, InvalidParameterError,
     "The 'batch_size' field of Job must be an int in the range [1, inf) (rows per model call, "
     "or 'auto'). Got 'big' instead. Pass batch_size=1, for example."),
    ({"random_state": -1}, InvalidParameterError,
     "The 'random_state' field of Job must be an int in the range [0, inf) (one seed for the "
     "whole job). Got -1 instead. Pass random_state=0, for example."),
    ({"methods": "occlusion"}, InvalidParameterError,
     "The 'methods' field of Job must be a list. Got 'occlusion' instead. Pass Method "
     "instances (xai.methods.KernelShap(n_samples=500)), registry names ('occlusion', see "
     "xai.list_methods()) or (name, params) pairs."),
    ({"methods": []}, InvalidParameterError,
     "The 'methods' field of Job must name at least one method. Got [] instead."),
    ({"methods": ["occlusion", "occlusion"]}, InvalidParameterError,
     "The 'methods' field of Job lists 'occlusion' twice; each method is one row per example. "
     "Got ['occlusion', 'occlusion'] instead. Keep one configuration per method (run another "
     "job for the other one)."),
    ({"methods": [("auto", {"window": 2})]}, InvalidParameterError,
     "The 'methods' field of Job gives parameters to 'auto', which picks the method from the "
     "model. Got ('auto', {'window': 2}) instead. Name the method instead: "
     "('kernel_shap', {...})."),
    ({"methods": [("occlusion", {"windw": 2})]}, InvalidParameterError,
     "Occlusion got an unexpected parameter 'windw'."),
    ({"methods": ["oclusion"]}, UnknownNameError, "Unknown method 'oclusion'. Did you mean "
     "'occlusion'?"),
    ({"methods": [xai.methods.Occlusion]}, InvalidParameterError,
     "The 'methods' field of Job entries must be instances, names or (name, params) pairs."),
    ({"metrics": ["complexity", "complexity"]}, InvalidParameterError,
     "The 'metrics' field of Job lists 'complexity' twice."),
    ({"metrics": ["faithfullness"]}, UnknownNameError, "Unknown metric 'faithfullness'."),
    ({"metrics": [("faithfulness_correlation", {"subset_size": 2})]}, InvalidParameterError,
     "FaithfulnessCorrelation got an unexpected parameter 'subset_size'. Valid parameters of "
     "FaithfulnessCorrelation: n_subsets, subset_fraction."),
    ({"input_columns": "age"}, InvalidParameterError,
     "The 'input_columns' field of Job must be a list of column names. Got 'age' instead."),
    ({"hash_inputs": "yes"}, InvalidParameterError,
     "The 'hash_inputs' field of Job must be True or False. Got 'yes' instead."),
])
def test_bad_job_fields_are_typed_errors_that_name_the_field(kwargs, err, message):
    with pytest.raises(err, match=re.escape(message)) as info:
        Job(**kwargs)
    if err is InvalidParameterError and "field of Job" in message:
        assert info.value.parameter == next(iter(kwargs))


def test_bad_ray_engine_settings():
    with pytest.raises(InvalidParameterError, match=re.escape(
            "The 'num_workers' parameter of RayEngine must be an int in the range [1, inf). "
            "Got 0 instead. Pass num_workers=4, for example.")):
        RayEngine(num_workers=0)
    with pytest.raises(InvalidParameterError, match=re.escape(
            "The 'engine' parameter of score must be xai.batch.LocalEngine(), "
            "xai.batch.RayEngine(...), or the deprecated 'local' or 'ray'. Got 'dask' "
            "instead.")):
        upgrade(Job(), "dask", {})


def test_the_batch_api_is_pinned():
    import xai.batch

    assert sorted(xai.batch.__all__) == [
        "DEMO_MODELS", "Job", "JobMismatchError", "LoadedModel", "LocalEngine", "ModelFactory",
        "RayEngine", "load_model", "read_rows", "score"]
    assert all(hasattr(xai.batch, name) for name in xai.batch.__all__)
