"""The contextual bandit of BEE: Thompson sampling with a Laplace-approximated Bayesian logistic
regression per arm (Chapelle & Li 2011, Algorithm 3), as in the reference code of Barkan et al.

Each arm (baseline family) a has a diagonal Gaussian posterior N(m_a, diag(1/q_a)) over weights
w_a; the reward model is P(y = +1 | x, a) = sigmoid(w_a . x). Selection draws w_a from every
posterior and plays argmax_a w_a . x. An update with reward y in {-1, +1} finds the mode of
    1/2 sum_j q_j (w_j - m_j)^2 + log(1 + exp(-y w . x))
(Newton's method; the Hessian diag(q) + p(1-p) x x^T is inverted by Sherman-Morrison, so an update
costs O(d)), then sets m_a to it and q_a += x^2 p (1 - p) with p = sigmoid(w . x).
"""

from __future__ import annotations

import torch

__all__ = ["LaplaceThompson", "rank_probability", "rank_reward"]


class LaplaceThompson:
    """Per-arm diagonal-Laplace logistic posteriors (prior m = 0, q = ``prior_precision``).

    Parameters
    ----------
    n_arms, dim : int
        Number of arms and the context's length (include a constant 1 for a bias).
    prior_precision : float, default=1.0
        q of the prior N(0, I / q) (the reference code's 1).
    """

    def __init__(self, n_arms: int, dim: int, *, prior_precision: float = 1.0) -> None:
        self.means = torch.zeros(n_arms, dim, dtype=torch.float64)
        self.precisions = torch.full((n_arms, dim), float(prior_precision), dtype=torch.float64)

    @classmethod
    def from_tensors(cls, means: torch.Tensor, precisions: torch.Tensor) -> LaplaceThompson:
        out = cls(int(means.shape[0]), int(means.shape[1]))
        out.means = means.to(torch.float64).clone()
        out.precisions = precisions.to(torch.float64).clone()
        return out

    @property
    def n_arms(self) -> int:
        return int(self.means.shape[0])

    def select(self, context: torch.Tensor, generator: torch.Generator) -> int:
        """Thompson sampling: one weight draw per arm, the arm with the largest w . x."""
        noise = torch.randn(self.means.shape, generator=generator, dtype=torch.float64)
        w = self.means + noise / self.precisions.sqrt()
        return int((w @ context.to(torch.float64)).argmax())

    def expected(self, context: torch.Tensor) -> torch.Tensor:
        """Posterior-mean reward probability of every arm, sigmoid(m_a . x), shape (n_arms,)."""
        return torch.sigmoid(self.means @ context.to(torch.float64))

    def update(self, arm: int, context: torch.Tensor, reward: int, *, max_iter: int = 25) -> None:
        """Laplace update of ``arm`` after ``reward`` (+1 or -1) in ``context``."""
        x = context.to(torch.float64)
        m, q, y = self.means[arm], self.precisions[arm], float(reward)
        w = m.clone()
        for _ in range(max_iter):
            s = torch.sigmoid(-y * (w @ x))  # d/dz log(1 + exp(-y z)) = -y s
            grad = q * (w - m) - y * s * x
            h = s * (1 - s)
            # (diag(q) + h x x^T)^-1 g by Sherman-Morrison
            qinv_g, qinv_x = grad / q, x / q
            step = qinv_g - qinv_x * (h * (x @ qinv_g) / (1 + h * (x @ qinv_x)))
            w = w - step
            if float(step.abs().max()) < 1e-10:
                break
        p = torch.sigmoid(w @ x)
        self.means[arm] = w
        self.precisions[arm] = q + x * x * p * (1 - p)


def rank_probability(value: float, history: list[float], sign: float) -> float:
    """The normalised rank of ``value`` among the objective values seen so far (``sign *
    value`` is better when larger; ties count half); 1/2 without history."""
    if not history:
        return 0.5
    seen = torch.tensor(history, dtype=torch.float64) * sign
    mine = sign * value
    return float(((seen < mine).sum() + 0.5 * (seen == mine).sum()) / len(history))


def rank_reward(value: float, history: list[float], sign: float, generator: torch.Generator
                ) -> int:
    """The reference code's reward: +1 with probability :func:`rank_probability`, else -1."""
    prob = rank_probability(value, history, sign)
    return 1 if float(torch.rand((), generator=generator, dtype=torch.float64)) < prob else -1
