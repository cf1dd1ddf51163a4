"""Kernel SHAP: our batched paired KernelSHAP (default) or shap's ``KernelExplainer``, playing
the masking game of our FeatureSpace."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from .._capabilities import Capability, Modality
from .._registry import register_method
from .._validation import (
    BASELINE,
    NONE_OK,
    Constraint,
    InstanceOf,
    Interval,
    Options,
    Satisfies,
    int_seed,
)
from ..adapters._base import Batch, ModelAdapter
from ..exceptions import InvalidParameterError, MissingDependencyError
from ..explanation import ResolvedTarget
from ..features._base import FeatureSpace
from ..features.groups import FEATURE_GROUPS
from ._base import AttributionOutput, Method, example_generators, pad_stack
from ._budget import Cost
from ._coalitions import fits_exact
from ._perturb import row_pieces, score_masks, stream_scores
from ._regression import KernelDesign, least_rows
from .shapley_sampling import _Exact, _Regression

__all__ = ["KernelShap"]

_NUM_FEATURES = re.compile(r"num_features\(([1-9][0-9]*)\)")

_L1_REG = "False, 'num_features(k)' with k >= 1, 'aic', 'bic' or a float in the range (0, inf)"


def _valid_l1_reg(value: Any) -> bool:
    """shap's ``l1_reg`` choices (the ``l1_reg`` constraint of KernelShap)."""
    if value is False:
        return True
    if isinstance(value, str):
        return value in ("aic", "bic") or _NUM_FEATURES.fullmatch(value) is not None
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


@register_method("kernel_shap")
@dataclasses.dataclass(frozen=True, kw_only=True)
class KernelShap(Method):
    """Kernel SHAP: Shapley values from a weighted linear regression over coalitions.

    For example ``i`` with ``d`` features the cooperative game is
    ``v(z) = f(features[i].mask(z))[target]`` for binary ``z`` (1 = feature kept): our
    FeatureSpace decides how a feature is removed (the same way as every other method and
    metric).

    ``backend="native"`` (the default) is our batched KernelSHAP (Lundberg & Lee 2017) with the
    exact constrained weighted least-squares solution of Covert & Lee (2021): ``m`` coalitions
    are drawn i.i.d. from the Shapley kernel (size ``k`` with probability proportional to
    ``1 / (k (d - k))``, then a uniform subset of that size); with ``paired=True`` each is scored
    together with its complement. The coalitions of all examples stream through the model
    ``batch_size`` rows per call, and each example is solved once its rows are in. An example
    whose ``2**d`` coalitions fit in ``max(max_exact, budget)`` is enumerated and gets its exact
    Shapley values. ``backend="shap"`` hands the same game to ``shap.KernelExplainer`` (one-row
    background ``zeros((1, d))``, instance ``ones((1, d))``: every coalition shap builds is a
    keep-mask), kept for parity and for ``l1_reg``.

    Efficiency holds exactly for both backends:
    ``values.sum(-1) == link(f(x)) - link(f(all removed))`` and ``base_values`` is
    ``link(f(all removed))``. An additive game gets its exact values from any sample; the paired
    native design is exact on games with interactions of order <= 2 once its pairs span the
    regression.

    Parameters
    ----------
    backend : {"native", "shap"}, default="native"
        Who samples and solves: our batched estimator, or shap's ``KernelExplainer`` (needs the
        ``shap`` extra; rows are scored example by example as shap asks for them).
    paired : bool, default=True
        Native: score each sampled coalition and its complement (``(budget - 2) // 2`` pairs);
        False draws ``budget - 2`` coalitions i.i.d. (spec: unpaired KernelSHAP). shap's
        KernelExplainer always adds complements, so ``paired=False`` with ``backend="shap"``
        warns (IgnoredParameterWarning) and does nothing.
    budget : int, optional
        Model rows per example, the empty and full coalitions included. None: ``2 + n_samples``.
        For ``backend="shap"`` it sets ``nsamples = budget - 2``.
    n_samples : int or "auto", default="auto"
        Coalitions evaluated per sampled example when ``budget`` is None. "auto" is shap's rule
        ``2 * d + 2048`` (capped at ``2**d - 2`` by shap; the native backend enumerates then).
        The number used is in ``extras["n_samples"]``.
    l1_reg : False, "num_features(k)", "aic", "bic" or float, default=False
        shap's feature selection before the regression (``backend="shap"`` only; other values
        with the native backend raise InvalidParameterError). ``False`` keeps every feature, so
        all features get values (shap's own default, "num_features(10)", would set all but 10
        features to 0 when d > 10).
    link : {"identity", "logit"}, default="identity"
        "logit" explains log-odds of probability outputs (scores must lie in (0, 1)); values
        and ``base_values`` are then in log-odds units, while ``predictions`` stay probabilities.
        The native backend applies the link to every scored coalition before the regression,
        as shap does.
    baseline : "auto", "zeros", "mean", number, array, or "pad"/"mask"/"unk"/"delete" for text
        How a feature is removed. "auto" is zeros for tensors and "pad" for text.
    feature_groups : None, dict of str to columns, or array-like of int, default=None
        Features switched on and off together, each group one feature of the explanation
        (captum's ``feature_mask``): a dict of group name to columns (tabular; unlisted columns
        stay single features), or an int group id per element, of one example's shape (shared)
        or one row per example. For text, one id per word (or token) of each text.
    granularity : {"auto", "word", "token"}, default="auto"
        Text only ("auto" = "word").
    max_exact : int, default=1024
        Enumerate all ``2**d`` coalitions of an example with ``d`` features (``2**d`` model rows,
        exact Shapley values) when ``2**d <= max_exact`` (or ``2**d`` <= its rows), whatever
        ``n_samples`` says. The default makes d <= 10 exact; 0 leaves it to the rows. Decided
        per example.

    Notes
    -----
    ``extras["exact"]`` is a bool tensor (n_examples,): True for the examples whose coalitions
    were all evaluated with ``l1_reg=False``, i.e. whose values are the exact Shapley values.
    (shap selects features with ``l1_reg`` even when it enumerates, so those values are not
    Shapley values.) ``extras["n_rows"]`` (n_examples,) counts each example's model rows, the
    empty and full coalitions included (at most ``budget``), ``extras["n_samples"]`` the
    coalitions besides those two, ``extras["n_model_calls"]`` the model calls and
    ``extras["backend"]`` the backend. The native backend also reports ``extras["stderr"]``
    (n_examples, n_outputs, n_features), a delete-a-group jackknife standard error over 10
    groups of draws (0 for exact examples), and ``extras["estimator"]`` ("kernel",
    "kernel_unpaired", or "exact" when every example was enumerated).

    Randomness: one generator per example, all seeded alike from ``random_state``, so a row's
    result does not depend on its batch. shap samples with numpy's global RNG: a seed is drawn
    from ``random_state`` once per call; the global numpy state is saved, re-seeded with that
    seed before each example and restored afterwards, also on error.

    Unlike shap with a multi-row background, the removed value is our FeatureSpace's single
    baseline (a one-row background in shap's terms). Features whose input equals the baseline
    still take part in the game (shap would skip them): their value is 0 up to sampling error.

    References
    ----------
    .. [1] Lundberg & Lee, "A Unified Approach to Interpreting Model Predictions", NeurIPS 2017,
           https://arxiv.org/abs/1705.07874
    .. [2] Covert & Lee, "Improving KernelSHAP: Practical Shapley Value Estimation via Linear
           Regression", AISTATS 2021, https://arxiv.org/abs/2012.01536
    """

    requires: ClassVar[Capability] = Capability.FORWARD
    modalities: ClassVar[frozenset[Modality]] = frozenset({"tabular", "image", "text"})
    deterministic: ClassVar[bool] = False
    reference: ClassVar[str] = "Lundberg & Lee 2017, arXiv:1705.07874"
    _constraints: ClassVar[Mapping[str, Sequence[Constraint]]] = {
        "backend": [Options({"native", "shap"})],
        "paired": [InstanceOf((bool,), "a bool")],
        "budget": [Interval(int, 1, None, closed="left"), NONE_OK],
        "n_samples": [Interval(int, 1, None, closed="left"), Options({"auto"})],
        "l1_reg": [Satisfies(_valid_l1_reg, _L1_REG, invalid="num_features(0)")],
        "link": [Options({"identity", "logit"})],
        "baseline": BASELINE,
        "feature_groups": FEATURE_GROUPS,
        "granularity": [Options({"auto", "word", "token"})],
        "max_exact": [Interval(int, 0, None, closed="left")],
    }

    backend: str = "native"
    paired: bool = True
    budget: int | None = None
    n_samples: int | str = "auto"
    l1_reg: bool | float | str = False
    link: str = "identity"
    baseline: Any = "auto"
    feature_groups: Any = None
    granularity: str = "auto"
    max_exact: int = 1024

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.backend == "native" and self.l1_reg is not False:
            msg = (f"The 'l1_reg' parameter of KernelShap selects features with shap's "
                   f"KernelExplainer; the native backend always keeps every feature. Got "
                   f"{self.l1_reg!r} instead. Pass backend='shap' to use it, or leave "
                   "l1_reg=False.")
            raise InvalidParameterError(msg, owner="KernelShap", parameter="l1_reg",
                                        value=self.l1_reg)

    @classmethod
    def _test_params(cls) -> list[dict[str, Any]]:
        # Fewer than the 2**d - 2 coalitions for d >= 5 and max_exact=0, so samples and
        # seeds matter.
        return [{"n_samples": 24, "max_exact": 0},
                {"budget": 26, "paired": False, "max_exact": 0},
                {"n_samples": 24, "l1_reg": "num_features(2)", "max_exact": 0, "backend": "shap"}]

    def inapplicable(self, adapter: ModelAdapter) -> dict[str, str]:
        out = super().inapplicable(adapter)
        if self.backend == "shap" and not self.paired:
            out["paired"] = ("shap's KernelExplainer always pairs sampled coalitions with their "
                             "complements (use backend='native' for unpaired sampling)")
        return out

    def enumerates(self, n_features: int) -> bool:
        """Whether every coalition of an example with ``n_features`` features is evaluated
        (``2**n_features`` fits in ``max_exact`` or in the example's rows)."""
        if n_features <= 1 or fits_exact(n_features, self.max_exact):
            return True
        if self.backend == "native":
            return fits_exact(n_features, self.rows_for(n_features))
        return n_features <= 30 and self.samples(n_features) == 2**n_features - 2

    def rows_for(self, n_features: int) -> int:
        """Model rows of a sampled example: ``budget``, or ``2 + n_samples`` ("auto":
        ``2 * d + 2048``)."""
        if self.budget is not None:
            return self.budget
        n = 2 * n_features + 2048 if self.n_samples == "auto" else int(self.n_samples)
        return 2 + n

    def samples(self, n_features: int) -> int:
        """Coalitions evaluated for ``n_features`` besides the empty and full ones: all
        ``2**d - 2`` when enumerated, else those of :meth:`rows_for` (native: rounded down to
        pairs when paired; shap: capped at ``2**d - 2``)."""
        d = n_features
        if fits_exact(d, self.max_exact) or (self.backend == "native" and self.enumerates(d)):
            return max(int(2**d) - 2, 0)
        n = self.rows_for(d) - 2
        if self.backend == "native":
            return n - n % 2 if self.paired else n
        return max(min(n, 2**d - 2 if d <= 30 else 2**30), 0)

    def cost(self, features: tuple[FeatureSpace, ...], n_outputs: int, batch_size: int,
             row_bytes: int) -> Cost:
        """Model rows: ``2 + samples`` per example. Native: an example's coalitions and scores
        are held until it is solved (d + 8 bytes per output per row); shap builds all of an
        example's coalitions at once: float64 data, mask matrix and regression copies, about 40
        bytes per coalition and feature."""
        n = [self.samples(f.n_features) for f in features]
        per_row = [max(f.n_features, 1) * 40 if self.backend == "shap"
                   else f.n_features + 8 * n_outputs for f in features]
        held = max((k * b for k, b in zip(n, per_row, strict=True)), default=0)
        by_exact = sum(k for k, f in zip(n, features, strict=True)
                       if fits_exact(f.n_features, self.max_exact))
        sampler = ("budget", self.budget) if self.budget is not None else ("n_samples",
                                                                           self.n_samples)
        # name the parameter that set most of the rows
        param, value, fix = (("max_exact", self.max_exact, "keep it below 2**n_features, so "
                              "that such examples are sampled instead.")
                             if by_exact > sum(n) - by_exact else
                             (*sampler, "shap's 'auto' (2 * n_features + 2048) is usually "
                              "enough."))
        return Cost("KernelShap", param, value, sum(n) + 2 * len(features),
                    row_bytes + 8 * n_outputs, batch_size, held_bytes=held,
                    held=("shap's coalition matrices" if self.backend == "shap"
                          else "the coalitions and scores of an example until it is solved"),
                    fix=fix)

    def _attribute(self, adapter: ModelAdapter, batch: Batch, features: tuple[FeatureSpace, ...],
                   target: ResolvedTarget, *, batch_size: int,
                   rng: torch.Generator) -> AttributionOutput:
        if self.backend == "shap":
            return self._attribute_shap(adapter, features, target, batch_size=batch_size,
                                        rng=rng)
        gens = example_generators(rng, len(features))
        games = [self._game(f.n_features, target.indices[i], gens[i])
                 for i, f in enumerate(features)]
        pieces = row_pieces([g.n_rows for g in games],
                            lambda k, start, stop: games[k].masks(start, stop), batch_size)
        n_calls = stream_scores(adapter, features, pieces,
                                lambda k, scores: games[k].take(scores), batch_size=batch_size)
        results = [g.result() for g in games]
        exact = [g.exact for g in games]
        rows = [g.n_rows for g in games]
        sampled = sorted({"exact" if e else self._estimator for e in exact} - {"exact"})
        extras: dict[str, Any] = {
            "stderr": pad_stack([r[1] for r in results]),
            "exact": torch.tensor(exact, dtype=torch.bool),
            "n_model_calls": torch.tensor(n_calls),
            "n_rows": torch.tensor(rows),
            "n_samples": torch.tensor([r - 2 for r in rows]),
            "estimator": sampled[0] if sampled else "exact",
            "backend": "native"}
        return AttributionOutput([r[0] for r in results],
                                 base_values=torch.stack([r[2] for r in results]), extras=extras)

    @property
    def _estimator(self) -> str:
        return "kernel" if self.paired else "kernel_unpaired"

    def _game(self, d: int, outputs: torch.Tensor | slice, gen: torch.Generator) -> _Linked:
        """One example's streamed game: all coalitions, or a sampled KernelSHAP design."""
        if self.enumerates(d):
            return _Linked(_Exact(d, slice(None)), outputs, self.link)
        rows = self.rows_for(d)
        least = least_rows(d, paired=self.paired)
        if rows < least:
            param, value = (("budget", self.budget) if self.budget is not None
                            else ("n_samples", self.n_samples))
            msg = (f"The '{param}' parameter of KernelShap gives {rows} model rows per example, "
                   f"but {least} are needed for {d} features (the empty and full coalitions "
                   f"and enough {'pairs' if self.paired else 'coalitions'} to span the "
                   f"regression). Got {value!r} instead. Raise it.")
            raise InvalidParameterError(msg, owner="KernelShap", parameter=param, value=value)
        design = KernelDesign(d, rows, gen, paired=self.paired, owner="KernelShap")
        return _Linked(_Regression(design, slice(None)), outputs, self.link)

    def _attribute_shap(self, adapter: ModelAdapter, features: tuple[FeatureSpace, ...],
                        target: ResolvedTarget, *, batch_size: int,
                        rng: torch.Generator) -> AttributionOutput:
        shap = _import_shap()
        seed = int_seed(rng)
        ends = [torch.stack([torch.zeros(f.n_features, dtype=torch.bool),
                             torch.ones(f.n_features, dtype=torch.bool)]) for f in features]
        end_scores, n_calls = score_masks(adapter, features, ends, batch_size=batch_size)
        values, base, used, rows = [], [], [], []
        # shap draws from numpy's global RNG: seed it per example, restore it afterwards.
        state = np.random.get_state()  # noqa: NPY002
        try:
            for i, fs in enumerate(features):
                game = _Game(adapter, fs, target.indices[i], end_scores[i], batch_size)
                self._check_link(game.ends)
                np.random.seed(seed)  # noqa: NPY002
                v, b = self._explain_one(shap, game, fs.n_features)
                values.append(v)
                base.append(b)
                used.append(game.n_rows)
                rows.append(2 + game.n_rows)
                n_calls += game.n_calls
        finally:
            np.random.set_state(state)  # noqa: NPY002
        exact = [self.l1_reg is False and self.enumerates(f.n_features) for f in features]
        extras = {"n_model_calls": torch.tensor(n_calls), "n_rows": torch.tensor(rows),
                  "n_samples": torch.tensor(used),
                  "exact": torch.tensor(exact, dtype=torch.bool), "backend": "shap"}
        return AttributionOutput(values, base_values=torch.stack(base), extras=extras)

    def _explain_one(self, shap: Any, game: _Game, d: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Values (n_outputs, d) and base value (n_outputs,) of one example's game."""
        n_out = game.ends.shape[1]
        if d == 0:
            return torch.zeros(n_out, 0), torch.from_numpy(_link(self.link, game.ends[0]))
        explainer = shap.KernelExplainer(game, np.zeros((1, d)), link=self.link)
        if fits_exact(d, self.max_exact):
            nsamples: int | str = self.samples(d)
        elif self.budget is not None:
            nsamples = max(self.budget - 2, 1)
        else:
            nsamples = self.n_samples
        phi = explainer.shap_values(np.ones((1, d)), nsamples=nsamples,
                                    l1_reg=self.l1_reg, silent=True)  # (1, d, n_out)
        expected = np.asarray(explainer.expected_value, dtype=np.float64).reshape(n_out)
        values = torch.from_numpy(np.asarray(phi, dtype=np.float64).reshape(d, n_out).T.copy())
        return values.float(), torch.from_numpy(expected).float()

    def _check_link(self, ends: np.ndarray) -> None:
        if self.link == "logit" and not bool(((ends > 0) & (ends < 1)).all()):
            raise _link_error(self.link, ends)


def _link_error(link: str, scores: np.ndarray) -> InvalidParameterError:
    msg = (f"The 'link' parameter of KernelShap is 'logit', but the model's scores for "
           f"the explained outputs are not all in (0, 1) (got {scores.ravel()[:4]!r}). "
           "Use link='identity', or explain probabilities.")
    return InvalidParameterError(msg, owner="KernelShap", parameter="link", value=link)


class _Linked:
    """A streamed game (exact or regression) played on ``link`` of the explained outputs'
    scores, in float64; results come back in the scores' dtype."""

    def __init__(self, game: _Exact | _Regression, outputs: torch.Tensor | slice,
                 link: str) -> None:
        self.game, self.outputs, self.link = game, outputs, link
        self.n_rows = game.n_rows
        self.exact = bool(game.exact)
        self.dtype = torch.float32

    def masks(self, start: int, stop: int) -> torch.Tensor:
        return self.game.masks(start, stop)

    def take(self, scores: torch.Tensor) -> None:
        self.dtype = scores.dtype
        s = scores[:, self.outputs].double()
        if self.link == "logit":
            if not bool(((s > 0) & (s < 1)).all()):
                raise _link_error(self.link, s.numpy())
            s = torch.log(s / (1 - s))
        self.game.take(s)

    def result(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        values, stderr, base = self.game.result()
        return values.to(self.dtype), stderr.to(self.dtype), base.to(self.dtype)


class _Game:
    """v(Z): scores of the explained outputs for binary keep-matrices Z (what shap calls).

    The all-removed and all-kept rows were scored up front and are answered from that cache
    (shap asks for each once: the background and the instance).
    """

    def __init__(self, adapter: ModelAdapter, features: FeatureSpace, outputs: torch.Tensor,
                 end_scores: torch.Tensor, batch_size: int) -> None:
        self.adapter = adapter
        self.features = features
        self.outputs = outputs
        self.batch_size = batch_size
        self.ends: np.ndarray = end_scores[:, outputs].double().numpy()  # (2, n_out): 0s, 1s
        self.n_calls = 0
        self.n_rows = 0

    def __call__(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z)
        keep = torch.from_numpy(z > 0.5)
        if keep.shape[0] == 1 and not bool(keep.any()):
            return np.array(self.ends[:1])
        if keep.shape[0] == 1 and bool(keep.all()):
            return np.array(self.ends[1:])
        scores, n_calls = score_masks(self.adapter, [self.features], [keep],
                                      batch_size=self.batch_size)
        self.n_calls += n_calls
        self.n_rows += keep.shape[0]
        out: np.ndarray = scores[0][:, self.outputs].double().numpy()
        return out


def _link(link: str, p: np.ndarray) -> np.ndarray:
    return np.asarray(np.log(p / (1 - p))) if link == "logit" else p


def _import_shap() -> Any:
    try:
        import shap
    except ImportError as err:
        msg = 'kernel_shap requires shap. Install it with: pip install "posthoc-xai[shap]".'
        raise MissingDependencyError(msg) from err
    return shap
