"""Max- and avg-sensitivity: how much an explanation moves when the input moves a little
(Yeh et al. 2019; Bhatt et al. 2020)."""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch

import xai
from xai.adapters import ModelAdapter, as_adapter
from xai.exceptions import IncompatibleModelError, InvalidExplanationError, XAIWarning
from xai.extend import (
    Constraint,
    InstanceOf,
    Interval,
    Options,
    check_random_state,
    example_generators,
    int_seed,
    make_method,
)

from ._base import Category, Metric
from ._perturb import safe_div
from ._registry import register_metric

__all__ = ["AvgSensitivity", "MaxSensitivity", "substitute_words", "whole_word_vocabulary"]

Perturbed = list[torch.Tensor] | list[list[str]]


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Sensitivity(Metric):
    """Shared machinery: perturb, re-explain everything in one call, compare with the reference."""

    higher_is_better: ClassVar[bool] = False
    category: ClassVar[Category] = "robustness"
    needs_reexplain: ClassVar[bool] = True
    reference: ClassVar[str] = "Yeh et al. 2019, arXiv:1901.09392"
    _constraints: ClassVar[Mapping[str, Sequence[Constraint]]] = {
        "radius": [Interval(float, 0, None, closed="neither")],
        "n_samples": [Interval(int, 1, None, closed="left")],
        "norm": [Options({"fro", "inf"})],
        "normalize": [InstanceOf((bool,), "a bool")],
        "n_substitutions": [Interval(int, 1, None, closed="left")],
        "text_perturbation": [Options({"substitution", "embedding"})],
    }

    radius: float = 0.02
    n_samples: int = 10
    norm: str = "fro"
    normalize: bool = True
    n_substitutions: int = 1
    text_perturbation: str = "substitution"

    def _reduce(self, distances: torch.Tensor) -> torch.Tensor:
        """(n, o, n_samples) distances, NaN for dropped samples, to (n, o) scores."""
        raise NotImplementedError

    @classmethod
    def why_not(cls, explanation: xai.Explanation) -> str | None:
        reason = super().why_not(explanation)
        if reason is not None or explanation.modality == "text" or explanation.inputs is None:
            return reason
        inputs = explanation.inputs
        if len(inputs.input_keys()) > 1 or inputs.n_forward_args():
            return ("it re-explains noisy copies of one input tensor, and this explanation has "
                    "several input tensors or forward arguments")
        if not inputs.inputs.is_floating_point():
            return (f"it adds uniform noise to the inputs, which are "
                    f"{str(inputs.inputs.dtype).removeprefix('torch.')}, not float")
        return None

    # -- perturbations --------------------------------------------------------------------
    def perturbations(self, explanation: xai.Explanation, model: Any, *,
                      random_state: int | torch.Generator | None = None) -> Perturbed:
        """The perturbed inputs the metric re-explains, per example (what ``__call__`` draws
        with the same ``random_state``): a (n_samples, *x.shape) tensor for tensor inputs, a
        list of n_samples texts for text."""
        rng = check_random_state(random_state, owner=type(self).__name__)
        return self._draw(explanation, as_adapter(model), rng)[0]

    def _draw(self, explanation: xai.Explanation, adapter: ModelAdapter,
              rng: torch.Generator) -> tuple[Perturbed, int]:
        gens = example_generators(rng, len(explanation))
        if explanation.modality == "text":
            vocab = whole_word_vocabulary(_tokenizer(adapter, self.name))
            texts = _texts(explanation, self.name)
            perturbed: Perturbed = [
                substitute_words(texts[i], _spans(fs), vocab, n_samples=self.n_samples,
                                 n_substitutions=self.n_substitutions, gen=gens[i])
                for i, fs in enumerate(explanation.features)]
        else:
            assert explanation.inputs is not None  # checked by Metric.check
            x = explanation.inputs.inputs
            perturbed = [x[i] + (torch.rand((self.n_samples, *x.shape[1:]), generator=g,
                                            dtype=x.dtype) * 2 - 1) * self.radius
                         for i, g in enumerate(gens)]
        return perturbed, int_seed(rng)

    # -- scoring --------------------------------------------------------------------------
    def _score(self, explanation: xai.Explanation, adapter: ModelAdapter, rng: torch.Generator,
               *, batch_size: int) -> tuple[torch.Tensor, dict[str, Any]]:
        method = make_method(explanation.method, explanation.params)
        if explanation.modality == "text" and self.text_perturbation == "embedding":
            return self._score_embedding(explanation, adapter, method, rng,
                                         batch_size=batch_size)
        perturbed, seed = self._draw(explanation, adapter, rng)
        n, s = len(explanation), self.n_samples
        rows: Any
        if explanation.modality == "text":
            texts = _texts(explanation, self.name)
            rows = [t for i in range(n) for t in (texts[i], *perturbed[i])]
        else:
            assert explanation.inputs is not None
            x = explanation.inputs.inputs
            blocks: list[torch.Tensor] = [torch.cat([x[i:i + 1], torch.as_tensor(p)])
                                          for i, p in enumerate(perturbed)]
            rows = torch.cat(blocks)
        target = xai.ResolvedTarget(
            explanation.target.indices.repeat_interleave(s + 1, dim=0),
            tuple(nm for nm in explanation.target.names for _ in range(s + 1)))
        again = method.explain(adapter, rows, target=target, batch_size=batch_size,
                               random_state=seed)
        distances, gaps, dropped = self._distances(explanation, again)
        if bool(dropped.any()):
            warnings.warn(f"{int(dropped.sum())} perturbed texts changed their number of "
                          "features when re-tokenized and were left out of the sensitivity.",
                          XAIWarning, stacklevel=3)
        scores = self._reduce(distances)
        extras: dict[str, Any] = {
            "n_explain_calls": 1, "n_samples": s, "distances": distances,
            "reference_gap": gaps, "n_dropped_samples": dropped}
        if explanation.modality == "text":
            extras["n_substitutions"] = self.n_substitutions
        else:
            extras["radius"] = self.radius
        return scores, extras

    def _score_embedding(self, explanation: xai.Explanation, adapter: Any, method: Any,
                         rng: torch.Generator, *,
                         batch_size: int) -> tuple[torch.Tensor, dict[str, Any]]:
        """Text in embedding space: uniform noise in an L-inf ball of radius ``radius`` times the
        std of the embedding weights, added to the input word embeddings by a forward hook;
        each example and sample is re-explained with the hook in place."""
        layer = adapter.embedding_layer()
        scale = self.radius * float(layer.weight.detach().std())
        gens = example_generators(rng, len(explanation))
        seed = int_seed(rng)
        texts = _texts(explanation, self.name)
        n, s, o = len(explanation), self.n_samples, explanation.n_outputs
        distances = torch.full((n, o, s), math.nan)
        gaps = torch.zeros(n, o)
        for i, gen in enumerate(gens):
            target = explanation.target.take([i])
            length = int(explanation.inputs.tensors["attention_mask"][i].sum())  # type: ignore[union-attr]  # checked by Metric.check
            deltas = (torch.rand((s, length, layer.weight.shape[1]), generator=gen) * 2 - 1)
            ref = _explain_shifted(method, adapter, layer, texts[i], target, None, batch_size,
                                   seed).double()
            width = ref.shape[-1]
            original = explanation.values[i][:, explanation.valid(i)].double()
            gaps[i] = safe_div(self._norm(ref - original), self._norm(original)).float()
            norm = self._norm(ref) if self.normalize else torch.ones(o, dtype=torch.float64)
            for t in range(s):
                vals = _explain_shifted(method, adapter, layer, texts[i], target,
                                        deltas[t] * scale, batch_size, seed).double()
                distances[i, :, t] = safe_div(self._norm(vals[:, :width] - ref), norm).float()
        extras = {"n_explain_calls": n * (s + 1), "n_samples": s, "distances": distances,
                  "reference_gap": gaps, "radius": self.radius, "embedding_radius": scale}
        return self._reduce(distances), extras

    def _distances(self, explanation: xai.Explanation,
                   again: xai.Explanation) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Distances (n, o, s) to the re-explained reference, reference gaps (n, o) and the
        number of dropped samples per example (n,)."""
        n, s, o = len(explanation), self.n_samples, explanation.n_outputs
        distances = torch.full((n, o, s), math.nan)
        gaps = torch.zeros(n, o)
        dropped = torch.zeros(n, dtype=torch.long)
        for i in range(n):
            first = i * (s + 1)
            width = explanation.features[i].n_features
            ref = again.values[first, :, :width].double()
            original = explanation.values[i][:, explanation.valid(i)].double()
            gaps[i] = safe_div(self._norm(ref - original), self._norm(original)).float()
            scale = self._norm(ref) if self.normalize else torch.ones(o, dtype=torch.float64)
            kept = torch.tensor([again.features[first + 1 + t].n_features == width
                                 for t in range(s)])
            diff = again.values[first + 1:first + 1 + s, :, :width].double() - ref  # (s, o, d)
            dist = safe_div(self._norm(diff), scale).float()  # (s, o)
            distances[i] = torch.where(kept[:, None], dist, math.nan).T
            dropped[i] = int((~kept).sum())
        return distances, gaps, dropped

    def _norm(self, v: torch.Tensor) -> torch.Tensor:
        """Norm over the feature axis: L2 ("fro", captum's default) or max-abs ("inf")."""
        return v.norm(dim=-1) if self.norm == "fro" else v.abs().amax(-1)


@register_metric("max_sensitivity", aliases=("sensitivity",))
@dataclasses.dataclass(frozen=True, kw_only=True)
class MaxSensitivity(_Sensitivity):
    """Max-sensitivity: max over perturbed inputs z of ||Phi(z) - Phi(x)|| / ||Phi(x)||.

    Monte-Carlo estimate of SENS_MAX (Yeh et al. Def. 3.1; Bhatt et al.'s mu_M) over z drawn
    uniformly from the L-infinity ball of ``radius`` around x, as captum's ``sensitivity_max``.
    The sample maximum approaches the true maximum from below. Lower is better; a constant
    explainer scores 0, so report sensitivity next to a faithfulness metric.

    Parameters
    ----------
    radius : float, default=0.02
        Half-width of the L-infinity ball of tensor perturbations, in input units:
        z = x + U[-radius, radius] elementwise (captum's default). Unused for text.
    n_samples : int, default=10
        Perturbed inputs per example (captum's default; Yeh et al. use 50).
    norm : {"fro", "inf"}, default="fro"
        Norm of the explanation difference over the features, per explained output.
    normalize : bool, default=True
        Divide by the norm of the reference explanation (a norm of 0 counts as 1), like captum,
        Quantus and the authors' code; False gives Bhatt et al.'s unnormalised distance.
    n_substitutions : int, default=1
        Text only: words replaced per perturbed text.
    text_perturbation : {"substitution", "embedding"}, default="substitution"
        Text only: random whole-word substitution in text space, or uniform noise in an L-inf
        ball of ``radius`` times the std of the embedding weights, added to the input word
        embeddings (one re-explanation per example and sample: the continuous neighbourhood of
        Yeh et al., where smoothing provably helps).

    Notes
    -----
    The perturbed inputs are re-explained with the method and parameters recorded on the
    explanation (``make_method(exp.method, exp.params)``), for the outputs it explains, in one
    explain call together with the clean input. The re-explained clean input is the reference
    a, so a stochastic method is compared with itself at the same seed;
    ``extras["reference_gap"]`` = ||a - exp.values|| / ||exp.values|| is the seed-noise floor.

    Text inputs are perturbed by random word substitution, in text space: each perturbed text
    replaces ``n_substitutions`` randomly chosen features (their character spans) with random
    whole-word tokens of the tokenizer's vocabulary (alphabetic, not special, not a '##'
    continuation), so the number of words is unchanged and attributions compare position by
    position. A perturbed text whose number of features changes anyway when re-tokenized is
    left out (NaN in ``extras["distances"]``, counted in ``extras["n_dropped_samples"]``, with
    a warning); an example that loses every sample scores NaN.

    Extras: ``n_explain_calls`` (1), ``n_samples``, ``radius`` (tensors) or
    ``n_substitutions`` (text), ``distances`` (n, o, n_samples), ``reference_gap`` (n, o),
    ``n_dropped_samples`` (n,). Cost: one explain call on n * (n_samples + 1) inputs.

    References
    ----------
    .. [1] Yeh, Hsieh, Suggala, Inouye, Ravikumar, "On the (In)fidelity and Sensitivity of
           Explanations", NeurIPS 2019, https://arxiv.org/abs/1901.09392
    .. [2] Bhatt, Weller, Moura, "Evaluating and Aggregating Feature-based Model Explanations",
           IJCAI 2020, https://arxiv.org/abs/2005.00631
    """

    def _reduce(self, distances: torch.Tensor) -> torch.Tensor:
        filled = torch.nan_to_num(distances, nan=-math.inf)
        best = filled.amax(-1)
        return torch.where(torch.isinf(best), torch.full_like(best, math.nan), best)


@register_metric("avg_sensitivity")
@dataclasses.dataclass(frozen=True, kw_only=True)
class AvgSensitivity(_Sensitivity):
    """Avg-sensitivity: mean over perturbed inputs z of ||Phi(z) - Phi(x)|| / ||Phi(x)||.

    Monte-Carlo estimate of Bhatt et al.'s mu_A, with z uniform in the L-infinity ball of
    ``radius`` around x (random word substitutions for text). Lower is better.

    Parameters
    ----------
    radius : float, default=0.02
        Half-width of the L-infinity ball of tensor perturbations, in input units.
    n_samples : int, default=10
        Perturbed inputs per example.
    norm : {"fro", "inf"}, default="fro"
        Norm of the explanation difference over the features, per explained output.
    normalize : bool, default=True
        Divide by the norm of the reference explanation (0 counts as 1).
    n_substitutions : int, default=1
        Text only: words replaced per perturbed text.
    text_perturbation : {"substitution", "embedding"}, default="substitution"
        Text only: random whole-word substitution in text space, or uniform noise in an L-inf
        ball of ``radius`` times the std of the embedding weights, added to the input word
        embeddings (one re-explanation per example and sample: the continuous neighbourhood of
        Yeh et al., where smoothing provably helps).

    Notes
    -----
    Same perturbations, re-explanation, reference and extras as :class:`MaxSensitivity`.

    References
    ----------
    .. [1] Bhatt, Weller, Moura, "Evaluating and Aggregating Feature-based Model Explanations",
           IJCAI 2020, https://arxiv.org/abs/2005.00631
    """

    reference: ClassVar[str] = "Bhatt et al. 2020, arXiv:2005.00631"

    def _reduce(self, distances: torch.Tensor) -> torch.Tensor:
        return distances.nanmean(-1)


# -- text perturbation ----------------------------------------------------------------------

def whole_word_vocabulary(tokenizer: Any) -> tuple[str, ...]:
    """Sorted whole-word tokens of ``tokenizer``: alphabetic, not special, not a '##'
    continuation (a leading BPE 'G-dot' or SentencePiece '_' word marker is stripped)."""
    special = set(getattr(tokenizer, "all_special_tokens", ()))
    words = set()
    for token in tokenizer.get_vocab():
        if token in special or token.startswith("##"):
            continue
        word = token.lstrip("\u0120\u2581")
        if word.isalpha():
            words.add(word)
    return tuple(sorted(words))


def substitute_words(text: str, spans: Sequence[tuple[int, int]], vocabulary: Sequence[str], *,
                     n_samples: int, n_substitutions: int,
                     gen: torch.Generator) -> list[str]:
    """``n_samples`` copies of ``text``, each with ``n_substitutions`` random spans (character
    ranges of its features) replaced by random words of ``vocabulary``."""
    k = min(n_substitutions, len(spans))
    out = []
    for _ in range(n_samples):
        chosen = torch.randperm(len(spans), generator=gen)[:k].tolist()
        words = torch.randint(len(vocabulary), (k,), generator=gen).tolist()
        new = text
        for j, w in sorted(zip(chosen, words, strict=True), reverse=True):  # right to left
            start, end = spans[j]
            new = new[:start] + vocabulary[w] + new[end:]
        out.append(new)
    return out


def _tokenizer(adapter: ModelAdapter, name: str) -> Any:
    tokenizer = getattr(adapter, "tokenizer", None)
    if tokenizer is None or not hasattr(tokenizer, "get_vocab"):
        msg = (f"Metric {name!r} perturbs texts by substituting vocabulary words, but "
               f"{adapter!r} has no tokenizer with a vocabulary. Pass (model, tokenizer).")
        raise IncompatibleModelError(msg, method=name)
    return tokenizer


def _texts(explanation: xai.Explanation, name: str) -> tuple[str, ...]:
    if explanation.texts is None:
        msg = (f"Metric {name!r} needs the explained texts, which this explanation does not "
               "carry. Explain the raw texts (a str or list of str).")
        raise InvalidExplanationError(msg)
    return explanation.texts


def _spans(fs: Any) -> Sequence[tuple[int, int]]:
    spans: Sequence[tuple[int, int]] = getattr(fs, "spans", ())
    if len(spans) != fs.n_features:
        msg = ("The explanation's text features carry no character spans, so words cannot be "
               "substituted. Re-explain the raw texts with this version of xai.")
        raise InvalidExplanationError(msg)
    return spans


def _explain_shifted(method: Any, adapter: Any, layer: torch.nn.Module, text: str,
                     target: xai.ResolvedTarget, shift: torch.Tensor | None, batch_size: int,
                     seed: int) -> torch.Tensor:
    """Values (o, d) of ``method`` on one text with ``shift`` added to its word embeddings."""
    handle = None if shift is None else layer.register_forward_hook(
        lambda m, i, out: out + shift.to(out.dtype))
    try:
        values: torch.Tensor = method.explain(adapter, [text], target=target,
                                              batch_size=batch_size, random_state=seed).values
        return values[0]
    finally:
        if handle is not None:
            handle.remove()
