"""The ``xai`` command: ``xai demo``, ``xai methods``, ``xai explain``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


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
    widths = [max(len(str(x)) for x in col) for col in zip(header, *table, strict=False)]
    for line in (header, *table):
        print("  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True)).rstrip())
    return 0


def _cmd_explain(args: argparse.Namespace) -> int:
    from . import explain

    if args.model == "demo-sentiment":
        from .demo import load_sentiment_model

        model = load_sentiment_model()
        inputs: object = args.text
        if not args.text:
            print("error: --text is required with --model demo-sentiment", file=sys.stderr)
            return 2
    else:
        print(f"error: unknown --model {args.model!r}; available: demo-sentiment",
              file=sys.stderr)
        return 2
    exp = explain(model, inputs, method=args.method, random_state=args.random_state)
    for i, names in enumerate(exp.feature_names):
        score = "" if exp.predictions is None else f" score={float(exp.predictions[i, 0]):.4f}"
        print(f"[{exp.target.names[i][0]}{score}]")
        for name, value in zip(names, exp.values[i, 0].tolist(), strict=False):
            print(f"  {name:>20s} {value:+.4f}")
    if args.html:
        from .plot._html import explanation_html, report_html

        with open(args.html, "w") as fh:
            fh.write(report_html([(f"{exp.method}", explanation_html(exp))]))
        print(f"HTML written to {args.html}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``xai`` command."""
    parser = argparse.ArgumentParser(prog="xai", description="Post-hoc explanations of ML models.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="explain the embedded demo models; write an HTML report")
    demo.add_argument("--out", default="xai-demo", help="output folder (default: ./xai-demo)")
    demo.add_argument("--n-reviews", type=int, default=5)
    demo.add_argument("--n-applicants", type=int, default=5)
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    demo.set_defaults(func=_cmd_demo)
    methods = sub.add_parser("methods", help="list the registered methods")
    methods.set_defaults(func=_cmd_methods)
    exp = sub.add_parser("explain", help="explain one text with a demo model")
    exp.add_argument("--model", default="demo-sentiment")
    exp.add_argument("--text", action="append", help="text to explain (repeatable)")
    exp.add_argument("--method", default="integrated_gradients")
    exp.add_argument("--random-state", type=int, default=0)
    exp.add_argument("--html", help="write an HTML heatmap here")
    exp.set_defaults(func=_cmd_explain)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``xai`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except Exception as err:  # the message of a typed error is the user's fix
        from .exceptions import XAIError

        if isinstance(err, XAIError):
            print(f"error: {err}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
