"""``BEEPolicy``: BEE's contextual bandit fitted for one model and one objective.

Fitting plays rounds: an example of the training data, its context (the model's penultimate
features, standardised and, above 32 dimensions, randomly projected), a Thompson-sampled family,
one draw of it integrated and scored by the objective; the reward is +1 with probability equal to
the score's rank among all scores seen so far (the reference code's rule), and the family's
Laplace posterior is updated. Rounds are played ``round_batch`` at a time (the families of a
mini-batch are chosen from the posterior at its start, then the updates are applied in order),
so the model and the objective run batched.

A policy saves as ``bee_policy.json`` (settings, fingerprints, fit summary) and
``bee_policy.safetensors`` (posterior and context transform) in a folder; no pickle.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch

from .._objective import Objective, as_objective
from .._validation import Interval, check_param, fmt_value, int_seed
from ..adapters._base import Batch, ModelAdapter
from ..exceptions import InvalidInputError, InvalidParameterError
from ._bee_bandit import LaplaceThompson, rank_reward
from ._bee_space import PathSpace, model_contexts

__all__ = ["BEEPolicy"]

META, TENSORS, FORMAT = "bee_policy.json", "bee_policy.safetensors", 1
_MAX_CONTEXT = 32


def model_fingerprint(adapter: ModelAdapter) -> str:
    """sha256 over the adapter and model classes and, for torch models, every parameter."""
    h = hashlib.sha256(f"{type(adapter).__name__}/{type(adapter.model).__name__}".encode())
    model = adapter.model
    if isinstance(model, torch.nn.Module):
        for name, t in model.state_dict().items():
            h.update(f"{name}{tuple(t.shape)}{t.dtype}".encode())
            h.update(t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def objective_fingerprint(objective: Objective) -> str:
    """The objective's name with its parameters (a metric's ``get_params``)."""
    fn = objective.fn
    params = fn.get_params() if hasattr(fn, "get_params") else {}
    shown = ", ".join(f"{k}={v!r}" for k, v in sorted(params.items()))
    return f"{objective.name}({shown})/{objective.direction}"


@dataclasses.dataclass
class BEEPolicy:
    """A fitted BEE bandit: per family, a Laplace posterior over logistic reward weights.

    Make one with :meth:`fit`; pass it as ``xai.explain(..., method="bee", policy=policy)``.

    Attributes
    ----------
    families : tuple of str
        The arms, in order.
    bandit : LaplaceThompson
        Posterior means and precisions, (n_families, context_dim).
    context_mean, context_std, projection : torch.Tensor
        The context transform: ``[1, ((z - mean) / std) @ projection / sqrt(dim)]``.
    context_source : {"penultimate", "inputs"}
    model : str
        Fingerprint of the model the policy was fitted for.
    objective : str
        The objective's name, parameters and direction.
    settings : dict
        BEE's parameters during the fit (n_steps, integrand, integration, layer).
    summary : dict
        rounds, reward rate, how often each family was played, model calls, seconds.
    """

    families: tuple[str, ...]
    bandit: LaplaceThompson
    context_mean: torch.Tensor
    context_std: torch.Tensor
    projection: torch.Tensor
    context_source: str
    model: str
    objective: str
    settings: dict[str, Any]
    summary: dict[str, Any] = dataclasses.field(default_factory=dict)
    history: dict[str, torch.Tensor] = dataclasses.field(default_factory=dict)

    # -- fitting ---------------------------------------------------------------------------
    @classmethod
    def fit(cls, model: Any, inputs: Any, *, objective: Any, direction: str | None = None,
            rounds: int = 500, families: Sequence[Any] | None = None, background: Any = None,
            n_steps: int = 16, integrand: str = "ig", integration: str = "gausslegendre",
            layer: Any = None, target: Any = None, round_batch: int = 32,
            batch_size: int | Literal["auto"] = "auto", random_state: Any = None) -> BEEPolicy:
        """Fit the bandit by playing ``rounds`` rounds on examples of ``inputs``.

        Parameters
        ----------
        model : the model (any form :func:`xai.explain` takes)
        inputs : training examples (cycled through in a seeded random order)
        objective, direction : as for BEE
        rounds : int, default=500
        families, background, n_steps, integrand, integration, layer : as for BEE
        target : the explained output (default: the predicted class)
        round_batch : int, default=32
            Rounds played per batched model and objective call.
        """
        from .bee import BEE, Draw

        check_param("BEEPolicy.fit", "rounds", rounds, [Interval(int, 1, None, closed="left")])
        check_param("BEEPolicy.fit", "round_batch", round_batch,
                    [Interval(int, 1, None, closed="left")])
        if objective is None:
            msg = ("BEEPolicy.fit needs the objective the policy learns to serve, e.g. "
                   "objective=metrics.FaithfulnessCorrelation().")
            raise InvalidParameterError(msg, owner="BEEPolicy.fit", parameter="objective",
                                        value=None)
        bee = BEE(objective=objective, direction=direction, families=families,
                  background=background, n_steps=n_steps, integrand=integrand,
                  integration=integration, layer=layer)
        adapter, bs, rng = bee._setup(model, batch_size, random_state)
        obj = as_objective(objective, direction, owner="BEEPolicy.fit")
        start = time.perf_counter()
        batch = bee._prepare(adapter, inputs)
        with adapter.session():
            tgt = bee._resolve_target(adapter, batch, target, batch_size=bs)
            features = bee.feature_spaces(adapter, batch)
            space = bee.space(adapter, batch, features)
            fams = bee.resolved_families(space)
            raw, source = model_contexts(adapter, batch, space, bs)
            mean, std, proj = _transform(raw, rng)
            policy = cls(tuple(f.name for f in fams), LaplaceThompson(len(fams), proj.shape[1] + 1),
                         mean, std, proj, source, model_fingerprint(adapter),
                         objective_fingerprint(obj),
                         {"n_steps": n_steps, "integrand": integrand,
                          "integration": integration, "layer": space.layer})
            ctx = policy._apply(raw)
            order = torch.cat([torch.randperm(len(batch), generator=rng)
                               for _ in range(-(-rounds // len(batch)))])[:rounds]
            arms, rewards, values = [], [], []
            history: list[float] = []
            calls = 0
            for s in range(0, rounds, round_batch):
                picks = order[s:s + round_batch].tolist()
                draws = [Draw(i, policy.bandit.select(ctx[i], rng), int_seed(rng))
                         for i in picks]
                vals, _, _ = bee.integrate(space, fams, draws, tgt, bs)
                calls += len(draws) * (n_steps * tgt.n_outputs + 1)
                scores = bee.score(obj, adapter, batch, features, tgt, draws, vals,
                                   batch_size=bs, seed=int_seed(rng))
                for d, v in zip(draws, scores.tolist(), strict=True):
                    arms.append(d.family)
                    values.append(v)
                    if v != v:  # NaN: no evidence either way
                        rewards.append(0)
                        continue
                    y = rank_reward(v, history, obj.sign(), rng)
                    history.append(v)
                    policy.bandit.update(d.family, ctx[d.example], y)
                    rewards.append(y)
        played = torch.tensor(arms)
        policy.history = {"arm": played, "reward": torch.tensor(rewards),
                          "objective": torch.tensor(values, dtype=torch.float64),
                          "example": order.clone()}
        policy.summary = {
            "rounds": rounds, "n_examples": len(batch),
            "reward_rate": float((torch.tensor(rewards) > 0).float().mean()),
            "played": {f: int((played == k).sum()) for k, f in enumerate(policy.families)},
            "model_calls": calls, "seconds": round(time.perf_counter() - start, 3),
        }
        return policy

    # -- use -------------------------------------------------------------------------------
    def _apply(self, raw: torch.Tensor) -> torch.Tensor:
        z = ((raw.double() - self.context_mean) / self.context_std) @ self.projection
        z = z / max(self.projection.shape[1], 1) ** 0.5
        return torch.cat([torch.ones(z.shape[0], 1, dtype=z.dtype), z], dim=1)

    def contexts(self, adapter: ModelAdapter, batch: Batch, space: PathSpace, batch_size: int
                 ) -> torch.Tensor:
        """Bandit contexts (n, d) of the examples of ``batch``."""
        raw, _ = model_contexts(adapter, batch, space, batch_size)
        return self._apply(raw)

    def preferred(self, contexts: torch.Tensor) -> list[str]:
        """Per context, the family with the highest posterior-mean reward."""
        return [self.families[int(self.bandit.expected(c).argmax())] for c in contexts]

    def check_usable(self, adapter: ModelAdapter, objective: Objective | None,
                     families: Sequence[str]) -> None:
        """Refuse use with another model, objective or families (InvalidParameterError)."""
        mine = model_fingerprint(adapter)
        if mine != self.model:
            msg = (f"This BEEPolicy was fitted for another model (fingerprint {self.model}; the "
                   f"explained model's is {mine}). Fit a policy for this model with "
                   "xai.BEEPolicy.fit(model, X_train, objective=...).")
            raise InvalidParameterError(msg, owner="BEE", parameter="policy", value=self.model)
        if objective is not None and objective_fingerprint(objective) != self.objective:
            msg = (f"This BEEPolicy was fitted for the objective {self.objective}, not "
                   f"{objective_fingerprint(objective)}. Pass that objective, leave objective="
                   "None to use the learned mixture, or fit a policy for this objective.")
            raise InvalidParameterError(msg, owner="BEE", parameter="policy",
                                        value=self.objective)
        if tuple(families) != self.families:
            msg = (f"This BEEPolicy chooses among the families {list(self.families)}, not "
                   f"{list(families)}. Leave families=None to use the policy's.")
            raise InvalidParameterError(msg, owner="BEE", parameter="families",
                                        value=list(families))

    # -- files -----------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write ``path/bee_policy.json`` and ``path/bee_policy.safetensors``."""
        from safetensors.torch import save_file

        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {"format": FORMAT, "kind": "BEEPolicy", "families": list(self.families),
                "context_source": self.context_source, "model": self.model,
                "objective": self.objective, "settings": self.settings,
                "summary": self.summary}
        (folder / META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        tensors = {"means": self.bandit.means, "precisions": self.bandit.precisions,
                   "context_mean": self.context_mean, "context_std": self.context_std,
                   "projection": self.projection,
                   **{f"history.{k}": v for k, v in self.history.items()}}
        save_file({k: v.contiguous().clone() for k, v in tensors.items()},
                  str(folder / TENSORS))

    @classmethod
    def load(cls, path: str | Path) -> BEEPolicy:
        """Read a policy written by :meth:`save`."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        folder = Path(path)
        try:
            meta = json.loads((folder / META).read_text(encoding="utf-8"))
            t = load_file(str(folder / TENSORS))
        except (OSError, json.JSONDecodeError, ValueError, SafetensorError) as err:
            msg = (f"Cannot read a BEEPolicy from {str(path)!r} ({err}). Pass the folder "
                   f"written by policy.save(path), holding {META} and {TENSORS}.")
            raise InvalidInputError(msg, parameter="path", value=str(path)) from err
        if meta.get("kind") != "BEEPolicy" or meta.get("format") != FORMAT:
            msg = (f"{str(folder / META)!r} is not a BEEPolicy file of format {FORMAT} (kind "
                   f"{fmt_value(meta.get('kind'))}, format {fmt_value(meta.get('format'))}).")
            raise InvalidInputError(msg, parameter="path", value=str(path))
        return cls(tuple(meta["families"]),
                   LaplaceThompson.from_tensors(t["means"], t["precisions"]),
                   t["context_mean"], t["context_std"], t["projection"],
                   meta["context_source"], meta["model"], meta["objective"], meta["settings"],
                   meta.get("summary", {}),
                   {k.removeprefix("history."): v for k, v in t.items()
                    if k.startswith("history.")})

    def __repr__(self) -> str:
        return (f"BEEPolicy(families={list(self.families)}, objective={self.objective!r}, "
                f"rounds={self.summary.get('rounds')}, context={self.context_source})")


def _transform(raw: torch.Tensor, rng: torch.Generator
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Standardisation of the raw contexts and a random projection above 32 dimensions."""
    x = raw.double()
    mean = x.mean(0)
    std = x.std(0) if x.shape[0] > 1 else torch.ones_like(mean)
    std = torch.where(std > 1e-8, std, torch.ones_like(std))
    d = x.shape[1]
    if d <= _MAX_CONTEXT:
        proj = torch.eye(d, dtype=torch.float64)
    else:
        proj = torch.randn(d, _MAX_CONTEXT, generator=rng, dtype=torch.float64) / _MAX_CONTEXT ** 0.5
    return mean, std, proj
