"""Small records an Explanation holds: the resolved target and what model produced it."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch

from ._capabilities import MODALITIES, OUTPUT_KINDS, Modality, OutputKind
from ._validation import Options, check_param
from .exceptions import InvalidExplanationError

if TYPE_CHECKING:
    from .adapters._base import ModelAdapter

__all__ = ["ModelInfo", "ResolvedTarget", "as_probabilities"]


def as_probabilities(scores: torch.Tensor, output_kind: str) -> torch.Tensor | None:
    """Model scores (n, n_model_outputs) as class probabilities, read by ``output_kind``:
    softmax of logits, exp of log-probabilities, probabilities as they are; None for scores
    that have no probability reading (regressors, margins, raw module outputs)."""
    if output_kind == "logits":
        return scores.softmax(-1)
    if output_kind == "log_probabilities":
        return scores.exp()
    if output_kind == "probabilities":
        return scores
    return None


@dataclasses.dataclass(frozen=True, eq=False)
class ResolvedTarget:
    """Explained output indices (n_examples, n_outputs) and their names."""

    indices: torch.Tensor
    names: tuple[tuple[str, ...], ...]
    scores: torch.Tensor | None = None  # the model's scores at the inputs, all outputs

    @property
    def n_outputs(self) -> int:
        return int(self.indices.shape[1])

    def take(self, rows: Sequence[int]) -> ResolvedTarget:
        scores = None if self.scores is None else self.scores[list(rows)]
        return ResolvedTarget(self.indices[list(rows)], tuple(self.names[i] for i in rows), scores)

    def explained_scores(self) -> torch.Tensor:
        """The model's scores at the inputs for the explained outputs, (n_examples, n_outputs)."""
        if self.scores is None:
            msg = ("The model's scores at the inputs are not known for this target (an "
                   "Explanation loaded from an old file, or built by hand). Re-explain the "
                   "inputs with the model.")
            raise InvalidExplanationError(msg)
        return self.scores.gather(1, self.indices)


@dataclasses.dataclass(frozen=True)
class ModelInfo(Mapping[str, str]):
    """What model produced an Explanation: recorded from the adapter by every method.

    It reads as a mapping too (``exp.model_info["model"]``, ``dict(exp.model_info)``): the four
    fields first, then ``details``.

    Attributes
    ----------
    adapter : str
        The adapter class (``"HFClassifierAdapter"``, ``"SklearnAdapter"``, ...).
    model : str
        The model class (or the function's name).
    modality : {"tabular", "image", "text", "generation", "graph"}
        What kind of input the model takes.
    output_kind : {"logits", "probabilities", "log_probabilities", "scores"}
        What the model's scores are (see :data:`xai.OutputKind`); decides how
        :meth:`Explanation.probabilities` and the probability metrics read them.
    details : Mapping[str, str]
        Adapter-specific facts: checkpoint, tokenizer, max_length, response method, ...
    """

    adapter: str = ""
    model: str = ""
    modality: Modality = "tabular"
    output_kind: OutputKind = "scores"
    details: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        check_param("ModelInfo", "modality", self.modality, [Options(set(MODALITIES))])
        check_param("ModelInfo", "output_kind", self.output_kind, [Options(set(OUTPUT_KINDS))])

    @classmethod
    def of(cls, adapter: ModelAdapter) -> ModelInfo:
        """The record of ``adapter``: its modality and output kind, and its ``describe()``."""
        described = dict(adapter.describe())
        return cls(adapter=described.pop("adapter", type(adapter).__name__),
                   model=described.pop("model", type(adapter.model).__name__),
                   modality=adapter.modality, output_kind=adapter.output_kind,
                   details={str(k): str(v) for k, v in described.items()})

    @classmethod
    def from_mapping(cls, info: Mapping[str, Any]) -> ModelInfo:
        """Read a flat mapping (``dict(model_info)``, or the model_info of a version 1-2 file,
        whose ``"output"`` entry said ``"logits"`` where output_kind now does)."""
        rest = {str(k): str(v) for k, v in info.items()}
        kind = rest.pop("output_kind", None)
        legacy = rest.pop("output", "")
        if kind is None:
            kind = ("logits" if legacy == "logits" else "log_probabilities"
                    if "log-probabilities" in legacy else "probabilities"
                    if rest.get("response") == "predict_proba" else "scores")
        return cls(adapter=rest.pop("adapter", ""), model=rest.pop("model", ""),
                   modality=rest.pop("modality", "tabular"),  # type: ignore[arg-type]
                   output_kind=kind, details=rest)  # type: ignore[arg-type]

    def _flat(self) -> dict[str, str]:
        return {"adapter": self.adapter, "model": self.model, "modality": self.modality,
                "output_kind": self.output_kind, **self.details}

    def __getitem__(self, key: str) -> str:
        return self._flat()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._flat())

    def __len__(self) -> int:
        return 4 + len(self.details)


