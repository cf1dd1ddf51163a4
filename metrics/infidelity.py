"""Infidelity (Yeh et al. 2019): how well attributions predict the output change under
random perturbations, optionally after the paper's least-squares rescaling."""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

import torch

import xai
from xai.adapters import Batch, ModelAdapter
from xai.exceptions import InvalidParameterError, XAIWarning
from xai.extend import NONE_OK, Constraint, InstanceOf, Interval, Options, example_generators
from xai.features import TensorFeatures

from ._base import Category, Metric
from ._perturb import Row, attribution_units, rows, safe_div, score_batches
from ._registry import register_metric

__all__ = ["Infidelity"]

#: Default number of perturbations per example, by kind of feature space (see the class notes).
N_TENSOR, N_TEXT = 1000, 100
#: Most perturbed input elements held in memory at once; examples are scored in chunks below it.
_MAX_ELEMENTS = 2**25


@register_metric("infidelity")
@dataclasses.dataclass(frozen=True, kw_only=True)
class Infidelity(Metric):
    """Infidelity INFD = E_I[(I^T Phi - (f(x) - f(x - I)))^2] (Yeh et al. 2019, Def. 2.1).

    For t = 1..n a perturbation I_t is drawn, x - I_t is scored by the model, and the
    attributions' prediction a_t = I_t . Phi of the output change is compared with the change
    b_t = f(x) - f(x - I_t). Lower is better; an explanation that predicts every sampled change
    exactly scores 0.

    Parameters
    ----------
    perturbation : {"auto", "gaussian", "subset"}, default="auto"
        ``"gaussian"``: the paper's *noisy baseline*, x - I = baseline + eps with
        eps ~ N(0, sigma^2) per input element, the baseline being the one of the explanation's
        feature space (pass ``baseline=x`` to the method for local noise x + eps).
        ``"subset"``: a random subset of features is removed through the explanation's feature
        space (the same mask game the method played); its size is uniform in 1..d, then the
        subset is uniform among those of that size, so small and large removals are equally
        represented. ``"auto"`` is ``"gaussian"`` for tensor/tabular features and ``"subset"``
        otherwise (text, where tokens cannot take noisy values).
    n_perturbations : int or None, default=None
        Perturbations per example. None means 1000 for tensor/tabular features and 100 for
        text: each text perturbation is a transformer forward pass (about 10 ms on a CPU), so
        100 keeps one example under about 1 s while the Monte-Carlo error of the mean is already
        about 10 %; tabular rows are cheap, and 1000 brings that error to about 3 %.
    sigma : float, default=0.2
        Standard deviation of the Gaussian noise, in input units (the authors' 0.2).
    normalize : bool, default=True
        The paper's beta-rescaling (the authors' code): beta = sum(a b) / sum(a^2) (0 when
        sum(a^2) = 0, captum's ``safe_div``) and INFD = mean((b - beta a)^2), which makes the
        score invariant to the scale of the attributions. False gives the plain definition,
        mean((a - b)^2) (captum's default).

    Notes
    -----
    Attributions that are multiplied by the input (IG, occlusion, Shapley: they sum to about
    f(x) - f(baseline)) are compared with I = (x - x~) / (x - baseline) per element (captum's
    ``multiplies_by_inputs`` convention, a zero denominator counting as 1), gradient-like ones
    with I = x - x~; for ``"subset"`` the former use the removal mask itself. Element values
    are summed (gradient-like) or averaged (multiplied by inputs) over the elements of grouped
    features.

    ``extras``: ``n_model_calls``, the resolved ``perturbation`` and ``n_perturbations``,
    ``stderr`` (n_examples, n_outputs), the standard deviation of the squared residuals over
    sqrt(n) (the Monte-Carlo error of the score), and ``beta`` (n_examples, n_outputs) when
    ``normalize``. All perturbations of all examples are scored together in
    ceil(n_examples * n / batch_size) model calls (large image batches are split into chunks
    of at most 2^25 perturbed elements). f(x) is taken from the explanation's stored scores.

    References
    ----------
    .. [1] Yeh, Hsieh, Suggala, Inouye, Ravikumar, "On the (In)fidelity and Sensitivity of
           Explanations", NeurIPS 2019, https://arxiv.org/abs/1901.09392
    """

    higher_is_better: ClassVar[bool] = False
    category: ClassVar[Category] = "fidelity"
    reference: ClassVar[str] = "Yeh et al. 2019, arXiv:1901.09392"
    _constraints: ClassVar[Mapping[str, Sequence[Constraint]]] = {
        "perturbation": [Options({"auto", "gaussian", "subset"})],
        "n_perturbations": [Interval(int, 1, None, closed="left"), NONE_OK],
        "sigma": [Interval(float, 0, None, closed="neither")],
        "normalize": [InstanceOf((bool,), "a bool")],
    }

    perturbation: str = "auto"
    n_perturbations: int | None = None
    sigma: float = 0.2
    normalize: bool = True

    # -- sampling (public so that tests and peers can reproduce the draws) ----------------
    def sample(self, fs: TensorFeatures, n: int, gen: torch.Generator) -> torch.Tensor:
        """Noisy baselines x~ = baseline + sigma * N(0, 1), shape (n, *fs.x.shape)."""
        noise = torch.randn((n, *fs.x.shape), generator=gen, dtype=fs.x.dtype)
        return fs.base.unsqueeze(0) + self.sigma * noise

    @staticmethod
    def subsets(d: int, n: int, gen: torch.Generator) -> torch.Tensor:
        """Removed features (n, d), True = removed: size uniform in 1..d, then a uniform subset."""
        if d == 0:
            return torch.zeros(n, 0, dtype=torch.bool)
        sizes = torch.randint(1, d + 1, (n, 1), generator=gen)
        ranks = torch.rand(n, d, generator=gen).argsort(1).argsort(1)
        return ranks < sizes

    def resolved(self, explanation: xai.Explanation) -> tuple[str, int]:
        """The perturbation kind and number of perturbations used for ``explanation``."""
        tensor = all(_continuous(f) for f in explanation.features)
        kind = self.perturbation if self.perturbation != "auto" else (
            "gaussian" if tensor else "subset")
        n = self.n_perturbations or (N_TENSOR if tensor else N_TEXT)
        return kind, n

    # -- Metric ---------------------------------------------------------------------------
    def check(self, explanation: xai.Explanation, adapter: ModelAdapter) -> None:
        super().check(explanation, adapter)
        if self.perturbation != "gaussian":
            return
        other = [f for f in explanation.features if not _continuous(f)]
        if other:
            kind = (f"{str(other[0].x.dtype).removeprefix('torch.')} tensor"
                    if isinstance(other[0], TensorFeatures) else type(other[0]).__name__)
            msg = (f"The 'perturbation' parameter of Infidelity is 'gaussian', which adds noise "
                   f"to continuous inputs, but this {explanation.modality} explanation has "
                   f"{kind} features, which cannot take noisy values. Use "
                   "perturbation='subset' (random feature removal) or 'auto'.")
            raise InvalidParameterError(msg, owner="Infidelity", parameter="perturbation",
                                        value=self.perturbation)

    def _score(self, explanation: xai.Explanation, adapter: ModelAdapter, rng: torch.Generator,
               *, batch_size: int) -> tuple[torch.Tensor, dict[str, Any]]:
        kind, n = self.resolved(explanation)
        gens = example_generators(rng, len(explanation))
        full = explanation.target.explained_scores().double()
        shape = (len(explanation), explanation.n_outputs)
        out, stderr, beta = torch.zeros(shape), torch.zeros(shape), torch.zeros(shape)
        n_calls = 0
        for start, stop in _chunks(explanation, n):
            sub = explanation[list(range(start, stop))]
            units, batches = [], []
            for row in rows(sub):
                u, batch = self._perturb(sub, row, kind, n, gens[start + row.index])
                units.append(u)
                batches.append(batch)
            scores, calls = score_batches(adapter, sub, batches, batch_size=batch_size)
            n_calls += calls
            for row, u, s in zip(rows(sub), units, scores, strict=True):
                a = u.double() @ row.values.double().T  # (n, o): predicted changes
                b = full[start + row.index] - s.double()  # (n, o): actual changes
                i = start + row.index
                out[i], stderr[i], beta[i] = self._infidelity(a, b)
        extras: dict[str, Any] = {"n_model_calls": n_calls, "n_perturbations": n,
                                  "perturbation": kind, "stderr": stderr}
        if self.normalize:
            extras["beta"] = beta
        return out, extras

    def _perturb(self, exp: xai.Explanation, row: Row, kind: str, n: int,
                 gen: torch.Generator) -> tuple[torch.Tensor, Batch]:
        """Perturbations in attribution units (n, d) and the perturbed inputs of one example."""
        fs = row.features
        if kind == "gaussian":
            assert isinstance(fs, TensorFeatures)
            x_pert = self.sample(fs, n, gen)
            units = attribution_units(exp, fs, x_pert=x_pert)
            return units, Batch({"inputs": x_pert}, columns=fs.columns)
        removed = self.subsets(row.n_features, n, gen)
        return attribution_units(exp, fs, removed=removed), fs.mask(~removed)

    def _infidelity(self, a: torch.Tensor, b: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Score, Monte-Carlo standard error and beta per output from (n, o) a and b."""
        saa = a.square().sum(0)
        beta = safe_div((a * b).sum(0), saa) if self.normalize else torch.ones_like(saa)
        sq = (b - beta * a).square()
        if bool((saa == 0).any()):
            warnings.warn("The attributions predict no change for any sampled perturbation (all "
                          "zero, or zero on every perturbed feature): infidelity equals the "
                          "mean squared output change, the score of the zero explanation"
                          + (" (beta = 0)." if self.normalize else "."), XAIWarning,
                          stacklevel=4)
        if self.normalize and bool((b.square().sum(0) == 0).any()):
            warnings.warn("The model's output does not change under any sampled perturbation: "
                          "the rescaled infidelity is 0 for every explanation (degenerate).",
                          XAIWarning, stacklevel=4)
        n = sq.shape[0]
        se = sq.std(0) / math.sqrt(n) if n > 1 else torch.full_like(saa, math.nan)
        return sq.mean(0).float(), se.float(), beta.float()


def _chunks(explanation: xai.Explanation, n: int) -> Iterator[tuple[int, int]]:
    """Contiguous example ranges whose perturbed inputs stay under ``_MAX_ELEMENTS`` elements."""
    start, size = 0, 0
    for i, fs in enumerate(explanation.features):
        elements = n * (fs.x.numel() if isinstance(fs, TensorFeatures) else fs.n_features)
        if size and size + elements > _MAX_ELEMENTS:
            yield start, i
            start, size = i, 0
        size += elements
    if size or start < len(explanation):
        yield start, len(explanation)


def _continuous(fs: Any) -> bool:
    """Features of one float tensor: the only ones Gaussian noise can perturb."""
    return isinstance(fs, TensorFeatures) and fs.x.is_floating_point()
