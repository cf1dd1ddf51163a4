"""Max/avg sensitivity: closed forms (S-1, S-2), Yeh et al. Theorem 4.1 (SM-1, SM-2), captum
parity, one batched re-explanation, seeds, bad input, and word substitution for text."""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import models
import pytest
import torch

import metrics
import xai
from metrics.sensitivity import substitute_words, whole_word_vocabulary
from xai import METHODS
from xai.methods import AttributionOutput


def _phi(v: float) -> float:
    """Standard normal CDF."""
    return 0.5 * (1 + math.erf(v / math.sqrt(2)))


@dataclasses.dataclass(frozen=True, kw_only=True)
class PlainGradient(xai.Method):
    """Test method: the plain gradient df/dx (not multiplied by the input)."""

    requires = xai.Capability.GRADIENTS

    @property
    def multiplies_by_inputs(self) -> bool:
        return False

    def _attribute(self, adapter, batch, features, target, *, batch_size, rng):
        x = batch.inputs.clone().requires_grad_(True)
        with torch.enable_grad():
            out = adapter.forward_tensor(x).gather(1, target.indices)
            grads = [torch.autograd.grad(out[:, o].sum(), x, retain_graph=True)[0]
                     for o in range(out.shape[1])]
        return AttributionOutput(torch.stack(grads, 1).flatten(2))


@dataclasses.dataclass(frozen=True, kw_only=True)
class Constant(xai.Method):
    """Test method: the same values (1, 2, ..., d) for every input; counts its calls."""

    calls: ClassVar[list[int]] = []  # rows per call, shared on purpose

    def _attribute(self, adapter, batch, features, target, *, batch_size, rng):
        Constant.calls.append(len(batch))
        d = features[0].n_features
        values = torch.arange(1, d + 1, dtype=torch.float32).expand(len(batch), target.n_outputs, d)
        return AttributionOutput(values.clone())


@pytest.fixture
def scoped_methods():
    with METHODS.scoped():
        xai.register_method("plain_gradient")(PlainGradient)
        xai.register_method("constant")(Constant)
        yield


def test_s1_gradient_of_a_linear_model_has_zero_sensitivity():
    # S-1: f = w^T x, IG without the input factor is exactly w everywhere -> mu_M = mu_A = 0.
    w = torch.tensor([[1.5], [-2.0], [0.5], [3.0]])
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    model = models.Linear(w, 0.3)
    exp = xai.explain(model, x, method="ig", n_steps=4, multiply_by_inputs=False)
    for metric in (metrics.MaxSensitivity(radius=0.2), metrics.AvgSensitivity(radius=0.2)):
        res = metric(exp, model, random_state=0)
        torch.testing.assert_close(res.scores, torch.zeros(3, 1), rtol=0, atol=1e-7)


def test_s2_input_times_gradient_of_1d_linear_model():
    # S-2: f = 3x, IG with baseline 0 = 3x; |Phi(z) - Phi(x)| = 3|delta|, delta ~ U[-r, r]:
    # mu_A = 3r/2 = 0.3 (MC sd of 3|delta| is 3r/sqrt(12) = 0.173; tolerance 4 sd/sqrt(n));
    # mu_M -> 3r = 0.6 from below (E[max] = 0.6 n/(n+1)).
    model = models.Linear(torch.tensor([[3.0]]))
    exp = xai.explain(model, torch.tensor([[0.5]]), method="ig", n_steps=2)
    n, r = 20000, 0.2
    kw = {"radius": r, "n_samples": n, "normalize": False}
    avg = metrics.AvgSensitivity(**kw)(exp, model, random_state=0, batch_size=100_000)
    mx = metrics.MaxSensitivity(**kw)(exp, model, random_state=0, batch_size=100_000)
    tol = 4 * 3 * r / math.sqrt(12) / math.sqrt(n)
    torch.testing.assert_close(avg.scores, torch.tensor([[0.3]]), rtol=0, atol=tol)
    torch.testing.assert_close(mx.scores, torch.tensor([[0.6]]), rtol=0, atol=1e-3)
    assert float(mx.scores) <= 0.6 + 1e-6
    # the distances are 3|delta| for exactly the perturbations the metric reports
    z = metrics.AvgSensitivity(**kw).perturbations(exp, model, random_state=0)[0]
    torch.testing.assert_close(avg.extras["distances"][0, 0], 3 * (z[:, 0] - 0.5).abs(),
                               rtol=1e-5, atol=1e-6)


def test_parity_with_captum_sensitivity_max():
    from captum.attr import IntegratedGradients
    from captum.metrics import sensitivity_max

    model = models.mlp()
    x = torch.randn(4, 6, generator=torch.Generator().manual_seed(0))
    exp = xai.explain(model, x, method="ig", n_steps=16, target="predicted")
    metric = metrics.MaxSensitivity(n_samples=10, radius=0.05)
    ours = metric(exp, model, random_state=0)
    z = torch.cat(metric.perturbations(exp, model, random_state=0))  # (4 * 10, 6)

    def perturb(inputs):
        # captum repeats each example n_perturb_samples times, in our order
        torch.testing.assert_close(inputs, x.repeat_interleave(10, dim=0), rtol=0, atol=0)
        return z

    theirs = sensitivity_max(IntegratedGradients(model).attribute, x, perturb_func=perturb,
                             n_perturb_samples=10, target=exp.target.indices[:, 0].tolist(),
                             n_steps=16, baselines=0.0)
    torch.testing.assert_close(ours.scores[:, 0], theirs, rtol=1e-5, atol=0)


def test_sm1_sm2_smoothing_lowers_max_sensitivity_of_the_relu_step(scoped_methods):
    # Yeh et al. Theorem 4.1 example: f = relu(x), x = 0.05, r = 0.1. The gradient is a step,
    # so SENS_MAX = 1 as soon as some z < 0. The Gaussian-smoothed gradient (sigma = 0.2) is
    # Phi_k(y) = Phi_N(y / 0.2): SENS_MAX = Phi_N(0.25) - Phi_N(-0.25) = 0.197413, below the
    # bound P(|z| < 0.1), z ~ N(0.05, 0.2^2), = 0.372079.
    model, x, r, sigma = torch.nn.ReLU(), torch.tensor([[0.05]]), 0.1, 0.2
    exact = max(_phi(0.75) - _phi(0.25), _phi(0.25) - _phi(-0.25))
    bound = _phi((0.1 - 0.05) / sigma) - _phi((-0.1 - 0.05) / sigma)
    assert abs(exact - 0.197413) < 1e-6
    assert abs(bound - 0.372079) < 1e-6
    metric = metrics.MaxSensitivity(radius=r, n_samples=30, normalize=False)
    avg = metrics.AvgSensitivity(radius=r, n_samples=30, normalize=False)

    plain = xai.explain(model, x, method="plain_gradient")
    z = metric.perturbations(plain, model, random_state=1)[0][:, 0]
    assert float(metric(plain, model, random_state=1).scores) == 1.0
    # avg: the share of perturbations that cross the kink, exactly
    assert float(avg(plain, model, random_state=1).scores) == pytest.approx(
        float((z < 0).double().mean()), abs=1e-7)

    m = 2000
    smoothed = xai.explain(model, x, method=xai.Smoothed(method=PlainGradient(), n_samples=m,
                                                          noise=sigma), random_state=0)
    score = float(metric(smoothed, model, random_state=1).scores)
    # Every re-explained row shares the same m noise draws, so the score is the share of draws
    # in (-x, -min z]: Binomial(m, p)/m with p = Phi_N(x/s) - Phi_N(min z/s) (the sample's
    # worst point; the z > x side has a smaller p). Tolerance: 4 binomial sd.
    p = _phi(0.05 / sigma) - _phi(float(z.min()) / sigma)
    assert abs(score - p) < 4 * math.sqrt(p * (1 - p) / m), (score, p)
    assert abs(score - exact) < 4 * math.sqrt(p * (1 - p) / m) + (exact - p)
    assert score <= bound


class _Kink(torch.nn.Module):
    """f(x) = relu(x0 - x1): IG (baseline 0) is (x0, -x1) where x0 > x1 and 0 elsewhere."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x[:, :1] - x[:, 1:2])


@pytest.mark.filterwarnings("ignore::xai.ConvergenceWarning")  # IG across the kink, on purpose
def test_smoothed_ig_lowers_max_sensitivity_across_a_kink():
    # Yeh et al. Table 1 direction (IG-SG below IG) with the real machinery: 0.01-0.02 from the
    # kink, perturbations of radius 0.02 cross it, where IG drops to 0: ||0 - a|| / ||a|| = 1
    # exactly. Smoothing with noise 0.2 makes the explanation continuous.
    model, x = _Kink(), torch.tensor([[1.0, 0.99], [0.5, 0.48]])
    metric = metrics.MaxSensitivity(radius=0.02, n_samples=10)
    ig = xai.IntegratedGradients(n_steps=8)
    plain = metric(xai.explain(model, x, method=ig), model, random_state=0)
    torch.testing.assert_close(plain.scores, torch.ones(2, 1), rtol=0, atol=1e-6)
    smoothed_exp = xai.explain(model, x, method=xai.Smoothed(method=ig, n_samples=64, noise=0.2),
                               random_state=0)
    # batch_size >= the 2 * 11 * 64 re-explained rows: captum's IG warns below that
    smoothed = metric(smoothed_exp, model, random_state=0, batch_size=4096)
    assert float(smoothed.scores.max()) < 0.25, smoothed.scores  # measured 0.055, 0.101


def test_all_reexplanations_in_one_explain_call_and_constant_explainer_scores_zero(
        scoped_methods, mlp3):
    x = torch.randn(5, 6, generator=torch.Generator().manual_seed(2))
    exp = xai.explain(mlp3, x, method="constant", target="all")
    Constant.calls.clear()
    res = metrics.MaxSensitivity(n_samples=7)(exp, mlp3, random_state=0)
    assert Constant.calls == [5 * (7 + 1)]  # one call: the 5 inputs and their 35 perturbations
    assert res.extras["n_explain_calls"] == 1
    torch.testing.assert_close(res.scores, torch.zeros(5, 3), rtol=0, atol=0)


def test_ig_reexplained_in_one_call(mlp3, monkeypatch):
    calls = []
    original = xai.IntegratedGradients.explain

    def counting(self, model, inputs, **kwargs):
        calls.append(len(inputs))
        return original(self, model, inputs, **kwargs)

    x = torch.randn(3, 6, generator=torch.Generator().manual_seed(3))
    exp = xai.explain(mlp3, x, method="ig", n_steps=8, target="predicted")
    monkeypatch.setattr(xai.IntegratedGradients, "explain", counting)
    res = metrics.AvgSensitivity(n_samples=4)(exp, mlp3, random_state=0)
    assert calls == [3 * 5]
    # a deterministic method re-explains x exactly: the seed-noise floor is ~0
    torch.testing.assert_close(res.extras["reference_gap"], torch.zeros(3, 1), rtol=0, atol=1e-5)


def test_stochastic_method_is_compared_at_the_same_seed(mlp3):
    # Shapley sampling with few permutations is noisy, but the reference is re-explained with
    # the perturbed inputs at one seed: with radius -> 0 the sensitivity goes to 0 while the gap
    # to the original explanation (another seed) stays at the sampling noise.
    x = torch.randn(2, 6, generator=torch.Generator().manual_seed(4))
    exp = xai.explain(mlp3, x, method="shapley_sampling", n_permutations=2, target="predicted",
                      random_state=5, max_exact=0)
    res = metrics.MaxSensitivity(radius=1e-6, n_samples=5)(exp, mlp3, random_state=0)
    assert float(res.scores.max()) < 1e-4
    assert float(res.extras["reference_gap"].min()) > 1e-3


def test_seeds_reproducible(mlp3):
    x = torch.randn(3, 6, generator=torch.Generator().manual_seed(5))
    exp = xai.explain(mlp3, x, method="ig", n_steps=8, target="predicted")
    metric = metrics.MaxSensitivity(radius=0.1)
    a = metric(exp, mlp3, random_state=0).scores
    b = metric(exp, mlp3, random_state=0).scores
    c = metric(exp, mlp3, random_state=1).scores
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(a, c)


def test_norm_inf_and_normalize(mlp3):
    x = torch.randn(2, 6, generator=torch.Generator().manual_seed(6))
    exp = xai.explain(mlp3, x, method="ig", n_steps=8, target="predicted")
    raw = metrics.MaxSensitivity(norm="inf", normalize=False, radius=0.1)(exp, mlp3,
                                                                           random_state=0)
    rel = metrics.MaxSensitivity(norm="inf", radius=0.1)(exp, mlp3, random_state=0)
    # same perturbations and seed: normalising divides by max |a| of the reference
    ref = xai.explain(mlp3, x, method="ig", n_steps=8, target=exp.target.indices[:, 0].tolist())
    torch.testing.assert_close(rel.scores, raw.scores / ref.values.abs().amax(-1),
                               rtol=1e-5, atol=0)


@pytest.mark.parametrize(("param", "bad"), [("radius", 0.0), ("radius", -0.1),
                                             ("n_samples", 0), ("norm", "l1"),
                                             ("normalize", "yes"), ("n_substitutions", 0)])
def test_bad_parameters_name_the_parameter(param, bad):
    for cls in (metrics.MaxSensitivity, metrics.AvgSensitivity):
        with pytest.raises(xai.InvalidParameterError, match=f"'{param}'") as info:
            cls(**{param: bad})
        assert info.value.parameter == param


def test_registered_names_and_evaluate(mlp3):
    assert metrics.METRICS.get("sensitivity") is metrics.MaxSensitivity
    x = torch.randn(2, 6, generator=torch.Generator().manual_seed(7))
    exp = xai.explain(mlp3, x, method="ig", n_steps=8, target="predicted")
    res = metrics.evaluate(exp, mlp3, metrics=["max_sensitivity", "avg_sensitivity"],
                           random_state=0)
    assert not res["max_sensitivity"].higher_is_better
    assert bool((res["max_sensitivity"].scores >= res["avg_sensitivity"].scores).all())
    # not in the default set: it re-runs the method
    assert "max_sensitivity" not in metrics.evaluate(exp, mlp3, random_state=0)


# -- text ------------------------------------------------------------------------------------

def test_text_word_substitution_keeps_word_count_and_matches_hand_computation(tiny_bert, texts):
    exp = xai.explain(tiny_bert, texts, method="occlusion")
    metric = metrics.MaxSensitivity(n_samples=4)
    res = metric(exp, tiny_bert, random_state=0)
    perturbed = metric.perturbations(exp, tiny_bert, random_state=0)
    adapter = xai.as_adapter(tiny_bert)
    expected = torch.zeros(len(texts), 1)
    for i, text in enumerate(texts):
        words = exp.names[i]
        alone = xai.explain(tiny_bert, [text, *perturbed[i]], method="occlusion",
                            target=[int(exp.target.indices[i, 0])] * 5)
        for p in perturbed[i]:
            fs = adapter.features(adapter.prepare([p]))[0]
            assert fs.n_features == len(words), (text, p)  # the word count is unchanged
            assert sum(a != b for a, b in zip(fs.feature_names, words, strict=True)) <= 1
        a = alone.values[0, 0, :len(words)]
        d = torch.stack([(alone.values[t, 0, :len(words)] - a).norm() / a.norm()
                         for t in range(1, 5)])
        expected[i, 0] = d.max()
    # rtol 1e-4: the metric pads all 15 texts together, which moves BERT's logits by ~1e-6
    torch.testing.assert_close(res.scores, expected, rtol=1e-4, atol=1e-6)
    assert res.extras["n_dropped_samples"].tolist() == [0, 0, 0]
    assert res.extras["n_explain_calls"] == 1


def test_text_samples_that_change_the_feature_count_are_dropped(tiny_bert):
    # Token features of "films fun" are film, ##s, fun. Replacing the "s" span glues a word onto
    # "film" ("filmbad" -> [UNK]), so that perturbed text has fewer features and is left out.
    exp = xai.explain(tiny_bert, ["films fun"], method="occlusion", granularity="token")
    metric = metrics.AvgSensitivity(n_samples=12)
    perturbed = metric.perturbations(exp, tiny_bert, random_state=0)[0]
    adapter = xai.as_adapter(tiny_bert)
    counts = [adapter.features(adapter.prepare([p]), granularity="token")[0].n_features
              for p in perturbed]
    n_bad = sum(c != 3 for c in counts)
    assert 0 < n_bad < 12
    with pytest.warns(xai.XAIWarning, match=f"{n_bad} perturbed texts"):
        res = metric(exp, tiny_bert, random_state=0)
    assert res.extras["n_dropped_samples"].tolist() == [n_bad]
    assert int(res.extras["distances"].isnan().sum()) == n_bad
    assert bool(torch.isfinite(res.scores).all())


def test_whole_word_vocabulary_and_substitution(tiny_bert):
    _, tok = tiny_bert
    vocab = whole_word_vocabulary(tok)
    assert "movie" in vocab
    assert not {"[PAD]", "[CLS]", "##s", "!"} & set(vocab)
    assert list(vocab) == sorted(vocab)
    gen = torch.Generator().manual_seed(0)
    out = substitute_words("ab cd ef", [(0, 2), (3, 5), (6, 8)], ["X", "Y"], n_samples=20,
                           n_substitutions=2, gen=gen)
    for text in out:
        kept = [a == b for a, b in zip(text.split(), ["ab", "cd", "ef"], strict=True)]
        assert sum(kept) == 1  # exactly two of the three words were replaced


def test_text_needs_a_tokenizer_vocabulary(tiny_bert):
    exp = xai.explain(tiny_bert, ["the movie was great"], method="occlusion")
    metric = metrics.MaxSensitivity(n_samples=2)
    adapter = xai.as_adapter(tiny_bert)
    adapter.tokenizer = None
    with pytest.raises(xai.IncompatibleModelError, match="no tokenizer"):
        metric(exp, adapter, random_state=0)


def test_text_embedding_perturbation_matches_a_hand_computation(tiny_bert):
    # Noise in an L-inf ball of radius r * std(embedding weights) is added to the word
    # embeddings; redo the first sample by hand with the same draws and compare.
    from xai._validation import check_random_state, int_seed
    from xai.methods._base import example_generators

    model, tok = tiny_bert
    exp = xai.explain(tiny_bert, ["the movie was great fun"], method="ig", n_steps=8)
    metric = metrics.MaxSensitivity(n_samples=2, radius=0.5, text_perturbation="embedding")
    res = metric(exp, tiny_bert, random_state=0)
    rng = check_random_state(0)
    (gen,) = example_generators(rng, 1)
    seed = int_seed(rng)
    layer = model.get_input_embeddings()
    delta = (torch.rand((2, 7, layer.weight.shape[1]), generator=gen) * 2 - 1)[0]
    delta = delta * 0.5 * float(layer.weight.detach().std())
    ref = xai.explain(tiny_bert, ["the movie was great fun"], method="ig", n_steps=8,
                      target=exp.target, random_state=seed).values[0]
    handle = layer.register_forward_hook(lambda m, i, out: out + delta)
    try:
        moved = xai.explain(tiny_bert, ["the movie was great fun"], method="ig", n_steps=8,
                            target=exp.target, random_state=seed).values[0]
    finally:
        handle.remove()
    expected = (moved - ref).norm() / ref.norm()
    torch.testing.assert_close(res.extras["distances"][0, 0, 0], expected, rtol=1e-5, atol=1e-7)
    assert res.extras["n_explain_calls"] == 3
