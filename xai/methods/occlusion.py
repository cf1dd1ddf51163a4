"""Occlusion (leave-one-out, or a sliding window of features switched off at a time)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch

from .._capabilities import Capability, Modality
from .._registry import register_method
from .._validation import BASELINE, Constraint, InstanceOf, Interval, Options
from ..adapters._base import Batch, ModelAdapter
from ..explanation import ResolvedTarget
from ..features._base import FeatureSpace
from ..features.groups import FEATURE_GROUPS
from ._base import AttributionOutput, Method
from ._budget import Cost
from ._perturb import row_pieces, stream_scores

__all__ = ["Occlusion"]


@register_method("occlusion")
@dataclasses.dataclass(frozen=True, kw_only=True)
class Occlusion(Method):
    """Occlusion: the drop in the output when a window of features is switched off.

    ``value_j = mean over windows W containing j of f(x) - f(x with W removed)``. With
    ``window=1`` this is leave-one-out. Windows start at 0, ``stride``, ``2 * stride``, ...; when
    they do not end exactly at the last feature, ``clip`` picks the last window: ``False`` (ours)
    adds a full window shifted back to end at the last feature, ``True`` (captum's ``Occlusion``)
    starts it at the next multiple of ``stride`` and cuts it at the end. Either way every feature
    is covered when ``stride <= window``; with a larger stride the features between windows
    (which captum refuses) get 0. All masks of all examples go through the model together,
    ``batch_size`` rows per call, plus one all-removed row per example for ``base_values``; the
    masks are built as the calls reach them, so memory is bounded by ``batch_size`` rows.

    Parameters
    ----------
    baseline : "auto", "zeros", "mean", number, array, or "pad"/"mask"/"unk"/"delete" for text
        How a feature is removed. "auto" is zeros for tensors and "pad" for text.
    feature_groups : None, dict of str to columns, or array-like of int, default=None
        Features switched on and off together, each group one feature of the explanation
        (captum's ``feature_mask``): a dict of group name to columns (tabular; unlisted columns
        stay single features), or an int group id per element, of one example's shape (shared)
        or one row per example. For text, one id per word (or token) of each text.
    window : int, default=1
        Consecutive features removed together (a sliding window over words for text).
    stride : int, default=1
        Step between windows.
    granularity : {"auto", "word", "token"}, default="auto"
        Text only ("auto" = "word").
    clip : bool, default=False
        The last window when ``(n_features - window) % stride != 0``. False: one more window of
        ``window`` features ending at the last feature (``n_features - window`` is its start).
        True: captum's convention, windows only at multiples of ``stride``, the last one cut
        short at the end (``ceil((n_features - window) / stride) + 1`` windows), so the values
        equal ``captum.attr.Occlusion(..., sliding_window_shapes=(window,), strides=stride)``
        for one input of ``n_features`` elements.

    References
    ----------
    .. [1] Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014,
           https://arxiv.org/abs/1311.2901
    .. [2] Harbecke & Alt, "Considering Likelihood in NLP Classification Explanations with
           Occlusion and Language Modeling", ACL SRW 2020 (the Unk and Delete baselines).
    """

    requires: ClassVar[Capability] = Capability.FORWARD
    modalities: ClassVar[frozenset[Modality]] = frozenset({"tabular", "image", "text", "graph"})
    reference: ClassVar[str] = "Zeiler & Fergus 2014, arXiv:1311.2901"
    _constraints: ClassVar[Mapping[str, Sequence[Constraint]]] = {
        "baseline": BASELINE,
        "feature_groups": FEATURE_GROUPS,
        "window": [Interval(int, 1, None, closed="left")],
        "stride": [Interval(int, 1, None, closed="left")],
        "granularity": [Options({"auto", "word", "token"})],
        "clip": [InstanceOf((bool,), "a bool")],
    }

    baseline: Any = "auto"
    feature_groups: Any = None
    window: int = 1
    stride: int = 1
    granularity: str = "auto"
    clip: bool = False

    @classmethod
    def _test_params(cls) -> list[dict[str, Any]]:
        return [{}, {"window": 2}, {"window": 3, "stride": 2, "clip": True}]

    def cost(self, features: tuple[FeatureSpace, ...], n_outputs: int, batch_size: int,
             row_bytes: int) -> Cost:
        """One row per window plus one all-removed row per example, ``batch_size`` at a time."""
        d_max = max((f.n_features for f in features), default=0)
        rows = sum(len(self._starts(f.n_features)) + 1 for f in features)
        return Cost("Occlusion", "stride", self.stride, rows, row_bytes + d_max + 4 * n_outputs,
                    batch_size, fix="a larger stride or window, or coarser features.")

    def _attribute(self, adapter: ModelAdapter, batch: Batch, features: tuple[FeatureSpace, ...],
                   target: ResolvedTarget, *, batch_size: int,
                   rng: torch.Generator) -> AttributionOutput:
        full = target.explained_scores()
        layouts: dict[int, _Layout] = {}  # one per number of features, shared by the examples
        for d in {f.n_features for f in features}:
            layouts[d] = _Layout(self._starts(d), min(self.window, d), d)
        runs = [_Windows(layouts[f.n_features], target.indices[i], full[i])
                for i, f in enumerate(features)]
        pieces = row_pieces([r.n_rows for r in runs],
                            lambda i, start, stop: runs[i].masks(start, stop), batch_size)
        n_calls = stream_scores(adapter, features, pieces, lambda i, s: runs[i].take(s),
                                batch_size=batch_size)
        extras = {"n_model_calls": torch.tensor(n_calls),
                  "n_rows": torch.tensor(sum(r.n_rows for r in runs))}
        return AttributionOutput([r.values() for r in runs],
                                 base_values=torch.stack([r.base for r in runs]), extras=extras)

    def _starts(self, n_features: int) -> list[int]:
        """First feature of each window; the last window reaches the last feature.

        ``clip=False``: multiples of ``stride`` up to ``n_features - width``, plus
        ``n_features - width`` itself when it is not one. ``clip=True`` (captum): the multiples of
        ``stride`` below ``n_features - width + stride`` (and below ``n_features``), the last
        window cut at the end by :class:`_Windows`.
        """
        width = min(self.window, n_features)
        if self.clip:
            stop = max(1, min(n_features, n_features - width + self.stride))
            return list(range(0, stop, self.stride))
        starts = list(range(0, n_features - width + 1, self.stride))
        if starts[-1] != n_features - width:
            starts.append(n_features - width)
        return starts


#: Windows x features below which one example's window layout is built once and shared by
#: every example of that width (larger layouts are sliced as the calls reach them).
_SHARED_CELLS = 1 << 22


class _Layout:
    """The windows of examples with ``d`` features: which features each window removes."""

    def __init__(self, starts: list[int], width: int, d: int) -> None:
        self.starts, self.width, self.d = torch.tensor(starts, dtype=torch.long), width, d
        self.n_rows = len(starts) + 1
        ends = (self.starts + width).clamp_max(d)  # a clipped last window stops at d
        count = torch.zeros(d + 1).index_add_(0, self.starts, torch.ones(len(starts)))
        count = count.index_add_(0, ends, -torch.ones(len(starts)))
        self.count = count.cumsum(0)[:-1].clamp_min(1)  # a gap (stride > window) stays 0
        self.whole = self._slice(0, len(starts)) if len(starts) * d <= _SHARED_CELLS else None

    def _slice(self, start: int, stop: int) -> torch.Tensor:
        first = self.starts[start:stop].unsqueeze(1)
        at = torch.arange(self.d).unsqueeze(0)
        return (at >= first) & (at < first + self.width)

    def cover(self, start: int, stop: int) -> torch.Tensor:
        """(rows, d) bool: the features each window of rows ``start:stop`` removes."""
        return self.whole[start:stop] if self.whole is not None else self._slice(start, stop)


class _Windows:
    """One example's windows, streamed: keep-masks out (one per window, then all-removed), and
    the drops folded into per-feature sums as their scores come in."""

    def __init__(self, layout: _Layout, outputs: torch.Tensor, full: torch.Tensor) -> None:
        self.layout, self.d, self.n_rows = layout, layout.d, layout.n_rows
        self.outputs, self.full = outputs, full
        self.total = torch.zeros(layout.d, len(outputs))
        self.done = 0  # rows taken
        self.base = full.new_zeros(len(outputs))

    def masks(self, start: int, stop: int) -> torch.Tensor:
        keep = ~self.layout.cover(start, stop)
        if stop == self.n_rows:  # the all-removed row, for base_values
            keep = torch.cat([keep, torch.zeros(1, self.d, dtype=torch.bool)])
        return keep

    def take(self, scores: torch.Tensor) -> None:
        s = scores[:, self.outputs]  # (rows, n_outputs)
        start, stop = self.done, self.done + s.shape[0]
        self.done = stop
        if stop == self.n_rows:
            self.base, s = s[-1], s[:-1]
        drop = self.full - s  # (windows, n_outputs)
        self.total += self.layout.cover(start, start + s.shape[0]).T.float() @ drop

    def values(self) -> torch.Tensor:
        """Mean drop over the windows covering each feature, (n_outputs, d); 0 for a feature no
        window covers (captum divides by its zero count there)."""
        return (self.total / self.layout.count.unsqueeze(1)).T
