"""``--objective NAME`` of ``xai explain`` and ``xai score``: the metric registered as NAME, built
in the CLI (the application layer), is the ``objective`` of the chosen methods that take one.

The CLI runs in-process (``xai.cli.main``); each result is checked against the Python call.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from bad_inputs import run_cli

import metrics
import xai
from xai.batch import Job, read_rows, score
from xai.cli import main
from xai.demo import load_credit_model, split_credit

CANDIDATES = ["occlusion", "lime"]
BEST_OF = ("--method", "best_of", "--param", 'best_of.candidates=["occlusion", "lime"]')


@pytest.fixture(scope="module")
def x_test() -> pd.DataFrame:
    return split_credit(random_state=0)[1]


def _printed(stdout: str) -> tuple[str, dict[str, float]]:
    """The header line and the feature -> value lines of ``xai explain`` (one example)."""
    lines = stdout.splitlines()
    return lines[0], {ln.split()[0]: float(ln.split()[1]) for ln in lines[1:]}


def test_explain_best_of_with_an_objective_prints_the_python_values(x_test, capsys):
    code = main(["explain", "--model", "demo-credit", "--row", "4", *BEST_OF,
                 "--objective", "infidelity"])
    out = capsys.readouterr()
    assert code == 0, out.err
    # best_of has no baseline field: demo-credit's baseline row goes only to methods that have
    # one (as in xai score), so the candidates use their own default baselines
    exp = xai.explain(load_credit_model(), x_test.iloc[[4]], method="best_of",
                      objective=metrics.Infidelity(), candidates=CANDIDATES, target="1",
                      random_state=0)
    header, printed = _printed(out.out)
    assert header == f"[1 score={float(exp.predictions[0, 0]):.4f}]"
    want = dict(zip(exp.feature_names[0], exp.values[0, 0].tolist(), strict=True))
    assert printed.keys() == want.keys()
    for name, value in want.items():
        assert printed[name] == pytest.approx(value, abs=1e-4), name


def test_objective_fields_come_from_param_objective(x_test, capsys):
    code = main(["explain", "--model", "demo-credit", "--row", "1", *BEST_OF,
                 "--objective", "faithfulness_correlation", "--param", "objective.n_subsets=5"])
    out = capsys.readouterr()
    assert code == 0, out.err
    _, printed = _printed(out.out)

    def direct(objective: metrics.Metric) -> dict[str, float]:
        exp = xai.explain(load_credit_model(), x_test.iloc[[1]], method="best_of",
                          objective=objective, candidates=CANDIDATES, target="1",
                          random_state=0)
        return dict(zip(exp.feature_names[0], exp.values[0, 0].tolist(), strict=True))

    want = direct(metrics.FaithfulnessCorrelation(n_subsets=5))
    for name, value in want.items():
        assert printed[name] == pytest.approx(value, abs=1e-4), name
    # on this applicant the default metric (n_subsets=100) prefers the other candidate, so the
    # field did reach the objective
    default = direct(metrics.FaithfulnessCorrelation())
    assert max(abs(printed[n] - v) for n, v in default.items()) > 1e-2


def test_an_unknown_objective_lists_the_metrics(capsys):
    code, err = run_cli(capsys, "explain", "--model", "demo-credit", *BEST_OF,
                        "--objective", "infidelty")
    assert code == 2
    assert err.startswith("xai: error: --objective 'infidelty' is not a metric name.")
    assert "Did you mean 'infidelity'?" in err
    assert all(name in err for name in metrics.METRICS.names())
    assert "Traceback" not in err


def test_an_objective_for_a_method_that_takes_none_is_refused(capsys):
    code, err = run_cli(capsys, "explain", "--model", "demo-credit", "--method", "occlusion",
                        "--objective", "infidelity")
    assert code == 2
    assert err.startswith("xai: error: --objective 'infidelity' is the metric that a method "
                          "choosing among explanations optimises, and none of the chosen methods "
                          "(occlusion) takes an objective. Methods that take one: ")
    assert "best_of" in err.split("Methods that take one: ")[1]
    assert "occlusion" not in err.split("Methods that take one: ")[1]


@pytest.mark.parametrize(("args", "message"), [
    # the method's own typed error, printed as one line
    ((*BEST_OF,), "The 'objective' parameter of BestOf is required: pass objective=... to "
                  "xai.explain."),
    (("--method", "occlusion", "--param", "objective.sigma=0.5"),
     "--param 'objective.sigma=0.5' sets a field of the --objective metric, and no --objective "
     "is given. Add --objective NAME (e.g. --objective infidelity), or drop the --param."),
    ((*BEST_OF, "--objective", "infidelity", "--param", "objective.n_samples=5"),
     "--param objective.n_samples is not a field of the --objective metric 'infidelity' "
     "(Infidelity). Its fields: n_perturbations, normalize, perturbation, sigma."),
    ((*BEST_OF, "--objective", "infidelity", "--param", "best_of.objective=infidelity"),
     "--objective 'infidelity' and --param best_of.objective both set the objective of "
     "'best_of'. Give it once, with --objective."),
])
def test_objective_mistakes_are_one_line_errors(args, message, capsys):
    code, err = run_cli(capsys, "explain", "--model", "demo-credit", *args)
    assert (code, err) == (2, f"xai: error: {message}\n")


def test_score_passes_the_objective_to_the_methods_that_take_one(x_test, tmp_path, capsys):
    x_test.iloc[:3].reset_index(drop=True).to_csv(tmp_path / "a.csv", index=False)
    out = tmp_path / "s.jsonl"
    argv = ["score", "--model", "demo-credit", "--data", str(tmp_path / "a.csv"),
            "--methods", "occlusion,best_of", "--objective", "infidelity",
            "--param", 'best_of.candidates=["occlusion", "lime"]',
            "--param", "objective.n_perturbations=8", "--quiet", "--out", str(out)]
    code = main(argv)
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    rows = pd.DataFrame(read_rows(out))
    assert list(rows["method"]) == ["occlusion", "best_of"] * 3
    objective = metrics.Infidelity(n_perturbations=8)
    job = Job(methods=["occlusion", ("best_of", {"objective": objective,
                                                  "candidates": CANDIDATES})])
    want = score("demo-credit", x_test.iloc[:3].reset_index(drop=True), job,
                 show_progress=False)
    pd.testing.assert_frame_equal(rows.drop(columns="elapsed"), want.drop(columns="elapsed"))
    assert (rows["status"] == "ok").all()
    # the objective's fields reached it, and the record names them: --resume with the same
    # flags matches the recorded job (all examples skipped)
    assert "n_perturbations=8" in rows.loc[rows["method"] == "best_of", "method_params"].iloc[0]
    record = json.loads(out.with_name("s.jsonl.job.json").read_text())
    assert record["method_params"]["best_of"]["objective"]["params"]["n_perturbations"] == 8
    assert "objective" not in record["method_params"]["occlusion"]
    code = main([*argv, "--resume"])
    assert code == 0, capsys.readouterr().err
    assert capsys.readouterr().out.splitlines()[1].split()[:2] == ["0", "3"]


def test_score_refuses_an_objective_no_chosen_method_takes(x_test, tmp_path, capsys):
    x_test.iloc[:3].to_csv(tmp_path / "a.csv", index=False)
    code, err = run_cli(capsys, "score", "--model", "demo-credit", "--data",
                        str(tmp_path / "a.csv"), "--methods", "occlusion,lime",
                        "--objective", "infidelity", "--out", str(tmp_path / "s.jsonl"))
    assert code == 2
    assert "none of the chosen methods (occlusion, lime) takes an objective" in err
    assert not (tmp_path / "s.jsonl").exists()


def test_explain_bee_with_an_objective_prints_the_python_values(capsys):
    from xai.demo import load_sentiment_model

    text = "a gripping, beautifully acted film"
    code = main(["explain", "--model", "demo-sentiment", "--text", text, "--method", "bee",
                 "--objective", "infidelity", "--param", "objective.n_perturbations=16",
                 "--param", "bee.n_baselines=3", "--param", "bee.n_steps=4"])
    out = capsys.readouterr()
    assert code == 0, out.err
    exp = xai.explain(load_sentiment_model(), [text], method="bee", n_baselines=3, n_steps=4,
                      objective=metrics.Infidelity(n_perturbations=16), random_state=0)
    _, printed = _printed(out.out)
    want = dict(zip(exp.feature_names[0], exp.values[0, 0].tolist(), strict=True))
    assert printed.keys() == want.keys()
    for name, value in want.items():
        assert printed[name] == pytest.approx(value, abs=1e-4), name
