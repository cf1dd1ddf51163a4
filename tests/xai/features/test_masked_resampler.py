"""MaskedLMResampler on a tiny BertForMaskedLM built from a config (offline)."""

from __future__ import annotations

import pytest
import torch

import xai
from xai.features.resamplers import replace_span


@pytest.fixture(scope="module")
def mlm():
    transformers = pytest.importorskip("transformers")
    from xai.testing import tiny_tokenizer

    tok = tiny_tokenizer()
    config = transformers.BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=48,
                                     max_position_embeddings=32)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = transformers.BertForMaskedLM(config).eval()
    return model, tok


def test_probabilities_are_the_mlm_softmax_at_the_mask(mlm):
    model, tok = mlm
    text = "the movie was great"
    spans = [(0, 3), (4, 9), (10, 13), (14, 19)]
    calls = []
    handle = model.register_forward_hook(lambda m, i, o: calls.append(1))
    try:
        cands = xai.MaskedLMResampler(model, tok, renormalize=False).propose(text, spans)
    finally:
        handle.remove()
    assert len(calls) == 1  # every word of the text is masked in one batched pass
    for span, cand in zip(spans, cands, strict=True):
        enc = tok([replace_span(text, span, tok.mask_token)], return_tensors="pt")
        pos = int((enc["input_ids"][0] == tok.mask_token_id).nonzero()[0, 0])
        with torch.no_grad():
            probs = model(**enc).logits[0, pos].double().softmax(-1)
        for word, p in zip(cand.words, cand.probs, strict=True):
            assert word.isalpha()
            assert not word.startswith("##")
            # float32 logits of a padded batch vs one text: ~1e-9 apart
            torch.testing.assert_close(p, probs[tok.convert_tokens_to_ids(word)], rtol=0,
                                       atol=1e-7)
        # whole words only: special tokens and ## pieces are never candidates
        assert not {"[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]", "ed"} & set(cand.words)


def test_top_k_threshold_and_renormalisation(mlm):
    model, tok = mlm
    spans = [(0, 3), (4, 9)]
    full = xai.MaskedLMResampler(model, tok, renormalize=False).propose("the movie", spans)
    top = xai.MaskedLMResampler(model, tok, top_k=3).propose("the movie", spans)
    for f, t in zip(full, top, strict=True):
        assert t.words == f.words[:3]  # most likely first
        torch.testing.assert_close(t.probs, f.probs[:3] / f.probs[:3].sum(), rtol=0, atol=1e-12)
    cut = xai.MaskedLMResampler(model, tok, min_prob=float(full[0].probs[4]),
                                renormalize=False).propose("the movie", spans)
    assert cut[0].words == full[0].words[:5]


def test_olm_with_a_masked_lm_resampler_runs_the_same_game(mlm, tiny_bert):
    model, tok = mlm
    resampler = xai.MaskedLMResampler(model, tok, top_k=5)
    exp = xai.explain(tiny_bert, ["the movie was great"], method="olm", resampler=resampler,
                      n_samples=None, target=1)
    # word 0 by hand: expectation of the drop over the 5 candidates
    clf = xai.as_adapter(tiny_bert)
    cand = resampler.propose("the movie was great", [(0, 3)])[0]
    texts = [replace_span("the movie was great", (0, 3), w) for w in cand.words]
    with torch.no_grad():
        p = clf.predict(clf.prepare(texts)).double().softmax(-1)[:, 1]
        p0 = clf.predict(clf.prepare(["the movie was great"])).double().softmax(-1)[0, 1]
    expected = float((cand.probs * (p0 - p)).sum())
    assert float(exp.values[0, 0, 0]) == pytest.approx(expected, abs=1e-6)


def test_tokenizer_without_mask_is_rejected():
    class NoMask:
        mask_token_id = None

    with pytest.raises(xai.InvalidParameterError, match="has no mask token"):
        xai.MaskedLMResampler(torch.nn.Linear(1, 1), NoMask())
