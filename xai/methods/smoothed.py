"""Smoothing (SmoothGrad-style): any method averaged over Gaussian-noised copies of the input."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch

from .._capabilities import Capability, Modality
from .._registry import register_method
from .._validation import Constraint, InstanceOf, Interval, check_random_state, int_seed
from ..adapters._base import Batch, ModelAdapter
from ..exceptions import IncompatibleModelError
from ..explanation import ResolvedTarget
from ..features._base import FeatureSpace
from ._base import AttributionOutput, Method, example_generators, pad_stack
from .integrated_gradients import IntegratedGradients

__all__ = ["Smoothed"]


@register_method("smoothed")
@dataclasses.dataclass(frozen=True, kw_only=True)
class Smoothed(Method):
    """Smoothing wrapper: the mean of another method's values over noisy copies of the input.

    ``values(x) = 1/n_samples * sum_s method(x + eps_s)``, eps_s ~ N(0, noise^2 I) elementwise.
    With ``method`` a gradient this is SmoothGrad [1]_; with Integrated Gradients it is the
    "IG-SG" of Yeh et al. [2]_, whose Theorem 4.1 shows that smoothing with a kernel k can only
    lower max-sensitivity: SENS_MAX(Phi_k) <= E_{z ~ k}[SENS_MAX(Phi, z)]. A modifier, not a
    subclass, like captum's ``NoiseTunnel``: ``Smoothed(method=xai.IntegratedGradients())``.

    All ``n_samples`` noisy copies of all examples are explained in one call of the inner method,
    with the inner ``target`` fixed to the outputs resolved at the clean input (the explained
    class never changes with the noise). The noise of each example is drawn from its own
    generator, seeded alike for every example, so a row's values do not depend on its batch.

    Parameters
    ----------
    method : Method, default=IntegratedGradients()
        The configured method to smooth, e.g. ``IntegratedGradients(n_steps=16)`` or
        ``Occlusion()``. Its requirements, feature space (baseline, granularity) and
        ``multiply_by_inputs`` convention carry over to the smoothed explanation.
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
    method are averaged over the copies; ``extras["stderr"]`` is the Monte-Carlo standard error
    of the smoothed values (std over the copies / sqrt(n_samples)).

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
    def multiply_by_inputs(self) -> bool:
        """The inner method's convention (read by the Explanation and the metrics)."""
        return bool(getattr(self.method, "multiply_by_inputs", self.method.multiply_by_inputs_))

    @classmethod
    def check_supports(cls, adapter: ModelAdapter) -> None:
        """By name only the default inner method is reachable: check that configuration."""
        cls().check_compatible(adapter)

    def check_compatible(self, adapter: ModelAdapter) -> None:
        """Tensor modalities only, and the inner method must be able to explain the model."""
        from .._explain import compatible_methods

        works = compatible_methods(adapter)
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

    def noise_for(self, shape: Sequence[int], gen: torch.Generator) -> torch.Tensor:
        """The noise added to one example: (n_samples, *shape), N(0, noise^2) elementwise."""
        return torch.randn((self.n_samples, *shape), generator=gen) * self.noise

    def draw_noise(self, n_examples: int, shape: Sequence[int],
                   random_state: int | torch.Generator | None = None) -> torch.Tensor:
        """The noise :meth:`explain` adds with the same ``random_state``, for ``n_examples``
        inputs of one-example ``shape``: (n_examples, n_samples, *shape)."""
        rng = check_random_state(random_state, owner=type(self).__name__)
        return self._draw_noise(n_examples, shape, rng)

    def _draw_noise(self, n: int, shape: Sequence[int], rng: torch.Generator) -> torch.Tensor:
        gens = example_generators(rng, n)
        return torch.stack([self.noise_for(tuple(shape), g) for g in gens])

    def _attribute(self, adapter: ModelAdapter, batch: Batch, features: tuple[FeatureSpace, ...],
                   target: ResolvedTarget, *, batch_size: int,
                   rng: torch.Generator) -> AttributionOutput:
        if adapter.modality == "text":
            return self._attribute_text(adapter, batch, target, batch_size=batch_size, rng=rng)
        x = batch.inputs
        n, s = x.shape[0], self.n_samples
        eps = self._draw_noise(n, tuple(x.shape[1:]), rng).to(x.dtype)
        noisy = (x.unsqueeze(1) + eps).reshape(n * s, *x.shape[1:])
        inner_target = ResolvedTarget(target.indices.repeat_interleave(s, dim=0),
                                      tuple(nm for nm in target.names for _ in range(s)))
        inner = self.method.explain(adapter, noisy, target=inner_target, batch_size=batch_size,
                                    random_state=int_seed(rng))
        per_copy = inner.values.reshape(n, s, *inner.values.shape[1:])  # (n, s, o, d)
        values = per_copy.mean(1)
        stderr = per_copy.std(1) / math.sqrt(s) if s > 1 else torch.full_like(values, math.nan)
        base = None if inner.base_values is None else \
            inner.base_values.reshape(n, s, -1).mean(1)
        extras = {k: _average_copies(v, n, s) for k, v in inner.extras.items()}
        extras = {k: v for k, v in extras.items() if v is not None}
        extras.update({"stderr": stderr, "n_inner_rows": torch.tensor(n * s)})
        return AttributionOutput(values, base_values=base, extras=extras)


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
            length = int(row.tensors["attention_mask"].sum())
            eps = torch.randn((self.n_samples, length, layer.weight.shape[1]), generator=gen)
            copies = [self._explain_noisy(adapter, layer, row, target.take([i]), e * scale,
                                          batch_size, seed) for e in eps]
            per_copy = torch.stack([c.values[0] for c in copies])  # (s, o, d)
            values.append(per_copy.mean(0))
            stderr.append(per_copy.std(0) / math.sqrt(self.n_samples) if self.n_samples > 1
                          else torch.full_like(per_copy[0], math.nan))
            if copies[0].base_values is not None:
                base.append(torch.stack([c.base_values[0] for c in copies]).mean(0))
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




def _average_copies(value: Any, n: int, s: int) -> Any:
    """A per-row extra of the inner explanation averaged over each example's copies; scalars
    are kept; anything else (not per row) is dropped (None)."""
    if not isinstance(value, torch.Tensor):
        return value
    if value.dim() == 0:
        return value
    if value.shape[0] == n * s and value.is_floating_point():
        return value.reshape(n, s, *value.shape[1:]).mean(1)
    return None
