"""KernelShap: parity with shap.KernelExplainer, exact Shapley values, efficiency, seeding."""

from __future__ import annotations

import itertools
import math
import re

import models
import numpy as np
import pytest
import torch

import xai
from xai._validation import check_random_state, int_seed
from xai.exceptions import InvalidParameterError

shap = pytest.importorskip("shap")


def _logreg(d: int, seed: int = 0):
    """A LogisticRegression on d numeric features, its data as float32-representable float64."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    # Inputs are rounded to float32 once, so that ours (float32 tensors) and shap (float64)
    # evaluate the model at the very same points; what remains is float32 rounding of scores.
    x = rng.normal(size=(200, d)).astype(np.float32).astype(np.float64)
    w = rng.normal(size=d)
    y = (x @ w + 0.3 * rng.normal(size=200) > 0).astype(int)
    clf = LogisticRegression(max_iter=1000).fit(x, y)
    mean_row = x.mean(0).astype(np.float32).astype(np.float64)
    return clf, x, mean_row


def _shap_reference(clf, x, background, *, seed=None, **kwargs):
    """shap's values row by row, the global numpy RNG seeded before each row (as ours does)."""
    state = _global_state()
    try:
        explainer = shap.KernelExplainer(lambda a: clf.predict_proba(a)[:, 1], background[None],
                                         link=kwargs.pop("link", "identity"))
        rows = []
        for i in range(x.shape[0]):
            if seed is not None:
                np.random.seed(seed)  # noqa: NPY002  (shap samples from the global RNG)
            rows.append(explainer.shap_values(x[i:i + 1], silent=True, **kwargs)[0])
        return torch.tensor(np.stack(rows)), explainer.expected_value
    finally:
        np.random.set_state(state)  # noqa: NPY002


def _exact_shapley(game, d: int) -> torch.Tensor:
    """Shapley values by enumerating all 2**d coalitions of ``game(keep (n, d)) -> (n,)``."""
    keeps = torch.tensor(list(itertools.product([False, True], repeat=d)))
    v = dict(zip(map(tuple, keeps.tolist()), game(keeps).double().tolist(), strict=True))
    phi = torch.zeros(d, dtype=torch.float64)
    for z, value in v.items():
        s = sum(z)
        for j in range(d):
            if not z[j]:
                with_j = z[:j] + (True,) + z[j + 1:]
                weight = math.factorial(s) * math.factorial(d - s - 1) / math.factorial(d)
                phi[j] += weight * (v[with_j] - value)
    return phi


def test_equals_shap_when_all_coalitions_are_enumerated():
    # d=5: "auto" = 2*5 + 2048 samples >= 2**5 - 2, so both enumerate all 30 coalitions.
    clf, x, mean_row = _logreg(5)
    ours = xai.explain(clf, x[:3], method="kernel_shap", baseline=mean_row, target=1)
    ref, expected = _shap_reference(clf, x[:3], mean_row)  # shap's defaults, l1_reg included
    torch.testing.assert_close(ours.values[:, 0].double(), ref, rtol=0, atol=1e-6)
    torch.testing.assert_close(ours.base_values[:, 0].double(), torch.full((3,), float(expected), dtype=torch.float64),
                               rtol=0, atol=1e-6)
    assert ours.extras["n_samples"].tolist() == [30, 30, 30]


def test_equals_shap_on_the_same_sampling_path():
    # d=12, 500 < 2**12 - 2 coalitions: shap samples. Our binary game draws exactly the numbers
    # shap draws on the real data (the draws depend only on d, n_samples and the global numpy
    # state), so with the same seed both regress on the same coalitions. l1_reg=False on both
    # sides: shap's default "num_features(10)" would drop 2 of the 12 features.
    clf, x, mean_row = _logreg(12, seed=1)
    ours = xai.explain(clf, x[:3], method="kernel_shap", baseline=mean_row, target=1,
                       n_samples=500, random_state=7, backend="shap")
    seed = int_seed(check_random_state(7))
    ref, _ = _shap_reference(clf, x[:3], mean_row, seed=seed, nsamples=500, l1_reg=False)
    torch.testing.assert_close(ours.values[:, 0].double(), ref, rtol=0, atol=1e-6)
    assert ours.extras["n_samples"].tolist() == [500, 500, 500]


def test_l1_reg_selection_matches_shap():
    clf, x, mean_row = _logreg(12, seed=1)
    ours = xai.explain(clf, x[:2], method="kernel_shap", baseline=mean_row, target=1,
                       n_samples=300, l1_reg="num_features(3)", random_state=3, backend="shap")
    seed = int_seed(check_random_state(3))
    ref, _ = _shap_reference(clf, x[:2], mean_row, seed=seed, nsamples=300,
                             l1_reg="num_features(3)")
    torch.testing.assert_close(ours.values[:, 0].double(), ref, rtol=0, atol=1e-6)
    assert (ours.values[:, 0] != 0).sum(1).tolist() == [3, 3]


def test_logit_link_matches_shap():
    clf, x, mean_row = _logreg(4)
    ours = xai.explain(clf, x[:2], method="kernel_shap", baseline=mean_row, target=1,
                       link="logit")
    ref, expected = _shap_reference(clf, x[:2], mean_row, link="logit")
    torch.testing.assert_close(ours.values[:, 0].double(), ref, rtol=0, atol=1e-5)
    # base + sum(values) = logit(f(x)): efficiency in log-odds units
    p = ours.predictions[:, 0].double()
    torch.testing.assert_close(ours.base_values[:, 0].double() + ours.values[:, 0].sum(-1),
                               torch.log(p / (1 - p)), rtol=0, atol=1e-4)


def test_linear_model_gives_w_times_x_minus_baseline_even_when_sampled():
    # An additive game is fitted exactly by the weighted regression from any coalitions:
    # phi_j = w_j (x_j - b0_j), for each of the two outputs.
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(8, 2, generator=gen)
    model = models.Linear(w, torch.tensor([0.5, -1.0]))
    x = torch.randn(3, 8, generator=gen)
    b0 = torch.randn(8, generator=gen)
    exp = xai.explain(model, x, method="kernel_shap", baseline=b0, target="all", n_samples=40,
                      max_exact=0, random_state=0)  # max_exact=0: d=8 would be enumerated
    expected = (w.T.unsqueeze(0) * (x - b0).unsqueeze(1))  # (3, 2, 8)
    torch.testing.assert_close(exp.values, expected, rtol=0, atol=1e-5)
    assert exp.extras["n_samples"].tolist() == [40, 40, 40]


def test_efficiency_and_base_values_on_mlp(mlp3):
    x = torch.randn(4, 6, generator=torch.Generator().manual_seed(1))
    exp = xai.explain(mlp3, x, method="kernel_shap", target="all", n_samples=20, max_exact=0,
                      random_state=0)
    with torch.no_grad():
        base = mlp3(torch.zeros(1, 6)).expand(4, 3)
    torch.testing.assert_close(exp.base_values, base, rtol=0, atol=1e-6)
    torch.testing.assert_close(exp.values.sum(-1), exp.predictions - exp.base_values,
                               rtol=0, atol=1e-5)


def test_text_values_are_exact_shapley_values(tiny_bert):
    # 4 words: "auto" samples >= 2**4 - 2, so shap enumerates and the values are exact.
    model, tok = tiny_bert
    texts = ["the movie was great", "a very boring plot"]
    exp = xai.explain((model, tok), texts, method="kernel_shap", target=1)
    adapter = xai.as_adapter((model, tok))
    for i, fs in enumerate(exp.features):
        assert fs.n_features == 4

        def game(keep, fs=fs):
            with torch.no_grad():
                return adapter.predict(fs.mask(keep))[:, 1]

        torch.testing.assert_close(exp.values[i, 0].double(), _exact_shapley(game, 4),
                                   rtol=0, atol=1e-5)
    torch.testing.assert_close(exp.values.sum(-1), exp.predictions - exp.base_values,
                               rtol=0, atol=1e-5)


def test_same_seed_same_values_other_seed_other_values(mlp3):
    x = torch.randn(2, 6, generator=torch.Generator().manual_seed(2))
    run = lambda s: xai.explain(mlp3, x, method="kernel_shap", target=0, n_samples=20,  # noqa: E731
                                max_exact=0, random_state=s).values
    torch.testing.assert_close(run(5), run(5), rtol=0, atol=0)
    assert not torch.allclose(run(5), run(6), rtol=0, atol=1e-4)


def test_row_result_does_not_depend_on_its_batch(mlp3):
    x = torch.randn(3, 6, generator=torch.Generator().manual_seed(3))
    batch = xai.explain(mlp3, x, method="kernel_shap", target=0, n_samples=20, max_exact=0,
                        random_state=1)
    alone = xai.explain(mlp3, x[2:], method="kernel_shap", target=0, n_samples=20, max_exact=0,
                        random_state=1)
    torch.testing.assert_close(batch.values[2:], alone.values, rtol=0, atol=0)


def _global_state():
    return np.random.get_state()  # noqa: NPY002  (the state these tests guard)


def _seeded_global_state(seed: int):
    np.random.seed(seed)  # noqa: NPY002
    return _global_state()


def _assert_same_state(a, b):
    assert a[0] == b[0]
    assert a[2:] == b[2:]
    np.testing.assert_array_equal(a[1], b[1])


def test_global_numpy_rng_is_restored(mlp3):
    before = _seeded_global_state(1234)
    xai.explain(mlp3, torch.ones(2, 6), method="kernel_shap", target=0, n_samples=20,
                max_exact=0, random_state=0, backend="shap")
    _assert_same_state(_global_state(), before)


def test_global_numpy_rng_is_restored_when_the_model_fails():
    def fn(a):
        if a.shape[0] > 2:  # the sampled coalitions (the two end rows pass)
            msg = "model broke"
            raise RuntimeError(msg)
        return a.sum(1)

    before = _seeded_global_state(99)
    with pytest.raises(RuntimeError, match="model broke"):
        xai.explain(fn, np.ones((1, 6)), method="kernel_shap", n_samples=20, max_exact=0,
                    random_state=0, backend="shap")
    _assert_same_state(_global_state(), before)


def test_n_samples_auto_is_shaps_rule():
    # 2*d + 2048, capped at 2**d - 2: 2072 for d=12, 30 for d=5 (also max_exact's 2**5 - 2).
    fn = lambda a: a.sum(1)  # noqa: E731
    exp12 = xai.explain(fn, np.ones((1, 12)), method="kernel_shap", random_state=0)
    exp5 = xai.explain(fn, np.ones((1, 5)), method="kernel_shap", random_state=0)
    assert exp12.extras["n_samples"].tolist() == [2072]
    assert exp5.extras["n_samples"].tolist() == [30]
    assert exp12.params["n_samples"] == "auto"


def test_logit_link_rejects_scores_outside_unit_interval(mlp3):
    with pytest.raises(InvalidParameterError, match="'link' parameter of KernelShap is 'logit'"):
        xai.explain(mlp3, torch.ones(1, 6) * 3, method="kernel_shap", target=0, link="logit")


@pytest.mark.parametrize(("param", "value"), [
    ("n_samples", 0), ("n_samples", "many"), ("link", "probit"), ("l1_reg", True),
    ("l1_reg", "num_features(0)"), ("l1_reg", -0.1), ("granularity", "char"), ("max_exact", -1),
    ("max_exact", 2.5),
])
def test_invalid_parameters_name_the_parameter(param, value):
    with pytest.raises(InvalidParameterError, match=f"'{param}' parameter of KernelShap") as err:
        xai.KernelShap(**{param: value})
    assert err.value.parameter == param


def test_l1_reg_message_is_exact():
    msg = ("The 'l1_reg' parameter of KernelShap must be False, 'num_features(k)' with k >= 1, "
           "'aic', 'bic' or a float in the range (0, inf). Got 'lots' instead.")
    with pytest.raises(InvalidParameterError, match=re.escape(msg)):
        xai.KernelShap(l1_reg="lots")


# -- native backend (issue 16): our batched paired KernelSHAP -----------------------------------
class _Poly(torch.nn.Module):
    """c + a'x + sum_{i<j} B_ij x_i x_j: with baseline 0 the game is of order 2 in the mask, its
    Shapley values phi_i = a_i x_i + (1/2) sum_j (B + B')_ij x_i x_j."""

    def __init__(self, d: int, seed: int = 0, order2: bool = True) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.a = torch.randn(d, generator=gen, dtype=torch.float64)
        b = torch.randn(d, d, generator=gen, dtype=torch.float64).triu(1)
        self.b = b if order2 else torch.zeros_like(b)

    def forward(self, x):
        x = x.double()
        out = 0.3 + x @ self.a + torch.einsum("ni,ij,nj->n", x, self.b, x)
        return out.unsqueeze(1)

    def shapley(self, x):
        x = x.double()
        sym = self.b + self.b.T
        return x * self.a + 0.5 * x * (x @ sym)


@pytest.mark.parametrize("order2", [False, True])
def test_native_paired_is_exact_on_additive_and_order_two_games(order2):
    # spec SE-3: paired B = 128 is exact once the pairs span (d = 10); the adapter scores in
    # float32, so to float32 rounding here (1e-10 in float64: test_regression_estimators.py)
    model = _Poly(10, order2=order2)
    x = torch.randn(3, 10, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    exp = xai.explain(model, x, method="kernel_shap", budget=128, max_exact=0, random_state=0)
    assert exp.extras["estimator"] == "kernel"
    assert exp.extras["exact"].tolist() == [False] * 3
    phi = model.shapley(x)
    torch.testing.assert_close(exp.values[:, 0].double(), phi, rtol=0,
                               atol=1e-6 * float(phi.abs().max()))
    torch.testing.assert_close(exp.values.sum(-1), exp.predictions - exp.base_values,
                               rtol=0, atol=1e-5)


def _mlp(d: int, seed: int = 0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(d, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))


def test_native_efficiency_stderr_and_rows_per_example():
    model = _mlp(14)
    x = torch.randn(4, 14, generator=torch.Generator().manual_seed(2))
    for paired, name in ((True, "kernel"), (False, "kernel_unpaired")):
        exp = xai.explain(model, x, method="kernel_shap", budget=301, paired=paired,
                          target="all", random_state=0)
        torch.testing.assert_close(exp.values.sum(-1), exp.predictions - exp.base_values,
                                   rtol=0, atol=1e-5)
        n_rows = exp.extras["n_rows"]
        assert n_rows.shape == (4,)
        assert n_rows.tolist() == [300 if paired else 301] * 4  # paired: whole pairs only
        assert bool((n_rows <= 301).all())
        assert exp.extras["n_samples"].tolist() == (n_rows - 2).tolist()
        assert exp.extras["estimator"] == name
        assert exp.extras["backend"] == "native"
        se = exp.extras["stderr"]
        assert se.shape == (4, 2, 14)
        assert bool((se > 0).all())


def test_native_enumeration_equals_shap_backend_exact_values():
    model = _mlp(6)
    x = torch.randn(3, 6, generator=torch.Generator().manual_seed(3))
    ours = xai.explain(model, x, method="kernel_shap", target="all", random_state=0)
    ref = xai.explain(model, x, method="kernel_shap", target="all", random_state=0,
                      backend="shap")
    assert ours.extras["exact"].tolist() == ref.extras["exact"].tolist() == [True] * 3
    assert ours.extras["estimator"] == "exact"
    assert ours.extras["n_rows"].tolist() == ref.extras["n_rows"].tolist() == [64] * 3
    torch.testing.assert_close(ours.values, ref.values, rtol=0, atol=1e-6)
    torch.testing.assert_close(ours.base_values, ref.base_values, rtol=0, atol=1e-6)
    assert bool((ours.extras["stderr"] == 0).all())


def test_native_and_shap_agree_within_sampling_error():
    # d = 12 sampled by both at 4000 coalitions; the exact values (4096 rows) as the referee
    model = _mlp(12, seed=4)
    x = torch.randn(2, 12, generator=torch.Generator().manual_seed(4)) * 2
    exact = xai.explain(model, x, method="kernel_shap", target=1, max_exact=2**12)
    ours = xai.explain(model, x, method="kernel_shap", target=1, budget=4002, random_state=0)
    ref = xai.explain(model, x, method="kernel_shap", target=1, budget=4002, random_state=0,
                      backend="shap")
    assert exact.extras["exact"].all()
    assert not ours.extras["exact"].any()
    se = ours.extras["stderr"]
    assert bool(((ours.values - exact.values).abs() <= 5 * se + 1e-6).all())
    spread = float(exact.values.abs().max())
    assert float((ours.values - ref.values).abs().max()) < 0.05 * spread


def test_native_same_seed_and_batch_neighbour_independence():
    model = _mlp(12, seed=5)
    x = torch.randn(3, 12, generator=torch.Generator().manual_seed(5))
    kw = {"method": "kernel_shap", "target": 0, "budget": 200}
    a = xai.explain(model, x, random_state=3, **kw)
    b = xai.explain(model, x, random_state=3, **kw)
    torch.testing.assert_close(a.values, b.values, rtol=0, atol=0)
    assert not torch.allclose(a.values, xai.explain(model, x, random_state=4, **kw).values,
                              rtol=0, atol=1e-4)
    alone = xai.explain(model, x[2:], random_state=3, batch_size=7, **kw)
    torch.testing.assert_close(a.values[2:], alone.values, rtol=0, atol=1e-6)


def test_native_logit_link_equals_logit_of_the_probability_game():
    torch.manual_seed(6)
    net = torch.nn.Sequential(torch.nn.Linear(12, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    prob = torch.nn.Sequential(net, torch.nn.Sigmoid())
    x = torch.randn(2, 12, generator=torch.Generator().manual_seed(6))
    kw = {"method": "kernel_shap", "target": 0, "budget": 300, "random_state": 0}
    linked = xai.explain(prob, x, link="logit", **kw)
    logits = xai.explain(net, x, **kw)  # logit(sigmoid(t)) = t: the same game, same draws
    torch.testing.assert_close(linked.values, logits.values, rtol=0, atol=1e-4)
    torch.testing.assert_close(linked.base_values, logits.base_values, rtol=0, atol=1e-5)
    torch.testing.assert_close(linked.predictions, torch.sigmoid(logits.predictions),
                               rtol=0, atol=1e-6)


def test_native_typed_errors():
    with pytest.raises(InvalidParameterError, match="backend='shap'") as err:
        xai.KernelShap(l1_reg="num_features(3)")
    assert err.value.parameter == "l1_reg"
    with pytest.raises(InvalidParameterError, match="'backend' parameter of KernelShap") as err:
        xai.KernelShap(backend="captum")
    assert err.value.parameter == "backend"
    with pytest.raises(InvalidParameterError, match="'budget' parameter of KernelShap") as err:
        xai.explain(_mlp(12), torch.ones(1, 12), method="kernel_shap", target=0, budget=20)
    assert err.value.parameter == "budget"


def test_shap_backend_warns_that_it_ignores_paired_and_maps_budget():
    from xai.exceptions import IgnoredParameterWarning

    x = torch.randn(1, 12, generator=torch.Generator().manual_seed(7))
    with pytest.warns(IgnoredParameterWarning, match="'paired'"):
        exp = xai.explain(_mlp(12), x, method="kernel_shap", target=0, budget=102,
                          paired=False, backend="shap", random_state=0)
    assert exp.extras["n_samples"].tolist() == [100]
    assert exp.extras["n_rows"].tolist() == [102]
