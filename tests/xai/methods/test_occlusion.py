"""Occlusion: exact leave-one-out values, windows, deletion for text, and batching."""

from __future__ import annotations

import math

import models
import numpy as np
import torch

import xai


def test_additive_model_gives_each_term_exactly():
    # f = sin(x0) + x1^2 + exp(x2) + 3 x3; removing feature j (baseline 0) drops exactly
    # g_j(x_j) - g_j(0).
    x = torch.tensor([[0.7, -1.2, 0.4, 2.0], [1.5, 0.3, -0.8, -1.0]])
    exp = xai.explain(models.Additive(), x, method="occlusion")
    expected = torch.stack([torch.sin(x[:, 0]), x[:, 1] ** 2, torch.exp(x[:, 2]) - 1, 3 * x[:, 3]],
                           dim=1)
    torch.testing.assert_close(exp.values[:, 0], expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(exp.base_values[:, 0], torch.ones(2), rtol=0, atol=1e-6)


def test_bag_of_words_logistic_known_answer():
    # Spec check: p(y=1|x) = sigmoid(sum of weights of present words), w = (2, 1, -1); removing a
    # word gives r = (s(2) - s(0), s(2) - s(1), s(2) - s(3)) = (0.380797, 0.149738, -0.071777).
    w = np.array([2.0, 1.0, -1.0])

    def proba(z):
        p = 1 / (1 + np.exp(-(z @ w)))
        return np.stack([1 - p, p], axis=1)

    adapter = xai.CallableAdapter(proba, output_names=["neg", "pos"])
    exp = xai.explain(adapter, np.ones((1, 3)), method="occlusion", target="all")
    torch.testing.assert_close(exp.values[0, 1], torch.tensor([0.380797, 0.149738, -0.071777]),
                               rtol=0, atol=1e-6)
    # class zero-sum: the probabilities sum to one, so relevances over classes cancel
    torch.testing.assert_close(exp.values[0].sum(0), torch.zeros(3), rtol=0, atol=1e-7)


def test_sliding_window_averages_covering_windows():
    # window 2, stride 1 on 4 features: feature j is in windows starting at j-1 and j; for an
    # additive model each window drops the sum of its two terms.
    x = torch.tensor([[0.7, -1.2, 0.4, 2.0]])
    g = torch.tensor([math.sin(0.7), 1.44, math.exp(0.4) - 1, 6.0])
    exp = xai.explain(models.Additive(), x, method="occlusion", window=2)
    windows = torch.stack([g[0] + g[1], g[1] + g[2], g[2] + g[3]])
    expected = torch.stack([windows[0], (windows[0] + windows[1]) / 2,
                            (windows[1] + windows[2]) / 2, windows[2]])
    torch.testing.assert_close(exp.values[0, 0], expected, rtol=0, atol=1e-5)


def test_all_masks_in_few_model_calls():
    # 5 examples x (4 features + 1 baseline row) = 25 rows; batch_size 10 -> 3 calls.
    adapter = xai.CallableAdapter(lambda a: a.sum(1))
    x = np.arange(20, dtype=float).reshape(5, 4)
    before = adapter.n_calls
    exp = xai.explain(adapter, x, method="occlusion", batch_size=10)
    assert adapter.n_calls - before == 1 + 3  # one call for predictions, three for the masks
    assert int(exp.extras["n_model_calls"]) == 3
    assert int(exp.extras["n_rows"]) == 25
    torch.testing.assert_close(exp.values[:, 0], torch.as_tensor(x, dtype=torch.float32))


def test_text_deletion_equals_rescoring_the_shortened_text(tiny_bert):
    model, tok = tiny_bert
    text = "the movie was great"
    exp = xai.explain((model, tok), [text], method="occlusion", baseline="delete", target=1)
    words = text.split()
    with torch.no_grad():
        full = model(**tok([text], return_tensors="pt")).logits[0, 1]
        for j in range(len(words)):
            short = " ".join(words[:j] + words[j + 1:])
            drop = full - model(**tok([short], return_tensors="pt")).logits[0, 1]
            torch.testing.assert_close(exp.values[0, 0, j], drop, rtol=0, atol=1e-5)


def test_text_replacement_with_unk(tiny_bert):
    model, tok = tiny_bert
    exp = xai.explain((model, tok), ["fun filmed plot"], method="occlusion", baseline="unk",
                      target=0)
    with torch.no_grad():
        enc = tok(["fun filmed plot"], return_tensors="pt")
        full = model(**enc).logits[0, 0]
        ids = enc["input_ids"].clone()
        ids[0, 2:4] = tok.unk_token_id  # "filmed" is two pieces, both replaced
        drop = full - model(input_ids=ids, attention_mask=enc["attention_mask"]).logits[0, 0]
    torch.testing.assert_close(exp.values[0, 0, 1], drop, rtol=0, atol=1e-5)
