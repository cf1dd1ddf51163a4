"""OLM, OLM-S and input marginalization: the spec's known answers with a deterministic resampler."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import xai
from xai.features.resamplers import Candidates

# The spec's synthetic game (references/checks/olm_im_check.py): 3-class bag-of-words softmax
# classifier over a 6-word vocabulary, 4 positions, position 3 ignored; exact replacement
# distributions P[i] for every position.
_rng = np.random.default_rng(1)
V, L, C = 6, 4, 3
W = _rng.normal(size=(V, C)) * 1.5
P = _rng.dirichlet(np.ones(V) * 0.7, size=L)
X = [0, 3, 5, 2]
WORDS = tuple(f"w{v}" for v in range(V))
TEXT = " ".join(WORDS[v] for v in X)


class BagOfWords(torch.nn.Module):
    """Logits z = sum over the first three word positions of W[word] (position 3 ignored)."""

    def __init__(self, n_special: int) -> None:
        super().__init__()
        self.n_special = n_special
        self.w = torch.nn.Parameter(torch.tensor(W, dtype=torch.float64))

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        words = input_ids[:, 1:4] - self.n_special  # after [CLS]: positions 0..2 count
        return self.w[words].sum(1)


class ExactResampler:
    """Returns the known distribution P[i] over the 6 words for position i."""

    def propose(self, text, spans):
        return [Candidates(WORDS, torch.tensor(P[i])) for i in range(len(spans))]


@pytest.fixture(scope="module")
def classifier():
    from tokenizers import Tokenizer, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    vocab = {t: i for i, t in enumerate(specials + list(WORDS))}
    tok = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]",
                                   cls_token="[CLS]", sep_token="[SEP]", model_max_length=16)
    return BagOfWords(len(specials)), fast


def _f(x):
    z = sum(W[t] for t in x[:3])
    p = np.exp(z - z.max())
    return p / p.sum()


def test_exact_olm_known_answer(classifier):
    exp = xai.explain(classifier, [TEXT], method="olm", resampler=ExactResampler(),
                      n_samples=None, target=0)
    assert exp.feature_names[0] == tuple(WORDS[v] for v in X)
    expected = torch.tensor([0.0652, 0.3044, 0.3747, 0.0], dtype=torch.float32)
    torch.testing.assert_close(exp.values[0, 0], expected, rtol=0, atol=5e-5)
    assert float(exp.values[0, 0, 3]) == 0.0  # the ignored word, exactly


def test_exact_olm_s_known_answer(classifier):
    exp = xai.explain(classifier, [TEXT], method="olm", resampler=ExactResampler(),
                      n_samples=None, statistic="std", target=0)
    expected = torch.tensor([0.2026, 0.1556, 0.0882, 0.0], dtype=torch.float32)
    torch.testing.assert_close(exp.values[0, 0], expected, rtol=0, atol=5e-5)


def test_class_zero_sum_exact_and_sampled(classifier):
    for n in (None, 50):
        exp = xai.explain(classifier, [TEXT], method="olm", resampler=ExactResampler(),
                          n_samples=n, target="all", random_state=0)
        torch.testing.assert_close(exp.values[0].sum(0), torch.zeros(4), rtol=0, atol=1e-6)
        assert bool((exp.values[0, :, 3] == 0).all())


def test_monte_carlo_error_shrinks_like_one_over_sqrt_n(classifier):
    exact = float(xai.explain(classifier, [TEXT], method="olm", resampler=ExactResampler(),
                              n_samples=None, target=0).values[0, 0, 0])
    errors = {}
    for n in (10, 1000):
        vals = [float(xai.explain(classifier, [TEXT], method="olm", resampler=ExactResampler(),
                                  n_samples=n, target=0, random_state=s).values[0, 0, 0])
                for s in range(40)]
        errors[n] = float(np.mean(np.abs(np.array(vals) - exact)))
    # spec OLM-6: 0.0525 at n=10, 0.0052 at n=1000 (a factor sqrt(100) = 10); 40 seeds give
    # each mean ~15% relative noise, so the ratio lies well inside [5, 20]
    assert 5 < errors[10] / errors[1000] < 20


def test_input_marginalization_known_answer(classifier):
    # spec: WoE = (+0.3779, +2.0136, +2.7460, 0) with the full candidate set (sigma = 0)
    exp = xai.explain(classifier, [TEXT], method="input_marginalization",
                      resampler=ExactResampler(), min_prob=1e-12, target=0)
    expected = torch.tensor([0.3779, 2.0136, 2.7460, 0.0], dtype=torch.float32)
    torch.testing.assert_close(exp.values[0, 0], expected, rtol=0, atol=5e-5)
    assert float(exp.values[0, 0, 3]) == 0.0


def test_input_marginalization_truncation_and_renormalisation(classifier):
    # sigma = 0.2 at position 1, renormalised and not: closed forms from the spec's script
    c = 0
    keep = P[1] >= 0.2
    m = sum(P[1, v] * _f([X[0], v, X[2], X[3]])[c] for v in range(V) if keep[v])

    def woe(p):
        return math.log2(p / (1 + 1e-12 - p))

    for renorm, marginal in ((False, m), (True, m / P[1][keep].sum())):
        exp = xai.explain(classifier, [TEXT], method="input_marginalization",
                          resampler=ExactResampler(), min_prob=0.2, renormalize=renorm, target=0)
        expected = woe(_f(X)[c]) - woe(marginal)
        assert float(exp.values[0, 0, 1]) == pytest.approx(expected, abs=1e-5)


def test_bad_parameters_name_the_parameter(classifier):
    with pytest.raises(xai.InvalidParameterError, match="'n_samples' parameter of OLM"):
        xai.explain(classifier, [TEXT], method="olm", resampler=ExactResampler(), n_samples=0)
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(xai.InvalidParameterError,
                           match="'min_prob' parameter of InputMarginalization"):
            xai.InputMarginalization(resampler=ExactResampler(), min_prob=bad)
    with pytest.raises(xai.InvalidParameterError, match="The 'resampler' parameter of OLM is "
                                                        "required."):
        xai.explain(classifier, [TEXT], method="olm")
    with pytest.raises(xai.InvalidParameterError, match="must be a TokenResampler"):
        xai.OLM(resampler="bert-base-uncased")
    with pytest.raises(xai.InvalidInputError, match="empty string"):
        xai.explain(classifier, [""], method="olm", resampler=ExactResampler())


def test_resampler_without_candidates_is_a_typed_error(classifier):
    class Empty:
        def propose(self, text, spans):
            return [Candidates((), torch.zeros(0, dtype=torch.float64)) for _ in spans]

    with pytest.raises(xai.InvalidInputError, match="has no replacement for the word 'w0'"):
        xai.explain(classifier, [TEXT], method="olm", resampler=Empty(), target=0)


def test_all_replacements_of_a_text_share_few_classifier_calls(classifier):
    # 4 words x 6 candidates = 24 replaced texts, scored 10 per call: 3 calls
    for method, params in (("olm", {"n_samples": None}), ("input_marginalization",
                                                         {"min_prob": 1e-12})):
        exp = xai.explain(classifier, [TEXT], method=method, resampler=ExactResampler(),
                          batch_size=10, target=0, **params)
        assert int(exp.extras["n_model_calls"]) == 3


def test_single_word_text_uses_the_unconditional_proposal(tiny_bert):
    # A one-word text has no context: the resampler proposes from its prior (the OLM spec's
    # edge case), and the relevance is the expected drop over those proposals.
    from xai.testing._toys import UniformResampler

    resampler = UniformResampler(("fun", "bad"))
    exp = xai.explain(tiny_bert, ["great"], method="olm", resampler=resampler, n_samples=None,
                      target=1)
    clf = xai.as_adapter(tiny_bert)
    with torch.no_grad():
        p = clf.predict(clf.prepare(["great", "fun", "bad"])).double().softmax(-1)[:, 1]
    assert exp.feature_names == [("great",)]
    assert float(exp.values[0, 0, 0]) == pytest.approx(float(p[0] - (p[1] + p[2]) / 2), abs=1e-6)


def test_word_groups_of_an_additive_text_model_sum_their_words(classifier):
    # the bag-of-words logits are a sum over positions, so a group's occlusion value is the
    # sum of its words' values, and the group is named by its words
    single = xai.explain(classifier, TEXT, method="occlusion", target=0)
    grouped = xai.explain(classifier, TEXT, method="occlusion", target=0,
                          feature_groups=[[0, 0, 1, 2]])
    assert grouped.feature_names == [(f"{WORDS[X[0]]} {WORDS[X[1]]}", WORDS[X[2]], WORDS[X[3]])]
    v = single.values[0, 0]
    torch.testing.assert_close(grouped.values[0, 0], torch.stack([v[0] + v[1], v[2], v[3]]),
                               rtol=1e-6, atol=1e-6)


def test_olm_needs_groups_of_neighbouring_words(classifier):
    with pytest.raises(xai.InvalidInputError, match="each must be a word or a run of "
                       "neighbouring words: pass feature_groups whose groups are runs of "
                       "neighbouring words"):
        xai.explain(classifier, TEXT, method="olm", resampler=ExactResampler(), target=0,
                    feature_groups=[[0, 1, 0, 2]])
