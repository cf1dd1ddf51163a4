"""BEE: baseline exploration-exploitation (Barkan et al., AAAI 2025).

Path integration of gradients from a baseline drawn from one of several baseline families; per
example, several draws are integrated and the map the user's objective rates best is returned.
A :class:`~xai.BEEPolicy` (a contextual Thompson-sampling bandit fitted per objective) chooses
the families per example; without one, the draws go round the families in turn.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from .._capabilities import Capability, Modality
from .._objective import Objective, as_objective, is_objective
from .._registry import register_method
from .._validation import (
    NONE_OK,
    ArrayLike,
    Constraint,
    InstanceOf,
    Interval,
    Options,
    Satisfies,
    int_seed,
)
from ..adapters._base import Batch, ModelAdapter
from ..exceptions import InvalidParameterError
from ..explanation import ResolvedTarget
from ..features._base import FeatureSpace
from ._base import AttributionOutput, Method, example_generators
from ._bee_families import BUILTIN_FAMILIES, TEXT_ONLY, BaselineFamily, default_families
from ._bee_space import PathSpace, build_space
from ._budget import Cost

if TYPE_CHECKING:
    from ._bee_policy import BEEPolicy

__all__ = ["BEE", "Draw"]

_RULES = ("gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid")


@dataclasses.dataclass(frozen=True)
class Draw:
    """One scored path: the example, the family (index into the families) and the seed."""

    example: int
    family: int
    seed: int


def _valid_families(value: Any) -> bool:
    return (isinstance(value, Sequence) and not isinstance(value, str) and len(value) > 0
            and all(isinstance(f, str | BaselineFamily) for f in value))


def _is_policy(value: Any) -> bool:
    from ._bee_policy import BEEPolicy

    return isinstance(value, BEEPolicy)


@register_method("bee")
@dataclasses.dataclass(frozen=True, kw_only=True)
class BEE(Method):
    """Baseline exploration-exploitation: the best of several path-integrated maps, each from a
    baseline drawn from a family (zeros, uniform, Gaussian, blur, data rows, [PAD]/[MASK] for
    text), chosen per example by the objective the user cares about.

    Each draw integrates the gradient along the straight path from its baseline b to the input
    (or to a layer's activations a) with the IG quadrature; ``integrand="ig"`` gives
    ``(a - b) * mean_k grad f(a_k)`` (Integrated Gradients from b: the values sum to
    f(x) - f(b)), ``"grad_x_act"`` the reference code's ``mean_k grad f(a_k) * a_k``. All draws of
    all examples are scored by the objective in one call (the same seed for every draw, so a
    random metric perturbs each draw alike); per example the best draw wins. Constant families
    (zeros, pad, mask) are integrated once per example however often they are drawn.

    Parameters
    ----------
    objective : metric or callable, optional
        What "best" means: a metric object (``metrics.Infidelity()``) or a callable
        ``(explanation, model) -> per-example scores`` with ``direction``. Required unless a
        ``policy`` is given (then the maps of the policy's draws are averaged instead).
    n_baselines : int, default=8
        Draws per example (R).
    families : list of str or BaselineFamily, optional
        The families to draw from; default: zeros, uniform, gaussian, blur (tabular and images)
        or pad, mask, gaussian, blur (text), plus data when ``background`` is given. Custom
        families follow the :class:`xai.extend.BaselineFamily` protocol.
    background : array-like, DataFrame or list of str, optional
        Reference examples: the "data" family draws rows (texts) from it, and the uniform and
        Gaussian families take their ranges and moments from it.
    policy : BEEPolicy, optional
        A fitted policy: draws are Thompson-sampled per example from its posterior.
    direction : {"max", "min"}, optional
        Required with a callable objective.
    integrand : {"ig", "grad_x_act"}, default="ig"
    n_steps : int, default=16
        Quadrature nodes per path.
    integration : str, default="gausslegendre"
        Quadrature rule (IG's rules).
    layer : str or torch.nn.Module, optional
        Integrate over this layer's output (text: a (n, L, H) hidden state, summed over H per
        token; images: a (n, C, h, w) feature map, summed over channels and upsampled). Text
        models default to the word embeddings, other models to the inputs.

    Notes
    -----
    Extras per example: ``family`` (the winning draw's family), ``objective_value``,
    ``model_calls`` (forward+backward passes on the paths plus one forward per baseline; the
    objective's own calls are not counted), ``candidates`` (every scored draw: family, seed,
    objective value); plus ``n_paths``, ``convergence_delta`` (ig: sum of values minus
    (f(x) - f(b))), ``objective``, ``direction``, ``objective_seed`` (the seed the objective
    scored with: ``metric(exp, model, random_state=objective_seed)`` reproduces
    ``objective_value``), ``integrand``, ``layer``.
    The objective is evaluated on the explained inputs: reported scores are optimised for that
    metric, so hold out a different metric (or data) for evaluation.

    References
    ----------
    .. [1] Barkan, Elisha, Weill, Koenigstein, "BEE: Metric-Adapted Explanations via Baseline
           Exploration-Exploitation", AAAI 2025, https://arxiv.org/abs/2412.17512
    """

    requires: ClassVar[Capability] = Capability.GRADIENTS
    modalities: ClassVar[frozenset[Modality]] = frozenset({"tabular", "image", "text"})
    deterministic: ClassVar[bool] = False
    reference: ClassVar[str] = "Barkan et al. 2025, arXiv:2412.17512"
    _constraints: ClassVar[Mapping[str, Sequence[Constraint]]] = {
        "objective": [Satisfies(is_objective, "a metric or a callable (explanation, model) -> "
                                "per-example scores", invalid=42), NONE_OK],
        "n_baselines": [Interval(int, 1, None, closed="left")],
        "families": [Satisfies(_valid_families, "a non-empty list of family names or "
                               "BaselineFamily objects", invalid=[]), NONE_OK],
        "background": [ArrayLike(), NONE_OK],
        "policy": [Satisfies(_is_policy, "a BEEPolicy", invalid="policy"), NONE_OK],
        "direction": [Options({"max", "min"}), NONE_OK],
        "integrand": [Options({"ig", "grad_x_act"})],
        "n_steps": [Interval(int, 1, None, closed="left")],
        "integration": [Options(_RULES)],
        "layer": [InstanceOf((str, torch.nn.Module), "a layer name or a torch module"), NONE_OK],
    }

    objective: Any = None
    n_baselines: int = 8
    families: Sequence[Any] | None = None
    background: Any = None
    policy: Any = None
    direction: str | None = None
    integrand: str = "ig"
    n_steps: int = 16
    integration: str = "gausslegendre"
    layer: Any = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.objective is None and self.policy is None:
            msg = ("BEE needs an objective to choose among its draws (e.g. objective="
                   "metrics.Infidelity()), or a fitted policy (policy=xai.BEEPolicy.fit(...)).")
            raise InvalidParameterError(msg, owner="BEE", parameter="objective", value=None)
        if self.objective is not None:
            as_objective(self.objective, self.direction, owner="BEE")
        names = [f if isinstance(f, str) else f.name for f in self.families or ()]
        unknown = [f for f in self.families or () if isinstance(f, str)
                   and f not in BUILTIN_FAMILIES]
        if unknown:
            msg = (f"BEE's families {unknown} are unknown. Built in: {sorted(BUILTIN_FAMILIES)};"
                   " or pass an object with name, deterministic and sample(ctx, generator).")
            raise InvalidParameterError(msg, owner="BEE", parameter="families", value=unknown)
        if len(set(names)) != len(names):
            msg = f"BEE's families must have distinct names; got {names}."
            raise InvalidParameterError(msg, owner="BEE", parameter="families", value=names)
        if "data" in names and self.background is None:
            msg = ("BEE's 'data' family draws baselines from background rows, but background="
                   "None. Pass background=X_train (or drop 'data').")
            raise InvalidParameterError(msg, owner="BEE", parameter="background", value=None)
        if self.integration != "gausslegendre" and self.n_steps < 2:
            msg = (f"BEE's 'n_steps' must be at least 2 with integration="
                   f"{self.integration!r}. Got {self.n_steps} instead.")
            raise InvalidParameterError(msg, owner="BEE", parameter="n_steps", value=self.n_steps)

    @property
    def multiplies_by_inputs(self) -> bool:
        return self.integrand == "ig"

    @classmethod
    def requirements(cls, modality: str) -> Capability:
        return cls.requires | Capability.EMBEDDINGS if modality == "text" else cls.requires

    def cost(self, features: tuple[FeatureSpace, ...], n_outputs: int, batch_size: int,
             row_bytes: int) -> Cost:
        """n_baselines paths of n_steps forward and backward rows per example and output."""
        rows = len(features) * n_outputs * self.n_baselines * self.n_steps
        return Cost("BEE", "n_baselines", self.n_baselines, rows, 4 * row_bytes, batch_size,
                    holds="path inputs",
                    fix="lower n_baselines or n_steps, or explain fewer examples per call.")

    # -- pieces shared with BEEPolicy.fit -------------------------------------------------
    def resolved_families(self, space: PathSpace, tokenizer_has_mask: bool = True
                          ) -> list[BaselineFamily]:
        """The families as objects, checked against the path space."""
        if self.families is None:
            names = (self.policy.families if self.policy is not None else
                     default_families(space.kind, has_background=space.background is not None,
                                      has_mask="mask" in space.constants))
            chosen: list[Any] = list(names)
        else:
            chosen = list(self.families)
        fams = [BUILTIN_FAMILIES[f] if isinstance(f, str) else f for f in chosen]
        for f in fams:
            if f.name in TEXT_ONLY and f.name not in space.constants:
                why = ("the model is not a text model" if space.kind != "text"
                       else f"the tokenizer has no {f.name} token")
                msg = (f"BEE's family {f.name!r} replaces the words by a token, but {why}. "
                       "Use zeros, uniform, gaussian, blur or data.")
                raise InvalidParameterError(msg, owner="BEE", parameter="families", value=f.name)
        return fams

    def space(self, adapter: ModelAdapter, batch: Batch, features: tuple[FeatureSpace, ...]
              ) -> PathSpace:
        return build_space(adapter, batch, features, layer=self.layer, background=self.background)

    def integrate(self, space: PathSpace, families: Sequence[BaselineFamily],
                  draws: Sequence[Draw], target: ResolvedTarget, batch_size: int
                  ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """Feature values (o, n_features) of every draw, f(baseline) per (draw, output), and
        the element sums of the values per (draw, output)."""
        from captum.attr._utils.approximation_methods import approximation_parameters

        step_fn, alpha_fn = approximation_parameters(self.integration)
        weights = torch.tensor(step_fn(self.n_steps), dtype=torch.float32)
        alphas = torch.tensor(alpha_fn(self.n_steps), dtype=torch.float32)
        base = torch.stack([space.finish(d.example, families[d.family].sample(
            space.family_context(d.example), torch.Generator().manual_seed(d.seed)))
            for d in draws]).to(space.acts.dtype)  # (D, *S)
        rows = torch.tensor([d.example for d in draws], dtype=torch.long)
        idx = target.indices[rows]  # (D, o)
        n_steps, n_draws, shape = len(alphas), len(draws), (1,) * (space.acts.dim() - 1)
        out = torch.zeros(n_draws, idx.shape[1], *space.acts.shape[1:])
        for o in range(idx.shape[1]):
            for start in range(0, n_draws * n_steps, batch_size):
                flat = torch.arange(start, min(start + batch_size, n_draws * n_steps))
                d, k = flat // n_steps, flat % n_steps
                a, b = space.acts[rows[d]], base[d]
                points = (b + alphas[k].view(-1, *shape) * (a - b)).requires_grad_(True)
                with torch.enable_grad():
                    scores = space.forward(points, rows[d])
                    picked = scores.gather(1, idx[d, o:o + 1]).sum()
                    (grad,) = torch.autograd.grad(picked, points)
                term = grad * ((a - b) if self.integrand == "ig" else points.detach())
                out[:, o].index_add_(0, d, term * weights[k].view(-1, *shape))
        with torch.no_grad():
            base_scores = torch.cat([
                space.forward(base[s:s + batch_size], rows[s:s + batch_size]).detach().float()
                for s in range(0, n_draws, batch_size)]).gather(1, idx)
        values = [space.to_features(draw.example, out[j]) for j, draw in enumerate(draws)]
        return values, base_scores, out.flatten(2).sum(-1)

    def score(self, objective: Objective, adapter: ModelAdapter, batch: Batch,
              features: tuple[FeatureSpace, ...], target: ResolvedTarget,
              draws: Sequence[Draw], values: Sequence[torch.Tensor], *, batch_size: int,
              seed: int) -> torch.Tensor:
        """The objective of every draw's map, (D,), in one call (rows = the draws' examples)."""
        rows = [d.example for d in draws]
        cands = self._pack(AttributionOutput(list(values)), adapter, batch.take(rows),
                           tuple(features[i] for i in rows), target.take(rows))
        return objective(cands, adapter, batch_size=batch_size, seed=seed)

    # -- the method ------------------------------------------------------------------------
    def _attribute(self, adapter: ModelAdapter, batch: Batch, features: tuple[FeatureSpace, ...],
                   target: ResolvedTarget, *, batch_size: int,
                   rng: torch.Generator) -> AttributionOutput:
        policy: BEEPolicy | None = self.policy
        space = self.space(adapter, batch, features)
        families = self.resolved_families(space)
        objective = (None if self.objective is None
                     else as_objective(self.objective, self.direction, owner="BEE"))
        contexts = None
        if policy is not None:
            policy.check_usable(adapter, objective, [f.name for f in families])
            contexts = policy.contexts(adapter, batch, space, batch_size)
        gens = example_generators(rng, len(batch))
        draws: list[Draw] = []
        for i, gen in enumerate(gens):
            if contexts is None or policy is None:
                ks = _round_robin(families, self.n_baselines)
            else:
                ks = [policy.bandit.select(contexts[i], gen) for _ in range(self.n_baselines)]
            seen: set[int] = set()
            for k in ks:
                seed = int_seed(gen)
                if families[k].deterministic and k in seen:
                    continue  # a constant baseline: its path is already integrated
                seen.add(k)
                draws.append(Draw(i, k, seed))
        values, base_scores, sums = self.integrate(space, families, draws, target, batch_size)
        owner = [[j for j, d in enumerate(draws) if d.example == i] for i in range(len(batch))]
        if objective is not None:
            objective_seed = int_seed(rng)
            scores = self.score(objective, adapter, batch, features, target, draws, values,
                                batch_size=batch_size, seed=objective_seed)
            ranked = torch.nan_to_num(scores * objective.sign(), nan=-torch.inf)
            best = [mine[int(ranked[mine].argmax())] for mine in owner]  # first of ties
            chosen_values = [values[j] for j in best]
            chosen_base = base_scores[best]
            chosen_sums = sums[best]
            family_of = [families[draws[j].family].name for j in best]
            objective_value = scores[best].float()
        else:  # the policy's learned mixture: the average map of its draws
            scores = torch.full((len(draws),), float("nan"), dtype=torch.float64)
            chosen_values = [torch.stack([values[j] for j in mine]).mean(0) for mine in owner]
            chosen_base = torch.stack([base_scores[mine].mean(0) for mine in owner])
            chosen_sums = torch.stack([sums[mine].mean(0) for mine in owner])
            family_of = [collections.Counter(families[draws[j].family].name
                                             for j in mine).most_common(1)[0][0]
                         for mine in owner]
            objective_value = torch.full((len(batch),), float("nan"))
        n_paths = torch.tensor([len(mine) for mine in owner])
        extras: dict[str, Any] = {
            "family": family_of,
            "objective_value": objective_value,
            "model_calls": n_paths * (self.n_steps * target.n_outputs + 1),
            "candidates": [[{"family": families[draws[j].family].name, "seed": draws[j].seed,
                             "objective": float(scores[j])} for j in mine] for mine in owner],
            "n_paths": n_paths,
            "integrand": self.integrand,
            "layer": space.layer,
            "families": [f.name for f in families],
        }
        if objective is not None:
            extras.update(objective=objective.name, direction=objective.direction,
                          objective_seed=objective_seed)
        if self.integrand == "ig":
            extras["convergence_delta"] = chosen_sums - (target.explained_scores() - chosen_base)
        return AttributionOutput(chosen_values if space.kind == "text"
                                 else torch.stack(chosen_values),
                                 base_values=chosen_base, extras=extras)


def _round_robin(families: Sequence[BaselineFamily], n: int) -> list[int]:
    """``n`` draws going round the families in turn; a constant family takes part in the first
    round only (its later draws would repeat its path), unless every family is constant."""
    out = list(range(len(families)))[:n]
    again = [k for k, f in enumerate(families) if not f.deterministic]
    while len(out) < n and again:
        out.extend(again[: n - len(out)])
    return out
