"""Shapley values for generated text (``textgenshap``, and ``shapley_sampling`` on causal LMs).

Every value is checked against an independent brute force: each coalition's prompt rendered by
hand, scored or decoded one row at a time without any cache, and Shapley values enumerated.
"""

from __future__ import annotations

import itertools
import math
import re
import warnings

import pytest
import torch
from models import tiny_gemma3, tiny_gpt2, word_tokenizer

import xai
from xai.exceptions import (
    IncompatibleModelError,
    InvalidInputError,
    InvalidParameterError,
    InvalidTargetError,
)

PROMPT = {"prefix": "the cat", "documents": ["sat on a mat", "a dog ran", "it was red", "the park"],
          "suffix": "and it"}
SEP = "\n\n"


@pytest.fixture(scope="module", params=["gpt2", "gemma3"])
def lm(request):
    model = tiny_gpt2() if request.param == "gpt2" else tiny_gemma3()
    return xai.as_adapter((model, word_tokenizer()))


def coalition_text(keep):
    docs = [d for d, k in zip(PROMPT["documents"], keep, strict=True) if k]
    return SEP.join([PROMPT["prefix"], *docs, PROMPT["suffix"]])


def row_ids(lm, text):
    b = lm.prepare([text])
    return b.tensors["input_ids"][0][b.tensors["attention_mask"][0].bool()].tolist()


def alone_log_probs(lm, text, target):
    row = row_ids(lm, text)
    ids = torch.tensor([row + target])
    lp = lm.token_log_probs(ids, torch.ones_like(ids))[0]
    return torch.tensor([lp[len(row) - 1 + k, t].item() for k, t in enumerate(target)],
                        dtype=torch.float64)


def alone_answer(lm, text, n):
    ids = row_ids(lm, text)
    out = []
    for _ in range(n):
        t = torch.tensor([ids + out])
        nxt = int(lm.token_log_probs(t, torch.ones_like(t))[0, -1].argmax())
        out.append(nxt)
        if nxt == 2:
            break
    return lm.tokenizer.decode(out, skip_special_tokens=True).strip()


def enumerate_shapley(v, d):
    """phi (d, ...) from a dict coalition-tuple -> value tensor."""
    phi = 0
    out = []
    for j in range(d):
        phi = 0
        for keep in itertools.product([False, True], repeat=d):
            if keep[j]:
                continue
            s = sum(keep)
            w = math.factorial(s) * math.factorial(d - s - 1) / math.factorial(d)
            with_j = tuple(True if i == j else k for i, k in enumerate(keep))
            phi = phi + w * (v[with_j] - v[keep])
        out.append(phi)
    return torch.stack(out)


def test_documents_of_a_mapping_prompt_are_the_players(lm):
    exp = xai.explain(lm, PROMPT, method="textgenshap", granularity="document",
                      target=" to the park", max_new_tokens=4)
    assert exp.feature_names[0] == tuple(PROMPT["documents"])
    assert exp.texts == (coalition_text([True] * 4),)
    assert exp.target.names[0] == ("to", "the", "park")


def test_log_prob_values_equal_brute_force_and_are_efficient(lm):
    target_text = " to the park"
    exp = xai.explain(lm, PROMPT, method="textgenshap", granularity="document",
                      target=target_text, value="log_prob")
    target = exp.extras["target_ids"]
    v = {keep: alone_log_probs(lm, coalition_text(keep), target)
         for keep in itertools.product([False, True], repeat=4)}
    want = enumerate_shapley(v, 4).T  # (T, D)
    assert exp.extras["exact"].tolist() == [True]
    torch.testing.assert_close(exp.values[0].double(), want, rtol=0, atol=5e-5)
    torch.testing.assert_close(exp.predictions[0].double(), v[(True,) * 4], rtol=0, atol=5e-5)
    torch.testing.assert_close(exp.base_values[0].double(), v[(False,) * 4], rtol=0, atol=5e-5)
    # efficiency per target token, and for the whole continuation
    torch.testing.assert_close(exp.values.sum(-1), exp.predictions - exp.base_values,
                               rtol=0, atol=1e-5)
    torch.testing.assert_close(exp.extras["sequence_values"], exp.values.sum(1), rtol=0, atol=0)


def test_generated_target_is_the_greedy_continuation(lm):
    exp = xai.explain(lm, PROMPT, method="textgenshap", granularity="document",
                      max_new_tokens=3)
    text = coalition_text([True] * 4)
    ids = row_ids(lm, text)
    greedy = []
    for _ in range(3):
        t = torch.tensor([ids + greedy])
        greedy.append(int(lm.token_log_probs(t, torch.ones_like(t))[0, -1].argmax()))
        if greedy[-1] == 2:
            break
    want = greedy[:-1] if len(greedy) > 1 and greedy[-1] == 2 else greedy
    assert exp.extras["target_ids"] == want


def test_answer_game_equals_brute_force_shapley_shubik(lm):
    n = 3
    exp = xai.explain(lm, PROMPT, method="textgenshap", granularity="document", value="answer",
                      max_new_tokens=n)
    answers = exp.target.names[0]
    outputs = {keep: alone_answer(lm, coalition_text(keep), n)
               for keep in itertools.product([False, True], repeat=4)}
    assert set(answers) == set(outputs.values())
    v = {k: torch.tensor([float(o == a) for a in answers], dtype=torch.float64)
         for k, o in outputs.items()}
    torch.testing.assert_close(exp.values[0].double(), enumerate_shapley(v, 4).T,
                               rtol=0, atol=1e-6)
    # zero-sum across answers for every player; efficiency per answer
    torch.testing.assert_close(exp.values[0].sum(0), torch.zeros(4), rtol=0, atol=1e-6)
    torch.testing.assert_close(exp.values[0].sum(1).double(),
                               v[(True,) * 4] - v[(False,) * 4], rtol=0, atol=1e-6)
    # speculation: the full prompt is decoded first; in the single batch of 16 coalitions every
    # coalition whose answer equals it is accepted after one teacher-forced pass
    full = outputs[(True,) * 4]
    differ = sum(o != full for o in outputs.values())
    assert int(exp.extras["n_decoded"]) == 1 + differ
    assert int(exp.extras["n_speculative_accepted"]) == 15 - differ
    assert exp.method == "textgenshap"  # its own method (it was an alias of shapley_sampling)


def test_permutation_sampling_is_seeded_efficient_and_close_to_exact(lm):
    kw = {"method": "textgenshap", "granularity": "document", "target": " to the park"}
    exact = xai.explain(lm, PROMPT, **kw)
    a = xai.explain(lm, PROMPT, max_exact=0, n_permutations=200, random_state=3, **kw)
    b = xai.explain(lm, PROMPT, max_exact=0, n_permutations=200, random_state=3, **kw)
    assert a.extras["exact"].tolist() == [False]
    torch.testing.assert_close(a.values, b.values, rtol=0, atol=0)
    torch.testing.assert_close(a.values.sum(-1), a.predictions - a.base_values, rtol=0, atol=1e-5)
    err = (a.values - exact.values).abs()
    assert bool((err <= 4 * a.extras["stderr"] + 1e-6).all()), (err, a.extras["stderr"])
    assert int(a.extras["n_coalitions"]) <= 2**4


def test_hierarchical_threshold_one_stops_at_documents(lm):
    flat = xai.explain(lm, PROMPT, method="textgenshap", granularity="document",
                       target=" to the park")
    hier = xai.explain(lm, PROMPT, method="textgenshap", granularity=["document", "word"],
                       threshold=1.0, target=" to the park")
    torch.testing.assert_close(hier.values, flat.values, rtol=0, atol=0)
    assert [e["level"] for e in hier.extras["levels"]] == [0, 0, 0, 0]


def test_hierarchical_expands_units_above_threshold_into_words(lm):
    exp = xai.explain(lm, PROMPT, method="textgenshap", granularity=["document", "word"],
                      threshold=0.0, target=" to the park")
    words = [w for d in PROMPT["documents"] for w in d.split()]
    assert exp.feature_names[0] == tuple(words)  # every document above 0 -> all split
    levels = exp.extras["levels"]
    assert [e["expanded"] for e in levels[:4]] == [True] * 4
    assert [levels[e["parent"]]["text"] for e in levels[4:]] == [
        d for d in PROMPT["documents"] for _ in d.split()]
    torch.testing.assert_close(exp.values.sum(-1), exp.predictions - exp.base_values,
                               rtol=0, atol=1e-5)


def test_more_players_than_max_players_suggests_hierarchical_mode(lm):
    with pytest.raises(InvalidParameterError, match=r"12 players.*max_players=8.*hierarchical"):
        xai.explain(lm, PROMPT, method="textgenshap", granularity="word", max_players=8)


@pytest.mark.parametrize(("inputs", "method", "params", "error", "match"), [
    ("   ", "shapley_sampling", {}, InvalidInputError, "empty"),
    (["the cat", "a dog"], "shapley_sampling", {}, InvalidInputError, "one prompt"),
    (PROMPT, "textgenshap", {"max_new_tokens": 0}, InvalidParameterError, "max_new_tokens"),
    (PROMPT, "textgenshap", {"value": "prob"}, InvalidParameterError, "'value'"),
    (PROMPT, "shapley_sampling", {"granularity": ["word", "document"]}, InvalidParameterError,
     "coarse-to-fine"),
    (PROMPT, "textgenshap", {"granularity": ["word", "document"]}, InvalidParameterError,
     "coarse-to-fine"),
    (PROMPT, "shapley_sampling", {"baseline": "mask"}, InvalidParameterError, "deleting"),
    (PROMPT, "textgenshap", {"chat_template": True}, InvalidParameterError, "chat template"),
    ({"documents": "a dog"}, "shapley_sampling", {}, InvalidInputError, "'documents' list"),
    ("   ", "textgenshap", {}, InvalidInputError, "empty"),
    (["the cat", "a dog"], "textgenshap", {}, InvalidInputError, "one prompt"),
])
def test_bad_input_gives_typed_errors(lm, inputs, method, params, error, match):
    with pytest.raises(error, match=match):
        xai.explain(lm, inputs, method=method, **params)


def test_answer_game_refuses_a_given_target(lm):
    with pytest.raises(InvalidTargetError, match="log_prob"):
        xai.explain(lm, PROMPT, method="textgenshap", value="answer", target=" the park")


def test_tokenizer_without_pad_token_and_chat_template():
    tok = word_tokenizer(pad=False)
    tok.chat_template = ("{% for m in messages %}the {{ m['content'] }}{% endfor %}"
                         "{% if add_generation_prompt %} it{% endif %}")
    lm = xai.as_adapter((tiny_gpt2(), tok))
    assert lm.pad_id == tok.eos_token_id
    exp = xai.explain(lm, {"documents": ["cat sat", "dog ran"]}, method="textgenshap",
                      target=" was red", chat_template=True)
    assert exp.feature_names[0] == ("cat sat", "dog ran")  # the template is never a player
    assert exp.texts == ("cat sat\n\ndog ran",)
    v = {keep: alone_log_probs(lm, "the " + SEP.join(d for d, k in zip(
        ["cat sat", "dog ran"], keep, strict=True) if k) + " it", exp.extras["target_ids"])
         for keep in itertools.product([False, True], repeat=2)}
    torch.testing.assert_close(exp.values[0].double(), enumerate_shapley(v, 2).T,
                               rtol=0, atol=5e-5)


def test_save_load_round_trip(lm, tmp_path):
    exp = xai.explain(lm, PROMPT, method="textgenshap", granularity=["document", "word"],
                      threshold=0.3, target=" to the park")
    exp.save(tmp_path / "gen")
    back = xai.Explanation.load(tmp_path / "gen")
    torch.testing.assert_close(back.values, exp.values, rtol=0, atol=0)
    assert back.extras["levels"] == exp.extras["levels"]
    # a document carried whole into the word level is still reported as a document
    assert [e["granularity"] for e in exp.extras["levels"]] == [
        "document" if e["text"] in PROMPT["documents"] else "word" for e in exp.extras["levels"]]
    assert back.feature_names == exp.feature_names


def test_long_prompt_is_truncated_from_the_left_with_a_warning():
    lm = xai.as_adapter((tiny_gpt2(), word_tokenizer()), max_length=12)
    prompt = {"prefix": "the cat", "documents": ["sat on a mat", "a dog ran to the big park"],
              "suffix": "and it"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exp = xai.explain(lm, prompt, method="shapley_sampling", target=" was red")
    assert any("truncated from the left" in str(w.message) for w in caught)
    torch.testing.assert_close(exp.values.sum(-1), exp.predictions - exp.base_values,
                               rtol=0, atol=1e-5)


def test_a_prompt_of_one_player_gets_the_whole_gain(lm):
    # One player: its Shapley value is v(prompt) - v(empty prompt), where the empty prompt is
    # BOS alone. The method asks for that empty prompt itself, so the adapter's refusal of a
    # user's empty text must not apply to it (it once made every one-unit prompt fail).
    exp = xai.explain(lm, "the cat sat", method="shapley_sampling", target=" a mat",
                      random_state=0)
    target = lm.tokenizer("the cat sat a mat", add_special_tokens=False)["input_ids"][3:]
    full = alone_log_probs(lm, "the cat sat", target)
    bos = [lm.bos_id] if lm.bos_id is not None else [lm.pad_id]
    ids = torch.tensor([bos + target])
    lp = lm.token_log_probs(ids, torch.ones_like(ids))[0]
    empty = torch.tensor([lp[k, t].item() for k, t in enumerate(target)], dtype=torch.float64)
    assert exp.values.shape == (1, len(target), 1)
    torch.testing.assert_close(exp.values[0, :, 0].double(), full - empty, rtol=0, atol=1e-5)


@pytest.mark.parametrize(("granularity", "max_exact"), [
    ("document", None),  # exact (2^4 <= 1024, the default)
    ("word", None),  # sampled (2^12 > 1024)
    ("document", 8),  # sampled: ShapleySampling passes its max_exact on (2^4 > 8)
    ("word", 4096),  # exact (2^12 <= 4096)
])
def test_shapley_sampling_on_a_language_model_plays_textgenshaps_log_prob_game(
        lm, granularity, max_exact):
    kw = {"granularity": granularity, "target": " to the park", "n_permutations": 4,
          "random_state": 5}
    if max_exact is not None:
        kw["max_exact"] = max_exact
    via = xai.explain(lm, PROMPT, method="shapley_sampling", **kw)
    own = xai.explain(lm, PROMPT, method="textgenshap", value="log_prob", **kw)
    exact = 2 ** (4 if granularity == "document" else 12) <= (max_exact or 1024)
    # one prompt: textgenshap's plain bool, as shapley_sampling's per-example bool tensor
    assert own.extras["exact"].tolist() == [exact]
    assert via.extras["exact"].dtype == torch.bool
    assert via.extras["exact"].tolist() == [exact]
    if exact:
        assert int(own.extras["n_coalitions"]) == 2 ** (4 if granularity == "document" else 12)
        assert bool((via.extras["stderr"] == 0).all())
    for field in ("values", "predictions", "base_values"):
        torch.testing.assert_close(getattr(via, field), getattr(own, field), rtol=0, atol=0)
    torch.testing.assert_close(via.extras["stderr"], own.extras["stderr"], rtol=0, atol=0,
                               equal_nan=True)
    assert via.feature_names == own.feature_names
    assert via.target.names == own.target.names
    assert (via.method, own.method) == ("shapley_sampling", "textgenshap")
    assert dict(via.params) == {"n_permutations": 4, "antithetic": True, "baseline": "auto",
                                "granularity": granularity, "feature_groups": None,
                                "max_exact": 1024 if max_exact is None else max_exact,
                                "estimator": "permutation", "budget": None,
                                "tolerance": None, "max_budget": 20_000}


def test_shapley_sampling_warns_that_feature_groups_do_not_apply_to_a_language_model(lm):
    kw = {"granularity": "document", "target": " to the park", "random_state": 0}
    with pytest.warns(xai.IgnoredParameterWarning, match=re.escape(
            "ShapleySampling's 'feature_groups' has no effect on this generation model: the "
            "players of a language model are units of the prompt, chosen by 'granularity'. "
            "Leave it at its default.")):
        grouped = xai.explain(lm, PROMPT, method="shapley_sampling",
                              feature_groups=[0, 0, 1, 1], **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("error", xai.IgnoredParameterWarning)
        plain = xai.explain(lm, PROMPT, method="shapley_sampling", **kw)
    # ignored indeed: one value per document, the same values
    assert grouped.feature_names == plain.feature_names
    torch.testing.assert_close(grouped.values, plain.values, rtol=0, atol=0)


def test_shapley_sampling_refuses_token_players_on_a_language_model(lm):
    with pytest.raises(InvalidParameterError, match=re.escape(
            "For language models the players are 'document', 'sentence' or 'word' units of the "
            "prompt; granularity='token' is not available. Use 'word'.")):
        xai.explain(lm, PROMPT, method="shapley_sampling", granularity="token")


def test_textgenshap_needs_the_generation_capability():
    # compatibility is decided by the GENERATION capability, not by a concrete adapter class:
    # a "generation" adapter without it is refused, for both methods alike
    adapter = xai.CallableAdapter(lambda b: b, modality="generation", n_features=3)
    for name in ("textgenshap", "shapley_sampling"):
        with pytest.raises(IncompatibleModelError, match=re.escape(
                f"Method '{name}' needs GENERATION, but CallableAdapter(<lambda>) does not "
                "provide it. Methods that work with this model: none.")):
            xai.explain(adapter, "the cat", method=name)


@pytest.fixture(scope="module")
def exact_words(lm):
    """Exact word-level values of PROMPT (all 2**12 coalitions)."""
    return xai.explain(lm, PROMPT, method="shapley_sampling", granularity="word",
                       target=" to the park", max_exact=4096)


@pytest.mark.parametrize("estimator", ["kernel", "leverage", "adjusted", "stratified", "auto"])
def test_every_estimator_plays_a_language_models_game(lm, exact_words, estimator):
    kw = {"method": "shapley_sampling", "granularity": "word", "target": " to the park",
          "estimator": estimator, "budget": 300, "max_exact": 0, "random_state": 2}
    exp = xai.explain(lm, PROMPT, **kw)
    assert exp.extras["exact"].tolist() == [False]
    assert exp.extras["estimator"] == ("adjusted" if estimator == "auto" else estimator)
    assert exp.extras["n_rows"].tolist() == [300]
    torch.testing.assert_close(exp.values.sum(-1), exp.predictions - exp.base_values,
                               rtol=0, atol=1e-4)
    torch.testing.assert_close(exp.base_values, exact_words.base_values, rtol=0, atol=1e-5)
    err = (exp.values - exact_words.values).abs()
    assert float((err <= 3 * exp.extras["stderr"] + 1e-5).double().mean()) >= 0.9
    again = xai.explain(lm, PROMPT, **kw)
    torch.testing.assert_close(exp.values, again.values, rtol=0, atol=0)


def test_a_budget_covering_every_coalition_of_the_prompt_is_exact(lm, exact_words):
    exp = xai.explain(lm, PROMPT, method="shapley_sampling", granularity="word",
                      target=" to the park", estimator="leverage", budget=4096, max_exact=0)
    assert exp.extras["exact"].tolist() == [True]
    assert exp.extras["n_rows"].tolist() == [4096]
    torch.testing.assert_close(exp.values, exact_words.values, rtol=0, atol=1e-6)


def test_tolerance_on_a_language_model_stops_when_precise(lm, exact_words):
    kw = {"method": "shapley_sampling", "granularity": "word", "target": " to the park",
          "estimator": "leverage", "budget": 100, "max_exact": 0, "random_state": 0}
    one = xai.explain(lm, PROMPT, **kw)
    tolerance = float(one.extras["stderr"].max()) / 2  # about four rounds
    exp = xai.explain(lm, PROMPT, tolerance=tolerance, max_budget=3000, **kw)
    assert exp.extras["converged"].tolist() == [True]
    assert float(exp.extras["stderr"].max()) <= tolerance
    assert int(exp.extras["n_rows"]) % 100 == 0
    assert int(exp.extras["n_rows"]) >= 300
    err = (exp.values - exact_words.values).abs()
    assert float((err <= 3 * exp.extras["stderr"] + 1e-5).double().mean()) >= 0.9
