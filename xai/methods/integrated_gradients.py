"""Integrated Gradients (Sundararajan et al. 2017), wrapping captum."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch

from .._capabilities import Capability, Modality
from .._registry import register_method
from .._validation import BASELINE, Constraint, InstanceOf, Interval, Options
from ..adapters._base import Batch, ModelAdapter
from ..exceptions import ConvergenceWarning, InvalidInputError, InvalidParameterError
from ..explanation import ResolvedTarget
from ..features._base import FeatureSpace
from ..features.groups import FEATURE_GROUPS
from ._base import AttributionOutput, Method, relative_gap, warn_if
from ._budget import Cost

__all__ = ["IntegratedGradients"]

#: (values per example, f(baseline) per (example, output), completeness sums per (example, output))
_PathResult = tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]

_RULES = ("gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid")


@register_method("integrated_gradients", aliases=("ig",))
@dataclasses.dataclass(frozen=True, kw_only=True)
class IntegratedGradients(Method):
    """Integrated Gradients: (x - x') times the path integral of the gradient from x' to x.

    Tensor inputs use ``captum.attr.IntegratedGradients``; text models use
    ``captum.attr.LayerIntegratedGradients`` on the input word embeddings, with the baseline
    ``[CLS] [PAD] ... [PAD] [SEP]`` (special tokens kept, so they get exactly 0). The path is
    split into chunks of ``batch_size`` rows (captum's ``internal_batch_size``), so the model's
    memory does not grow with ``n_steps``; only the quadrature table does (see :meth:`cost`), and
    a budget that cannot fit is refused up front.

    Parameters
    ----------
    n_steps : int, default=50
        Quadrature nodes on the path (captum's default; the paper finds 20-300 enough).
    integration : {"gausslegendre", "riemann_left", "riemann_right", "riemann_middle",
        "riemann_trapezoid"}, default="gausslegendre"
        Quadrature rule (captum's names; captum's trapezoid weights sum to (n-1)/n).
    baseline : "auto", "zeros", "mean", number, array, or "pad"/"mask"/"unk" for text
        The reference input x'. "auto" is zeros for tensors and "pad" for text.
    feature_groups : None, dict of str to columns, or array-like of int, default=None
        Features switched on and off together, each group one feature of the explanation
        (captum's ``feature_mask``): a dict of group name to columns (tabular; unlisted columns
        stay single features), or an int group id per element, of one example's shape (shared)
        or one row per example. For text, one id per word (or token) of each text.
    multiply_by_inputs : bool, default=True
        False returns the integrated gradient without the (x - x') factor.
    granularity : {"auto", "word", "token"}, default="auto"
        Text only: token scores are summed into words ("auto" = "word"), which keeps completeness.
    tolerance : float, default=0.05
        A ConvergenceWarning is issued when |delta| > tolerance * |f(x) - f(x')|, with
        delta = sum(values) - (f(x) - f(x')) (the authors' 5% rule).

    Notes
    -----
    ``extras["convergence_delta"]`` holds delta per (example, output). Attributions explain the
    model's raw output (logits for transformers classifiers).

    References
    ----------
    .. [1] Sundararajan, Taly, Yan, "Axiomatic Attribution for Deep Networks", ICML 2017,
           https://arxiv.org/abs/1703.01365
    """

    requires: ClassVar[Capability] = Capability.GRADIENTS
    modalities: ClassVar[frozenset[Modality]] = frozenset({"tabular", "image", "text", "graph"})
    reference: ClassVar[str] = "Sundararajan et al. 2017, arXiv:1703.01365"
    _constraints: ClassVar[Mapping[str, Sequence[Constraint]]] = {
        "n_steps": [Interval(int, 1, None, closed="left")],
        "integration": [Options(_RULES)],
        "baseline": BASELINE,
        "feature_groups": FEATURE_GROUPS,
        "multiply_by_inputs": [InstanceOf((bool,), "a bool")],
        "granularity": [Options({"auto", "word", "token"})],
        "tolerance": [Interval(float, 0, None, closed="neither")],
    }

    n_steps: int = 50
    integration: str = "gausslegendre"
    baseline: Any = "auto"
    feature_groups: Any = None
    multiply_by_inputs: bool = True
    granularity: str = "auto"
    tolerance: float = 0.05

    @property
    def multiplies_by_inputs(self) -> bool:
        """The ``multiply_by_inputs`` parameter: True for IG proper, False for the average
        gradient along the path (captum's convention)."""
        return self.multiply_by_inputs

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.integration != "gausslegendre" and self.n_steps < 2:
            msg = (f"The 'n_steps' parameter of IntegratedGradients must be at least 2 with "
                   f"integration={self.integration!r} (Riemann rules need two nodes). Got "
                   f"{self.n_steps} instead.")
            raise InvalidParameterError(msg, owner="IntegratedGradients", parameter="n_steps",
                                        value=self.n_steps)

    @classmethod
    def _test_params(cls) -> list[dict[str, Any]]:
        return [{"n_steps": 8}, {"n_steps": 6, "integration": "riemann_middle"}]

    @classmethod
    def requirements(cls, modality: str) -> Capability:
        # text gradients are taken at the embedding layer
        return cls.requires | Capability.EMBEDDINGS if modality == "text" else cls.requires

    def cost(self, features: tuple[FeatureSpace, ...], n_outputs: int, batch_size: int,
             row_bytes: int) -> Cost:
        """n_steps forward and backward rows per example and output, ``batch_size`` at a time;
        plus the quadrature table: numpy's Gauss-Legendre nodes need an n_steps x n_steps
        float64 matrix, captum's Riemann nodes two lists of n_steps floats."""
        n = self.n_steps
        table = 8 * n * n if self.integration == "gausslegendre" else 64 * n
        return Cost("IntegratedGradients", "n_steps", n, len(features) * n_outputs * n,
                    4 * row_bytes, batch_size, held_bytes=table, holds="path inputs",
                    held="quadrature table",
                    fix="Gauss-Legendre converges with 20-300 nodes; for a finer path use "
                        "integration='riemann_trapezoid', whose table grows linearly.")

    def _attribute(self, adapter: ModelAdapter, batch: Batch, features: tuple[FeatureSpace, ...],
                   target: ResolvedTarget, *, batch_size: int,
                   rng: torch.Generator) -> AttributionOutput:
        run = self._text_path if adapter.modality == "text" else self._tensor_path
        # captum needs at least as many rows per forward as examples: at most batch_size
        # examples go in at a time, and captum splits their path into batch_size-row chunks
        parts = [run(adapter, _take(batch, rows), features[rows.start:rows.stop],
                     target.take(range(rows.start, rows.stop)), batch_size)
                 for rows in (slice(s, min(s + batch_size, len(batch)))
                              for s in range(0, len(batch), batch_size))]
        values = [v for part in parts for v in part[0]]
        base_values = torch.cat([part[1] for part in parts])
        sums = torch.cat([part[2] for part in parts])
        span = target.explained_scores() - base_values
        delta = sums - span
        gap = relative_gap(delta, span)
        worst = float(gap.max())
        warn_if(worst > self.tolerance,
                f"Integrated Gradients did not converge: |sum(values) - (f(x) - f(x'))| is "
                f"{worst:.1%} of |f(x) - f(x')| (tolerance {self.tolerance:.0%}). Increase "
                f"n_steps (now {self.n_steps}).", ConvergenceWarning)
        extras = {"convergence_delta": delta, "n_model_calls_per_output":
                  torch.tensor(self.n_steps)}
        return AttributionOutput(values, base_values=base_values, extras=extras)

    def _captum_kwargs(self, batch_size: int) -> dict[str, Any]:
        return {"n_steps": self.n_steps, "method": self.integration,
                "internal_batch_size": max(batch_size, 1)}

    def _tensor_path(self, adapter: Any, batch: Batch, features: tuple[Any, ...],
                     target: ResolvedTarget, batch_size: int) -> _PathResult:
        from captum.attr import IntegratedGradients as CaptumIG

        xs = batch.attributed()
        check_float_inputs(xs, "IntegratedGradients")
        multi = len(xs) > 1
        bases = tuple(_stack_padded([f.bases[k] if multi else f.base for f in features], xs[k])
                      for k in range(len(xs)))
        forward, row_args = adapter.path_forward(batch, len(xs))
        ig = CaptumIG(forward, multiply_by_inputs=self.multiply_by_inputs)
        per_out = []
        for o in range(target.n_outputs):
            a = ig.attribute(xs if multi else xs[0], baselines=bases if multi else bases[0],
                             target=target.indices[:, o].tolist(),
                             additional_forward_args=row_args or None,
                             **self._captum_kwargs(batch_size))
            per_out.append(tuple(t.detach() for t in a) if multi else (a.detach(),))
        attr = [torch.stack([p[k] for p in per_out], dim=1) for k in range(len(xs))]  # (n, o, *)
        scaled = [a if self.multiply_by_inputs else a * (x - b).unsqueeze(1)
                  for a, x, b in zip(attr, xs, bases, strict=True)]
        with torch.no_grad():
            base_scores = forward(*bases, *row_args).gather(1, target.indices)
        values = [features[i].aggregate(
            tuple(_unpad(a[i], x.shape) for a, x in zip(attr, features[i].xs, strict=True))
            if multi else _unpad(attr[0][i], features[i].x.shape)) for i in range(len(batch))]
        return values, base_scores, torch.stack([t.flatten(2).sum(-1) for t in scaled]).sum(0)

    def _text_path(self, adapter: Any, batch: Batch, features: tuple[Any, ...],
                   target: ResolvedTarget, batch_size: int) -> _PathResult:
        from captum.attr import LayerIntegratedGradients

        if features[0].removal == "delete":
            msg = ("The 'baseline' parameter of IntegratedGradients cannot be 'delete' for text: "
                   "the path needs a baseline of the same length. Use 'pad', 'mask' or 'unk'.")
            raise InvalidParameterError(msg, owner="IntegratedGradients", parameter="baseline",
                                        value="delete")
        ids, attn = batch.tensors["input_ids"], batch.tensors["attention_mask"]
        content = attn.bool() & ~batch.tensors["special_tokens_mask"].bool()
        base_ids = torch.where(content, torch.full_like(ids, features[0].replace_id), ids)
        extra = tuple(batch.tensors[k] for k in ("token_type_ids",) if k in batch.tensors)
        lig = LayerIntegratedGradients(adapter.forward_ids, adapter.embedding_layer(),
                                       multiply_by_inputs=self.multiply_by_inputs)
        with torch.no_grad():
            emb = adapter.embedding_layer()
            diff = emb(ids) - emb(base_ids)  # (n, L, H): E(x) - E(x')
        per_out, sums = [], []
        for o in range(target.n_outputs):
            a = lig.attribute(ids, baselines=base_ids, target=target.indices[:, o].tolist(),
                              additional_forward_args=(attn, *extra),
                              **self._captum_kwargs(batch_size)).detach()
            per_out.append(a.sum(-1))
            sums.append((a if self.multiply_by_inputs else a * diff).flatten(1).sum(-1))
        tok = torch.stack(per_out, dim=1)  # (n, o, L)
        with torch.no_grad():
            base_scores = adapter.forward_ids(base_ids, attn, *extra).gather(1, target.indices)
        values = [features[i].aggregate(tok[i][:, attn[i].bool()]) for i in range(ids.shape[0])]
        return values, base_scores, torch.stack(sums, dim=1)


def check_float_inputs(xs: Sequence[torch.Tensor], owner: str,
                       does: str = "follows gradients through") -> None:
    """Gradients (and noise) need float inputs: bool and integer tensors are refused with
    the fix."""
    bad = [str(x.dtype).removeprefix("torch.") for x in xs if not x.is_floating_point()]
    if bad:
        msg = (f"{owner} {does} the inputs, but they are {bad[0]} (gradients and noise "
               "do not apply to bool or integer values). Pass float inputs (for "
               "token ids, the embeddings), or use a perturbation method (occlusion, "
               "shapley_sampling, kernel_shap, lime), which keep the inputs' dtype.")
        raise InvalidInputError(msg, parameter="inputs", value=bad[0])


def _stack_padded(parts: Sequence[torch.Tensor], like: torch.Tensor) -> torch.Tensor:
    """One baseline per example stacked like the batch's input ``like``; examples smaller than
    the batch's widest (graphs with fewer edges) are zero-padded, as their inputs are."""
    if all(p.shape == like.shape[1:] for p in parts):
        return torch.stack(list(parts))
    out = torch.zeros_like(like)
    for i, p in enumerate(parts):
        out[i][tuple(slice(0, s) for s in p.shape)] = p
    return out


def _unpad(values: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Element values (..., *padded shape) cut to one example's own ``shape``."""
    lead = values.dim() - len(shape)
    return values[(slice(None),) * lead + tuple(slice(0, s) for s in shape)]


def _take(batch: Batch, rows: slice) -> Batch:
    """Rows of a text batch, trimmed to their own longest sequence."""
    part = batch.take(rows)
    if "attention_mask" not in part.tensors:
        return part
    mask = part.tensors["attention_mask"]
    width = int(mask.sum(1).max())
    if bool(mask[:, :width].sum() != mask.sum()):  # left padding: keep the full width
        return part
    tensors = {k: (v[:, :width] if v.dim() >= 2 else v) for k, v in part.tensors.items()}
    return Batch(tensors, texts=part.texts, columns=part.columns)
