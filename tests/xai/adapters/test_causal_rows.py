"""RowRunner: shared-prefix KV cache and middle padding give exactly the per-row results."""

from __future__ import annotations

import pytest
import torch
from models import tiny_gemma3, tiny_gpt2, word_tokenizer

import xai
from xai.adapters._causal_rows import RowRunner, common_prefix

# rows share "<bos> the cat" and then differ in length (middle padding is exercised)
ROWS = [[1, 4, 5, 6, 7], [1, 4, 5, 10, 11, 12, 13, 14], [1, 4, 5], [1, 4, 9, 8]]
TARGET = [15, 16, 4]

MODELS = {"gpt2": tiny_gpt2, "gemma3-window4": tiny_gemma3,
          "gemma3-window64": lambda: tiny_gemma3(sliding_window=64)}


@pytest.fixture(scope="module", params=sorted(MODELS))
def lm(request):
    return xai.as_adapter((MODELS[request.param](), word_tokenizer()))


def alone_log_probs(lm, row, target):
    ids = torch.tensor([row + target])
    lp = lm.token_log_probs(ids, torch.ones_like(ids))[0]
    return torch.stack([lp[len(row) - 1 + k, t] for k, t in enumerate(target)]).double()


def alone_greedy(lm, row, n):
    ids = list(row)
    for _ in range(n):
        t = torch.tensor([ids])
        nxt = int(lm.token_log_probs(t, torch.ones_like(t))[0, -1].argmax())
        ids.append(nxt)
        if nxt == 2:
            break
    return ids[len(row):]


def test_common_prefix():
    assert common_prefix(ROWS) == 2
    assert common_prefix([[1, 2], [1, 2, 3]]) == 2
    assert common_prefix([[5], [6]]) == 0


@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_continuation_log_probs_equal_each_row_alone(lm, batch_size):
    runner = RowRunner(lm, batch_size)
    got = runner.continuation_log_probs(ROWS, TARGET)
    want = torch.stack([alone_log_probs(lm, r, TARGET) for r in ROWS])
    torch.testing.assert_close(got, want, rtol=0, atol=2e-5)


def test_prefix_is_run_once_per_chunk(lm):
    runner = RowRunner(lm, 64)
    runner.continuation_log_probs(ROWS, TARGET)
    if getattr(lm._model.config, "sliding_window", None) == 4:  # rows too long for the window: grouped by length
        assert runner.n_model_calls == 2 * len({len(r) for r in ROWS})
    else:  # one prefix pass + one pass over the 4 rows' own tokens
        assert runner.n_model_calls == 2
        width = max(len(r) for r in ROWS) - 2 + len(TARGET) - 1
        assert runner.n_token_positions == 2 + len(ROWS) * width


def test_greedy_equals_decoding_each_row_alone(lm):
    got = RowRunner(lm, 3).greedy(ROWS, 6, [2])
    assert got == [alone_greedy(lm, r, 6) for r in ROWS]


def test_verify_accepts_exactly_the_rows_whose_greedy_output_is_the_answer(lm):
    runner = RowRunner(lm, 64)
    outs = runner.greedy(ROWS, 5, [2])
    for answer in outs:
        ok = runner.verify(ROWS, answer)
        assert ok.tolist() == [o == answer for o in outs]
