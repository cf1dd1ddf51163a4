"""Lime: closed-form weighted ridge on an additive game, parity with lime's LimeBase, seeding."""

from __future__ import annotations

import re

import models
import numpy as np
import pytest
import scipy.sparse
import torch
from sklearn.metrics.pairwise import pairwise_distances

import xai
from xai._validation import check_random_state
from xai.exceptions import InvalidParameterError
from xai.methods._base import example_generators

lime_base = pytest.importorskip("lime.lime_base")
lime_text = pytest.importorskip("lime.lime_text")


def _masks(method: xai.Lime, d: int, seed: int) -> np.ndarray:
    """The masks ``method`` draws for every example under ``random_state=seed``."""
    return method.sample_masks(d, example_generators(check_random_state(seed), 1)[0])


def _lime_weights(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """lime text's (weights, distances), computed the way LimeTextExplainer does (sparse cosine)."""
    distances = pairwise_distances(scipy.sparse.csr_matrix(masks.astype(float)),
                                   scipy.sparse.csr_matrix(masks[:1].astype(float)),
                                   metric="cosine").ravel() * 100
    return lime_text.LimeTextExplainer(kernel_width=25).base.kernel_fn(distances), distances


def _weighted_ridge(z: np.ndarray, y: np.ndarray, w: np.ndarray, alpha: float):
    """argmin_{b, beta} sum_i w_i (y_i - b - z_i beta)^2 + alpha |beta|^2, in closed form."""
    zm = np.average(z, axis=0, weights=w)
    ym = np.average(y, weights=w)
    zc, yc = z - zm, y - ym
    beta = np.linalg.solve(zc.T @ (w[:, None] * zc) + alpha * np.eye(z.shape[1]),
                           zc.T @ (w * yc))
    return beta, ym - zm @ beta


@pytest.fixture(scope="module")
def linear5():
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(5, 1, generator=gen)
    model = models.Linear(w, 0.7)
    x = torch.randn(2, 5, generator=gen)
    b0 = torch.randn(5, generator=gen)
    return model, w[:, 0].double(), x, b0


def test_equals_closed_form_weighted_ridge_on_an_additive_game(linear5):
    # The mask game of f = w.x + 0.7 is v(z) = f(b0) + sum_j z_j w_j (x_j - b0_j): additive in z.
    # lime fits Ridge(alpha=1) with lime text's weights; we solve that problem in closed form.
    model, w, x, b0 = linear5
    method = xai.Lime(n_samples=300, baseline=b0)
    exp = method.explain(model, x, target=0, random_state=0)
    masks = _masks(method, 5, 0).astype(float)
    weights, _ = _lime_weights(masks)
    for i in range(2):
        contrib = w * (x[i] - b0).double()
        y = float(model(b0[None]).item()) + masks @ contrib.numpy()
        beta, intercept = _weighted_ridge(masks, y, weights, alpha=1.0)
        torch.testing.assert_close(exp.values[i, 0].double(), torch.from_numpy(beta),
                                   rtol=0, atol=1e-6)
        torch.testing.assert_close(exp.extras["intercept"][i, 0].item(), intercept,
                                   rtol=0, atol=1e-6)


def test_small_alpha_recovers_w_times_x_minus_baseline_with_r2_one(linear5):
    # With the ridge penalty ~0 the local model of an additive game is exact: coefficients
    # w_j (x_j - b0_j), intercept f(b0), weighted R^2 = 1.
    model, w, x, b0 = linear5
    exp = xai.explain(model, x, method="lime", baseline=b0, target=0, alpha=1e-8,
                      n_samples=200, random_state=1)
    expected = (w * (x - b0).double()).float()
    torch.testing.assert_close(exp.values[:, 0], expected, rtol=0, atol=1e-5)
    with torch.no_grad():
        f_b0 = model(b0[None]).double().expand(2, 1)
    torch.testing.assert_close(exp.extras["intercept"], f_b0, rtol=0, atol=1e-5)
    torch.testing.assert_close(exp.extras["score"], torch.ones(2, 1, dtype=torch.float64),
                               rtol=0, atol=1e-9)


@pytest.mark.parametrize(("selection", "n_selected"), [("none", None), ("forward_selection", 2)])
def test_equals_lime_base_on_the_same_masks(mlp3, selection, n_selected):
    # Proof that we drive lime rather than reimplement it: LimeBase, called here on the same
    # masks, scores and lime-text distances, gives the same coefficients, R^2 and intercepts.
    x = torch.randn(2, 6, generator=torch.Generator().manual_seed(4))
    method = xai.Lime(n_samples=150, feature_selection=selection, n_selected=n_selected)
    exp = method.explain(mlp3, x, target="all", random_state=3)
    masks = _masks(method, 6, 3)
    kernel = lime_text.LimeTextExplainer(kernel_width=25).base.kernel_fn
    _, distances = _lime_weights(masks)
    for i in range(2):
        with torch.no_grad():
            labels = mlp3(exp.features[i].mask(torch.from_numpy(masks)).inputs).double().numpy()
        for j in range(3):
            b, pairs, score, _ = lime_base.LimeBase(kernel).explain_instance_with_data(
                masks.astype(float), labels, distances, j, num_features=n_selected or 6,
                feature_selection=selection)
            coefs = np.zeros(6)
            for f, c in pairs:
                coefs[f] = c
            torch.testing.assert_close(exp.values[i, j].double(), torch.from_numpy(coefs),
                                       rtol=0, atol=1e-6)
            assert exp.extras["score"][i, j].item() == pytest.approx(score, abs=1e-6)
            assert exp.extras["intercept"][i, j].item() == pytest.approx(b, abs=1e-6)
    if n_selected is not None:
        assert ((exp.values != 0).sum(-1) == n_selected).all()


def test_text_equals_lime_base_on_the_same_masks(tiny_bert):
    model, tok = tiny_bert
    method = xai.Lime(n_samples=80)
    exp = method.explain((model, tok), ["the movie was great fun", "a boring plot"], target=1,
                         random_state=5)
    adapter = xai.as_adapter((model, tok))
    kernel = lime_text.LimeTextExplainer(kernel_width=25).base.kernel_fn
    for i, fs in enumerate(exp.features):
        masks = _masks(method, fs.n_features, 5)
        _, distances = _lime_weights(masks)
        with torch.no_grad():
            labels = adapter.predict(fs.mask(torch.from_numpy(masks))).double().numpy()
        _, pairs, _, _ = lime_base.LimeBase(kernel).explain_instance_with_data(
            masks.astype(float), labels, distances, 1, num_features=fs.n_features,
            feature_selection="none")
        coefs = torch.zeros(fs.n_features, dtype=torch.float64)
        for f, c in pairs:
            coefs[f] = c
        torch.testing.assert_close(exp.values[i, 0, : fs.n_features].double(), coefs,
                                   rtol=0, atol=1e-6)


def test_masks_follow_lime_texts_rule():
    # Row 0 keeps everything; each other row removes k features, k uniform in 1..d (lime's
    # randint(1, d + 1)), so with 2000 rows and d=5 each k has count ~ Binomial(1999, 1/5):
    # mean 399.8, sd 17.9; 5 sd = 90 bounds every count. Each feature is removed in
    # E[k]/d = 3/5 of the rows: 1199.4 +- 5 * 21.9.
    masks = _masks(xai.Lime(n_samples=2000), 5, 0)
    assert masks.dtype == bool
    assert masks.shape == (2000, 5)
    assert masks[0].all()
    removed = (~masks[1:]).sum(1)
    counts = np.bincount(removed, minlength=6)
    assert counts[0] == 0
    np.testing.assert_allclose(counts[1:], 1999 / 5, atol=90)
    np.testing.assert_allclose((~masks[1:]).sum(0), 1999 * 3 / 5, atol=110)


def test_same_seed_same_values_other_seed_other_values(mlp3):
    x = torch.randn(2, 6, generator=torch.Generator().manual_seed(2))
    run = lambda s: xai.explain(mlp3, x, method="lime", target=0, n_samples=64,  # noqa: E731
                                random_state=s).values
    torch.testing.assert_close(run(5), run(5), rtol=0, atol=0)
    assert not torch.allclose(run(5), run(6), rtol=0, atol=1e-4)


def test_row_result_does_not_depend_on_its_batch(mlp3):
    x = torch.randn(3, 6, generator=torch.Generator().manual_seed(3))
    batch = xai.explain(mlp3, x, method="lime", target=0, n_samples=64, random_state=1)
    alone = xai.explain(mlp3, x[1:2], method="lime", target=0, n_samples=64, random_state=1)
    torch.testing.assert_close(batch.values[1:2], alone.values, rtol=0, atol=0)


def test_global_numpy_rng_is_untouched(mlp3):
    np.random.seed(4321)  # noqa: NPY002  (the global state must survive the call)
    before = np.random.get_state()  # noqa: NPY002
    xai.explain(mlp3, torch.ones(2, 6), method="lime", target=0, n_samples=32, random_state=0)
    after = np.random.get_state()  # noqa: NPY002
    np.testing.assert_array_equal(after[1], before[1])
    assert after[2:] == before[2:]


def test_model_calls_are_batched(mlp3):
    exp = xai.explain(mlp3, torch.ones(3, 6), method="lime", target=0, n_samples=100,
                      batch_size=128, random_state=0)
    assert exp.extras["n_rows"].item() == 300
    assert exp.extras["n_model_calls"].item() == 3  # ceil(300 / 128)


@pytest.mark.parametrize(("param", "value"), [
    ("n_samples", 1), ("kernel_width", 0.0), ("alpha", -1.0), ("feature_selection", "all"),
    ("n_selected", 0), ("granularity", "char"),
])
def test_invalid_parameters_name_the_parameter(param, value):
    with pytest.raises(InvalidParameterError, match=f"'{param}' parameter of Lime") as err:
        xai.Lime(**{param: value})
    assert err.value.parameter == param


def test_kernel_width_message_is_exact():
    msg = ("The 'kernel_width' parameter of Lime must be a float in the range (0, inf). "
           "Got -2 instead.")
    with pytest.raises(InvalidParameterError, match=re.escape(msg)):
        xai.Lime(kernel_width=-2)
