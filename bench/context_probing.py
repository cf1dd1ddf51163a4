"""Real run of context-length probing (issue 5) on the packaged Gemma 3 270M: a ~128-token
English passage, importance of each context token for every target token, and the mean
importance by distance (plot: docs/context_probing_distance.png, numbers:
docs/context_probing.json).

    python bench/context_probing.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

import xai  # noqa: E402
from xai.demo._causal_lm import load_causal_lm  # noqa: E402

PASSAGE = (
    "The old lighthouse stood at the edge of the cliff, where the wind never stopped. Every "
    "evening, Martha climbed the spiral stairs with a lantern in one hand and a book in the "
    "other. She had kept the light burning for forty years, ever since her father fell ill. "
    "Ships passed far below, their crews unaware of the woman who watched them through the "
    "salt-streaked glass. One stormy night in November, a small fishing boat lost its way "
    "among the rocks. Martha saw its red light flicker and vanish, then appear again. She "
    "rang the bell as hard as she could, and the boat turned slowly back toward the harbour. "
    "In the morning, the fishermen climbed the hill to thank the keeper of the lighthouse."
)


def main() -> None:
    lm = xai.as_adapter(load_causal_lm())
    start = time.perf_counter()
    exp = xai.explain(lm, PASSAGE, method="context_length_probing", metric="kl",
                      max_context=128)
    seconds = time.perf_counter() - start
    values = exp.values[0]  # (n_targets, n_context): target t = context position t + 1
    n_t, n_c = values.shape
    by_distance = []
    for d in range(1, n_t + 1):
        diag = torch.stack([values[t, t + 1 - d] for t in range(d - 1, n_t)])
        by_distance.append(float(diag.mean()))
    out = {"n_tokens": n_c + 1, "seconds": seconds, "n_model_calls": int(
        exp.extras["n_model_calls"]), "mean_importance_by_distance": by_distance,
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    (ROOT / "docs" / "context_probing.json").write_text(json.dumps(out, indent=2))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(range(1, len(by_distance) + 1), by_distance, marker=".", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("distance of the context token (tokens back)")
    ax.set_ylabel("mean KL importance (nats)")
    ax.set_title(f"Context-length probing, Gemma 3 270M, {n_c + 1}-token passage")
    fig.tight_layout()
    fig.savefig(ROOT / "docs" / "context_probing_distance.png", dpi=120)
    print(json.dumps({k: v for k, v in out.items() if k != "mean_importance_by_distance"}))
    print("distance 1..10:", [round(v, 3) for v in by_distance[:10]])


if __name__ == "__main__":
    main()
