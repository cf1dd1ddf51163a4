"""Where BEE's paths run: the inputs, the word embeddings of a text model, or a named layer.

A :class:`PathSpace` holds the activations a (n, *S) of the explained examples, a differentiable
``forward(points, rows)`` that scores points of that space for the given examples (a forward hook
puts the points in place of the layer's output), the reference data the baseline families draw
from, and ``to_features`` that turns element values into the example's feature values.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch

from ..adapters._base import Batch, ModelAdapter
from ..exceptions import InvalidInputError, InvalidParameterError
from ..features._base import FeatureSpace
from ._bee_families import FamilyContext, Stats

__all__ = ["PathSpace", "build_space", "model_contexts", "resolve_layer"]


@dataclasses.dataclass
class PathSpace:
    kind: str  # "tabular", "image" or "text"
    acts: torch.Tensor  # (n, *S)
    forward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (points, rows) -> (m, n_out)
    to_features: Callable[[int, torch.Tensor], torch.Tensor]  # (i, (o, *S)) -> (o, n_features)
    stats: list[Stats]  # per example (shared unless the statistics come from the example)
    background: torch.Tensor | None  # (m, *S) for tabular/image; text: (m, L_bg, *hidden)
    keep: torch.Tensor | None = None  # text: (n, L) positions that keep the input (specials)
    constants: Mapping[str, torch.Tensor] = dataclasses.field(default_factory=dict)  # (n, *S)
    layer: str = "inputs"

    def family_context(self, i: int) -> FamilyContext:
        bg = self.background
        if bg is not None and self.kind == "text":
            bg = _align(bg, self.acts.shape[1], self.constants["pad"][i])
        return FamilyContext(self.kind, self.acts[i], self.stats[i], bg,
                             {k: v[i] for k, v in self.constants.items()})

    def finish(self, i: int, baseline: torch.Tensor) -> torch.Tensor:
        """A sampled baseline with the positions that keep the input (special tokens) restored."""
        if self.keep is None:
            return baseline
        keep = self.keep[i].reshape(-1, *([1] * (baseline.dim() - 1)))
        return torch.where(keep, self.acts[i], baseline)


def _align(bg: torch.Tensor, length: int, pad: torch.Tensor) -> torch.Tensor:
    """Background sentences cut or padded (with the example's [PAD] activations) to ``length``."""
    if bg.shape[1] >= length:
        return bg[:, :length]
    fill = pad[bg.shape[1]:length].unsqueeze(0).expand(bg.shape[0], -1, *pad.shape[1:])
    return torch.cat([bg, fill], dim=1)


def resolve_layer(model: Any, layer: Any) -> tuple[str, torch.nn.Module]:
    """``layer`` (a submodule, or its name in ``model.named_modules()``) as (name, module)."""
    if not isinstance(model, torch.nn.Module):
        msg = (f"BEE's 'layer' names a submodule of a torch model, but the model is "
               f"{type(model).__name__}. Leave layer=None to integrate over the inputs.")
        raise InvalidParameterError(msg, owner="BEE", parameter="layer", value=layer)
    named = dict(model.named_modules())
    if isinstance(layer, torch.nn.Module):
        for name, mod in named.items():
            if mod is layer:
                return name, mod
        msg = "BEE's 'layer' module is not a submodule of the explained model."
        raise InvalidParameterError(msg, owner="BEE", parameter="layer", value=type(layer))
    if isinstance(layer, str) and layer in named and layer:
        return layer, named[layer]
    close = [n for n in named if n and isinstance(layer, str) and layer in n][:5]
    hint = f" Close names: {close}." if close else ""
    msg = (f"BEE's 'layer' must be a submodule of the model or its name in "
           f"model.named_modules(); got {layer!r}.{hint}")
    raise InvalidParameterError(msg, owner="BEE", parameter="layer", value=layer)


@contextlib.contextmanager
def _hooked(module: torch.nn.Module, replace: torch.Tensor | None,
            store: list[torch.Tensor] | None = None) -> Iterator[None]:
    """Capture ``module``'s output into ``store`` and/or replace it by ``replace``."""

    def hook(_m: Any, _inp: Any, out: Any) -> Any:
        first = out[0] if isinstance(out, tuple) else out
        if store is not None:
            store.append(first.detach())
        if replace is None:
            return None
        new = replace.to(first.dtype)
        if new.shape != first.shape:
            msg = (f"BEE's layer output changed shape between calls ({tuple(first.shape)} vs "
                   f"{tuple(new.shape)}); name a layer whose output has a fixed shape per row.")
            raise InvalidParameterError(msg, owner="BEE", parameter="layer")
        return (new, *out[1:]) if isinstance(out, tuple) else new

    handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def _capture(module: torch.nn.Module, run: Callable[[], Any]) -> torch.Tensor:
    store: list[torch.Tensor] = []
    with _hooked(module, None, store), torch.no_grad():
        run()
    return store[0]


def build_space(adapter: ModelAdapter, batch: Batch, features: tuple[FeatureSpace, ...], *,
                layer: Any, background: Any) -> PathSpace:
    """The path space of ``batch``: inputs, text embeddings or the named ``layer``."""
    if adapter.modality == "text":
        return _text_space(adapter, batch, features, layer, background)
    if layer is not None and adapter.modality == "tabular":
        msg = ("BEE's 'layer' is for text models (hidden states of shape (n, L, H)) and image "
               "models (feature maps (n, C, h, w)): a tabular model's hidden units do not map "
               "back to its input features. Leave layer=None to integrate over the inputs.")
        raise InvalidParameterError(msg, owner="BEE", parameter="layer", value=layer)
    xs = batch.attributed()
    if len(xs) != 1:
        msg = (f"BEE explains models with one attributed input; this one takes {len(xs)}. Use "
               "integrated_gradients, or wrap the model in a function of one tensor.")
        raise InvalidInputError(msg, parameter="inputs", value=len(xs))
    from .integrated_gradients import check_float_inputs

    check_float_inputs(xs, "BEE")
    x = xs[0].detach()
    path_fwd, row_args = adapter.path_forward(batch, 1)
    bg = None if background is None else _background_inputs(adapter, background, x)

    def input_forward(points: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return path_fwd(points, *(a[rows] for a in row_args))

    stats = Stats.unit(x[0]) if bg is None else Stats.of(bg)
    if layer is None:
        return PathSpace(adapter.modality, x, input_forward,
                         lambda i, v: features[i].aggregate(v),  # type: ignore[attr-defined]
                         [stats] * len(batch), bg)
    name, module = resolve_layer(adapter.model, layer)
    acts = _capture(module, lambda: path_fwd(x, *row_args))
    if acts.dim() != 4:
        msg = (f"BEE's layer {name!r} of an image model must output feature maps (n, C, h, w); "
               f"it outputs shape {tuple(acts.shape)}.")
        raise InvalidParameterError(msg, owner="BEE", parameter="layer", value=name)
    bg_acts = None if bg is None else _capture(module, lambda: path_fwd(bg, *(
        a[:1].expand(bg.shape[0], *a.shape[1:]) for a in row_args)))

    def layer_forward(points: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        with _hooked(module, points):
            return input_forward(x[rows], rows)

    def upsample(i: int, v: torch.Tensor) -> torch.Tensor:
        maps = v.sum(1, keepdim=True)  # channel sum: (o, 1, h, w)
        size = features[i].x.shape[-2:]  # type: ignore[attr-defined]
        up = torch.nn.functional.interpolate(maps, size=tuple(size), mode="bilinear",
                                             align_corners=False)
        up = up * (maps.shape[-1] * maps.shape[-2]) / (size[0] * size[1])  # keep the total
        channels = features[i].x.shape[0] if features[i].x.dim() == 3 else 1  # type: ignore[attr-defined]
        elem = (up / channels).expand(v.shape[0], channels, *size)
        return features[i].aggregate(  # type: ignore[attr-defined,no-any-return]
            elem.reshape(v.shape[0], *features[i].x.shape))  # type: ignore[attr-defined]

    lstats = Stats.unit(acts[0]) if bg_acts is None else Stats.of(bg_acts)
    return PathSpace("image", acts, layer_forward, upsample, [lstats] * len(batch), bg_acts,
                     layer=name)


def _background_inputs(adapter: ModelAdapter, background: Any, x: torch.Tensor) -> torch.Tensor:
    try:
        bg = adapter.prepare(background).attributed()[0].detach()
    except InvalidInputError as err:
        msg = (f"BEE's 'background' must be inputs of the same kind as the explained ones: "
               f"{err}")
        raise InvalidParameterError(msg, owner="BEE", parameter="background") from err
    if bg.shape[1:] != x.shape[1:]:
        msg = (f"BEE's 'background' rows have shape {tuple(bg.shape[1:])}, but the inputs have "
               f"{tuple(x.shape[1:])}. Pass background rows like the inputs (e.g. X_train).")
        raise InvalidParameterError(msg, owner="BEE", parameter="background",
                                    value=tuple(bg.shape))
    return bg.to(x.dtype)


def _text_space(adapter: Any, batch: Batch, features: tuple[Any, ...], layer: Any,
                background: Any) -> PathSpace:
    if layer is None:
        module, name = adapter.embedding_layer(), "embeddings"
    else:
        name, module = resolve_layer(adapter.model, layer)
    ids, attn = batch.tensors["input_ids"], batch.tensors["attention_mask"]
    extra = tuple(batch.tensors[k] for k in ("token_type_ids",) if k in batch.tensors)
    content = attn.bool() & ~batch.tensors["special_tokens_mask"].bool()
    acts = _capture(module, lambda: adapter.forward_ids(ids, attn, *extra))
    if acts.dim() < 3 or acts.shape[:2] != ids.shape:
        msg = (f"BEE's layer {name!r} of a text model must output one vector per token, shape "
               f"(n, L, H); it outputs {tuple(acts.shape)}. Name the embeddings or a "
               "transformer block.")
        raise InvalidParameterError(msg, owner="BEE", parameter="layer", value=name)
    tok = adapter.tokenizer
    constants = {}
    for kind, tid in (("pad", tok.pad_token_id), ("mask", getattr(tok, "mask_token_id", None))):
        if tid is not None:
            rep = torch.where(content, torch.full_like(ids, int(tid)), ids)

            def run(r: torch.Tensor = rep) -> Any:
                return adapter.forward_ids(r, attn, *extra)

            constants[kind] = _capture(module, run)
    bg = None
    if background is not None:
        b = _background_texts(adapter, background)
        bt = b.tensors
        bextra = tuple(bt[k] for k in ("token_type_ids",) if k in bt)
        bg = _capture(module, lambda: adapter.forward_ids(bt["input_ids"], bt["attention_mask"],
                                                          *bextra))
        bcontent = bt["attention_mask"].bool() & ~bt["special_tokens_mask"].bool()
        shared = Stats.of(bg[bcontent])
    weight = getattr(module, "weight", None)
    if bg is None and isinstance(module, torch.nn.Embedding) and weight is not None:
        shared = Stats.of(weight.detach())
    stats = ([shared] * len(batch) if bg is not None or isinstance(module, torch.nn.Embedding)
             else [Stats.of(acts[i][content[i]]) for i in range(len(batch))])

    def forward(points: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        with _hooked(module, points):
            return adapter.forward_ids(ids[rows], attn[rows], *(e[rows] for e in extra))  # type: ignore[no-any-return]

    def to_features(i: int, v: torch.Tensor) -> torch.Tensor:
        per_token = v.flatten(2).sum(-1)  # (o, L)
        return features[i].aggregate(per_token[:, attn[i].bool()])  # type: ignore[no-any-return]

    return PathSpace("text", acts, forward, to_features, stats, bg, keep=~content,
                     constants=constants, layer=name)


def _background_texts(adapter: Any, background: Any) -> Batch:
    try:
        return adapter.prepare(background)  # type: ignore[no-any-return]
    except InvalidInputError as err:
        msg = f"BEE's 'background' must be texts like the explained ones: {err}"
        raise InvalidParameterError(msg, owner="BEE", parameter="background") from err


def model_contexts(adapter: ModelAdapter, batch: Batch, space: PathSpace, batch_size: int
                   ) -> tuple[torch.Tensor, str]:
    """Context vectors for the bandit, (n, d): the model's penultimate features (the input of its
    last ``nn.Linear``) when it has one, else the path-space activations (text: mean over the
    words)."""
    model = adapter.model
    linears = ([m for m in model.modules() if isinstance(m, torch.nn.Linear)]
               if isinstance(model, torch.nn.Module) else [])
    if linears:
        store: list[torch.Tensor] = []

        def hook(_m: Any, inp: Any) -> None:
            store.append(inp[0].detach().float())

        handle = linears[-1].register_forward_pre_hook(hook)
        try:
            adapter.predict_batched(batch, batch_size)
        finally:
            handle.remove()
        out = torch.cat([s.reshape(s.shape[0], -1) if s.dim() == 2 else
                         s[:, 0].reshape(s.shape[0], -1) for s in store])
        if out.shape[0] == len(batch):
            return out, "penultimate"
    if space.kind == "text" and space.keep is not None:
        w = (~space.keep).float().unsqueeze(-1)
        pooled = (space.acts.flatten(2) * w).sum(1) / w.sum(1).clamp_min(1)
        return pooled, "inputs"
    return space.acts.flatten(1).float(), "inputs"
