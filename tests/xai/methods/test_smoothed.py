"""Smoothed (SmoothGrad-style wrapper): exact values on linear models, fixed target, one inner
call, forward-only inner methods, compatibility errors and parameter round trips."""

from __future__ import annotations

import models
import numpy as np
import pytest
import torch

import xai
from xai import METHODS
from xai.testing import (
    adapter_fixtures,
    check_batch_invariance,
    check_explanation_shape,
    check_seed,
)


def test_ig_on_a_linear_model_averages_w_times_noisy_input():
    # IG (baseline 0) of f = x @ w + b at x + eps is w * (x + eps), exactly; the mean over the
    # drawn noise is w * (x + mean eps). base_values = f(0) = b.
    w = torch.tensor([[2.0], [-1.0], [0.5]])
    model = models.Linear(w, 0.7)
    x = torch.tensor([[1.0, 2.0, -3.0], [0.5, -0.5, 4.0]])
    sm = xai.Smoothed(method=xai.IntegratedGradients(n_steps=4), n_samples=8, noise=0.3)
    exp = xai.explain(model, x, method=sm, random_state=0)
    eps = sm.draw_noise(2, (3,), random_state=0)  # (2, 8, 3): what explain drew
    assert float(eps.std()) == pytest.approx(0.3, rel=0.3)
    expected = w[:, 0] * (x + eps.mean(1))
    torch.testing.assert_close(exp.values[:, 0], expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(exp.base_values, torch.full((2, 1), 0.7), rtol=0, atol=1e-6)
    # completeness on average: sum(values) = mean f(x + eps) - f(0)
    mean_out = ((x.unsqueeze(1) + eps) @ w).mean(1) + 0.7
    torch.testing.assert_close(exp.values.sum(-1), mean_out - 0.7, rtol=0, atol=1e-5)
    # the Monte-Carlo standard error of the smoothing: sd over copies of w * eps / sqrt(8)
    torch.testing.assert_close(exp.extras["stderr"][:, 0],
                               (w[:, 0] * eps).std(1) / 8 ** 0.5, rtol=1e-4, atol=1e-6)


def test_zero_noise_gives_the_inner_method():
    x = torch.randn(3, 6, generator=torch.Generator().manual_seed(0))
    model = models.mlp()
    ig = xai.IntegratedGradients(n_steps=16)
    plain = xai.explain(model, x, method=ig, target="all")
    smooth = xai.explain(model, x, method=xai.Smoothed(method=ig, n_samples=3, noise=0.0),
                         target="all", random_state=0)
    torch.testing.assert_close(smooth.values, plain.values, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(smooth.base_values, plain.base_values, rtol=1e-5, atol=1e-6)


@pytest.mark.filterwarnings("ignore::xai.ConvergenceWarning")  # n_steps=8 on purpose: cheap
def test_inner_target_is_fixed_to_the_class_explained_at_x():
    # Large noise flips the predicted class of many copies; every copy still explains the class
    # predicted at the clean input, so the values are the mean of IG for that class.
    model = models.mlp()
    x = torch.randn(4, 6, generator=torch.Generator().manual_seed(1)) * 0.3
    sm = xai.Smoothed(method=xai.IntegratedGradients(n_steps=8), n_samples=16, noise=2.0)
    exp = xai.explain(model, x, method=sm, target="predicted", random_state=3)
    eps = sm.draw_noise(4, (6,), random_state=3)
    noisy = (x.unsqueeze(1) + eps).reshape(-1, 6)
    flips = model(noisy).argmax(1).reshape(4, 16) != exp.target.indices
    assert bool(flips.any())
    fixed = exp.target.indices.repeat_interleave(16, 0)[:, 0].tolist()
    by_hand = xai.explain(model, noisy, method=sm.method, target=fixed)
    torch.testing.assert_close(exp.values[:, 0], by_hand.values[:, 0].reshape(4, 16, 6).mean(1),
                               rtol=1e-5, atol=1e-6)


@pytest.fixture
def inner_calls(monkeypatch):
    """The number of rows of every call Smoothed makes to its inner Occlusion."""
    calls = []
    original = xai.Occlusion.explain

    def counting(self, model, inputs, **kwargs):
        calls.append(len(inputs))
        return original(self, model, inputs, **kwargs)

    monkeypatch.setattr(xai.Occlusion, "explain", counting)
    return calls


def test_all_noisy_copies_in_one_inner_call(inner_calls):
    calls = inner_calls
    x = np.random.default_rng(0).normal(size=(5, 4))
    xai.explain(models.mlp(n_in=4), x, method=xai.Smoothed(method=xai.Occlusion(), n_samples=6),
                target=0, random_state=0)
    assert calls == [30]


def test_copies_go_to_the_inner_method_batch_size_rows_at_a_time(inner_calls):
    # bounded memory (issue 10): 120 noisy copies with batch_size=16 are 7 calls of 16 and one
    # of 8, and give the values of one call with all 120
    calls = inner_calls
    x3 = torch.randn(3, 6, generator=torch.Generator().manual_seed(0))
    sm = xai.Smoothed(method=xai.Occlusion(), n_samples=40, noise=0.5)
    adapter = xai.CallableAdapter(lambda a: (a**2).sum(1), n_features=6)
    small = xai.explain(adapter, x3.numpy(), method=sm, batch_size=16, random_state=1)
    assert calls == [16] * 7 + [8]
    calls.clear()
    whole = xai.explain(adapter, x3.numpy(), method=sm, batch_size=8192, random_state=1)
    assert calls == [120]
    torch.testing.assert_close(small.values, whole.values, rtol=0, atol=1e-6)
    torch.testing.assert_close(small.extras["stderr"], whole.extras["stderr"], rtol=1e-5,
                               atol=1e-7)
    # Occlusion of sum x^2 is x^2: the mean over the drawn copies, exactly
    eps = sm.draw_noise(3, (6,), random_state=1)
    torch.testing.assert_close(small.values[:, 0], ((x3.unsqueeze(1) + eps) ** 2).mean(1),
                               rtol=1e-5, atol=1e-5)


def test_forward_only_inner_method_on_a_callable_model():
    # Occlusion on f = sum(x^2): value_j = x_j^2 (baseline 0), so the smoothed value is the mean
    # of (x_j + eps_j)^2 over the drawn noise; no gradients needed.
    adapter = xai.CallableAdapter(lambda a: (a ** 2).sum(1), n_features=3)
    x = np.array([[1.0, -2.0, 0.5]])
    sm = xai.Smoothed(method=xai.Occlusion(), n_samples=10, noise=0.5)
    exp = xai.explain(adapter, x, method=sm, random_state=4)
    eps = sm.draw_noise(1, (3,), random_state=4)
    expected = ((torch.tensor(x, dtype=torch.float32).unsqueeze(1) + eps) ** 2).mean(1)
    torch.testing.assert_close(exp.values[:, 0], expected, rtol=1e-5, atol=1e-5)
    assert "smoothed" not in xai.compatible_methods(adapter)  # the default inner IG needs gradients


@pytest.mark.parametrize("fixture", ["callable", "sklearn_logreg", "torch_mlp"])
def test_conformance_checks_with_a_forward_only_inner_method(fixture):
    # The suite runs Smoothed with its default inner method; these cover Occlusion inside.
    fx = next(f for f in adapter_fixtures() if f.name == fixture)
    params = {"method": xai.Occlusion(), "n_samples": 3}
    for check in (check_explanation_shape, check_seed, check_batch_invariance):
        check(xai.Smoothed, params, fx)


def test_conventions_follow_the_inner_method():
    x = torch.randn(2, 6, generator=torch.Generator().manual_seed(2))
    model = models.mlp()
    grad_like = xai.Smoothed(method=xai.IntegratedGradients(n_steps=4, multiply_by_inputs=False),
                             n_samples=2)
    assert not xai.explain(model, x, method=grad_like, target=0).multiplies_by_inputs
    assert xai.explain(model, x, method=xai.Smoothed(n_samples=2), target=0).multiplies_by_inputs
    # the inner method's baseline decides the feature space (used by the metrics)
    mean_base = xai.Smoothed(method=xai.Occlusion(baseline=1.5), n_samples=2)
    exp = xai.explain(model, x, method=mean_base, target=0, random_state=0)
    torch.testing.assert_close(exp.features[0].base, torch.full((6,), 1.5), rtol=0, atol=0)


def test_params_round_trip_and_explain_with_an_instance():
    sm = xai.Smoothed(method=xai.IntegratedGradients(n_steps=6), n_samples=4, noise=0.2)
    x = torch.randn(2, 6, generator=torch.Generator().manual_seed(3))
    exp = xai.explain(models.mlp(), x, method=sm, target=1, random_state=0)
    assert exp.method == "smoothed"
    assert METHODS.get("smoothed")(**exp.params) == sm
    assert exp.params["method"] == xai.IntegratedGradients(n_steps=6)
    again = xai.explain(models.mlp(), x, method="smoothed", target=1, random_state=0,
                        **{k: v for k, v in exp.params.items() if k != "method"})
    # by name only the default inner method is reachable (method= names the wrapper itself)
    assert again.params["method"] == xai.IntegratedGradients()


def test_text_smoothing_adds_noise_to_the_embeddings(tiny_bert):
    model, tok = tiny_bert
    texts = ["the movie was great fun", "a boring plot"]
    inner = xai.IntegratedGradients(n_steps=8)
    # noise 0 reproduces the inner method exactly
    zero = xai.explain(tiny_bert, texts, method=xai.Smoothed(method=inner, n_samples=2,
                                                             noise=0.0), random_state=0)
    plain = xai.explain(tiny_bert, texts, method=inner)
    torch.testing.assert_close(zero.values, plain.values, rtol=0, atol=0)
    # a row does not depend on its batch
    sm = xai.Smoothed(method=inner, n_samples=3, noise=0.5)
    both = xai.explain(tiny_bert, texts, method=sm, random_state=1)
    alone = xai.explain(tiny_bert, texts[1:], method=sm, random_state=1)
    torch.testing.assert_close(alone.values[0], both.values[1, :, :3], rtol=0, atol=1e-7)
    # each copy is IG at noisy embeddings: completeness holds per copy, so the smoothed values
    # sum to the mean of f(x + eps) - f(b + eps) = predictions at the noisy copies minus bases
    assert float(both.extras["embedding_noise_std"]) == pytest.approx(
        0.5 * float(model.get_input_embeddings().weight.std()), rel=1e-6)
    assert not torch.allclose(both.values, plain.values)


def test_text_models_without_embeddings_are_rejected(tiny_bert):
    from xai.adapters._transformers import HFClassifierAdapter

    class NoEmbeddings(HFClassifierAdapter):
        capabilities = xai.Capability.FORWARD | xai.Capability.TOKENIZER

    with pytest.raises(xai.IncompatibleModelError, match="without an embedding layer") as info:
        xai.explain(NoEmbeddings(*tiny_bert), ["the movie was great"],
                    method=xai.Smoothed(method=xai.Occlusion(), n_samples=2))
    assert info.value.method == "smoothed"


def test_inner_method_incompatibility_names_both_methods():
    adapter = xai.CallableAdapter(lambda a: a.sum(1), n_features=3)
    with pytest.raises(xai.IncompatibleModelError,
                       match=r"'smoothed' cannot smooth 'integrated_gradients'.*GRADIENTS"):
        xai.explain(adapter, np.ones((1, 3)), method=xai.Smoothed())


@pytest.mark.parametrize(("param", "bad"), [("method", "integrated_gradients"),
                                             ("n_samples", 0), ("noise", -0.1)])
def test_bad_parameters_name_the_parameter(param, bad):
    with pytest.raises(xai.InvalidParameterError, match=f"'{param}'") as info:
        xai.Smoothed(**{param: bad})
    assert info.value.parameter == param
