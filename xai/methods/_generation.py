"""Shapley values for generated text: the games behind ``textgenshap`` (and ``shapley_sampling``
on language models).

Players are documents, sentences or words of the prompt (:mod:`xai.features.segments`); a
coalition is the prompt with the other players deleted. Two value functions:

* ``"log_prob"``: v_t(S) = log p(y_t | x_S, y_<t) for every token of the target continuation y
  (teacher forcing, one batched pass per chunk of coalitions). Efficiency holds per token.
* ``"answer"``: v_a(S) = 1[greedy(x_S) = a] for every distinct answer a (TextGenSHAP's game).
  Before decoding a coalition, the most frequent answer so far is verified in one teacher-forced
  pass (the speculative step): when every step's argmax agrees, the greedy output *is* that
  answer and no decoding is needed.

Both reuse the KV cache of the coalitions' common token prefix (:class:`RowRunner`).
"""

from __future__ import annotations

import dataclasses
import functools
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import torch

from ..adapters._base import Batch
from ..adapters._causal import HFCausalLMAdapter
from ..adapters._causal_rows import RowRunner
from ..exceptions import InvalidInputError, InvalidParameterError, InvalidTargetError
from ..explanation import ResolvedTarget
from ..features.segments import Prompt, SpanFeatures, as_prompt, split_span
from ._base import AttributionOutput
from ._coalitions import AnswerGame, GameResult, _exact, _permutation, fits_exact, hierarchical

__all__ = ["GameTarget", "GenerationGame", "PromptBatch", "attribute_game", "prepare_prompt",
           "prompt_features", "resolve_game_target"]

Unit = tuple[int, int, int]  # (level, start, end)


@dataclasses.dataclass
class GenerationGame:
    """One prompt of one causal LM and everything its coalition games share.

    Parameters
    ----------
    adapter : HFCausalLMAdapter
    prompt : Prompt
    max_new_tokens : int
    batch_size : int
        Coalitions per model call (fewer when the logits would exceed 2^27 floats; see
        :func:`~xai.adapters._causal_rows.rows_per_call`).
    chat_template : bool
        Wrap every coalition's prompt as a user message with the tokenizer's chat template.
    """

    adapter: HFCausalLMAdapter
    prompt: Prompt
    max_new_tokens: int
    batch_size: int
    chat_template: bool = False
    answers: dict[str, list[int]] = dataclasses.field(default_factory=dict)
    counts: Counter[str] = dataclasses.field(default_factory=Counter)
    outputs: dict[str, str] = dataclasses.field(default_factory=dict)  # prompt -> answer
    n_decoded: int = 0
    n_accepted: int = 0

    def __post_init__(self) -> None:
        self.runner = RowRunner(self.adapter, self.batch_size)
        tok = self.adapter.tokenizer
        self.stop_ids = [i for i in {getattr(tok, "eos_token_id", None)} if i is not None]
        if self.chat_template and not getattr(tok, "chat_template", None):
            msg = ("chat_template=True needs a tokenizer with a chat template "
                   f"({type(tok).__name__} has none). Pass chat_template=False and write the "
                   "prompt in the model's own format.")
            raise InvalidParameterError(msg, owner="TextGenSHAP", parameter="chat_template",
                                        value=True)

    # -- text and tokens ----------------------------------------------------------------------
    def wrap(self, text: str) -> str:
        """The model-facing prompt: ``text`` inside the chat template when asked."""
        return wrap_chat(self.adapter.tokenizer, text) if self.chat_template else text

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each (wrapped) prompt, BOS as the adapter adds it; never empty."""
        batch = self.adapter.encode(list(texts))  # may be empty: all players removed
        ids, mask = batch.tensors["input_ids"], batch.tensors["attention_mask"].bool()
        rows = [ids[i][mask[i]].tolist() for i in range(len(texts))]
        filler = self.adapter.bos_id if self.adapter.bos_id is not None else self.adapter.pad_id
        return [r or [filler] for r in rows]

    def features(self, spans: Sequence[tuple[int, int]], *, wrapped: bool = True) -> SpanFeatures:
        """The players as a feature space; ``wrapped=False`` renders the bare prompt text."""
        wrap = self.wrap if (self.chat_template and wrapped) else None
        return SpanFeatures(self.prompt.text, spans, self.adapter.encode, wrap)

    # -- targets ----------------------------------------------------------------------------
    def generated(self) -> list[int]:
        """Greedy continuation of the full prompt (stop token dropped unless it is all there is)."""
        rows = self.encode([self.wrap(self.prompt.text)])
        ids = self.runner.greedy(rows, self.max_new_tokens, self.stop_ids)[0]
        self.n_decoded += 1
        self._remember(self.prompt.text, ids)
        return ids[:-1] if len(ids) > 1 and ids[-1] in self.stop_ids else ids

    def target_ids(self, target: str) -> list[int]:
        """Tokens of ``target`` as it tokenizes right after the prompt (joint tokenization)."""
        head = self.wrap(self.prompt.text)
        enc = self.adapter.tokenizer(head + target, return_offsets_mapping=True,
                                     add_special_tokens=False, verbose=False)
        ids = [i for i, (s, e) in zip(enc["input_ids"], enc["offset_mapping"], strict=True)
               if e > len(head) and e > s]
        if not target or not ids:
            msg = (f"The target continuation {target!r} has no tokens. Pass a non-empty text, "
                   "or target='generated' to explain the model's own greedy output.")
            raise InvalidTargetError(msg, value=target)
        return ids

    def token_names(self, ids: Sequence[int]) -> tuple[str, ...]:
        tok = self.adapter.tokenizer
        return tuple(tok.decode([i]) or str(tok.convert_ids_to_tokens(i)) for i in ids)

    # -- value functions --------------------------------------------------------------------
    def log_prob(self, spans: Sequence[tuple[int, int]],
                 target: Sequence[int]) -> Callable[[torch.Tensor], torch.Tensor]:
        """v(keep) = per-token log p(target | coalition prompt), (m, T)."""
        fs = self.features(spans)

        def value(keep: torch.Tensor) -> torch.Tensor:
            return self.runner.continuation_log_probs(self.encode(fs.texts(keep)), target)
        return value

    def answer(self, spans: Sequence[tuple[int, int]]) -> AnswerGame:
        """TextGenSHAP's answer game over ``spans`` (outputs cached by prompt across levels)."""
        raw = self.features(spans, wrapped=False)
        return AnswerGame(lambda keep: self.generate(raw.texts(keep)))

    def generate(self, texts: Sequence[str]) -> list[str]:
        """Greedy answer of each prompt: cached, else speculatively verified, else decoded."""
        todo = list(dict.fromkeys(t for t in texts if t not in self.outputs))
        if todo:
            rows = self.encode([self.wrap(t) for t in todo])
            pending = list(range(len(todo)))
            if self.counts:
                best = self.counts.most_common(1)[0][0]
                ans_ids = self.answers[best]
                ok = self.runner.verify([rows[i] for i in pending], ans_ids)
                for i, accepted in zip(list(pending), ok.tolist(), strict=True):
                    if accepted:
                        self.outputs[todo[i]] = best
                        self.counts[best] += 1
                        self.n_accepted += 1
                        pending.remove(i)
            if pending:
                new = self.runner.greedy([rows[i] for i in pending], self.max_new_tokens,
                                         self.stop_ids)
                self.n_decoded += len(pending)
                for i, ids in zip(pending, new, strict=True):
                    self._remember(todo[i], ids)
        return [self.outputs[t] for t in texts]

    def _remember(self, text: str, ids: list[int]) -> None:
        answer = normalize(self.adapter.tokenizer.decode(ids, skip_special_tokens=True))
        self.answers.setdefault(answer, ids)
        self.counts[answer] += 1
        self.outputs[text] = answer


def wrap_chat(tokenizer: Any, text: str) -> str:
    """``text`` as a user message in the tokenizer's chat template, ready for the reply."""
    out = tokenizer.apply_chat_template(
        [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True)
    return str(out)


def normalize(text: str) -> str:
    """An answer is the first non-empty line of the output, stripped of surrounding whitespace
    and of trailing ``.,;:`` (case and other punctuation kept).

    Short-answer prompts ("Answer:") make small LMs run on into a new "Question: ..." line;
    comparing whole outputs would make almost every coalition's answer unique.
    """
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return line.rstrip(".,;:").rstrip()


def top_units(prompt: Prompt, granularity: str, level: int) -> list[Unit]:
    """The players of the first level: documents, or the sentences/words inside them."""
    docs = prompt.documents
    if granularity == "document":
        return [(level, s, e) for s, e in docs]
    return [(level, s, e) for d in docs for s, e in split_span(prompt.text, d, granularity)]


def solve(value: Callable[[torch.Tensor], torch.Tensor], n_players: int, *, max_exact: int,
          n_permutations: int, antithetic: bool, rng: torch.Generator,
          batch_size: int) -> GameResult:
    """Exact Shapley values when 2^D <= max_exact, else permutation sampling (``batch_size``
    coalitions per value call, so memory does not grow with n_permutations)."""
    if fits_exact(n_players, max_exact):
        return _exact(value, n_players, max_exact=max_exact, batch_size=None,
                      owner="TextGenSHAP")
    return _permutation(value, n_players, n_permutations=n_permutations, antithetic=antithetic,
                        generator=rng, batch_size=batch_size, owner="TextGenSHAP")


def check_players(n: int, max_players: int, granularity: Any) -> None:
    if n > max_players:
        msg = (f"The prompt has {n} players at granularity {granularity!r}, more than "
               f"max_players={max_players}. Use hierarchical mode, e.g. granularity=['document', "
               f"'sentence', 'word'] with a threshold, a coarser granularity, or raise "
               f"max_players.")
        raise InvalidParameterError(msg, owner="TextGenSHAP", parameter="max_players",
                                    value=max_players, constraint=f">= {n}")
    if n == 0:
        msg = (f"The prompt has no players at granularity {granularity!r} (no documents outside "
               "the fixed prefix/suffix). Pass documents, or a prompt with text to explain.")
        raise InvalidInputError(msg, parameter="inputs")


def levels_of(granularity: str | Sequence[str]) -> list[str]:
    """The hierarchy levels of a granularity ("auto" = documents)."""
    if granularity == "auto":
        return ["document"]
    if granularity == "token":
        msg = ("For language models the players are 'document', 'sentence' or 'word' units of "
               "the prompt; granularity='token' is not available. Use 'word'.")
        raise InvalidParameterError(msg, owner="TextGenSHAP", parameter="granularity",
                                    value=granularity)
    return [granularity] if isinstance(granularity, str) else list(granularity)




@dataclasses.dataclass(frozen=True, eq=False)
class PromptBatch(Batch):
    """The one prompt of a generation explanation: its text as the adapter prepared it, and
    which character spans are documents (the players; the rest is fixed template)."""

    prompt: Prompt | None = None


@dataclasses.dataclass(frozen=True, eq=False)
class GameTarget(ResolvedTarget):
    """The target of a generation game while it is played: the game (caches, counters) and the
    target continuation's token ids (none for the answer game, whose outputs are its answers)."""

    game: GenerationGame | None = None
    token_ids: tuple[int, ...] = ()


def prepare_prompt(adapter: Any, inputs: Any, owner: str) -> PromptBatch:
    """Read one prompt (a str or ``{"prefix", "documents", "suffix"}``) for ``adapter``."""
    prompt = as_prompt(inputs, owner=owner)
    batch = adapter.prepare([prompt.text])
    return PromptBatch(batch.tensors, texts=batch.texts, columns=batch.columns, prompt=prompt)


def resolve_game_target(method: Any, adapter: Any, batch: Batch, target: Any,
                        batch_size: int) -> GameTarget:
    """Start the game of ``method`` (a TextGenSHAP) on the prompt and fix its target: the
    greedy continuation, a given continuation text, or (answer game) every answer."""
    game = GenerationGame(adapter, _prompt_of(batch), method.max_new_tokens, batch_size,
                          method.chat_template)
    if method.value == "answer":
        if not (target is None or target in ("generated", "all")):
            msg = (f"value='answer' explains every answer the model gives, so 'target' must be "
                   f"None, 'generated' or 'all'. Got {target!r} instead. Use value='log_prob' to "
                   "explain a given continuation.")
            raise InvalidTargetError(msg, value=target)
        game.generated()
        target_ids: list[int] = []
    elif target is None or target == "generated":
        target_ids = game.generated()
    elif isinstance(target, str):
        target_ids = game.target_ids(target)
    else:
        msg = (f"'target' for a language model must be None, 'generated' or the continuation "
               f"text to explain. Got {target!r} instead.")
        raise InvalidTargetError(msg, value=target)
    return GameTarget(torch.arange(len(target_ids)).unsqueeze(0),
                      (game.token_names(target_ids),), game=game, token_ids=tuple(target_ids))


def prompt_features(method: Any, adapter: Any, batch: Batch) -> tuple[SpanFeatures]:
    """The players of the first level as a feature space (checked against max_players)."""
    prompt = _prompt_of(batch)
    levels = levels_of(method.granularity)
    units = top_units(prompt, levels[0], 0)
    check_players(len(units), method.max_players, levels[0])
    wrap = functools.partial(wrap_chat, adapter.tokenizer) if method.chat_template else None
    return (SpanFeatures(prompt.text, [(s, e) for _, s, e in units], adapter.encode, wrap),)


def _prompt_of(batch: Batch) -> Prompt:
    prompt = getattr(batch, "prompt", None)
    if prompt is None:  # a plain Batch (e.g. from a wrapper): its one text is the prompt
        prompt = as_prompt(list(batch.texts or ()), owner="TextGenSHAP")
    return prompt


Solver = Callable[..., GameResult]


def attribute_game(method: Any, target: GameTarget, rng: torch.Generator,
                   batch_size: int, solver: Solver | None = None) -> AttributionOutput:
    """Play the game level by level (hierarchically) and pack the last level's values.

    ``solver(value, n_players, rng=, batch_size=)`` estimates one level's game; None: exact
    enumeration or permutations, as ``method``'s ``max_exact`` and ``n_permutations`` say."""
    game = target.game
    assert game is not None  # made by resolve_game_target
    levels = levels_of(method.granularity)
    results: list[GameResult] = []

    def explain_level(units: list[Unit]) -> torch.Tensor:
        check_players(len(units), method.max_players, levels[units[0][0]] if units else levels)
        spans = [(s, e) for _, s, e in units]
        if method.value == "answer":
            value: Callable[[torch.Tensor], torch.Tensor] = game.answer(spans)
        else:
            value = game.log_prob(spans, list(target.token_ids))
        if solver is not None:
            res = solver(value, len(units), rng=rng, batch_size=batch_size)
        else:
            res = solve(value, len(units), max_exact=method.max_exact,
                        n_permutations=method.n_permutations, antithetic=method.antithetic,
                        rng=rng, batch_size=batch_size)
        if method.value == "answer":
            res = dataclasses.replace(res, answers=tuple(value.answers))  # type: ignore[attr-defined]
        results.append(res)
        return res.values

    def expand(unit: Unit) -> list[Unit]:  # the next level at which the unit really splits
        level, s, e = unit
        for nxt in range(level + 1, len(levels)):
            subs = split_span(game.prompt.text, (s, e), levels[nxt])
            if len(subs) > 1:
                return [(nxt, a, b) for a, b in subs]
        return []

    entries = hierarchical(explain_level, expand, top_units(game.prompt, levels[0], 0),
                           levels=len(levels), threshold=method.threshold)
    last = max(e.level for e in entries)
    final = [e for e in entries if e.level == last]
    return _output(method, game, final, entries, results[-1], list(target.token_ids), levels)


def _output(method: Any, game: GenerationGame, final: list[Any], entries: list[Any],
            res: GameResult, target_ids: list[int], levels: list[str]) -> AttributionOutput:
    spans = [(e.unit[1], e.unit[2]) for e in final]
    values = res.values.T.unsqueeze(0).float()  # (1, n_outputs, n_players)
    names = res.answers if method.value == "answer" else game.token_names(target_ids)
    full = res.full_value.reshape(1, -1).float()
    n_out = values.shape[1]
    tgt = ResolvedTarget(torch.arange(n_out).unsqueeze(0), (tuple(names),), full)
    text = game.prompt.text
    extras: dict[str, Any] = {
        "stderr": res.stderr.T.unsqueeze(0).float(),
        "exact": torch.tensor([bool(res.exact)]),  # per example, as shapley_sampling's
        "n_coalitions": torch.tensor(res.n_evaluations),
        "n_model_calls": torch.tensor(game.runner.n_model_calls),
        "n_token_positions": torch.tensor(game.runner.n_token_positions),
        "n_decoded": torch.tensor(game.n_decoded),
        "n_speculative_accepted": torch.tensor(game.n_accepted),
        "spans": [list(s) for s in spans],
        "levels": [{"level": e.level, "granularity": levels[e.unit[0]], "start": e.unit[1],
                    "end": e.unit[2], "text": text[e.unit[1]:e.unit[2]],
                    "value": e.value.tolist(), "score": e.score, "expanded": e.expanded,
                    "parent": e.parent} for e in entries],
        "value": method.value,
    }
    if method.value == "answer":
        extras["answer_counts"] = {a: int(game.counts[a]) for a in res.answers}
    else:
        extras["target_ids"] = list(target_ids)
        extras["sequence_values"] = values.sum(1)
    return AttributionOutput(values, base_values=res.empty_value.reshape(1, -1).float(),
                             extras=extras, target=tgt, features=(game.features(spans),))
