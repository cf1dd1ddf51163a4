"""``xai score --action-set``: the responsiveness metric and method in batch scoring (issue 14.7).

The rows of ``xai score`` must equal ``metrics.evaluate`` / ``xai.explain`` on the same
applicants with the same action set; a row outside the action set is one error row; a bad
``--action-set`` file is one typed line, exit code 2.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bad_inputs import run_cli

import metrics
import xai
from xai.batch import read_rows
from xai.demo import credit_baseline, load_credit_model, split_credit
from xai.demo._credit_actions import CREDIT_ACTIONS_PATH, load_credit_actions

# held-out applicants 0..5 of the demo split: 2, 3 and 4 are denied by the demo model
N_ROWS = 6


@pytest.fixture(scope="module")
def applicants() -> pd.DataFrame:
    _, x_test, _, _ = split_credit(random_state=0)
    return x_test.iloc[:N_ROWS].reset_index(drop=True)


@pytest.fixture
def work(tmp_path, monkeypatch, applicants) -> Path:
    monkeypatch.chdir(tmp_path)
    applicants.to_csv(tmp_path / "a.csv", index=False)
    (tmp_path / "actions.json").write_text(CREDIT_ACTIONS_PATH.read_text())
    return tmp_path




SCORE = ("score", "--model", "demo-credit", "--data", "a.csv", "--quiet")


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def test_score_rows_equal_metrics_evaluate_on_the_same_rows(work, capsys, applicants):
    code, err = run_cli(capsys, *SCORE, "--methods", "occlusion", "--metrics", "responsiveness",
                     "--action-set", "actions.json", "--out", "s.jsonl")
    assert code == 0, err
    rows = pd.DataFrame(read_rows(work / "s.jsonl"))
    model, actions = load_credit_model(), load_credit_actions()
    exp = xai.explain(model, applicants, method="occlusion", baseline=credit_baseline(),
                      target="1", random_state=0)
    with pytest.warns(xai.exceptions.XAIWarning, match="already predicted as the target"):
        res = metrics.evaluate(exp, model, ["responsiveness"], action_set=actions, top_k=4,
                               random_state=0)
    want = res["responsiveness"].scores[:, 0].tolist()
    assert list(rows["status"]) == ["ok"] * N_ROWS
    got = rows["responsiveness"].astype(float).tolist()
    assert all(_same(g, w) for g, w in zip(got, want, strict=True)), (got, want)
    # the approved applicants are NaN (no recourse needed), the denied ones a share in [0, 1]
    denied = (exp.probabilities()[:, 0] < 0.5).tolist()
    assert denied == [False, False, True, True, True, False]
    assert [math.isnan(g) for g in got] == [not d for d in denied]
    assert sum(not math.isnan(g) and g > 0 for g in got) >= 1  # the check can tell 0 from >0


def test_the_responsiveness_method_rows_equal_xai_explain(work, capsys, applicants):
    denied = applicants.iloc[[2, 3, 4]].reset_index(drop=True)
    denied.to_csv(work / "d.csv", index=False)
    code, err = run_cli(capsys, "score", "--model", "demo-credit", "--data", "d.csv", "--quiet",
                     "--methods", "responsiveness", "--action-set", "actions.json",
                     "--out", "r.jsonl")
    assert code == 0, err
    rows = read_rows(work / "r.jsonl")
    want = xai.explain(load_credit_model(), denied, method="responsiveness",
                       action_set=load_credit_actions(), target="1", random_state=0)
    names = list(denied.columns)
    for i, row in enumerate(rows):
        assert row["feature_names"] == names
        assert row["attributions"] == pytest.approx(want.values[i, 0].tolist(), abs=1e-7)
        for protected in ("age", "personal_status", "foreign_worker"):
            assert row["attributions"][names.index(protected)] == 0.0
    assert max(max(r["attributions"]) for r in rows) > 0  # some feature helps someone


def test_a_row_outside_the_action_set_is_an_error_row_and_the_job_goes_on(work, capsys,
                                                                          applicants):
    bad = applicants.copy()
    bad.loc[3, "age"] = 100.0  # the action set's age bounds are the data's [19, 75]
    bad.to_csv(work / "bad.csv", index=False)
    code, err = run_cli(capsys, "score", "--model", "demo-credit", "--data", "bad.csv", "--quiet",
                     "--methods", "occlusion", "--metrics", "responsiveness",
                     "--action-set", "actions.json", "--out", "bad.jsonl")
    assert code == 1
    assert err.startswith("xai: error: 1 of 6 rows failed: metric 'responsiveness': "
                          "InvalidInputError: Row 0 of 'inputs' has age = 100, outside the "
                          "action set's bounds [19, 75]")
    rows = pd.DataFrame(read_rows(work / "bad.jsonl"))
    assert list(rows["status"]) == ["ok", "ok", "ok", "error", "ok", "ok"]
    assert math.isnan(rows.loc[3, "responsiveness"])
    # the other rows are those of the job without the bad row
    run_cli(capsys, *SCORE, "--methods", "occlusion", "--metrics", "responsiveness",
         "--action-set", "actions.json", "--out", "good.jsonl")
    good = pd.DataFrame(read_rows(work / "good.jsonl"))
    keep = [0, 1, 2, 4, 5]
    assert all(_same(a, b) for a, b in zip(rows.loc[keep, "responsiveness"],
                                           good.loc[keep, "responsiveness"], strict=True))


def test_a_missing_action_set_file_is_one_typed_line(work, capsys):
    code, err = run_cli(capsys, *SCORE, "--metrics", "responsiveness", "--action-set", "nope.json",
                     "--out", "s.jsonl")
    assert code == 2
    assert err == ("xai: error: --action-set 'nope.json' is not a readable action set (Cannot "
                   "read the action set file 'nope.json': [Errno 2] No such file or directory: "
                   "'nope.json'). Pass a JSON file written by xai.ActionSet.save.\n")
    assert not (work / "s.jsonl").exists()


@pytest.mark.parametrize("content", ["{not json", json.dumps({"format": "something else"}),
                                     json.dumps({"format": "posthoc-xai/action-set"})])
def test_a_file_that_is_not_an_action_set_is_one_typed_line(work, capsys, content):
    (work / "x.json").write_text(content)
    code, err = run_cli(capsys, *SCORE, "--metrics", "responsiveness", "--action-set", "x.json",
                     "--out", "s.jsonl")
    assert code == 2
    assert err.startswith("xai: error: --action-set 'x.json' is not a readable action set (")
    assert err.endswith("Pass a JSON file written by xai.ActionSet.save.\n")
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_the_flag_and_the_metric_need_each_other(work, capsys):
    code, err = run_cli(capsys, *SCORE, "--metrics", "responsiveness", "--out", "s.jsonl")
    assert (code, err) == (2, "xai: error: 'responsiveness' needs an action set: what each "
                              "person can change. Pass --action-set actions.json (written by "
                              "xai.ActionSet.save).\n")
    code, err = run_cli(capsys, *SCORE, "--metrics", "complexity", "--action-set", "actions.json",
                     "--out", "s.jsonl")
    assert code == 2
    assert err.startswith("xai: error: --action-set 'actions.json' is read by the "
                          "responsiveness metric or method, and neither is chosen.")


def test_a_changed_action_set_changes_the_job_record():
    from xai.batch._config import canonical

    X = np.array([[0.0, 1.0], [3.0, 2.0]])
    a, b = xai.ActionSet.from_dataframe(X), xai.ActionSet.from_dataframe(X)
    assert canonical(a) == canonical(b)
    b["x0"].step_ub = 1
    assert repr(a) == repr(b)  # the summary line alone would not tell them apart
    assert canonical(a) != canonical(b)
