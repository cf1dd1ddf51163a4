"""Real run of the LM-replacement methods (issue 4): OLM and input marginalization with the
packaged Gemma 3 270M as resampler, against occlusion ([UNK], [MASK], deletion), on held-out
Rotten Tomatoes snippets explained with the real MiniLM sentiment classifier.

Reports (docs/text_methods.md, results in docs/text_methods.json): mean per-sentence Pearson
correlation of OLM with Unk/Delete occlusion (the OLM paper: 0.47/0.52 on SST-2 with RoBERTa),
AOPC comprehensiveness of every method under one common game (deletion), time per explanation,
classifier and LM calls, and the resampler's share of the time.

    python bench/text_methods.py [--n 20] [--top-k 10]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

import metrics  # noqa: E402
import xai  # noqa: E402
from xai.demo import load_sentiment_model, split_reviews  # noqa: E402
from xai.demo._causal_lm import load_causal_lm  # noqa: E402


class TimedResampler:
    """Wraps a resampler: memoises proposals (OLM and IM share them) and times the LM."""

    def __init__(self, inner: xai.TokenResampler) -> None:
        self.inner, self.seconds, self.cache = inner, 0.0, {}

    def propose(self, text, spans):  # type: ignore[no-untyped-def]
        key = (text, tuple(spans))
        if key not in self.cache:
            start = time.perf_counter()
            self.cache[key] = self.inner.propose(text, spans)
            self.seconds += time.perf_counter() - start
        return self.cache[key]


def snippets(n: int) -> list[str]:
    _, test = split_reviews(random_state=0)
    short = test[test["text"].str.split().str.len().between(6, 20)]
    return short.sample(n, random_state=0)["text"].tolist()


def correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double() - a.double().mean(), b.double() - b.double().mean()
    den = float((a.square().sum() * b.square().sum()).sqrt())
    return float((a * b).sum()) / den if den > 0 else math.nan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--top-k", type=int, default=10)
    args = parser.parse_args()
    warnings.simplefilter("ignore", xai.XAIWarning)
    clf = xai.as_adapter(load_sentiment_model())
    lm, lm_tok = load_causal_lm()
    causal = xai.CausalLMResampler(lm, lm_tok, top_k=args.top_k)
    resampler = TimedResampler(causal)
    texts = snippets(args.n)
    runs = {
        "occlusion [UNK]": {"method": "occlusion", "baseline": "unk"},
        "occlusion [MASK]": {"method": "occlusion", "baseline": "mask"},
        "occlusion delete": {"method": "occlusion", "baseline": "delete"},
        "OLM": {"method": "olm", "resampler": resampler, "n_samples": None},
        "input marginalization": {"method": "input_marginalization", "resampler": resampler},
    }
    exps, timing = {}, {}
    for name, params in runs.items():
        lm_before, calls_before = resampler.seconds, causal.n_model_calls
        start = time.perf_counter()
        exps[name] = xai.explain(clf, texts, random_state=0, **params)
        total = time.perf_counter() - start
        timing[name] = {"seconds_per_text": total / len(texts),
                        "lm_share": (resampler.seconds - lm_before) / total,
                        "classifier_calls": int(exps[name].extras["n_model_calls"]),
                        "lm_calls": causal.n_model_calls - calls_before}
    # one common game for AOPC: ERASER deletion, whatever removal produced the explanation
    delete = clf.features(exps["OLM"].inputs, baseline="delete")
    aopc = {name: metrics.AOPCComprehensiveness()(dataclasses.replace(e, features=delete), clf)
            .mean() for name, e in exps.items()}
    corr = {}
    for other in ("occlusion [UNK]", "occlusion delete", "occlusion [MASK]",
                  "input marginalization"):
        vals = [correlation(exps["OLM"].values[i, 0][exps["OLM"].valid(i)],
                            exps[other].values[i, 0][exps[other].valid(i)])
                for i in range(len(texts))]
        corr[other] = float(np.nanmean(vals))
    out = {"n_texts": len(texts), "top_k": args.top_k, "texts": texts, "timing": timing,
           "aopc_comprehensiveness_delete": aopc, "olm_correlation": corr,
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    (ROOT / "docs" / "text_methods.json").write_text(json.dumps(out, indent=2))
    print(json.dumps({k: v for k, v in out.items() if k != "texts"}, indent=2))


if __name__ == "__main__":
    main()
