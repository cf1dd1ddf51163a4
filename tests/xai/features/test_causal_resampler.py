"""CausalLMResampler: Bayes reweighting of a causal LM's next words, checked by brute force.

A tiny random GPT-2 over a 20-word vocabulary, with two tokenizers that make every word one token:
a whitespace word-level tokenizer (no space markers) and a GPT-2-style one whose words after a
space carry the byte-level ``Ġ`` marker. The reference is the joint sequence likelihood of the LM
(BOS prepended) of the text with word i replaced by each vocabulary word.
"""

from __future__ import annotations

import re

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import (
    Gemma3ForCausalLM,
    Gemma3TextConfig,
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedTokenizerFast,
)

from xai.exceptions import InvalidInputError, InvalidParameterError
from xai.features.resamplers import CausalLMResampler, replace_span

WORDS = ["the", "a", "movie", "film", "plot", "was", "is", "very", "quite", "good", "bad", "great",
         "dull", "and", "but", "fun", "long", "short", "story", "acting"]
SPECIAL = ["[BOS]", "[EOS]", "[UNK]", "[PAD]"]
TEXT = "the movie was very good"
SPANS = [(0, 3), (4, 9), (10, 13), (14, 18), (19, 23)]
LM = tuple[GPT2LMHeadModel, PreTrainedTokenizerFast]


def make_tokenizer(style: str) -> PreTrainedTokenizerFast:
    if style == "whitespace":
        vocab = SPECIAL + WORDS
        pre: pre_tokenizers.PreTokenizer = pre_tokenizers.Whitespace()
    else:  # GPT-2 convention: a word after a space is one "Ġword" token
        vocab = SPECIAL + WORDS + ["Ġ" + w for w in WORDS]
        pre = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk = Tokenizer(models.WordLevel({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
    tk.pre_tokenizer = pre
    if style == "bytelevel":
        tk.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="[BOS]", eos_token="[EOS]",
                                   unk_token="[UNK]", pad_token="[PAD]")


def make_model(n_vocab: int, dtype: torch.dtype = torch.float32) -> GPT2LMHeadModel:
    """Random tiny GPT-2, large init (distributions far from uniform); global RNG untouched."""
    cfg = GPT2Config(vocab_size=n_vocab, n_layer=2, n_head=2, n_embd=32, n_positions=64,
                     bos_token_id=0, eos_token_id=1, initializer_range=0.5)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return GPT2LMHeadModel(cfg).to(dtype)


@pytest.fixture(scope="module", params=["whitespace", "bytelevel"])
def lm(request: pytest.FixtureRequest) -> LM:
    """float64, so that the Bayes identities hold to 1e-9 (float32 rounding is about 1e-6)."""
    tok = make_tokenizer(request.param)
    return make_model(len(tok), torch.float64).eval(), tok


def joint_logprob(model: GPT2LMHeadModel, tok: PreTrainedTokenizerFast,
                  texts: list[str]) -> torch.Tensor:
    """Σ_t log p(token_t | BOS, tokens_<t) of every text (all texts have the same length)."""
    ids = torch.tensor([[tok.bos_token_id] + tok(t, add_special_tokens=False)["input_ids"]
                        for t in texts])
    with torch.no_grad():
        logp = model(input_ids=ids).logits.double().log_softmax(-1)  # no KV cache
    return logp[:, :-1].gather(-1, ids[:, 1:, None])[..., 0].sum(-1)


def brute_posterior(model: GPT2LMHeadModel, tok: PreTrainedTokenizerFast, text: str,
                    span: tuple[int, int], words: list[str]) -> torch.Tensor:
    """p(text with the span := w) / Σ_w' p(text with the span := w') over ``words``."""
    return joint_logprob(model, tok, [replace_span(text, span, w) for w in words]).softmax(-1)


def next_word_ranking(model: GPT2LMHeadModel, tok: PreTrainedTokenizerFast, text: str,
                      span: tuple[int, int]) -> list[str]:
    """Vocabulary words by p(w | left context), most likely first (via the text cut after w)."""
    prefix = text[: span[1]]
    lp = joint_logprob(model, tok, [replace_span(prefix, span, w) for w in WORDS])
    return [WORDS[int(i)] for i in lp.argsort(descending=True)]


def by_word(words: tuple[str, ...], probs: torch.Tensor, order: list[str]) -> torch.Tensor:
    lookup = dict(zip(words, probs.tolist(), strict=True))
    return torch.tensor([lookup[w] for w in order], dtype=torch.float64)


def test_bayes_reweighting_equals_brute_force_over_the_whole_vocabulary(lm: LM) -> None:
    model, tok = lm
    cands = CausalLMResampler(model, tok, top_k=len(WORDS)).propose(TEXT, SPANS)
    max_shift = 0.0
    for span, c in zip(SPANS, cands, strict=True):
        assert sorted(c.words) == sorted(WORDS)
        expected = brute_posterior(model, tok, TEXT, span, WORDS)
        torch.testing.assert_close(by_word(c.words, c.probs, WORDS), expected, rtol=0, atol=1e-9)
        prior = joint_logprob(model, tok, [replace_span(TEXT[: span[1]], span, w) for w in WORDS])
        max_shift = max(max_shift, float((prior.softmax(-1) - expected).abs().max()))
    # the right context matters: the posterior is far from the renormalised p(w | left)
    assert max_shift > 0.05


@pytest.mark.parametrize("position", range(len(SPANS)))
def test_top_k_candidates_are_the_most_likely_next_words(lm: LM, position: int) -> None:
    model, tok = lm
    span = SPANS[position]
    c = CausalLMResampler(model, tok, top_k=5).propose(TEXT, [span])[0]
    top5 = next_word_ranking(model, tok, TEXT, span)[:5]
    assert sorted(c.words) == sorted(top5)
    expected = brute_posterior(model, tok, TEXT, span, top5)
    torch.testing.assert_close(by_word(c.words, c.probs, top5), expected, rtol=0, atol=1e-9)
    assert c.probs.tolist() == sorted(c.probs.tolist(), reverse=True)  # most likely first


@pytest.mark.parametrize(("style", "dtype", "atol"), [
    ("whitespace", torch.float64, 1e-9), ("bytelevel", torch.float64, 1e-9),
    # float32: the cached and the full-sequence passes round differently (measured up to 1.1e-6)
    ("whitespace", torch.float32, 5e-6), ("bytelevel", torch.float32, 5e-6)])
def test_kv_cache_and_batch_size_do_not_change_the_result(style: str, dtype: torch.dtype,
                                                          atol: float) -> None:
    tok = make_tokenizer(style)
    model = make_model(len(tok), dtype).eval()
    runs = {(cache, bs): CausalLMResampler(model, tok, top_k=20, batch_size=bs, use_cache=cache)
            for cache in (True, False) for bs in (2, 64)}
    out = {key: r.propose(TEXT, SPANS) for key, r in runs.items()}
    ref = out[False, 64]
    for key, cands in out.items():
        for a, b in zip(cands, ref, strict=True):
            assert sorted(a.words) == sorted(b.words), key
            torch.testing.assert_close(by_word(a.words, a.probs, list(b.words)), b.probs,
                                       rtol=0, atol=atol)
    # per word: 1 pass of the left context + ceil(20 / batch_size) candidate passes (none for the
    # last word, whose right context is empty)
    assert runs[True, 2].n_model_calls == 4 * (1 + 10) + 1
    assert runs[False, 64].n_model_calls == 4 * (1 + 1) + 1


def test_kv_cache_path_runs_only_the_candidate_and_the_right_context(lm: LM) -> None:
    model, tok = lm
    widths: dict[bool, list[int]] = {True: [], False: []}
    for cache in (True, False):
        hook = model.register_forward_pre_hook(
            lambda mod, args, kwargs, c=cache: widths[c].append(kwargs["input_ids"].shape[1]),
            with_kwargs=True)
        try:
            CausalLMResampler(model, tok, top_k=20, use_cache=cache).propose(TEXT, SPANS[1:2])
        finally:
            hook.remove()
    # "the movie was very good", word "movie": L = BOS the (2 tokens), R = was very good (3)
    assert widths[True] == [2, 3]  # L once; then w + R[:-1] on top of L's cache
    assert widths[False] == [2, 5]  # L once; then L + w + R[:-1]


def test_gemma3_sliding_window_cache_equals_brute_force() -> None:
    """Gemma 3 (the packaged real LM) mixes sliding-window and full layers in its cache."""
    tok = make_tokenizer("whitespace")
    cfg = Gemma3TextConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=3,
        num_attention_heads=2, num_key_value_heads=1, head_dim=16, sliding_window=3,
        layer_types=["sliding_attention", "sliding_attention", "full_attention"],
        max_position_embeddings=64, bos_token_id=0, eos_token_id=1, pad_token_id=3,
        initializer_range=0.5)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = Gemma3ForCausalLM(cfg).to(torch.float64).eval()
    text = "the movie was very good and the plot was fun"  # contexts longer than the window
    spans = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
    for cache in (True, False):
        cands = CausalLMResampler(model, tok, top_k=20, batch_size=7,
                                  use_cache=cache).propose(text, spans)
        for span, c in zip(spans, cands, strict=True):
            expected = brute_posterior(model, tok, text, span, WORDS)
            torch.testing.assert_close(by_word(c.words, c.probs, WORDS), expected,
                                       rtol=0, atol=1e-9)


def test_text_longer_than_the_lm_is_rejected(lm: LM) -> None:
    model, tok = lm
    text = " ".join(["good"] * 64)
    msg = (f"The text {text!r} is 65 tokens long with the candidate, more than the causal LM's "
           "maximum of 64. Shorten the text.")
    with pytest.raises(InvalidInputError, match=re.escape(msg)):
        CausalLMResampler(model, tok).propose(text, [(0, 4)])


def test_last_word_is_the_next_word_distribution_renormalised(lm: LM) -> None:
    model, tok = lm
    r = CausalLMResampler(model, tok, top_k=4)
    c = r.propose(TEXT, [SPANS[-1]])[0]
    assert r.n_model_calls == 1
    top4 = next_word_ranking(model, tok, TEXT, SPANS[-1])[:4]
    prior = joint_logprob(model, tok, [replace_span(TEXT, SPANS[-1], w) for w in top4]).softmax(-1)
    assert list(c.words) == top4
    torch.testing.assert_close(c.probs, prior, rtol=0, atol=1e-9)


def test_min_prob_filters_the_posterior(lm: LM) -> None:
    model, tok = lm
    span = SPANS[2]
    full = brute_posterior(model, tok, TEXT, span, WORDS)
    kept = [w for w, p in zip(WORDS, full.tolist(), strict=True) if p >= 0.05]
    assert 1 < len(kept) < len(WORDS)
    for renormalize in (True, False):
        r = CausalLMResampler(model, tok, top_k=20, min_prob=0.05, renormalize=renormalize)
        c = r.propose(TEXT, [span])[0]
        assert sorted(c.words) == sorted(kept)
        expected = full[[WORDS.index(w) for w in kept]]
        expected = expected / expected.sum() if renormalize else expected
        torch.testing.assert_close(by_word(c.words, c.probs, kept), expected, rtol=0, atol=1e-9)


def test_is_word_start_hook_restricts_the_candidates(lm: LM) -> None:
    model, tok = lm
    allowed = {"good", "bad", "dull"}
    tokens = {tok.tokenize(" " + w)[0] for w in allowed}  # "good" or "Ġgood": after a space
    r = CausalLMResampler(model, tok, top_k=20,
                          is_word_start=lambda t, after_space: after_space and t in tokens)
    c = r.propose(TEXT, [SPANS[-1]])[0]
    assert sorted(c.words) == sorted(allowed)
    with pytest.raises(InvalidInputError, match="can start a word here"):
        r.propose(TEXT, [SPANS[0]])  # no token may start the text


def test_bytelevel_words_start_unmarked_at_the_text_start_and_marked_after_a_space() -> None:
    tok = make_tokenizer("bytelevel")
    model = make_model(len(tok), torch.float64).eval()
    r = CausalLMResampler(model, tok, top_k=3)
    for span, c in zip(SPANS[:2], r.propose(TEXT, SPANS[:2]), strict=True):
        prefix = [tok.bos_token_id] + tok(TEXT[: span[0]].rstrip(), add_special_tokens=False)[
            "input_ids"]
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([prefix])).logits[0, -1]
        def top3(marker: str, logits: torch.Tensor = logits) -> list[str]:
            ids = torch.tensor(tok.convert_tokens_to_ids([marker + w for w in WORDS]))
            return [WORDS[int(i)] for i in logits[ids].argsort(descending=True)[:3]]
        right, wrong = ("", "Ġ") if span[0] == 0 else ("Ġ", "")
        assert sorted(c.words) == sorted(top3(right))
        assert sorted(top3(wrong)) != sorted(top3(right))  # the convention matters here


def test_text_the_tokenizer_cannot_segment_is_rejected(lm: LM) -> None:
    model, tok = lm
    text = "the cinematography was good"
    msg = (f"The resampler's tokenizer ({type(tok).__name__}) cannot segment the text {text!r}: "
           "it maps ['cinematography'] to its unknown token '[UNK]', so the language model cannot "
           "score the text. Use a causal LM whose tokenizer covers the text")
    with pytest.raises(InvalidInputError, match=re.escape(msg)):
        CausalLMResampler(model, tok).propose(text, [(0, 3), (4, 18), (19, 22), (23, 27)])


def test_first_word_without_bos_is_rejected(lm: LM) -> None:
    model, tok = lm
    msg = (f"The word at (0, 3) of {TEXT!r} starts the text, and without a BOS token the causal "
           "LM has no distribution for it. Use add_bos=True")
    with pytest.raises(InvalidInputError, match=re.escape(msg)):
        CausalLMResampler(model, tok, add_bos=False).propose(TEXT, SPANS)


def test_no_spans_is_rejected(lm: LM) -> None:
    model, tok = lm
    with pytest.raises(InvalidInputError, match="has no words to resample"):
        CausalLMResampler(model, tok).propose(TEXT, [])


@pytest.mark.parametrize(("name", "value", "constraint"), [
    ("top_k", 0, "an int in the range [1, inf)"),
    ("top_k", 2.5, "an int in the range [1, inf)"),
    ("batch_size", 0, "an int in the range [1, inf)"),
    ("min_prob", 1.0, "a float in the range [0, 1)"),
    ("min_prob", -0.1, "a float in the range [0, 1)"),
])
def test_invalid_parameters_name_the_parameter(lm: LM, name: str, value: object,
                                               constraint: str) -> None:
    model, tok = lm
    msg = (f"The {name!r} parameter of CausalLMResampler must be {constraint}. "
           f"Got {value!r} instead.")
    with pytest.raises(InvalidParameterError, match=re.escape(msg)) as info:
        CausalLMResampler(model, tok, **{name: value})
    assert info.value.parameter == name


def test_training_mode_and_global_rng_are_left_alone() -> None:
    tok = make_tokenizer("whitespace")
    model = make_model(len(tok))  # built in training mode: dropout active (p = 0.1)
    assert model.training
    state = torch.random.get_rng_state()
    cands = CausalLMResampler(model, tok, top_k=20).propose(TEXT, SPANS)
    assert model.training
    assert torch.equal(torch.random.get_rng_state(), state)
    # dropout was off during the passes: same values as with the model in eval mode
    ref = CausalLMResampler(model.eval(), tok, top_k=20).propose(TEXT, SPANS)
    for a, b in zip(cands, ref, strict=True):
        assert a.words == b.words
        torch.testing.assert_close(a.probs, b.probs, rtol=0, atol=0)
