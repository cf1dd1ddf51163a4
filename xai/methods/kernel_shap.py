"""Kernel SHAP: shap's ``KernelExplainer`` playing the masking game of our FeatureSpace."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from .._capabilities import Capability, Modality
from .._registry import register_method
from .._validation import BASELINE, Constraint, Interval, Options, Satisfies, int_seed
from ..adapters._base import Batch, ModelAdapter
from ..exceptions import InvalidParameterError, MissingDependencyError
from ..explanation import ResolvedTarget
from ..features._base import FeatureSpace
from ..features.groups import FEATURE_GROUPS
from ._base import AttributionOutput, Method
from ._budget import Cost
from ._coalitions import fits_exact
from ._perturb import score_masks

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
    """Kernel SHAP: Shapley values from shap's weighted linear regression over coalitions.

    For example ``i`` with ``d`` features the cooperative game is
    ``v(z) = f(features[i].mask(z))[target]`` for binary ``z`` (1 = feature kept). The method
    hands ``shap.KernelExplainer`` a function of binary matrices with the one-row background
    ``zeros((1, d))`` and explains the instance ``ones((1, d))``: every coalition shap builds is
    then exactly a keep-mask, so shap samples and solves while our FeatureSpace decides how a
    feature is removed (the same way as every other method and metric). Masks go through the
    model ``batch_size`` rows per call.

    Efficiency holds exactly (shap enforces it):
    ``values.sum(-1) == link(f(x)) - link(f(all removed))`` and ``base_values`` is
    ``link(f(all removed))`` (shap's ``expected_value`` for a one-row background). When
    ``2**d <= max_exact`` (or ``n_samples >= 2**d - 2``) shap is given every coalition and the
    values are the exact Shapley values of the game (with ``l1_reg=False``); an additive game
    gets its exact values from any sample.

    Parameters
    ----------
    n_samples : int or "auto", default="auto"
        Coalitions evaluated per sampled example. "auto" is shap's rule ``2 * d + 2048``; shap
        caps it at ``2**d - 2`` (all coalitions). The number used is in ``extras["n_samples"]``.
    l1_reg : False, "num_features(k)", "aic", "bic" or float, default=False
        shap's feature selection before the regression. The default ``False`` keeps every
        feature, so all features get values (shap's own default, "num_features(10)", would set
        all but 10 features to 0 when d > 10).
    link : {"identity", "logit"}, default="identity"
        "logit" explains log-odds of probability outputs (scores must lie in (0, 1)); values
        and ``base_values`` are then in log-odds units, while ``predictions`` stay probabilities.
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
        Give shap all ``2**d - 2`` coalitions of an example with ``d`` features (besides the
        empty and full ones: ``2**d`` model rows, exact Shapley values) when
        ``2**d <= max_exact``, whatever ``n_samples`` says; ``n_samples`` otherwise. The
        default makes d <= 10 exact; 0 leaves it to ``n_samples``. Decided per example.

    Notes
    -----
    ``extras["exact"]`` is a bool tensor (n_examples,): True for the examples whose coalitions
    were all evaluated (by ``max_exact`` or because ``n_samples >= 2**d - 2``) with
    ``l1_reg=False``, i.e. whose values are the exact Shapley values. (shap selects features
    with ``l1_reg`` even when it enumerates, so those values are not Shapley values.)

    shap samples with numpy's global RNG. A seed is drawn from ``random_state`` once per call;
    the global numpy state is saved, re-seeded with that seed before each example (so a row's
    result does not depend on its batch) and restored afterwards, also on error. Extras:
    ``n_model_calls``, ``n_rows`` (model rows) and ``n_samples`` (n_examples,).

    Unlike shap with a multi-row background, the removed value is our FeatureSpace's single
    baseline (a one-row background in shap's terms). Features whose input equals the baseline
    still take part in the game (shap would skip them): their value is 0 up to sampling error.

    References
    ----------
    .. [1] Lundberg & Lee, "A Unified Approach to Interpreting Model Predictions", NeurIPS 2017,
           https://arxiv.org/abs/1705.07874
    """

    requires: ClassVar[Capability] = Capability.FORWARD
    modalities: ClassVar[frozenset[Modality]] = frozenset({"tabular", "image", "text"})
    deterministic: ClassVar[bool] = False
    reference: ClassVar[str] = "Lundberg & Lee 2017, arXiv:1705.07874"
    _constraints: ClassVar[Mapping[str, Sequence[Constraint]]] = {
        "n_samples": [Interval(int, 1, None, closed="left"), Options({"auto"})],
        "l1_reg": [Satisfies(_valid_l1_reg, _L1_REG, invalid="num_features(0)")],
        "link": [Options({"identity", "logit"})],
        "baseline": BASELINE,
        "feature_groups": FEATURE_GROUPS,
        "granularity": [Options({"auto", "word", "token"})],
        "max_exact": [Interval(int, 0, None, closed="left")],
    }

    n_samples: int | str = "auto"
    l1_reg: bool | float | str = False
    link: str = "identity"
    baseline: Any = "auto"
    feature_groups: Any = None
    granularity: str = "auto"
    max_exact: int = 1024

    @classmethod
    def _test_params(cls) -> list[dict[str, Any]]:
        # Fewer than the 2**d - 2 coalitions for d >= 5 and max_exact=0, so shap samples and
        # seeds matter.
        return [{"n_samples": 24, "max_exact": 0},
                {"n_samples": 24, "l1_reg": "num_features(2)", "max_exact": 0}]

    def enumerates(self, n_features: int) -> bool:
        """Whether every coalition of an example with ``n_features`` features is evaluated
        (``2**n_features <= max_exact``, or ``n_samples`` reaches shap's ``2**d - 2`` cap)."""
        if n_features <= 1 or fits_exact(n_features, self.max_exact):
            return True
        return n_features <= 30 and self.samples(n_features) == 2**n_features - 2

    def samples(self, n_features: int) -> int:
        """Coalitions shap evaluates for ``n_features``: all ``2**d - 2`` when
        ``2**d <= max_exact``, else its "auto" rule and ``2**d - 2`` cap."""
        if fits_exact(n_features, self.max_exact):
            return max(int(2**n_features) - 2, 0)
        n = 2 * n_features + 2048 if self.n_samples == "auto" else int(self.n_samples)
        return max(min(n, 2**n_features - 2 if n_features <= 30 else 2**30), 0)

    def cost(self, features: tuple[FeatureSpace, ...], n_outputs: int, batch_size: int,
             row_bytes: int) -> Cost:
        """shap builds all of an example's coalitions at once: float64 data, mask matrix and
        regression copies, about 40 bytes per coalition and feature."""
        n = [self.samples(f.n_features) for f in features]
        held = max((k * max(f.n_features, 1) * 40 for k, f in zip(n, features, strict=True)),
                   default=0)
        by_exact = sum(k for k, f in zip(n, features, strict=True)
                       if fits_exact(f.n_features, self.max_exact))
        # name the parameter that set most of the rows
        param, value, fix = (("max_exact", self.max_exact, "keep it below 2**n_features, so "
                              "that such examples are sampled (n_samples) instead.")
                             if by_exact > sum(n) - by_exact else
                             ("n_samples", self.n_samples,
                              "shap's 'auto' (2 * n_features + 2048) is usually enough."))
        return Cost("KernelShap", param, value, sum(n) + 2 * len(features),
                    row_bytes + 8 * n_outputs, batch_size, held_bytes=held,
                    held="shap's coalition matrices", fix=fix)

    def _attribute(self, adapter: ModelAdapter, batch: Batch, features: tuple[FeatureSpace, ...],
                   target: ResolvedTarget, *, batch_size: int,
                   rng: torch.Generator) -> AttributionOutput:
        shap = _import_shap()
        seed = int_seed(rng)
        ends = [torch.stack([torch.zeros(f.n_features, dtype=torch.bool),
                             torch.ones(f.n_features, dtype=torch.bool)]) for f in features]
        end_scores, n_calls = score_masks(adapter, features, ends, batch_size=batch_size)
        n_rows = 2 * len(features)
        values, base, used = [], [], []
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
                n_calls += game.n_calls
                n_rows += game.n_rows
        finally:
            np.random.set_state(state)  # noqa: NPY002
        exact = [self.l1_reg is False and self.enumerates(f.n_features) for f in features]
        extras = {"n_model_calls": torch.tensor(n_calls), "n_rows": torch.tensor(n_rows),
                  "n_samples": torch.tensor(used),
                  "exact": torch.tensor(exact, dtype=torch.bool)}
        return AttributionOutput(values, base_values=torch.stack(base), extras=extras)

    def _explain_one(self, shap: Any, game: _Game, d: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Values (n_outputs, d) and base value (n_outputs,) of one example's game."""
        n_out = game.ends.shape[1]
        if d == 0:
            return torch.zeros(n_out, 0), torch.from_numpy(_link(self.link, game.ends[0]))
        explainer = shap.KernelExplainer(game, np.zeros((1, d)), link=self.link)
        nsamples = self.samples(d) if fits_exact(d, self.max_exact) else self.n_samples
        phi = explainer.shap_values(np.ones((1, d)), nsamples=nsamples,
                                    l1_reg=self.l1_reg, silent=True)  # (1, d, n_out)
        expected = np.asarray(explainer.expected_value, dtype=np.float64).reshape(n_out)
        values = torch.from_numpy(np.asarray(phi, dtype=np.float64).reshape(d, n_out).T.copy())
        return values.float(), torch.from_numpy(expected).float()

    def _check_link(self, ends: np.ndarray) -> None:
        if self.link == "logit" and not bool(((ends > 0) & (ends < 1)).all()):
            msg = (f"The 'link' parameter of KernelShap is 'logit', but the model's scores for "
                   f"the explained outputs are not all in (0, 1) (got {ends.ravel()[:4]!r}). "
                   "Use link='identity', or explain probabilities.")
            raise InvalidParameterError(msg, owner="KernelShap", parameter="link",
                                        value=self.link)


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
