"""BEE: the spec's known answers (bandit, selection, completeness, grad x act, IG parity), the
policy's files and refusals, the families, and the typed errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import metrics
import xai
from tests import models
from xai.exceptions import InvalidInputError, InvalidParameterError
from xai.methods._bee_bandit import LaplaceThompson, rank_probability
from xai.testing._params import l1_size

X = torch.randn(6, 6, generator=torch.Generator().manual_seed(1))
BG = torch.randn(40, 6, generator=torch.Generator().manual_seed(2))


def linear(n_in: int = 6) -> torch.nn.Module:
    lin = torch.nn.Linear(n_in, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.arange(2 * n_in, dtype=torch.float32).reshape(2, n_in) / 7 - 0.8)
        lin.bias.copy_(torch.tensor([0.3, -0.2]))
    return lin


# -- BEE-1: the bandit ------------------------------------------------------------------------
def test_bandit_learns_the_best_family_per_context():
    """The spec's synthetic check (5 arms, context dim 8, 1,500 rounds, reward 0.85 for the
    best family else 0.25): the last 300 rounds pick the best family at least 60% of the time
    (the spec's reference run: 0.677; uniform random: 0.2)."""
    gen = torch.Generator().manual_seed(0)
    arms, dim = 5, 8
    u = torch.randn(arms, dim, generator=gen, dtype=torch.float64)
    bandit = LaplaceThompson(arms, dim)
    hits = []
    for _ in range(1500):
        x = torch.randn(dim, generator=gen, dtype=torch.float64)
        a, best = bandit.select(x, gen), int((u @ x).argmax())
        p = 0.85 if a == best else 0.25
        y = 1 if float(torch.rand((), generator=gen, dtype=torch.float64)) < p else -1
        bandit.update(a, x, y)
        hits.append(a == best)
    assert np.mean(hits[-300:]) >= 0.6
    assert np.mean(hits[:100]) < np.mean(hits[-300:])


def test_laplace_update_is_the_mode_scipy_finds():
    """Newton with Sherman-Morrison finds the same mode as the reference's L-BFGS-B."""
    from scipy.optimize import minimize

    rng = np.random.default_rng(3)
    bandit = LaplaceThompson(2, 5)
    for _ in range(15):
        x, y = rng.normal(size=5), int(rng.choice([-1, 1]))
        m, q = bandit.means[1].numpy().copy(), bandit.precisions[1].numpy().copy()
        ref = minimize(lambda w, q=q, m=m, x=x, y=y: 0.5 * np.sum(q * (w - m) ** 2)
                       + np.log1p(np.exp(-y * w @ x)), m, method="L-BFGS-B", options={"gtol": 1e-12, "ftol": 1e-15}).x
        bandit.update(1, torch.tensor(x), y)
        np.testing.assert_allclose(bandit.means[1].numpy(), ref, atol=1e-6)
        p = 1 / (1 + np.exp(-ref @ x))
        np.testing.assert_allclose(bandit.precisions[1].numpy(), q + x**2 * p * (1 - p),
                                   atol=1e-6)
    assert torch.equal(bandit.means[0], torch.zeros(5))  # the other arm is untouched


def test_rank_reward_probability_is_the_normalised_rank():
    history = [1.0, 2.0, 3.0, 4.0]
    assert rank_probability(3.5, history, 1.0) == pytest.approx(0.75)
    assert rank_probability(3.5, history, -1.0) == pytest.approx(0.25)  # lower is better
    assert rank_probability(2.0, history, 1.0) == pytest.approx(1.5 / 4)  # ties count half
    assert rank_probability(0.0, [], 1.0) == 0.5


# -- BEE-2: selection --------------------------------------------------------------------------
@pytest.mark.parametrize("direction", ["min", "max"])
def test_best_of_r_is_the_best_draw_and_never_worse(mlp3, direction):
    exp = xai.explain(mlp3, X, method="bee", objective=l1_size, direction=direction,
                      n_baselines=7, background=BG, target=0, random_state=0)
    pick = min if direction == "min" else max
    for i, cands in enumerate(exp.extras["candidates"]):
        scores = [c["objective"] for c in cands]
        assert exp.extras["objective_value"][i].item() == pytest.approx(pick(scores), rel=1e-6)
        winner = scores.index(pick(scores))
        assert exp.extras["family"][i] == cands[winner]["family"]
    # the returned map scores exactly what the selection saw
    rescored = l1_size(exp, mlp3)
    torch.testing.assert_close(rescored.float(), exp.extras["objective_value"], rtol=1e-5,
                               atol=1e-6)
    assert exp.extras["families"] == ["zeros", "uniform", "gaussian", "blur", "data"]


def test_each_draw_is_the_single_family_map_with_its_seed(mlp3):
    """A candidate's objective equals the objective of that family run alone from the same
    baseline: re-drawing a random family with the recorded seed reproduces its map."""
    exp = xai.explain(mlp3, X[:2], method="bee", objective=l1_size, direction="min",
                      n_baselines=5, families=["gaussian", "uniform"], background=BG, target=0,
                      random_state=3)
    bee = xai.BEE(objective=l1_size, direction="min", families=["gaussian", "uniform"],
                  background=BG)
    from xai.methods.bee import Draw

    adapter = xai.as_adapter(mlp3)
    batch = adapter.prepare(X[:2])
    feats = bee.feature_spaces(adapter, batch)
    target = bee._resolve_target(adapter, batch, 0, batch_size=64)
    space = bee.space(adapter, batch, feats)
    fams = bee.resolved_families(space)
    for i in range(2):
        for c in exp.extras["candidates"][i]:
            k = [f.name for f in fams].index(c["family"])
            vals, _, _ = bee.integrate(space, fams, [Draw(i, k, c["seed"])], target, 64)
            assert vals[0].abs().sum().item() == pytest.approx(c["objective"], rel=1e-5)


# -- BEE-3/4: the integrands -------------------------------------------------------------------
def test_ig_integrand_is_complete_for_every_family():
    model = linear()
    exp = xai.explain(model, X, method="bee", objective=l1_size, direction="min",
                      n_baselines=6, background=BG, target=1, random_state=0)
    torch.testing.assert_close(exp.extras["convergence_delta"], torch.zeros(6, 1), atol=1e-5,
                               rtol=0)
    # values sum to f(x) - f(b): base_values are f(b) of the chosen baselines
    f_x = model(X)[:, 1:].detach()
    torch.testing.assert_close(exp.values.sum(-1), f_x - exp.base_values, atol=1e-5, rtol=0)


def test_grad_x_act_closed_form_on_a_linear_model():
    """BEE-4, f = v . a: M = sum_k w_k v * a_k = v * x * sum_k w_k alpha_k from zeros (1/2 for
    the symmetric rules; captum's trapezoid weights sum to (n-1)/n)."""
    from captum.attr._utils.approximation_methods import approximation_parameters

    model = linear()
    v = model.weight[1].detach()
    for rule in ("gausslegendre", "riemann_middle", "riemann_trapezoid"):
        steps, alphas = approximation_parameters(rule)
        mean_alpha = sum(w * a for w, a in zip(steps(5), alphas(5), strict=True))
        exp = xai.explain(model, X, method="bee", objective=l1_size, direction="min",
                          families=["zeros"], integrand="grad_x_act", integration=rule,
                          n_steps=5, target=1)
        torch.testing.assert_close(exp.values[:, 0], v * X * mean_alpha, atol=1e-6, rtol=0)
    assert mean_alpha == pytest.approx(0.4)  # trapezoid, n = 5
    assert exp.multiplies_by_inputs is False


# -- one constant family with the IG integrand = Integrated Gradients ---------------------------
def test_zeros_family_with_ig_integrand_equals_integrated_gradients(mlp3):
    bee = xai.explain(mlp3, X, method="bee", families=["zeros"], integrand="ig", n_steps=50,
                      objective=l1_size, direction="min", target="all", random_state=0)
    ig = xai.explain(mlp3, X, method="integrated_gradients", baseline="zeros", n_steps=50,
                     target="all")
    torch.testing.assert_close(bee.values, ig.values, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(bee.base_values, ig.base_values, atol=1e-6, rtol=0)
    assert bee.extras["n_paths"].tolist() == [1] * 6  # a constant family is integrated once
    assert bee.extras["model_calls"].tolist() == [3 * 50 + 1] * 6


def test_pad_family_on_text_equals_integrated_gradients(tiny_bert, texts):
    model, tok = tiny_bert
    bee = xai.explain((model, tok), texts, method="bee", families=["pad"], n_steps=20,
                      objective=l1_size, direction="min")
    ig = xai.explain((model, tok), texts, method="integrated_gradients", n_steps=20)
    torch.testing.assert_close(bee.values, ig.values, atol=1e-5, rtol=1e-4)
    assert bee.feature_names == ig.feature_names


# -- text and images ---------------------------------------------------------------------------
def test_text_families_keep_special_tokens_and_complete(tiny_bert, texts):
    model, tok = tiny_bert
    exp = xai.explain((model, tok), texts, method="bee", objective=l1_size, direction="max",
                      n_baselines=6, background=["a dull film", "great fun"], random_state=0)
    assert set(exp.extras["families"]) == {"pad", "mask", "gaussian", "blur", "data"}
    torch.testing.assert_close(exp.extras["convergence_delta"], torch.zeros(3, 1), atol=2e-2,
                               rtol=0)
    bee = xai.BEE(objective=l1_size, direction="max", background=["a dull film"])
    adapter = xai.as_adapter((model, tok))
    batch = adapter.prepare(texts)
    space = bee.space(adapter, batch, bee.feature_spaces(adapter, batch))
    gen = torch.Generator().manual_seed(0)
    for fam in bee.resolved_families(space):
        b = space.finish(0, fam.sample(space.family_context(0), gen))
        assert torch.equal(b[space.keep[0]], space.acts[0][space.keep[0]])  # [CLS], [SEP], pads
        assert not torch.equal(b, space.acts[0])


def test_hidden_layer_of_a_text_model(tiny_bert, texts):
    model, tok = tiny_bert
    exp = xai.explain((model, tok), texts, method="bee", objective=l1_size, direction="min",
                      families=["pad", "gaussian"], n_baselines=3, n_steps=24,
                      layer="bert.encoder.layer.0", random_state=0)
    assert exp.extras["layer"] == "bert.encoder.layer.0"
    torch.testing.assert_close(exp.extras["convergence_delta"], torch.zeros(3, 1), atol=2e-2,
                               rtol=0)


class TinyCNN(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.head = torch.nn.Linear(4, 2)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.conv(x)).mean((2, 3)))


def test_image_blur_family_and_layer():
    cnn = TinyCNN()
    imgs = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    opts = {"modality": "image"}
    exp = xai.explain(cnn, imgs, method="bee", objective=l1_size, direction="min",
                      families=["blur"], n_baselines=2, n_steps=32, target=1,
                      adapter_options=opts, random_state=0)
    assert exp.values.shape == (2, 1, 3 * 8 * 8)
    torch.testing.assert_close(exp.extras["convergence_delta"], torch.zeros(2, 1), atol=1e-3,
                               rtol=0)
    layered = xai.explain(cnn, imgs, method="bee", objective=l1_size, direction="min",
                          families=["zeros"], n_steps=32, target=1, layer="conv",
                          adapter_options=opts)
    # layer-level completeness survives the channel sum and the total-preserving upsampling
    f = cnn(imgs)[:, 1:].detach()
    torch.testing.assert_close(layered.values.sum(-1), f - layered.base_values, atol=2e-3,
                               rtol=1e-3)


def test_blur_sampler_is_a_normalised_gaussian_filter():
    from xai.methods._bee_families import _smooth

    const = torch.ones(1, 1, 9)
    out = _smooth(const, 1, dims=1)
    assert out[0, 0, 4].item() == pytest.approx(1.0, abs=1e-6)  # interior: weights sum to 1
    assert out[0, 0, 0].item() < 1.0  # zero outside (scipy's mode="constant")


# -- the policy --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fitted(mlp3):
    return xai.BEEPolicy.fit(mlp3, BG, objective=metrics.FaithfulnessCorrelation(n_subsets=8),
                             rounds=64, background=BG, target=0, n_steps=4, random_state=0)


def test_policy_fit_summary_and_history(fitted):
    s = fitted.summary
    assert s["rounds"] == 64
    assert sum(s["played"].values()) == 64
    nan = torch.isnan(fitted.history["objective"])
    assert fitted.history["reward"][~nan].abs().eq(1).all()  # +-1 rewards
    assert fitted.history["reward"][nan].eq(0).all()  # a NaN score is no evidence
    assert s["model_calls"] == 64 * (4 + 1)
    assert fitted.objective == "FaithfulnessCorrelation(n_subsets=8, subset_fraction=0.2)/max"
    assert fitted.context_source == "penultimate"  # the input of the MLP's last Linear


def test_policy_is_seeded(mlp3, fitted):
    again = xai.BEEPolicy.fit(mlp3, BG, objective=metrics.FaithfulnessCorrelation(n_subsets=8),
                              rounds=64, background=BG, target=0, n_steps=4, random_state=0)
    assert torch.equal(again.bandit.means, fitted.bandit.means)
    assert torch.equal(again.history["arm"], fitted.history["arm"])


def test_policy_saves_and_loads_without_pickle(tmp_path, mlp3, fitted):
    fitted.save(tmp_path / "policy")
    assert sorted(p.name for p in (tmp_path / "policy").iterdir()) == [
        "bee_policy.json", "bee_policy.safetensors"]
    back = xai.BEEPolicy.load(tmp_path / "policy")
    assert torch.equal(back.bandit.means, fitted.bandit.means)
    assert torch.equal(back.projection, fitted.projection)
    assert back.families == fitted.families
    assert back.summary == fitted.summary
    a = xai.explain(mlp3, X, method="bee", policy=fitted, background=BG, target=0,
                    random_state=1)
    b = xai.explain(mlp3, X, method="bee", policy=back, background=BG, target=0,
                    random_state=1)
    assert torch.equal(a.values, b.values)
    assert a.extras["family"] == b.extras["family"]
    assert torch.isnan(a.extras["objective_value"]).all()  # the mixture: no objective


def test_policy_mixture_is_the_mean_of_its_draws(mlp3, fitted):
    exp = xai.explain(mlp3, X[:1], method="bee", policy=fitted, background=BG, target=0,
                      n_baselines=4, random_state=2)
    bee = xai.BEE(policy=fitted, background=BG)
    from xai.methods.bee import Draw

    adapter = xai.as_adapter(mlp3)
    batch = adapter.prepare(X[:1])
    feats = bee.feature_spaces(adapter, batch)
    space = bee.space(adapter, batch, feats)
    fams = bee.resolved_families(space)
    target = bee._resolve_target(adapter, batch, 0, batch_size=64)
    draws = [Draw(0, [f.name for f in fams].index(c["family"]), c["seed"])
             for c in exp.extras["candidates"][0]]
    vals, _, _ = bee.integrate(space, fams, draws, target, 64)
    torch.testing.assert_close(exp.values[0], torch.stack(vals).mean(0))


def test_policy_with_its_objective_selects_the_best_draw(mlp3, fitted):
    objective = metrics.FaithfulnessCorrelation(n_subsets=8)
    exp = xai.explain(mlp3, X, method="bee", policy=fitted, objective=objective,
                      background=BG, target=0, random_state=0)
    # the selection's seed reproduces the objective values of the returned maps
    again = objective(exp, mlp3, random_state=exp.extras["objective_seed"])
    torch.testing.assert_close(again.scores[:, 0].float(), exp.extras["objective_value"])
    for i, cands in enumerate(exp.extras["candidates"]):
        assert exp.extras["objective_value"][i].item() == pytest.approx(
            max(c["objective"] for c in cands), rel=1e-5)


def test_policy_refuses_another_model_objective_or_families(mlp3, fitted):
    with pytest.raises(InvalidParameterError, match="another model") as err:
        xai.explain(models.mlp(seed=1), X, method="bee", policy=fitted, background=BG,
                    target=0)
    assert err.value.parameter == "policy"
    with pytest.raises(InvalidParameterError, match="n_subsets=9"):
        xai.explain(mlp3, X, method="bee", policy=fitted, background=BG, target=0,
                    objective=metrics.FaithfulnessCorrelation(n_subsets=9))
    with pytest.raises(InvalidParameterError, match="families"):
        xai.explain(mlp3, X, method="bee", policy=fitted, background=BG, target=0,
                    families=["zeros", "blur"])


def test_loading_a_bad_policy_folder_is_a_typed_error(tmp_path):
    with pytest.raises(InvalidInputError, match="bee_policy.json"):
        xai.BEEPolicy.load(tmp_path / "nowhere")
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "bee_policy.json").write_text('{"kind": "Other", "format": 1}')
    (tmp_path / "p" / "bee_policy.safetensors").write_bytes(b"")
    with pytest.raises(InvalidInputError):
        xai.BEEPolicy.load(tmp_path / "p")


# -- seeds and errors --------------------------------------------------------------------------
def test_same_seed_same_result_and_rows_do_not_depend_on_neighbours(mlp3):
    kw = {"objective": l1_size, "direction": "min", "n_baselines": 4, "background": BG,
          "target": 0}
    a = xai.explain(mlp3, X, method="bee", random_state=5, **kw)
    b = xai.explain(mlp3, X, method="bee", random_state=5, **kw)
    one = xai.explain(mlp3, X[3:4], method="bee", random_state=5, **kw)
    assert torch.equal(a.values, b.values)
    assert a.extras["candidates"][3] == one.extras["candidates"][0]
    state = torch.random.get_rng_state()
    xai.explain(mlp3, X, method="bee", random_state=6, **kw)
    assert torch.equal(state, torch.random.get_rng_state())


@pytest.mark.parametrize(("params", "parameter", "match"), [
    ({}, "objective", "needs an objective"),
    ({"objective": l1_size}, "direction", "direction"),
    ({"objective": l1_size, "direction": "min", "families": ["zeros", "fog"]}, "families",
     "fog"),
    ({"objective": l1_size, "direction": "min", "families": ["zeros", "zeros"]}, "families",
     "distinct"),
    ({"objective": l1_size, "direction": "min", "families": ["data"]}, "background",
     "background"),
    ({"objective": l1_size, "direction": "min", "n_baselines": 0}, "n_baselines", "n_baselines"),
    ({"objective": l1_size, "direction": "min", "integrand": "lrp"}, "integrand", "integrand"),
    ({"objective": l1_size, "direction": "min", "policy": "p.json"}, "policy", "BEEPolicy"),
])
def test_bad_parameters_are_typed_errors(mlp3, params, parameter, match):
    with pytest.raises(InvalidParameterError, match=match) as err:
        xai.explain(mlp3, X, method="bee", target=0, **params)
    assert err.value.parameter == parameter


def test_model_dependent_errors(mlp3):
    kw = {"objective": l1_size, "direction": "min", "target": 0}
    with pytest.raises(InvalidParameterError, match="not a text model") as err:
        xai.explain(mlp3, X, method="bee", families=["pad"], **kw)
    assert err.value.parameter == "families"
    with pytest.raises(InvalidParameterError, match="tabular") as err:
        xai.explain(mlp3, X, method="bee", layer="0", **kw)
    assert err.value.parameter == "layer"
    with pytest.raises(InvalidParameterError, match=r"shape \(4,\)"):
        xai.explain(mlp3, X, method="bee", background=torch.zeros(3, 4), **kw)
    with pytest.raises(InvalidParameterError, match="Close names"):
        xai.explain(TinyCNN(), torch.rand(1, 3, 8, 8), method="bee", layer="con",
                    adapter_options={"modality": "image"}, **kw)
