"""The ``xai`` command answers a user's mistake with one line and exit code 2, never a traceback.

The cases run ``xai.cli.main`` in-process (fast); one runs the real command in a subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from bad_inputs import run_cli

import xai
from xai.batch._score import describe_failures
from xai.cli import main
from xai.demo import credit_baseline, load_credit_model, split_credit

ROOT = Path(__file__).resolve().parent.parent
HELPERS = ROOT / "tests" / "xai" / "batch"
SCORE = ("score", "--model", "demo-credit", "--methods", "occlusion", "--quiet")


@pytest.fixture(scope="module")
def applicants() -> pd.DataFrame:
    _, x_test, _, _ = split_credit(random_state=0)
    return x_test.iloc[:3].reset_index(drop=True)


@pytest.fixture
def work(tmp_path, monkeypatch, applicants) -> Path:
    """A working folder holding good.csv (3 applicants); batch_helpers is importable."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(HELPERS))
    applicants.to_csv(tmp_path / "good.csv", index=False)
    return tmp_path




def _error(message: str) -> str:
    return f"xai: error: {message}\n"


@pytest.mark.parametrize(("name", "content", "message"), [
    ("bad.csv", "a,b\n1,2\n3,4,5\n",
     "The data set 'bad.csv' is not a readable CSV file (ParserError: Error tokenizing data. C "
     "error: Expected 2 fields in line 3, saw 3). Fix the file, or pass another."),
    ("empty.csv", "",
     "The data set 'empty.csv' is empty: it has no header line. Pass a CSV file with a header "
     "line and one example per line."),
    ("header.csv", "duration,age\n",
     "The data set 'header.csv' has no rows. Pass a data set with at least one example."),
    ("cut.jsonl", '{"duration": 12, "age": 30}\n{"duration": 24, "a\n',
     "Line 2 of the data set 'cut.jsonl' is not valid JSON (Unterminated string starting at: "
     "line 1 column 18 (char 17)); a file cut short ends in such a line. Fix or remove that "
     "line."),
    ("list.jsonl", "[1, 2]\n",
     "Line 1 of the data set 'list.jsonl' holds a JSON list, not an object. Write one JSON "
     'object per line with the columns as keys: {"text": "..."}.'),
])
def test_unreadable_data_is_one_line(work, capsys, name, content, message):
    (work / name).write_text(content)
    assert run_cli(capsys, *SCORE, "--data", name, "--out", "s.jsonl") == (2, _error(message))
    assert not (work / "s.jsonl.parts").exists()


def test_a_missing_data_file_is_one_line(work, capsys):
    assert run_cli(capsys, *SCORE, "--data", "missing.csv", "--out", "s.jsonl") == (2, _error(
        "The data set 'missing.csv' does not exist. Pass a CSV, JSONL or Parquet file, or a "
        "folder written by datasets.Dataset.save_to_disk."))


def test_an_unwritable_output_is_one_line(work, capsys):
    (work / "a-file").write_text("x")  # a folder that is a file: unwritable, even for root
    assert run_cli(capsys, *SCORE, "--data", "good.csv", "--out", "a-file/s.jsonl") == (2, _error(
        "The output 'a-file/s.jsonl' cannot be written: Not a directory (a-file/s.jsonl.parts). "
        "Pass an output in a folder you can write to."))


def test_an_unwritable_html_is_one_line(work, capsys):
    code, err = run_cli(capsys, "explain", "--model", "demo-credit", "--html", "no/such/x.html")
    assert (code, err) == (2, _error(
        "The --html file 'no/such/x.html' cannot be written: No such file or directory. Pass a "
        "path in a folder you can write to."))


def test_garbage_part_files_on_resume_are_one_line(work, capsys):
    assert run_cli(capsys, *SCORE, "--data", "good.csv", "--out", "s.jsonl") == (0, "")
    parts = work / "s.jsonl.parts"
    parts.mkdir()
    (parts / "part-000000000-deadbeef.jsonl").write_text('{"id": "0", "method": "occl\n')
    code, err = run_cli(capsys, *SCORE, "--data", "good.csv", "--out", "s.jsonl", "--resume")
    assert (code, err) == (2, _error(
        "The file 's.jsonl.parts/part-000000000-deadbeef.jsonl' is not a readable JSONL output "
        "of xai score (line 1: Invalid control character at: line 1 column 28 (char 27)). It "
        "is not a part that xai score wrote: move it away, then resume."))


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--methods", "occlusoin", "Unknown method 'occlusoin'. Did you mean 'occlusion'?"),
    ("--metrics", "faithfullness",
     "Unknown metric 'faithfullness'. Did you mean 'faithfulness_correlation'?"),
    ("--param", "occlusion.window",
     "--param 'occlusion.window' must look like NAME.FIELD=VALUE with NAME one of the chosen "
     "methods or metrics (occlusion), e.g. occlusion.window=2."),
    ("--param", "lime.n_samples=3",
     "--param 'lime.n_samples=3' sets a parameter of 'lime', which is not one of the chosen "
     "methods or metrics (occlusion). Add it to --methods or --metrics, or fix the name."),
])
def test_bad_names_and_options_are_one_line(work, capsys, option, value, message):
    argv = ["score", "--model", "demo-credit", "--data", "good.csv", "--out", "s.jsonl"]
    argv += ["--methods", "occlusion"] if option != "--methods" else []
    code, err = run_cli(capsys, *argv, option, value)
    assert code == 2
    assert err.startswith(_error(message).rstrip("\n"))
    assert err.count("\n") == 1


def test_a_different_job_on_resume_is_one_line(work, capsys):
    assert run_cli(capsys, *SCORE, "--data", "good.csv", "--out", "s.jsonl") == (0, "")
    code, err = run_cli(capsys, *SCORE, "--data", "good.csv", "--out", "s.jsonl", "--resume",
                     "--random-state", "1")
    assert (code, err) == (2, _error(
        "The job differs from the one that wrote 's.jsonl' (recorded in 's.jsonl.job.json'): "
        "random_state: 0 in the existing output, 1 now. Resume with the recorded settings, or "
        "write to another output."))


def test_resume_add_extends_the_output(work, capsys):
    assert run_cli(capsys, *SCORE, "--data", "good.csv", "--out", "s.jsonl") == (0, "")
    add = ("score", "--model", "demo-credit", "--data", "good.csv", "--out", "s.jsonl",
           "--quiet", "--methods", "shapley_sampling", "--param",
           "shapley_sampling.n_permutations=2")
    assert run_cli(capsys, *add, "--add") == (2, _error(
        "--add extends an existing output; pass it with --resume (xai score --resume --add)."))
    assert run_cli(capsys, *add, "--resume", "--add") == (0, "")
    rows = xai.batch.read_rows(work / "s.jsonl")
    assert [(r["id"], r["method"]) for r in rows] == [
        (i, m) for i in "012" for m in ("occlusion", "shapley_sampling")]


def test_argparse_errors_are_one_line(work, capsys):
    code, err = run_cli(capsys, "score", "--model", "demo-credit", "--batch-size", "many")
    assert code == 2
    assert err == _error("argument --batch-size: invalid int value: 'many' (see xai score "
                         "--help)")


def test_debug_shows_the_traceback(work, capsys):
    with pytest.raises(xai.exceptions.InvalidParameterError, match="'missing.csv' does not"):
        main(["--debug", *SCORE, "--data", "missing.csv", "--out", "s.jsonl"])
    (work / "header.csv").write_text("duration\n")
    with pytest.raises(xai.exceptions.InvalidInputError, match="has no rows"):
        main([*SCORE, "--data", "header.csv", "--out", "s.jsonl", "--debug"])


def test_a_models_own_bug_keeps_its_traceback(work):
    with pytest.raises(RuntimeError, match="the model's own bug"):
        main(["score", "--model", "batch_helpers:broken_model", "--data", "good.csv", "--out",
              "s.jsonl"])


def test_failed_rows_report_their_first_distinct_errors(work, capsys):
    (work / "rows.csv").write_text("a,b,c\n13,1,1\n13,2,2\nx,1,1\n1,1,1\n")
    code, err = run_cli(capsys, "score", "--model", "batch_helpers:fragile_linear", "--data",
                     "rows.csv", "--methods", "occlusion", "--out", "s.jsonl", "--quiet")
    assert (code, err) == (1, _error(
        "3 of 4 rows failed: ValueError: cannot score a row with x0=13.0 (2 rows); "
        "InvalidInputError: Column 'a' holds 'x', which is not a number. (1 row). See the "
        "'status' and 'error' columns of s.jsonl."))


def test_the_summary_returns_the_distinct_errors():
    table = pd.DataFrame({"status": ["error"] * 6 + ["ok"],
                          "error": ["A: x", "B: y", "A: x", "C: z\nmore", "D: w", None, None]})
    from xai.batch._score import _summary

    summary = _summary(table, 7, 0, 1.0)
    assert summary["errors"] == [("A: x", 2), ("B: y", 1), ("C: z\nmore", 1)]
    assert summary["distinct_errors"] == 5
    assert (summary["rows_failed"], summary["rows_ok"]) == (6, 1)
    assert describe_failures(summary) == ("6 of 7 rows failed: A: x (2 rows); B: y (1 row); "
                                          "C: z (1 row); and 2 other distinct errors")


def test_explain_demo_credit_works_with_its_default_method(work, capsys):
    # before: the default was integrated_gradients, which a scikit-learn model cannot run
    assert main(["explain", "--model", "demo-credit", "--row", "0", "--row", "5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    _, x_test, _, _ = split_credit(random_state=0)
    exp = xai.explain(load_credit_model(), x_test.iloc[[0, 5]], method="occlusion",
                      target="1", baseline=credit_baseline(), random_state=0)
    want = []
    for i in range(2):
        want.append(f"[1 score={float(exp.predictions[i, 0]):.4f}]")
        want += [f"  {n:>20s} {v:+.4f}" for n, v in
                 zip(exp.feature_names[i], exp.values[i, 0].tolist(), strict=True)]
    assert lines == want


def test_the_command_prints_no_traceback(tmp_path):
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n3,4,5\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    out = subprocess.run([sys.executable, "-m", "xai.cli", *SCORE, "--data", "bad.csv", "--out",
                          "s.jsonl"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 2
    assert out.stderr.startswith("xai: error: The data set 'bad.csv' is not a readable CSV")
    assert out.stderr.count("\n") == 1
