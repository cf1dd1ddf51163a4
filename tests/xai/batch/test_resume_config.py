"""Resume checks the job against the configuration recorded with the output; resume="add" extends it."""

from __future__ import annotations

import copy
import json
import pickle
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xai.batch import Job, JobMismatchError, read_rows, score
from xai.batch._config import canonical
from xai.batch._data import Example
from xai.batch._score import plan_chunks
from xai.exceptions import InvalidInputError, InvalidParameterError

sys.path.insert(0, str(Path(__file__).parent))
import batch_helpers  # noqa: E402

ROWS = np.arange(18, dtype=float).reshape(6, 3) / 7
KW = {"show_progress": False}
SHAPLEY = ("shapley_sampling", {"n_permutations": 4})


def _job(*methods: object, **fields: object) -> Job:
    """A job in chunks of 4 examples (default method: occlusion)."""
    return Job(**{"methods": list(methods or ["occlusion"]), "chunk_size": 4, **fields})


def _mismatch(out: Path, *lines: str, hint: str = "") -> str:
    return (f"The job differs from the one that wrote {str(out)!r} (recorded in "
            f"{str(out) + '.job.json'!r}): {'; '.join(lines)}. Resume with the recorded "
            f"settings, or write to another output.{hint}")


@pytest.fixture
def finished(tmp_path) -> Path:
    """A finished occlusion job of ROWS (random_state=0), in JSONL."""
    out = tmp_path / "s.jsonl"
    score(batch_helpers.fragile_linear(), ROWS, _job(), output=out, **KW)
    return out


def test_the_job_configuration_is_recorded_next_to_the_output(finished):
    record = json.loads(Path(f"{finished}.job.json").read_text())
    assert record["format_version"] == 1
    assert record["model"] == "<object xai.adapters._callable.CallableAdapter>"
    assert record["methods"] == ["occlusion"]
    assert record["method_params"]["occlusion"]["window"] == 1
    assert (record["random_state"], record["metrics"], record["target"]) == (0, [], None)


@pytest.mark.parametrize(("change", "line"), [
    ({"random_state": 1}, "random_state: 0 in the existing output, 1 now"),
    ({"methods": [("occlusion", {"window": 2})]},
     "occlusion.window: 1 in the existing output, 2 now"),
    ({"target": 0}, "target: None in the existing output, 0 now"),
    ({"hash_inputs": True}, "hash_inputs: False in the existing output, True now"),
    ({"metrics": ["complexity"]}, "metrics: [] in the existing output, ['complexity'] now"),
])
def test_resuming_another_job_is_refused_with_what_differs(finished, change, line):
    before = finished.read_bytes()
    with pytest.raises(JobMismatchError) as info:
        score(batch_helpers.fragile_linear(), ROWS, _job(**change), output=finished,
              resume=True, **KW)
    assert str(info.value) == _mismatch(finished, line)
    assert info.value.differences == (line,)
    assert info.value.parameter == "resume"
    assert finished.read_bytes() == before
    assert not Path(f"{finished}.parts").exists()


def test_resuming_with_an_added_method_is_refused_and_points_to_add(finished):
    # before the fix: 0 rows of shapley_sampling were written and the job "succeeded"
    with pytest.raises(JobMismatchError) as info:
        score(batch_helpers.fragile_linear(), ROWS, _job("occlusion", SHAPLEY),
              output=finished, resume=True, **KW)
    assert str(info.value) == _mismatch(
        finished, "methods: ['occlusion'] in the existing output, ['occlusion', "
                  "'shapley_sampling'] now",
        hint=" To score the new methods for the examples already written, pass resume='add' "
             "(CLI: --resume --add).")


def test_several_differences_are_all_listed(finished):
    with pytest.raises(JobMismatchError) as info:
        score(batch_helpers.fragile_linear(), ROWS,
              _job(("occlusion", {"stride": 2}), random_state=5), output=finished,
              resume=True, **KW)
    assert info.value.differences == ("occlusion.stride: 1 in the existing output, 2 now",
                                      "random_state: 0 in the existing output, 5 now")


def test_the_same_job_resumes_whatever_the_method_order(tmp_path):
    out = tmp_path / "s.parquet"
    kw = {"output": out, **KW}
    first = score(batch_helpers.fragile_linear(), ROWS, _job("occlusion", SHAPLEY), **kw)
    again = score(batch_helpers.fragile_linear(), ROWS, _job(SHAPLEY, "occlusion"),
                  resume=True, **kw)
    assert again.attrs["summary"]["examples_scored"] == 0
    pd.testing.assert_frame_equal(again, first)


def test_add_writes_only_the_rows_of_the_new_method(finished):
    old = read_rows(finished)
    added = score(batch_helpers.fragile_linear(), ROWS, _job(SHAPLEY), output=finished,
                  resume="add", **KW)
    full = score(batch_helpers.fragile_linear(), ROWS, _job("occlusion", SHAPLEY), **KW)
    assert added.attrs["summary"]["examples_scored"] == 6
    pd.testing.assert_frame_equal(added.drop(columns="elapsed"), full.drop(columns="elapsed"))
    rows = read_rows(finished)
    assert [r for r in rows if r["method"] == "occlusion"] == old  # untouched, elapsed too
    record = json.loads(Path(f"{finished}.job.json").read_text())
    assert record["methods"] == ["occlusion", "shapley_sampling"]
    assert record["method_params"]["shapley_sampling"]["n_permutations"] == 4
    # the extended job is now the recorded one: a plain resume of it has nothing left to do
    again = score(batch_helpers.fragile_linear(), ROWS, _job("occlusion", SHAPLEY),
                  output=finished, resume=True, **KW)
    assert again.attrs["summary"]["examples_scored"] == 0


def test_add_still_checks_every_other_setting(finished):
    with pytest.raises(JobMismatchError) as info:
        score(batch_helpers.fragile_linear(), ROWS,
              _job(("occlusion", {"window": 2}), SHAPLEY, random_state=2), output=finished,
              resume="add", **KW)
    assert info.value.differences == ("occlusion.window: 1 in the existing output, 2 now",
                                      "random_state: 0 in the existing output, 2 now")


def test_add_needs_an_existing_output(tmp_path):
    out = tmp_path / "typo.jsonl"
    with pytest.raises(InvalidParameterError, match=re.escape(
            f"resume='add' adds methods to an existing output, and {str(out)!r} does not exist. "
            "Check the path, or run the job without resume to start it.")):
        score(batch_helpers.fragile_linear(), ROWS, _job(), output=out, resume="add", **KW)
    assert not out.exists()


def test_add_refuses_an_unfinished_job_whose_methods_it_does_not_run(finished):
    more = np.vstack([ROWS, ROWS[:1] + 1])  # a 7th example has no occlusion row yet
    with pytest.raises(InvalidParameterError) as info:
        score(batch_helpers.fragile_linear(), more, _job(SHAPLEY), output=finished,
              resume="add", **KW)
    assert str(info.value) == (
        "The output has no 'occlusion' row for 1 example(s), and this run does not compute "
        "'occlusion': resume='add' runs only the methods it is given. Finish the job first "
        "with resume=True (CLI: --resume) and all its methods, or add 'occlusion', with its "
        "recorded parameters, to the methods.")


def test_plan_chunks_runs_each_example_for_the_methods_it_lacks():
    examples = [Example(str(i), [float(i)]) for i in range(5)]
    done = {"0": {"a", "b"}, "1": {"a"}, "3": {"a"}}
    chunks = plan_chunks(examples, ("a", "b"), done, runnable=("a", "b"), chunk_size=2)
    assert [(first, [e.id for e in chunk], todo) for first, chunk, todo in chunks] == [
        (1, ["1", "3"], ("b",)), (2, ["2", "4"], ("a", "b"))]


def test_an_output_without_its_record_is_not_resumed(finished):
    Path(f"{finished}.job.json").unlink()
    with pytest.raises(InvalidInputError) as info:
        score(batch_helpers.fragile_linear(), ROWS, _job(), output=finished, resume=True,
              **KW)
    assert str(info.value).startswith(
        f"The output {str(finished)!r} has no job record {str(finished) + '.job.json'!r}, so "
        "resuming cannot check that it is the same job")


def test_a_broken_record_is_a_typed_error(finished):
    Path(f"{finished}.job.json").write_text('{"format_version": 1, "model"')
    with pytest.raises(InvalidInputError, match=re.escape(
            f"The job record {str(finished) + '.job.json'!r} cannot be read (JSONDecodeError: ")):
        score(batch_helpers.fragile_linear(), ROWS, _job(), output=finished, resume=True,
              **KW)


def test_a_changed_model_file_is_another_job(logreg, tmp_path):
    model, x = copy.deepcopy(logreg)  # the fixture is shared: change a copy
    path, out = tmp_path / "m.pkl", tmp_path / "s.jsonl"
    path.write_bytes(pickle.dumps(model))
    kw = {"output": out, "trust_pickle": True, **KW}
    score(str(path), x[:3], _job(), **kw)
    moved = tmp_path / "copy.pkl"  # the same file elsewhere is the same model
    moved.write_bytes(path.read_bytes())
    assert score(str(moved), x[:3], _job(), resume=True, **kw).attrs["summary"]["rows"] == 3
    model.coef_ = model.coef_ * 2
    path.write_bytes(pickle.dumps(model))
    with pytest.raises(JobMismatchError) as info:
        score(str(path), x[:3], _job(), resume=True, **kw)
    (line,) = info.value.differences
    assert line.startswith("model file contents (sha256): '")
    assert line.endswith("' now")


def test_canonical_values_compare_contents_not_identity():
    a, b = np.zeros((1, 3)), np.zeros((1, 3))
    assert canonical({"baseline": a}) == canonical({"baseline": b})
    b[0, 1] = 1.0
    assert canonical(a) != canonical(b)
    assert canonical(a).startswith("<ndarray shape=(1, 3) sha256=")
    assert canonical(pd.DataFrame(a, columns=["x", "y", "z"])) != canonical(
        pd.DataFrame(a, columns=["x", "y", "w"]))
    assert canonical(np.float32(0.5)) == 0.5
    assert canonical(float("nan")) == "nan"
    assert canonical(batch_helpers.slow_credit) == "<function batch_helpers.slow_credit>"
    assert canonical(object()) == "<object object>"
