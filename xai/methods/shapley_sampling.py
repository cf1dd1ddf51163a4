"""Shapley values by permutation sampling with antithetic pairs (Castro et al. 2009), exact
enumeration of every coalition for examples with few features."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Protocol

import torch

from .._capabilities import Capability, Modality
from .._registry import register_method
from .._validation import BASELINE, NONE_OK, Constraint, InstanceOf, Interval, Options
from ..adapters._base import Batch, ModelAdapter
from ..exceptions import InvalidParameterError
from ..explanation import ResolvedTarget
from ..features._base import FeatureSpace
from ..features.groups import FEATURE_GROUPS
from ._adjusted import AdjustedDesign
from ._base import AttributionOutput, Method, example_generators, pad_stack
from ._budget import Cost, Moments
from ._coalitions import GameResult, _all_coalitions, _exact_from_values, fits_exact
from ._generation import GameTarget, attribute_game
from ._permutations import Draws, chain_credits, check_pairs, ranks
from ._perturb import row_pieces, stream_scores
from ._regression import KernelDesign, LeverageDesign
from ._svarm import StratifiedDesign
from .textgenshap import Levels, TextGenSHAP

__all__ = ["ShapleySampling"]


@register_method("shapley_sampling")
@dataclasses.dataclass(frozen=True, kw_only=True)
class ShapleySampling(Method):
    """Shapley values estimated by sampling feature orderings, or exact for few features.

    An example with ``d`` features whose ``2**d`` coalitions fit in ``max_exact`` gets its exact
    Shapley values: every coalition is scored once (``2**d`` model rows) and the values are the
    Shapley formula's weighted sum. The others are sampled: for each sampled permutation,
    features are switched on one at a time from the baseline (everything removed) to the input,
    and each feature is credited with the change it causes.
    Every permutation's credits telescope to f(x) - f(baseline), so efficiency
    (``values.sum(-1) == f(x) - base_values``) holds exactly for any number of permutations.
    With ``antithetic=True`` each permutation is paired with its reverse, which cancels much of
    the variance for near-additive models.

    Parameters
    ----------
    n_permutations : int, default=50
        Permutations per sampled example (pairs count twice). Cost: n_permutations * (d - 1) + 2
        model rows, built and scored ``batch_size`` at a time (see :meth:`cost`).
    antithetic : bool, default=True
        Pair each permutation with its reverse (n_permutations must then be even).
    baseline : "auto", "zeros", "mean", number, array, or "pad"/"mask"/"unk"/"delete" for text
    feature_groups : None, dict of str to columns, or array-like of int, default=None
        Features switched on and off together, each group one feature of the explanation
        (captum's ``feature_mask``): a dict of group name to columns (tabular; unlisted columns
        stay single features), or an int group id per element, of one example's shape (shared)
        or one row per example. For text, one id per word (or token) of each text.
    granularity : str or list of str, default="auto"
        "auto", "word" or "token" for classifiers; for language models "auto" (documents),
        "document", "sentence" or "word" units of the prompt, or a coarse-to-fine list such as
        ``["document", "sentence", "word"]`` for hierarchical explanations.
    max_exact : int, default=1024
        Enumerate all ``2**d`` coalitions of an example with ``d`` features (exact Shapley
        values, ``2**d`` model rows) when ``2**d <= max_exact``; sample ``n_permutations``
        permutations otherwise. The default makes d <= 10 exact; 0 always samples. Decided per
        example, so texts of different lengths can be exact for some rows and sampled for others.
    estimator : {"permutation", "kernel", "leverage", "adjusted", "stratified", "auto"}, \
default="permutation"
        How a sampled example is estimated: permutations (antithetic pairs), paired KernelSHAP
        with the exact constrained regression (Covert & Lee 2021), Leverage SHAP (paired,
        without replacement, counts per size from leverage scores; Musco & Witter 2025),
        regression-adjusted Leverage SHAP ("adjusted": Leverage SHAP's rows; a kernel ridge
        surrogate with closed-form Shapley values is fitted to them and Leverage SHAP estimates
        only the residual game; after Witter et al. 2025), or Stratified SVARM (strata by
        coalition size, no marginal contributions; Kolpaczki et al. 2024, made efficient by
        spreading the gap evenly). All are exactly efficient; the paired regressions are exact
        on games with interactions of order <= 2 once their pairs span the space. "auto"
        chooses per example from d and the rows it may use: exact enumeration when 2**d fits,
        antithetic permutations below 2 d + 2 rows (the fewest that span a regression), the
        adjusted estimator from 256 to 1024 rows (the lowest error at equal rows in our
        benchmarks; its solve costs about 0.2 s per example at 2048 rows) and Leverage SHAP
        otherwise; ``extras["estimator"]`` records the choice.
    budget : int, optional
        Model rows per example, the empty and full coalitions included, for every estimator:
        permutations get floor((budget - 2) / (d - 1)) (even when antithetic), the regressions
        budget - 2 rounded down to even rows; an example with 2**d <= budget is enumerated
        exactly. None: the rows of ``n_permutations`` permutations, 2 + n_permutations (d - 1).
        With ``tolerance``, the rows of one round.
    tolerance : float, optional
        Draw independent rounds (of ``budget`` rows, or ``n_permutations`` permutations) until
        every standard error of the example is at most ``tolerance``, as R's kernelshap and
        permshap do; the rounds are averaged. ``extras["converged"]`` says per example whether
        it got there within ``max_budget``.
    max_budget : int, default=20000
        Model rows per example at most when ``tolerance`` is set (a round that would pass it is
        not drawn).

    Notes
    -----
    ``extras["exact"]`` is a bool tensor (n_examples,): True for the examples whose coalitions
    were all enumerated. ``extras["stderr"]`` (n_examples, n_outputs, n_features) is the standard
    error of each value over independent draws (antithetic pairs averaged first), 0 for exact
    examples; ``extras["n_model_calls"]`` counts the model calls and ``extras["n_rows"]``
    (n_examples,) the game rows of each example, the empty and full coalitions included
    (at most ``budget``, or ``max_budget`` with a tolerance). ``extras["estimator"]`` names the
    estimator (a list, one per example, when "auto" chose differently for different examples).
    An exact example consumes no random draws, so a sampled example's values do not depend on
    ``max_exact`` or on the other examples.

    **Language models** (``xai.explain(lm, prompt, method="shapley_sampling")``): the method
    plays the ``value="log_prob"`` game of :class:`~xai.methods.TextGenSHAP` with the same
    ``n_permutations``, ``antithetic``, ``granularity`` and ``max_exact`` (and that method's
    defaults for the rest), so the values equal ``method="textgenshap"``'s with the same seed.
    Players are deleted from the prompt, so ``baseline`` must be "auto" or "delete";
    ``feature_groups`` does not apply (the players are set by ``granularity``; setting it warns
    with IgnoredParameterWarning). ``estimator``, ``budget`` and ``tolerance`` apply to the
    prompt's players as to features. Use ``textgenshap`` for its other parameters (the answer
    game, hierarchical thresholds, chat templates).

    References
    ----------
    .. [1] Castro, Gomez, Tejada, "Polynomial calculation of the Shapley value based on
           sampling", Computers & Operations Research 36(5), 2009.
    .. [2] Strumbelj & Kononenko, "Explaining prediction models and individual predictions
           with feature contributions", KAIS 2014.
    .. [3] Enouen et al., "TextGenSHAP: Scalable Post-Hoc Explanations in Text Generation with
           Long Documents", Findings of ACL 2024, arXiv:2312.01279.
    """

    requires: ClassVar[Capability] = Capability.FORWARD
    modalities: ClassVar[frozenset[Modality]] = frozenset({"tabular", "image", "text",
                                                           "generation", "graph"})
    deterministic: ClassVar[bool] = False
    reference: ClassVar[str] = "Castro et al. 2009, doi:10.1016/j.cor.2008.04.004"
    _constraints: ClassVar[Mapping[str, Sequence[Constraint]]] = {
        "n_permutations": [Interval(int, 1, None, closed="left")],
        "antithetic": [InstanceOf((bool,), "a bool")],
        "baseline": BASELINE,
        "feature_groups": FEATURE_GROUPS,
        "granularity": [Levels(extra=("auto", "token"))],
        "max_exact": [Interval(int, 0, None, closed="left")],
        "estimator": [Options({"permutation", "kernel", "leverage", "adjusted", "stratified",
                               "auto"})],
        "budget": [Interval(int, 1, None, closed="left"), NONE_OK],
        "tolerance": [Interval(float, 0, None, closed="neither"), NONE_OK],
        "max_budget": [Interval(int, 1, None, closed="left")],
    }

    n_permutations: int = 50
    antithetic: bool = True
    baseline: Any = "auto"
    feature_groups: Any = None
    granularity: str | tuple[str, ...] = "auto"
    max_exact: int = 1024
    estimator: str = "permutation"
    budget: int | None = None
    tolerance: float | None = None
    max_budget: int = 20_000

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.granularity, str):
            object.__setattr__(self, "granularity", tuple(self.granularity))
        check_pairs(self.n_permutations, self.antithetic, "ShapleySampling")

    @classmethod
    def requirements(cls, modality: str) -> Capability:
        return Capability.GENERATION if modality == "generation" else cls.requires

    def inapplicable(self, adapter: ModelAdapter) -> dict[str, str]:
        out = super().inapplicable(adapter)
        if adapter.modality == "generation" and self.feature_groups is not None:
            out["feature_groups"] = ("the players of a language model are units of the prompt, "
                                     "chosen by 'granularity'")
        return out

    def enumerates(self, n_features: int) -> bool:
        """Whether an example with ``n_features`` features is enumerated exactly
        (``2**n_features <= max_exact``)."""
        return fits_exact(n_features, max(self.max_exact, self.budget or 0))

    def rows_for(self, n_features: int) -> int:
        """Model rows of a sampled example with ``n_features`` features."""
        if self.budget is not None:
            return self.budget
        return 2 + self.n_permutations * max(n_features - 1, 0)

    def n_permutations_for(self, n_features: int) -> int:
        """Permutations of a sampled example: ``n_permutations``, or as many as ``budget``
        pays for (at least one antithetic pair)."""
        if self.budget is None:
            return self.n_permutations
        n = (self.budget - 2) // max(n_features - 1, 1)
        step = 2 if self.antithetic else 1
        if n < step:
            least = 2 + step * max(n_features - 1, 1)
            msg = (f"The 'budget' parameter of ShapleySampling pays for no whole permutation "
                   f"{'pair ' if step == 2 else ''}of {n_features} features: at least {least} "
                   f"rows are needed. Got {self.budget} instead. Raise the budget"
                   f"{', or set antithetic=False' if step == 2 else ''}.")
            raise InvalidParameterError(msg, owner="ShapleySampling", parameter="budget",
                                        value=self.budget)
        return n - n % step

    # -- language models: the log_prob game of TextGenSHAP -----------------------------------
    def _game(self, adapter: ModelAdapter) -> TextGenSHAP | None:
        """The generation game played on a language model; None for every other model."""
        if adapter.modality != "generation":
            return None
        if not (isinstance(self.baseline, str) and self.baseline in ("auto", "delete")):
            msg = (f"For language models ShapleySampling removes players by deleting their text, "
                   f"so 'baseline' must be 'auto' or 'delete'. Got {self.baseline!r} instead.")
            raise InvalidParameterError(msg, owner="ShapleySampling", parameter="baseline",
                                        value=self.baseline)
        if self.granularity == "token":
            msg = ("For language models the players are 'document', 'sentence' or 'word' units "
                   "of the prompt; granularity='token' is not available. Use 'word'.")
            raise InvalidParameterError(msg, owner="ShapleySampling", parameter="granularity",
                                        value=self.granularity)
        granularity = "document" if self.granularity == "auto" else self.granularity
        return TextGenSHAP(n_permutations=self.n_permutations, antithetic=self.antithetic,
                           granularity=granularity, value="log_prob", max_exact=self.max_exact)

    def _prepare(self, adapter: ModelAdapter, inputs: Any) -> Batch:
        game = self._game(adapter)
        return super()._prepare(adapter, inputs) if game is None else game._prepare(adapter,
                                                                                    inputs)

    def _resolve_target(self, adapter: ModelAdapter, batch: Batch, target: Any, *,
                        batch_size: int) -> ResolvedTarget:
        game = self._game(adapter)
        if game is None:
            return super()._resolve_target(adapter, batch, target, batch_size=batch_size)
        return game._resolve_target(adapter, batch, target, batch_size=batch_size)

    def feature_spaces(self, adapter: ModelAdapter, batch: Batch) -> tuple[FeatureSpace, ...]:
        game = self._game(adapter)
        return super().feature_spaces(adapter, batch) if game is None else game.feature_spaces(
            adapter, batch)

    @classmethod
    def _test_params(cls) -> list[dict[str, Any]]:
        # max_exact=0: the conformance fixtures have few features, which would be exact (and
        # seed-independent) under the default.
        return [{"n_permutations": 4, "max_exact": 0},
                {"n_permutations": 3, "antithetic": False, "max_exact": 0},
                {"estimator": "leverage", "budget": 24, "max_exact": 0},
                {"estimator": "kernel", "n_permutations": 8, "max_exact": 0}]

    def permutations(self, n_features: int, gen: torch.Generator) -> torch.Tensor:
        """The sampled orderings, (n_permutations, n_features), as :meth:`explain` draws them."""
        return Draws(n_features, self.n_permutations, self.antithetic, gen).perms(
            0, self.n_permutations)

    def cost(self, features: tuple[FeatureSpace, ...], n_outputs: int, batch_size: int,
             row_bytes: int) -> Cost | None:
        """2**d model rows per exact example, n_permutations * (d - 1) + 2 per sampled one,
        ``batch_size`` at a time; an exact example holds its 2**d scores until it is solved."""
        d_max = max((f.n_features for f in features), default=0)
        exact = [2**f.n_features for f in features if self.enumerates(f.n_features)]
        sampled = sum(self.rows_for(f.n_features) for f in features
                      if not self.enumerates(f.n_features))
        held = max(exact, default=0) * 8 * n_outputs
        # name the parameter that set most of the rows
        param, value, fix = (("max_exact", self.max_exact, "keep it below 2**n_features, so "
                              "that such examples are sampled (n_permutations) instead.")
                             if sum(exact) > sampled else
                             ("n_permutations", self.n_permutations,
                              "extras['stderr'] shrinks as 1/sqrt(n_permutations), so a few "
                              "hundred are usually enough; or explain fewer examples or "
                              "coarser features."))
        return Cost("ShapleySampling", param, value, sum(exact) + sampled,
                    row_bytes + d_max + 4 * n_outputs, batch_size, held_bytes=held,
                    held="the scores of every coalition of an exact example", fix=fix)

    def _attribute(self, adapter: ModelAdapter, batch: Batch, features: tuple[FeatureSpace, ...],
                   target: ResolvedTarget, *, batch_size: int,
                   rng: torch.Generator) -> AttributionOutput:
        game = self._game(adapter)
        if game is not None:
            return self._attribute_prompt(game, target, batch_size=batch_size, rng=rng)
        gens = example_generators(rng, len(features))
        rounds: list[list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]] = [
            [] for _ in features]
        rows = [0] * len(features)
        exact = [self.enumerates(f.n_features) for f in features]
        todo = list(range(len(features)))
        n_calls = 0
        while todo:  # one round: every example still short of the tolerance draws again
            chains = {i: self._chain(features[i].n_features, target.indices[i], gens[i])
                      for i in todo}
            order = list(chains)
            streamed = [chains[i] for i in order]
            pieces = row_pieces([c.n_rows for c in streamed], _masks_of(streamed), batch_size)
            n_calls += stream_scores(adapter, [features[i] for i in order], pieces,
                                     _takes_of(streamed), batch_size=batch_size)
            for i in order:
                rounds[i].append(chains[i].result())
                rows[i] += chains[i].n_rows
            todo = [i for i in order if not exact[i] and not self._settled(rounds[i], rows[i])]
        results = [_combine(r) for r in rounds]
        extras: dict[str, Any] = {
            "stderr": pad_stack([r[1] for r in results]),
            "exact": torch.tensor(exact, dtype=torch.bool),
            "n_model_calls": torch.tensor(n_calls),
            "n_rows": torch.tensor(rows),
            "estimator": _names([self.estimator_for(f.n_features) for f in features])}
        if self.tolerance is not None:
            extras["converged"] = torch.tensor(
                [e or _worst(r[1]) <= self.tolerance for e, r in zip(exact, results, strict=True)],
                dtype=torch.bool)
            extras["n_rounds"] = torch.tensor([len(r) for r in rounds])
        return AttributionOutput([r[0] for r in results],
                                 base_values=torch.stack([r[2] for r in results]), extras=extras)

    def _attribute_prompt(self, game: TextGenSHAP, target: ResolvedTarget, *, batch_size: int,
                          rng: torch.Generator) -> AttributionOutput:
        """A language model: TextGenSHAP's log_prob game, its players' values estimated by
        this method's estimator (permutations alone reproduce ``method="textgenshap"``)."""
        assert isinstance(target, GameTarget)  # made by TextGenSHAP._resolve_target
        if self.estimator == "permutation" and self.budget is None and self.tolerance is None:
            return attribute_game(game, target, rng, batch_size)
        played: list[GameResult] = []

        def solver(value: Callable[[torch.Tensor], torch.Tensor], n_players: int, *,
                   rng: torch.Generator, batch_size: int) -> GameResult:
            played.append(self._solve_game(value, n_players, rng=rng, batch_size=batch_size))
            return played[-1]

        out = attribute_game(game, target, rng, batch_size, solver=solver)
        last = played[-1]
        d = int(last.values.shape[0])
        extras = {**out.extras, "n_rows": torch.tensor([sum(r.n_evaluations for r in played)]),
                  "estimator": self.estimator_for(d)}
        if self.tolerance is not None:
            extras["converged"] = torch.tensor([last.exact or _worst(last.stderr)
                                                <= self.tolerance])
        return dataclasses.replace(out, extras=extras)

    def _settled(self, rounds: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
                 rows: int) -> bool:
        """Whether an example stops drawing: no tolerance (one round), every stderr of the
        combined rounds within it, or another round would pass ``max_budget``."""
        if self.tolerance is None:
            return True
        if _worst(_combine(rounds)[1]) <= self.tolerance:
            return True
        per_round = rows // len(rounds)
        return rows + per_round > self.max_budget

    def estimator_for(self, n_features: int) -> str:
        """The estimator an example with ``n_features`` features gets: "exact" when it is
        enumerated, else ``estimator`` ("auto" resolved: antithetic permutations below
        2 d + 2 rows, regression-adjusted Leverage SHAP for 256 to 1024 rows, Leverage SHAP
        otherwise)."""
        if self.enumerates(n_features):
            return "exact"
        if self.estimator != "auto":
            return self.estimator
        rows = self.rows_for(n_features)
        if rows < 2 * n_features + 2:
            return "permutation"
        return "adjusted" if _ADJUSTED_ROWS[0] <= rows <= _ADJUSTED_ROWS[1] else "leverage"

    def _chain(self, d: int, outputs: torch.Tensor | slice, gen: torch.Generator
               ) -> _Chain | _Exact | _Regression:
        """One example's streamed game: exact, permutations or a regression design."""
        name = self.estimator_for(d)
        if name == "exact":
            return _Exact(d, outputs)
        if name == "permutation":
            return _Chain(Draws(d, self.n_permutations_for(d), self.antithetic, gen), outputs)
        design = _DESIGNS[name](d, self.rows_for(d), gen, owner="ShapleySampling")
        return _Regression(design, outputs)

    def _solve_game(self, value: Callable[[torch.Tensor], torch.Tensor], n_players: int, *,
                    rng: torch.Generator, batch_size: int) -> GameResult:
        """A language model's game (one level of players), played by the same streamed chains
        and rounds as a feature game: ``value(keep (m, D)) -> (m, A)`` scores the rows."""
        rounds: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        rows = 0
        while True:
            chain = self._chain(n_players, slice(None), rng)
            for start in range(0, chain.n_rows, batch_size):
                keep = chain.masks(start, min(start + batch_size, chain.n_rows))
                chain.take(torch.as_tensor(value(keep)).reshape(keep.shape[0], -1))
            rounds.append(chain.result())
            rows += chain.n_rows
            if chain.exact or self._settled(rounds, rows):
                break
        values, stderr, empty = _combine(rounds)
        return GameResult(values.T, stderr.T, empty, empty + values.sum(-1), rows,
                          bool(chain.exact))


class _Design(Protocol):
    """Coalitions drawn up front (``rows`` (R, D) bool, the empty and the full one first) and
    the estimator that turns their scores (R, A) into values and stderr, both (D, A)."""

    rows: torch.Tensor

    def solve(self, scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...


#: Rows per example for which "auto" takes the regression-adjusted estimator: from 256 it beat
#: Leverage SHAP on every measured game; its kernel solve grows as rows**3 (0.45 s at 2048).
_ADJUSTED_ROWS = (256, 1024)  # its ridge solve grows like rows^3: ~0.08 s at 1024, ~0.2 s at 2048

_DESIGNS: dict[str, Callable[..., _Design]] = {
    "kernel": KernelDesign, "leverage": LeverageDesign, "stratified": StratifiedDesign,
    "adjusted": AdjustedDesign}


def _names(chosen: list[str]) -> str | list[str]:
    """The estimator of every example, one name when they agree ("exact" examples aside)."""
    sampled = sorted({c for c in chosen if c != "exact"})
    if len(sampled) <= 1:
        return sampled[0] if sampled else "exact"
    return chosen


class _Regression:
    """One example's regression game: all rows are designed up front, scored in row order, and
    solved once the last is in."""

    exact = False

    def __init__(self, design: _Design, outputs: torch.Tensor | slice) -> None:
        self.design, self.outputs = design, outputs
        self.n_rows = int(design.rows.shape[0])
        self.buffer: list[torch.Tensor] = []
        self.solved: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def masks(self, start: int, stop: int) -> torch.Tensor:
        return self.design.rows[start:stop]

    def take(self, scores: torch.Tensor) -> None:
        self.buffer.append(scores[:, self.outputs])
        if sum(b.shape[0] for b in self.buffer) < self.n_rows:
            return
        v = torch.cat(self.buffer)
        self.buffer = []
        phi, stderr = self.design.solve(v)
        self.solved = (phi.T.to(v.dtype), stderr.T.to(v.dtype), v[0])

    def result(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        assert self.solved is not None
        return self.solved


class _Exact:
    """One example's exact game, streamed: the keep-masks of all 2**d coalitions out in the
    order of :func:`~xai.methods._coalitions._all_coalitions`, scores in, and solved (the shared
    enumeration of :func:`~xai.methods._coalitions.exact_shapley`) once all are in."""

    exact = True

    def __init__(self, d: int, outputs: torch.Tensor | slice) -> None:
        self.d, self.outputs = d, outputs
        self.n_rows = 2**d
        self.n_taken = 0
        self.buffer: list[torch.Tensor] = []
        self.solved: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def masks(self, start: int, stop: int) -> torch.Tensor:
        """Keep-mask rows ``start:stop``."""
        return _all_coalitions(self.d, start, stop)

    def take(self, scores: torch.Tensor) -> None:
        """Newly scored rows (in row order); solve when the last is in."""
        self.buffer.append(scores[:, self.outputs])
        self.n_taken += scores.shape[0]
        if self.n_taken < self.n_rows:
            return
        v = torch.cat(self.buffer)
        self.buffer = []
        res = _exact_from_values(v.double(), self.d)
        self.solved = (res.values.T.to(v.dtype), res.stderr.T.to(v.dtype), v[0])

    def result(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Values and stderr (0) (n_out, d), and f(baseline) (n_out,)."""
        assert self.solved is not None
        return self.solved


class _Chain:
    """One example's permutation game, streamed: keep-masks out in row order, credits in.

    Rows: the empty and the full coalition, then for each permutation its d - 1 proper prefixes
    (k = 1..d-1). Scored rows are credited as soon as whole permutations (antithetic pairs) are
    in, and folded into running moments, so memory does not grow with ``n_permutations``.
    """

    exact = False

    def __init__(self, draws: Draws, outputs: torch.Tensor | slice) -> None:
        self.draws, self.outputs = draws, outputs
        self.step = max(draws.d - 1, 0)  # rows per permutation
        self.n_rows = 2 + draws.n * self.step
        self.ends: torch.Tensor | None = None  # scores of the empty and full coalitions
        self.buffer: list[torch.Tensor] = []
        self.done = 0  # permutations credited
        self.moments = Moments()

    def masks(self, start: int, stop: int) -> torch.Tensor:
        """Keep-mask rows ``start:stop``."""
        d = self.draws.d
        rows = torch.arange(start, stop)
        out = (rows == 1).unsqueeze(1).expand(-1, d).clone()  # row 0 empty, row 1 full
        mid = rows[rows >= 2] - 2
        if mid.numel():
            p, k = mid // self.step, mid % self.step + 1
            first = int(p[0])
            rank = ranks(self.draws.perms(first, int(p[-1]) + 1))
            out[rows >= 2] = rank[p - first] < k.unsqueeze(1)  # feature kept if among first k
        return out

    def take(self, scores: torch.Tensor) -> None:
        """Credit newly scored rows (in row order)."""
        self.buffer.append(scores[:, self.outputs])
        if self.ends is None:  # the first two rows (they may come one at a time)
            head = torch.cat(self.buffer)
            if head.shape[0] < 2:
                return
            self.ends, self.buffer = head[:2], [head[2:]]
        if self.step == 0:  # d <= 1: no prefixes to score (see result)
            return
        n_new = sum(b.shape[0] for b in self.buffer) // self.step
        n_new -= n_new % (2 if self.draws.antithetic else 1)
        if n_new == 0:
            return
        buf = torch.cat(self.buffer)
        used = n_new * self.step
        self.buffer = [buf[used:]]
        perms = self.draws.perms(self.done, self.done + n_new)
        middle = buf[:used].reshape(n_new, self.step, -1)  # (P, d - 1, n_out)
        self.moments.add(chain_credits(perms, self.ends[0], middle, self.ends[1],
                                       self.draws.antithetic))
        self.done += n_new
        self.draws.release(self.done)

    def result(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Values and stderr (n_out, d), and f(baseline) (n_out,)."""
        assert self.ends is not None
        if self.step == 0:  # d <= 1: each permutation credits f(full) - f(empty) to the feature
            gain = (self.ends[1] - self.ends[0]).unsqueeze(1)[:, :self.draws.d]
            draws = self.draws.n // (2 if self.draws.antithetic else 1)
            return gain, torch.full_like(gain, 0.0 if draws > 1 else math.nan), self.ends[0]
        mean, stderr = self.moments.result(self.ends.dtype)
        return mean.T, stderr.T, self.ends[0]


def _masks_of(chains: Sequence[_Chain | _Exact | _Regression]
              ) -> Callable[[int, int, int], torch.Tensor]:
    return lambda k, start, stop: chains[k].masks(start, stop)


def _takes_of(chains: Sequence[_Chain | _Exact | _Regression]
              ) -> Callable[[int, torch.Tensor], None]:
    return lambda k, scores: chains[k].take(scores)


def _worst(stderr: torch.Tensor) -> float:
    """The largest standard error (NaN, from a single draw, counts as not precise)."""
    return float(torch.nan_to_num(stderr, nan=math.inf).max()) if stderr.numel() else 0.0


def _combine(rounds: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Independent rounds of equal size: the mean of their values, stderr sqrt(sum se^2) / R."""
    if len(rounds) == 1:
        return rounds[0]
    values = torch.stack([r[0] for r in rounds]).mean(0)
    stderr = torch.stack([r[1] ** 2 for r in rounds]).sum(0).sqrt() / len(rounds)
    return values, stderr, rounds[0][2]
