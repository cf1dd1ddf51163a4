"""Regression-adjusted Leverage SHAP (issue 16; after Witter et al. 2025, arXiv 2506.11849).

The value rows are Leverage SHAP's (:class:`~xai.methods._regression.LeverageDesign`). A
surrogate game g is fitted to the sampled (coalition, value) pairs, one whose Shapley values are
known in closed form, and the estimate is

    phi(v) = phi(g) + LeverageSHAP(v - g),

the second term estimated from the same rows: the residual game v - g is small, so its sampling
error is small. The surrogate is weighted kernel ridge regression with the all-orders product
kernel k(z, z') = prod_i (1 + c z_i z'_i) - 1 = sum over non-empty T of c^|T| [T in z][T in z'],
weights the Leverage SHAP weights 1/(s (D - s) k_s) (k_s the rows of size s), no intercept
(g(empty) = 0 on values relative to v(empty)). A fitted g = sum_r alpha_r k(z_r, .) is a sum of
unanimity games, so its Shapley values are exact and cheap:

    phi_i(g) = sum_r alpha_r z_ri sum_{t=1}^{|z_r|} c^t C(|z_r| - 1, t - 1) / t.

Efficiency holds exactly: phi(g) sums to g(N) (s sum_t c^t C(s-1, t-1)/t = (1+c)^s - 1) and the
residual estimate sums to v(N) - v(empty) - g(N).

The surrogate is fitted on all rows (no cross-fitting): on the measured games cross-fitting
halved the rows left to each part and lost more than it removed (see bench/shapley_adjusted.py).
The standard errors are a delete-a-group jackknife over Leverage SHAP's groups of pairs that
refits both parts (the surrogate from the full fit's inverse by block elimination), with Leverage
SHAP's finite-population correction; holding g fixed gave errors 2-15 times the stderr.
"""

from __future__ import annotations

import torch

from ._regression import LeverageDesign, _columns, _jackknife, _leverage_fits

__all__ = ["AdjustedDesign", "product_kernel_shapley_weights"]

_F = torch.float64


def _product_kernel(z1: torch.Tensor, z2: torch.Tensor, c: float) -> torch.Tensor:
    return torch.pow(1.0 + c, z1 @ z2.T) - 1.0


def product_kernel_shapley_weights(sizes: torch.Tensor, c: float) -> torch.Tensor:
    """sum_{t=1}^{s} c^t C(s-1, t-1) / t for each size s: the Shapley value that the unanimity
    expansion of k(z_r, .) gives each player of z_r (|z_r| = s)."""
    s = sizes.to(_F)
    out = torch.zeros_like(s)
    for t in range(1, int(s.max().item()) + 1 if s.numel() else 1):
        tt = torch.tensor(float(t), dtype=_F)
        log_comb = torch.lgamma(s) - torch.lgamma(tt) - torch.lgamma((s - t + 1).clamp(min=1.0))
        out += torch.where(s >= t, c**t * torch.exp(log_comb) / t, torch.zeros_like(s))
    return out


def _leverage_fit(rows: torch.Tensor, y: torch.Tensor, delta: torch.Tensor,
                  use: torch.Tensor) -> torch.Tensor:
    """Leverage SHAP's fit on the pairs ``use`` (one fit of :func:`_leverage_fits`)."""
    return _leverage_fits(rows, y, delta, use.unsqueeze(0))[0]


class AdjustedDesign:
    """Regression-adjusted Leverage SHAP: ``rows`` are Leverage SHAP's (empty, full, sampled
    coalitions, their complements); ``solve(scores (R,) or (R, A))`` returns (values (D, A),
    stderr (D, A)), float64."""

    def __init__(self, d: int, budget: int, generator: torch.Generator, *,
                 owner: str = "shapley_sampling", c: float = 0.1, ridge: float = 1e-4,
                 n_groups: int = 10) -> None:
        self._leverage = LeverageDesign(d, budget, generator, n_groups=n_groups, owner=owner)
        self.d, self.owner, self.c, self.ridge = d, owner, c, ridge
        self.rows = self._leverage.rows

    def solve(self, scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        v = _columns(scores)
        d, c = self.d, self.c
        z = self.rows[2:].to(_F)
        y = v[2:] - v[0]
        s = z.sum(1)
        counts = torch.bincount(s.long(), minlength=d + 1).to(_F)
        w = 1.0 / (s * (d - s) * counts[s.long()])
        w = w / w.mean()
        gram = _product_kernel(z, z, c)
        k = gram.clone()
        k.diagonal().add_(self.ridge * k.diagonal().mean() / w)
        chol, info = torch.linalg.cholesky_ex(k)
        eye = torch.eye(k.shape[0], dtype=_F)  # cholesky_inverse is slow on CPU
        inv = torch.cholesky_solve(eye, chol) if int(info) == 0 else torch.linalg.inv(k)
        # g models what Leverage SHAP's linear fit leaves: an additive game leaves nothing, so g = 0
        # and the estimate is Leverage SHAP's, exact
        lev = self._leverage
        every = torch.ones(lev.n_pairs, dtype=torch.bool)
        linear = z @ _leverage_fit(self.rows[2:], y, v[1] - v[0], every)
        alpha = inv @ (y - linear)
        weight = product_kernel_shapley_weights(s, c).unsqueeze(1)
        phi = self._combine(z, y, v, gram, alpha, weight, every)
        n_groups = int(lev.group.max()) + 1
        if n_groups == 0:  # every size enumerated: nothing was sampled
            return phi, torch.zeros_like(phi)
        loo = []
        for g in range(n_groups):
            use = lev.group != g
            out = torch.cat([~use, ~use])  # the group's rows, both halves of each pair
            # the fit without the group's rows from the full inverse (block elimination)
            drop = torch.linalg.solve(inv[out][:, out], alpha[out])
            alpha_g = alpha - inv[:, out] @ drop
            alpha_g[out] = 0.0
            loo.append(self._combine(z, y, v, gram, alpha_g, weight, use))
        return phi, _jackknife(torch.stack(loo)) * lev.fpc

    def _combine(self, z: torch.Tensor, y: torch.Tensor, v: torch.Tensor, gram: torch.Tensor,
                 alpha: torch.Tensor, weight: torch.Tensor,
                 use: torch.Tensor) -> torch.Tensor:
        """phi(g) + Leverage SHAP of v - g on the pairs ``use``, for g = sum_r alpha_r k(z_r, .)."""
        phi_g = z.T @ (alpha * weight)  # (D, A)
        # g(N) = sum_r alpha_r ((1 + c)^|z_r| - 1) = the sum of phi(g) in exact arithmetic; the
        # sum keeps efficiency exact
        g_full = phi_g.sum(0, keepdim=True)
        residual = y - gram @ alpha
        phi_r = _leverage_fit(self.rows[2:], residual, (v[1] - v[0]).unsqueeze(0) - g_full, use)
        out: torch.Tensor = phi_g + phi_r
        return out
