"""The ``xai`` command end to end, in subprocesses, on the demo models."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

import xai
from xai.batch import Job, read_rows, score
from xai.demo import credit_baseline, load_credit_model, split_credit

ROOT = Path(__file__).resolve().parent.parent
HELPERS = ROOT / "tests" / "xai" / "batch"  # batch_helpers.py: model specs for the kill test


def _env() -> dict[str, str]:
    paths = [str(ROOT), str(HELPERS), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


def _xai(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "xai.cli", *args], cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def applicants() -> pd.DataFrame:
    _, x_test, _, _ = split_credit(random_state=0)
    return x_test.iloc[:12].reset_index(drop=True)


def test_metrics_table_lists_every_registered_metric(tmp_path):
    import metrics

    out = _xai("metrics", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["metric", "aliases", "better", "modalities", "needs", "paper"]
    assert [line.split()[0] for line in lines[1:]] == list(metrics.METRICS.names())
    row = next(line for line in lines if line.startswith("infidelity "))
    assert row.split()[2:5] == ["lower", "image,tabular,text", "model"]
    assert "Yeh et al. 2019" in row


@pytest.mark.slow
def test_score_writes_the_rows_of_the_python_api_and_counts_failures(applicants, tmp_path):
    frame = applicants.astype(object)
    frame.loc[4, "credit_amount"] = "n/a"
    frame.to_csv(tmp_path / "applicants.csv", index=False)
    out = _xai("score", "--model", "demo-credit", "--data", "applicants.csv", "--methods",
               "occlusion,shapley_sampling", "--metrics", "faithfulness_correlation",
               "--param", "shapley_sampling.n_permutations=8",
               "--param", "faithfulness_correlation.n_subsets=20", "--out", "scores.parquet",
               "--batch-size", "5", "--random-state", "2", cwd=tmp_path)
    assert out.returncode == 1
    # "n/a" reads as NaN: the row's error is the adapter's NaN message, counted once per method
    assert out.stderr.startswith("xai: error: 2 of 24 rows failed: InvalidInputError: The "
                                 "'inputs' contain NaN")
    assert out.stderr.endswith(" (2 rows). See the 'status' and 'error' columns of "
                               "scores.parquet.\n")
    summary = out.stdout.splitlines()
    assert summary[1].split()[:4] == ["12", "0", "22", "2"]
    rows = pd.DataFrame(read_rows(tmp_path / "scores.parquet"))
    job = Job(methods=["occlusion", ("shapley_sampling", {"n_permutations": 8})],
              metrics=[("faithfulness_correlation", {"n_subsets": 20})], random_state=2)
    want = score("demo-credit", tmp_path / "applicants.csv", job, show_progress=False)
    pd.testing.assert_frame_equal(rows.drop(columns="elapsed"), want.drop(columns="elapsed"))
    assert list(rows.loc[rows["status"] == "error", "id"]) == ["4", "4"]


def test_a_model_that_does_not_exist_is_a_clear_error(tmp_path):
    out = _xai("score", "--model", "models/credit.skops", "--data", "x.csv", "--out", "s.jsonl",
               cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.startswith("xai: error: The model 'models/credit.skops' is not a demo "
                                 "model name, an existing file or folder")
    assert not (tmp_path / "s.jsonl").exists()


@pytest.mark.slow
def test_a_pickle_is_refused_unless_trusted(logreg, tmp_path):
    import pickle

    model, x = logreg
    (tmp_path / "m.pkl").write_bytes(pickle.dumps(model))
    pd.DataFrame(x[:3]).to_csv(tmp_path / "x.csv", index=False)
    args = ("score", "--model", "m.pkl", "--data", "x.csv", "--methods", "occlusion", "--out")
    out = _xai(*args, "s.jsonl", cwd=tmp_path)
    assert out.returncode == 2
    assert "is a pickle, and unpickling runs arbitrary code" in out.stderr
    out = _xai(*args, "t.jsonl", "--trust-pickle", "--quiet", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    want = xai.explain(model, x[:3], method="occlusion")
    got = torch.tensor([r["attributions"] for r in read_rows(tmp_path / "t.jsonl")])
    torch.testing.assert_close(got, want.values[:, 0], rtol=0, atol=0)


def test_explain_demo_credit_prints_the_attributions(tmp_path):
    out = _xai("explain", "--model", "demo-credit", "--method", "occlusion", "--row", "3",
               cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    _, x_test, _, _ = split_credit(random_state=0)
    exp = xai.explain(load_credit_model(), x_test.iloc[[3]], method="occlusion", target="1",
                      baseline=credit_baseline())
    lines = out.stdout.splitlines()
    assert lines[0] == f"[1 score={float(exp.predictions[0, 0]):.4f}]"
    printed = {ln.split()[0]: float(ln.split()[1]) for ln in lines[1:]}
    assert printed == {n: round(float(v), 4) for n, v in
                       zip(exp.feature_names[0], exp.values[0, 0].tolist(), strict=True)}


@pytest.mark.slow
def test_killed_job_resumes_to_the_uninterrupted_result(applicants, tmp_path):
    data = pd.concat([applicants] * 3, ignore_index=True)  # 36 applicants
    data.to_csv(tmp_path / "applicants.csv", index=False)
    args = ["score", "--model", "batch_helpers:slow_credit", "--data", "applicants.csv",
            "--methods", "occlusion", "--metrics", "complexity", "--batch-size", "2",
            "--out", "scores.parquet", "--quiet"]
    job = subprocess.Popen([sys.executable, "-m", "xai.cli", *args], cwd=tmp_path, env=_env(),
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    parts = tmp_path / "scores.parquet.parts"
    deadline = time.monotonic() + 120
    while len(list(parts.glob("part-*"))) < 4 and time.monotonic() < deadline:
        assert job.poll() is None, job.stderr.read() if job.stderr else ""
        time.sleep(0.02)
    job.send_signal(signal.SIGKILL)
    job.wait()
    assert job.returncode == -signal.SIGKILL
    written = {r["id"] for p in parts.glob("part-*") for r in read_rows(p)}
    assert 8 <= len(written) < 36
    assert not (tmp_path / "scores.parquet").exists()
    out = _xai(*args, "--resume", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[1].split()[:2] == [str(36 - len(written)), str(len(written))]
    resumed = pd.DataFrame(read_rows(tmp_path / "scores.parquet"))
    full = score("demo-credit", data, Job(methods=["occlusion"], metrics=["complexity"]),
                 show_progress=False)
    assert resumed["id"].is_unique
    assert set(resumed["id"]) == set(full["id"])
    pd.testing.assert_frame_equal(resumed.drop(columns="elapsed"), full.drop(columns="elapsed"))


@pytest.mark.slow
def test_score_demo_sentiment_texts_from_jsonl(tmp_path):
    from xai.demo import load_sentiment_model

    texts = ["a gorgeous, witty, seductive movie.", "a dull, lifeless mess."]
    pd.DataFrame({"review": texts, "key": ["r1", "r2"]}).to_json(
        tmp_path / "reviews.jsonl", orient="records", lines=True)
    out = _xai("score", "--model", "demo-sentiment", "--data", "reviews.jsonl", "--id-column",
               "key", "--columns", "review", "--methods", "occlusion", "--out", "s.jsonl",
               "--quiet", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    rows = read_rows(tmp_path / "s.jsonl")
    exp = xai.explain(load_sentiment_model(), texts, method="occlusion", random_state=0)
    assert [r["id"] for r in rows] == ["r1", "r2"]
    assert [r["feature_names"] for r in rows] == [list(n) for n in exp.feature_names]
    for i, r in enumerate(rows):
        valid = exp.valid(i)
        torch.testing.assert_close(torch.tensor(r["attributions"]), exp.values[i, 0][valid],
                                   rtol=1e-5, atol=1e-6)


def test_score_builds_the_job_of_its_flags(applicants, tmp_path, capsys):
    from xai.cli import main

    applicants.iloc[:3].to_csv(tmp_path / "a.csv", index=False)
    out = tmp_path / "s.jsonl"
    # a method named twice runs once, as before; --batch-size is the chunk size
    code = main(["score", "--model", "demo-credit", "--data", str(tmp_path / "a.csv"),
                 "--methods", "occlusion,occlusion", "--batch-size", "2", "--quiet",
                 "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    want = score("demo-credit", applicants.iloc[:3], Job(methods=["occlusion"], chunk_size=2),
                 show_progress=False)
    rows = pd.DataFrame(read_rows(out))
    pd.testing.assert_frame_equal(rows.drop(columns="elapsed"), want.drop(columns="elapsed"))
    # before: --num-workers 0 silently became 2 workers
    code = main(["score", "--model", "demo-credit", "--data", str(tmp_path / "a.csv"),
                 "--engine", "ray", "--num-workers", "0", "--out", str(tmp_path / "r.jsonl")])
    assert code == 2
    assert capsys.readouterr().err == (
        "xai: error: The 'num_workers' parameter of RayEngine must be an int in the range "
        "[1, inf). Got 0 instead. Pass num_workers=4, for example.\n")
