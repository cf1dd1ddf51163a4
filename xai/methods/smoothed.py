"""Smoothing (SmoothGrad-style): any method averaged over Gaussian-noised copies of the input."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

import torch

from .._capabilities import Capability, Modality
from .._registry import METHODS, register_method
from .._validation import Constraint, InstanceOf, Interval, check_random_state, int_seed
from ..adapters._base import Batch, ModelAdapter
from ..exceptions import IncompatibleModelError, InvalidInputError
from ..explanation import ResolvedTarget
from ..features._base import FeatureSpace
from ._base import AttributionOutput, Method, example_generators, pad_stack
from ._budget import Cost, Moments, check_cost
from .integrated_gradients import IntegratedGradients, check_float_inputs

__all__ = ["Smoothed"]

_NOISE_CELLS = 2**20  # noise numbers drawn at a time


@register_method("smoothed")
@dataclasses.dataclass(frozen=True, kw_only=True)
class Smoothed(Method):
    """Smoothing wrapper: the mean of another method's values over noisy copies of the input.

    ``values(x) = 1/n_samples * sum_s method(x + eps_s)``, eps_s ~ N(0, noise^2 I) elementwise.
    With ``method`` a gradient this is SmoothGrad [1]_; with Integrated Gradients it is the
    "IG-SG" of Yeh et al. [2]_, whose Theorem 4.1 shows that smoothing with a kernel k can only
    lower max-sensitivity: SENS_MAX(Phi_k) <= E_{z ~ k}[SENS_MAX(Phi, z)]. A modifier, not a
    subclass, like captum's ``NoiseTunnel``: ``Smoothed(method=xai.IntegratedGradients())``.

    The noisy copies of all examples go to the inner method ``batch_size`` copies per call (one
    call when they fit), with the inner ``target`` fixed to the outputs resolved at the clean
    input (the explained class never changes with the noise), and their values are folded into
    running sums, so memory does not grow with ``n_samples``. The noise of each example is drawn
    from its own generator, seeded alike for every example (2^20 numbers per draw), so a row's
    values do not depend on its batch.

    Parameters
    ----------
    method : Method, default=IntegratedGradients()
        The configured method to smooth, e.g. ``IntegratedGradients(n_steps=16)`` or
        ``Occlusion()``. Its requirements, feature space (baseline, granularity) and
        ``multiplies_by_inputs`` convention carry over to the smoothed explanation.
    n_samples : int, default=20
        Noisy copies per example. Cost: n_samples times the inner method's cost.
    noise : float, default=0.1
        Standard deviation of the Gaussian noise, in input units (the SmoothGrad paper states it
        relative to the input range, x_max - x_min, and recommends 10-20 % of it). 0 gives the
        inner method's values.

    Notes
    -----
    Tensor (tabular, image) inputs get the noise on their elements; text models with an input
    embedding layer get it on the input word embeddings, scaled by the standard deviation of the
    embedding weights (``extras["embedding_noise_std"]``), one inner explanation per example and
    copy; other text models raise IncompatibleModelError. The class
    declares the requirements of the default inner method (GRADIENTS), which is what
    ``xai.compatible_methods`` lists; an instance checks its own inner method instead, so
    ``Smoothed(method=Occlusion())`` works on any tensor model.

    ``base_values`` is the inner method's base value averaged over the noisy copies (its base
    value at x for baselines that do not depend on the input). Per-example extras of the inner
    method are averaged over the copies and its counts (``n_*`` scalars) added up over its
    calls; ``extras["stderr"]`` is the Monte-Carlo standard error of the smoothed values (std
    over the copies / sqrt(n_samples)).

    References
    ----------
    .. [1] Smilkov, Thorat, Kim, Viegas, Wattenberg, "SmoothGrad: removing noise by adding
           noise", 2017, https://arxiv.org/abs/1706.03825
    .. [2] Yeh, Hsieh, Suggala, Inouye, Ravikumar, "On the (In)fidelity and Sensitivity of
           Explanations", NeurIPS 2019, https://arxiv.org/abs/1901.09392
    """

    requires: ClassVar[Capability] = IntegratedGradients.requires  # the default inner method's
    modalities: ClassVar[frozenset[Modality]] = frozenset({"tabular", "image", "text"})
    deterministic: ClassVar[bool] = False
    reference: ClassVar[str] = "Smilkov et al. 2017, arXiv:1706.03825"
    _constraints: ClassVar[Mapping[str, Sequence[Constraint]]] = {
        "method": [InstanceOf((Method,), "a configured Method instance, such as "
                                         "xai.IntegratedGradients(n_steps=16)")],
        "n_samples": [Interval(int, 1, None, closed="left")],
        "noise": [Interval(float, 0, None, closed="left")],
    }

    method: Method = IntegratedGradients()
    n_samples: int = 20
    noise: float = 0.1

    @classmethod
    def _test_params(cls) -> list[dict[str, Any]]:
        return [{"n_samples": 2, "method": IntegratedGradients(n_steps=4)}]

    @property
    def multiplies_by_inputs(self) -> bool:
        """The inner method's convention (recorded on the Explanation, read by the metrics)."""
        return self.method.multiplies_by_inputs

    @classmethod
    def check_supports(cls, adapter: ModelAdapter) -> None:
        """By name only the default inner method is reachable: check that configuration."""
        cls().check_compatible(adapter)

    def check_compatible(self, adapter: ModelAdapter) -> None:
        """Tensor modalities only, and the inner method must be able to explain the model."""
        works = METHODS.compatible(adapter)
        tail = f"Methods that work with this model: {', '.join(works) or 'none'}."
        text_ok = adapter.modality != "text" or Capability.EMBEDDINGS in adapter.capabilities
        if adapter.modality not in self.modalities or not text_ok:
            msg = (f"Method {self.name!r} adds Gaussian noise to tensor inputs or to the input "
                   f"embeddings of text models; {adapter!r} takes {adapter.modality!r} inputs "
                   f"without an embedding layer. {tail}")
            raise IncompatibleModelError(msg, method=self.name, compatible=works)
        try:
            self.method.check_compatible(adapter)
        except IncompatibleModelError as err:
            reason = str(err).split(" Methods that work with this model:")[0]
            msg = f"Method {self.name!r} cannot smooth {self.method.name!r} here: {reason} {tail}"
            raise IncompatibleModelError(msg, method=self.name, compatible=works) from err

    def feature_spaces(self, adapter: ModelAdapter, batch: Batch) -> tuple[FeatureSpace, ...]:
        """The inner method's feature spaces (its baseline decides how features are removed)."""
        return self.method.feature_spaces(adapter, batch)

    def noise_chunks(self, shape: Sequence[int], gen: torch.Generator,
                     scale: float | None = None) -> Iterator[torch.Tensor]:
        """The noise of one example, (copies, *shape) at a time, N(0, scale^2) elementwise
        (``scale`` defaults to ``noise``): all ``n_samples`` copies in one draw when they hold
        at most 2^20 numbers, else chunks of that size, drawn in order."""
        step = max(1, _NOISE_CELLS // max(math.prod(shape), 1))
        for start in range(0, self.n_samples, step):
            k = min(step, self.n_samples - start)
            yield torch.randn((k, *shape), generator=gen) * (self.noise if scale is None
                                                              else scale)

    def noise_for(self, shape: Sequence[int], gen: torch.Generator) -> torch.Tensor:
        """The noise added to one example: (n_samples, *shape), N(0, noise^2) elementwise."""
        return torch.cat(list(self.noise_chunks(tuple(shape), gen)))

    def draw_noise(self, n_examples: int, shape: Sequence[int],
                   random_state: int | torch.Generator | None = None) -> torch.Tensor:
        """The noise :meth:`explain` adds with the same ``random_state``, for ``n_examples``
        inputs of one-example ``shape``: (n_examples, n_samples, *shape)."""
        rng = check_random_state(random_state, owner=type(self).__name__)
        gens = example_generators(rng, n_examples)
        return torch.stack([self.noise_for(tuple(shape), g) for g in gens])

    def cost(self, features: tuple[FeatureSpace, ...], n_outputs: int, batch_size: int,
             row_bytes: int) -> Cost:
        """n_samples times the inner method's cost (at least one row per example and copy);
        the inner method's own budget is checked first."""
        inner = self.method.cost(features, n_outputs, batch_size, row_bytes)
        if inner is not None:
            check_cost(inner)
        rows = inner.rows if inner is not None else len(features)
        return Cost("Smoothed", "n_samples", self.n_samples, self.n_samples * rows,
                    inner.row_bytes if inner is not None else row_bytes, batch_size,
                    held_bytes=(inner.held_bytes if inner is not None else 0) + 4 * _NOISE_CELLS,
                    holds="noisy copies", held=inner.held if inner is not None else "noise",
                    fix="the standard error of the smoothing "
                    "(extras['stderr']) shrinks as 1/sqrt(n_samples).")

    def _attribute(self, adapter: ModelAdapter, batch: Batch, features: tuple[FeatureSpace, ...],
                   target: ResolvedTarget, *, batch_size: int,
                   rng: torch.Generator) -> AttributionOutput:
        if adapter.modality == "text":
            return self._attribute_text(adapter, batch, target, batch_size=batch_size, rng=rng)
        if len(batch.input_keys()) > 1 or batch.n_forward_args():
            msg = ("Smoothed re-explains noisy copies of one input tensor; it does not take "
                   "several input tensors or forward_args yet. Explain with the inner method "
                   "directly, or wrap the model in a function of one tensor.")
            raise InvalidInputError(msg, parameter="inputs", value=len(batch.input_keys()))
        check_float_inputs(batch.attributed(), "Smoothed", "adds Gaussian noise to")
        x = batch.inputs
        gens = example_generators(rng, x.shape[0])
        seed = int_seed(rng)
        acc = _Copies(x.shape[0])
        group: list[tuple[int, torch.Tensor]] = []  # (example, noisy copies) for one inner call
        for i, gen in enumerate(gens):
            for eps in self.noise_chunks(tuple(x.shape[1:]), gen):
                noisy = x[i] + eps.to(x.dtype)
                while noisy.shape[0]:
                    room = batch_size - sum(c.shape[0] for _, c in group)
                    group.append((i, noisy[:room]))
                    noisy = noisy[room:]
                    if room <= group[-1][1].shape[0]:
                        self._explain_group(adapter, group, target, batch_size, seed, acc)
                        group = []
        if group:
            self._explain_group(adapter, group, target, batch_size, seed, acc)
        values, stderr, base, extras = acc.result(self.n_samples)
        extras.update({"stderr": stderr, "n_inner_rows": torch.tensor(x.shape[0] * self.n_samples)})
        return AttributionOutput(values, base_values=base, extras=extras)

    def _explain_group(self, adapter: ModelAdapter, group: list[tuple[int, torch.Tensor]],
                       target: ResolvedTarget, batch_size: int, seed: int, acc: _Copies) -> None:
        """One inner call on at most ``batch_size`` noisy copies, each explaining the output
        resolved at its clean input."""
        owners = [i for i, c in group for _ in range(c.shape[0])]
        inner_target = ResolvedTarget(target.indices[owners],
                                      tuple(target.names[i] for i in owners))
        inner = self.method.explain(adapter, torch.cat([c for _, c in group]),
                                    target=inner_target, batch_size=batch_size,
                                    random_state=seed)
        acc.add(owners, inner)

    def _attribute_text(self, adapter: Any, batch: Batch, target: ResolvedTarget, *,
                        batch_size: int, rng: torch.Generator) -> AttributionOutput:
        """Noise on the input word embeddings: each example and copy is explained with a
        forward hook adding its noise to the embedding layer's output (for every row the inner
        method runs, so IG's baseline shares the copy's noise)."""
        layer = adapter.embedding_layer()
        scale = self.noise * float(layer.weight.detach().std())
        gens = example_generators(rng, len(batch))
        seed = int_seed(rng)
        values, stderr, base = [], [], []
        for i, gen in enumerate(gens):
            row = batch.take([i])
            shape = (int(row.tensors["attention_mask"].sum()), layer.weight.shape[1])
            acc = _Copies(1)
            for eps in self.noise_chunks(shape, gen, scale):
                for e in eps:
                    acc.add([0], self._explain_noisy(adapter, layer, row, target.take([i]), e,
                                                     batch_size, seed))
            v, se, b, _ = acc.result(self.n_samples)
            values.append(v[0])
            stderr.append(se[0])
            if b is not None:
                base.append(b[0])
        extras = {"stderr": pad_stack(stderr), "embedding_noise_std": torch.tensor(scale)}
        return AttributionOutput(values, base_values=torch.stack(base) if base else None,
                                 extras=extras)

    def _explain_noisy(self, adapter: Any, layer: torch.nn.Module, row: Batch,
                       target: ResolvedTarget, eps: torch.Tensor, batch_size: int,
                       seed: int) -> Any:
        # the inner method re-tokenizes the one text: no padding, so every row it runs has the
        # text's own length and the noise (length, hidden) broadcasts over them
        handle = layer.register_forward_hook(lambda m, i, out: out + eps.to(out.dtype))
        try:
            return self.method.explain(adapter, list(row.texts or ()), target=target,
                                       batch_size=batch_size, random_state=seed)
        finally:
            handle.remove()


class _Copies:
    """Running mean and spread, per example, of the inner explanations of its noisy copies."""

    def __init__(self, n: int) -> None:
        self.values = [Moments() for _ in range(n)]
        self.base = [Moments() for _ in range(n)]
        self.per_row: dict[str, list[Moments]] = {}
        self.dtypes: dict[str, torch.dtype] = {}
        self.scalars: dict[str, Any] = {}

    def add(self, owners: list[int], inner: Any) -> None:
        """Fold in one inner Explanation whose row r explains a copy of example owners[r]."""
        idx = torch.tensor(owners)
        for i in sorted(set(owners)):
            rows = idx == i
            self.values[i].add(inner.values[rows])
            if inner.base_values is not None:
                self.base[i].add(inner.base_values[rows])
            for k, v in inner.extras.items():
                if isinstance(v, torch.Tensor) and v.dim() and v.shape[0] == len(owners) \
                        and v.is_floating_point():
                    self.per_row.setdefault(k, [Moments() for _ in self.values])[i].add(v[rows])
                    self.dtypes[k] = v.dtype
        for k, v in inner.extras.items():
            if not isinstance(v, torch.Tensor) or v.dim() == 0:
                self.scalars[k] = _merge_scalar(k, self.scalars.get(k), v)

    def result(self, n_samples: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None,
                                              dict[str, Any]]:
        """Values and stderr (n, o, d), base values (n, o) or None, and the merged extras."""
        means = [m.result(torch.float32) for m in self.values]
        values = torch.stack([m for m, _ in means])
        stderr = torch.stack([se for _, se in means])
        base = (torch.stack([m.result(torch.float32)[0] for m in self.base])
                if self.base[0].count else None)
        extras = dict(self.scalars)
        for k, ms in self.per_row.items():
            if all(m.count == n_samples for m in ms):  # averaged over every copy
                extras[k] = torch.stack([m.result(self.dtypes[k])[0] for m in ms])
        return values, stderr, base, extras


def _merge_scalar(key: str, before: Any, value: Any) -> Any:
    """Scalar extras of successive inner calls: counts (``n_*``, not ``*_per_*``) add up,
    anything else keeps its first value."""
    if before is None:
        return value
    count = key.startswith("n_") and "_per_" not in key and isinstance(value, torch.Tensor) \
        and not value.is_floating_point()
    return before + value if count else before


