"""Context length probing: known answers on a toy Markov LM, brute force on a tiny GPT-2."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import torch
import transformers
from models import LM_WORDS, tiny_gpt2, word_tokenizer

import xai
from xai.adapters import HFCausalLMAdapter
from xai.methods import ContextLengthProbing

TEXT = "the cat sat on the mat and a dog ran to the big red park"
BOS = 1




class MarkovK(torch.nn.Module):
    """Toy causal LM: the logits at position p (predicting token p+1) depend only on the token at
    position p+1-K, i.e. K positions before the predicted token; a start row when there is none."""

    def __init__(self, vocab: int, k: int = 2, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.k = k
        self.table = torch.nn.Parameter(2.0 * torch.randn(vocab + 1, vocab, generator=g))

    def forward(self, input_ids: torch.Tensor, attention_mask: Any = None,
                **kwargs: Any) -> Any:
        shift = self.k - 1
        start = torch.full_like(input_ids[:, :shift], self.table.shape[0] - 1)
        src = torch.cat([start, input_ids[:, : input_ids.shape[1] - shift]], dim=1)
        return SimpleNamespace(logits=self.table[src])




@pytest.fixture(scope="module")
def gpt2() -> HFCausalLMAdapter:
    return HFCausalLMAdapter(tiny_gpt2(), word_tokenizer())


@pytest.fixture(scope="module")
def markov() -> HFCausalLMAdapter:
    return HFCausalLMAdapter(MarkovK(4 + len(LM_WORDS)), word_tokenizer())


def content_ids(adapter: HFCausalLMAdapter, text: str) -> list[int]:
    return adapter.prepare(text).tensors["input_ids"][0, 1:].tolist()


def brute_force(adapter: HFCausalLMAdapter, ids: list[int], metric: str,
                max_context: int) -> torch.Tensor:
    """D(t, c) by running every context [BOS, x_{t-c} .. x_{t-1}] separately."""
    n = len(ids)
    w = min(max_context, n - 1)
    d = torch.full((n - 1, w + 1), float("nan"))
    with torch.no_grad():
        for t in range(1, n):
            cmax = min(t, w)
            rows = {}
            for c in range(cmax + 1):
                ctx = torch.tensor([[BOS, *ids[t - c:t]]])
                rows[c] = torch.log_softmax(adapter.model(input_ids=ctx).logits[0, -1], -1)
            for c, lp in rows.items():
                if metric == "nll":
                    d[t - 1, c] = -lp[ids[t]]
                else:
                    full = rows[cmax]
                    d[t - 1, c] = (full.exp() * (full - lp)).sum()
    return d


@pytest.mark.parametrize("metric", ["kl", "nll"])
def test_markov_order_k_delta_is_zero_beyond_k(markov, metric):
    exp = xai.explain(markov, TEXT, method="context_length_probing", metric=metric)
    v = exp.values[0]  # (n_targets, n_tokens); row t-1 is target t
    n = v.shape[1]
    assert v.shape == (n - 1, n)
    for ti in range(n - 1):
        t = ti + 1
        far = v[ti, : max(t - 2, 0)]  # context tokens more than K=2 back
        torch.testing.assert_close(far, torch.zeros_like(far), rtol=0, atol=1e-6)
        if t >= 2:
            assert abs(float(v[ti, t - 2])) > 1e-3  # the token K back matters
        torch.testing.assert_close(v[ti, t:], torch.zeros(n - t), rtol=0, atol=0)  # future


@pytest.mark.parametrize("metric", ["kl", "nll"])
@pytest.mark.parametrize("max_context", [64, 5])
def test_sliding_windows_equal_brute_force(gpt2, metric, max_context):
    exp = xai.explain(gpt2, TEXT, method="context_length_probing", metric=metric,
                      max_context=max_context, batch_size=4)
    ids = content_ids(gpt2, TEXT)
    expected = brute_force(gpt2, ids, metric, max_context)
    d = exp.extras["D"][0]
    torch.testing.assert_close(d, expected, rtol=0, atol=1e-5, equal_nan=True)
    n = len(ids)
    assert int(exp.extras["n_model_calls"]) == 1 + -(-(n - 1) // 4)  # BOS call + chunks
    assert exp.target.names[0] == tuple(TEXT.split()[1:])


@pytest.mark.parametrize("metric", ["kl", "nll"])
def test_telescoping_and_full_context(gpt2, metric):
    exp = xai.explain(gpt2, TEXT, method="context_length_probing", metric=metric)
    d, v = exp.extras["D"][0], exp.values[0]
    n = v.shape[1]
    cmax = torch.arange(1, n)
    telescoped = d[:, 0] - d[torch.arange(n - 1), cmax]
    torch.testing.assert_close(v.sum(1), telescoped, rtol=0, atol=1e-5)
    if metric == "kl":
        torch.testing.assert_close(d[torch.arange(n - 1), cmax], torch.zeros(n - 1),
                                   rtol=0, atol=0)
    # predictions are the full-context log p of each target (one plain forward pass)
    ids = torch.tensor([[BOS, *content_ids(gpt2, TEXT)]])
    with torch.no_grad():
        lp = torch.log_softmax(gpt2.model(input_ids=ids).logits[0], -1)
    full = lp[1:-1].gather(1, ids[0, 2:].unsqueeze(1)).squeeze(1)
    torch.testing.assert_close(exp.predictions[0], full, rtol=0, atol=1e-5)


def test_word_granularity_sums_token_pieces():
    # a WordPiece-style tokenizer splits "cats" into "cat" + "##s": one word, two tokens
    from tokenizers import Tokenizer, pre_tokenizers
    from tokenizers.models import WordPiece

    vocab = {t: i for i, t in enumerate(["<pad>", "<bos>", "<eos>", "[UNK]", *LM_WORDS, "##s"])}
    tok = Tokenizer(WordPiece(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    hf = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>",
                                              pad_token="<pad>", unk_token="[UNK]")
    config = transformers.GPT2Config(vocab_size=len(vocab), n_positions=32, n_embd=16,
                                     n_layer=1, n_head=2)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = transformers.GPT2LMHeadModel(config).eval()
    lm = xai.as_adapter((model, hf))
    text = "the cats sat on mat"
    tok_exp = xai.explain(lm, text, method="context_length_probing", granularity="token")
    word_exp = xai.explain(lm, text, method="context_length_probing", granularity="word")
    assert word_exp.names[0] == ("the", "cats", "sat", "on", "mat")
    tv = tok_exp.values[0]  # tokens: the cat ##s sat on mat
    expected = torch.stack([tv[:, 0], tv[:, 1] + tv[:, 2], tv[:, 3], tv[:, 4], tv[:, 5]], dim=1)
    torch.testing.assert_close(word_exp.values[0], expected, rtol=0, atol=0)


def test_bad_inputs(gpt2):
    with pytest.raises(xai.InvalidInputError, match="empty string"):
        xai.explain(gpt2, "", method="context_length_probing")
    with pytest.raises(xai.InvalidInputError, match="at least 2"):
        xai.explain(gpt2, "cat", method="context_length_probing")
    with pytest.raises(xai.InvalidParameterError, match="'metric'") as err:
        xai.explain(gpt2, TEXT, method="context_length_probing", metric="foo")
    assert err.value.parameter == "metric"
    with pytest.raises(xai.InvalidParameterError, match="'max_context'") as err:
        ContextLengthProbing(max_context=0)
    assert err.value.parameter == "max_context"
    with pytest.raises(xai.InvalidInputError, match="one text at a time"):
        xai.explain(gpt2, [TEXT, TEXT], method="context_length_probing")
    with pytest.raises(xai.InvalidTargetError, match="'target'"):
        xai.explain(gpt2, TEXT, method="context_length_probing", target=3)


def test_refuses_a_classifier(tiny_bert):
    with pytest.raises(xai.IncompatibleModelError, match="'context_length_probing'"):
        xai.explain(tiny_bert, "the movie", method="context_length_probing")


def test_without_bos_the_null_context_is_undefined(gpt2):
    lm = HFCausalLMAdapter(gpt2.model, word_tokenizer(), add_bos=False)
    exp = xai.explain(lm, TEXT, method="context_length_probing", metric="nll", max_context=4)
    ids = lm.prepare(TEXT).tensors["input_ids"][0].tolist()
    d, v = exp.extras["D"][0], exp.values[0]
    assert bool(d[:, 0].isnan().all())
    with torch.no_grad():  # D(t, c) = -log p(x_t | x_{t-c} .. x_{t-1}), no BOS
        for t in (1, 5, 9):
            for c in range(1, min(t, 4) + 1):
                ctx = torch.tensor([ids[t - c:t]])
                lp = torch.log_softmax(lm.model(input_ids=ctx).logits[0, -1], -1)
                torch.testing.assert_close(d[t - 1, c], -lp[ids[t]], rtol=0, atol=1e-5)
    n = len(ids)
    adjacent = v[torch.arange(n - 1), torch.arange(n - 1)]  # Δ(t-1 → t) needs D(t, 0)
    torch.testing.assert_close(adjacent, torch.zeros(n - 1), rtol=0, atol=0)
    # no BOS call; the first window alone reveals the vocabulary size, then one chunk
    assert int(exp.extras["n_model_calls"]) == 2


def test_target_tokens_come_from_the_hook_not_from_extras(gpt2):
    # The method overrides the target hook (Method.explain is the only template): the target
    # tokens are the outputs, their full-context log p the predictions, and nothing about the
    # target is left in extras (it once travelled there and was popped by an explain override).
    exp = xai.explain(gpt2, TEXT, method="context_length_probing", metric="nll", max_context=4)
    assert "explain" not in vars(ContextLengthProbing)
    assert set(exp.extras) == {"D", "n_model_calls", "n_token_positions"}
    assert exp.target.names[0] == tuple(TEXT.split()[1:])
    torch.testing.assert_close(exp.target.indices, torch.arange(len(TEXT.split()) - 1)[None])
    # D(t, c_max(t)) is the NLL at the longest probed context: minus the prediction
    d = exp.extras["D"][0]
    cmax = torch.clamp(torch.arange(1, len(TEXT.split())), max=4)
    torch.testing.assert_close(exp.predictions[0], -d[torch.arange(d.shape[0]), cmax],
                               rtol=0, atol=0)
