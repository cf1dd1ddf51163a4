"""Shapley values for generated text and context-length probing on Gemma 3 270M (issue 5).

1. Real run: document-level Shapley values on a 4-document question-answering prompt where one
   document holds the answer (value "log_prob" of the generated answer and TextGenSHAP's
   "answer" game).
2. Side by side with captum ``LLMAttribution`` (FeatureAblation and ShapleyValueSampling,
   ``use_cached_outputs=False``: the cached path crashes on transformers 5) and inseq
   (token-level occlusion, the closest it offers) on the same model, prompt and target: model
   calls, token positions and time, in one process.
3. Context-length probing vs recomputing every context length separately (NLL, L = max_context).

    python bench/generation.py [--quick] [--skip-clp]

Writes docs/generation.json and docs/generation_qa.png; prints the tables for
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

import xai  # noqa: E402
from xai.demo._causal_lm import load_causal_lm  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from run import CallCounter  # noqa: E402

PROMPT = {
    "prefix": "Answer the question using only the documents below.",
    "documents": [
        "The Eiffel Tower was completed in 1889 for the World's Fair in Paris.",
        "The Amazon is the largest rainforest on Earth and spans nine countries.",
        "Mount Kilimanjaro, the highest mountain in Africa, is located in Tanzania.",
        "The Great Barrier Reef lies off the coast of Queensland in Australia.",
    ],
    "suffix": "Question: In which country is Mount Kilimanjaro?\nAnswer:",
}
ANSWER_DOC = 2
SEP = "\n\n"


def counter_of(model: torch.nn.Module) -> CallCounter:
    """Counts forward calls and token positions of a causal LM at its first decoder layer, which
    every forward path reaches (``model.forward(...)`` called directly, token ids or
    ``inputs_embeds`` as inseq passes them)."""
    return CallCounter(model.model.layers[0])  # type: ignore[union-attr,index]


def timed(fn: Any, counter: CallCounter) -> tuple[Any, float, int, int]:
    with counter.count():
        start = time.perf_counter()
        out = fn()
        return out, time.perf_counter() - start, counter.calls, counter.positions


def qa_run(lm: Any, counter: CallCounter, n_permutations: int) -> dict[str, Any]:
    rows = {}
    for value, n_new in (("log_prob", 4), ("answer", 6)):
        exp, sec, calls, pos = timed(lambda v=value, n=n_new: xai.explain(
            lm, PROMPT, method="textgenshap", granularity="document", target="generated",
            max_new_tokens=n, value=v, n_permutations=n_permutations, random_state=0), counter)
        if value == "log_prob":
            per_doc = exp.values[0].sum(0)
            outputs = list(exp.target.names[0])
        else:  # the full prompt's answer
            col = int(exp.predictions[0].argmax())
            per_doc = exp.values[0, col]
            outputs = [exp.target.names[0][col]]
        rows[value] = {"values": per_doc.tolist(), "outputs": outputs, "seconds": sec,
                       "model_calls": calls, "token_positions": pos,
                       "n_coalitions": int(exp.extras["n_coalitions"]),
                       "n_decoded": int(exp.extras["n_decoded"]),
                       "n_speculative_accepted": int(exp.extras["n_speculative_accepted"]),
                       "answer_doc_largest": int(per_doc.argmax()) == ANSWER_DOC}
        if value == "log_prob":
            rows[value]["target_ids"] = list(exp.extras["target_ids"])
            rows[value]["answers"] = None
        else:
            rows[value]["answers"] = dict(exp.extras["answer_counts"])
    return rows


def captum_run(model: Any, tok: Any, counter: CallCounter, target_ids: list[int],
               n_permutations: int) -> dict[str, Any]:
    from captum.attr import FeatureAblation, LLMAttribution, ShapleyValueSampling, TextTemplateInput

    def template(*docs: str) -> str:
        return SEP.join([PROMPT["prefix"], *[d for d in docs if d], PROMPT["suffix"]])

    out = {}
    target = torch.tensor(target_ids)
    for name, method, kw in (("FeatureAblation", FeatureAblation, {}),
                             ("ShapleyValueSampling", ShapleyValueSampling,
                              {"n_samples": n_permutations})):
        attr = LLMAttribution(method(model), tok)
        inp = TextTemplateInput(template, values=list(PROMPT["documents"]),
                                baselines=[""] * len(PROMPT["documents"]))
        res, sec, calls, pos = timed(lambda a=attr, i=inp, k=kw: a.attribute(
            i, target=target, use_cached_outputs=False, **k), counter)
        out[name] = {"values": res.seq_attr.tolist(), "seconds": sec, "model_calls": calls,
                     "token_positions": pos}
    return out


def ours_sampling(lm: Any, counter: CallCounter, target_ids: list[int],
                  n_permutations: int) -> dict[str, Any]:
    """Ours at the same number of permutations (exact enumeration switched off)."""
    tok = lm.tokenizer
    target = tok.decode(target_ids)
    exp, sec, calls, pos = timed(lambda: xai.explain(
        lm, PROMPT, method="textgenshap", granularity="document", target=target,
        max_exact=0, n_permutations=n_permutations, random_state=0), counter)
    same = list(exp.extras["target_ids"]) == list(target_ids)
    return {"values": exp.values[0].sum(0).tolist(), "seconds": sec, "model_calls": calls,
            "token_positions": pos, "same_target_tokens": same,
            "n_coalitions": int(exp.extras["n_coalitions"])}


def inseq_run(model: Any, tok: Any, target_ids: list[int], limit_s: int) -> dict[str, Any]:
    """inseq's occlusion (token level, one forward per token per generated step), capped."""
    try:
        import inseq
    except ImportError as err:
        return {"error": f"inseq not importable: {err}"}
    import signal

    text = SEP.join([PROMPT["prefix"], *PROMPT["documents"], PROMPT["suffix"]])
    counter = counter_of(model)

    def stop(signum: int, frame: Any) -> None:
        raise TimeoutError

    old = signal.signal(signal.SIGALRM, stop)
    try:
        wrapped = inseq.load_model(model, "occlusion", tokenizer=tok)
        with counter.count():
            start = time.perf_counter()
            signal.alarm(limit_s)
            try:
                wrapped.attribute(text, text + tok.decode(target_ids), show_progress=False)
                stopped = {}
            except TimeoutError:
                stopped = {"error": f"stopped after {limit_s} s"}
            return {"method": "occlusion (tokens)", **stopped,
                    "seconds": time.perf_counter() - start, "model_calls": counter.calls,
                    "token_positions": counter.positions}
    except Exception as err:  # noqa: BLE001  - report what the peer does, whatever it is
        return {"error": f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"}
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        counter.close()


def clp_run(lm: Any, counter: CallCounter, n_tokens: int, max_context: int) -> dict[str, Any]:
    """Ours (stride-1 windows) vs one run per context length c for every target."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("cp", ROOT / "bench" / "context_probing.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = module.PASSAGE
    ids = lm.prepare([" ".join([text] * 3)]).tensors["input_ids"][0][: n_tokens + 1]
    text = lm.tokenizer.decode(ids[1:])
    exp, sec, calls, pos = timed(lambda: xai.explain(
        lm, text, method="context_length_probing", metric="nll", max_context=max_context),
        counter)
    n = exp.values.shape[-1] + 0
    # naive: for every context length c, every target t >= c is predicted from [BOS, c tokens];
    # run it for a few c (all windows of that length in batches) and integrate over c
    sample = sorted({1, max_context // 4, max_context // 2, max_context})
    naive_t = {}
    for c in sample:
        windows = torch.stack([ids[s:s + c + 1] for s in range(1, n - c + 1)])
        windows = torch.cat([torch.full((windows.shape[0], 1), int(ids[0])), windows[:, :-1]],
                            dim=1)  # [BOS, c context tokens]
        start_t = time.perf_counter()
        with torch.no_grad():
            for chunk in windows.split(16):
                lm.token_log_probs(chunk, torch.ones_like(chunk))
        naive_t[c] = time.perf_counter() - start_t
    cs = torch.arange(1, max_context + 1, dtype=torch.float64)
    xs = torch.tensor(sample, dtype=torch.float64)
    ys = torch.tensor([naive_t[c] for c in sample], dtype=torch.float64)
    est = float(torch.from_numpy(__import__("numpy").interp(cs.numpy(), xs.numpy(),
                                                            ys.numpy())).sum())
    naive_positions = sum((n - c) * (c + 1) for c in range(1, max_context + 1) if n - c > 0)
    return {"n_tokens": n, "max_context": max_context, "seconds": sec, "model_calls": calls,
            "token_positions": pos, "naive_seconds_estimate": est,
            "naive_token_positions": naive_positions, "naive_sampled_seconds": naive_t,
            "speedup_time": est / sec, "speedup_positions": naive_positions / pos}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="20 permutations, short CLP text")
    parser.add_argument("--skip-clp", action="store_true")
    parser.add_argument("--captum-permutations", type=int, default=20,
                        help="permutations for the side-by-side Shapley run (captum's cost is "
                             "n_permutations x documents x target tokens forward passes)")
    parser.add_argument("--inseq-path", default=None,
                        help="folder with inseq installed by pip --no-deps --target (its wheel "
                             "pulls CUDA libraries)")
    parser.add_argument("--stages", default="qa,captum,clp,inseq",
                        help="comma-separated subset of qa,captum,clp,inseq (results merge into "
                             "the existing JSON)")
    parser.add_argument("--inseq-limit", type=int, default=300, help="seconds allowed to inseq")
    args = parser.parse_args()
    if args.inseq_path:
        sys.path.append(args.inseq_path)
    n_perm = 20 if args.quick else 100
    out = ROOT / "docs" / ("generation_quick.json" if args.quick else "generation.json")
    report: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    stages = args.stages.split(",")
    model, tok = load_causal_lm()
    lm = xai.as_adapter((model, tok))
    report.update({"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                   "machine": "2 CPU cores (shared), torch CPU",
                   "model": "Gemma 3 270M (packaged GGUF, float32)", "n_permutations": n_perm})

    def save() -> None:  # after every stage, so a long peer run never loses the others
        out.write_text(json.dumps(report, indent=2))

    if "qa" in stages:
        counter = counter_of(model)
        report["qa"] = qa_run(lm, counter, n_perm)
        counter.close()
        save()
    target_ids = report["qa"]["log_prob"]["target_ids"]
    if "captum" in stages:
        counter = counter_of(model)
        report["captum_permutations"] = args.captum_permutations
        report["ours_sampling"] = ours_sampling(lm, counter, target_ids,
                                                args.captum_permutations)
        report["captum"] = captum_run(model, tok, counter, target_ids, args.captum_permutations)
        counter.close()
        save()
    if "clp" in stages:
        counter = counter_of(model)
        report["clp"] = clp_run(lm, counter, 96 if args.quick else 300,
                                64 if args.quick else 256)
        counter.close()
        save()
    if "inseq" in stages:
        report["inseq"] = inseq_run(model, tok, target_ids, args.inseq_limit)
        save()
    plot(report)
    print_tables(report)


def plot(report: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3))
    labels = [f"doc {i + 1}" for i in range(len(PROMPT["documents"]))]
    for ax, (key, title) in zip(axes, (("log_prob", "log p(generated answer)"),
                                       ("answer", "answer game (full answer)")), strict=True):
        vals = report["qa"][key]["values"]
        ax.bar(labels, vals, color=["C3" if i == ANSWER_DOC else "C0" for i in range(4)])
        ax.set_title(title, fontsize=10)
        ax.axhline(0, color="k", lw=0.5)
    axes[0].set_ylabel("Shapley value")
    fig.suptitle("Which document does Gemma 3 270M use? (doc 3 holds the answer)", fontsize=10)
    fig.tight_layout()
    fig.savefig(ROOT / "docs" / "generation_qa.png", dpi=110)


def print_tables(r: dict[str, Any]) -> None:
    qa = r["qa"]
    print("| value | outputs | Shapley value per document | answer doc largest | s | calls |")
    print("|---|---|---|---|---|---|")
    for key in ("log_prob", "answer"):
        q = qa[key]
        print(f"| {key} | {''.join(q['outputs'])!r} | "
              f"{', '.join(f'{v:+.3f}' for v in q['values'])} | {q['answer_doc_largest']} | "
              f"{q['seconds']:.1f} | {q['model_calls']} |")
    print()
    ours = r["ours_sampling"]
    print(f"| n_permutations = {r['captum_permutations']} | s | model calls | token positions |")
    print("|---|---|---|---|")
    print(f"| ours (permutation sampling) | {ours['seconds']:.1f} | {ours['model_calls']} | "
          f"{ours['token_positions']} |")
    print(f"| ours (exact, default) | {qa['log_prob']['seconds']:.1f} | "
          f"{qa['log_prob']['model_calls']} | {qa['log_prob']['token_positions']} |")
    for name, c in r["captum"].items():
        print(f"| captum {name} | {c['seconds']:.1f} | {c['model_calls']} | "
              f"{c['token_positions']} |")
    i = r.get("inseq", {"error": "not run"})
    if "model_calls" not in i:
        print(f"| inseq | {i['error']} | | |")
    else:
        note = f" ({i['error']})" if "error" in i else ""
        print(f"| inseq {i['method']}{note} | {i['seconds']:.1f} | {i['model_calls']} | "
              f"{i['token_positions']} |")
    svs = r["captum"]["ShapleyValueSampling"]
    print(f"\nShapley vs captum ShapleyValueSampling: calls x{svs['model_calls'] / ours['model_calls']:.1f}"
          f" fewer, time x{svs['seconds'] / ours['seconds']:.1f} faster")
    if "clp" in r:
        c = r["clp"]
        print(f"\nCLP N={c['n_tokens']} L={c['max_context']}: ours {c['seconds']:.1f} s, "
              f"{c['token_positions']} positions; naive ~{c['naive_seconds_estimate']:.0f} s, "
              f"{c['naive_token_positions']} positions: x{c['speedup_time']:.1f} time, "
              f"x{c['speedup_positions']:.1f} positions")


if __name__ == "__main__":
    main()
