"""Up-front cost estimates of the sampling methods, and running moments for chunked draws.

Every sampler states, before any model call, how many model rows its budget (``n_permutations``,
``n_samples``, ``n_steps``) would evaluate and how much memory it would hold at once; an absurd
budget is refused with that estimate in the message. The draws themselves are generated and
scored ``batch_size`` rows at a time and folded into :class:`Moments`, so memory does not grow
with the budget.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

import torch

from ..adapters._base import Batch
from ..exceptions import InvalidParameterError

__all__ = ["MAX_ROWS", "Cost", "Moments", "available_memory", "check_cost", "fmt_bytes",
           "fmt_count", "input_row_bytes"]

#: Most model rows (or draws) one call may evaluate: beyond this a budget is refused.
MAX_ROWS = 10**9
#: Memory assumed available when the operating system does not say (4 GiB).
FALLBACK_MEMORY = 4 * 2**30


def available_memory() -> int:
    """Bytes of memory available now (psutil, else ``os.sysconf``, else 4 GiB)."""
    try:
        import psutil
    except ImportError:
        pass
    else:
        return int(psutil.virtual_memory().available)
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return FALLBACK_MEMORY


def fmt_count(n: float) -> str:
    """``1,234`` below a million, else ``2.0e12``."""
    if n < 1e6:
        return f"{int(n):,}"
    mantissa, exponent = f"{n:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def fmt_bytes(n: float) -> str:
    """Bytes in the largest fitting unit (kB to PB, powers of 1000)."""
    if n >= 1e18:
        return f"{fmt_count(n)} bytes"
    for unit, size in (("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{int(n)} bytes"


@dataclasses.dataclass(frozen=True)
class Cost:
    """What one call of a sampling method would do, estimated before it starts.

    Attributes
    ----------
    owner, parameter, value : str, str, Any
        The method, its budget parameter and the value asked for (named in a refusal).
    rows : int
        Model rows (or, with ``unit``, other draws) the call would evaluate in all.
    row_bytes : int
        Bytes one row occupies while it is scored (mask, masked input, scores).
    batch_size : int
        Rows scored at a time: the chunk held at once is ``min(rows, batch_size)`` rows.
    held_bytes : int, default=0
        Memory the budget itself makes the method hold at once, beyond the chunk (a wrapped
        library's full data matrix, a quadrature table); 0 for a fully chunked sampler.
    holds : str, default="masks"
        What the rows hold, for the message.
    held : str, default=""
        What ``held_bytes`` holds, for the message.
    fix : str, default=""
        How to lower the cost; ends the message.
    unit : str, default="model rows"
    """

    owner: str
    parameter: str
    value: Any
    rows: int
    row_bytes: int
    batch_size: int
    held_bytes: int = 0
    holds: str = "masks"
    held: str = ""
    fix: str = ""
    unit: str = "model rows"

    @property
    def chunk_bytes(self) -> int:
        """Bytes of the rows scored at once."""
        return min(self.rows, self.batch_size) * self.row_bytes

    @property
    def peak_bytes(self) -> int:
        """Estimated peak memory of the call."""
        return self.chunk_bytes + self.held_bytes


def check_cost(cost: Cost, memory: int | None = None) -> None:
    """Raise InvalidParameterError when ``cost`` is absurd: more than :data:`MAX_ROWS` rows, or
    more memory at once than is available (``memory``, default :func:`available_memory`).

    The budget parameter is named when the budget is to blame, ``batch_size`` when only the
    chunk it sets does not fit.
    """
    memory = available_memory() if memory is None else memory
    if cost.rows <= MAX_ROWS and cost.peak_bytes <= memory:
        return
    if cost.rows > MAX_ROWS or cost.held_bytes + cost.row_bytes > memory:
        if cost.rows > MAX_ROWS:
            total = fmt_bytes(cost.rows * cost.row_bytes + cost.held_bytes)
            what = (f"would evaluate {fmt_count(cost.rows)} {cost.unit} (about {total} of "
                    f"{cost.holds}), more than the limit of {fmt_count(MAX_ROWS)} {cost.unit} "
                    "per call")
        else:
            what = (f"would hold about {fmt_bytes(cost.peak_bytes)} at once "
                    f"({fmt_bytes(cost.held_bytes)} of {cost.held or cost.holds}, for "
                    f"{fmt_count(cost.rows)} {cost.unit}), more than the {fmt_bytes(memory)} of "
                    "memory available")
        msg = (f"The {cost.parameter!r} parameter of {cost.owner} is too large: "
               f"{cost.parameter}={cost.value!r} {what}. Use a smaller {cost.parameter}"
               f"{'; ' + cost.fix if cost.fix else '.'}")
        raise InvalidParameterError(msg, owner=cost.owner, parameter=cost.parameter,
                                    value=cost.value, constraint=f"at most {fmt_count(MAX_ROWS)} "
                                    f"{cost.unit}, and fits in memory")
    fits = max(1, (memory - cost.held_bytes) // max(cost.row_bytes, 1))
    msg = (f"The 'batch_size' parameter of {cost.owner} is too large: batch_size="
           f"{cost.batch_size} holds {fmt_count(min(cost.rows, cost.batch_size))} rows of "
           f"{cost.holds} at once (about {fmt_bytes(cost.peak_bytes)}), more than the "
           f"{fmt_bytes(memory)} of memory available. Use a batch_size of at most "
           f"{fmt_count(fits)}, or 'auto'.")
    raise InvalidParameterError(msg, owner=cost.owner, parameter="batch_size",
                                value=cost.batch_size, constraint=f"<= {fits}")


def _widen(t: torch.Tensor, width: int) -> torch.Tensor:
    """Zero-pad the last dimension to ``width`` (games may add output columns as they go)."""
    if t.dim() == 0 or t.shape[-1] == width:
        return t
    return torch.nn.functional.pad(t, (0, width - t.shape[-1]))


class Moments:
    """Running mean and sum of squared deviations of draws (along dim 0), in float64.

    Chunks are merged with Chan, Golub & LeVeque's pairwise update, so the draws never need to
    be held together and the result does not depend on how they were chunked beyond rounding.
    A chunk whose last dimension is wider than before (a game that found a new output column)
    zero-pads what was accumulated, which is exact when earlier draws were 0 in that column.
    """

    def __init__(self) -> None:
        self.count = 0
        self.mean: torch.Tensor | None = None
        self.m2: torch.Tensor | None = None

    def add(self, draws: torch.Tensor) -> None:
        """Fold in ``draws`` of shape (m, ...)."""
        m = int(draws.shape[0])
        if m == 0:
            return
        x = draws.double()
        mean = x.mean(0)
        m2 = (x - mean).square().sum(0)
        if self.mean is None or self.m2 is None:
            self.count, self.mean, self.m2 = m, mean, m2
            return
        if mean.dim():
            width = max(mean.shape[-1], self.mean.shape[-1])
            mean, m2 = _widen(mean, width), _widen(m2, width)
            self.mean, self.m2 = _widen(self.mean, width), _widen(self.m2, width)
        n = self.count + m
        delta = mean - self.mean
        self.mean = self.mean + delta * (m / n)
        self.m2 = self.m2 + m2 + delta.square() * (self.count * m / n)
        self.count = n

    def result(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """The mean and its standard error (NaN with fewer than two draws), as ``dtype``."""
        if self.mean is None or self.m2 is None:
            msg = "Moments.result() called before any draw was added."
            raise RuntimeError(msg)
        if self.count > 1:
            stderr = (self.m2 / (self.count - 1)).sqrt() / math.sqrt(self.count)
        else:
            stderr = torch.full_like(self.mean, math.nan)
        return self.mean.to(dtype), stderr.to(dtype)


def input_row_bytes(batch: Batch) -> int:
    """Bytes of one row of ``batch`` (all its tensors), the size of one masked model input."""
    if len(batch) == 0:
        return 0
    return sum(t[0].numel() * t.element_size() for t in batch.tensors.values())
