"""Baseline families of BEE: seeded samplers of the baseline a path starts from.

A family is anything with a ``name``, a ``deterministic`` flag (True when every draw is the same
baseline, so BEE computes its path once per example) and ``sample(ctx, generator)`` returning
one baseline shaped like ``ctx.acts``. :class:`FamilyContext` gives a sampler what it may need:
the example's activations, reference statistics, the background's activations and, for text,
the activations of the example with its words replaced by [PAD] or [MASK].

Built in (the reference code's five families, adapted per modality; see docs/methods/bee.md):

========  ===========================================  ============================================
family    tabular and images                           text (embeddings or a hidden layer)
========  ===========================================  ============================================
zeros     0                                            0 at every word position
pad/mask  (text only)                                  the words replaced by [PAD] / [MASK]
uniform   U[lo, hi] per element (background range;     U[lo, hi] per hidden unit (range of the
          U[0, 1) without background, as the code)     embedding table, else of the background)
gaussian  N(mean, std^2) per element (background;      [PAD]'s activations + std * N(0, 1)
          N(0, 1) without, the code's noised input)
blur      images: Gaussian blur, sigma ~ U{3..50}      smoothing along the sentence,
          (the code); tabular: mean + l (x - mean),    sigma ~ U{1..4}
          l ~ U[0, 1) (x shrunk toward the mean)
data      a random background row                      a random background sentence, aligned
========  ===========================================  ============================================
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import torch

from ..exceptions import InvalidParameterError

__all__ = ["BUILTIN_FAMILIES", "BaselineFamily", "FamilyContext", "Stats"]


@dataclasses.dataclass(frozen=True)
class Stats:
    """Reference statistics, each broadcastable to one example's activations."""

    mean: torch.Tensor
    std: torch.Tensor
    lo: torch.Tensor
    hi: torch.Tensor

    @classmethod
    def of(cls, values: torch.Tensor) -> Stats:
        """Statistics over the first axis of ``values`` (rows of a background, tokens, ...)."""
        v = values.double()
        std = v.std(dim=0) if v.shape[0] > 1 else torch.ones_like(v[0])
        return cls(v.mean(dim=0).float(), std.float(), v.min(dim=0).values.float(),
                   v.max(dim=0).values.float())

    @classmethod
    def unit(cls, like: torch.Tensor) -> Stats:
        """Without a reference: mean 0, std 1, range [0, 1) (the reference code's noise)."""
        return cls(torch.zeros_like(like), torch.ones_like(like), torch.zeros_like(like),
                   torch.ones_like(like))


@dataclasses.dataclass(frozen=True)
class FamilyContext:
    """What a sampler sees for one example.

    Attributes
    ----------
    kind : {"tabular", "image", "text"}
    acts : torch.Tensor
        The example's activations (its input, or the layer's output), shape S.
    stats : Stats
        Reference statistics (per element for tabular and images, per hidden unit for text).
    background : torch.Tensor or None
        Activations of the background examples, shape (m, *S) (text: aligned to the example's
        positions), or None when no background was given.
    constants : Mapping[str, torch.Tensor]
        Text: ``"pad"`` and ``"mask"``, the activations with every word replaced by that token.
    """

    kind: str
    acts: torch.Tensor
    stats: Stats
    background: torch.Tensor | None = None
    constants: Mapping[str, torch.Tensor] = dataclasses.field(default_factory=dict)


@runtime_checkable
class BaselineFamily(Protocol):
    """A baseline sampler: ``sample(ctx, generator)`` returns one baseline shaped ``ctx.acts``."""

    @property
    def name(self) -> str:
        """The family's name (in ``extras["family"]`` and a policy's arms)."""

    @property
    def deterministic(self) -> bool:
        """True when every draw is the same baseline (integrated once per example)."""

    def sample(self, ctx: FamilyContext, generator: torch.Generator) -> torch.Tensor:
        """One baseline shaped like ``ctx.acts``, drawn with ``generator`` only."""


@dataclasses.dataclass(frozen=True)
class Zeros:
    name: str = "zeros"
    deterministic: bool = True

    def sample(self, ctx: FamilyContext, generator: torch.Generator) -> torch.Tensor:
        return torch.zeros_like(ctx.acts)


@dataclasses.dataclass(frozen=True)
class Replaced:
    """Text: the words replaced by one token ([PAD] or [MASK]), at the path's layer."""

    name: str
    deterministic: bool = True

    def sample(self, ctx: FamilyContext, generator: torch.Generator) -> torch.Tensor:
        return ctx.constants[self.name]


@dataclasses.dataclass(frozen=True)
class Uniform:
    name: str = "uniform"
    deterministic: bool = False

    def sample(self, ctx: FamilyContext, generator: torch.Generator) -> torch.Tensor:
        u = torch.rand(ctx.acts.shape, generator=generator)
        return (ctx.stats.lo + (ctx.stats.hi - ctx.stats.lo) * u).to(ctx.acts.dtype)


@dataclasses.dataclass(frozen=True)
class Gaussian:
    name: str = "gaussian"
    deterministic: bool = False

    def sample(self, ctx: FamilyContext, generator: torch.Generator) -> torch.Tensor:
        eps = torch.randn(ctx.acts.shape, generator=generator)
        centre = ctx.constants["pad"] if ctx.kind == "text" else ctx.stats.mean
        return (centre + ctx.stats.std * eps).to(ctx.acts.dtype)


@dataclasses.dataclass(frozen=True)
class Blur:
    name: str = "blur"
    deterministic: bool = False

    def sample(self, ctx: FamilyContext, generator: torch.Generator) -> torch.Tensor:
        x = ctx.acts
        if ctx.kind == "tabular":
            lam = float(torch.rand((), generator=generator))
            return ctx.stats.mean + lam * (x - ctx.stats.mean)
        if ctx.kind == "text":  # (L, *hidden): smooth along the sentence
            sigma = int(torch.randint(1, 5, (), generator=generator))
            flat = x.reshape(x.shape[0], -1).T.unsqueeze(1)  # (hidden, 1, L)
            return _smooth(flat, sigma, dims=1).squeeze(1).T.reshape(x.shape)
        sigma = int(torch.randint(3, 51, (), generator=generator))  # the code's randint(3, 50)
        lead = x.shape[:-2]
        planes = x.reshape(-1, 1, *x.shape[-2:])  # (channels, 1, H, W)
        return _smooth(planes, sigma, dims=2).reshape(*lead, *x.shape[-2:])


@dataclasses.dataclass(frozen=True)
class Data:
    name: str = "data"
    deterministic: bool = False

    def sample(self, ctx: FamilyContext, generator: torch.Generator) -> torch.Tensor:
        if ctx.background is None:
            msg = "The 'data' baseline family draws background rows: pass background=."
            raise InvalidParameterError(msg, owner="BEE", parameter="background", value=None)
        j = int(torch.randint(0, ctx.background.shape[0], (), generator=generator))
        return ctx.background[j].to(ctx.acts.dtype)


def _smooth(x: torch.Tensor, sigma: int, *, dims: int) -> torch.Tensor:
    """Gaussian smoothing of (c, 1, *spatial) over its last ``dims`` axes, zero outside (scipy's
    mode="constant"), truncated at 4 sigma or the signal's length."""
    size = min(x.shape[-dims:])
    radius = max(1, min(4 * sigma, size - 1))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    out = x
    for axis in range(dims):
        shape = [1, 1] + [1] * dims
        shape[2 + axis] = k.numel()
        pad = [0, 0] * dims
        pad[2 * (dims - 1 - axis)] = pad[2 * (dims - 1 - axis) + 1] = radius
        conv = torch.nn.functional.conv1d if dims == 1 else torch.nn.functional.conv2d
        out = conv(torch.nn.functional.pad(out, pad), k.reshape(shape))
    return out


BUILTIN_FAMILIES: dict[str, BaselineFamily] = {
    f.name: f for f in (Zeros(), Replaced("pad"), Replaced("mask"), Uniform(), Gaussian(), Blur(),
                        Data())
}
TEXT_ONLY = frozenset({"pad", "mask"})


def default_families(kind: str, *, has_background: bool, has_mask: bool) -> tuple[str, ...]:
    """The families tried when ``families=None``: the reference code's five, adapted."""
    if kind == "text":
        base = ("pad", *(("mask",) if has_mask else ()), "gaussian", "blur")
    else:
        base = ("zeros", "uniform", "gaussian", "blur")
    return (*base, "data") if has_background else base
