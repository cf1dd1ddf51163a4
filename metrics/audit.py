"""Which explanation can I trust? ``metrics.audit``: agreement, stability and disparity.

The audit explains the same examples with several methods, and each method with the settings a
user asks to vary, scores every explanation with the chosen metrics, and aggregates the rows:

- **agreement** between every pair of methods (Krishna et al., "The Disagreement Problem in
  Explainable Machine Learning", TMLR 2024; Kendall's tau-b of Neely et al., "A Song of
  (Dis)agreement", HHAI 2022), per example and summarised with a bootstrap interval;
- **stability** of each method to each varied hyperparameter or seed (Bansal et al., "SAM: The
  Sensitivity of Attribution Methods to Hyperparameters", CVPR 2020): per example, the mean
  Spearman correlation and top-k overlap of the maps over all pairs of values, and the spread
  of every metric across the values beside its mean (averages hide instability);
- **disparity** of each metric across subgroups (Balagopalan et al., FAccT 2022; Mhasawade et
  al., FAccT 2024; Dhaini et al., FAccT 2025): per group the mean with a percentile bootstrap
  interval, the gap to a reference group with a stratified bootstrap interval, a permutation
  test and Holm's correction over the report, plus the max gap and mean gap.

The work is done by :func:`xai.batch.score`, one job per (method, setting): with ``output`` each
job writes its rows to ``<output>/rows/`` and a killed audit resumes where it stopped, and
``engine=RayEngine(...)`` runs the jobs on Ray. The report is an aggregation over those rows;
it makes no model call of its own, so its cost is the sum of its explanations' and metrics'.
Statistics follow ``references/metrics/audit.md`` (part C.3): the example is the unit, NaN
scores are dropped and counted, and every table row draws from its own generator
``np.random.default_rng([random_state, row])``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import xai
from xai.exceptions import (
    IncompatibleModelError,
    InvalidExplanationError,
    InvalidParameterError,
    XAIWarning,
)
from xai.extend import fmt_value

from . import _stats
from ._audit_report import AuditReport, Recommendation
from .agreement import MEASURES, agreement_scores

__all__ = ["AGREEMENT_MEASURES", "STABILITY_MEASURES", "AuditReport", "Recommendation", "audit"]

#: Agreement measures the audit reports by default (Krishna et al.'s six).
AGREEMENT_MEASURES: tuple[str, ...] = ("feature", "rank", "sign", "signed_rank",
                                       "rank_correlation", "pairwise_rank")
#: Similarity of two maps of one method in the stability table (SAM), and the agreement
#: measure behind each.
STABILITY_MEASURES: dict[str, str] = {"spearman": "rank_correlation", "top_k_overlap": "feature"}
_OWNER = "audit"


@dataclasses.dataclass(frozen=True)
class Variant:
    """One (method, setting) of an audit: explained once, batched, scored with every metric."""

    method: str  # the method as the user named it in ``methods`` (its label in the report)
    name: str  # canonical registry name
    params: Mapping[str, Any]  # the user's params with the varied one set
    seed: int
    parameter: str | None = None  # the varied hyperparameter (None: the method as listed)
    value: Any = None

    @property
    def key(self) -> str:
        """A stable identifier of the computation (method, effective params, seed)."""
        text = json.dumps([self.name, dict(self.params), self.seed], sort_keys=True,
                          default=_identity)
        return hashlib.sha256(text.encode()).hexdigest()[:10]

    @property
    def slug(self) -> str:
        """A file name for the variant's rows."""
        tail = "" if self.parameter is None else f"-{self.parameter}-{_short(self.value)}"
        return re.sub(r"[^A-Za-z0-9_.=-]+", "_", f"{self.name}{tail}")[:80] + f"-{self.key}"

    @property
    def label(self) -> str:
        return self.method if self.parameter is None else \
            f"{self.method}[{self.parameter}={_short(self.value)}]"


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 24 else text[:21] + "..."


def audit(
    model: Any,
    X: Any,
    methods: Sequence[str | tuple[str, Mapping[str, Any]]],
    metrics: Sequence[Any] = (),
    *,
    vary: Mapping[str, Mapping[str, Sequence[Any]]] | None = None,
    groups: Any = None,
    top_k: int | float = 5,
    measures: Sequence[str] = AGREEMENT_MEASURES,
    target: Any = None,
    reference_group: Any = None,
    min_group_size: int = 10,
    n_bootstrap: int = 2000,
    n_permutations: int = 2000,
    confidence: float = 0.95,
    on_incompatible: str = "skip",
    output: str | Path | None = None,
    engine: Any = None,
    chunk_size: int = 64,
    batch_size: int | str = "auto",
    id_column: str | None = None,
    show_progress: bool | None = False,
    random_state: int = 0,
) -> AuditReport:
    """Audit explanation methods on one model and data set: agreement, stability, disparity.

    Parameters
    ----------
    model : str or model
        A model spec (``"demo-credit"``, a Hugging Face folder, ...) or anything
        ``xai.as_adapter`` accepts; loaded once.
    X : DataFrame, sequence of texts or rows, or a CSV/JSONL/Parquet path
        The examples, as :func:`xai.batch.score` reads them.
    methods : sequence of str or (str, mapping)
        At least one method: registry names (``"ig"`` is ``integrated_gradients``) or
        ``(name, params)`` pairs. Each is explained once with its params (the model's defaults
        fill the rest, e.g. demo-credit's baseline row).
    metrics : sequence of str, (str, mapping) or Metric, default=()
        Metrics scored on every explanation (e.g. ``"comprehensiveness"``). Optional: without
        them the report has agreement and map stability only.
    vary : mapping of method -> {parameter: [values]}, optional
        Hyperparameters to vary, one at a time, the others as listed in ``methods``
        (SAM's protocol). ``"random_state"`` varies the seed.
    groups : column name, sequence, boolean mask or callable, optional
        Subgroup of each example for the disparity tables: a column of ``X`` (or of the file),
        one label per example (a Series with ``X``'s index is matched by index), a boolean mask
        (groups True and False), or a function of one example (a row Series or a text). An
        example labelled None or NaN is left out of the disparity tables.
    top_k : int or float, default=5
        k of the top-k agreement measures and of the stability's top-k overlap: an int, or a
        fraction of each example's features (ceil).
    measures : sequence of str, default=AGREEMENT_MEASURES
        Agreement measures (``metrics.agreement.MEASURES``; ``"kendall"`` adds tau-b).
    target : int, str or None, default=None
        The explained output, the same for every method (None: the model spec's default, else
        the predicted class of each example).
    reference_group : hashable, optional
        The group the gaps are measured from (default: the largest).
    min_group_size : int, default=10
        Groups with fewer scored examples are flagged (``too_small``): their count is shown, no
        mean, interval or test.
    n_bootstrap, n_permutations : int, default=2000
        Bootstrap replicates of every interval; random relabellings of every permutation test
        (exact enumeration when the splits are fewer).
    confidence : float, default=0.95
        Level of every interval.
    on_incompatible : {"skip", "raise"}, default="skip"
        A method that cannot explain the model (e.g. IG on a scikit-learn pipeline): "skip"
        leaves it out with an XAIWarning and lists it in ``report.skipped``; "raise" raises
        the IncompatibleModelError.
    output : path of a folder, optional
        Where each job writes its rows (``rows/<method>-...parquet``); a later call with the
        same arguments resumes the jobs instead of recomputing them.
    engine : xai.batch.LocalEngine or RayEngine, optional
        Where the jobs run.
    chunk_size, batch_size, id_column : optional
        Examples per chunk, rows per model call and the column of example ids, as in
        :class:`xai.batch.Job`.
    show_progress : bool or None, default=False
        The batch progress bars.
    random_state : int, default=0
        Seed of every method, metric, bootstrap and permutation test.

    Returns
    -------
    AuditReport
        Tables ``agreement``, ``agreement_per_example``, ``stability``, ``disparity`` and
        ``gaps``; ``recommend(prefer=...)``, ``plot_agreement``, ``to_pandas``, ``to_html``.

    Raises
    ------
    InvalidParameterError
        A malformed argument (the message names it and the fix).
    InvalidExplanationError
        Two methods explain different feature spaces (e.g. tokens vs words): agreement is
        undefined.
    IncompatibleModelError
        ``on_incompatible="raise"`` and a method cannot explain the model.

    References
    ----------
    Krishna et al., TMLR 2024; Neely et al., HHAI 2022; Bansal et al., CVPR 2020; Balagopalan et
    al., FAccT 2022; Mhasawade et al., FAccT 2024; Dhaini et al., FAccT 2025.
    """
    from xai.batch import Job, LoadedModel, ModelFactory, load_model, score

    _check_int("random_state", random_state, 0)
    _check_int("min_group_size", min_group_size, 2)
    _check_int("n_bootstrap", n_bootstrap, 1)
    _check_int("n_permutations", n_permutations, 1)
    _check_top_k(top_k)
    measures = _check_measures(measures)
    if on_incompatible not in ("skip", "raise"):
        _fail("on_incompatible", on_incompatible, "must be 'skip' or 'raise'",
              "Pass on_incompatible='raise' to stop at a method that cannot explain the model.")
    loaded = model if isinstance(model, LoadedModel) else (
        load_model(model) if isinstance(model, str) else ModelFactory(obj=model)())
    labels, entries = _check_methods(methods)
    vary = _check_vary(vary, labels)
    adapter = xai.as_adapter(loaded.model)
    entries, skipped = _compatible(entries, adapter, on_incompatible)
    labels = [label for label in labels if label in entries]
    if not labels:
        _fail("methods", list(methods), "has no method that can explain this model",
              f"Choose among {', '.join(xai.compatible_methods(adapter))}.")
    variants = _plan(entries, {m: v for m, v in vary.items() if m in entries}, random_state)
    group_labels = None if groups is None else _group_labels(groups, X)  # before any work
    metric_list = list(metrics)
    out_dir = None if output is None else Path(output)
    rows: dict[str, pd.DataFrame] = {}
    for variant in _unique(variants):
        job = Job(methods=[(variant.name, dict(variant.params))], metrics=metric_list,
                  target=target, random_state=variant.seed, chunk_size=chunk_size,
                  batch_size=batch_size, id_column=id_column)  # type: ignore[arg-type]
        path = None if out_dir is None else out_dir / "rows" / f"{variant.slug}.parquet"
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        rows[variant.key] = score(loaded, X, job, output=path, engine=engine,
                                  resume=path is not None, show_progress=show_progress)
    first = rows[variants[0].key]
    ids = [str(i) for i in dict.fromkeys(first["id"])]
    metric_names = [c for c in first.columns if c not in _ROW_COLUMNS]
    if group_labels is not None and len(group_labels) != len(ids):
        _fail("groups", groups, f"has {len(group_labels)} labels for {len(ids)} examples",
              "Pass one label per example, in the order of X.")
    builder = _Builder(variants, rows, ids, metric_names, top_k, measures, n_bootstrap,
                       n_permutations, confidence, random_state)
    report = AuditReport(
        agreement=builder.agreement(labels)[0], agreement_per_example=builder.per_example,
        stability=builder.stability(), disparity=pd.DataFrame(), gaps=pd.DataFrame(),
        scores=builder.scores(group_labels), methods=tuple(labels),
        metrics=tuple(metric_names), higher_is_better=_directions(metric_names),
        metric_summary=builder.metric_summary(labels), skipped=skipped,
        failures=builder.failures(), top_k=top_k, confidence=confidence,
        model_name=loaded.name or type(loaded.model).__name__, n_examples=len(ids),
        notes=builder.notes)
    if group_labels is not None:
        report.disparity, report.gaps = builder.disparity(
            labels, group_labels, reference_group, min_group_size, report.higher_is_better)
    return report


_ROW_COLUMNS = frozenset({"id", "input", "method", "target", "prediction", "attributions",
                          "feature_names", "method_params", "seed", "status", "error",
                          "elapsed"})


# -- argument checks -----------------------------------------------------------------------
def _fail(parameter: str, value: Any, constraint: str, fix: str) -> None:
    msg = (f"The {parameter!r} parameter of {_OWNER} {constraint}. Got {fmt_value(value)} "
           f"instead. {fix}")
    raise InvalidParameterError(msg, owner=_OWNER, parameter=parameter, value=value)


def _check_int(name: str, value: Any, low: int) -> None:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or int(value) < low:
        _fail(name, value, f"must be an int in the range [{low}, inf)", f"Pass {name}={low}.")


def _check_top_k(k: Any) -> None:
    ok = (isinstance(k, numbers.Integral) and not isinstance(k, bool) and int(k) >= 1) or (
        isinstance(k, float) and 0.0 < k <= 1.0)
    if not ok:
        _fail("top_k", k, "must be an int >= 1 or a fraction in (0, 1] of the features",
              "Pass top_k=5 or top_k=0.25.")


def _check_measures(measures: Any) -> tuple[str, ...]:
    if isinstance(measures, str) or not isinstance(measures, Sequence) or not measures:
        _fail("measures", measures, "must be a non-empty list of agreement measures",
              f"Pass measures among {', '.join(MEASURES)}.")
    bad = [m for m in measures if m not in MEASURES]
    if bad:
        _fail("measures", bad[0], f"names an unknown measure {bad[0]!r}",
              f"Choose among {', '.join(MEASURES)}.")
    return tuple(dict.fromkeys(measures))


def _check_methods(methods: Any) -> tuple[list[str], dict[str, tuple[str, dict[str, Any]]]]:
    """(labels in order, label -> (canonical name, params))."""
    from xai import METHODS

    fix = ("Pass a list of method names or (name, params) pairs, e.g. "
           "methods=['integrated_gradients', ('kernel_shap', {'budget': 256})].")
    if isinstance(methods, str) or not isinstance(methods, Sequence) or not methods:
        _fail("methods", methods, "must be a non-empty list of methods", fix)
    entries: dict[str, tuple[str, dict[str, Any]]] = {}
    for entry in methods:
        if isinstance(entry, str):
            label, params = entry, {}
        elif (isinstance(entry, tuple | list) and len(entry) == 2 and isinstance(entry[0], str)
              and isinstance(entry[1], Mapping)):
            label, params = entry[0], dict(entry[1])
        else:
            _fail("methods", entry, "entries must be names or (name, params) pairs", fix)
        if label in entries:
            _fail("methods", list(methods), f"lists {label!r} twice",
                  "Vary a method's settings with vary={...} instead of listing it twice.")
        name = METHODS.canonical(label)  # UnknownNameError lists the methods
        if "random_state" in params:
            _fail("methods", entry, "sets random_state in a method's params",
                  "Pass audit(random_state=...) or vary={method: {'random_state': [...]}}.")
        entries[label] = (name, params)
    return list(entries), entries


def _check_vary(vary: Any, labels: Sequence[str]) -> dict[str, dict[str, list[Any]]]:
    fix = "Pass vary={'integrated_gradients': {'n_steps': [16, 64, 256]}}."
    if vary is None:
        return {}
    if not isinstance(vary, Mapping):
        _fail("vary", vary, "must be a mapping of method to {parameter: [values]}", fix)
    out: dict[str, dict[str, list[Any]]] = {}
    for method, sweep in vary.items():
        if method not in labels:
            _fail("vary", method, f"names {method!r}, which is not among methods={list(labels)}",
                  "Use the method's name as written in methods.")
        if not isinstance(sweep, Mapping) or not sweep:
            _fail("vary", sweep, f"must map {method!r} to {{parameter: [values]}}", fix)
        out[method] = {}
        for param, values in sweep.items():
            if isinstance(values, str) or not isinstance(values, Sequence) or len(values) < 2:
                _fail("vary", {method: {param: values}},
                      f"must give {method}.{param} a list of at least 2 values", fix)
            out[method][str(param)] = list(values)
    return out


def _compatible(entries: dict[str, tuple[str, dict[str, Any]]], adapter: Any,
                on_incompatible: str) -> tuple[dict[str, tuple[str, dict[str, Any]]],
                                               dict[str, str]]:
    """The methods that can explain the model, and the reason each other one cannot."""
    from xai import METHODS
    from xai.batch import Job

    keep, skipped = {}, {}
    for label, (name, params) in entries.items():
        Job(methods=[(name, params)])  # typed error for an unknown parameter, before any work
        try:
            METHODS.get(name).check_supports(adapter)
        except IncompatibleModelError as err:
            if on_incompatible == "raise":
                raise
            skipped[label] = str(err)
            warnings.warn(f"audit leaves out {label!r}: {err}", XAIWarning, stacklevel=3)
            continue
        keep[label] = (name, params)
    return keep, skipped


def _plan(entries: Mapping[str, tuple[str, dict[str, Any]]],
          vary: Mapping[str, Mapping[str, list[Any]]], random_state: int) -> list[Variant]:
    """The base variant of every method, then one variant per varied (parameter, value)."""
    out = [Variant(label, name, params, random_state) for label, (name, params) in entries.items()]
    for label, sweep in vary.items():
        name, params = entries[label]
        for param, values in sweep.items():
            for value in values:
                if param == "random_state":
                    _check_int("vary", value, 0)
                    out.append(Variant(label, name, params, int(value), param, value))
                else:
                    out.append(Variant(label, name, {**params, param: value}, random_state,
                                       param, value))
    return out


def _unique(variants: Sequence[Variant]) -> list[Variant]:
    """One variant per distinct computation (a varied value equal to the listed one is reused)."""
    seen: dict[str, Variant] = {}
    for v in variants:
        seen.setdefault(v.key, v)
    return list(seen.values())


def _directions(metric_names: Sequence[str]) -> dict[str, bool]:
    from ._registry import METRICS

    return {m: bool(METRICS.get(m).higher_is_better) for m in metric_names}


# -- groups --------------------------------------------------------------------------------
def _group_labels(groups: Any, X: Any) -> list[Any]:
    """One hashable label per example (None: left out), in data-set order."""
    frame = X if isinstance(X, pd.DataFrame) else None
    if isinstance(groups, str):
        if frame is None and isinstance(X, str | Path) and Path(X).exists():
            frame = _read_table(Path(X))
        if frame is None or groups not in frame.columns:
            cols = [] if frame is None else [str(c) for c in frame.columns]
            _fail("groups", groups, "names a column that the data does not have",
                  f"Columns: {', '.join(cols) or '(the data is not a table)'}; or pass one "
                  "label per example.")
        labels = list(frame[groups])  # type: ignore[index]
    elif callable(groups):
        items = ([row for _, row in frame.iterrows()] if frame is not None else list(X))
        try:
            labels = [groups(item) for item in items]
        except Exception as err:
            _fail("groups", groups, f"raised {type(err).__name__}: {err} on an example",
                  "Make the function return a group label for every example.")
    else:
        if isinstance(groups, pd.Series) and frame is not None and \
                not groups.index.equals(frame.index):
            if set(groups.index) != set(frame.index):
                _fail("groups", "Series", "has an index that does not match X's index",
                      "Pass a Series with X's index (e.g. df['sex']) or a plain list.")
            groups = groups.reindex(frame.index)
        try:
            labels = list(np.asarray(groups, dtype=object).ravel())
        except Exception:
            labels = []
        if isinstance(groups, np.ndarray) and groups.dtype == bool:
            labels = [bool(v) for v in groups]
    out: list[Any] = []
    for v in labels:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            out.append(None)
        elif isinstance(v, np.generic):
            out.append(v.item())
        else:
            try:
                hash(v)
            except TypeError:
                _fail("groups", v, "holds an unhashable label", "Use str or int labels.")
            out.append(v)
    return out


# -- aggregation -----------------------------------------------------------------------------
class _Builder:
    """Turns the batch rows of every variant into the report's tables."""

    def __init__(self, variants: Sequence[Variant], rows: Mapping[str, pd.DataFrame],
                 ids: Sequence[str], metric_names: Sequence[str], top_k: int | float,
                 measures: Sequence[str], n_bootstrap: int, n_permutations: int,
                 confidence: float, random_state: int) -> None:
        self.variants = list(variants)
        self.rows = rows
        self.ids = list(ids)
        self.metric_names = list(metric_names)
        self.top_k = top_k
        self.measures = list(measures)
        self.n_bootstrap = n_bootstrap
        self.n_permutations = n_permutations
        self.confidence = confidence
        self.random_state = random_state
        self.row_index = 0
        self.notes: list[str] = []
        self.per_example = pd.DataFrame()
        self._maps: dict[str, dict[str, tuple[tuple[str, ...], np.ndarray]]] = {}

    def _rng(self) -> np.random.Generator:
        rng = _stats.row_rng(self.random_state, self.row_index)
        self.row_index += 1
        return rng

    def base(self, label: str) -> Variant:
        return next(v for v in self.variants if v.method == label and v.parameter is None)

    def maps(self, v: Variant) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
        """Example id -> (feature names, attributions) of the variant's ok rows."""
        if v.key not in self._maps:
            t = self.rows[v.key]
            ok = t[t["status"] == "ok"]
            self._maps[v.key] = {
                str(i): (tuple(str(n) for n in names), np.asarray(a, dtype=np.float64))
                for i, names, a in zip(ok["id"], ok["feature_names"], ok["attributions"],
                                       strict=True)}
        return self._maps[v.key]

    def metric_values(self, v: Variant, metric: str) -> np.ndarray:
        """The metric of every example (NaN for failed rows), in data-set order."""
        t = self.rows[v.key].drop_duplicates("id").set_index("id")
        col = pd.to_numeric(t[metric], errors="coerce").where(t["status"] == "ok")
        out: np.ndarray = col.reindex(self.ids).to_numpy(dtype=np.float64)
        return out

    def _pair_scores(self, va: Variant, vb: Variant, measure: str,
                     labels: tuple[str, str]) -> np.ndarray:
        """One agreement measure of two variants' maps per example (NaN where one failed)."""
        ma, mb = self.maps(va), self.maps(vb)
        out = np.full(len(self.ids), np.nan)
        both = [(j, i) for j, i in enumerate(self.ids) if i in ma and i in mb]
        for _, i in both:
            if ma[i][0] != mb[i][0]:
                msg = (f"audit: {labels[0]!r} and {labels[1]!r} explain different features of "
                       f"example {i!r} ({len(ma[i][0])} features: {_names(ma[i][0])} vs "
                       f"{len(mb[i][0])}: {_names(mb[i][0])}), so their agreement is "
                       "undefined. Give both methods the same feature space (for text, the "
                       "same granularity, e.g. ('integrated_gradients', {'granularity': "
                       "'word'})).")
                raise InvalidExplanationError(msg)
        by_len: dict[int, list[tuple[int, str]]] = {}
        for j, i in both:
            by_len.setdefault(len(ma[i][1]), []).append((j, i))
        for length, items in by_len.items():
            if length == 0:
                continue
            a = np.stack([ma[i][1] for _, i in items])
            b = np.stack([mb[i][1] for _, i in items])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", XAIWarning)  # constant maps: NaN, counted
                out[[j for j, _ in items]] = agreement_scores(a, b, measure, k=self.top_k)
        return out

    def _summary(self, values: np.ndarray) -> dict[str, Any]:
        finite, n_nan = _stats.drop_nan(values)
        est = _stats.bootstrap_ci(finite, n_bootstrap=self.n_bootstrap,
                                  confidence=self.confidence, rng=self._rng())
        if finite.size == 1:
            est = _stats.Estimate(float(finite[0]), math.nan, math.nan)
        return {"mean": est.value, "ci_low": est.low, "ci_high": est.high, "n": int(finite.size),
                "n_nan": n_nan}

    # agreement ---------------------------------------------------------------------------
    def agreement(self, labels: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
        rows: list[dict[str, Any]] = []
        per: list[dict[str, Any]] = []
        for x, a in enumerate(labels):
            for b in labels[x + 1:]:
                va, vb = self.base(a), self.base(b)
                for measure in self.measures:
                    vals = self._pair_scores(va, vb, measure, (a, b))
                    k = self.top_k if measure in ("feature", "rank", "sign", "signed_rank") \
                        else None
                    rows.append({"method_a": a, "method_b": b, "measure": measure, "k": k,
                                 **self._summary(vals)})
                    per.extend({"id": i, "method_a": a, "method_b": b, "measure": measure,
                                "value": float(v)} for i, v in zip(self.ids, vals, strict=True))
        self.per_example = pd.DataFrame(per, columns=["id", "method_a", "method_b", "measure",
                                                      "value"])
        table = pd.DataFrame(rows, columns=["method_a", "method_b", "measure", "k", "mean",
                                            "ci_low", "ci_high", "n", "n_nan"])
        return table, self.per_example

    def metric_summary(self, labels: Sequence[str]) -> pd.DataFrame:
        rows = [{"metric": metric, "method": label,
                 **self._summary(self.metric_values(self.base(label), metric))}
                for metric in self.metric_names for label in labels]
        return pd.DataFrame(rows, columns=["metric", "method", "mean", "ci_low", "ci_high", "n",
                                           "n_nan"])

    # stability ---------------------------------------------------------------------------
    def stability(self) -> pd.DataFrame:
        sweeps: dict[tuple[str, str], list[Variant]] = {}
        for v in self.variants:
            if v.parameter is not None:
                sweeps.setdefault((v.method, v.parameter), []).append(v)
        rows = []
        for (method, param), vs in sweeps.items():
            values = [v.value for v in vs]
            for measure, agreement_measure in STABILITY_MEASURES.items():
                pairs = [self._pair_scores(vs[u], vs[w], agreement_measure,
                                           (vs[u].label, vs[w].label))
                         for u in range(len(vs)) for w in range(u + 1, len(vs))]
                rows.append(self._sweep_row(method, param, values, measure, "similarity",
                                            np.stack(pairs, axis=1)))
            for metric in self.metric_names:
                per_value = np.stack([self.metric_values(v, metric) for v in vs], axis=1)
                row = self._sweep_row(method, param, values, metric, "metric", per_value)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    means = np.nanmean(per_value, axis=0)
                row["mean_min"], row["mean_max"] = float(np.nanmin(means)), float(np.nanmax(means))
                rows.append(row)
        # SAM's seed floor: a parameter's effect on the maps is noise when it is no larger
        # than the seed's own (the random_state sweep of the same method, when there is one)
        seeds = {(r["method"], r["measure"]): r["mean"] for r in rows
                 if r["parameter"] == "random_state" and r["kind"] == "similarity"}
        for r in rows:
            r["seed_floor"] = seeds.get((r["method"], r["measure"]), math.nan) \
                if r["kind"] == "similarity" and r["parameter"] != "random_state" else math.nan
        return pd.DataFrame(rows, columns=["method", "parameter", "values", "kind", "measure",
                                           "mean", "spread", "ci_low", "ci_high", "n", "n_nan",
                                           "mean_min", "mean_max", "seed_floor"])

    def _sweep_row(self, method: str, param: str, values: list[Any], measure: str, kind: str,
                   grid: np.ndarray) -> dict[str, Any]:
        """Per example (row of ``grid``): the mean over the columns and their variance; the
        summary is SAM's: mean of the per-example means and sqrt(mean per-example variance)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            complete = ~np.isnan(grid).any(axis=1)
            per_mean = np.where(complete, grid.mean(axis=1), np.nan)
            per_var = np.where(complete, grid.var(axis=1), np.nan)
        summary = self._summary(per_mean)
        spread = float(np.sqrt(np.nanmean(per_var))) if complete.any() else math.nan
        return {"method": method, "parameter": param, "values": [_plain(v) for v in values],
                "kind": kind, "measure": measure, **summary, "spread": spread,
                "mean_min": math.nan, "mean_max": math.nan}

    # disparity ---------------------------------------------------------------------------
    def disparity(self, labels: Sequence[str], groups: Sequence[Any], reference_group: Any,
                  min_group_size: int, higher: Mapping[str, bool]
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
        names = sorted({g for g in groups if g is not None}, key=lambda g: (str(type(g)), g))
        if len(names) < 2:
            warnings.warn(f"audit: groups holds {len(names)} group(s); disparity needs two or "
                          "more, so its tables are empty.", XAIWarning, stacklevel=3)
            return _empty_disparity(), _empty_gaps()
        if reference_group is not None and reference_group not in names:
            _fail("reference_group", reference_group, "is not one of the groups",
                  f"Choose among {', '.join(map(str, names))}.")
        left_out = sum(g is None for g in groups)
        if left_out:
            self.notes.append(f"{left_out} example(s) have no group label and are left out of "
                              "the disparity tables.")
        index = {g: np.array([k for k, x in enumerate(groups) if x == g]) for g in names}
        disp, gaps = [], []
        for metric in self.metric_names:
            for label in labels:
                scores = self.metric_values(self.base(label), metric)
                per_group = {g: scores[idx] for g, idx in index.items()}
                counts = {g: int(np.isfinite(v).sum()) for g, v in per_group.items()}
                small = {g for g in names if counts[g] < min_group_size}
                ref = reference_group if reference_group is not None else \
                    max(names, key=lambda g: counts[g])
                for g in names:
                    row = {"metric": metric, "method": label, "group": g, "n": counts[g],
                           "n_nan": int(np.isnan(per_group[g]).sum()), "too_small": g in small,
                           "mean": math.nan, "ci_low": math.nan, "ci_high": math.nan}
                    if g not in small:
                        est = _stats.bootstrap_ci(per_group[g], n_bootstrap=self.n_bootstrap,
                                                  confidence=self.confidence, rng=self._rng())
                        row.update(mean=est.value, ci_low=est.low, ci_high=est.high)
                    disp.append(row)
                gaps.extend(self._gaps(metric, label, per_group, ref, small, counts,
                                       higher[metric]))
        gap_table = pd.DataFrame(gaps, columns=list(_empty_gaps().columns))
        tested = gap_table["statistic"] == "difference"
        gap_table.loc[tested, "p_holm"] = _stats.holm(gap_table.loc[tested, "p_value"]
                                                      .to_numpy(dtype=np.float64))
        if min(idx.size for idx in index.values()) < 100:
            self.notes.append("A group has fewer than 100 examples: percentile intervals of "
                              "skewed scores under-cover there (spec C-6); the permutation "
                              "p-values keep their level.")
        return pd.DataFrame(disp, columns=list(_empty_disparity().columns)), gap_table

    def _gaps(self, metric: str, label: str, per_group: Mapping[Any, np.ndarray], ref: Any,
              small: set[Any], counts: Mapping[Any, int], higher: bool) -> list[dict[str, Any]]:
        out = []
        base = {"metric": metric, "method": label, "reference": ref}
        for g, v in per_group.items():
            if g == ref:
                continue
            row = {**base, "statistic": "difference", "group": g, "n": counts[g],
                   "n_ref": counts[ref], "gap": math.nan, "ci_low": math.nan,
                   "ci_high": math.nan, "p_value": math.nan, "p_holm": math.nan}
            if g not in small and ref not in small:
                rng = self._rng()  # bootstrap draws before permutation draws (spec C.3)
                est = _stats.gap_ci(v, per_group[ref], n_bootstrap=self.n_bootstrap,
                                    confidence=self.confidence, rng=rng)
                p = _stats.permutation_test(v, per_group[ref], n_permutations=self.n_permutations,
                                            rng=rng)
                row.update(gap=est.value, ci_low=est.low, ci_high=est.high, p_value=p)
            out.append(row)
        kept = [v for g, v in per_group.items() if g not in small]
        n_kept = sum(counts[g] for g in per_group if g not in small)
        for statistic in ("max_gap", "mean_gap"):
            est = _stats.summary_gap_ci(kept, statistic=statistic, higher_is_better=higher,
                                        n_bootstrap=self.n_bootstrap,
                                        confidence=self.confidence, rng=self._rng())
            out.append({**base, "reference": None, "statistic": statistic, "group": "all",
                        "n": n_kept,
                        "n_ref": math.nan, "gap": est.value, "ci_low": est.low,
                        "ci_high": est.high, "p_value": math.nan, "p_holm": math.nan})
        return out

    # raw rows ----------------------------------------------------------------------------
    def scores(self, groups: Sequence[Any] | None) -> pd.DataFrame:
        """One row per (example, variant): group, method, setting, metrics, status."""
        position = {i: k for k, i in enumerate(self.ids)}
        frames = []
        for v in self.variants:
            t = self.rows[v.key]
            frame = pd.DataFrame({
                "id": t["id"].astype(str), "method": v.method, "parameter": v.parameter,
                "value": json.dumps(_plain(v.value)) if v.parameter else None, "seed": v.seed,
                "status": t["status"], "error": t["error"],
                **{m: pd.to_numeric(t[m], errors="coerce") for m in self.metric_names}})
            if groups is not None:
                frame.insert(1, "group", [groups[position[i]] for i in frame["id"]])
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)

    def failures(self) -> pd.DataFrame:
        out: list[dict[str, Any]] = []
        for v in _unique(self.variants):
            t = self.rows[v.key]
            bad = t[t["status"] != "ok"]
            out.extend({"variant": v.label, "id": str(i), "error": e}
                       for i, e in zip(bad["id"], bad["error"], strict=True))
        if out:
            warnings.warn(f"audit: {len(out)} row(s) failed and are left out (see "
                          "report.failures).", XAIWarning, stacklevel=3)
        return pd.DataFrame(out, columns=["variant", "id", "error"])


def _empty_disparity() -> pd.DataFrame:
    return pd.DataFrame(columns=["metric", "method", "group", "n", "n_nan", "too_small", "mean",
                                 "ci_low", "ci_high"])


def _empty_gaps() -> pd.DataFrame:
    return pd.DataFrame(columns=["metric", "method", "statistic", "group", "reference", "n",
                                 "n_ref", "gap", "ci_low", "ci_high", "p_value", "p_holm"])


def _identity(value: Any) -> str:
    """A JSON stand-in for a parameter value: arrays by a digest of their contents."""
    if hasattr(value, "shape") and (hasattr(value, "__array__") or hasattr(value, "numpy")):
        array = np.asarray(value.detach().cpu() if hasattr(value, "detach") else value)
        digest = hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()[:16]
        return f"<{type(value).__name__} {array.shape} {digest}>"
    return re.sub(r" at 0x[0-9a-f]+", "", repr(value))


def _read_table(path: Path) -> pd.DataFrame | None:
    """The data file as a table, to read a group column from (None when it is not one)."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path)
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix in (".jsonl", ".json"):
            return pd.read_json(path, lines=suffix == ".jsonl")
    except Exception as err:
        _fail("X", str(path), f"cannot be read as a table ({type(err).__name__}: {err})",
              "Pass a CSV, JSONL or Parquet file, or a DataFrame.")
    return None


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.generic):
        return value.item()
    return repr(value)


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:4])
    return f"[{shown}{', ...' if len(names) > 4 else ''}]"

