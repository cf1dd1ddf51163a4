"""Sampling budgets (issue 10, bug 4): every sampler estimates its cost up front, refuses an
absurd budget with the estimate in the message, and scores its draws batch_size rows at a time,
so memory does not grow with n_permutations / n_samples / n_steps."""

from __future__ import annotations

import math
import re

import models
import numpy as np
import pytest
import torch

import xai
from xai.methods import _budget, shapley_sampling
from xai.methods._coalitions import exact_shapley, permutation_shapley
from xai.testing._toys import UniformResampler

X3 = torch.randn(3, 6, generator=torch.Generator().manual_seed(0))


def _raises(msg):
    return pytest.raises(xai.InvalidParameterError, match="^" + re.escape(msg) + "$")


class Recorder:
    """f(x) = sum x^2 + x0 * x1 that records the rows of every call."""

    def __init__(self) -> None:
        self.rows: list[int] = []

    def __call__(self, a):
        self.rows.append(a.shape[0])
        return (a**2).sum(1) + a[:, 0] * a[:, 1]


@pytest.fixture
def memory(monkeypatch):
    """Pretend the machine has ``n`` bytes of memory available."""
    def set_to(n: int) -> None:
        monkeypatch.setattr(_budget, "available_memory", lambda: n)
    return set_to


# -- absurd budgets are refused before any draw, with the estimate -------------------------------

def test_huge_n_permutations_is_refused_before_any_model_row():
    adapter = xai.CallableAdapter(Recorder(), n_features=6)
    msg = ("The 'n_permutations' parameter of ShapleySampling is too large: "
           "n_permutations=1000000000000 would evaluate 1.5e13 model rows (about 510.0 TB of "
           "masks), more than the limit of 1.0e9 model rows per call. Use a smaller "
           "n_permutations; extras['stderr'] shrinks as 1/sqrt(n_permutations), so a few hundred "
           "are usually enough; or explain fewer examples or coarser features.")
    with _raises(msg) as err:
        xai.explain(adapter, X3.numpy(), method="shapley_sampling", n_permutations=10**12,
                    max_exact=0)
    assert (err.value.parameter, err.value.value) == ("n_permutations", 10**12)
    assert adapter._model.rows == [3]  # only the prediction at the inputs


def test_huge_lime_n_samples_is_refused():
    msg = ("The 'n_samples' parameter of Lime is too large: n_samples=10000000000 would evaluate "
           "3.0e10 model rows (about 6.6 TB of masks), more than the limit of 1.0e9 model rows "
           "per call. Use a smaller n_samples; LIME's local fit rarely changes beyond a few "
           "thousand samples.")
    with _raises(msg):
        xai.explain(models.mlp(), X3, method="lime", target=0, n_samples=10**10)


def test_lime_samples_that_cannot_fit_in_memory_are_refused(memory):
    # lime fits on all of an example's samples at once: 2 * 2e6 * 6 * 48 bytes > 1 GB
    memory(10**9)
    msg = ("The 'n_samples' parameter of Lime is too large: n_samples=2000000 would hold about "
           "1.2 GB at once (1.2 GB of sample matrices and the local fit's copies, for 2.0e6 model "
           "rows), more than the 1.0 GB of memory available. Use a smaller n_samples; "
           "LIME's local fit rarely changes beyond a few thousand samples.")
    with _raises(msg):
        xai.explain(models.mlp(), X3[:1], method="lime", target=0, n_samples=2 * 10**6)


def test_ig_quadrature_table_that_cannot_fit_is_refused(memory):
    # numpy's Gauss-Legendre nodes need an n_steps x n_steps float64 matrix
    memory(10**9)
    msg = ("The 'n_steps' parameter of IntegratedGradients is too large: n_steps=1000000 would "
           "hold about 8.0 TB at once (8.0 TB of quadrature table, for 3.0e6 model rows), more "
           "than the 1.0 GB of memory available. Use a smaller n_steps; Gauss-Legendre converges "
           "with 20-300 nodes; for a finer path use integration='riemann_trapezoid', whose table "
           "grows linearly.")
    with _raises(msg):
        xai.explain(models.mlp(), X3, method="ig", target=0, n_steps=10**6)


def test_huge_smoothed_n_samples_is_refused():
    sm = xai.Smoothed(method=xai.IntegratedGradients(n_steps=8), n_samples=10**9)
    msg = ("The 'n_samples' parameter of Smoothed is too large: n_samples=1000000000 would "
           "evaluate 2.4e10 model rows (about 2.3 TB of noisy copies), more than the limit of "
           "1.0e9 model rows per call. Use a smaller n_samples; the standard error of the "
           "smoothing (extras['stderr']) shrinks as 1/sqrt(n_samples).")
    with _raises(msg):
        xai.explain(models.mlp(), X3, method=sm, target=0)


def test_huge_kernel_shap_n_samples_is_refused():
    adapter = xai.CallableAdapter(lambda a: a.sum(1), n_features=40)
    msg = ("The 'n_samples' parameter of KernelShap is too large: n_samples=1000000000 would "
           "evaluate 2.0e9 model rows (about 384.0 GB of masks), more than the limit of 1.0e9 "
           "model rows per call. Use a smaller n_samples; shap's 'auto' (2 * n_features + 2048) "
           "is usually enough.")
    with _raises(msg):
        xai.explain(adapter, np.ones((2, 40)), method="kernel_shap", n_samples=10**9)


def test_huge_olm_n_samples_is_refused(tiny_bert):
    msg = ("The 'n_samples' parameter of OLM is too large: n_samples=1000000000000 would "
           "evaluate 3.0e12 replacement draws (about 24.0 TB of draws), more than the limit of "
           "1.0e9 replacement draws per call. Use a smaller n_samples; the Monte-Carlo error "
           "shrinks as 1/sqrt(n_samples); n_samples=None takes the exact expectation over the "
           "resampler's candidates.")
    with _raises(msg):
        xai.explain(tiny_bert, ["a fine movie"], method="olm", resampler=UniformResampler(),
                    n_samples=10**12, target=0)


def test_huge_permutation_game_budgets_are_refused():
    def value(keep):
        return keep.sum(1).double()

    msg = ("The 'n_permutations' parameter of permutation_shapley is too large: "
           "n_permutations=1000000000000 would evaluate 9.0e12 coalitions (about 90.0 TB of "
           "coalitions), more than the limit of 1.0e9 coalitions per call. Use a smaller "
           "n_permutations; the standard error shrinks as 1/sqrt(n_permutations).")
    with _raises(msg):
        permutation_shapley(value, 10, n_permutations=10**12, generator=torch.Generator())
    msg = ("The 'max_exact' parameter of exact_shapley is too large: max_exact=1099511627776 "
           "would evaluate 2.1e9 coalitions (about 100.9 GB of coalitions), more than the limit "
           "of 1.0e9 coalitions per call. Use a smaller max_exact; below 2**31 = 2147483648, so "
           "that permutation sampling (n_permutations) is used.")
    with _raises(msg):
        exact_shapley(value, 31, max_exact=2**40)


def test_a_batch_size_whose_chunk_cannot_fit_is_named(memory):
    memory(10**7)
    msg = ("The 'batch_size' parameter of ShapleySampling is too large: batch_size=1000000000 "
           "holds 500,002 rows of masks at once (about 17.0 MB), more than the 10.0 MB of "
           "memory available. Use a batch_size of at most 294,117, or 'auto'.")
    with _raises(msg) as err:
        xai.explain(models.mlp(), X3[:1], method="shapley_sampling", target=0,
                    n_permutations=10**5, batch_size=10**9, max_exact=0)
    assert err.value.parameter == "batch_size"


@pytest.mark.parametrize("size", [0, -1, 2.5, "8", True, None])
def test_a_bad_batch_size_is_named(size):
    msg = ("The 'batch_size' parameter of ShapleySampling must be an int in the range [1, inf) "
           f"or 'auto'. Got {size!r} instead.")
    with _raises(msg) as err:
        xai.explain(models.mlp(), X3, method="shapley_sampling", target=0, batch_size=size)
    assert err.value.parameter == "batch_size"


def test_a_numpy_int_batch_size_is_an_int():
    exp = xai.explain(models.mlp(), X3, method="occlusion", target=0, batch_size=np.int64(5))
    assert int(exp.extras["n_model_calls"]) == math.ceil(3 * 7 / 5)


# -- moderate budgets run in bounded chunks -----------------------------------------------------

def test_shapley_sampling_streams_masks_and_calls_in_batch_size_rows(monkeypatch):
    masks, held = [], []
    original = shapley_sampling._Chain.masks

    def recording(self, start, stop):
        masks.append(stop - start)
        held.append(len(self.draws.held))
        return original(self, start, stop)

    monkeypatch.setattr(shapley_sampling._Chain, "masks", recording)
    f = Recorder()
    x = X3[:2].numpy()
    exp = xai.explain(xai.CallableAdapter(f, n_features=6), x, method="shapley_sampling",
                      n_permutations=3000, batch_size=50, random_state=0, max_exact=0)
    rows = 2 * (3000 * 5 + 2)
    assert max(f.rows[1:]) == 50  # the first call is the prediction at the inputs
    assert max(masks) == 50
    assert max(held) <= 2 * 50 // 5 + 4  # only the permutations in flight are kept
    assert (int(exp.extras["n_rows"].sum()), int(exp.extras["n_model_calls"])) == (rows, 601)
    torch.testing.assert_close(exp.values.sum(-1), exp.predictions - exp.base_values,
                               rtol=0, atol=1e-4)
    # the same draws scored all at once give the same values
    once = xai.explain(xai.CallableAdapter(Recorder(), n_features=6), x,
                       method="shapley_sampling", n_permutations=3000, batch_size=10**6,
                       random_state=0, max_exact=0)
    torch.testing.assert_close(exp.values, once.values, rtol=0, atol=1e-6)
    torch.testing.assert_close(exp.extras["stderr"], once.extras["stderr"], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("batch_size", [1, 7])
def test_shapley_sampling_with_tiny_batches_gives_the_same_values(batch_size):
    model = models.mlp()
    kw = {"method": "shapley_sampling", "target": "all", "n_permutations": 6, "random_state": 3,
          "max_exact": 0}
    small = xai.explain(model, X3, batch_size=batch_size, **kw)
    whole = xai.explain(model, X3, batch_size=10**6, **kw)
    torch.testing.assert_close(small.values, whole.values, rtol=0, atol=1e-6)
    torch.testing.assert_close(small.base_values, whole.base_values, rtol=0, atol=1e-6)
    assert int(small.extras["n_model_calls"]) == math.ceil(3 * (6 * 5 + 2) / batch_size)


def test_permutation_game_values_in_chunks_of_batch_size():
    # second-order game: antithetic pairs are exact, in any number of chunks
    w = torch.tensor([1.0, -2.0, 0.5, 3.0, 0.0, 1.5], dtype=torch.float64)
    b = torch.zeros(6, 6, dtype=torch.float64)
    b[0, 1], b[2, 3] = 2.0, -1.0
    rows: list[torch.Tensor] = []

    def value(keep):
        rows.append(keep)
        k = keep.double()
        return k @ w + ((k @ b) * k).sum(1)

    res = permutation_shapley(value, 6, n_permutations=2000, generator=torch.Generator(),
                              batch_size=16)
    seen = torch.cat(rows)
    assert max(r.shape[0] for r in rows) <= 16
    assert torch.unique(seen, dim=0).shape[0] == seen.shape[0] == res.n_evaluations <= 2**6
    expected = w + (b + b.T).sum(1) / 2
    torch.testing.assert_close(res.values, expected, rtol=0, atol=1e-12)


def test_ig_forward_calls_never_exceed_batch_size():
    class Counting(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner, self.rows = models.mlp(), []

        def forward(self, x):
            self.rows.append(x.shape[0])
            return self.inner(x)

    model = Counting()
    exp = xai.explain(model, X3, method="ig", target="all", n_steps=300, batch_size=32)
    assert max(model.rows) <= 32
    big = xai.explain(models.mlp(), X3, method="ig", target="all", n_steps=300,
                      batch_size=10**4)
    torch.testing.assert_close(exp.values, big.values, rtol=1e-5, atol=1e-6)


def test_olm_draws_a_large_n_samples_in_chunks(tiny_bert):
    # 200,000 draws per word in chunks: weights are counts / n, so they sum to 1 exactly
    exp = xai.explain(tiny_bert, ["a fine movie"], method="olm", resampler=UniformResampler(),
                      n_samples=200_000, target=0, random_state=0)
    exact = xai.explain(tiny_bert, ["a fine movie"], method="olm",
                        resampler=UniformResampler(), n_samples=None, target=0)
    torch.testing.assert_close(exp.values, exact.values, rtol=0, atol=5e-3)
