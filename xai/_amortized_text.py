"""Text support of :class:`xai.AmortizedExplainer`: a per-token head over the frozen classifier.

The explainer of a text model is a small head (standardise -> MLP) applied to each token's last
hidden state of the classifier itself (run with ``output_hidden_states=True``, under no_grad:
the classifier stays frozen and is never saved). Token scores are summed into the example's
players (the teacher's words or tokens; special tokens and padding are never players), which
gives raw values (n, n_outputs, max d) that FastSHAP's additive efficient normalisation turns
into values summing to f(x) - f(baseline) over the example's own d players. Padded players are
excluded from the sums, the normalisation, the loss and the sampled coalitions.

The hidden states of the training and validation texts are computed once per fit (the encoder
is frozen), so epochs only run the head and, for FastSHAP, the model on the coalitions.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from .adapters._base import Batch, ModelAdapter
from .exceptions import IncompatibleModelError
from .features._base import FeatureSpace
from .methods._base import Method
from .methods._perturb import score_masks

__all__ = ["TokenHead", "fit_text", "text_values", "token_states"]

_KEYS = ("input_ids", "attention_mask", "token_type_ids")
N_TEXT_PROBES = 4


class TokenHead(torch.nn.Module):
    """Hidden states (n, L, width) -> standardise -> MLP -> token scores (n, L, n_outputs)."""

    mean: torch.Tensor
    scale: torch.Tensor

    def __init__(self, width: int, n_outputs: int, hidden: Sequence[int], mean: torch.Tensor,
                 scale: torch.Tensor) -> None:
        super().__init__()
        self.width, self.n_outputs = width, n_outputs
        self.register_buffer("mean", mean.float().clone())
        self.register_buffer("scale", scale.float().clone())
        layers: list[torch.nn.Module] = []
        w = width
        for h in hidden:
            layers += [torch.nn.Linear(w, h), torch.nn.ReLU()]
            w = h
        layers.append(torch.nn.Linear(w, n_outputs))
        self.body = torch.nn.Sequential(*layers)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.body((states.float() - self.mean) / self.scale)
        return out


# -- the classifier's representations ---------------------------------------------------------
def _reader(model: Any) -> Any:
    """How to read a model's last hidden states: the model itself with
    ``output_hidden_states=True`` (a transformers classifier), or its ``encoder`` (a sentence
    encoder under a pooling head, like the demo MiniLM classifier); None when neither."""
    import inspect

    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError, AttributeError):
        params = {}  # type: ignore[assignment]
    if "output_hidden_states" in params or any(
            p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return lambda kw: _last(model(**kw, output_hidden_states=True), model)
    encoder = getattr(model, "encoder", None)
    if isinstance(encoder, torch.nn.Module):
        return lambda kw: _last(encoder(**kw, output_hidden_states=True), model)
    return None


def _last(out: Any, model: Any) -> torch.Tensor:
    states = getattr(out, "hidden_states", None)
    if states is None and isinstance(out, Mapping):
        states = out.get("hidden_states")
    if not states:
        msg = (f"AmortizedExplainer reads the text model's last hidden states, and "
               f"{type(model).__name__} returned none with output_hidden_states=True. Return "
               "an object with .logits and .hidden_states (a tuple of (n, L, width) tensors).")
        raise IncompatibleModelError(msg, method="amortized")
    last: torch.Tensor = states[-1]
    return last


def token_states(adapter: ModelAdapter, batch: Batch, batch_size: int) -> torch.Tensor:
    """The classifier's last hidden states (n, L, width) of a tokenized batch, float32 on CPU
    (the model's own, or its sentence encoder's)."""
    model = getattr(adapter, "_model", None)
    read = None if model is None else _reader(model)
    if read is None:
        msg = (f"AmortizedExplainer reads the text model's last hidden states, and "
               f"{type(model).__name__} neither takes output_hidden_states=True nor has an "
               "'encoder' module that does. Use a transformers *ForSequenceClassification "
               "model, or return an object with .logits and .hidden_states.")
        raise IncompatibleModelError(msg, method="amortized")
    device = getattr(adapter, "device", torch.device("cpu"))
    parts = []
    with torch.no_grad():
        for s in range(0, len(batch), batch_size):
            kwargs = {k: v[s:s + batch_size].to(device) for k, v in batch.tensors.items()
                      if k in _KEYS}
            parts.append(read(kwargs).detach().float().cpu())
    return torch.cat(parts)


def pooling(features: Sequence[FeatureSpace], attention_mask: torch.Tensor,
            width: int) -> torch.Tensor:
    """(n, L, width) 0/1 matrices summing token positions into each example's players."""
    n, length = attention_mask.shape
    out = torch.zeros(n, length, width)
    for i, f in enumerate(features):
        pos = attention_mask[i].bool().nonzero().squeeze(1)
        tf = f.token_feature  # type: ignore[attr-defined]  # text features only
        sel = tf >= 0
        out[i, pos[sel], tf[sel]] = 1.0
    return out


def player_mask(features: Sequence[FeatureSpace]) -> torch.Tensor:
    """(n, max d) True on each example's real players, False on padding."""
    ds = torch.tensor([f.n_features for f in features])
    return torch.arange(int(ds.max())).unsqueeze(0) < ds.unsqueeze(1)


def normalise(raw: torch.Tensor, gap: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Additive efficient normalisation over each example's own players; padding stays 0."""
    m = mask.unsqueeze(1).to(raw.dtype)
    d = m.sum(-1)
    return (raw + ((gap - (raw * m).sum(-1)) / d).unsqueeze(-1)) * m


def raw_values(head: torch.nn.Module, states: torch.Tensor, pool: torch.Tensor) -> torch.Tensor:
    """(n, C, max d) raw player values: token scores summed over each player's tokens."""
    return torch.einsum("nlc,nld->ncd", head(states), pool)


def text_values(head: torch.nn.Module, adapter: ModelAdapter, batch: Batch,
                features: Sequence[FeatureSpace], gap: torch.Tensor,
                batch_size: int) -> torch.Tensor:
    """Normalised values (n, C, max d) of a batch, float64; one encoder pass plus the head."""
    states = token_states(adapter, batch, batch_size)
    mask = player_mask(features)
    pool = pooling(features, batch.tensors["attention_mask"], mask.shape[1])
    with torch.no_grad():
        return normalise(raw_values(head, states, pool).double(), gap.double(), mask)


# -- the game ---------------------------------------------------------------------------------
def kernel_masks(ds: Sequence[int], k: int, gen: torch.Generator) -> torch.Tensor:
    """(n, k, max d) paired Shapley-kernel coalitions over each example's own d players (none
    for an example of fewer than 2 players: its value is its gap)."""
    from .amortized import _kernel_coalitions

    out = torch.zeros(len(ds), k, max(ds), dtype=torch.bool)
    for i, d in enumerate(ds):
        if d >= 2:
            out[i, :, :d] = _kernel_coalitions(1, k, d, gen)[0]
    return out


def wls_loss(phi: torch.Tensor, masks: torch.Tensor, v: torch.Tensor, empty: torch.Tensor,
             ds: torch.Tensor) -> torch.Tensor:
    """FastSHAP's loss per example (mean over coalitions and outputs, times its d), averaged
    over the examples with at least 2 players."""
    pred = empty.unsqueeze(1) + torch.einsum("nkd,ncd->nkc", masks.to(phi.dtype), phi)
    per = (pred - v).pow(2).mean((1, 2)) * ds.to(phi.dtype)
    active = (ds >= 2).to(phi.dtype)
    return (per * active).sum() / active.sum().clamp_min(1.0)


def masked_mse(phi: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(1).expand_as(phi).to(phi.dtype)
    return ((phi - target[..., :phi.shape[-1]]).pow(2) * m).sum() / m.sum().clamp_min(1.0)


class _TextSet:
    """One set of texts: batch, players, f(x), f(baseline), cached states and pooling."""

    def __init__(self, game: _TextGame, batch: Batch) -> None:
        self.batch = batch
        self.features = game.teacher_method.feature_spaces(game.adapter, batch)
        self.mask = player_mask(self.features)
        self.ds = self.mask.sum(1)
        self.full = game.adapter.predict_batched(batch, game.batch_size).float()
        self.empty = game.score(self.features, torch.zeros(len(batch), 1, self.mask.shape[1],
                                                          dtype=torch.bool))[:, 0]
        self.states = token_states(game.adapter, batch, game.batch_size)
        self.pool = pooling(self.features, batch.tensors["attention_mask"], self.mask.shape[1])
        game.rows += 2 * len(batch)

    @property
    def gap(self) -> torch.Tensor:
        return self.full - self.empty


class _TextGame:
    """The teacher's game on a text model, every scored row counted."""

    def __init__(self, adapter: ModelAdapter, teacher: Method, batch_size: int) -> None:
        self.adapter, self.teacher_method, self.batch_size = adapter, teacher, batch_size
        self.rows = 0

    def score(self, features: Sequence[FeatureSpace], masks: torch.Tensor) -> torch.Tensor:
        """(n, k, C) outputs of the coalitions (n, k, max d), each cut to its example's d."""
        keeps = [masks[i, :, :f.n_features] for i, f in enumerate(features)]
        scores, _ = score_masks(self.adapter, features, keeps, batch_size=self.batch_size)
        self.rows += int(masks.shape[0] * masks.shape[1])
        return torch.stack(scores).float()

    def teacher(self, batch: Batch, width: int, seed: int, cache: str | Path | None,
                part: str) -> torch.Tensor:
        """The teacher's values of every output (n, C, width), zero on padding, per chunk,
        cached on disk when asked."""
        from .amortized import _plain_params

        chunk = 256
        folder = None if cache is None else Path(cache)
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
        key = hashlib.sha256(json.dumps([self.teacher_method.name,
                                         _plain_params(self.teacher_method.get_params()), seed,
                                         list(batch.texts or ())], sort_keys=True,
                                        default=str).encode()).hexdigest()[:16]
        out = []
        for s in range(0, len(batch), chunk):
            path = None if folder is None else folder / f"teacher-{part}-{key}-{s:07d}.pt"
            if path is not None and path.is_file():
                values = torch.load(path, weights_only=True)
            else:
                piece = batch.take(list(range(s, min(len(batch), s + chunk))))
                exp = self.teacher_method.explain(self.adapter, piece, target="all",
                                                  batch_size=self.batch_size, random_state=seed)
                n_rows = exp.extras.get("n_rows")
                self.rows += int(n_rows.sum()) if isinstance(n_rows, torch.Tensor) else 0
                values = exp.values.float()
                if exp.feature_mask is not None:
                    values = values * exp.feature_mask.unsqueeze(1)
                if path is not None:
                    tmp = path.with_suffix(".tmp")
                    torch.save(values, tmp)
                    tmp.replace(path)
            pad = torch.zeros(*values.shape[:2], width)
            pad[..., :values.shape[-1]] = values[..., :width]
            out.append(pad)
        return torch.cat(out)

    def exact(self, batch: Batch, gran: str, removal: str, width: int) -> torch.Tensor:
        """Exact Shapley values (n, C, width) by enumeration, in the same game."""
        from .methods.shapley_sampling import ShapleySampling

        exp = ShapleySampling(max_exact=2**width, baseline=removal, granularity=gran).explain(
            self.adapter, batch, target="all", batch_size=self.batch_size)
        values = exp.values.float()
        if exp.feature_mask is not None:
            values = values * exp.feature_mask.unsqueeze(1)
        self.rows += sum(2**int(d) for d in player_mask(
            self.teacher_method.feature_spaces(self.adapter, batch)).sum(1))
        out = torch.zeros(*values.shape[:2], width)
        out[..., :values.shape[-1]] = values
        return out


# -- fitting ----------------------------------------------------------------------------------
def _texts(value: Any) -> Any:
    """A pandas Series / numpy array of texts as a list (the adapter checks the rest)."""
    if not isinstance(value, str | list | tuple) and hasattr(value, "tolist"):
        return value.tolist()
    return value


def fit_text(cls: Any, adapter: ModelAdapter, teacher_method: Method, params: Mapping[str, Any],
             X_train: Any, *, validation: Any, objective: str, epochs: int, random_state: int,
             hidden: Sequence[int], n_coalitions: int, batch_size: int, lr: float, patience: int,
             cache: str | Path | None, exact_max_features: int, model_batch_size: int,
             show_progress: bool | None, start: float) -> Any:
    """AmortizedExplainer.fit for a text model (see there for the parameters)."""
    from .amortized import (
        FitReport,
        _fail,
        _init_weights,
        _plain_params,
        _Record,
        _rows,
        _train,
        _weights_digest,
    )

    if params.get("feature_groups") is not None:
        _fail("teacher_params", dict(params), "sets feature_groups, which the text explainer "
              "does not support", "Leave feature_groups out: the players are words or tokens.")
    gen = torch.Generator().manual_seed(int(random_state))
    train = adapter.prepare(_texts(X_train))
    if validation is None:
        n = len(train)
        if n < 10:
            _fail("X_train", n, "has fewer than 10 texts to split off a validation set",
                  "Pass more texts, or validation=texts_val.")
        perm = torch.randperm(n, generator=gen)
        n_val = max(2, n // 5)
        val, train = train.take(perm[:n_val].tolist()), train.take(perm[n_val:].tolist())
        train = adapter.prepare(list(train.texts or ()))  # re-padded to its own longest text
        val = adapter.prepare(list(val.texts or ()))
    else:
        val = adapter.prepare(_texts(validation))
    game = _TextGame(adapter, teacher_method, model_batch_size)
    tr, va = _TextSet(game, train), _TextSet(game, val)
    first = tr.features[0]
    gran, removal = str(getattr(first, "granularity", "word")), str(first.removal)  # type: ignore[attr-defined]
    n_out, width = int(tr.full.shape[1]), int(tr.states.shape[-1])
    if int(tr.ds.max()) < 2:
        _fail("X_train", int(tr.ds.max()), "has texts of one word at most: their value is "
              "f(x) - f(baseline), nothing to learn", "Pass longer texts.")
    keep = train.tensors["attention_mask"].bool().reshape(-1)
    flat = tr.states.reshape(-1, width)[keep]
    mean, scale = flat.mean(0), flat.std(0).clamp_min(1e-6)
    # the teacher's seed first: the weights' draws depend on hidden, the teacher's must not
    teacher_seed = int(torch.randint(0, 2**31 - 1, (1,), generator=gen).item())
    head = TokenHead(width, n_out, tuple(hidden), mean, scale)
    _init_weights(head, gen)
    t_val = game.teacher(val, va.mask.shape[1], teacher_seed, cache, "val")
    t_tr = game.teacher(train, tr.mask.shape[1], teacher_seed, cache, "train") \
        if objective == "distill" else None
    val_masks = kernel_masks(va.ds.tolist(), n_coalitions, gen)
    val_scores = game.score(va.features, val_masks)

    def values(s: _TextSet, idx: Any) -> torch.Tensor:
        w = int(s.ds[idx].max())
        return normalise(raw_values(head, s.states[idx], s.pool[idx][..., :w]), s.gap[idx],
                         s.mask[idx][:, :w])

    def step(idx: torch.Tensor) -> torch.Tensor:
        phi = values(tr, idx)
        if t_tr is not None:  # distill
            return masked_mse(phi, t_tr[idx], tr.mask[idx][:, :phi.shape[-1]])
        ds = tr.ds[idx]
        masks = kernel_masks(ds.tolist(), n_coalitions, gen)
        v = game.score([tr.features[i] for i in idx.tolist()], masks)
        return wls_loss(phi, masks, v, tr.empty[idx], ds)

    def validate() -> float:
        phi_va = values(va, torch.arange(len(val)))
        return float(wls_loss(phi_va, val_masks, val_scores, va.empty, va.ds)) \
            if objective == "fastshap" else float(masked_mse(phi_va, t_val, va.mask))

    trained = _train(head, n_train=len(train), batch_size=batch_size, epochs=epochs,
                     patience=patience, lr=lr, gen=gen, step=step, validate=validate,
                     desc=f"fit {objective}", show_progress=show_progress)
    with torch.no_grad():
        phi_va = values(va, torch.arange(len(val)))

    def rmse(a: torch.Tensor, b: torch.Tensor) -> float:
        return float(masked_mse(a, b, va.mask).sqrt())

    rmse_teacher = rmse(phi_va, t_val)
    exact = game.exact(val, gran, removal, va.mask.shape[1]) \
        if int(va.ds.max()) <= exact_max_features else None
    probe_texts = list((train.texts or ())[:N_TEXT_PROBES])
    probe_outputs = adapter.predict_batched(adapter.prepare(probe_texts), model_batch_size)
    tok = getattr(adapter, "tokenizer", None)
    digest = hashlib.sha256(json.dumps(list(train.texts or ())).encode()).hexdigest()
    record = _Record(
        feature_names=(), output_names=(
            None if adapter.output_names() is None else tuple(adapter.output_names() or ())),
        n_outputs=n_out, hidden=tuple(int(h) for h in hidden), baseline=(),
        teacher=teacher_method.name, teacher_params=_plain_params(params), objective=objective,
        random_state=int(random_state), probes=(), probe_outputs=_rows(probe_outputs),
        data={"n_train": len(train), "n_val": len(val), "train_sha256": digest,
              "val_sha256": hashlib.sha256(json.dumps(list(val.texts or ())).encode())
              .hexdigest()},
        text={"probe_texts": probe_texts, "granularity": gran, "removal": removal,
              "width": width, "tokenizer": type(tok).__name__,
              "vocab_size": int(len(tok)) if tok is not None else 0})
    report = FitReport(
        history=trained.history, best_epoch=trained.best_epoch,
        rmse_teacher=rmse_teacher,
        rmse_exact=None if exact is None else rmse(phi_va, exact),
        teacher_rmse_exact=None if exact is None else rmse(t_val, exact),
        fit_seconds=time.perf_counter() - start, n_train=len(train), n_val=len(val),
        model_rows=game.rows, stopped_early=trained.stopped_early)
    import dataclasses

    return cls(network=head, record=dataclasses.replace(record,
                                                        weights_sha256=_weights_digest(head)),
               report=report)


def check_width(adapter: ModelAdapter, batch: Batch, width: int, batch_size: int) -> None:
    """Refuse a model whose token representations are not ``width`` wide."""
    got = int(token_states(adapter, batch.take([0]), batch_size).shape[-1])
    if got != width:
        msg = (f"This amortized explainer was fitted on token representations of width "
               f"{width}, and this model's last hidden states have width {got}. Fit an "
               "explainer for this model (AmortizedExplainer.fit).")
        raise IncompatibleModelError(msg, method="amortized")

