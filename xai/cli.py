"""The ``xai`` command: ``xai demo``, ``xai methods``, ``xai metrics``, ``xai explain``, ``xai score``,
``xai audit``."""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Sequence
from typing import Any, NoReturn


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo._run import run_demo

    result = run_demo(args.out, n_reviews=args.n_reviews, n_applicants=args.n_applicants,
                      show_progress=not args.quiet)
    print(f"Report written to {result.report.resolve()}")
    print(f"Summary written to {result.report.with_name('summary.json').resolve()}")
    return 0


def _cmd_methods(args: argparse.Namespace) -> int:
    from . import list_methods

    rows = list_methods()
    header = ("method", "aliases", "requires", "modalities", "paper")
    table = [(r["name"], ",".join(r["aliases"]) or "-", r["requires"], ",".join(r["modalities"]),
              r["reference"]) for r in rows]
    _print_table(header, table)
    return 0


def _print_table(header: Sequence[str], table: Sequence[Sequence[Any]]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *table, strict=False)]
    for line in (header, *table):
        print("  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True)).rstrip())


def _cmd_metrics(args: argparse.Namespace) -> int:
    from .batch._chunk import metric_registry

    registry = metric_registry()  # metrics, imported lazily (the application layer)
    header = ("metric", "aliases", "better", "modalities", "needs", "paper")
    table = []
    for name in registry.names():
        cls = registry.get(name)
        needs = [w for w, on in (("model", cls.needs_model), ("re-explain", cls.needs_reexplain))
                 if on] + [t.__name__ for t in cls.feature_spaces]
        table.append((name, ",".join(registry.aliases(name)) or "-",
                      "higher" if cls.higher_is_better else "lower",
                      ",".join(sorted(cls.modalities)), "+".join(needs) or "-", cls.reference))
    _print_table(header, table)
    return 0


def _cmd_explain(args: argparse.Namespace) -> int:
    from . import explain
    from .exceptions import InvalidParameterError

    method_params, _ = _params(args.param or [], [args.method], [], objective=args.objective)
    _route_objective(args.objective, args.param or [], [args.method], method_params)
    params: dict[str, Any] = method_params.get(args.method, {})
    defaults: dict[str, Any] = {}
    target: Any = None
    if args.model == "demo-credit":
        from .demo import credit_baseline, load_credit_model, split_credit

        model: Any = load_credit_model()
        _, x_test, _, _ = split_credit(random_state=0)
        rows = args.row or [0]
        if max(rows) >= len(x_test) or min(rows) < 0:
            msg = (f"--row must be in [0, {len(x_test) - 1}] (held-out applicants of "
                   f"demo-credit); got {rows}.")
            raise InvalidParameterError(msg, parameter="row", value=rows)
        inputs: object = x_test.iloc[rows]
        defaults["baseline"], target = credit_baseline(), "1"
    elif args.model == "demo-sentiment":
        from .demo import load_sentiment_model

        if not args.text:
            msg = 'xai explain --model demo-sentiment needs --text "a review" (repeatable).'
            raise InvalidParameterError(msg, parameter="text", value=None)
        model, inputs = load_sentiment_model(), args.text
    else:
        msg = (f"--model {args.model!r} is not a demo model of xai explain. Use demo-sentiment or "
               "demo-credit (xai score takes other models).")
        raise InvalidParameterError(msg, parameter="model", value=args.model)
    # the model's defaults fill the fields the method has and --param leaves unset, as in score
    fields = _fields(model, args.method) if defaults else set()
    params = {**{k: v for k, v in defaults.items() if k in fields}, **params}
    exp = explain(model, inputs, method=args.method, random_state=args.random_state,
                  target=target, **params)
    for i, names in enumerate(exp.feature_names):
        score = "" if exp.predictions is None else f" score={float(exp.predictions[i, 0]):.4f}"
        print(f"[{exp.target.names[i][0]}{score}]")
        for name, value in zip(names, exp.values[i, 0].tolist(), strict=False):
            print(f"  {name:>20s} {value:+.4f}")
    if args.html:
        _write_html(args.html, exp)
    return 0


def _write_html(path: str, exp: Any) -> None:
    from .exceptions import InvalidParameterError
    from .plot._html import explanation_html, report_html

    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(report_html([(f"{exp.method}", explanation_html(exp))]))
    except OSError as err:
        msg = (f"The --html file {path!r} cannot be written: {err.strerror or err}. Pass a path "
               "in a folder you can write to.")
        raise InvalidParameterError(msg, parameter="html", value=path) from err
    print(f"HTML written to {path}")


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _fields(model: Any, method: str) -> set[str]:
    """The fields of ``method`` (``"auto"``: the method picked for ``model``); none if unknown."""
    import dataclasses

    from . import select_method
    from ._registry import METHODS

    name = select_method(model) if method == "auto" else method
    if name not in METHODS:
        return set()  # explain raises the UnknownNameError that lists the methods
    return {f.name for f in dataclasses.fields(METHODS.get(name))}


def _params(items: Sequence[str], methods: Sequence[str], metrics: Sequence[str],
            objective: str | None = None,
            ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """``NAME.FIELD=VALUE`` options (VALUE parsed as JSON, else a string) per method/metric.

    ``objective.FIELD=VALUE`` items are left to `_route_objective` (they set the --objective
    metric's fields); without ``objective`` they are refused here.
    """
    from .exceptions import InvalidParameterError

    method_params: dict[str, dict[str, Any]] = {}
    metric_params: dict[str, dict[str, Any]] = {}
    for item in items:
        key, eq, raw = item.partition("=")
        name, dot, field = key.partition(".")
        if name == "objective" and dot and "objective" not in (*methods, *metrics):
            if objective is None:
                msg = (f"--param {item!r} sets a field of the --objective metric, and no "
                       "--objective is given. Add --objective NAME (e.g. --objective "
                       "infidelity), or drop the --param.")
                raise InvalidParameterError(msg, parameter="param", value=item)
            continue
        chosen = ", ".join((*methods, *metrics))
        if not (eq and dot and name and field):
            msg = (f"--param {item!r} must look like NAME.FIELD=VALUE with NAME one of the "
                   f"chosen methods or metrics ({chosen}), e.g. occlusion.window=2.")
            raise InvalidParameterError(msg, parameter="param", value=item)
        if name not in (*methods, *metrics):
            msg = (f"--param {item!r} sets a parameter of {name!r}, which is not one of the "
                   f"chosen methods or metrics ({chosen}). Add it to --methods or --metrics, "
                   "or fix the name.")
            raise InvalidParameterError(msg, parameter="param", value=item)
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        (method_params if name in methods else metric_params).setdefault(name, {})[field] = value
    return method_params, metric_params


def _objective_takers(methods: Sequence[str]) -> list[str]:
    """The entries of ``methods`` whose method has an ``objective`` field (best_of, bee, ...)."""
    import dataclasses

    from ._registry import METHODS

    return [name for name in methods if name in METHODS
            and any(f.name == "objective" for f in dataclasses.fields(METHODS.get(name)))]


def _route_objective(name: str | None, items: Sequence[str], methods: Sequence[str],
                     method_params: dict[str, dict[str, Any]]) -> None:
    """``--objective NAME``: the metric registered as NAME, with the fields that
    ``--param objective.FIELD=VALUE`` sets, as the ``objective`` of each chosen method that has
    one. Without --objective such a method raises its own error (its objective is required)."""
    from ._registry import METHODS
    from .batch._chunk import metric_registry
    from .exceptions import InvalidParameterError, UnknownNameError

    if name is None:
        return
    takers = _objective_takers(methods)
    if not takers:
        able = ", ".join(_objective_takers(METHODS.names())) or "none is registered"
        chosen = ", ".join(methods) or "auto"
        msg = (f"--objective {name!r} is the metric that a method choosing among explanations "
               f"optimises, and none of the chosen methods ({chosen}) takes an objective. "
               f"Methods that take one: {able}. Choose one of them, or drop --objective.")
        raise InvalidParameterError(msg, parameter="objective", value=name)
    given = [m for m in takers if "objective" in method_params.get(m, {})]
    if given:
        msg = (f"--objective {name!r} and --param {given[0]}.objective both set the objective "
               f"of {given[0]!r}. Give it once, with --objective.")
        raise InvalidParameterError(msg, parameter="objective", value=name)
    registry = metric_registry()  # metrics, imported lazily (the application layer)
    try:
        cls = registry.get(name)
    except UnknownNameError as err:  # its message suggests the closest name and lists them all
        msg = (f"--objective {name!r} is not a metric name. {err} Pass one of them "
               "(xai metrics lists them), e.g. --objective infidelity.")
        raise InvalidParameterError(msg, parameter="objective", value=name) from err
    params = _params([i for i in items if i.startswith("objective.")], [],
                     ["objective"])[1].get("objective", {})
    objective = _make_metric(cls, params, name)
    for method in takers:
        method_params.setdefault(method, {})["objective"] = objective


def _make_metric(cls: Any, params: dict[str, Any], name: str) -> Any:
    """``cls(**params)``, with typed errors naming ``--param objective.FIELD`` for bad fields."""
    import dataclasses

    from .exceptions import InvalidParameterError
    from .extend import required_fields

    fields = sorted(f.name for f in dataclasses.fields(cls) if f.init)
    unknown = sorted(set(params) - set(fields))
    if unknown:
        msg = (f"--param objective.{unknown[0]} is not a field of the --objective metric "
               f"{name!r} ({cls.__name__}). Its fields: {', '.join(fields) or 'none'}.")
        raise InvalidParameterError(msg, parameter="param", value=f"objective.{unknown[0]}")
    missing = [f for f in required_fields(cls) if f not in params]
    if missing:
        msg = (f"The --objective metric {name!r} ({cls.__name__}) needs its {missing[0]!r} "
               f"field; the CLI cannot pass it. Choose another objective, or call xai.explain "
               "from Python with a configured metric.")
        raise InvalidParameterError(msg, parameter="objective", value=name)
    return cls(**params)


def _quiet_ray(quiet: bool) -> None:
    """Ray Data logs every execution step at INFO; keep warnings (and its bars unless quiet)."""
    import logging

    try:
        import ray.data
    except ImportError:
        return  # score() raises the MissingDependencyError with the fix
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if quiet:
        ray.data.DataContext.get_current().enable_progress_bars = False


def _cmd_score(args: argparse.Namespace) -> int:
    from .batch import Job, LocalEngine, RayEngine, score
    from .batch._score import describe_failures
    from .exceptions import InvalidParameterError

    if args.add and not args.resume:
        msg = "--add extends an existing output; pass it with --resume (xai score --resume --add)."
        raise InvalidParameterError(msg, parameter="add", value=True)

    methods, metric_names = _split(args.methods), _split(args.metrics)
    method_params, metric_params = _params(args.param or [], methods, metric_names,
                                           objective=args.objective)
    _route_objective(args.objective, args.param or [], methods or ["auto"], method_params)
    _route_action_set(args.action_set, methods, metric_names, method_params, metric_params)
    if args.engine == "ray":
        _quiet_ray(args.quiet)
    entries = [_amortized(m, args) if m.startswith("amortized:") else
               (m, method_params.get(m, {})) for m in dict.fromkeys(methods or ["auto"])]
    job = Job(methods=entries,
              metrics=[(m, metric_params.get(m, {})) for m in dict.fromkeys(metric_names)],
              target=args.target, random_state=args.random_state, chunk_size=args.batch_size,
              id_column=args.id_column, input_columns=_split(args.columns) or None,
              hash_inputs=args.hash_inputs, adapter_options=_graph_options(args))
    workers = 2 if args.num_workers is None else args.num_workers
    engine = (RayEngine(num_workers=workers, address=args.address)
              if args.engine == "ray" else LocalEngine())
    table = score(args.model, args.data, job, output=args.out, engine=engine,
                  resume="add" if args.add else args.resume,
                  show_progress=False if args.quiet else None, trust_pickle=args.trust_pickle,
                  trusted_types=args.trust_type or ())
    summary = table.attrs["summary"]
    _print_table(("examples scored", "skipped (resumed)", "rows ok", "rows failed", "seconds",
                  "examples/s"),
                 [(summary["examples_scored"], summary["examples_skipped"], summary["rows_ok"],
                   summary["rows_failed"], f"{summary['seconds']:.1f}",
                   f"{summary['examples_per_s']:.2f}")])
    print(f"Scores written to {args.out}")
    if summary["rows_failed"]:
        print(f"xai: error: {describe_failures(summary)}. See the 'status' and 'error' columns "
              f"of {args.out}.", file=sys.stderr)
        return 1
    return 0


_AUDIT_TABLES = ("agreement", "agreement_per_example", "stability", "metric_summary",
                 "disparity", "gaps", "scores", "failures")


def _cmd_audit(args: argparse.Namespace) -> int:
    import warnings
    from pathlib import Path

    from metrics.audit import audit

    from .batch import LocalEngine, RayEngine, load_model
    from .exceptions import XAIWarning

    methods, metric_names = _split(args.methods), _split(args.metrics)
    if not methods:
        from .exceptions import InvalidParameterError

        msg = (f"--methods {args.methods!r} names no method. Pass comma-separated method names "
               "(xai methods lists them), e.g. --methods occlusion,kernel_shap.")
        raise InvalidParameterError(msg, parameter="methods", value=args.methods)
    method_params, metric_params = _params(args.param or [], methods, metric_names)
    vary = _vary(args.vary or [], methods)
    top_k = _top_k(args.top_k)
    if args.engine == "ray":
        _quiet_ray(args.quiet)
    workers = 2 if args.num_workers is None else args.num_workers
    engine = (RayEngine(num_workers=workers, address=args.address)
              if args.engine == "ray" else LocalEngine())
    model = load_model(args.model, trust_pickle=args.trust_pickle,
                       trusted_types=args.trust_type or ())
    out = Path(args.out)
    with warnings.catch_warnings():
        warnings.simplefilter("always", XAIWarning)
        warnings.showwarning = functools.partial(_show_warning, warnings.showwarning)
        report = audit(
            model, args.data,
            [(m, method_params[m]) if m in method_params else m for m in methods],
            [(m, metric_params[m]) if m in metric_params else m for m in metric_names],
            vary=vary or None, groups=args.groups, top_k=top_k, target=args.target,
            reference_group=_group_value(args.reference_group),
            min_group_size=args.min_group_size, n_bootstrap=args.n_bootstrap,
            n_permutations=args.n_permutations, output=out, engine=engine,
            chunk_size=args.batch_size, id_column=args.id_column,
            show_progress=not args.quiet, random_state=args.random_state)
    written = _write_audit(report, out)
    _print_audit(report, out, written)
    if len(report.failures):  # as xai score: the files are written, and the exit code says so
        first = report.failures.iloc[0]
        error = " ".join(str(first["error"]).split())
        print(f"xai: error: {len(report.failures)} row(s) failed and are left out of the "
              f"tables; the first: {first['variant']}, example {first['id']}: {error} See "
              f"{out / 'failures.csv'}.", file=sys.stderr)
        return 1
    return 0


def _show_warning(default: Any, message: Any, category: type[Warning], *args: Any,
                  **kwargs: Any) -> None:
    """An XAIWarning as one line on stderr, ``xai: warning: ...``; others as Python shows them."""
    from .exceptions import XAIWarning

    if issubclass(category, XAIWarning):
        print(f"xai: warning: {' '.join(str(message).split())}", file=sys.stderr)
    else:
        default(message, category, *args, **kwargs)


def _vary(items: Sequence[str], methods: Sequence[str]) -> dict[str, dict[str, list[Any]]]:
    """``--vary METHOD.PARAM=V1,V2,...`` (each value parsed as JSON, else a string)."""
    from .exceptions import InvalidParameterError

    out: dict[str, dict[str, list[Any]]] = {}
    for item in items:
        key, eq, raw = item.partition("=")
        name, dot, field = key.partition(".")
        if not (eq and dot and name.strip() and field.strip() and _split(raw)):
            msg = (f"--vary {item!r} must look like METHOD.PARAM=V1,V2,... with METHOD one of "
                   f"--methods ({', '.join(methods)}), e.g. --vary kernel_shap.random_state=0,1,2.")
            raise InvalidParameterError(msg, parameter="vary", value=item)
        name, field = name.strip(), field.strip()
        if name not in methods:
            msg = (f"--vary {item!r} varies a parameter of {name!r}, which is not one of "
                   f"--methods ({', '.join(methods)}). Add it to --methods, or fix the name.")
            raise InvalidParameterError(msg, parameter="vary", value=item)
        if field in out.get(name, {}):
            msg = (f"--vary {item!r} varies {name}.{field} a second time. Give all its values "
                   f"in one --vary {name}.{field}=V1,V2,...")
            raise InvalidParameterError(msg, parameter="vary", value=item)
        out.setdefault(name, {})[field] = [_json_or_str(v) for v in _split(raw)]
    return out


def _json_or_str(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def _group_value(raw: str | None) -> Any:
    """``--reference-group``: a number when it reads as one (a numeric column's groups are
    numbers), else the string."""
    value = None if raw is None else _json_or_str(raw)
    return value if isinstance(value, int | float) and not isinstance(value, bool) else raw


def _top_k(raw: str) -> int | float:
    """``--top-k``: an int (features), or a float fraction of each example's features."""
    from .exceptions import InvalidParameterError

    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            continue
    msg = (f"--top-k {raw!r} must be an int (e.g. --top-k 5) or a fraction of the features "
           "in (0, 1] (e.g. --top-k 0.25).")
    raise InvalidParameterError(msg, parameter="top_k", value=raw)


def _write_audit(report: Any, out: Any) -> list[str]:
    """report.html and one CSV per non-empty table in ``out``; the names written, in order.

    The CSV of an empty table is removed, so a folder rerun with other options holds no table
    of the earlier run.
    """
    from .exceptions import InvalidParameterError

    written = ["report.html"]
    try:
        report.to_html(out / "report.html")
        for name in _AUDIT_TABLES:
            table, path = getattr(report, name), out / f"{name}.csv"
            if len(table):
                table.to_csv(path, index=False)
                written.append(path.name)
            elif path.exists():
                path.unlink()
    except OSError as err:
        msg = (f"The --out folder {str(out)!r} cannot be written: {err.strerror or err}. Pass a "
               "folder you can write to.")
        raise InvalidParameterError(msg, parameter="out", value=str(out)) from err
    return written


def _print_audit(report: Any, out: Any, written: Sequence[str]) -> None:
    print(f"Audited {report.n_examples} examples of {report.model_name}: methods "
          f"{', '.join(report.methods)}; metrics {', '.join(report.metrics) or 'none'}.")
    for method, reason in report.skipped.items():
        print(f"Skipped {method}: {' '.join(str(reason).split())}")
    if len(report.failures):
        print(f"{len(report.failures)} row(s) failed and are left out of the tables.")
    if report.metrics and len(report.metric_summary):
        print(f"Recommendation: {report.recommend().reason}")
    for note in report.notes:
        print(f"Note: {note}")
    if report.metrics == () and len(report.scores) and "group" in report.scores.columns:
        print("Note: --groups compares metric scores across groups; add --metrics for the "
              "disparity tables.")
    if len(report.methods) > 1:
        matrix = report.agreement_matrix("rank_correlation")
        print("Agreement (rank correlation, mean over examples):")
        _print_table(("", *map(str, matrix.columns)),
                     [(str(i), *(f"{float(v):.3f}" for v in matrix.loc[i]))
                      for i in matrix.index])
    print(f"Report written to {out / 'report.html'}; tables: {', '.join(written[1:])} in {out}")


def _amortized(spec: str, args: argparse.Namespace) -> Any:
    """``amortized:FOLDER``: the explainer saved there, checked against ``--model``."""
    from . import AmortizedExplainer
    from .batch import load_model
    from .exceptions import InvalidParameterError

    folder = spec.partition(":")[2]
    if not folder:
        msg = (f"--methods {spec!r} needs the folder of a saved explainer after 'amortized:', "
               "e.g. --method amortized:explainer/ (written by AmortizedExplainer.save).")
        raise InvalidParameterError(msg, parameter="methods", value=spec)
    loaded = load_model(args.model, trust_pickle=args.trust_pickle,
                        trusted_types=args.trust_type or ())
    return AmortizedExplainer.load(folder, loaded)


def _responsive_names(names: Sequence[str], registry: Any) -> list[str]:
    """The entries of ``names`` that name ``responsiveness`` (or an alias of it) in ``registry``."""
    from .exceptions import UnknownNameError

    out = []
    for name in names:
        try:
            if registry.canonical(name) == "responsiveness":
                out.append(name)
        except UnknownNameError:
            continue  # the Job raises the error that lists the names
    return out


def _route_action_set(path: str | None, methods: Sequence[str], metric_names: Sequence[str],
                      method_params: dict[str, dict[str, Any]],
                      metric_params: dict[str, dict[str, Any]]) -> None:
    """``--action-set``: load it and give it to the responsiveness metric and method chosen."""
    from . import ActionSet
    from ._registry import METHODS
    from .batch._chunk import metric_registry
    from .exceptions import InvalidParameterError, XAIError

    takers = [(n, method_params) for n in _responsive_names(methods, METHODS)] + [
        (n, metric_params) for n in _responsive_names(metric_names, metric_registry())]
    if path is None:
        missing = [n for n, params in takers if "action_set" not in params.get(n, {})]
        if missing:
            msg = (f"{missing[0]!r} needs an action set: what each person can change. Pass "
                   "--action-set actions.json (written by xai.ActionSet.save).")
            raise InvalidParameterError(msg, parameter="action_set", value=None)
        return
    if not takers:
        msg = (f"--action-set {path!r} is read by the responsiveness metric or method, and "
               "neither is chosen. Add --metrics responsiveness (or --methods responsiveness), "
               "or drop --action-set.")
        raise InvalidParameterError(msg, parameter="action_set", value=path)
    try:
        actions = ActionSet.load(path)
    except XAIError as err:  # ActionSet.load types every unreadable or malformed file
        reason = str(err).rstrip(".")
        msg = (f"--action-set {path!r} is not a readable action set ({reason}). Pass a JSON "
               "file written by xai.ActionSet.save.")
        raise InvalidParameterError(msg, parameter="action_set", value=path) from err
    for name, params in takers:
        params.setdefault(name, {})["action_set"] = actions


def _graph_options(args: argparse.Namespace) -> dict[str, Any]:
    """``--explain`` and ``--index`` as the adapter options of a graph model."""
    from .exceptions import InvalidParameterError

    options: dict[str, Any] = {}
    if args.explain is not None:
        options["explain"] = args.explain
    if args.index is not None:
        if args.index == "all":
            options["index"] = "all"
        else:
            try:
                options["index"] = [int(v) for v in _split(args.index)]
            except ValueError:
                msg = (f"--index must be 'all' or comma-separated node ids (e.g. 0,5,17); got "
                       f"{args.index!r}.")
                raise InvalidParameterError(msg, parameter="index", value=args.index) from None
    return options


_OBJECTIVE_HELP = ("a metric name (xai metrics): the objective of the chosen methods that "
                   "take one (best_of, bee), e.g. infidelity")


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error: ``xai: error: ... (see xai score --help)``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"xai: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``xai`` command."""
    common = _Parser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the traceback of an error")
    parser = _Parser(prog="xai", description="Post-hoc explanations of ML models.",
                     parents=[common])
    sub = parser.add_subparsers(dest="command", required=True)
    add = functools.partial(sub.add_parser, parents=[common])
    demo = add("demo", help="explain the embedded demo models; write an HTML report")
    demo.add_argument("--out", default="xai-demo", help="output folder (default: ./xai-demo)")
    demo.add_argument("--n-reviews", type=int, default=5)
    demo.add_argument("--n-applicants", type=int, default=5)
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    demo.set_defaults(func=_cmd_demo)
    methods = add("methods", help="list the registered methods")
    methods.set_defaults(func=_cmd_methods)
    metrics = add("metrics", help="list the registered metrics")
    metrics.set_defaults(func=_cmd_metrics)
    exp = add("explain", help="explain texts or credit applicants with a demo model")
    exp.add_argument("--model", default="demo-sentiment", help="demo-sentiment or demo-credit")
    exp.add_argument("--text", action="append", help="text to explain (repeatable)")
    exp.add_argument("--row", type=int, action="append",
                     help="held-out applicant of demo-credit to explain (repeatable; default 0)")
    exp.add_argument("--method", default="auto",
                     help="a method name (xai methods); default: the best one for the model")
    exp.add_argument("--random-state", type=int, default=0)
    exp.add_argument("--param", action="append", metavar="NAME.FIELD=VALUE",
                     help="a parameter of the method, e.g. occlusion.window=2 or "
                          "best_of.candidates='[\"occlusion\", \"lime\"]'; "
                          "objective.FIELD=VALUE sets a field of the --objective metric")
    exp.add_argument("--objective", default=None, metavar="METRIC", help=_OBJECTIVE_HELP)
    exp.add_argument("--html", help="write an HTML heatmap here")
    exp.set_defaults(func=_cmd_explain)
    _add_score(add)
    _add_audit(add)
    return parser


def _add_score(add: Any) -> None:
    sc = add("score", help="explain and evaluate a whole data set into Parquet/JSONL")
    sc.add_argument("--model", required=True,
                    help="demo-credit, demo-sentiment, a graph demo model (gcn-ba2motifs, "
                         "gin-ba2motifs, gcn-mutag, gin-mutag), a Hugging Face model folder, a "
                         ".skops file, or package.module:function")
    sc.add_argument("--data", required=True,
                    help="CSV/JSONL/Parquet file, a datasets.Dataset folder, or (graph models) "
                         "a folder in TU format")
    sc.add_argument("--methods", "--method", dest="methods", default="auto",
                    help="comma-separated method names; amortized:FOLDER runs an explainer "
                         "saved by xai.AmortizedExplainer.save")
    sc.add_argument("--metrics", default="", help="comma-separated metric names")
    sc.add_argument("--out", required=True, help="output file, .parquet or .jsonl")
    sc.add_argument("--resume", action="store_true",
                    help="finish an interrupted job (the settings must be the recorded ones)")
    sc.add_argument("--add", action="store_true",
                    help="with --resume: score the --methods missing from a finished output")
    sc.add_argument("--engine", choices=("local", "ray"), default="local")
    sc.add_argument("--num-workers", type=int, default=None, help="Ray actors (default 2)")
    sc.add_argument("--address", default=None, help="address of an existing Ray cluster")
    sc.add_argument("--batch-size", type=int, default=64, help="examples per chunk")
    sc.add_argument("--random-state", type=int, default=0)
    sc.add_argument("--id-column", default=None, help="column of unique example ids")
    sc.add_argument("--columns", default=None, help="comma-separated input columns")
    sc.add_argument("--target", default=None, help="explained output: a label, or an index when no label matches")
    sc.add_argument("--param", action="append", metavar="NAME.FIELD=VALUE",
                    help="a method or metric parameter, e.g. kernel_shap.n_samples=500; "
                         "objective.FIELD=VALUE sets a field of the --objective metric")
    sc.add_argument("--objective", default=None, metavar="METRIC", help=_OBJECTIVE_HELP)
    sc.add_argument("--explain", choices=("edges", "nodes"), default=None,
                    help="graph models: attribute the edges (default) or the nodes")
    sc.add_argument("--index", default=None,
                    help="graph models, node task: 'all' or comma-separated node ids to score")
    sc.add_argument("--action-set", default=None, metavar="PATH",
                    help="an xai.ActionSet JSON file for the responsiveness metric and method")
    sc.add_argument("--hash-inputs", action="store_true", help="write sha256 of each input")
    sc.add_argument("--trust-pickle", action="store_true",
                    help="allow a .pkl/.joblib model (unpickling runs arbitrary code)")
    sc.add_argument("--trust-type", action="append", metavar="TYPE",
                    help="a type a .skops model may contain (repeatable)")
    sc.add_argument("--quiet", action="store_true", help="no progress bar")
    sc.set_defaults(func=_cmd_score)


def _add_audit(add: Any) -> None:
    au = add("audit", help="which explanation can I trust? agreement, stability and disparity "
                           "of methods; an HTML report and CSV tables")
    au.add_argument("--model", required=True,
                    help="a model spec as in xai score (demo-credit, a .skops file, ...)")
    au.add_argument("--data", required=True, help="CSV/JSONL/Parquet file of the examples")
    au.add_argument("--methods", required=True,
                    help="comma-separated method names; a method that cannot explain the model "
                         "is skipped with a warning")
    au.add_argument("--metrics", default="", help="comma-separated metric names (optional)")
    au.add_argument("--groups", default=None,
                    help="a column of the data file: the subgroups of the disparity tables")
    au.add_argument("--reference-group", default=None,
                    help="the group the gaps are measured from (default: the largest)")
    au.add_argument("--min-group-size", type=int, default=10,
                    help="groups with fewer scored examples get no mean or test (default 10)")
    au.add_argument("--vary", action="append", metavar="METHOD.PARAM=V1,V2,...",
                    help="a hyperparameter to vary (repeatable), values parsed as JSON, else "
                         "strings, e.g. kernel_shap.random_state=0,1,2")
    au.add_argument("--param", action="append", metavar="NAME.FIELD=VALUE",
                    help="a method or metric parameter, e.g. kernel_shap.budget=256")
    au.add_argument("--top-k", default="5",
                    help="k of the top-k measures: an int, or a fraction of the features")
    au.add_argument("--target", default=None,
                    help="explained output: a label, or an index when no label matches")
    au.add_argument("--n-bootstrap", type=int, default=2000, help="bootstrap replicates")
    au.add_argument("--n-permutations", type=int, default=2000,
                    help="relabellings of each permutation test")
    au.add_argument("--random-state", type=int, default=0)
    au.add_argument("--engine", choices=("local", "ray"), default="local")
    au.add_argument("--num-workers", type=int, default=None, help="Ray actors (default 2)")
    au.add_argument("--address", default=None, help="address of an existing Ray cluster")
    au.add_argument("--batch-size", type=int, default=64, help="examples per chunk")
    au.add_argument("--id-column", default=None, help="column of unique example ids")
    au.add_argument("--trust-pickle", action="store_true",
                    help="allow a .pkl/.joblib model (unpickling runs arbitrary code)")
    au.add_argument("--trust-type", action="append", metavar="TYPE",
                    help="a type a .skops model may contain (repeatable)")
    au.add_argument("--quiet", action="store_true", help="no progress bar")
    au.add_argument("--out", required=True,
                    help="output folder: report.html, the tables as CSV, and rows/ (a rerun "
                         "with the same options resumes from it)")
    au.set_defaults(func=_cmd_audit)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``xai`` console script.

    A user's mistake (a typed `XAIError`, or an OSError on a path the user gave) prints one line,
    ``xai: error: ...``, and returns 2; ``--debug`` raises it with its traceback instead. Any
    other exception is a bug and keeps its traceback.
    """
    args = build_parser().parse_args(argv)
    debug = bool(getattr(args, "debug", False))
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        if debug:
            raise
        print("xai: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        line = _user_error(err)
        if line is None or debug:
            raise
        print(f"xai: error: {line}", file=sys.stderr)
        return 2


def _user_error(err: Exception) -> str | None:
    """The message of a user's mistake on one line; None for a bug."""
    from .exceptions import XAIError

    if isinstance(err, XAIError):
        text = str(err)
    elif isinstance(err, OSError) and err.filename is not None:
        text = f"{err.filename}: {err.strerror or err}"
    else:
        return None
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


if __name__ == "__main__":
    sys.exit(main())
