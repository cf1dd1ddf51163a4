"""Hypothesis strategies: small linear models and input batches."""

from __future__ import annotations

import dataclasses
import math

import torch
from hypothesis import strategies as st

finite = st.floats(min_value=-3, max_value=3, allow_nan=False, allow_infinity=False, width=32)


@st.composite
def linear_problems(draw, max_features: int = 6):  # type: ignore[no-untyped-def]
    """(w, b, x, baseline) for f(x) = w.x + b with 1-max_features features and 1-3 examples."""
    d = draw(st.integers(1, max_features))
    n = draw(st.integers(1, 3))
    w = torch.tensor(draw(st.lists(finite, min_size=d, max_size=d)))
    x = torch.tensor(draw(st.lists(st.lists(finite, min_size=d, max_size=d), min_size=n,
                                   max_size=n)))
    base = torch.tensor(draw(st.lists(finite, min_size=d, max_size=d)))
    return w, draw(finite), x, base


# -- symmetric games: additive + pairwise models, a swappable pair and an unused feature --------

#: Bound on |x_k| and |baseline_k| of the drawn inputs (the range of ``finite``).
_INPUT_BOUND = 3.0


class PairwiseModel(torch.nn.Module):
    """f(x) = sum_k u_k tanh(x_k) + sum_k a_k x_k + sum_{k<l} B_kl x_k x_l over ``used`` columns.

    One output. Computed in float64 one row at a time, so a row's score depends on that row's
    used values only, bit for bit: a column outside ``used`` cannot change any score, not even
    by rounding.
    """

    def __init__(self, unary: torch.Tensor, linear: torch.Tensor, pairwise: torch.Tensor,
                 used: list[int]) -> None:
        super().__init__()
        self.used = used
        self.unary = unary[used].double()
        self.linear = linear[used].double()
        self.pairwise = torch.triu(pairwise[used][:, used].double(), diagonal=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([self._row(z) for z in x[:, self.used].double()]).unsqueeze(1)

    def _row(self, z: torch.Tensor) -> torch.Tensor:
        pairs = (z[:, None] * z[None, :] * self.pairwise).sum()
        return (self.unary * torch.tanh(z)).sum() + (self.linear * z).sum() + pairs


@dataclasses.dataclass(frozen=True)
class SymmetricGame:
    """A PairwiseModel in which features ``pair`` are interchangeable and ``dummy`` is unused.

    ``x[:, i] == x[:, j]`` and ``baseline[i] == baseline[j]`` for ``(i, j) = pair``; ``scale``
    bounds |f| at every mix of an input row and the baseline.
    """

    model: PairwiseModel
    x: torch.Tensor
    baseline: torch.Tensor
    pair: tuple[int, int]
    dummy: int
    scale: float


@st.composite
def symmetric_games(draw, max_features: int = 6):  # type: ignore[no-untyped-def]
    """SymmetricGame with 3-max_features features and 1-2 examples.

    Swapping columns i and j leaves f unchanged: u_i = u_j, a_i = a_j, B_il = B_jl for every
    other l (B_ij itself is any value); the dummy column is never read.
    """
    d = draw(st.integers(3, max_features))
    i, j, dummy = draw(st.permutations(range(d)))[:3]
    n = draw(st.integers(1, 2))

    def floats(*shape: int) -> torch.Tensor:
        size = math.prod(shape)
        return torch.tensor(draw(st.lists(finite, min_size=size, max_size=size))).reshape(shape)

    unary, linear, x, base = floats(d), floats(d), floats(n, d), floats(d)
    upper = torch.triu(floats(d, d), diagonal=1)
    pairwise = upper + upper.T
    for v in (unary, linear, base):
        v[j] = v[i]
    x[:, j] = x[:, i]
    pairwise[j] = pairwise[i]
    pairwise[:, j] = pairwise[:, i]
    pairwise[i, j] = pairwise[j, i] = draw(finite)
    pairwise.fill_diagonal_(0.0)
    used = [k for k in range(d) if k != dummy]
    model = PairwiseModel(unary, linear, pairwise, used)
    m = _INPUT_BOUND
    scale = float(unary.abs().sum() + m * linear.abs().sum()
                  + m * m * torch.triu(pairwise, diagonal=1).abs().sum())
    return SymmetricGame(model, x, base, (i, j), dummy, scale)
