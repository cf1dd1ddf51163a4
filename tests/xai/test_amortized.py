"""AmortizedExplainer (issue 18): known answers, efficiency, model checks, persistence, seeds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import metrics
import xai
from xai import AmortizedExplainer
from xai.exceptions import IncompatibleModelError, InvalidInputError, InvalidParameterError

W = torch.tensor([1.0, -2.0, 0.5, 3.0, 0.0, -1.0])


class Linear(torch.nn.Module):
    """f = w.x + 0.7 and its negation: Shapley values (baseline 0) are w * x and -w * x."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x @ W.to(x.dtype) + 0.7
        return torch.stack([out, -out], 1)


class Interaction(torch.nn.Module):
    """f = w.x + 1.5 x0 x1 (spec FA-3): Shapley values w_i x_i, plus 0.75 x0 x1 for 0 and 1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x @ W.to(x.dtype) + 1.5 * x[:, 0] * x[:, 1]).unsqueeze(1)


@pytest.fixture(scope="module")
def inputs() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((360, 6)).astype(np.float32)


LINEAR = {"teacher_params": {"baseline": "zeros", "n_permutations": 4}, "hidden": (),
          "epochs": 40, "lr": 0.02, "patience": 40, "random_state": 0, "show_progress": False}


@pytest.fixture(scope="module")
def fitted(inputs: np.ndarray) -> dict[str, AmortizedExplainer]:
    return {obj: AmortizedExplainer.fit(Linear(), inputs[:300], objective=obj, **LINEAR)
            for obj in ("fastshap", "distill")}


@pytest.mark.parametrize("objective", ["fastshap", "distill"])
def test_an_additive_model_gets_its_exact_shapley_values(fitted, inputs, objective):
    test = inputs[300:]
    exp = xai.explain(Linear(), test, method=fitted[objective], target="all")
    exact = torch.from_numpy(test) * W
    for out, sign in ((0, 1.0), (1, -1.0)):  # the second output is the negated model
        rel = float((exp.values[:, out] - sign * exact).abs().max() / exact.abs().max())
        assert rel < 1e-2
    report = fitted[objective].report
    assert report.rmse_exact is not None
    assert report.rmse_exact < 1e-2
    assert report.teacher_rmse_exact == pytest.approx(0.0, abs=1e-6)  # sampling is exact here


def test_values_sum_to_f_x_minus_f_baseline_to_float_precision(fitted, inputs):
    model = Linear()
    test = torch.from_numpy(inputs[300:])
    exp = xai.explain(model, test, method=fitted["fastshap"], target=0)
    gap = (model(test)[:, 0] - model(torch.zeros(1, 6))[0, 0]).double()
    torch.testing.assert_close(exp.values[:, 0].double().sum(-1), gap, rtol=0, atol=1e-5)
    assert exp.extras["efficiency_gap"] < 1e-12  # in float64 before the values are stored
    assert exp.base_values[:, 0].tolist() == pytest.approx([0.7] * len(test))
    # f(x) per row, and the one shared baseline row once; a second call on the same model
    # reuses f(baseline) and gives the same values
    assert int(exp.extras["n_rows"].sum()) == len(test) + 1
    again = xai.explain(model, test, method=fitted["fastshap"], target=0)
    assert int(again.extras["n_rows"].sum()) == len(test)
    assert torch.equal(again.values, exp.values)
    assert torch.equal(again.base_values, exp.base_values)


def test_fastshap_learns_the_interaction_shares_without_teacher_values(inputs):
    # FA-3: the minimiser of FastSHAP's normalised objective is the Shapley value, which splits
    # 1.5 x0 x1 equally between players 0 and 1; an MLP explainer gets close to it
    am = AmortizedExplainer.fit(Interaction(), inputs[:300], objective="fastshap",
                                teacher_params={"baseline": "zeros"}, hidden=(64, 64),
                                epochs=60, lr=5e-3, patience=10, random_state=0,
                                show_progress=False)
    test = torch.from_numpy(inputs[300:])
    exact = test * W
    exact[:, :2] += 0.75 * (test[:, 0] * test[:, 1]).unsqueeze(1)
    got = xai.explain(Interaction(), test, method=am, target=0).values[:, 0]
    err = float((got - exact).pow(2).mean().sqrt() / exact.pow(2).mean().sqrt())
    assert err < 0.15
    # without the interaction shares (additive values only) the error would be much larger
    additive = float((test * W - exact).pow(2).mean().sqrt() / exact.pow(2).mean().sqrt())
    assert err < additive / 2
    assert am.report.rmse_exact is not None  # d = 6: the report enumerates exact values
    assert am.report.rmse_exact < 0.2 * float(exact.pow(2).mean().sqrt())


def test_the_same_seed_gives_the_same_explainer(inputs):
    kw = {**LINEAR, "epochs": 3}
    a = AmortizedExplainer.fit(Linear(), inputs[:120], **kw)
    b = AmortizedExplainer.fit(Linear(), inputs[:120], **kw)
    c = AmortizedExplainer.fit(Linear(), inputs[:120], **{**kw, "random_state": 1})
    for k, v in a.network.state_dict().items():
        assert torch.equal(v, b.network.state_dict()[k])
    assert not all(torch.equal(v, c.network.state_dict()[k])
                   for k, v in a.network.state_dict().items())
    assert a.report.history[-1]["val_loss"] == b.report.history[-1]["val_loss"]


def test_save_and_load_round_trip_bit_for_bit(fitted, inputs, tmp_path):
    am = fitted["distill"]
    folder = am.save(tmp_path / "explainer")
    assert sorted(p.name for p in folder.iterdir()) == ["explainer.json", "explainer.safetensors"]
    back = AmortizedExplainer.load(folder, Linear())
    for k, v in am.network.state_dict().items():
        assert torch.equal(v, back.network.state_dict()[k])
    assert back.record == am.record
    assert back.report == am.report
    test = inputs[300:]
    assert torch.equal(xai.explain(Linear(), test, method=back, target=0).values,
                       xai.explain(Linear(), test, method=am, target=0).values)


def test_another_model_or_feature_count_is_refused(fitted, inputs, tmp_path):
    am = fitted["fastshap"]
    folder = am.save(tmp_path / "explainer")

    class Other(Linear):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return super().forward(x) * 1.01

    with pytest.raises(IncompatibleModelError, match="fitted to another model"):
        AmortizedExplainer.load(folder, Other())
    with pytest.raises(IncompatibleModelError, match="fitted to another model"):
        xai.explain(Other(), inputs[300:], method=am, target=0)
    with pytest.raises(InvalidInputError, match="fitted on 6 features, and the inputs have 5"):
        xai.explain(torch.nn.Linear(5, 2), inputs[300:, :5], method=am, target=0)
    with pytest.raises(InvalidParameterError, match="not a saved amortized explainer"):
        AmortizedExplainer.load(tmp_path / "nothing", Linear())
    (folder / "explainer.json").write_text("{", encoding="utf-8")
    with pytest.raises(InvalidParameterError, match="cannot be read"):
        AmortizedExplainer.load(folder, Linear())


def test_distill_caches_the_teacher_so_a_second_fit_scores_no_teacher_row(inputs, tmp_path):
    kw = {**LINEAR, "epochs": 2, "objective": "distill", "cache": tmp_path / "cache"}
    first = AmortizedExplainer.fit(Linear(), inputs[:120], **kw)
    files = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len(files) == 2
    assert all(f.startswith("teacher-") for f in files)
    second = AmortizedExplainer.fit(Linear(), inputs[:120], **kw)
    # the second fit reads the teacher's values back: exactly the teacher's rows are saved
    per_row = xai.explain(Linear(), inputs[:1], method="shapley_sampling", target="all",
                          **LINEAR["teacher_params"]).extras["n_rows"]
    assert first.report.model_rows - second.report.model_rows == 120 * int(per_row[0])
    assert torch.equal(first.network.state_dict()["body.0.weight"],
                       second.network.state_dict()["body.0.weight"])


def test_metrics_score_amortized_explanations(fitted, inputs):
    exp = xai.explain(Linear(), inputs[300:320], method=fitted["fastshap"], target=0)
    assert exp.method == "amortized"
    res = metrics.evaluate(exp, Linear(), ["faithfulness_correlation"], random_state=0)
    # exact Shapley values of a linear model: the attribution sum of a removed subset equals
    # the output drop, so the correlation is 1 up to the explainer's tiny error
    assert res["faithfulness_correlation"].mean() == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize(("kwargs", "parameter"), [
    ({"objective": "kernel"}, "objective"),
    ({"epochs": 0}, "epochs"),
    ({"hidden": "128"}, "hidden"),
    ({"lr": -1.0}, "lr"),
    ({"n_coalitions": 1}, "n_coalitions"),
    ({"teacher_params": {"random_state": 3}}, "teacher_params"),
])
def test_bad_fit_arguments_are_typed_errors(inputs, kwargs, parameter):
    with pytest.raises(InvalidParameterError) as err:
        AmortizedExplainer.fit(Linear(), inputs[:40], **{**LINEAR, **kwargs})
    assert err.value.parameter == parameter


def test_xai_score_runs_a_saved_explainer_on_the_demo_credit_model(tmp_path, capsys):
    from xai.batch import Job, load_model, score
    from xai.cli import main
    from xai.demo import split_credit

    loaded = load_model("demo-credit")
    x_train, x_test, _, _ = split_credit(random_state=0)
    am = AmortizedExplainer.fit(loaded, x_train.iloc[:120], teacher_params={"n_permutations": 2},
                                epochs=2, random_state=0, show_progress=False)
    am.save(tmp_path / "explainer")
    x_test.iloc[:30].to_parquet(tmp_path / "applicants.parquet")
    out = tmp_path / "scores.parquet"
    assert main(["score", "--model", "demo-credit", "--data", str(tmp_path / "applicants.parquet"),
                 "--method", f"amortized:{tmp_path / 'explainer'}/", "--out", str(out),
                 "--quiet"]) == 0, capsys.readouterr().err
    import pandas as pd

    table = pd.read_parquet(out)
    assert set(table["method"]) == {"amortized"}
    assert set(table["status"]) == {"ok"}
    want = xai.explain(loaded.model, x_test.iloc[:30], method=am, target="1").values[:, 0]
    got = torch.tensor(np.stack(table["attributions"].to_numpy()), dtype=torch.float32)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    direct = score(loaded, x_test.iloc[:30], Job(methods=[am], target="1"), show_progress=False)
    assert direct["attributions"].map(list).tolist() == table["attributions"].map(list).tolist()
    # another model is refused before any row is scored, in one line
    assert main(["score", "--model", "demo-sentiment", "--data",
                 str(tmp_path / "applicants.parquet"), "--method",
                 f"amortized:{tmp_path / 'explainer'}", "--out", str(tmp_path / "s.parquet")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("xai: error: This amortized explainer was fitted to a model with 20 ")
    assert err.count("\n") == 1
