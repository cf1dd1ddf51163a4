"""HFCausalLMAdapter on tiny causal LMs built from configs (GPT-2, Gemma 3)."""

from __future__ import annotations

import pytest
import torch
from models import tiny_gemma3, tiny_gpt2, word_tokenizer

import xai
from xai.adapters import HFCausalLMAdapter


@pytest.fixture(scope="module")
def gpt2() -> HFCausalLMAdapter:
    adapter = xai.as_adapter((tiny_gpt2(), word_tokenizer()))
    assert isinstance(adapter, HFCausalLMAdapter)
    return adapter


def test_rule_table_dispatches_causal_lm_before_classifier(gpt2, tiny_bert):
    assert type(xai.as_adapter(tiny_bert)).__name__ == "HFClassifierAdapter"
    assert gpt2.modality == "generation"
    assert xai.Capability.GENERATION in gpt2.capabilities
    assert gpt2.output_names() is None


def test_prepare_prepends_bos_and_left_pads(gpt2):
    batch = gpt2.prepare(["the cat sat", "a dog"])
    ids = batch.tensors["input_ids"]
    assert ids.tolist() == [[1, 4, 5, 6], [0, 1, 9, 10]]
    assert batch.tensors["attention_mask"].tolist() == [[1, 1, 1, 1], [0, 1, 1, 1]]
    assert batch.tensors["special_tokens_mask"].tolist() == [[1, 0, 0, 0], [1, 1, 0, 0]]
    feats = gpt2.features(batch, granularity="token")
    assert feats[1].feature_names == ("a", "dog")
    assert feats[0].groups == ((1,), (2,), (3,))


def test_predict_is_last_position_log_probs_and_padding_invariant(gpt2):
    batch = gpt2.prepare(["the cat sat on", "a dog"])
    out = gpt2.predict(batch)
    alone = gpt2.predict(gpt2.prepare(["a dog"]))
    torch.testing.assert_close(out.exp().sum(1), torch.ones(2), rtol=0, atol=1e-5)
    torch.testing.assert_close(out[1:], alone, rtol=0, atol=1e-5)  # left padding + positions


@pytest.mark.parametrize("make", [tiny_gpt2, tiny_gemma3], ids=["gpt2", "gemma3"])
def test_kv_cache_path_equals_full_recompute(make):
    # the captum LLMAttribution bug class: positions must not advance when the sequence is
    # re-fed with a KV cache; also checked on a left-padded row.
    adapter = HFCausalLMAdapter(make(), word_tokenizer())
    batch = adapter.prepare(["the cat sat on the", "a dog"])
    cont = torch.tensor([8, 4, 13, 14])  # "mat the to park"
    cached = adapter.sequence_log_prob(batch, cont, use_cache=True, reduce="none")
    plain = adapter.sequence_log_prob(batch, cont, use_cache=False, reduce="none")
    torch.testing.assert_close(cached, plain, rtol=0, atol=1e-5)
    single = adapter.sequence_log_prob(adapter.prepare(["a dog"]), cont, use_cache=True,
                                       reduce="none")
    torch.testing.assert_close(cached[1:], single, rtol=0, atol=1e-5)
    # brute force: one full forward pass, log-softmax, gather
    ids = torch.tensor([[1, 4, 5, 6, 7, 4, *cont.tolist()]])
    with torch.no_grad():
        lp = torch.log_softmax(adapter.model(input_ids=ids).logits, -1)[0]
    expected = lp[5:9].gather(1, cont.unsqueeze(1)).squeeze(1)
    torch.testing.assert_close(cached[0], expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(adapter.sequence_log_prob(batch, cont)[0], expected.sum(),
                               rtol=0, atol=1e-5)


def test_generate_is_greedy(gpt2):
    batch = gpt2.prepare(["the cat", "a dog ran"])
    new = gpt2.generate(batch, max_new_tokens=3)
    for r, text in enumerate(["the cat", "a dog ran"]):
        ids = gpt2.prepare([text]).tensors["input_ids"]
        for k in range(3):
            with torch.no_grad():
                nxt = gpt2.model(input_ids=ids).logits[0, -1].argmax()
            assert int(new[r, k]) == int(nxt)
            ids = torch.cat([ids, nxt.view(1, 1)], dim=1)


def test_bad_inputs(gpt2):
    with pytest.raises(xai.InvalidInputError, match="empty string"):
        gpt2.prepare("  ")
    with pytest.raises(xai.InvalidParameterError, match="'max_new_tokens'") as err:
        gpt2.generate(gpt2.prepare("the cat"), max_new_tokens=0)
    assert err.value.parameter == "max_new_tokens"
    with pytest.raises(xai.InvalidInputError, match="'continuation_ids'"):
        gpt2.sequence_log_prob(gpt2.prepare("the cat"), [])


def test_long_prompt_truncated_from_the_left_keeping_bos():
    adapter = HFCausalLMAdapter(tiny_gpt2(), word_tokenizer(), max_length=4)
    with pytest.warns(xai.TruncationWarning, match="truncated from the left"):
        batch = adapter.prepare("the cat sat on the mat")
    assert batch.tensors["input_ids"].tolist() == [[1, 7, 4, 8]]


def test_classifier_methods_refuse_a_causal_lm_clearly(gpt2):
    with pytest.raises(xai.IncompatibleModelError, match="'occlusion'") as err:
        xai.explain(gpt2, "the cat sat", method="occlusion")
    assert "context_length_probing" in err.value.compatible
    with pytest.raises(xai.IncompatibleModelError, match="'integrated_gradients'"):
        xai.explain(gpt2, "the cat sat", method="integrated_gradients")
