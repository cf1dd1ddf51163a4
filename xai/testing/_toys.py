"""Toy models and adapter fixtures of the conformance suite (no global RNG use)."""

from __future__ import annotations

import copy
import dataclasses
import functools
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch

from .._capabilities import Capability
from ..adapters import CallableAdapter, as_adapter
from ..adapters._base import Batch, ModelAdapter

# -- toy models --------------------------------------------------------------------------------


def toy_mlp(n_features: int = 5, n_outputs: int = 3, *, n_hidden: int = 8,
            seed: int = 0) -> torch.nn.Module:
    """A tanh MLP ``n_features -> n_hidden -> n_outputs`` with fixed weights (global RNG untouched)."""
    gen = torch.Generator().manual_seed(seed)
    skip_init: Any = torch.nn.utils.skip_init  # no init draws from the global RNG; untyped in torch
    layers = [skip_init(torch.nn.Linear, n_features, n_hidden), torch.nn.Tanh(),
              skip_init(torch.nn.Linear, n_hidden, n_outputs)]
    model = torch.nn.Sequential(*layers)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.7)
    return model.eval()


def toy_function(n_features: int = 5, n_outputs: int = 3, *,
                 seed: int = 0) -> Callable[[np.ndarray], np.ndarray]:
    """A numpy function with feature interactions: ``tanh(x @ W) + (x ** 2) @ V``."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(n_features, n_outputs))
    v = 0.3 * rng.normal(size=(n_features, n_outputs))

    def toy_function(x: np.ndarray) -> np.ndarray:
        return np.tanh(x @ w) + (x**2) @ v

    return toy_function


def toy_inputs(n_examples: int = 4, n_features: int = 5, *, seed: int = 1) -> np.ndarray:
    """Standard-normal float32 inputs (n_examples, n_features) from a private generator."""
    return np.random.default_rng(seed).normal(size=(n_examples, n_features)).astype(np.float32)


_WORDS = ("the", "movie", "was", "great", "terrible", "fun", "boring", "plot", "actors", "not",
          "very", "good", "bad", "a", "an", "and", "it", "is", "film", "story")


def tiny_tokenizer() -> Any:
    """A BERT-style WordPiece fast tokenizer over a 20-word in-memory vocabulary (offline)."""
    import transformers
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece

    hf: Any = transformers  # loosely typed third-party constructors
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    pieces = ["##s", "##ing", "##ly", "##ed", "!", ".", ",", "'"]
    vocab = {t: i for i, t in enumerate([*specials, *_WORDS, *pieces])}
    tok = Tokenizer(WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    return hf.PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]",
                                      cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
                                      model_max_length=32)


def tiny_text_classifier(seed: int = 0) -> tuple[torch.nn.Module, Any]:
    """(model, tokenizer): a 2-layer random BERT sentiment classifier, for unit tests only.

    Labels are NEGATIVE and POSITIVE; inputs are at most 32 tokens. The weights are random, so
    its explanations mean nothing. transformers initialises from the global torch RNG, whose
    state is saved and restored around the construction.
    """
    import transformers

    hf: Any = transformers  # loosely typed third-party constructors
    tok = tiny_tokenizer()
    labels = ("NEGATIVE", "POSITIVE")
    config = hf.BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2,
                           num_attention_heads=2, intermediate_size=48,
                           max_position_embeddings=32, num_labels=2, hidden_dropout_prob=0.0,
                           attention_probs_dropout_prob=0.0, id2label=dict(enumerate(labels)),
                           label2id={lab: i for i, lab in enumerate(labels)})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = hf.BertForSequenceClassification(config).eval()
    return model, tok


# -- fixtures ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class AdapterFixture:
    """A model, inputs and target on which the checks run.

    Parameters
    ----------
    name : str
    make : callable
        Returns ``(model, inputs)``; called once and cached.
    n_outputs : int
        Model outputs; the checks explain all of them (``target="all"``).
    atol, rtol : float
        Tolerances of the batch-invariance check (text rows alone are padded differently).
    """

    name: str
    make: Callable[[], tuple[Any, Any]]
    n_outputs: int
    atol: float = 1e-5
    rtol: float = 1e-5
    target: Any = "all"

    @property
    def model(self) -> Any:
        return _built(self.make)[0]

    @property
    def inputs(self) -> Any:
        """A fresh copy of the inputs (a method that mutates them cannot affect other checks)."""
        return copy.deepcopy(_built(self.make)[1])

    def rows(self) -> list[Any]:
        """Each example alone, as a batch of one."""
        x = self.inputs
        return [x[i:i + 1] for i in range(len(x))]

    def adapter(self) -> ModelAdapter:
        return as_adapter(self.model)

    @property
    def module(self) -> torch.nn.Module | None:
        """The torch module inside the model, if any (checked for hooks and state)."""
        model = self.model
        if isinstance(model, ModelAdapter):
            model = model.model
        if isinstance(model, tuple):
            model = model[0]
        return model if isinstance(model, torch.nn.Module) else None


@functools.cache
def _built(make: Callable[[], tuple[Any, Any]]) -> tuple[Any, Any]:
    return make()


def _mlp_case() -> tuple[Any, Any]:
    return toy_mlp(), toy_inputs()


def _callable_case() -> tuple[Any, Any]:
    return CallableAdapter(toy_function(), n_features=5), toy_inputs()


def _sklearn_case() -> tuple[Any, Any]:
    from sklearn.linear_model import LogisticRegression

    x = toy_inputs(60, seed=2)
    y = (x @ np.random.default_rng(3).normal(size=(5, 3))).argmax(1)
    return LogisticRegression(max_iter=1000).fit(x, y), toy_inputs()


def _text_case() -> tuple[Any, Any]:
    texts = ["the movie was great", "a very boring plot and bad actors !", "fun film"]
    return tiny_text_classifier(), texts


_NOT_CALLED = "an incompatible adapter must not be called"


class _NoCapabilityAdapter(ModelAdapter):
    """An adapter that can do nothing: every method with requirements is incompatible with it."""

    capabilities: ClassVar[Capability] = Capability(0)

    def predict(self, inputs: Batch) -> torch.Tensor:
        raise AssertionError(_NOT_CALLED)

    def prepare(self, inputs: Any) -> Batch:
        raise AssertionError(_NOT_CALLED)

    def features(self, batch: Batch, *, granularity: str = "auto",
                 baseline: Any = "auto", groups: Any = None) -> tuple[Any, ...]:
        raise AssertionError(_NOT_CALLED)


NO_CAPABILITY = AdapterFixture("no_capability", lambda: (_NoCapabilityAdapter(), toy_inputs()), 3)


@functools.cache
def adapter_fixtures() -> tuple[AdapterFixture, ...]:
    """The fixtures of the suite: torch MLP, numpy callable, and, when installed, scikit-learn
    logistic regression and a tiny BERT classifier."""
    out = [AdapterFixture("torch_mlp", _mlp_case, 3),
           AdapterFixture("callable", _callable_case, 3)]
    if _importable("sklearn"):
        out.append(AdapterFixture("sklearn_logreg", _sklearn_case, 3))
    if _importable("transformers") and _importable("tokenizers"):
        out.append(AdapterFixture("text_bert", _text_case, 2, atol=1e-4, rtol=1e-4))
    return tuple(out)


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


class UniformResampler:
    """A deterministic TokenResampler for tests: the same few words, equally likely, anywhere."""

    def __init__(self, words: tuple[str, ...] = ("the", "movie", "great", "bad")) -> None:
        self.words = words

    def propose(self, text: str, spans: Any) -> list[Any]:
        from ..features.resamplers import Candidates

        probs = torch.full((len(self.words),), 1 / len(self.words), dtype=torch.float64)
        return [Candidates(self.words, probs) for _ in spans]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UniformResampler) and other.words == self.words

    def __hash__(self) -> int:
        return hash(self.words)

    def __repr__(self) -> str:
        return f"UniformResampler({self.words!r})"
