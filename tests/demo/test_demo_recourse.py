"""The demo's recourse section (issue 14 req. 7): its figures are those of the public API."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

import metrics
import xai
from xai.demo import credit_baseline, load_credit, load_credit_model, split_credit
from xai.demo._credit_actions import (
    CREDIT_ACTIONS_PATH,
    CREDIT_IMMUTABLE,
    credit_action_set,
    load_credit_actions,
)
from xai.demo._run import credit_recourse, recourse_html

PROTECTED = ("age", "personal_status", "foreign_worker")


@pytest.fixture(scope="module")
def applicants():
    _, x_test, _, _ = split_credit(random_state=0)
    return x_test.iloc[:6]


@pytest.fixture(scope="module")
def reasons(applicants):
    """A cheap explanation of the demo model, explained as the demo explains it (class "1")."""
    return xai.explain(load_credit_model(), applicants, method="occlusion",
                       baseline=credit_baseline(), target="1", random_state=0)


@pytest.fixture(scope="module")
def recourse(reasons):
    return credit_recourse(reasons, load_credit_model())


def test_the_shipped_json_is_the_documented_action_set():
    shipped = load_credit_actions()
    assert shipped == credit_action_set()  # rewrite with python -m xai.demo._credit_actions
    assert json.loads(CREDIT_ACTIONS_PATH.read_text())["format"] == "posthoc-xai/action-set"
    assert {e.name for e in shipped if not e.actionable} == set(CREDIT_IMMUTABLE)
    assert set(PROTECTED) <= set(CREDIT_IMMUTABLE)
    for name in ("checking_status", "savings"):  # one balance bracket up per action
        assert (shipped[name].step_direction, shipped[name].step_ub) == (1, 1.0)
    assert shipped.partition_of("residence_since") == ("residence_since", "age")
    # every applicant of the data lies inside the set (bounds, types): check_data keeps them
    X, _ = load_credit()
    kept = shipped.check_data(X[list(shipped.names)].to_numpy())
    np.testing.assert_array_equal(kept, X[list(shipped.names)].to_numpy())


def test_the_section_equals_xai_explain_responsiveness_on_the_denied(recourse, reasons,
                                                                    applicants):
    probs = reasons.probabilities()[:, 0]
    assert recourse["denied"] == [i for i in range(len(applicants)) if float(probs[i]) < 0.5]
    assert recourse["denied"] == [2, 3, 4]
    denied = applicants.iloc[recourse["denied"]]
    want = xai.explain(load_credit_model(), denied, method="responsiveness",
                       action_set=load_credit_actions(), target="1", n_samples=500,
                       random_state=0)
    people = recourse["summary"]["applicants"]
    assert [p["position"] for p in people] == [2, 3, 4]
    for r, p in enumerate(people):
        got = [p["responsiveness"][c] for c in applicants.columns]
        assert got == want.values[r, 0].tolist()  # exactly the public API's values
        for name in PROTECTED:
            assert p["responsiveness"][name] == 0.0
        assert p["fixed_prediction"] is bool(want.extras["fixed_prediction"][r, 0])
        assert p["probability_good"] == pytest.approx(float(probs[p["position"]]), abs=1e-6)
    # the figures differ between people and features: the table is not all zeros
    assert any(v > 0 for p in people for v in p["responsiveness"].values())


def test_the_reasons_counts_equal_the_responsiveness_metric(recourse, reasons):
    denied = recourse["denied"]
    sub = reasons[denied]
    res = metrics.evaluate(sub, load_credit_model(), ["responsiveness"],
                           action_set=load_credit_actions(), top_k=4, random_state=0)["responsiveness"]
    people = recourse["summary"]["applicants"]
    for r, p in enumerate(people):
        # the reasons are the metric's (top-4 by |attribution|, nonzero) ...
        assert p["reasons"] == res.extras["reasons"][r]
        # ... and the share of them that are responsive is the metric's score
        share = len(p["responsive_reasons"]) / len(p["reasons"])
        assert share == pytest.approx(float(res.scores[r, 0]), abs=1e-12)
        assert p["fixed_prediction"] is bool(res.extras["fixed_prediction"][r])
        assert not set(PROTECTED) & set(p["responsive_reasons"])
    # top-4 by |attribution| recomputed here
    mag = sub.values[:, 0].abs()
    for r, p in enumerate(people):
        top = torch.argsort(mag[r], descending=True, stable=True)[:4].tolist()
        assert p["reasons"] == [sub.names[r][j] for j in top if float(mag[r, j]) > 0]


def test_the_html_shows_the_summary_figures(recourse):
    html = recourse_html(recourse)
    people = recourse["summary"]["applicants"]
    heads = re.findall(r"<th>applicant (\d+)</th>", html)
    assert [int(h) for h in heads] == [p["position"] for p in people]
    rows = re.findall(r"<tr><td>(?:<span[^>]*>)?([a-z_]+)(?:</span>)?</td><td>([a-z ]+)</td>(.*?)"
                      r"</tr>", html)
    assert [r[0] for r in rows] == list(people[0]["responsiveness"])
    for name, how, cells in rows:
        values = re.findall(r'<td[^>]*>([0-9.]+)(?: \(reason (\d)\))?</td>', cells)
        assert len(values) == len(people)
        for (text, rank), p in zip(values, people, strict=True):
            assert float(text) == pytest.approx(p["responsiveness"][name], abs=5e-4)
            assert (rank != "") == (name in p["reasons"])
            if rank:
                assert p["reasons"][int(rank) - 1] == name
        assert (how == "no") == (name in CREDIT_IMMUTABLE)
    counts = re.search(r"responsive top-4 reasons</th>(.*?)</tr>", html)
    assert counts is not None
    assert re.findall(r"<b>(\d) of (\d)</b>", counts.group(1)) == [
        (str(len(p["responsive_reasons"])), str(len(p["reasons"]))) for p in people]
    fixed = re.search(r"fixed prediction</th>(.*?)</tr>", html)
    assert fixed is not None
    cells = re.findall(r"<b>([^<]*)</b>", fixed.group(1))
    for cell, p in zip(cells, people, strict=True):
        helps = max(p["responsiveness"].values()) > 0
        assert cell.startswith("yes") == p["fixed_prediction"]
        assert (cell == "no: needs several") == (not p["fixed_prediction"] and not helps)
    # applicant 2 (checking >= 200 DM, whose one step up is "no account") has no single-feature
    # recourse, yet is not fixed: the cell says so
    assert cells[0] == "no: needs several"


def test_no_denied_applicant_leaves_the_table_out(reasons):
    approved = reasons[[0, 1, 5]]
    out = credit_recourse(approved, load_credit_model())
    assert out["denied"] == []
    assert out["summary"]["n_denied"] == 0
    assert "<table" not in recourse_html(out)
