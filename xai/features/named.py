"""Features known only by their names: they label values but cannot switch anything off."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NoReturn

import torch

from ..adapters._base import Batch
from ..exceptions import InvalidExplanationError

__all__ = ["NamedFeatures"]


class NamedFeatures:
    """The feature space of an Explanation built by hand, or loaded from a file whose feature
    spaces could not be saved (the documents and sentences of a generation prompt).

    It names the features (and keeps the example's text, if any) so that the explanation can be
    plotted, indexed and saved; it cannot perturb inputs, so metrics that remove features refuse
    it with an :class:`~xai.exceptions.InvalidExplanationError`.

    Parameters
    ----------
    names : sequence of str
        One name per feature.
    text : str, optional
        The explained text, for text and generation explanations.
    kind : str, default="NamedFeatures"
        The class of the feature space these names came from, for error messages.
    """

    def __init__(self, names: Sequence[str], *, text: str | None = None,
                 kind: str = "NamedFeatures") -> None:
        self._names = tuple(str(n) for n in names)
        self.text = text
        self.kind = kind

    @property
    def n_features(self) -> int:
        return len(self._names)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self._names

    def mask(self, keep: torch.Tensor) -> Batch:
        self._refuse("switch features off")

    def baseline(self) -> Batch:
        self._refuse("build the all-removed input")

    def reshape(self, values: torch.Tensor) -> torch.Tensor:
        self._refuse("map values back onto the input")

    def _refuse(self, what: str) -> NoReturn:
        source = "" if self.kind == "NamedFeatures" else f" (its {self.kind} could not be saved)"
        msg = (f"The features of this explanation are known only by their names{source}, so "
               f"they cannot {what}. Re-explain the inputs with the model.")
        raise InvalidExplanationError(msg)

    def __repr__(self) -> str:
        kind = "" if self.kind == "NamedFeatures" else f", kind={self.kind!r}"
        return f"NamedFeatures(n_features={self.n_features}{kind})"
