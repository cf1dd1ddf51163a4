"""Prompt segmentation into documents, sentences and words, and rendering of coalitions."""

from __future__ import annotations

import pytest

from xai.exceptions import InvalidInputError
from xai.features.segments import as_prompt, render, split_span

LITM = ("Write an answer using only the documents.\n\n"
        "Document [1](Title: A) Paris is in France.\n"
        "Document [2](Title: B) Lyon is big.\n"
        "  Document [3] x y\n\n"
        "Question: capital?\nAnswer:")
PARAS = "Answer the question.\n\nDoc one is here. It says Paris!\n\nDoc two, short.\n\nQ: where?"


def texts(text, spans):
    return [text[s:e] for s, e in spans]


def test_headed_documents_leave_instruction_and_question_fixed():
    p = as_prompt(LITM)
    assert texts(LITM, p.documents) == ["Document [1](Title: A) Paris is in France.",
                                        "Document [2](Title: B) Lyon is big.",
                                        "Document [3] x y"]


def test_without_headers_paragraphs_are_documents():
    p = as_prompt(PARAS)
    assert texts(PARAS, p.documents) == ["Answer the question.",
                                         "Doc one is here. It says Paris!", "Doc two, short.",
                                         "Q: where?"]


def test_mapping_prompt_is_joined_with_the_separator():
    p = as_prompt({"prefix": "Use them.", "documents": ["A is 1.", "B is 2."], "suffix": "Q:"})
    assert p.text == "Use them.\n\nA is 1.\n\nB is 2.\n\nQ:"
    assert texts(p.text, p.documents) == ["A is 1.", "B is 2."]


def test_sentences_and_words():
    doc = as_prompt(PARAS).documents[1]
    assert texts(PARAS, split_span(PARAS, doc, "sentence")) == ["Doc one is here.",
                                                               "It says Paris!"]
    assert texts(PARAS, split_span(PARAS, doc, "word")) == ["Doc", "one", "is", "here.", "It",
                                                           "says", "Paris!"]


@pytest.mark.parametrize(("keep", "want"), [
    ([False, True, True], "Write an answer using only the documents.\n\n"
     "Document [2](Title: B) Lyon is big.\n  Document [3] x y\n\nQuestion: capital?\nAnswer:"),
    ([True, True, False], "Write an answer using only the documents.\n\n"
     "Document [1](Title: A) Paris is in France.\nDocument [2](Title: B) Lyon is big.\n\n"
     "Question: capital?\nAnswer:"),
    ([False, False, False], "Write an answer using only the documents.\n\n"
     "Question: capital?\nAnswer:"),
    ([True, True, True], LITM),
])
def test_deleting_lines_takes_their_line_break(keep, want):
    assert render(LITM, as_prompt(LITM).documents, keep) == want


def test_deleting_paragraphs_and_words_keeps_single_spacing():
    docs = as_prompt(PARAS).documents
    assert render(PARAS, docs, [False, True, True, True]) == \
        "Doc one is here. It says Paris!\n\nDoc two, short.\n\nQ: where?"
    assert render(PARAS, docs, [True, False, True, True]) == \
        "Answer the question.\n\nDoc two, short.\n\nQ: where?"
    words = split_span(PARAS, docs[1], "word")
    assert render(PARAS, words, [True, False, True, True, False, True, False]) == \
        "Answer the question.\n\nDoc is here. says\n\nDoc two, short.\n\nQ: where?"


@pytest.mark.parametrize("bad", ["", "  \n ", 3, {"documents": [1, 2]}, {"docs": ["a"]}])
def test_bad_prompts(bad):
    with pytest.raises(InvalidInputError, match="inputs|prompt|documents"):
        as_prompt(bad)
