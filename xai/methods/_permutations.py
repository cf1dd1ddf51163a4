"""The one permutation-Shapley core: orderings, their chained prefix masks, and the credits.

Both estimators build on it: :class:`~xai.methods.shapley_sampling.ShapleySampling` streams the
prefix masks of every example through a model adapter, and
:func:`~xai.methods._coalitions.permutation_shapley` evaluates them (memoised) through a value
function; :class:`~xai.methods._budget.Moments` folds the credits into means and standard errors.

A permutation's *chain* is the empty coalition, its d - 1 proper prefixes (the first k players
of the ordering, k = 1..d-1) and the full coalition. The credit of a player is the change its
entry causes along the chain, so a permutation's credits telescope to v(all) - v(empty).
"""

from __future__ import annotations

import collections

import torch

from ..exceptions import InvalidParameterError

__all__ = ["Draws", "chain_credits", "check_pairs", "prefix_masks", "ranks"]


class Draws:
    """The permutations of one game, drawn in order only as they are needed.

    Permutation ``p`` is the ``p``-th ``randperm`` of ``gen`` (with ``antithetic``, ``2q`` is the
    ``q``-th draw and ``2q + 1`` its reverse). Permutations the caller has finished with are
    dropped (:meth:`release`), so only those between the mask builder and the credits are held.
    """

    def __init__(self, d: int, n: int, antithetic: bool, gen: torch.Generator) -> None:
        self.d, self.n, self.antithetic, self.gen = d, n, antithetic, gen
        self.held: collections.deque[torch.Tensor] = collections.deque()
        self.first = 0  # index of held[0]

    def perm(self, p: int) -> torch.Tensor:
        """Permutation ``p`` (drawn now if it has not been yet)."""
        while self.first + len(self.held) <= p:
            drawn = torch.randperm(self.d, generator=self.gen)
            self.held.append(drawn)
            if self.antithetic:
                self.held.append(drawn.flip(0))
        return self.held[p - self.first]

    def perms(self, start: int, stop: int) -> torch.Tensor:
        """Permutations ``start:stop`` stacked, (stop - start, d)."""
        return torch.stack([self.perm(p) for p in range(start, stop)])

    def release(self, upto: int) -> None:
        """Forget permutations before ``upto``."""
        while self.first < upto and self.held:
            self.held.popleft()
            self.first += 1


def ranks(perms: torch.Tensor) -> torch.Tensor:
    """Position of each player in each ordering, (P, d)."""
    d = perms.shape[1]
    return torch.empty_like(perms).scatter_(1, perms, torch.arange(d).expand_as(perms))


def prefix_masks(perms: torch.Tensor) -> torch.Tensor:
    """Keep-masks of every proper prefix of every ordering, (P, d - 1, d) bool:
    ``[p, k - 1, j]`` is True when player j is among the first k of ordering p."""
    d = perms.shape[1]
    return ranks(perms).unsqueeze(1) < torch.arange(1, d).view(1, -1, 1)


def chain_credits(perms: torch.Tensor, empty: torch.Tensor, middle: torch.Tensor,
                  full: torch.Tensor, antithetic: bool) -> torch.Tensor:
    """Each player's credit in each ordering, (draws, d, ...): antithetic pairs averaged.

    Parameters
    ----------
    perms : Tensor (P, d)
        The orderings (P even when ``antithetic``: a permutation then its reverse).
    empty, full : Tensor (...)
        v(empty coalition) and v(all players).
    middle : Tensor (P, d - 1, ...)
        v of each ordering's proper prefixes, in the order of :func:`prefix_masks`.
    antithetic : bool
    """
    n_perm, d = perms.shape
    trail = empty.shape
    chain = torch.cat([empty.expand(n_perm, 1, *trail), middle,
                       full.expand(n_perm, 1, *trail)], dim=1)  # (P, d + 1, ...)
    gains = chain[:, 1:] - chain[:, :-1]  # gain of the k-th added player
    index = perms.reshape(n_perm, d, *([1] * len(trail))).expand_as(gains)
    contrib = torch.zeros_like(gains).scatter_(1, index, gains)  # by player id
    if antithetic:
        contrib = contrib.reshape(n_perm // 2, 2, *contrib.shape[1:]).mean(1)
    return contrib


def check_pairs(n_permutations: int, antithetic: bool, owner: str) -> None:
    """Antithetic permutations come in pairs: their number must be even."""
    if antithetic and n_permutations % 2:
        msg = (f"The 'n_permutations' parameter of {owner} must be even when antithetic=True "
               f"(permutations come in pairs). Got {n_permutations} instead. Use "
               f"{n_permutations + 1} or antithetic=False.")
        raise InvalidParameterError(msg, owner=owner, parameter="n_permutations",
                                    value=n_permutations)
