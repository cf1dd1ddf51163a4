"""explain(): method resolution, auto selection, compatibility, thin layer over Method.explain."""

from __future__ import annotations

import models
import pytest
import torch

import xai
from xai.adapters._transformers import HFClassifierAdapter


class _NoEmbeddings(HFClassifierAdapter):
    capabilities = xai.Capability.FORWARD | xai.Capability.GRADIENTS | xai.Capability.TOKENIZER


def test_text_ig_needs_embeddings(tiny_bert):
    adapter = _NoEmbeddings(*tiny_bert)
    assert "integrated_gradients" not in xai.compatible_methods(adapter)
    assert "integrated_gradients" in xai.compatible_methods(tiny_bert)
    with pytest.raises(xai.IncompatibleModelError, match="needs EMBEDDINGS"):
        xai.explain(adapter, ["the movie"], method="ig")


def test_auto_method_is_recorded(tiny_bert, logreg):
    exp = xai.explain(models.Linear(torch.ones(3)), torch.ones(1, 3), n_steps=4)
    assert exp.method == "integrated_gradients"
    assert xai.select_method(logreg[0]) == "occlusion"
    assert xai.explain(logreg[0], logreg[1][:1]).method == "occlusion"


def test_explain_equals_configured_instance(mlp3):
    x = torch.randn(2, 6, generator=torch.Generator().manual_seed(0))
    a = xai.explain(mlp3, x, method="shapley_sampling", n_permutations=4, random_state=1,
                    target=0)
    b = xai.ShapleySampling(n_permutations=4).explain(mlp3, x, random_state=1, target=0)
    torch.testing.assert_close(a.values, b.values, rtol=0, atol=0)
    # only the fields that apply to every model (the language-model ones are textgenshap's)
    assert a.params == b.params == {"n_permutations": 4, "antithetic": True, "baseline": "auto",
                                    "granularity": "auto", "feature_groups": None,
                                    "max_exact": 1024, "estimator": "permutation",
                                    "budget": None, "tolerance": None, "max_budget": 20_000}


def test_target_forms_agree(tiny_bert):
    texts = ["the movie was great", "boring plot"]
    by_label = xai.explain(tiny_bert, texts, method="occlusion", target="POSITIVE")
    by_index = xai.explain(tiny_bert, texts, method="occlusion", target=1)
    by_list = xai.explain(tiny_bert, texts, method="occlusion", target=["POSITIVE", 1])
    allout = xai.explain(tiny_bert, texts, method="occlusion", target="all")
    for other in (by_index, by_list):
        torch.testing.assert_close(other.values, by_label.values, rtol=0, atol=0)
    torch.testing.assert_close(allout.values[:, 1], by_label.values[:, 0], rtol=0, atol=0)
    assert allout.target.names[0] == ("NEGATIVE", "POSITIVE")
