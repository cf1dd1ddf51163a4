"""Closed-form toy models and tiny offline transformers for the tests."""

from __future__ import annotations

from typing import Any

import torch


class Linear(torch.nn.Module):
    """f(x) = x @ w + b, one output per column of w."""

    def __init__(self, w: torch.Tensor, b: torch.Tensor | float = 0.0) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(w.reshape(w.shape[0], -1).clone())
        self.b = torch.nn.Parameter(torch.as_tensor(b, dtype=torch.float32).reshape(-1).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.w + self.b


class Additive(torch.nn.Module):
    """f(x) = sum_j g_j(x_j) with g_j = sin, square, exp, 3x (first four features)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        terms = torch.stack([torch.sin(x[:, 0]), x[:, 1] ** 2, torch.exp(x[:, 2]), 3 * x[:, 3]], 1)
        return terms.sum(1, keepdim=True)


class Polynomial2(torch.nn.Module):
    """f(x) = sum_j a_j x_j + sum_{j<k} B_jk x_j x_k (second order)."""

    def __init__(self, a: torch.Tensor, b: torch.Tensor) -> None:
        super().__init__()
        self.a = a
        self.b = torch.triu(b, diagonal=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x @ self.a + ((x @ self.b) * x).sum(1)).unsqueeze(1)


class IGPaperModel(torch.nn.Module):
    """f(x1, x2) = ReLU(ReLU(x1) - 1 - ReLU(x2)) (Sundararajan et al. 2017, captum BasicModel2)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        relu = torch.relu
        return relu(relu(x[:, 0]) - 1 - relu(x[:, 1])).unsqueeze(1)


def mlp(n_in: int = 6, n_hidden: int = 16, n_out: int = 3, seed: int = 0) -> torch.nn.Module:
    """A smooth tanh MLP with fixed random weights."""
    gen = torch.Generator().manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(n_in, n_hidden), torch.nn.Tanh(),
                                torch.nn.Linear(n_hidden, n_out))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.7)
    return model


def tiny_tokenizer():  # type: ignore[no-untyped-def]
    """A BERT-style WordPiece fast tokenizer over a small in-memory vocabulary."""
    from xai.testing import tiny_tokenizer as make

    return make()


def tiny_bert_classifier(seed: int = 0):  # type: ignore[no-untyped-def]
    """A 2-layer random BertForSequenceClassification (unit tests only, never for claims)."""
    from xai.testing import tiny_text_classifier

    return tiny_text_classifier(seed)


def exact_shapley(value, d: int) -> torch.Tensor:  # type: ignore[no-untyped-def]
    """Exact Shapley values of the game ``value(keep: bool (m, d)) -> (m,)`` by enumeration."""
    import itertools
    import math

    masks = torch.tensor(list(itertools.product([False, True], repeat=d)), dtype=torch.bool)
    v = value(masks).double()
    index = {tuple(m.tolist()): i for i, m in enumerate(masks)}
    phi = torch.zeros(d, dtype=torch.float64)
    for i, m in enumerate(masks):
        s = int(m.sum())
        for j in range(d):
            if not m[j]:
                with_j = list(m.tolist())
                with_j[j] = True
                w = math.factorial(s) * math.factorial(d - s - 1) / math.factorial(d)
                phi[j] += w * (v[index[tuple(with_j)]] - v[i])
    return phi


# -- tiny causal LMs over a 16-word vocabulary -------------------------------------------------
LM_WORDS = ("the", "cat", "sat", "on", "mat", "a", "dog", "ran", "to", "park", "and", "it", "was",
            "red", "blue", "big")


def word_tokenizer(*, pad: bool = True):  # type: ignore[no-untyped-def]
    """A word-level fast tokenizer with BOS/EOS (and PAD) that does not add BOS itself."""
    import transformers
    from tokenizers import Tokenizer, pre_tokenizers
    from tokenizers.models import WordLevel

    vocab = {t: i for i, t in enumerate(["<pad>", "<bos>", "<eos>", "<unk>", *LM_WORDS])}
    tok = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    extra = {"pad_token": "<pad>"} if pad else {}
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", unk_token="<unk>",
        model_max_length=64, **extra)


def tiny_gpt2(seed: int = 0) -> torch.nn.Module:
    import transformers

    config = transformers.GPT2Config(vocab_size=4 + len(LM_WORDS), n_positions=64, n_embd=32,
                                     n_layer=2, n_head=2, resid_pdrop=0.0, embd_pdrop=0.0,
                                     attn_pdrop=0.0, bos_token_id=1, eos_token_id=2)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return transformers.GPT2LMHeadModel(config).eval()


def tiny_gemma3(seed: int = 0, sliding_window: int = 4) -> torch.nn.Module:
    import transformers

    config = transformers.Gemma3TextConfig(
        vocab_size=4 + len(LM_WORDS), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=64,
        sliding_window=sliding_window, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return transformers.Gemma3ForCausalLM(config).eval()


def make_metric(name: str, **params: Any) -> Any:
    """The metric registered as ``name``; a required parameter (``needs_params``, such as the
    responsiveness metric's ``action_set``) comes from the class's ``_test_params()``."""
    import metrics

    cls = metrics.METRICS.get(name)
    needed = {k: v for k, v in (cls._test_params()[0] if cls.needs_params else {}).items()
              if k in cls.needs_params}
    return cls(**{**needed, **params})
