"""best_of: per example the candidate the objective rates best, with the evidence."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import metrics
import xai
from xai.exceptions import InvalidParameterError, UnknownNameError
from xai.testing._params import l1_size


@pytest.fixture(scope="module")
def credit():
    from xai.demo import credit_background, load_credit_model, split_credit

    return (load_credit_model(), split_credit()[1].iloc[:6],
            {"background": credit_background().iloc[:32]})


CANDIDATES = [("occlusion", {"baseline": "zeros"}), ("occlusion", {"baseline": "mean"}),
              ("kernel_shap", {"n_samples": 200})]


def test_one_candidate_equals_that_candidate(credit):
    model, rows, bg = credit
    one = xai.explain(model, rows, method="best_of", objective=metrics.Comprehensiveness(),
                      candidates=[("occlusion", {"baseline": "mean"})], random_state=0,
                      adapter_options=bg)
    ref = xai.explain(model, rows, method="occlusion", baseline="mean", adapter_options=bg)
    assert torch.equal(one.values, ref.values)
    assert torch.equal(one.base_values, ref.base_values)
    assert [c["index"] for c in one.extras["chosen"]] == [0] * len(rows)


def test_the_choice_is_never_worse_than_any_candidate(credit):
    model, rows, bg = credit
    objective = metrics.Comprehensiveness()
    exp = xai.explain(model, rows, method="best_of", objective=objective,
                      candidates=CANDIDATES, random_state=0, adapter_options=bg)
    table = exp.extras["objective_values"]  # (examples, candidates)
    chosen = torch.tensor([c["index"] for c in exp.extras["chosen"]])
    torch.testing.assert_close(table[torch.arange(len(rows)), chosen], table.max(dim=1).values)
    # the returned explanation scores what the table says, on the metric itself
    again = objective(exp, model, random_state=0).scores[:, 0]
    torch.testing.assert_close(again, table.max(dim=1).values)
    assert exp.extras["candidates"] == ["occlusion(baseline='zeros')",
                                        "occlusion(baseline='mean')",
                                        "kernel_shap(n_samples=200)"]
    assert exp.extras["direction"] == "max"
    assert set(exp.extras["chosen"][0]["objective"]) == set(exp.extras["candidates"])


def test_a_callable_objective_with_direction_min_picks_the_sparser_map():
    w = torch.tensor([[1.0, -2.0, 0.5, 3.0]])
    model = torch.nn.Linear(4, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(w)
    x = torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.0, 2.0, 0.0, 1.0]])
    exp = xai.explain(model, x, method="best_of", objective=l1_size, direction="min",
                      candidates=[("occlusion", {}), ("occlusion", {"window": 2})])
    # leave-one-out on a linear model: w * x; windows of 2 average the two drops per feature
    single = w * x
    pairs = []
    for row in single:
        drops = [row[k] + row[k + 1] for k in range(3)]
        pairs.append(torch.tensor([drops[0], (drops[0] + drops[1]) / 2,
                                   (drops[1] + drops[2]) / 2, drops[2]]))
    pairs_t = torch.stack(pairs)
    norms = torch.stack([single.abs().sum(1), pairs_t.abs().sum(1)], dim=1)
    torch.testing.assert_close(exp.extras["objective_values"], norms)
    pick = norms.argmin(dim=1)
    want = torch.stack([single, pairs_t])[pick, torch.arange(2)]
    torch.testing.assert_close(exp.values[:, 0], want)


def test_a_plain_callable_needs_a_direction():
    with pytest.raises(InvalidParameterError, match="Pass direction='max' or direction='min'"):
        xai.BestOf(objective=l1_size, candidates=["occlusion"])


def test_a_metric_direction_cannot_be_contradicted():
    with pytest.raises(InvalidParameterError, match="Infidelity is lower-is-better, but "
                       "direction='max'"):
        xai.BestOf(objective=metrics.Infidelity(), direction="max", candidates=["occlusion"])


@pytest.mark.parametrize(("candidates", "error", "match"), [
    ([], InvalidParameterError, "non-empty list of method names"),
    ([("occlusion", 3)], InvalidParameterError, "non-empty list of method names"),
    (["occlusoin"], UnknownNameError, "occlusion"),
    ([("occlusion", {"windo": 2})], InvalidParameterError, "unexpected parameter 'windo'"),
    ([("occlusion", {}), ("integrated_gradients", {"multiply_by_inputs": False})],
     InvalidParameterError, "different scales"),
])
def test_bad_candidates_are_typed_errors(candidates, error, match):
    with pytest.raises(error, match=match):
        xai.BestOf(objective=metrics.Comprehensiveness(), candidates=candidates)


def test_candidates_over_different_features_are_refused(credit):
    model, rows, bg = credit
    with pytest.raises(InvalidParameterError, match="explain different features"):
        xai.explain(model, rows, method="best_of", objective=metrics.Comprehensiveness(),
                    candidates=[("occlusion", {}), ("occlusion", {"feature_groups":
                                                                  {"loan": ["duration",
                                                                            "credit_amount"]}})],
                    adapter_options=bg)


def test_same_seed_same_choice(credit):
    model, rows, bg = credit
    kw = {"method": "best_of", "objective": metrics.FaithfulnessCorrelation(n_subsets=20),
          "candidates": CANDIDATES, "adapter_options": bg}
    a = xai.explain(model, rows, random_state=3, **kw)
    b = xai.explain(model, rows, random_state=3, **kw)
    assert torch.equal(a.values, b.values)
    assert np.array_equal(a.extras["objective_values"].numpy(), b.extras["objective_values"].numpy())


def test_every_metric_is_an_objective_with_its_direction():
    from xai._objective import MetricLike, as_objective

    for name in metrics.METRICS.names():
        cls = metrics.METRICS.get(name)
        params = cls._test_params()[0] if cls.needs_params else {}
        metric = cls(**params)
        assert isinstance(metric, MetricLike), name
        obj = as_objective(metric, None, owner="test")
        assert obj.direction == ("max" if cls.higher_is_better else "min"), name
