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


# -- random Explanations for save/load round trips ------------------------------------------------

#: Every float32 bit pattern class: ordinary values, -0.0, subnormals, inf and NaN.
any_float32 = st.floats(width=32) | st.sampled_from([-0.0, 0.0])
_names = st.text(max_size=6)
_keys = _names.filter(lambda k: not k.startswith("__"))  # "__array__"/"__tuple__" are markers
_dtypes = st.sampled_from([torch.float32, torch.float64, torch.float16, torch.bfloat16,
                           torch.int64, torch.int32, torch.uint8, torch.bool])


@st.composite
def small_tensors(draw, dtypes=_dtypes):  # type: ignore[no-untyped-def]
    """A tensor of 0-2 dimensions (sizes 0-3) of any listed dtype; floats include -0.0."""
    shape = tuple(draw(st.lists(st.integers(0, 3), max_size=2)))
    dtype = draw(dtypes)
    size = math.prod(shape)
    if dtype.is_floating_point:
        elems = st.floats(width=16, allow_subnormal=False) if dtype in (
            torch.float16, torch.bfloat16) else any_float32
        data = torch.tensor(draw(st.lists(elems, min_size=size, max_size=size)),
                            dtype=torch.float32).to(dtype)
    elif dtype == torch.bool:
        data = torch.tensor(draw(st.lists(st.booleans(), min_size=size, max_size=size)),
                            dtype=torch.bool)
    else:
        info = torch.iinfo(dtype)
        data = torch.tensor(draw(st.lists(st.integers(info.min, info.max), min_size=size,
                                          max_size=size)), dtype=dtype)
    return data.reshape(shape)


#: JSON-like values of params and extras: scalars, str, lists, tuples, dicts, tensors, arrays.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | _names
    | small_tensors() | small_tensors().map(lambda t: t.float().numpy()),
    lambda inner: st.lists(inner, max_size=3) | st.lists(inner, max_size=3).map(tuple)
    | st.dictionaries(_keys, inner, max_size=3),
    max_leaves=8)


@st.composite
def explanations(draw, max_examples: int = 3, max_outputs: int = 3,  # type: ignore[no-untyped-def]
                 max_features: int = 5):
    """A hand-built xai.Explanation with every saved field random: ragged feature masks,
    optional tensors, names, texts, params and extras (tensor and JSON)."""
    import xai
    from xai._capabilities import MODALITIES, OUTPUT_KINDS

    n = draw(st.integers(0, max_examples))
    o = draw(st.integers(1, max_outputs))
    f = draw(st.integers(0, max_features))

    def floats(*shape: int, elems=any_float32) -> torch.Tensor:  # type: ignore[no-untyped-def]
        size = math.prod(shape)
        return torch.tensor(draw(st.lists(elems, min_size=size, max_size=size)),
                            dtype=torch.float32).reshape(shape)

    widths = draw(st.lists(st.integers(0, f), min_size=n, max_size=n)) \
        if draw(st.booleans()) else None
    mask = None if widths is None else torch.arange(f)[None, :] < torch.tensor(
        widths, dtype=torch.long).reshape(n, 1)
    values = floats(n, o, f)
    if mask is not None:
        values = values.masked_fill(~mask[:, None, :], 0.0)
    n_model = draw(st.integers(o, o + 2))
    target = xai.ResolvedTarget(
        torch.tensor(draw(st.lists(st.lists(st.integers(0, n_model - 1), min_size=o,
                                            max_size=o), min_size=n, max_size=n)),
                     dtype=torch.long).reshape(n, o),
        tuple(tuple(draw(st.lists(_names, min_size=o, max_size=o))) for _ in range(n)),
        floats(n, n_model) if draw(st.booleans()) else None)
    optional = {k: floats(n, o) if draw(st.booleans()) else None
                for k in ("predictions", "base_values")}
    with_text = draw(st.booleans())
    return xai.Explanation(
        values=values, target=target, method=draw(_names), feature_mask=mask,
        params=draw(st.dictionaries(_keys, json_values, max_size=3)),
        features=tuple(xai.NamedFeatures(draw(st.lists(_names, min_size=w, max_size=w)),
                                         text=draw(st.text(max_size=8)) if with_text else None)
                       for w in (widths or [f] * n)),
        extras=draw(st.dictionaries(_keys, json_values, max_size=3)),
        model_info=xai.ModelInfo(
            adapter=draw(_names), model=draw(_names), modality=draw(st.sampled_from(MODALITIES)),
            output_kind=draw(st.sampled_from(OUTPUT_KINDS)),
            details=draw(st.dictionaries(_keys, _names, max_size=2))),
        multiplies_by_inputs=draw(st.booleans()), **optional)
