"""AmortizedExplainer on text models (issue 18, requirement 2): a per-token head over the frozen
classifier's hidden states, pooled to words; efficiency per example over its own words, exact
values on a model additive over words, persistence and refusal of another model, seeds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import xai
from xai import AmortizedExplainer
from xai.exceptions import IncompatibleModelError, InvalidParameterError

transformers = pytest.importorskip("transformers")

from xai.testing import tiny_text_classifier, tiny_tokenizer  # noqa: E402

WORDS = ("the", "movie", "was", "great", "terrible", "fun", "boring", "plot", "actors", "not",
         "very", "good", "bad", "a", "film", "story")
SUFFIXES = ("", "", "", "s", "ing", "ly")


def sentences(n: int, seed: int) -> list[str]:
    """Texts of 2 to 9 words from the tiny vocabulary, some words split into two tokens."""
    rng = np.random.default_rng(seed)
    return [" ".join(str(rng.choice(WORDS)) + str(rng.choice(SUFFIXES))
                     for _ in range(int(rng.integers(2, 10)))) for _ in range(n)]


class BagOfWords(torch.nn.Module):
    """logit = 0.3 + sum of per-token weights over the attended tokens ([PAD] and the special
    tokens weigh 0), and its negation. Additive over words: with the [PAD] baseline, a word's
    Shapley value is the sum of its tokens' weights. Its hidden states are fixed random token
    embeddings (``width`` wide), from which a linear head can read each token's weight."""

    def __init__(self, vocab: int, width: int = 48, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        weight = torch.randn(vocab, generator=gen)
        weight[:5] = 0.0  # [PAD] [UNK] [CLS] [SEP] [MASK]
        self.register_buffer("weight", weight)
        self.register_buffer("embed", torch.randn(vocab, width, generator=gen))

    def forward(self, input_ids, attention_mask=None, token_type_ids=None,
                output_hidden_states=False):
        mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
        s = (self.weight[input_ids] * mask).sum(1) + 0.3
        states = (self.embed[input_ids],) if output_hidden_states else None
        return transformers.modeling_outputs.SequenceClassifierOutput(
            logits=torch.stack([s, -s], 1), hidden_states=states)

    def shapley(self, tok, text: str) -> torch.Tensor:
        """Exact values of the words of ``text`` (sum of their tokens' weights)."""
        enc = tok(text, return_offsets_mapping=True)
        words, prev = [], -1
        for tid, (a, b) in zip(enc["input_ids"], enc["offset_mapping"], strict=True):
            if b <= a:
                continue
            if a == prev:
                words[-1] += float(self.weight[tid])
            else:
                words.append(float(self.weight[tid]))
            prev = b
        return torch.tensor(words)


FAST = {"hidden": (16,), "epochs": 2, "n_coalitions": 8, "batch_size": 16, "random_state": 0,
        "teacher_params": {"n_permutations": 2}, "show_progress": False}


@pytest.fixture(scope="module")
def bert():
    return tiny_text_classifier(0)


@pytest.fixture(scope="module")
def bert_fit(bert):
    return AmortizedExplainer.fit(bert, sentences(40, 1), **FAST)


def model_gap(model, tok, texts: list[str]) -> torch.Tensor:
    """f(x) - f(baseline) of each text, the baseline replacing every non-special token by
    [PAD] (attention kept), computed directly on the model."""
    out = []
    for t in texts:
        enc = tok(t, return_tensors="pt", return_special_tokens_mask=True)
        ids = enc["input_ids"]
        base = torch.where(enc["special_tokens_mask"].bool(), ids,
                           torch.full_like(ids, tok.pad_token_id))
        kw = {"attention_mask": enc["attention_mask"]}
        with torch.no_grad():
            out.append((model(input_ids=ids, **kw).logits - model(input_ids=base, **kw).logits)[0])
    return torch.stack(out).double()


def test_values_sum_to_f_x_minus_f_pad_baseline_per_example_and_pads_are_masked(bert, bert_fit):
    model, tok = bert
    texts = ["fun", "the movie was great", "a very boring plot and bad actors !"]
    exp = xai.explain((model, tok), texts, method=bert_fit, target="all")
    n_words = [1, 4, 8]
    assert exp.feature_mask is not None
    assert exp.feature_mask.sum(1).tolist() == n_words
    assert exp.values.shape == (3, 2, 8)
    for i, d in enumerate(n_words):
        assert torch.all(exp.values[i, :, d:] == 0)
    torch.testing.assert_close(exp.values.double().sum(-1), model_gap(model, tok, texts),
                               rtol=0, atol=1e-5)
    assert exp.extras["efficiency_gap"] < 1e-9
    # a one-word text gets its whole gap, whatever the head says
    torch.testing.assert_close(exp.values[0, :, 0].double(), model_gap(model, tok, ["fun"])[0],
                               rtol=0, atol=1e-6)
    # the players are the teacher's words, in the same order as shapley_sampling's
    ref = xai.explain((model, tok), texts, method="shapley_sampling", baseline="pad",
                      target="all", random_state=0)
    assert [f.feature_names for f in exp.features] == [f.feature_names for f in ref.features]


def test_texts_of_one_token_length_share_one_baseline_row(bert, bert_fit):
    """Texts of equal token length have the same [PAD] baseline: it is scored once, and each
    text still gets its own f(x) - f(baseline) (checked on the model directly)."""
    model, tok = bert
    texts = ["the movie was great", "the plot was bad", "fun", "a very boring film"]
    lengths = [len(tok(t)["input_ids"]) for t in texts]
    exp = xai.explain((model, tok), texts, method=bert_fit, target="all")
    # per text: f(x) and the token-state pass, plus one row per distinct baseline
    assert int(exp.extras["n_rows"].sum()) == 2 * len(texts) + len(set(lengths))
    assert len(set(lengths)) < len(texts)
    torch.testing.assert_close(exp.values.double().sum(-1), model_gap(model, tok, texts),
                               rtol=0, atol=1e-5)


@pytest.mark.parametrize("objective", ["fastshap", "distill"])
def test_a_model_additive_over_words_gets_its_exact_shapley_values(objective):
    tok = tiny_tokenizer()
    model = BagOfWords(len(tok))
    am = AmortizedExplainer.fit((model, tok), sentences(160, 2), objective=objective, hidden=(),
                                epochs=40, lr=0.02, patience=40, n_coalitions=16,
                                random_state=0, show_progress=False)
    test = sentences(30, 3)
    exp = xai.explain((model, tok), test, method=am, target="all")
    worst = 0.0
    for i, text in enumerate(test):
        exact = model.shapley(tok, text)
        d = len(exact)
        assert int(exp.feature_mask[i].sum()) == d
        for out, sign in ((0, 1.0), (1, -1.0)):
            worst = max(worst, float((exp.values[i, out, :d] - sign * exact).abs().max()))
    scale = float(model.weight.abs().max())
    assert worst / scale < 1e-2
    assert am.report.rmse_exact is not None  # at most 9 words: the report enumerates them
    assert am.report.rmse_exact < 1e-2 * scale
    assert am.report.teacher_rmse_exact == pytest.approx(0.0, abs=1e-5)  # exact below 2^10


def test_save_and_load_round_trip_bit_for_bit_and_another_model_is_refused(bert, bert_fit,
                                                                          tmp_path):
    model, tok = bert
    folder = bert_fit.save(tmp_path / "explainer")
    back = AmortizedExplainer.load(folder, (model, tok))
    for k, v in bert_fit.network.state_dict().items():
        assert torch.equal(v, back.network.state_dict()[k])
    assert back.record == bert_fit.record
    assert back.report == bert_fit.report
    texts = sentences(5, 4)
    assert torch.equal(xai.explain((model, tok), texts, method=back, target=1).values,
                       xai.explain((model, tok), texts, method=bert_fit, target=1).values)
    other, _ = tiny_text_classifier(1)
    with pytest.raises(IncompatibleModelError, match="fitted to another model"):
        AmortizedExplainer.load(folder, (other, tok))
    with pytest.raises(IncompatibleModelError, match="fitted to another model"):
        xai.explain((other, tok), texts, method=bert_fit, target=1)
    with pytest.raises(IncompatibleModelError, match="fitted to a text model"):
        xai.explain(torch.nn.Linear(4, 2), torch.zeros(3, 4), method=bert_fit, target=1)


def test_a_model_with_other_representations_is_refused_even_with_the_same_outputs(tmp_path):
    tok = tiny_tokenizer()
    am = AmortizedExplainer.fit((BagOfWords(len(tok), width=48), tok), sentences(30, 5),
                                **FAST)
    folder = am.save(tmp_path / "explainer")
    narrow = BagOfWords(len(tok), width=40)  # the same weights (same seed), 40-wide states
    with pytest.raises(IncompatibleModelError, match="width 48, and this model's last hidden "
                                                     "states have width 40"):
        AmortizedExplainer.load(folder, (narrow, tok))


def test_the_same_seed_gives_the_same_explainer(bert, bert_fit):
    texts = sentences(40, 1)
    again = AmortizedExplainer.fit(bert, texts, **FAST)
    other = AmortizedExplainer.fit(bert, texts, **{**FAST, "random_state": 1})
    for k, v in bert_fit.network.state_dict().items():
        assert torch.equal(v, again.network.state_dict()[k])
    assert not all(torch.equal(v, other.network.state_dict()[k])
                   for k, v in bert_fit.network.state_dict().items())
    assert [(h["train_loss"], h["val_loss"]) for h in again.report.history] == \
        [(h["train_loss"], h["val_loss"]) for h in bert_fit.report.history]


def test_a_model_without_hidden_states_or_with_feature_groups_is_a_typed_error():
    tok = tiny_tokenizer()

    class NoStates(BagOfWords):
        def forward(self, input_ids, attention_mask=None, token_type_ids=None):
            return super().forward(input_ids, attention_mask).logits

    with pytest.raises(IncompatibleModelError, match="output_hidden_states"):
        AmortizedExplainer.fit((NoStates(len(tok)), tok), sentences(20, 6), **FAST)
    with pytest.raises(InvalidParameterError) as err:
        AmortizedExplainer.fit((BagOfWords(len(tok)), tok), sentences(20, 6),
                               **{**FAST, "teacher_params": {"feature_groups": [0, 0, 1]}})
    assert err.value.parameter == "teacher_params"


def test_a_sentence_classifier_is_read_through_its_encoder(bert):
    # the demo MiniLM classifier's layout: an HF encoder, mean pooling, a linear head; its
    # forward takes no output_hidden_states, so the head reads the encoder's last hidden states
    from xai._amortized_text import token_states
    from xai.adapters import as_adapter

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = bert[0].bert
            self.head = torch.nn.Linear(32, 2)
            with torch.no_grad():
                self.head.weight.copy_(torch.linspace(-1, 1, 64).view(2, 32))
                self.head.bias.zero_()

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            h = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            m = attention_mask.unsqueeze(-1).float()
            return self.head((h * m).sum(1) / m.sum(1))

    model, tok = Pooled().eval(), bert[1]
    texts = sentences(3, 7)
    adapter = as_adapter((model, tok))
    batch = adapter.prepare(texts)
    with torch.no_grad():
        want = model.encoder(input_ids=batch.tensors["input_ids"],
                             attention_mask=batch.tensors["attention_mask"]).last_hidden_state
    torch.testing.assert_close(token_states(adapter, batch, 8), want, rtol=0, atol=0)
    am = AmortizedExplainer.fit((model, tok), sentences(20, 8), **FAST)
    exp = xai.explain((model, tok), texts, method=am, target="all")
    gap = []
    for t in texts:
        enc = tok(t, return_tensors="pt", return_special_tokens_mask=True)
        base = torch.where(enc["special_tokens_mask"].bool(), enc["input_ids"],
                           torch.full_like(enc["input_ids"], tok.pad_token_id))
        with torch.no_grad():
            gap.append((model(enc["input_ids"], enc["attention_mask"])
                        - model(base, enc["attention_mask"]))[0])
    torch.testing.assert_close(exp.values.double().sum(-1), torch.stack(gap).double(), rtol=0,
                               atol=1e-5)


def test_a_distill_cache_is_reused_across_head_widths(bert, tmp_path):
    """The teacher's values depend on the seed, not on the head: a second fit with another
    width reads them back and scores exactly the teacher's rows fewer."""
    texts = sentences(30, 2)
    kw = {**FAST, "objective": "distill", "cache": tmp_path / "cache", "exact_max_features": 0}
    narrow = AmortizedExplainer.fit(bert, texts, **kw)
    files = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len(files) == 2  # one chunk of training texts, one of validation texts
    wide = AmortizedExplainer.fit(bert, texts, **{**kw, "hidden": (32, 8)})
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == files
    fresh = AmortizedExplainer.fit(bert, texts, **{**kw, "hidden": (32, 8),
                                                   "cache": tmp_path / "other"})
    # same rows as a fit without the cache, less the training and validation teacher rows
    teacher_rows = fresh.report.model_rows - wide.report.model_rows
    per_text = xai.explain(bert, texts, method="shapley_sampling", target="all",
                           **FAST["teacher_params"]).extras["n_rows"]
    assert teacher_rows == int(per_text.sum())
    assert narrow.report.model_rows == fresh.report.model_rows
    for k, v in fresh.network.state_dict().items():
        assert torch.equal(v, wide.network.state_dict()[k])
