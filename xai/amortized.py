"""Amortized explainers: a network fitted once returns a Shapley-style map in one forward pass.

``AmortizedExplainer.fit`` trains a small network on a model's training inputs, either

- ``objective="fastshap"`` (Jethani, Sudarshan, Covert, Lee, Ranganath, "FastSHAP: Real-Time
  Shapley Value Estimation", ICLR 2022): the Shapley weighted least-squares loss over
  coalitions drawn from the Shapley kernel (paired with their complements), scored on the
  model; no teacher value is ever computed for training, or
- ``objective="distill"`` (Schwarzenberg, Feldhus, Möller, "Efficient Explanations from
  Empirical Explainers", BlackboxNLP 2021): regression on a teacher's maps (any registered
  method, batched), cached on disk so a killed fit resumes.

Both play the teacher's game: the same features and the same removal (the teacher's baseline),
so an amortized map is comparable value for value with the teacher's. Efficiency is imposed by
FastSHAP's additive efficient normalisation, phi = phi_raw + (f(x) - f(baseline) - sum phi_raw)
/ d, at training and at inference: the values of every output sum to f(x) - f(baseline).

After fitting, ``xai.explain(model, X, method=amortized)`` costs one explainer forward per batch
plus the two model rows the normalisation needs per example (f(x), which resolving the target
computes anyway, and f(baseline)). ``save``/``load`` write safetensors weights and a JSON record
(features, outputs, baseline, teacher, objective, seed, the validation report and probe rows);
``load`` refuses a model whose outputs on the probe rows differ from the fitted model's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import sys
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from ._capabilities import Capability
from ._validation import fmt_value
from .adapters import as_adapter
from .adapters._base import Batch, ModelAdapter
from .exceptions import IncompatibleModelError, InvalidInputError, InvalidParameterError
from .explanation import ResolvedTarget
from .features._base import FeatureSpace
from .methods._base import AttributionOutput, Method
from .methods._perturb import score_masks

__all__ = ["AmortizedExplainer", "FitReport"]

_FORMAT = "posthoc-xai amortized explainer 1"
_WEIGHTS = "explainer.safetensors"
_RECORD = "explainer.json"
_N_PROBES = 8
_OBJECTIVES = ("fastshap", "distill")
_VERIFIED: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()
# f(baseline) of a verified tabular model, per explainer (the baseline row is fixed at fit time)
_BASELINE: weakref.WeakKeyDictionary[Any, dict[str, dict[bytes, torch.Tensor]]] = \
    weakref.WeakKeyDictionary()


# -- the network -----------------------------------------------------------------------------
class _MLP(torch.nn.Module):
    """Standardised inputs -> MLP -> (n, n_outputs, n_features) raw values."""

    mean: torch.Tensor
    scale: torch.Tensor

    def __init__(self, n_features: int, n_outputs: int, hidden: Sequence[int],
                 mean: torch.Tensor, scale: torch.Tensor) -> None:
        super().__init__()
        self.n_features, self.n_outputs = n_features, n_outputs
        self.register_buffer("mean", mean.float().clone())
        self.register_buffer("scale", scale.float().clone())
        layers: list[torch.nn.Module] = []
        width = n_features
        for h in hidden:
            layers += [torch.nn.Linear(width, h), torch.nn.ReLU()]
            width = h
        layers.append(torch.nn.Linear(width, n_features * n_outputs))
        self.body = torch.nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = (x.float() - self.mean) / self.scale
        out: torch.Tensor = self.body(z).view(-1, self.n_outputs, self.n_features)
        return out


def _normalise(raw: torch.Tensor, gap: torch.Tensor) -> torch.Tensor:
    """Additive efficient normalisation: values of each output sum to ``gap`` (n, C)."""
    d = raw.shape[-1]
    return raw + ((gap - raw.sum(-1)) / d).unsqueeze(-1)


def _kernel_coalitions(n: int, k: int, d: int, gen: torch.Generator) -> torch.Tensor:
    """(n, k, d) bool coalitions from the Shapley kernel, paired: row 2j+1 = not row 2j."""
    sizes = torch.arange(1, d)
    p = 1.0 / (sizes * (d - sizes)).double()
    m = (k + 1) // 2
    size = sizes[torch.multinomial(p / p.sum(), n * m, replacement=True, generator=gen)]
    order = torch.rand(n * m, d, generator=gen).argsort(dim=1)
    ranks = order.argsort(dim=1)
    first = (ranks < size.unsqueeze(1)).view(n, m, d)
    pair = torch.stack([first, ~first], dim=2).view(n, 2 * m, d)
    return pair[:, :k]


# -- the report ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class FitReport:
    """What a fit did and how good the explainer is on the validation rows.

    Attributes
    ----------
    history : list of dict
        Per epoch: ``epoch``, ``train_loss``, ``val_loss`` (the objective on the validation
        rows), ``seconds``.
    best_epoch : int
        The epoch whose weights were kept (lowest validation loss).
    rmse_teacher, rmse_exact : float or None
        Validation RMSE of the amortized values against the teacher's and against exact
        Shapley values (None where exact enumeration would exceed ``exact_max_features``).
    teacher_rmse_exact : float or None
        The teacher's own RMSE against exact values on the same rows (its noise floor).
    fit_seconds : float
    n_train, n_val : int
    model_rows : int
        Model rows the fit scored (training coalitions, teacher and validation values).
    """

    history: tuple[Mapping[str, float], ...]
    best_epoch: int
    rmse_teacher: float | None
    rmse_exact: float | None
    teacher_rmse_exact: float | None
    fit_seconds: float
    n_train: int
    n_val: int
    model_rows: int
    stopped_early: bool = False

    def __repr__(self) -> str:
        def f(v: float | None) -> str:
            return "n/a" if v is None else f"{v:.4g}"

        last = self.history[self.best_epoch - 1] if self.history else {}
        return (f"FitReport(best_epoch={self.best_epoch} of {len(self.history)}, val_loss="
                f"{f(last.get('val_loss'))}, rmse_teacher={f(self.rmse_teacher)}, rmse_exact="
                f"{f(self.rmse_exact)}, teacher_rmse_exact={f(self.teacher_rmse_exact)}, "
                f"fit_seconds={self.fit_seconds:.1f}, n_train={self.n_train}, "
                f"n_val={self.n_val}, model_rows={self.model_rows})")

    def to_dict(self) -> dict[str, Any]:
        return {f.name: (list(map(dict, self.history)) if f.name == "history"
                         else getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FitReport:
        kw = dict(data)
        kw["history"] = tuple(dict(h) for h in kw["history"])
        return cls(**kw)


@dataclasses.dataclass(frozen=True)
class _Record:
    """Everything besides the weights: the game, the fit and how to check the model."""

    feature_names: tuple[str, ...]
    output_names: tuple[str, ...] | None
    n_outputs: int
    hidden: tuple[int, ...]
    baseline: tuple[float, ...]
    teacher: str
    teacher_params: Mapping[str, Any]
    objective: str
    random_state: int
    probes: tuple[tuple[float, ...], ...]
    probe_outputs: tuple[tuple[float, ...], ...]
    data: Mapping[str, Any]
    weights_sha256: str = ""
    #: Text models only: probe texts, granularity, removal, representation width, tokenizer.
    text: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        if out["text"] is None:  # a tabular record keeps its format
            del out["text"]
        return out


# -- the method ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class AmortizedExplainer(Method):
    """An explainer network fitted to a model: Shapley-style values in one forward pass.

    Build it with :meth:`fit` (or :meth:`load`), then pass it as the method:
    ``xai.explain(model, X, method=amortized)``. Tabular models (torch, scikit-learn or any
    callable over a numeric matrix): an MLP over the standardised row. Text models ((model,
    tokenizer) whose model returns ``hidden_states`` with ``output_hidden_states=True``): a
    small per-token head over the classifier's own frozen last hidden states, token scores
    summed into the teacher's words (special tokens and padding are never players), normalised
    over each text's own number of words (see ``xai._amortized_text``).

    Attributes
    ----------
    network : torch.nn.Module
        Inputs (n, d) -> raw values (n, n_outputs, d), or for text the token head (n, L, width)
        -> (n, L, n_outputs); normalised for efficiency on use.
    record : _Record
        Feature names, outputs, baseline, teacher, objective, seed, probe rows.
    report : FitReport
        The fit's history and validation errors.

    References
    ----------
    Jethani et al., "FastSHAP: Real-Time Shapley Value Estimation", ICLR 2022; Schwarzenberg
    et al., "Efficient Explanations from Empirical Explainers", BlackboxNLP 2021.
    """

    name: ClassVar[str] = "amortized"
    requires: ClassVar[Capability] = Capability.FORWARD
    modalities: ClassVar[frozenset[Any]] = frozenset({"tabular", "text"})
    deterministic: ClassVar[bool] = True

    network: torch.nn.Module
    record: _Record
    report: FitReport

    # -- fitting ---------------------------------------------------------------------------
    @classmethod
    def fit(cls, model: Any, X_train: Any, *, teacher: str = "shapley_sampling",
            teacher_params: Mapping[str, Any] | None = None,
            objective: Literal["fastshap", "distill"] = "fastshap", epochs: int = 50,
            validation: Any = None, random_state: int = 0, hidden: Sequence[int] = (128, 128),
            n_coalitions: int = 32, batch_size: int = 32, lr: float = 2e-3, patience: int = 5,
            cache: str | Path | None = None, exact_max_features: int = 12,
            model_batch_size: int | Literal["auto"] = "auto",
            show_progress: bool | None = None) -> AmortizedExplainer:
        """Fit an explainer network to ``model`` on ``X_train``.

        Parameters
        ----------
        model : model
            Anything ``xai.as_adapter`` accepts (a demo spec's ``LoadedModel`` too: its method
            defaults, e.g. demo-credit's baseline row, fill ``teacher_params``).
        X_train : array-like (n, d)
            Training inputs (no labels: the game is the model's output).
        teacher : str, default="shapley_sampling"
            The method whose game (features, baseline) the explainer plays; with
            ``objective="distill"`` its values are the regression targets. Its validation
            maps are the reference of ``report.rmse_teacher``.
        teacher_params : mapping, optional
            Parameters of the teacher, e.g. ``{"n_permutations": 64}``.
        objective : {"fastshap", "distill"}, default="fastshap"
            FastSHAP's weighted least squares over sampled coalitions, or regression on the
            teacher's values.
        epochs : int, default=50
            Maximum passes over ``X_train``; training stops after ``patience`` epochs without
            a lower validation loss and keeps the best epoch's weights.
        validation : array-like, optional
            Held-out inputs for early stopping and the report (default: 20% of ``X_train``,
            drawn with ``random_state``).
        random_state : int, default=0
            Seed of the weights, the batches, the coalitions and the teacher.
        hidden : sequence of int, default=(128, 128)
            Hidden widths of the MLP (FastSHAP's census explainer).
        n_coalitions : int, default=32
            Coalitions per training input and step (fastshap; paired).
        batch_size : int, default=32
            Training inputs per step.
        lr : float, default=2e-3
            Adam's learning rate.
        patience : int, default=5
            Epochs without improvement before stopping.
        cache : path, optional
            Folder for the teacher's values (distill), written per chunk: a killed fit reads
            the finished chunks back instead of recomputing them.
        exact_max_features : int, default=12
            Report the error against exact Shapley values (all 2^d coalitions per validation
            row) when d is at most this.
        model_batch_size : int or "auto", default="auto"
            Rows per model call.
        show_progress : bool, optional
            A tqdm bar over epochs with the losses (None: when stderr is a terminal).

        Returns
        -------
        AmortizedExplainer

        Raises
        ------
        InvalidParameterError
            A bad parameter (named, with the fix).
        IncompatibleModelError
            The model is not tabular, or the teacher cannot explain it.
        """
        from ._explain import make_method
        from .batch import LoadedModel

        start = time.perf_counter()
        _check_fit_args(objective, epochs, random_state, hidden, n_coalitions, batch_size, lr,
                        patience, exact_max_features)
        params = dict(teacher_params or {})
        if isinstance(model, LoadedModel):
            for key, value in model.method_defaults.items():
                params.setdefault(key, value)
            model = model.model
        if "random_state" in params:
            _fail("teacher_params", params, "sets random_state",
                  "Pass fit(random_state=...) instead: it seeds the teacher too.")
        adapter = as_adapter(model)
        if adapter.modality not in cls.modalities:
            msg = (f"AmortizedExplainer explains tabular and text models; this one takes "
                   f"{adapter.modality!r} inputs. Use xai.explain with a sampling method.")
            raise IncompatibleModelError(msg, method=cls.name)
        teacher_method = make_method(teacher, params, adapter)
        if adapter.modality == "text":
            from ._amortized_text import fit_text

            return fit_text(  # type: ignore[no-any-return]
                cls, adapter, teacher_method, params, X_train, validation=validation,
                objective=objective, epochs=epochs, random_state=random_state, hidden=hidden,
                n_coalitions=n_coalitions, batch_size=batch_size, lr=lr, patience=patience,
                cache=cache, exact_max_features=exact_max_features,
                model_batch_size=_model_batch(model_batch_size, adapter),
                show_progress=show_progress, start=start)
        gen = torch.Generator().manual_seed(int(random_state))
        train = adapter.prepare(X_train)
        if validation is None:
            n = len(train)
            if n < 10:
                _fail("X_train", n, "has fewer than 10 rows to split off a validation set",
                      "Pass more rows, or validation=X_val.")
            perm = torch.randperm(n, generator=gen)
            n_val = max(2, n // 5)
            val, train = train.take(perm[:n_val].tolist()), train.take(perm[n_val:].tolist())
        else:
            val = adapter.prepare(validation)
        if train.columns != val.columns or train.tensors["inputs"].shape[1:] != \
                val.tensors["inputs"].shape[1:]:
            _fail("validation", validation, "has other features than X_train",
                  "Pass validation rows with X_train's columns.")
        bs = _model_batch(model_batch_size, adapter)
        game = _Game(adapter, teacher_method, bs)
        tr, va = game.values(train), game.values(val)
        d, n_out = tr.features[0].n_features, int(tr.full.shape[1])
        if d < 2:
            _fail("X_train", d, "has one feature: its value is f(x) - f(baseline), nothing to "
                  "learn", "Explain it with xai.explain(method='occlusion').")
        x_tr, x_va = _matrix(train), _matrix(val)
        mean, scale = x_tr.mean(0), x_tr.std(0).clamp_min(1e-6)
        # the teacher's seed first: the weights' draws depend on hidden, the teacher's must not
        teacher_seed = int(torch.randint(0, 2**31 - 1, (1,), generator=gen).item())
        net = _MLP(d, n_out, tuple(hidden), mean, scale)
        _init_weights(net, gen)
        t_val = game.teacher(val, teacher_seed, cache, "val")
        t_tr = game.teacher(train, teacher_seed, cache, "train") if objective == "distill" \
            else None
        val_masks = _kernel_coalitions(len(val), n_coalitions, d, gen)
        val_scores = game.score(va.features, val_masks)

        def step(idx: torch.Tensor) -> torch.Tensor:
            phi = _normalise(net(x_tr[idx]), tr.gap[idx])
            if t_tr is not None:  # distill
                return (phi - t_tr[idx]).pow(2).mean()
            masks = _kernel_coalitions(len(idx), n_coalitions, d, gen)
            v = game.score([tr.features[i] for i in idx.tolist()], masks)
            return _wls_loss(phi, masks, v, tr.empty[idx])

        def validate() -> float:
            phi_va = _normalise(net(x_va), va.gap)
            return float(_wls_loss(phi_va, val_masks, val_scores, va.empty)) \
                if objective == "fastshap" else float((phi_va - t_val).pow(2).mean())

        trained = _train(net, n_train=len(train), batch_size=batch_size, epochs=epochs,
                         patience=patience, lr=lr, gen=gen, step=step, validate=validate,
                         desc=f"fit {objective}", show_progress=show_progress)
        with torch.no_grad():
            phi_va = _normalise(net(x_va), va.gap)
        rmse_teacher = float((phi_va - t_val).pow(2).mean().sqrt())
        exact = game.exact(val) if d <= exact_max_features else None
        probes = x_tr[:_N_PROBES]
        record = _Record(
            feature_names=tuple(tr.features[0].feature_names), output_names=(
                None if adapter.output_names() is None else tuple(adapter.output_names() or ())),
            n_outputs=n_out, hidden=tuple(int(h) for h in hidden),
            baseline=tuple(float(v) for v in tr.baseline), teacher=teacher_method.name,
            teacher_params=_plain_params(params), objective=objective,
            random_state=int(random_state), probes=_rows(probes),
            probe_outputs=_rows(adapter.predict_batched(train.take(list(range(len(probes)))),
                                                        bs)),
            data={"n_train": len(train), "n_val": len(val), "train_sha256": _digest(x_tr),
                  "val_sha256": _digest(x_va)})
        report = FitReport(
            history=trained.history, best_epoch=trained.best_epoch,
            rmse_teacher=rmse_teacher,
            rmse_exact=None if exact is None else float((phi_va - exact).pow(2).mean().sqrt()),
            teacher_rmse_exact=None if exact is None else float(
                (t_val - exact).pow(2).mean().sqrt()),
            fit_seconds=time.perf_counter() - start, n_train=len(train), n_val=len(val),
            model_rows=game.rows, stopped_early=trained.stopped_early)
        return cls(network=net, record=dataclasses.replace(record,
                                                           weights_sha256=_weights_digest(net)),
                   report=report)

    # -- persistence -----------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the weights (safetensors) and the record (JSON) into the folder ``path``."""
        from safetensors.torch import save_file

        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.network.state_dict().items()},
                  str(folder / _WEIGHTS))
        payload = {"format": _FORMAT, "record": self.record.to_dict(),
                   "report": self.report.to_dict()}
        (folder / _RECORD).write_text(json.dumps(payload, indent=1), encoding="utf-8")
        return folder

    @classmethod
    def load(cls, path: str | Path, model: Any) -> AmortizedExplainer:
        """Read an explainer saved with :meth:`save` and check it against ``model``.

        Raises
        ------
        InvalidParameterError
            ``path`` holds no explainer (or a damaged one).
        IncompatibleModelError
            ``model`` is not the model the explainer was fitted to: its outputs on the probe
            rows recorded at fit time differ, or it takes other features.
        """
        from safetensors.torch import load_file

        from .batch import LoadedModel

        folder = Path(path)
        if not (folder / _RECORD).is_file() or not (folder / _WEIGHTS).is_file():
            msg = (f"{str(folder)!r} is not a saved amortized explainer (it needs {_RECORD} and "
                   f"{_WEIGHTS}). Pass the folder written by AmortizedExplainer.save.")
            raise InvalidParameterError(msg, owner="AmortizedExplainer.load", parameter="path",
                                        value=str(folder))
        try:
            payload = json.loads((folder / _RECORD).read_text(encoding="utf-8"))
            if payload.get("format") != _FORMAT:
                msg_0 = f"format {payload.get('format')!r}"
                raise ValueError(msg_0)
            raw = dict(payload["record"])
            for key in ("feature_names", "hidden", "baseline"):
                raw[key] = tuple(raw[key])
            for key in ("probes", "probe_outputs"):
                raw[key] = tuple(tuple(r) for r in raw[key])
            if raw["output_names"] is not None:
                raw["output_names"] = tuple(raw["output_names"])
            record = _Record(**raw)
            report = FitReport.from_dict(payload["report"])
            state = load_file(str(folder / _WEIGHTS))
            net = _network(record, state)
        except Exception as err:
            msg = (f"The amortized explainer in {str(folder)!r} cannot be read ({err}). Save it "
                   "again with AmortizedExplainer.save.")
            raise InvalidParameterError(msg, owner="AmortizedExplainer.load", parameter="path",
                                        value=str(folder)) from err
        out = cls(network=net, record=record, report=report)
        if out.record.weights_sha256 != _weights_digest(net):
            msg = (f"The weights in {str(folder)!r} are not the ones its record was written "
                   "with. Save the explainer again.")
            raise InvalidParameterError(msg, owner="AmortizedExplainer.load", parameter="path",
                                        value=str(folder))
        inner = model.model if isinstance(model, LoadedModel) else model
        out.verify(as_adapter(inner))
        return out

    # -- checks ----------------------------------------------------------------------------
    def verify(self, adapter: ModelAdapter) -> None:
        """Refuse a model that is not the fitted one (IncompatibleModelError): other features,
        or other outputs on the probe rows recorded at fit time (to 1e-5 relative)."""
        model = getattr(adapter, "model", None)
        key = self.record.weights_sha256
        try:
            if model is not None and key in _VERIFIED.get(model, set()):
                return
        except TypeError:
            model = None
        self._check_modality(adapter)
        if self.record.text is not None:
            self._verify_text(adapter)
            if model is not None:
                _VERIFIED.setdefault(model, set()).add(key)
            return
        names = self.record.feature_names
        probes = torch.tensor(self.record.probes, dtype=torch.float32)
        try:
            batch = adapter.prepare(_frame(probes, names, adapter))
            got = adapter.predict_batched(batch, _N_PROBES)
        except Exception as err:
            msg = (f"This amortized explainer was fitted to a model with {len(names)} features "
                   f"({', '.join(names[:5])}{', ...' if len(names) > 5 else ''}), and this "
                   f"model cannot score them ({type(err).__name__}: {err}). Fit an explainer "
                   "for this model.")
            raise IncompatibleModelError(msg, method=self.name) from err
        _check_probe_outputs(got, self.record.probe_outputs, f"{len(probes)} probe rows",
                             self.name)
        if model is not None:
            _VERIFIED.setdefault(model, set()).add(key)

    def _baseline_memo(self, adapter: ModelAdapter) -> dict[bytes, torch.Tensor]:
        """f(baseline) per baseline row of this explainer on the verified model, kept across
        calls (a fresh dict for a model that cannot be weakly referenced)."""
        try:
            return _BASELINE.setdefault(getattr(adapter, "model", None), {}).setdefault(
                self.record.weights_sha256, {})
        except TypeError:
            return {}

    def _check_modality(self, adapter: ModelAdapter) -> None:
        fitted = "tabular" if self.record.text is None else "text"
        if adapter.modality != fitted:
            names = self.record.feature_names
            what = (f"a text model ({self.record.text['granularity']}s as players)"
                    if self.record.text is not None else
                    f"a model with {len(names)} features ({', '.join(names[:5])}"
                    f"{', ...' if len(names) > 5 else ''})")
            msg = (f"This amortized explainer was fitted to {what}, and this model takes "
                   f"{adapter.modality!r} inputs. Fit an explainer for this model "
                   "(AmortizedExplainer.fit).")
            raise IncompatibleModelError(msg, method=self.name)

    def _verify_text(self, adapter: ModelAdapter) -> None:
        from ._amortized_text import check_width

        text = self.record.text or {}
        probes = list(text["probe_texts"])
        try:
            batch = adapter.prepare(probes)
            got = adapter.predict_batched(batch, _N_PROBES)
        except Exception as err:
            msg = (f"This amortized explainer was fitted to a text model, and this model cannot "
                   f"score its {len(probes)} probe texts ({type(err).__name__}: {err}). Fit an "
                   "explainer for this model.")
            raise IncompatibleModelError(msg, method=self.name) from err
        _check_probe_outputs(got, self.record.probe_outputs, f"{len(probes)} probe texts",
                             self.name)
        check_width(adapter, batch, int(text["width"]), _N_PROBES)

    def feature_spaces(self, adapter: ModelAdapter, batch: Batch) -> tuple[FeatureSpace, ...]:
        self._check_modality(adapter)
        if self.record.text is not None:
            return adapter.features(  # type: ignore[call-arg]  # every adapter accepts owner
                batch, granularity=self.record.text["granularity"],
                baseline=self.record.text["removal"], owner="AmortizedExplainer")
        width = int(batch.tensors["inputs"].shape[1]) if "inputs" in batch.tensors else -1
        if width != len(self.record.feature_names):
            msg = (f"This amortized explainer was fitted on {len(self.record.feature_names)} "
                   f"features, and the inputs have {width}. Pass rows with the features "
                   f"{', '.join(self.record.feature_names[:5])}, ...")
            raise InvalidInputError(msg, parameter="inputs", value=width)
        if batch.columns is not None and tuple(batch.columns) != self.record.feature_names:
            msg = (f"The inputs' columns {list(batch.columns)[:5]}... are not the features the "
                   f"explainer was fitted on ({list(self.record.feature_names)[:5]}...). Pass "
                   "the same columns in the same order.")
            raise InvalidInputError(msg, parameter="inputs", value=list(batch.columns))
        baseline = torch.tensor(self.record.baseline, dtype=batch.tensors["inputs"].dtype)
        return adapter.features(  # type: ignore[call-arg]  # every adapter accepts owner
            batch, baseline=baseline.unsqueeze(0), owner="AmortizedExplainer")

    def _attribute(self, adapter: ModelAdapter, batch: Batch, features: tuple[FeatureSpace, ...],
                   target: ResolvedTarget, *, batch_size: int,
                   rng: torch.Generator) -> AttributionOutput:
        self.verify(adapter)
        if target.scores is None or target.scores.shape[1] != self.record.n_outputs:
            msg = (f"The model has {None if target.scores is None else target.scores.shape[1]} "
                   f"outputs; the explainer was fitted for {self.record.n_outputs}.")
            raise IncompatibleModelError(msg, method=self.name)
        # f(baseline), each distinct baseline row scored once per call; a tabular model's rows
        # all share the recorded row, whose score is also kept for the next call on that model
        if self.record.text is None:
            keys, memo = [b""] * len(features), self._baseline_memo(adapter)
        else:  # the [PAD] baseline is the same for texts of one token length
            keys, memo = [_batch_key(f.baseline()) for f in features], {}
        new: dict[bytes, int] = {}
        for i, k in enumerate(keys):
            if k not in memo:
                new.setdefault(k, i)
        if new:
            empty, _ = score_masks(adapter, [features[i] for i in new.values()], [torch.zeros(
                1, features[i].n_features, dtype=torch.bool) for i in new.values()],
                batch_size=batch_size)
            memo.update({k: e[0].double() for k, e in zip(new, empty, strict=True)})
        v0 = memo[keys[0]].expand(len(keys), -1) if self.record.text is None else \
            torch.stack([memo[k] for k in keys])
        # model rows per example: f(x), and each baseline scored on the example that owns it
        scored = set(new.values())
        n_rows = 1 + torch.tensor([i in scored for i in range(len(features))], dtype=torch.long)
        gap = target.scores.double() - v0
        idx = target.indices
        if self.record.text is not None:
            from ._amortized_text import text_values

            phi = text_values(self.network, adapter, batch, features, gap, batch_size)
            per = [phi[i, idx[i], :f.n_features] for i, f in enumerate(features)]
            g = gap.gather(1, idx)
            return AttributionOutput(values=per, base_values=v0.gather(1, idx), extras={
                "efficiency_gap": max((float((p.sum(-1) - g[i]).abs().max())
                                       for i, p in enumerate(per)), default=0.0),
                "objective": self.record.objective, "teacher": self.record.teacher,
                "n_rows": n_rows + 1})  # + the pass for the token states
        with torch.no_grad():
            phi = _normalise(self.network(_matrix(batch)).double(), gap)
        values = phi.gather(1, idx.unsqueeze(-1).expand(-1, -1, phi.shape[-1]))
        return AttributionOutput(values=values, base_values=v0.gather(1, idx), extras={
            "efficiency_gap": (values.sum(-1) - gap.gather(1, idx)).abs().max().item()
            if values.numel() else 0.0,
            "objective": self.record.objective, "teacher": self.record.teacher,
            "n_rows": n_rows})

    def get_params(self) -> dict[str, Any]:
        return {"network": self.network, "record": self.record, "report": self.report}

    def __repr__(self) -> str:
        r = self.record
        players = (f"features={len(r.feature_names)}" if r.text is None
                   else f"players={r.text['granularity']}s")
        return (f"AmortizedExplainer(objective={r.objective!r}, teacher={r.teacher!r}, "
                f"{players}, outputs={r.n_outputs}, "
                f"hidden={list(r.hidden)}, report={self.report!r})")


# -- the game --------------------------------------------------------------------------------
@dataclasses.dataclass
class _Values:
    features: tuple[FeatureSpace, ...]
    full: torch.Tensor  # (n, C) f(x)
    empty: torch.Tensor  # (n, C) f(baseline)
    baseline: torch.Tensor  # (d,) the baseline row

    @property
    def gap(self) -> torch.Tensor:
        return self.full - self.empty


class _Game:
    """The teacher's game on a model: its features and removal, every row counted."""

    def __init__(self, adapter: ModelAdapter, teacher: Method, batch_size: int) -> None:
        self.adapter, self.teacher_method, self.batch_size = adapter, teacher, batch_size
        self.rows = 0

    def values(self, batch: Batch) -> _Values:
        features = self.teacher_method.feature_spaces(self.adapter, batch)
        full = self.adapter.predict_batched(batch, self.batch_size).float()
        d = features[0].n_features
        empty = self.score(features, torch.zeros(len(features), 1, d, dtype=torch.bool))[:, 0]
        base = features[0].baseline().tensors["inputs"]
        self.rows += len(batch)
        return _Values(features, full, empty, base.reshape(-1)[:d].float())

    def score(self, features: Sequence[FeatureSpace], masks: torch.Tensor) -> torch.Tensor:
        """(n, k, C) model outputs of the coalitions (n, k, d)."""
        scores, _ = score_masks(self.adapter, features, list(masks), batch_size=self.batch_size)
        self.rows += int(masks.shape[0] * masks.shape[1])
        return torch.stack(scores).float()

    def teacher(self, batch: Batch, seed: int, cache: str | Path | None,
                part: str) -> torch.Tensor:
        """The teacher's values of every output (n, C, d), per chunk, cached when asked."""
        chunk = 256
        out = []
        folder = None if cache is None else Path(cache)
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
        key = hashlib.sha256(json.dumps([self.teacher_method.name,
                                         _plain_params(self.teacher_method.get_params()), seed,
                                         _digest(_matrix(batch))], sort_keys=True,
                                        default=str).encode()).hexdigest()[:16]
        for s in range(0, len(batch), chunk):
            path = None if folder is None else folder / f"teacher-{part}-{key}-{s:07d}.pt"
            if path is not None and path.is_file():
                out.append(torch.load(path, weights_only=True))
                continue
            piece = batch.take(list(range(s, min(len(batch), s + chunk))))
            exp = self.teacher_method.explain(self.adapter, piece, target="all",
                                              batch_size=self.batch_size, random_state=seed)
            self.rows += int(exp.extras.get("n_rows", torch.zeros(0)).sum()) \
                if isinstance(exp.extras.get("n_rows"), torch.Tensor) else 0
            values = exp.values.float()
            if path is not None:
                tmp = path.with_suffix(".tmp")
                torch.save(values, tmp)
                tmp.replace(path)
            out.append(values)
        return torch.cat(out)

    def exact(self, batch: Batch) -> torch.Tensor:
        """Exact Shapley values of every output (n, C, d) by enumeration, in the same game."""
        from .methods.shapley_sampling import ShapleySampling

        params = {k: v for k, v in self.teacher_method.get_params().items()
                  if k in ("baseline", "feature_groups")}
        d = len(self.teacher_method.feature_spaces(self.adapter, batch.take([0]))[0]
                .feature_names)
        exp = ShapleySampling(max_exact=2**d, **params).explain(
            self.adapter, batch, target="all", batch_size=self.batch_size)
        self.rows += len(batch) * 2**d
        return exp.values.float()


def _init_weights(net: torch.nn.Module, gen: torch.Generator) -> None:
    """Seeded uniform(+-1/sqrt(fan_in)) weights and zero biases, the draws from ``gen`` only."""
    with torch.no_grad():
        for p in net.parameters():
            if p.dim() == 2:
                bound = 1.0 / math.sqrt(p.shape[1])
                p.copy_(torch.rand(p.shape, generator=gen) * 2 * bound - bound)
            else:
                p.zero_()


@dataclasses.dataclass
class _Trained:
    history: tuple[dict[str, float], ...]
    stopped_early: bool

    @property
    def best_epoch(self) -> int:
        return int(min(self.history, key=lambda h: h["val_loss"])["epoch"])


def _train(net: torch.nn.Module, *, n_train: int, batch_size: int, epochs: int, patience: int,
           lr: float, gen: torch.Generator, step: Callable[[torch.Tensor], torch.Tensor],
           validate: Callable[[], float], desc: str, show_progress: bool | None) -> _Trained:
    """Adam over seeded mini-batches of ``n_train`` examples; ``step(idx)`` is the batch loss and
    ``validate()`` the validation loss (run with no gradient, the network in eval mode). Shows a
    progress bar with both losses, stops after ``patience`` epochs without a better validation
    loss and leaves the network with the weights of its best epoch."""
    from tqdm import tqdm

    history: list[dict[str, float]] = []
    best, best_state, stale, stopped = math.inf, None, 0, False
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    show = sys.stderr.isatty() if show_progress is None else bool(show_progress)
    bar = tqdm(range(1, epochs + 1), desc=desc, unit="epoch", disable=not show, file=sys.stderr)
    for epoch in bar:
        t0 = time.perf_counter()
        net.train()
        order = torch.randperm(n_train, generator=gen)
        total = 0.0
        for s in range(0, n_train, batch_size):
            idx = order[s:s + batch_size]
            loss = step(idx)
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            total += loss.item() * len(idx)
        net.eval()
        with torch.no_grad():
            val_loss = float(validate())
        history.append({"epoch": epoch, "train_loss": total / n_train, "val_loss": val_loss,
                        "seconds": time.perf_counter() - t0})
        bar.set_postfix(train=f"{history[-1]['train_loss']:.3g}", val=f"{val_loss:.3g}")
        if val_loss < best - 1e-12:
            best, stale = val_loss, 0
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            stale += 1
            if stale >= patience:
                stopped = True
                break
    bar.close()
    net.load_state_dict(best_state or net.state_dict())
    net.eval()
    return _Trained(tuple(history), stopped)


def _check_probe_outputs(got: torch.Tensor, probe_outputs: Sequence[Sequence[float]],
                         what: str, method: str) -> None:
    """Refuse (IncompatibleModelError) outputs on the probes that differ from the recorded ones
    by more than 1e-5 relative."""
    want = torch.tensor(probe_outputs, dtype=got.dtype)
    if got.shape != want.shape or not torch.allclose(got, want, rtol=1e-5, atol=1e-6):
        diff = float((got - want).abs().max()) if got.shape == want.shape else math.inf
        msg = (f"This amortized explainer was fitted to another model: on the {what} recorded "
               f"at fit time this model's outputs differ by up to {diff:.3g} (shape "
               f"{tuple(got.shape)} vs {tuple(want.shape)}). Fit an explainer for this model "
               "(AmortizedExplainer.fit).")
        raise IncompatibleModelError(msg, method=method)


def _network(record: _Record, state: Mapping[str, torch.Tensor]) -> torch.nn.Module:
    """The explainer network of a record, with the saved weights."""
    net: torch.nn.Module
    if record.text is not None:
        from ._amortized_text import TokenHead

        net = TokenHead(int(record.text["width"]), record.n_outputs, record.hidden,
                        state["mean"], state["scale"])
    else:
        net = _MLP(len(record.feature_names), record.n_outputs, record.hidden, state["mean"],
                   state["scale"])
    net.load_state_dict(state)
    net.eval()
    return net


def _wls_loss(phi: torch.Tensor, masks: torch.Tensor, v: torch.Tensor,
              empty: torch.Tensor) -> torch.Tensor:
    """FastSHAP's loss: mean over (n, k, C) of (v(empty) + S.phi - v(S))^2, times d."""
    pred = empty.unsqueeze(1) + torch.einsum("nkd,ncd->nkc", masks.float(), phi)
    return (pred - v).pow(2).mean() * phi.shape[-1]


# -- helpers ---------------------------------------------------------------------------------
def _fail(parameter: str, value: Any, constraint: str, fix: str) -> None:
    msg = (f"The {parameter!r} parameter of AmortizedExplainer.fit {constraint}. Got "
           f"{fmt_value(value)} instead. {fix}")
    raise InvalidParameterError(msg, owner="AmortizedExplainer.fit", parameter=parameter,
                                value=value)


def _check_fit_args(objective: Any, epochs: Any, random_state: Any, hidden: Any,
                    n_coalitions: Any, batch_size: Any, lr: Any, patience: Any,
                    exact_max_features: Any) -> None:
    if objective not in _OBJECTIVES:
        _fail("objective", objective, "must be 'fastshap' or 'distill'",
              "Pass objective='fastshap' (no teacher values) or 'distill' (regress on them).")
    for name, value, low in (("epochs", epochs, 1), ("random_state", random_state, 0),
                             ("n_coalitions", n_coalitions, 2), ("batch_size", batch_size, 1),
                             ("patience", patience, 1),
                             ("exact_max_features", exact_max_features, 0)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            _fail(name, value, f"must be an int in the range [{low}, inf)",
                  f"Pass {name}={max(low, 1)}, for example.")
    if isinstance(hidden, str | int) or not isinstance(hidden, Sequence) or not all(
            isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in hidden):
        _fail("hidden", hidden, "must be a list of positive layer widths", "Pass hidden=(128, 128).")
    if isinstance(lr, bool) or not isinstance(lr, int | float) or not 0 < float(lr) < 10:
        _fail("lr", lr, "must be a float in (0, 10)", "Pass lr=2e-3.")


def _model_batch(batch_size: Any, adapter: ModelAdapter) -> int:
    from .methods._base import _resolve_batch_size

    return _resolve_batch_size(batch_size, adapter, "AmortizedExplainer.fit")


def _matrix(batch: Batch) -> torch.Tensor:
    return batch.tensors["inputs"].float().reshape(len(batch), -1)


def _rows(t: torch.Tensor) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(float(v) for v in r) for r in t.detach().double().cpu().tolist())


def _batch_key(batch: Batch) -> bytes:
    """The bytes of a batch's tensors, to find equal rows."""
    return b"|".join(k.encode() + b":" + np.ascontiguousarray(v.cpu().numpy()).tobytes()
                     for k, v in sorted(batch.tensors.items()))


def _digest(t: torch.Tensor) -> str:
    return hashlib.sha256(np.ascontiguousarray(t.detach().cpu().numpy()).tobytes()).hexdigest()


def _weights_digest(net: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in sorted(net.state_dict().items()):
        h.update(k.encode())
        h.update(np.ascontiguousarray(v.detach().cpu().numpy()).tobytes())
    return h.hexdigest()


def _plain_params(params: Mapping[str, Any]) -> dict[str, Any]:
    from .batch._config import canonical

    return {str(k): canonical(v) for k, v in params.items()}


def _frame(probes: torch.Tensor, names: Sequence[str], adapter: ModelAdapter) -> Any:
    """Probe rows as the model takes them: a DataFrame when it knows its column names."""
    cols = getattr(getattr(adapter, "model", None), "feature_names_in_", None)
    if cols is not None:
        import pandas as pd

        return pd.DataFrame(probes.double().numpy(), columns=list(names))
    return probes
