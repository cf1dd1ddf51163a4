"""Hypothesis strategies: small linear models and input batches."""

from __future__ import annotations

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
