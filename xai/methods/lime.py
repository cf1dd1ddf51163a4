"""LIME: lime's ``LimeBase`` fitting a weighted linear model to our FeatureSpace's masking game."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any, ClassVar

import numpy as np
import torch

from .._capabilities import Capability, Modality
from .._registry import register_method
from .._validation import BASELINE, NONE_OK, Constraint, Interval, Options, int_seed, numpy_rng
from ..adapters._base import Batch, ModelAdapter
from ..exceptions import MissingDependencyError
from ..explanation import ResolvedTarget
from ..features._base import FeatureSpace
from ..features.groups import FEATURE_GROUPS
from ._base import AttributionOutput, Method, example_generators
from ._budget import Cost
from ._perturb import row_pieces, stream_scores

__all__ = ["Lime"]

_CHUNK_CELLS = 2**20  # mask cells drawn at a time
_SELECTION = ("none", "auto", "forward_selection", "highest_weights", "lasso_path")


@register_method("lime")
@dataclasses.dataclass(frozen=True, kw_only=True)
class Lime(Method):
    """LIME: coefficients of a locally weighted linear model over feature presence.

    For each example, ``n_samples`` binary masks are drawn the way ``LimeTextExplainer`` draws
    them: the first row keeps every feature; every other row removes ``k`` features, ``k``
    uniform in ``1..d`` (lime's ``randint(1, d + 1)``; ``k = d`` removes everything), chosen
    uniformly at random. The masks are scored through our FeatureSpace (``batch_size`` rows per
    model call), weighted by ``sqrt(exp(-D**2 / kernel_width**2))`` with ``D`` the cosine
    distance to the all-kept row times 100 (lime text), and handed to
    ``lime.lime_base.LimeBase.explain_instance_with_data`` once per explained output. The values
    are the fitted coefficients, so ``values[j]`` is the score change the local model assigns to
    keeping feature ``j``.

    Parameters
    ----------
    n_samples : int, default=1000
        Masks per example, the all-kept row included (lime's ``num_samples`` default).
    kernel_width : float, default=25.0
        Width of the exponential kernel on cosine distance x 100 (``LimeTextExplainer``'s
        default; lime tabular uses ``0.75 * sqrt(n_columns)`` on another distance).
    alpha : float, default=1.0
        Ridge penalty of the local model. 1.0 lets lime build its default ``Ridge(alpha=1)``;
        any other value passes ``model_regressor=Ridge(alpha=alpha)``. Small values recover the
        exact coefficients of an additive game.
    feature_selection : {"none", "auto", "forward_selection", "highest_weights", "lasso_path"}, \
default="none"
        lime's feature selection. "none" fits every feature (lime's own default is "auto").
    n_selected : int or None, default=None
        At most this many features get nonzero values (lime's ``num_features``); None = all.
        Has an effect only with a ``feature_selection`` other than "none".
    baseline : "auto", "zeros", "mean", number, array, or "pad"/"mask"/"unk"/"delete" for text
        How a feature is removed. "auto" is zeros for tensors and "pad" for text.
    feature_groups : None, dict of str to columns, or array-like of int, default=None
        Features switched on and off together, each group one feature of the explanation
        (captum's ``feature_mask``): a dict of group name to columns (tabular; unlisted columns
        stay single features), or an int group id per element, of one example's shape (shared)
        or one row per example. For text, one id per word (or token) of each text.
    granularity : {"auto", "word", "token"}, default="auto"
        Text only ("auto" = "word").

    Notes
    -----
    Extras: ``score`` (R^2 of the weighted local fit) and ``intercept``, both float64
    (n_examples, n_outputs), plus ``n_model_calls`` and ``n_rows``. The masks of an example come
    from a numpy Generator derived from ``random_state`` (the same for every row of a batch, so
    a row's result does not depend on its batch); :meth:`sample_masks` reproduces them.

    References
    ----------
    .. [1] Ribeiro, Singh & Guestrin, ""Why Should I Trust You?": Explaining the Predictions of
           Any Classifier", KDD 2016, https://arxiv.org/abs/1602.04938
    """

    requires: ClassVar[Capability] = Capability.FORWARD
    modalities: ClassVar[frozenset[Modality]] = frozenset({"tabular", "image", "text"})
    deterministic: ClassVar[bool] = False
    reference: ClassVar[str] = "Ribeiro et al. 2016, arXiv:1602.04938"
    _constraints: ClassVar[Mapping[str, Sequence[Constraint]]] = {
        "n_samples": [Interval(int, 2, None, closed="left")],
        "kernel_width": [Interval(float, 0, None, closed="neither")],
        "alpha": [Interval(float, 0, None, closed="left")],
        "feature_selection": [Options(_SELECTION)],
        "n_selected": [Interval(int, 1, None, closed="left"), NONE_OK],
        "baseline": BASELINE,
        "feature_groups": FEATURE_GROUPS,
        "granularity": [Options({"auto", "word", "token"})],
    }

    n_samples: int = 1000
    kernel_width: float = 25.0
    alpha: float = 1.0
    feature_selection: str = "none"
    n_selected: int | None = None
    baseline: Any = "auto"
    feature_groups: Any = None
    granularity: str = "auto"

    @classmethod
    def _test_params(cls) -> list[dict[str, Any]]:
        return [{"n_samples": 64}, {"n_samples": 64, "feature_selection": "auto", "n_selected": 2}]

    def sample_masks(self, n_features: int, gen: torch.Generator) -> np.ndarray:
        """Keep-masks (n_samples, n_features) of bool, drawn as ``LimeTextExplainer`` does."""
        npr = numpy_rng(gen)
        if n_features == 0:
            return np.ones((self.n_samples, 0), dtype=bool)
        n_removed = npr.integers(1, n_features + 1, self.n_samples - 1)
        out = np.ones((self.n_samples, n_features), dtype=bool)
        step = max(1, _CHUNK_CELLS // n_features)  # the ranks take 24 bytes a cell: chunk them
        for start in range(0, self.n_samples - 1, step):
            stop = min(start + step, self.n_samples - 1)
            rank = npr.random((stop - start, n_features)).argsort(1).argsort(1)
            out[1 + start:1 + stop] = rank >= n_removed[start:stop, None]  # kept features
        return out

    def cost(self, features: tuple[FeatureSpace, ...], n_outputs: int, batch_size: int,
             row_bytes: int) -> Cost:
        """n_samples model rows per example; lime fits on all of an example's masks at once
        (float64 data and its copies: about 48 bytes per sample and feature)."""
        d_max = max((f.n_features for f in features), default=0)
        return Cost("Lime", "n_samples", self.n_samples, self.n_samples * len(features),
                    row_bytes + 4 * n_outputs, batch_size,
                    held_bytes=2 * self.n_samples * max(d_max, 1) * 48,
                    held="sample matrices and the local fit's copies",
                    fix="LIME's local fit rarely changes beyond a few thousand samples.")

    def _attribute(self, adapter: ModelAdapter, batch: Batch, features: tuple[FeatureSpace, ...],
                   target: ResolvedTarget, *, batch_size: int,
                   rng: torch.Generator) -> AttributionOutput:
        lime_base = _import_lime_base()
        gens = example_generators(rng, len(features))
        masks: dict[int, np.ndarray] = {}  # built when the scorer reaches an example
        scores: dict[int, list[torch.Tensor]] = {}
        fits: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

        def rows(i: int, start: int, stop: int) -> torch.Tensor:
            if i not in masks:
                masks[i] = self.sample_masks(features[i].n_features, gens[i])
            return torch.from_numpy(masks[i][start:stop])

        def take(i: int, s: torch.Tensor) -> None:
            scores.setdefault(i, []).append(s)
            if sum(p.shape[0] for p in scores[i]) < self.n_samples:
                return
            labels = torch.cat(scores.pop(i))[:, target.indices[i]].double().numpy()
            explainer = lime_base.LimeBase(partial(_kernel, kernel_width=self.kernel_width),
                                           random_state=int_seed(gens[i]))
            fits.append(self._fit(explainer, masks.pop(i).astype(np.float64), labels))

        pieces = row_pieces([self.n_samples] * len(features), rows, batch_size)
        n_calls = stream_scores(adapter, features, pieces, take, batch_size=batch_size)
        extras = {"score": torch.stack([f[1] for f in fits]),
                  "intercept": torch.stack([f[2] for f in fits]),
                  "n_model_calls": torch.tensor(n_calls),
                  "n_rows": torch.tensor(self.n_samples * len(features))}
        return AttributionOutput([f[0] for f in fits], extras=extras)

    def _fit(self, explainer: Any, data: np.ndarray,
             labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """lime's local model per output: coefficients (n_out, d), R^2 and intercept (n_out,)."""
        n_out, d = labels.shape[1], data.shape[1]
        distances = cosine_distances_to_first(data) * 100
        coefs = np.zeros((n_out, d))
        r2, intercept = np.zeros(n_out), np.zeros(n_out)
        for j in range(n_out if d else 0):
            b, pairs, score, _ = explainer.explain_instance_with_data(
                data, labels, distances, j, num_features=self.n_selected or d,
                feature_selection=self.feature_selection, model_regressor=self._regressor())
            for feature, coef in pairs:
                coefs[j, int(feature)] = coef
            r2[j], intercept[j] = score, b
        return torch.from_numpy(coefs).float(), torch.from_numpy(r2), torch.from_numpy(intercept)

    def _regressor(self) -> Any:
        if self.alpha == 1.0:
            return None  # lime's default, Ridge(alpha=1, fit_intercept=True)
        from sklearn.linear_model import Ridge

        return Ridge(alpha=self.alpha, fit_intercept=True)


def cosine_distances_to_first(data: np.ndarray) -> np.ndarray:
    """Cosine distance of each row to row 0 (an all-zero row is at distance 1), as lime text."""
    from sklearn.metrics.pairwise import pairwise_distances

    return np.asarray(pairwise_distances(data, data[:1], metric="cosine")).ravel()


def _kernel(d: np.ndarray, kernel_width: float) -> np.ndarray:
    """lime text's kernel: sqrt(exp(-d**2 / kernel_width**2))."""
    return np.asarray(np.sqrt(np.exp(-(d**2) / kernel_width**2)))


def _import_lime_base() -> Any:
    try:
        from lime import lime_base
    except ImportError as err:
        msg = 'lime requires lime. Install it with: pip install "posthoc-xai[lime]".'
        raise MissingDependencyError(msg) from err
    return lime_base
