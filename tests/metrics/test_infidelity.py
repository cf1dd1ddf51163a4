"""Infidelity (Yeh et al. 2019): known answers, captum parity, text subsets, seeds, bad input."""

from __future__ import annotations

import dataclasses
import math

import models
import numpy as np
import pytest
import torch

import metrics
import xai
from metrics import Infidelity
from xai._validation import check_random_state
from xai.exceptions import InvalidParameterError, XAIWarning
from xai.methods._base import example_generators


class Quadratic(torch.nn.Module):
    """f(x) = 1/2 x^T A x, gradient A x for symmetric A."""

    def __init__(self, a: torch.Tensor) -> None:
        super().__init__()
        self.a = a

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((x @ self.a) * x).sum(1, keepdim=True)


def gradient_explanation(model: torch.nn.Module, x_row: torch.Tensor,
                         grad: torch.Tensor) -> xai.Explanation:
    """A gradient-like explanation of one example whose feature-space baseline is x itself, so
    the 'gaussian' noisy baseline is local noise x~ = x + eps and I = -eps."""
    exp = xai.explain(model, x_row[None], method="ig", n_steps=4, baseline=x_row)
    return dataclasses.replace(exp, values=grad.reshape(1, 1, -1), multiplies_by_inputs=False)


# -- IN-1: exact attributions of a linear model -------------------------------------------
@pytest.mark.parametrize("method", ["occlusion", "integrated_gradients"])
@pytest.mark.parametrize("perturbation", ["gaussian", "subset"])
def test_exact_linear_attributions_have_zero_infidelity(method, perturbation):
    # f = w.x + c, Phi_i = w_i (x_i - b_i): sum_i Phi_i I_i = f(x) - f(x~) for both the
    # noisy baseline (I = (x - x~)/(x - b)) and subset removal (I = mask), so every residual
    # is 0 and beta = 1. Values are float32, so "0" means an RMS residual below 1e-6 of the
    # RMS output change (the plain infidelity of the zero explanation).
    w = torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
    model = models.Linear(w, 0.3)
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    base = torch.tensor([0.5, -1.0, 0.2, 1.0])
    exp = xai.explain(model, x, method=method, baseline=base)
    zero = dataclasses.replace(exp, values=torch.zeros_like(exp.values))
    with pytest.warns(XAIWarning, match="predict no change"):
        scale = Infidelity(perturbation=perturbation, normalize=False, n_perturbations=200)(
            zero, model, random_state=0).scores
    assert bool((scale > 0.1).all())  # the perturbations do move the output
    for normalize in (True, False):
        res = Infidelity(perturbation=perturbation, normalize=normalize, n_perturbations=200)(
            exp, model, random_state=0)
        assert bool((res.scores.sqrt() <= 1e-6 * scale.sqrt()).all()), (res.scores, scale)
        assert res.extras["perturbation"] == perturbation
        if normalize:
            torch.testing.assert_close(res.extras["beta"], torch.ones(5, 1), rtol=0, atol=1e-5)


# -- IN-2: gradient of a quadratic under Gaussian noise -------------------------------------
def quadratic_case():
    """f = 1/2 x^T A x for a random symmetric A (5 x 5), explained by its gradient A x."""
    gen = torch.Generator().manual_seed(0)
    b = torch.randn(5, 5, generator=gen)
    a = (b + b.T) / 2
    x = torch.randn(5, generator=gen)
    model = Quadratic(a)
    return a, model, gradient_explanation(model, x, a @ x)


def test_quadratic_gradient_matches_closed_form():
    # f = 1/2 x^T A x, Phi = A x, I = -eps, eps ~ N(0, s^2 I_5): the residual is 1/2 eps^T A eps,
    # so INFD = E[(eps^T A eps)^2]/4 = s^4 ((tr A)^2 + 2 ||A||_F^2)/4 (spec IN-2).
    a, model, exp = quadratic_case()
    sigma, n = 0.3, 200_000
    res = Infidelity(perturbation="gaussian", sigma=sigma, normalize=False, n_perturbations=n)(
        exp, model, random_state=0, batch_size=n)
    expected = sigma**4 * (float(a.trace()) ** 2 + 2 * float(a.square().sum())) / 4
    se = float(res.extras["stderr"][0, 0])
    assert abs(float(res.scores[0, 0]) - expected) <= 4 * se, (float(res.scores[0, 0]), expected)
    assert se < 0.01 * expected  # the test has power: the MC error is below 1 %
    # the reported MC error agrees with an independent simulation of (eps^T A eps / 2)^2
    eps = np.random.default_rng(1).normal(scale=sigma, size=(400_000, 5))
    sq = (0.5 * np.einsum("ti,ij,tj->t", eps, a.double().numpy(), eps)) ** 2
    assert abs(se / (sq.std() / math.sqrt(n)) - 1) < 0.1


def test_quadratic_gradient_beta_is_one():
    # E[a b] = E[a^2] for Phi = A x (the residual 1/2 eps^T A eps is uncorrelated with eps^T A x)
    a, model, exp = quadratic_case()
    res = Infidelity(perturbation="gaussian", sigma=0.3, n_perturbations=100_000)(
        exp, model, random_state=1, batch_size=100_000)
    torch.testing.assert_close(float(res.extras["beta"][0, 0]), 1.0, rtol=0, atol=1e-2)


# -- IN-5: 1-D square ----------------------------------------------------------------------
def test_square_1d_equals_third_moment():
    # f = x^2, Phi = 2x, I = -eps: residual eps^2, INFD = E[eps^4] = 3 s^4; Var(eps^4) = 96 s^8.
    class Square(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.square()

    x = torch.tensor([0.7])
    exp = gradient_explanation(Square(), x, 2 * x)
    sigma, n = 0.5, 200_000
    res = Infidelity(perturbation="gaussian", sigma=sigma, normalize=False, n_perturbations=n)(
        exp, Square(), random_state=0, batch_size=n)
    se_exact = math.sqrt(96) * sigma**4 / math.sqrt(n)
    torch.testing.assert_close(float(res.extras["stderr"][0, 0]), se_exact, rtol=0.1, atol=0)
    assert abs(float(res.scores[0, 0]) - 3 * sigma**4) <= 4 * se_exact


# -- parity with captum.metrics.infidelity ---------------------------------------------------
@pytest.mark.parametrize("multiply_by_inputs", [True, False])
@pytest.mark.parametrize("normalize", [True, False])
def test_matches_captum_on_the_same_perturbations(multiply_by_inputs, normalize):
    from captum.metrics import infidelity, infidelity_perturb_func_decorator

    model = models.mlp()
    x = torch.randn(4, 6, generator=torch.Generator().manual_seed(1))
    base = torch.linspace(-0.5, 0.5, 6)
    exp = xai.explain(model, x, method="ig", target=1, baseline=base,
                      multiply_by_inputs=multiply_by_inputs)
    assert exp.multiplies_by_inputs is multiply_by_inputs
    n, seed = 50, 7
    metric = Infidelity(n_perturbations=n, normalize=normalize)
    res = metric(exp, model, random_state=seed)
    # our draws: one generator per example from the metric's seed
    gens = example_generators(check_random_state(seed), len(exp))
    noisy = torch.stack([metric.sample(fs, n, g) for fs, g in zip(exp.features, gens, strict=True)])
    pos = [0]

    @infidelity_perturb_func_decorator(multiply_by_inputs)
    def perturb(inputs, baselines):
        # captum asks for m samples of every example at a time, example-major
        m = inputs.shape[0] // len(exp)
        chunk = noisy[:, pos[0]:pos[0] + m].reshape(-1, 6)
        pos[0] += m
        return chunk

    expected = infidelity(model, perturb, x, exp.values[:, 0], baselines=base.expand(4, 6),
                          target=1, n_perturb_samples=n, max_examples_per_batch=4 * 16,
                          normalize=normalize)
    assert pos[0] == n
    torch.testing.assert_close(res.scores[:, 0], expected, rtol=1e-5, atol=1e-7)


# -- text: subset removal through the explanation's feature space ---------------------------
def _by_hand(exp: xai.Explanation, adapter: xai.ModelAdapter, n: int, seed: int,
             scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain and beta-rescaled infidelity of ``scale * exp`` computed from fs.mask directly."""
    gens = example_generators(check_random_state(seed), len(exp))
    full = exp.target.explained_scores()
    plain, rescaled = [], []
    for i, fs in enumerate(exp.features):
        removed = Infidelity.subsets(fs.n_features, n, gens[i])
        with adapter.session(), torch.no_grad():
            after = adapter.predict(fs.mask(~removed))[:, exp.target.indices[i]]
        b = (full[i] - after).double()  # (n, o)
        a = removed.double() @ (scale * exp.values[i][:, exp.valid(i)]).double().T
        beta = (a * b).sum(0) / (a * a).sum(0)
        plain.append(((a - b) ** 2).mean(0))
        rescaled.append(((b - beta * a) ** 2).mean(0))
    return torch.stack(plain).float(), torch.stack(rescaled).float()


def test_text_subsets_match_a_hand_computation(tiny_bert, texts):
    exp = xai.explain(tiny_bert, texts, method="occlusion")
    assert Infidelity().resolved(exp) == ("subset", 100)
    adapter = xai.as_adapter(tiny_bert)
    plain, rescaled = _by_hand(exp, adapter, n=3, seed=5)
    for normalize, expected in ((False, plain), (True, rescaled)):
        res = Infidelity(n_perturbations=3, normalize=normalize)(exp, tiny_bert, random_state=5)
        assert res.extras["perturbation"] == "subset"
        assert res.extras["n_perturbations"] == 3
        torch.testing.assert_close(res.scores, expected, rtol=1e-5, atol=1e-7)


def test_rescaled_infidelity_is_invariant_to_attribution_scale(tiny_bert, texts):
    # beta absorbs any positive or negative rescaling (captum issue #613); the plain
    # definition does not: it follows mean((10 a - b)^2).
    exp = xai.explain(tiny_bert, texts, method="occlusion")
    big = dataclasses.replace(exp, values=10 * exp.values)
    adapter = xai.as_adapter(tiny_bert)
    scores = {}
    for normalize in (True, False):
        for name, e in (("x1", exp), ("x10", big)):
            m = Infidelity(n_perturbations=8, normalize=normalize)
            scores[normalize, name] = m(e, tiny_bert, random_state=2).scores
    torch.testing.assert_close(scores[True, "x10"], scores[True, "x1"], rtol=1e-5, atol=1e-7)
    plain10, _ = _by_hand(exp, adapter, n=8, seed=2, scale=10.0)
    torch.testing.assert_close(scores[False, "x10"], plain10, rtol=1e-5, atol=1e-7)
    assert bool(((scores[False, "x10"] - scores[False, "x1"]).abs()
                 > 0.1 * scores[False, "x1"]).all())


def test_subset_sizes_are_uniform_then_subsets_uniform():
    # size k ~ U{1..d}; given k, each feature is removed with probability k/d, so overall
    # P(removed) = E[k]/d = (d+1)/(2d) = 0.625 for d = 4 (binomial SE ~ 0.0024 at n = 40000).
    removed = Infidelity.subsets(4, 40_000, torch.Generator().manual_seed(0))
    sizes = removed.sum(1)
    share = torch.stack([(sizes == k).double().mean() for k in range(1, 5)])
    torch.testing.assert_close(share, torch.full((4,), 0.25, dtype=torch.float64),
                               rtol=0, atol=0.01)
    torch.testing.assert_close(removed.double().mean(0),
                               torch.full((4,), 0.625, dtype=torch.float64), rtol=0, atol=0.01)
    two = removed[sizes == 2]  # the 6 pairs are equally likely
    pairs = torch.unique(two.long() @ torch.tensor([1, 2, 4, 8]), return_counts=True)[1]
    assert pairs.numel() == 6
    torch.testing.assert_close(pairs.double() / two.shape[0],
                               torch.full((6,), 1 / 6, dtype=torch.float64), rtol=0, atol=0.02)


def test_gaussian_noise_is_centred_on_the_baseline():
    # the noisy baseline x~ = baseline + eps, eps ~ N(0, sigma^2) per element (not x + eps)
    fs = xai.TensorFeatures(torch.tensor([3.0, -2.0]), torch.tensor([0.5, 1.0]))
    noisy = Infidelity(sigma=0.2).sample(fs, 40_000, torch.Generator().manual_seed(0))
    assert noisy.shape == (40_000, 2)
    # SE of the mean 0.2 / 200 = 0.001; of the std about 0.2 / sqrt(2 * 40000) = 0.0007
    torch.testing.assert_close(noisy.mean(0), fs.base, rtol=0, atol=0.004)
    torch.testing.assert_close(noisy.std(0), torch.full((2,), 0.2), rtol=0, atol=0.003)


# -- seeds, batching, model calls ------------------------------------------------------------
def test_seeds_batches_and_model_calls():
    w = np.array([1.0, -2.0, 0.5, 0.0])
    adapter = xai.CallableAdapter(lambda z: np.tanh(z @ w))
    x = np.random.default_rng(0).normal(size=(4, 4))
    exp = xai.explain(adapter, x, method="occlusion")
    metric = Infidelity(n_perturbations=50)
    before = adapter.n_calls
    first = metric(exp, adapter, random_state=3, batch_size=7)
    # 4 examples x 50 perturbations = 200 rows in ceil(200 / 7) = 29 calls (+1: the check
    # that the explanation belongs to this model)
    assert first.extras["n_model_calls"] == 29
    assert adapter.n_calls - before == 29 + 1
    again = metric(exp, adapter, random_state=3, batch_size=200)
    torch.testing.assert_close(again.scores, first.scores, rtol=1e-6, atol=0)
    assert again.extras["n_model_calls"] == 1
    other = metric(exp, adapter, random_state=4)
    assert bool((other.scores != first.scores).all())
    # batch invariance: an example scores the same alone as in the batch
    alone = metric(exp[[2]], adapter, random_state=3)
    torch.testing.assert_close(alone.scores[0], first.scores[2], rtol=1e-6, atol=0)
    # registered under its name
    via = metrics.evaluate(exp, adapter, metrics=["infidelity"], random_state=11)["infidelity"]
    assert via.higher_is_better is False
    assert via.extras["n_perturbations"] == 1000  # tabular default


def test_chunks_of_examples_give_the_same_scores(monkeypatch):
    # large inputs are scored a few examples at a time; the scores do not depend on it
    import metrics.infidelity as module

    model = models.mlp()
    x = torch.randn(5, 6, generator=torch.Generator().manual_seed(2))
    exp = xai.explain(model, x, method="ig", target=0)
    metric = Infidelity(n_perturbations=20)
    whole = metric(exp, model, random_state=0, batch_size=16)
    monkeypatch.setattr(module, "_MAX_ELEMENTS", 2 * 20 * 6)  # two examples per chunk
    parts = metric(exp, model, random_state=0, batch_size=16)
    torch.testing.assert_close(parts.scores, whole.scores, rtol=1e-6, atol=0)
    assert whole.extras["n_model_calls"] == math.ceil(5 * 20 / 16)  # 7
    assert parts.extras["n_model_calls"] == 3 + 3 + 2  # ceil(40/16) + ceil(40/16) + ceil(20/16)


# -- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("params", "parameter"), [
    ({"n_perturbations": 0}, "n_perturbations"),
    ({"sigma": -1.0}, "sigma"),
    ({"sigma": 0.0}, "sigma"),
    ({"perturbation": "noise"}, "perturbation"),
    ({"normalize": "yes"}, "normalize"),
])
def test_bad_parameters_are_typed_errors(params, parameter):
    with pytest.raises(InvalidParameterError, match=repr(parameter)) as info:
        Infidelity(**params)
    assert info.value.parameter == parameter


def test_gaussian_on_text_suggests_subset(tiny_bert, texts):
    exp = xai.explain(tiny_bert, texts[:1], method="occlusion")
    with pytest.raises(InvalidParameterError, match="perturbation='subset'") as info:
        Infidelity(perturbation="gaussian")(exp, tiny_bert)
    assert info.value.parameter == "perturbation"
    assert "'gaussian'" in str(info.value)


def test_constant_model_is_flagged():
    # b = 0 for every perturbation: the rescaled score is 0 for any explanation (degenerate)
    adapter = xai.CallableAdapter(lambda z: np.full(len(z), 2.0))
    exp = xai.explain(adapter, np.ones((2, 3)), method="occlusion")
    noisy = dataclasses.replace(exp, values=torch.ones_like(exp.values))
    with pytest.warns(XAIWarning, match="does not change"):
        res = Infidelity(n_perturbations=10)(noisy, adapter, random_state=0)
    torch.testing.assert_close(res.scores, torch.zeros(2, 1), rtol=0, atol=0)
    torch.testing.assert_close(res.extras["beta"], torch.zeros(2, 1), rtol=0, atol=0)
