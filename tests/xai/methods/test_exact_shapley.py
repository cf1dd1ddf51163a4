"""``max_exact``: exact Shapley values by enumerating every coalition, for shapley_sampling and
kernel_shap, on every modality; per example, so one call can mix exact and sampled rows.

References: captum's exact ``ShapleyValues`` (all d! orderings) on captum's own basic models, the
brute-force enumeration of tests/models.py, and for the sampled rows the permutations the method
draws, credited here by hand.
"""

from __future__ import annotations

import re
from typing import Any

import models
import pytest
import torch
from captum.attr import ShapleyValues
from captum.testing.helpers.basic_models import BasicLinearReLULinear, BasicModel_MultiLayer

import xai
from xai._validation import check_random_state
from xai.exceptions import InvalidParameterError
from xai.methods._base import example_generators

# BasicModel_MultiLayer is piecewise linear with kinks at these scales: its games are not additive
X3 = torch.tensor([[20.0, 50.0, 30.0], [1.0, -2.0, 3.0], [0.0, 100.0, 10.0], [4.0, 3.0, 5.0]])


def _relu_net(d: int = 5, seed: int = 0) -> torch.nn.Module:
    """captum's BasicLinearReLULinear(d), weights drawn from a seeded generator (O(1) outputs)."""
    model = BasicLinearReLULinear(d, out_features=6, bias=True)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    return model


def _x(n: int, d: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


class _Rows:
    """A model function (numpy rows in, as CallableAdapter calls it) that counts its rows."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model, self.rows = model, 0

    def __call__(self, x: Any) -> torch.Tensor:
        self.rows += x.shape[0]
        with torch.no_grad():
            out: torch.Tensor = self.model(torch.as_tensor(x, dtype=torch.float32))
        return out


# -- shapley_sampling ---------------------------------------------------------------------------
def test_default_is_exact_and_equals_captums_exact_shapley_values():
    model = BasicModel_MultiLayer()
    exp = xai.explain(model, X3, method="shapley_sampling", target="all", random_state=0)
    for k in range(2):
        ref = ShapleyValues(model).attribute(X3, target=k)  # every one of the 3! orderings
        torch.testing.assert_close(exp.values[:, k], ref, rtol=1e-6, atol=1e-4)
    assert exp.params["max_exact"] == 1024
    assert exp.extras["exact"].dtype == torch.bool
    assert exp.extras["exact"].tolist() == [True] * 4
    assert bool((exp.extras["stderr"] == 0).all())
    assert int(exp.extras["n_rows"].sum()) == 4 * 2**3  # each coalition of each example scored once


def test_exact_record_is_per_row_and_survives_save_and_load(tmp_path):
    exp = xai.explain(BasicModel_MultiLayer(), X3, method="shapley_sampling", target=0,
                      max_exact=8, random_state=0)
    exp.save(tmp_path / "exp")
    back = xai.Explanation.load(tmp_path / "exp")
    assert back.extras["exact"].dtype == torch.bool
    assert back.extras["exact"].tolist() == [True] * 4
    assert back.params["max_exact"] == 8
    assert exp[[0, 2]].extras["exact"].tolist() == [True, True]


def test_exact_values_do_not_depend_on_the_seed_or_n_permutations():
    model = BasicModel_MultiLayer()
    a = xai.explain(model, X3, method="shapley_sampling", target=0, random_state=0)
    b = xai.explain(model, X3, method="shapley_sampling", target=0, random_state=1,
                    n_permutations=2, antithetic=False)
    torch.testing.assert_close(a.values, b.values, rtol=0, atol=0)
    # while sampling with 2 orderings is not exact on this model
    s = xai.explain(model, X3, method="shapley_sampling", target=0, random_state=1,
                    n_permutations=2, antithetic=False, max_exact=0)
    assert s.extras["exact"].tolist() == [False] * 4
    assert float((s.values - a.values).abs().max()) > 1.0


def test_exact_efficiency_and_model_rows_on_a_relu_net():
    model, x = _relu_net(5), _x(3, 5)
    f = _Rows(model)
    exp = xai.explain(xai.CallableAdapter(f, n_features=5), x.numpy(), method="shapley_sampling",
                      batch_size=7, random_state=0)
    ref = ShapleyValues(model).attribute(x, target=0)
    torch.testing.assert_close(exp.values[:, 0], ref, rtol=0, atol=1e-5)
    torch.testing.assert_close(exp.values.sum(-1).double(),
                               (exp.predictions - exp.base_values).double(), rtol=0, atol=1e-6)
    assert exp.extras["exact"].tolist() == [True] * 3
    assert int(exp.extras["n_rows"].sum()) == 3 * 2**5
    assert f.rows == 3 + 3 * 2**5  # the predictions at the inputs, then every coalition once
    assert int(exp.extras["n_model_calls"]) == -(-3 * 2**5 // 7)  # packed 7 rows per call


def test_exact_dummy_feature_gets_exactly_zero():
    w = torch.tensor([1.0, 0.0, -2.0, 0.5])
    exp = xai.explain(models.Linear(w), _x(3, 4), method="shapley_sampling", random_state=0)
    assert exp.extras["exact"].tolist() == [True] * 3
    assert bool((exp.values[:, 0, 1] == 0).all())
    torch.testing.assert_close(exp.values[:, 0], w * _x(3, 4), rtol=0, atol=1e-6)


def test_one_feature_is_exact_with_two_rows():
    model = models.Linear(torch.tensor([3.0]), 1.0)
    exp = xai.explain(model, torch.tensor([[2.0], [-1.0]]), method="shapley_sampling")
    torch.testing.assert_close(exp.values[:, 0, 0], torch.tensor([6.0, -3.0]), rtol=0, atol=0)
    assert exp.extras["exact"].tolist() == [True, True]
    assert int(exp.extras["n_rows"].sum()) == 2 * 2


@pytest.mark.parametrize(("max_exact", "exact"), [(2**5, True), (2**5 - 1, False), (0, False)])
def test_threshold_is_two_to_the_d(max_exact, exact):
    exp = xai.explain(_relu_net(5), _x(2, 5), method="shapley_sampling", max_exact=max_exact,
                      n_permutations=4, random_state=0)
    assert exp.extras["exact"].tolist() == [exact, exact]
    assert int(exp.extras["n_rows"].sum()) == 2 * (2**5 if exact else 4 * (5 - 1) + 2)


def test_above_the_threshold_the_values_are_the_sampled_ones_of_the_same_seed():
    # d = 11: 2**11 > 1024, so the default samples, with the very draws it made before max_exact
    # existed: example i's permutations come from example_generators(rng, n)[i]. Credit them here.
    d, n, seed = 11, 2, 5
    model, x = _relu_net(d), _x(n, d)
    exp = xai.explain(model, x, method="shapley_sampling", n_permutations=6, random_state=seed)
    off = xai.explain(model, x, method="shapley_sampling", n_permutations=6, random_state=seed,
                      max_exact=0)
    assert exp.extras["exact"].tolist() == [False] * n
    torch.testing.assert_close(exp.values, off.values, rtol=0, atol=0)
    gens = example_generators(check_random_state(seed), n)
    method = xai.ShapleySampling(n_permutations=6)
    for i in range(n):
        perms = method.permutations(d, gens[i])  # (6, d): 3 draws, each followed by its reverse
        phi = torch.zeros(d, dtype=torch.float64)
        for p in perms:
            keep = torch.zeros(d + 1, d)
            for k in range(d):
                keep[k + 1:, p[k]] = 1.0
            with torch.no_grad():
                v = model(x[i] * keep)[:, 0].double()
            phi[p] += v[1:] - v[:-1]
        torch.testing.assert_close(exp.values[i, 0].double(), phi / 6, rtol=0, atol=1e-5)
    assert float(exp.extras["stderr"].min()) >= 0
    assert float(exp.extras["stderr"].max()) > 0


def test_texts_of_different_lengths_mix_exact_and_sampled_rows(tiny_bert):
    model, tok = tiny_bert
    texts = ["the movie was great", "a very boring plot and bad actors !"]
    kw = {"method": "shapley_sampling", "target": 1, "n_permutations": 4, "random_state": 3}
    exp = xai.explain((model, tok), texts, max_exact=16, **kw)
    d = [fs.n_features for fs in exp.features]
    assert d[0] == 4
    assert 2 ** d[1] > 16
    assert exp.extras["exact"].tolist() == [True, False]
    assert int(exp.extras["n_rows"].sum()) == 2**4 + 4 * (d[1] - 1) + 2
    adapter = xai.as_adapter((model, tok))
    fs = exp.features[0]

    def value(keep):
        with torch.no_grad():
            return adapter.predict(fs.mask(keep))[:, 1]

    torch.testing.assert_close(exp.values[0, 0, :4].double(), models.exact_shapley(value, 4),
                               rtol=0, atol=1e-5)
    assert bool((exp.extras["stderr"][0, 0, :4] == 0).all())
    assert bool((exp.extras["stderr"][1, 0, :d[1]] > 0).any())
    # the sampled row is the one max_exact=0 gives with the same seed; the exact row is not
    off = xai.explain((model, tok), texts, max_exact=0, **kw)
    torch.testing.assert_close(exp.values[1], off.values[1], rtol=0, atol=0)
    assert not torch.equal(exp.values[0], off.values[0])
    # a row keeps its own record
    assert exp[1:].extras["exact"].tolist() == [False]


def test_cost_counts_two_to_the_d_rows_per_exact_example(tiny_bert):
    model, tok = tiny_bert
    adapter = xai.as_adapter((model, tok))
    texts = ["the movie was great", "a very boring plot and bad actors !"]
    method = xai.ShapleySampling(n_permutations=4, max_exact=16)
    features = method.feature_spaces(adapter, adapter.prepare(texts))
    d1 = features[1].n_features
    cost = method.cost(features, 1, 64, 0)
    assert cost is not None
    assert cost.rows == 2**4 + 4 * (d1 - 1) + 2
    assert cost.parameter == "n_permutations"  # the sampled row has more rows than the exact one
    exact_only = xai.ShapleySampling(max_exact=2**d1).cost(features, 1, 64, 0)
    assert exact_only is not None
    assert (exact_only.rows, exact_only.parameter) == (2**4 + 2**d1, "max_exact")


def test_an_absurd_max_exact_is_refused_before_any_model_call():
    f = _Rows(models.Linear(torch.ones(40)))
    with pytest.raises(InvalidParameterError, match=re.escape(
            "The 'max_exact' parameter of ShapleySampling is too large: max_exact=1099511627776 "
            "would evaluate")) as err:
        xai.explain(xai.CallableAdapter(f, n_features=40), torch.ones(1, 40).numpy(),
                    method="shapley_sampling", max_exact=2**40)
    assert err.value.parameter == "max_exact"
    assert f.rows == 1  # only the prediction at the input


@pytest.mark.parametrize("cls", [xai.ShapleySampling, xai.KernelShap])
@pytest.mark.parametrize("value", [-1, 2.5, "all"])
def test_invalid_max_exact_names_the_parameter(cls, value):
    with pytest.raises(InvalidParameterError, match=re.escape(
            f"The 'max_exact' parameter of {cls.__name__} must be an int in the range [0, inf). "
            f"Got {value!r} instead.")) as err:
        cls(max_exact=value)
    assert err.value.parameter == "max_exact"


# -- kernel_shap --------------------------------------------------------------------------------
def test_exact_kernel_shap_equals_exact_shapley_sampling():
    pytest.importorskip("shap")
    for model, x in ((BasicModel_MultiLayer(), X3), (_relu_net(6), _x(3, 6))):
        n, d = x.shape
        # n_samples=10 < 2**d - 2: without max_exact shap would sample
        ks = xai.explain(model, x, method="kernel_shap", target=0, n_samples=10, random_state=0)
        sv = xai.explain(model, x, method="shapley_sampling", target=0, random_state=0)
        torch.testing.assert_close(ks.values, sv.values, rtol=0, atol=1e-5)
        torch.testing.assert_close(ks.values, ShapleyValues(model).attribute(x, target=0)
                                   .unsqueeze(1), rtol=1e-6, atol=1e-4)
        assert ks.extras["exact"].dtype == torch.bool
        assert ks.extras["exact"].tolist() == [True] * n
        assert ks.extras["n_samples"].tolist() == [2**d - 2] * n
        assert int(ks.extras["n_rows"].sum()) == n * 2**d  # the 2 ends and shap's 2**d - 2
        torch.testing.assert_close(ks.values.sum(-1).double(),
                                   (ks.predictions - ks.base_values).double(), rtol=1e-6,
                                   atol=1e-5)


def test_kernel_shap_counts_its_model_rows():
    pytest.importorskip("shap")
    model, x = _relu_net(5), _x(2, 5)
    f = _Rows(model)
    exp = xai.explain(xai.CallableAdapter(f, n_features=5), x.numpy(), method="kernel_shap",
                      n_samples=10, random_state=0)
    assert f.rows == 2 + 2 * 2**5
    assert int(exp.extras["n_rows"].sum()) == 2 * 2**5
    cost = xai.KernelShap(n_samples=10).cost(exp.features, 1, 64, 0)
    assert (cost.rows, cost.parameter) == (2 * 2**5, "max_exact")
    sampled = xai.KernelShap(n_samples=10, max_exact=0).cost(exp.features, 1, 64, 0)
    assert (sampled.rows, sampled.parameter) == (2 * (10 + 2), "n_samples")


def test_kernel_shap_above_the_threshold_samples_as_before():
    pytest.importorskip("shap")
    # d = 11: 2**11 > 1024, so max_exact changes nothing (shap parity on this path is pinned in
    # test_kernel_shap.py::test_equals_shap_on_the_same_sampling_path)
    model, x = _relu_net(11), _x(2, 11)
    kw = {"method": "kernel_shap", "target": 0, "n_samples": 60, "random_state": 4}
    exp = xai.explain(model, x, **kw)
    off = xai.explain(model, x, max_exact=0, **kw)
    assert exp.extras["exact"].tolist() == [False, False]
    assert exp.extras["n_samples"].tolist() == [60, 60]
    torch.testing.assert_close(exp.values, off.values, rtol=0, atol=0)
    exact = xai.explain(model, x, max_exact=2**11, **kw)
    assert exact.extras["exact"].tolist() == [True, True]
    assert float((exp.values - exact.values).abs().max()) > 1e-3  # 60 samples are not exact
    ref = xai.explain(model, x, method="shapley_sampling", target=0, max_exact=2**11)
    torch.testing.assert_close(exact.values, ref.values, rtol=0, atol=1e-5)


def test_kernel_shap_exact_record():
    pytest.importorskip("shap")
    model, x = _relu_net(5), _x(2, 5)
    # enough samples enumerate every coalition even without max_exact
    full = xai.explain(model, x, method="kernel_shap", target=0, max_exact=0, n_samples=30)
    assert full.extras["exact"].tolist() == [True, True]
    # l1_reg selects features even when shap enumerates: not Shapley values, not "exact"
    sel = xai.explain(model, x, method="kernel_shap", target=0, l1_reg="num_features(2)",
                      backend="shap")
    assert sel.extras["n_samples"].tolist() == [30, 30]
    assert sel.extras["exact"].tolist() == [False, False]
    assert (sel.values[:, 0] != 0).sum(1).tolist() == [2, 2]


def test_kernel_shap_mixes_exact_and_sampled_texts(tiny_bert):
    pytest.importorskip("shap")
    model, tok = tiny_bert
    texts = ["the movie was great", "a very boring plot and bad actors !"]
    kw = {"method": "kernel_shap", "target": 1, "n_samples": 20, "random_state": 0}
    exp = xai.explain((model, tok), texts, max_exact=16, **kw)
    d1 = exp.features[1].n_features
    assert exp.extras["exact"].tolist() == [True, False]
    assert exp.extras["n_samples"].tolist() == [2**4 - 2, 20]
    assert int(exp.extras["n_rows"].sum()) == 2 * 2 + (2**4 - 2) + 20
    sv = xai.explain((model, tok), texts[:1], method="shapley_sampling", target=1)
    torch.testing.assert_close(exp.values[0, 0, :4], sv.values[0, 0], rtol=0, atol=1e-5)
    off = xai.explain((model, tok), texts, max_exact=0, **kw)
    torch.testing.assert_close(exp.values[1, 0, :d1], off.values[1, 0, :d1], rtol=0, atol=0)
