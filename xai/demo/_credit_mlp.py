"""A differentiable credit model: a small ReLU MLP fitted on the German credit data in seconds.

The shipped credit model is a scikit-learn pipeline (no gradients). Gradient methods such as
Integrated Gradients and their smoothed versions need a torch model, so this one is fitted on
the same vendored data and split, deterministically (own generator, full-batch L-BFGS). It
takes standardized features (training mean 0, std 1), so that noise and radii are in the same
units for every attribute.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from ._data import split_credit

__all__ = ["CreditMLP", "fit_credit_mlp"]


@dataclasses.dataclass(frozen=True)
class CreditMLP:
    """The fitted model (standardized features -> logits for "bad", "good") and its scaling."""

    model: torch.nn.Module
    mean: torch.Tensor
    std: torch.Tensor
    accuracy: float  # on the held-out 20 % split

    def standardize(self, frame: Any) -> torch.Tensor:
        """Raw credit features (a DataFrame of ``load_credit`` columns) to model inputs."""
        return (torch.tensor(frame.to_numpy(), dtype=torch.float32) - self.mean) / self.std


_CACHE: dict[tuple[int, int], CreditMLP] = {}


def fit_credit_mlp(random_state: int = 0, *, n_hidden: int = 64) -> CreditMLP:
    """Fit (or return the cached) MLP 20 -> n_hidden (ReLU) -> 2 with L2 penalty 1e-2."""
    key = (random_state, n_hidden)
    if key in _CACHE:
        return _CACHE[key]
    x_train, x_test, y_train, y_test = split_credit(random_state=0)
    raw = torch.tensor(x_train.to_numpy(), dtype=torch.float32)
    mean, std = raw.mean(0), raw.std(0).clamp_min(1e-6)
    xt, yt = (raw - mean) / std, torch.tensor(y_train, dtype=torch.long)
    gen = torch.Generator().manual_seed(random_state)
    model = torch.nn.Sequential(torch.nn.Linear(xt.shape[1], n_hidden), torch.nn.ReLU(),
                                torch.nn.Linear(n_hidden, 2))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
    opt = torch.optim.LBFGS(model.parameters(), lr=0.5, max_iter=200,
                            line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        penalty = sum(p.square().sum() for n, p in model.named_parameters() if "weight" in n)
        loss = torch.nn.functional.cross_entropy(model(xt), yt) + 1e-2 * penalty
        loss.backward()  # type: ignore[no-untyped-call]  # torch stubs leave it untyped
        return loss

    opt.step(closure)  # type: ignore[no-untyped-call]  # idem
    model.eval()
    fitted = CreditMLP(model, mean, std, 0.0)
    with torch.no_grad():
        pred = model(fitted.standardize(x_test)).argmax(1).numpy()
    fitted = dataclasses.replace(fitted, accuracy=float((pred == y_test).mean()))
    _CACHE[key] = fitted
    return fitted
