"""``xai audit``: the command builds the report of ``metrics.audit`` and writes its files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import metrics
from xai.cli import _top_k, _vary, main
from xai.demo import load_credit

ROOT = Path(__file__).resolve().parent.parent


def _xai(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    return subprocess.run([sys.executable, "-m", "xai.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    """16 German credit applicants with a ``sex`` column (personal_status code 1: female)."""
    x, _ = load_credit()
    out = x.iloc[:16].reset_index(drop=True)
    out["sex"] = np.where(out["personal_status"] == 1, "female", "male")
    return out


@pytest.fixture
def data(frame, tmp_path) -> Path:
    path = tmp_path / "applicants.csv"
    frame.to_csv(path, index=False)
    return path


def _csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path)


def _same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """CSV ``got`` holds ``want``'s rows: text columns equal, numbers to 1e-12."""
    assert list(got.columns) == list(want.columns)
    assert len(got) == len(want)
    for col in want.columns:
        w = want[col]
        if pd.api.types.is_numeric_dtype(w) and not pd.api.types.is_bool_dtype(w):
            np.testing.assert_allclose(got[col].to_numpy(dtype=float),
                                       w.to_numpy(dtype=float), rtol=0, atol=1e-12)
        else:
            assert [str(v) for v in got[col]] == [str(v) for v in w], col


@pytest.mark.slow
def test_the_contract_command_skips_ig_and_writes_the_report_of_audit(data, frame, tmp_path):
    out = _xai("audit", "--model", "demo-credit", "--data", "applicants.csv", "--groups", "sex",
               "--methods", "ig,occlusion,kernel_shap", "--out", "audit/", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    with pytest.warns(UserWarning, match="audit leaves out 'ig'"):
        want = metrics.audit("demo-credit", data, ["ig", "occlusion", "kernel_shap"],
                             groups="sex")
    # IG cannot explain the scikit-learn pipeline: one warning line, one stdout line
    assert ("xai: warning: audit leaves out 'ig': Method 'integrated_gradients' needs "
            "GRADIENTS") in out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == ("Audited 16 examples of demo-credit: methods occlusion, kernel_shap; "
                        "metrics none.")
    assert lines[1] == "Skipped ig: " + " ".join(want.skipped["ig"].split())
    assert "Recommendation" not in out.stdout  # no metrics, no recommendation
    # the printed agreement matrix is report.agreement_matrix("rank_correlation")
    at = lines.index("Agreement (rank correlation, mean over examples):")
    matrix = want.agreement_matrix("rank_correlation")
    assert lines[at + 1].split() == ["occlusion", "kernel_shap"]
    for line, method in zip(lines[at + 2:at + 4], matrix.index, strict=True):
        assert line.split() == [method, *(f"{v:.3f}" for v in matrix.loc[method])]
    assert lines[-1] == ("Report written to audit/report.html; tables: agreement.csv, "
                         "agreement_per_example.csv, scores.csv in audit")
    folder = tmp_path / "audit"
    assert sorted(p.name for p in folder.iterdir()) == [
        "agreement.csv", "agreement_per_example.csv", "report.html", "rows", "scores.csv"]
    page = (folder / "report.html").read_text(encoding="utf-8")
    assert "Agreement between methods" in page
    assert "Left out: ig (Method &#x27;integrated_gradients&#x27; needs GRADIENTS" in page
    _same(_csv(folder / "agreement.csv"), want.agreement)
    _same(_csv(folder / "agreement_per_example.csv"), want.agreement_per_example)
    scores = _csv(folder / "scores.csv")
    assert list(scores["group"]) == list(frame["sex"]) * 2  # the groups read from the file
    assert sorted(p.name for p in (folder / "rows").glob("*.parquet")) == sorted(
        f"{m}-{k}.parquet" for m, k in (("occlusion", _key(want, "occlusion")),
                                        ("kernel_shap", _key(want, "kernel_shap"))))


def _key(report: metrics.AuditReport, method: str) -> str:
    """The variant key of a method, as audit names its rows file (method-key.parquet)."""
    from metrics.audit import Variant
    from xai._registry import METHODS

    return Variant(method, METHODS.canonical(method), {}, 0).key


def test_metrics_groups_and_vary_fill_every_table_as_audit_does(data, frame, tmp_path, capsys):
    folder = tmp_path / "out"
    code = main(["audit", "--model", "demo-credit", "--data", str(data), "--methods",
                 "occlusion,kernel_shap", "--param", "kernel_shap.budget=64", "--metrics",
                 "complexity,comprehensiveness", "--groups", "sex", "--min-group-size", "5",
                 "--vary", "occlusion.random_state=0,1", "--vary", "kernel_shap.budget=48,64",
                 "--n-bootstrap", "300", "--n-permutations", "300", "--random-state", "3",
                 "--top-k", "0.25", "--quiet", "--out", str(folder)])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    want = metrics.audit(
        "demo-credit", data, ["occlusion", ("kernel_shap", {"budget": 64})],
        ["complexity", "comprehensiveness"], groups="sex", min_group_size=5,
        vary={"occlusion": {"random_state": [0, 1]}, "kernel_shap": {"budget": [48, 64]}},
        n_bootstrap=300, n_permutations=300, random_state=3, top_k=0.25)
    for name in ("agreement", "metric_summary", "disparity", "gaps"):
        _same(_csv(folder / f"{name}.csv"), getattr(want, name))
    stability = _csv(folder / "stability.csv")
    assert list(stability["values"]) == [str(v) for v in want.stability["values"]]
    # occlusion is deterministic: its maps are the same under every seed
    seed = stability[(stability["method"] == "occlusion") & (stability["measure"] == "spearman")]
    assert (seed["values"].item(), seed["mean"].item(), seed["spread"].item()) == (
        "[0, 1]", 1.0, 0.0)
    budget = stability[(stability["method"] == "kernel_shap")
                       & (stability["measure"] == "spearman")]
    assert budget["values"].item() == "[48, 64]"  # JSON numbers, not strings
    assert budget["mean"].item() < 1.0
    disparity = _csv(folder / "disparity.csv")
    counts = frame["sex"].value_counts()
    got = disparity[(disparity["metric"] == "complexity") & (disparity["method"] == "occlusion")]
    assert dict(zip(got["group"], got["n"], strict=True)) == counts.to_dict()
    assert not (folder / "failures.csv").exists()
    assert f"Recommendation: {want.recommend().reason}" in printed.out.splitlines()
    assert printed.err == ""  # --quiet: no bars, and no method was skipped


def test_a_rerun_resumes_every_job_and_computes_no_chunk(data, tmp_path, capsys, monkeypatch):
    from xai.batch._chunk import Scorer

    calls = []
    real = Scorer.score_chunk

    def counted(self, examples, *args, **kwargs):
        calls.append(len(examples))
        return real(self, examples, *args, **kwargs)

    monkeypatch.setattr(Scorer, "score_chunk", counted)
    folder = tmp_path / "out"
    args = ["audit", "--model", "demo-credit", "--data", str(data), "--methods",
            "occlusion,kernel_shap", "--param", "kernel_shap.budget=64", "--metrics",
            "complexity", "--batch-size", "8", "--quiet", "--out", str(folder)]
    assert main(args) == 0, capsys.readouterr().err
    first_out = capsys.readouterr().out
    assert calls == [8, 8, 8, 8]  # two methods, two chunks of 8 examples each
    rows = {p.name: pd.read_parquet(p) for p in (folder / "rows").glob("*.parquet")}
    agreement = (folder / "agreement.csv").read_text()
    calls.clear()
    assert main(args) == 0, capsys.readouterr().err
    assert calls == []  # every example of every job was read back from rows/
    assert capsys.readouterr().out == first_out
    assert (folder / "agreement.csv").read_text() == agreement
    for name, table in rows.items():  # the timings recorded by the first run are kept
        pd.testing.assert_frame_equal(pd.read_parquet(folder / "rows" / name), table)
    # another job in the same folder is refused, in one line naming the difference
    other = [("comprehensiveness" if a == "complexity" else a) for a in args]
    assert main(other) == 2
    err = capsys.readouterr().err
    assert err.startswith("xai: error: The job differs from the one that wrote ")
    assert "metrics: ['complexity'] in the existing output, ['comprehensiveness'] now." in err
    assert err.count("\n") == 1


@pytest.mark.slow
def test_failed_rows_are_written_left_out_and_make_the_exit_code_1(data, tmp_path):
    # kernel_shap needs 42 model rows for 20 features: budget=32 fails on every example
    out = _xai("audit", "--model", "demo-credit", "--data", str(data), "--methods",
               "occlusion,kernel_shap", "--param", "kernel_shap.budget=64", "--vary",
               "kernel_shap.budget=32,64", "--quiet", "--out", "audit", cwd=tmp_path)
    assert out.returncode == 1
    failures = _csv(tmp_path / "audit" / "failures.csv")
    assert len(failures) == 16
    assert set(failures["variant"]) == {"kernel_shap[budget=32]"}
    assert list(failures["id"]) == list(range(16))
    assert "16 row(s) failed and are left out of the tables." in out.stdout.splitlines()
    error = out.stderr.splitlines()[-1]
    assert error.startswith("xai: error: 16 row(s) failed and are left out of the tables; the "
                            "first: kernel_shap[budget=32], example 0: InvalidParameterError: "
                            "The 'budget' parameter of KernelShap gives 32 model rows")
    assert error.endswith(f"See {Path('audit') / 'failures.csv'}.")
    stability = _csv(tmp_path / "audit" / "stability.csv")
    spearman = stability[stability["measure"] == "spearman"]
    assert (spearman["n"].item(), spearman["n_nan"].item()) == (0, 16)
    assert (tmp_path / "audit" / "report.html").exists()


@pytest.mark.slow
def test_a_group_column_the_file_lacks_is_one_line_listing_the_columns(data, frame, tmp_path):
    out = _xai("audit", "--model", "demo-credit", "--data", str(data), "--groups", "nosuch",
               "--methods", "occlusion", "--quiet", "--out", "audit", cwd=tmp_path)
    assert out.returncode == 2
    assert out.stdout == ""
    assert out.stderr == (
        "xai: error: The 'groups' parameter of audit names a column that the data does not "
        f"have. Got 'nosuch' instead. Columns: {', '.join(frame.columns)}; or pass one label "
        "per example.\n")
    assert not (tmp_path / "audit" / "report.html").exists()


@pytest.mark.parametrize(("extra", "message"), [
    (["--vary", "x"],
     "--vary 'x' must look like METHOD.PARAM=V1,V2,... with METHOD one of --methods "
     "(occlusion), e.g. --vary kernel_shap.random_state=0,1,2."),
    (["--vary", "occlusion.window="],
     "--vary 'occlusion.window=' must look like METHOD.PARAM=V1,V2,... with METHOD one of "
     "--methods (occlusion), e.g. --vary kernel_shap.random_state=0,1,2."),
    (["--vary", "lime.random_state=0,1"],
     "--vary 'lime.random_state=0,1' varies a parameter of 'lime', which is not one of "
     "--methods (occlusion). Add it to --methods, or fix the name."),
    (["--vary", "occlusion.random_state=0", "--vary", "occlusion.random_state=1"],
     "--vary 'occlusion.random_state=1' varies occlusion.random_state a second time. Give all "
     "its values in one --vary occlusion.random_state=V1,V2,..."),
    (["--vary", "occlusion.random_state=0"],
     "The 'vary' parameter of audit must give occlusion.random_state a list of at least 2 "
     "values. Got {'occlusion': {'random_state': [0]}} instead. Pass "
     "vary={'integrated_gradients': {'n_steps': [16, 64, 256]}}."),
    (["--top-k", "abc"],
     "--top-k 'abc' must be an int (e.g. --top-k 5) or a fraction of the features in (0, 1] "
     "(e.g. --top-k 0.25)."),
    (["--methods", " , "],
     "--methods ' , ' names no method. Pass comma-separated method names (xai methods lists "
     "them), e.g. --methods occlusion,kernel_shap."),
    (["--param", "occlusion=2"],
     "--param 'occlusion=2' must look like NAME.FIELD=VALUE with NAME one of the chosen "
     "methods or metrics (occlusion), e.g. occlusion.window=2."),
])
def test_malformed_options_are_typed_one_line_errors(extra, message, data, tmp_path, capsys):
    code = main(["audit", "--model", "demo-credit", "--data", str(data), "--methods",
                 "occlusion", "--quiet", "--out", str(tmp_path / "out"), *extra])
    assert code == 2
    assert capsys.readouterr().err == f"xai: error: {message}\n"


def test_vary_and_top_k_values_parse_as_json_else_strings():
    assert _vary(["kernel_shap.random_state=0,1,2", "occlusion.window=2, 3.5 ,x,null"],
                 ["kernel_shap", "occlusion"]) == {
        "kernel_shap": {"random_state": [0, 1, 2]}, "occlusion": {"window": [2, 3.5, "x", None]}}
    assert (_top_k("3"), type(_top_k("3"))) == (3, int)
    assert (_top_k("0.25"), type(_top_k("0.25"))) == (0.25, float)


def test_id_column_names_the_examples_of_every_table(frame, tmp_path, capsys):
    path = tmp_path / "keyed.csv"
    frame.iloc[:8].assign(key=[f"app-{k}" for k in range(8)]).to_csv(path, index=False)
    folder = tmp_path / "out"
    assert main(["audit", "--model", "demo-credit", "--data", str(path), "--methods",
                 "occlusion,lime", "--id-column", "key", "--quiet", "--out", str(folder)]) == 0, \
        capsys.readouterr().err
    per = _csv(folder / "agreement_per_example.csv")
    assert list(dict.fromkeys(per["id"])) == [f"app-{k}" for k in range(8)]
