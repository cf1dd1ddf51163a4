"""Integrated Gradients: closed forms, completeness, parity with captum, chunked paths."""

from __future__ import annotations

import warnings

import models
import pytest
import torch
from captum.attr import IntegratedGradients as CaptumIG
from captum.attr import LayerIntegratedGradients

import xai


def test_linear_model_equals_w_times_x_minus_baseline():
    # IG of f(x) = w.x + c is exactly w * (x - b) for every quadrature rule whose weights sum to 1.
    gen = torch.Generator().manual_seed(0)
    w, x, b = (torch.randn(5, generator=gen) for _ in range(3))
    model = models.Linear(w, 0.3)
    for rule in ("gausslegendre", "riemann_left", "riemann_middle", "riemann_right"):
        exp = xai.explain(model, x[None], method="ig", baseline=b, n_steps=7, integration=rule)
        torch.testing.assert_close(exp.values[0, 0], w * (x - b), rtol=0, atol=1e-5)


def test_ig_paper_toy_model():
    # f(x1, x2) = ReLU(ReLU(x1) - 1 - ReLU(x2)) at (3, 1), baseline 0: the path crosses the kink
    # at alpha = 0.5, so IG = (3 * 0.5, -1 * 0.5). Gauss-Legendre with even n has no node at 0.5
    # and its weights above 0.5 sum to exactly 0.5, so the quadrature is exact.
    exp = xai.explain(models.IGPaperModel(), torch.tensor([[3.0, 1.0]]), method="ig", n_steps=50)
    torch.testing.assert_close(exp.values[0, 0], torch.tensor([1.5, -0.5]), rtol=0, atol=1e-5)


def test_completeness_on_mlp(mlp3):
    # Completeness: sum_i IG_i = f(x) - f(x'); GL with 50 nodes on a smooth tanh MLP is exact to
    # float32 round-off (the spec's check IG-2 gives |delta| ~ 1e-15 in float64).
    x = torch.randn(4, 6, generator=torch.Generator().manual_seed(1))
    exp = xai.explain(mlp3, x, method="ig", target=1)
    span = exp.predictions - exp.base_values
    torch.testing.assert_close(exp.values.sum(-1), span, rtol=0, atol=1e-5)
    torch.testing.assert_close(exp.extras["convergence_delta"], exp.values.sum(-1) - span,
                               rtol=0, atol=1e-6)


def test_sensitivity_a_example():
    # Spec IG-1: f(x) = 1 - ReLU(1 - x), x = 2, x' = 0. The gradient at x is 0, IG (GL, n=50)
    # is exactly 1 = f(x) - f(x'); right Riemann with n=1000 gives 0.998 (499 nodes below the kink
    # contribute 1 each, weight 2/1000).
    model = xai.CallableAdapter(lambda t: 1 - torch.relu(1 - t), accepts="tensor")
    module = _Fn(lambda t: 1 - torch.relu(1 - t))
    exp = xai.explain(module, torch.tensor([[2.0]]), method="ig", n_steps=50)
    torch.testing.assert_close(exp.values[0, 0, 0], torch.tensor(1.0), rtol=0, atol=1e-6)
    exp = xai.explain(module, torch.tensor([[2.0]]), method="ig", n_steps=1000,
                      integration="riemann_right", tolerance=0.5)
    torch.testing.assert_close(exp.values[0, 0, 0], torch.tensor(0.998), rtol=0, atol=1e-5)
    assert model.capabilities == xai.Capability.FORWARD


def test_symmetry_preservation():
    # Spec IG-5: F = sigmoid(x1 + x2) at (1.3, 1.3): both get (sigmoid(2.6) - 0.5) / 2.
    module = _Fn(lambda t: torch.sigmoid(t.sum(1, keepdim=True)))
    exp = xai.explain(module, torch.tensor([[1.3, 1.3]]), method="ig")
    expected = (torch.sigmoid(torch.tensor(2.6)) - 0.5) / 2
    torch.testing.assert_close(exp.values[0, 0], expected.repeat(2), rtol=0, atol=1e-6)


def test_parity_with_captum(mlp3):
    x = torch.randn(3, 6, generator=torch.Generator().manual_seed(2))
    base = torch.full((6,), 0.25)
    ours = xai.explain(mlp3, x, method="ig", target=[0, 2, 1], baseline=base, n_steps=32)
    ref = CaptumIG(mlp3).attribute(x, baselines=base.expand_as(x), target=[0, 2, 1], n_steps=32)
    torch.testing.assert_close(ours.values[:, 0], ref, rtol=0, atol=1e-5)


def test_multiply_by_inputs_false_gives_integrated_gradient(mlp3):
    x = torch.randn(2, 6, generator=torch.Generator().manual_seed(3))
    on = xai.explain(mlp3, x, method="ig", target=0)
    off = xai.explain(mlp3, x, method="ig", target=0, multiply_by_inputs=False)
    torch.testing.assert_close(off.values * x[:, None, :], on.values, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(off.extras["convergence_delta"], on.extras["convergence_delta"],
                               rtol=0, atol=1e-5)


def test_convergence_warning_when_too_few_steps(mlp3):
    x = 3 * torch.randn(2, 6, generator=torch.Generator().manual_seed(4))
    with pytest.warns(xai.ConvergenceWarning, match="Increase n_steps"):
        xai.explain(mlp3, x, method="ig", n_steps=1, target=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        xai.explain(mlp3, x, method="ig", n_steps=64, target=0)


def test_text_matches_captum_layer_ig(tiny_bert):
    model, tok = tiny_bert
    texts = ["the movie was great", "boring filmed plot"]
    exp = xai.explain((model, tok), texts, method="ig", granularity="token", target=1, n_steps=20)
    enc = tok(texts, return_tensors="pt", padding=True)
    ids, attn = enc["input_ids"], enc["attention_mask"]
    content = attn.bool() & ~torch.tensor(
        [tok.get_special_tokens_mask(r, already_has_special_tokens=True) for r in ids.tolist()],
        dtype=torch.bool)
    base = torch.where(content, torch.full_like(ids, tok.pad_token_id), ids)

    def fwd(i, a):
        return model(input_ids=i, attention_mask=a).logits

    lig = LayerIntegratedGradients(fwd, model.get_input_embeddings())
    ref = lig.attribute(ids, baselines=base, target=1, n_steps=20,
                        additional_forward_args=(attn,)).sum(-1)
    for i in range(2):
        expected = ref[i][content[i]]
        n = expected.shape[0]
        torch.testing.assert_close(exp.values[i, 0, :n], expected, rtol=0, atol=1e-5)
    # completeness on a transformer within the authors' 5% rule (spec IG-6)
    span = (exp.predictions - exp.base_values).abs()
    assert bool((exp.extras["convergence_delta"].abs() <= 0.05 * span + 1e-6).all())


def test_words_are_sums_of_their_tokens(tiny_bert):
    # "filmed" is two WordPiece tokens (film, ##ed); word values sum token values (completeness).
    text = ["fun filmed plot"]
    tokens = xai.explain(tiny_bert, text, method="ig", granularity="token", n_steps=16)
    words = xai.explain(tiny_bert, text, method="ig", granularity="word", n_steps=16)
    assert tokens.feature_names[0] == ("fun", "film", "ed", "plot")
    assert words.feature_names[0] == ("fun", "filmed", "plot")
    t = tokens.values[0, 0]
    torch.testing.assert_close(words.values[0, 0], torch.stack([t[0], t[1] + t[2], t[3]]),
                               rtol=0, atol=1e-6)


def test_path_is_chunked_by_batch_size(tiny_bert):
    # Memory is bounded: no forward call sees more than batch_size rows, however many steps.
    model, tok = tiny_bert
    seen = []
    handle = model.get_input_embeddings().register_forward_hook(
        lambda m, i, o: seen.append(o.shape[0]))
    try:
        small = xai.explain((model, tok), ["the movie was great"], method="ig", n_steps=100,
                            batch_size=8, target=0)
    finally:
        handle.remove()
    assert max(seen) <= 8
    big = xai.explain((model, tok), ["the movie was great"], method="ig", n_steps=100, target=0)
    torch.testing.assert_close(small.values, big.values, rtol=0, atol=1e-5)


class _Fn(torch.nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def test_explanation_records_whether_values_are_multiplied_by_inputs(mlp3):
    x = torch.randn(1, 6)
    assert xai.explain(mlp3, x, method="ig", target=0, n_steps=4).multiplies_by_inputs
    assert not xai.explain(mlp3, x, method="ig", target=0, n_steps=4,
                           multiply_by_inputs=False).multiplies_by_inputs


def test_more_examples_than_batch_size(mlp3, tiny_bert):
    # The examples are split so that no forward sees more than batch_size rows, with the same
    # values as one big batch (captum alone would warn and run every row at once).
    x = torch.randn(50, 6, generator=torch.Generator().manual_seed(5))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        small = xai.explain(mlp3, x, method="ig", target=0, batch_size=8, n_steps=16)
        texts = ["the movie was great fun", "bad", "a very boring plot", "fun"]
        t_small = xai.explain(tiny_bert, texts, method="ig", batch_size=2, n_steps=8)
    big = xai.explain(mlp3, x, method="ig", target=0, batch_size=1024, n_steps=16)
    t_big = xai.explain(tiny_bert, texts, method="ig", batch_size=64, n_steps=8)
    torch.testing.assert_close(small.values, big.values, rtol=0, atol=1e-5)
    torch.testing.assert_close(t_small.values, t_big.values, rtol=0, atol=1e-5)
