"""Shapley estimators at equal model rows: ours vs shap and shapiq, against exact Shapley values.

For each budget B (model rows per explained example, the empty and full coalitions included) and
each seed, every contender estimates the Shapley values of the same games; the error is the RMSE
against exact values from all 2^d coalitions. Contenders:

- ours: ``xai.explain(..., method="shapley_sampling", estimator=E, budget=B, max_exact=0)`` for E
  in permutation (antithetic), kernel (paired, exact constrained regression), leverage,
  stratified (SVARM) and adjusted (regression-adjusted Leverage SHAP); "auto" is left out, as
  it picks one of these per example;
- shap: ``explainers.Permutation(max_evals=B)`` and ``KernelExplainer(nsamples=B - 2,
  l1_reg=False)`` (it scores f(background) and f(x) besides its samples);
- shapiq (when installed, not a project dependency): ``KernelSHAP`` (default and
  ``pairing_trick=True``), ``SVARM`` and ``LeverageSHAP`` (shapiq >= 1.5) with ``budget=B``.

Games: (1) the demo credit MLP (20 standardized features, target "good", baseline zeros) on the
first test rows, exact from 2^20 coalitions per row; (2) the MiniLM sentiment model on held-out
reviews of 12, 13 and 14 words (target logit with the words outside S replaced by [PAD], the game
of ``bench/attribution.py``), exact from all 2^d coalitions; with d >= 12 every budget stays
below 2^d (an example with 2^d <= B would be enumerated exactly). The text game's 2^d values are
scored once with the real model and then served from a table to every contender (ours included,
through the same tabular pipeline), which is the same game at a fraction of the cost; one run of
each of our estimators on the real model checks that.

Run ``python bench/shapley.py`` (full: 10 seeds on the credit game, 5 on the text game) or
``--quick`` (3 and 2 seeds, one 12-word text); ``bench/run.py`` runs every area.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import sys
import time
import warnings
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from attribution import OCC_BATCH, Game, ten_word_snippet  # noqa: E402
from run import CallCounter, Section, area_main, load_average  # noqa: E402

import xai  # noqa: E402

BUDGETS: tuple[int, ...] = (128, 256, 512, 1024, 2048)
OURS: tuple[str, ...] = ("permutation", "kernel", "leverage", "stratified", "adjusted")
N_CREDIT_ROWS = 5
GOAL = 0.5  # issue 16: our best RMSE <= half the best peer's at equal rows

#: A game of one example: bool coalitions (k, d) -> values (k,), float64.
Player = Callable[[np.ndarray], np.ndarray]
#: A peer: (game, d, budget, seed) -> estimated values (d,).
Peer = Callable[[Player, int, int, int], np.ndarray]


@dataclasses.dataclass
class Games:
    """Several examples' games of one model, and how ours explains them all at once."""

    title: str
    games: list[Player]
    dims: list[int]
    ours: Callable[[str, int, int], torch.Tensor]  # (estimator, budget, seed) -> values (sum d,)
    exact: torch.Tensor  # (sum d,) float64
    counters: list[CallCounter]
    seeds: list[int]
    facts: list[str] = dataclasses.field(default_factory=list)

    def rows(self) -> int:
        return sum(c.rows for c in self.counters)


def shapiq_version() -> str | None:
    try:
        import shapiq  # noqa: F401
    except ImportError:
        return None
    return importlib.metadata.version("shapiq")


# -- games --------------------------------------------------------------------------------------
def masked_game(model: torch.nn.Module, x: torch.Tensor, target: int) -> Player:
    """v(S) = model(x with the features outside S set to 0)[target] (baseline zeros)."""

    def game(z: np.ndarray) -> np.ndarray:
        keep = torch.as_tensor(np.atleast_2d(np.asarray(z) != 0), dtype=x.dtype)
        with torch.no_grad():
            return np.asarray(model(x * keep)[:, target].double().numpy(), dtype=np.float64)

    return game


class Lookup(torch.nn.Module):
    """A tabulated game as a tabular model: input z in {0, 1}^d -> table[sum_j z_j 2^j]."""

    table: torch.Tensor
    powers: torch.Tensor

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.d = int(table.numel()).bit_length() - 1
        self.register_buffer("table", table.float())
        self.register_buffer("powers", 2 ** torch.arange(self.d))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        codes = ((z > 0.5).long() * self.powers).sum(-1)
        return self.table[codes].unsqueeze(-1)


def credit_games(seeds: list[int]) -> Games:
    from xai.demo._credit_mlp import fit_credit_mlp
    from xai.demo._data import split_credit

    mlp = fit_credit_mlp()
    x = mlp.standardize(split_credit()[1])[:N_CREDIT_ROWS]
    start = time.perf_counter()
    exact = xai.explain(mlp.model, x, method="shapley_sampling", target=1, baseline="zeros",
                        max_exact=2**20, batch_size=65536).values[:, 0]
    seconds = time.perf_counter() - start

    def ours(estimator: str, budget: int, seed: int) -> torch.Tensor:
        return xai.explain(mlp.model, x, method="shapley_sampling", target=1, baseline="zeros",
                           estimator=estimator, budget=budget, max_exact=0,
                           random_state=seed).values[:, 0].flatten()

    g = Games("Credit MLP", [masked_game(mlp.model, x[i:i + 1], 1) for i in range(len(x))],
              [x.shape[1]] * len(x), ours, exact.flatten().double(), [CallCounter(mlp.model)],
              seeds)
    g.facts.append(f"Exact values: all 2^20 = {2**20:,} coalitions of each of the {len(x)} rows "
                   f"({len(x) * 2**20:,} model rows, {seconds:.1f} s); RMS of the exact values "
                   f"{float(exact.pow(2).mean().sqrt()):.3f}.")
    return g


def text_games(seeds: list[int], words: tuple[int, ...]) -> Games:
    from xai.demo import load_sentiment_model

    model, tok = load_sentiment_model()
    adapter = xai.as_adapter((model, tok))
    texts = [ten_word_snippet(adapter, n) for n in words]
    lookups, exacts, targets = [], [], []
    start = time.perf_counter()
    for text in texts:
        game = Game(model, tok, text)
        codes = torch.arange(2**game.d)
        lookups.append(Lookup(game((codes.unsqueeze(1) >> torch.arange(game.d)) & 1 == 1)))
        exacts.append(xai.explain(lookups[-1], torch.ones(1, game.d), method="shapley_sampling",
                                  target=0, baseline="zeros", max_exact=2**game.d
                                  ).values[0, 0].double())
        targets.append(game.target)
    seconds = time.perf_counter() - start

    def ours(estimator: str, budget: int, seed: int) -> torch.Tensor:
        return torch.cat([xai.explain(lk, torch.ones(1, lk.d), method="shapley_sampling",
                                      target=0, baseline="zeros", estimator=estimator,
                                      budget=budget, max_exact=0, random_state=seed
                                      ).values[0, 0] for lk in lookups])

    # the tabulated game is the model's: our estimators on the real model give the same values
    gap = 0.0
    for estimator in OURS:
        real = torch.cat([xai.explain((model, tok), [text], method="shapley_sampling",
                                      granularity="word", baseline="pad", target=t,
                                      batch_size=OCC_BATCH, estimator=estimator,
                                      budget=BUDGETS[0], max_exact=0, random_state=0
                                      ).values[0, 0] for text, t in zip(texts, targets, strict=True)])
        gap = max(gap, float((real - ours(estimator, BUDGETS[0], 0)).abs().max()))
    dims = [lk.d for lk in lookups]
    g = Games("MiniLM sentiment", [masked_game(lk, torch.ones(1, lk.d), 0) for lk in lookups],
              dims, ours, torch.cat(exacts), [CallCounter(lk) for lk in lookups], seeds)
    g.facts.append(
        f"Reviews (held-out, `split_reviews(random_state=0)[1]`, the first with {', '.join(map(str, words))} "
        f"words; target = predicted class): " + "; ".join(f"\"{t}\"" for t in texts) + ".")
    g.facts.append(
        f"Exact values: all {' + '.join(f'2^{d}' for d in dims)} = {sum(2**d for d in dims):,} "
        f"coalitions scored by the model ({seconds:.0f} s), then served from a table to every "
        f"contender; our {len(OURS)} estimators run on the real model (B = {BUDGETS[0]}, "
        f"seed 0) differ from their table runs by at most {gap:.1e}. RMS of the exact values "
        f"{float(torch.cat(exacts).pow(2).mean().sqrt()):.3f}.")
    return g


# -- peers --------------------------------------------------------------------------------------
def shap_permutation(game: Player, d: int, budget: int, seed: int) -> np.ndarray:
    import shap

    explainer = shap.explainers.Permutation(game, shap.maskers.Independent(np.zeros((1, d))),
                                            seed=seed)
    return np.asarray(explainer(np.ones((1, d)), max_evals=budget, silent=True).values[0])


def shap_kernel(game: Player, d: int, budget: int, seed: int) -> np.ndarray:
    import shap

    # KernelExplainer draws from numpy's global generator: seed it, then restore its state
    state = np.random.get_state()  # noqa: NPY002
    np.random.seed(seed)  # noqa: NPY002
    try:
        explainer = shap.KernelExplainer(game, np.zeros((1, d)))
        values = explainer.shap_values(np.ones((1, d)), nsamples=budget - 2, l1_reg=False,
                                       silent=True)
    finally:
        np.random.set_state(state)  # noqa: NPY002
    return np.asarray(values).reshape(d)


def shapiq_peer(name: str, **kwargs: Any) -> Peer:
    def run_peer(game: Player, d: int, budget: int, seed: int) -> np.ndarray:
        import shapiq.approximator as approximators

        approx = getattr(approximators, name)(d, random_state=seed, **kwargs)
        return np.asarray(approx.approximate(budget, game).get_n_order_values(1))

    return run_peer


def peers() -> dict[str, Peer]:
    out: dict[str, Peer] = {"shap Permutation": shap_permutation, "shap Kernel (l1_reg=False)": shap_kernel}
    if shapiq_version() is not None:
        import shapiq.approximator as approximators

        out["shapiq KernelSHAP"] = shapiq_peer("KernelSHAP")
        out["shapiq KernelSHAP (pairing_trick)"] = shapiq_peer("KernelSHAP", pairing_trick=True)
        out["shapiq SVARM"] = shapiq_peer("SVARM")
        if hasattr(approximators, "LeverageSHAP"):
            out["shapiq LeverageSHAP"] = shapiq_peer("LeverageSHAP")
    return out


# -- measurement --------------------------------------------------------------------------------
@dataclasses.dataclass
class Cell:
    rmse: list[float]  # one per seed; empty where the budget is below the estimator's least rows
    rows: float  # model rows per example (first seed)
    seconds: float  # total over seeds
    note: str = ""  # why there is no value


def measure(g: Games) -> dict[str, dict[int, Cell]]:
    """RMSE against exact (per seed) and rows per example of every contender at every budget."""
    def ours(estimator: str) -> Callable[[int, int], torch.Tensor]:
        return lambda budget, seed: g.ours(estimator, budget, seed)

    def peer_on_all(peer: Peer) -> Callable[[int, int], torch.Tensor]:
        return lambda budget, seed: torch.cat([torch.as_tensor(
            peer(game, d, budget, seed), dtype=torch.float64)
            for game, d in zip(g.games, g.dims, strict=True)])

    fns = {f"ours {e}": ours(e) for e in OURS}
    fns.update({name: peer_on_all(peer) for name, peer in peers().items()})
    for fn in fns.values():  # warm-up (shap's first call compiles with numba)
        for budget in BUDGETS:
            try:
                fn(budget, g.seeds[0])
                break
            except xai.exceptions.InvalidParameterError:
                continue  # below the estimator's fewest rows (stratified on 20 players)
    out: dict[str, dict[int, Cell]] = {name: {} for name in fns}
    for name, fn in fns.items():
        for budget in BUDGETS:
            cell = Cell([], 0.0, 0.0)
            for k, seed in enumerate(g.seeds):
                with ExitStack() as stack:
                    for c in g.counters:
                        stack.enter_context(c.count())
                    start = time.perf_counter()
                    try:
                        values = fn(budget, seed).double()
                    except xai.exceptions.InvalidParameterError as err:
                        if not name.startswith("ours"):
                            raise
                        cell.note = f"n/a (needs {err.constraint or 'more'} rows)"
                        break
                    cell.seconds += time.perf_counter() - start
                    if k == 0:
                        cell.rows = g.rows() / len(g.games)
                cell.rmse.append(float((values - g.exact).pow(2).mean().sqrt()))
            out[name][budget] = cell
        print(f"  {g.title} {name}: " + " ".join(f"{np.mean(c.rmse):.4f}" if c.rmse else c.note
                                                  for c in out[name].values()), flush=True)
    return out


def interval(xs: list[float]) -> tuple[float, float, float]:
    """Mean and 95% t-interval of the mean over seeds."""
    from scipy import stats

    a = np.asarray(xs)
    if len(a) < 2:
        return float(a.mean()), float("nan"), float("nan")
    half = float(stats.t.ppf(0.975, len(a) - 1) * a.std(ddof=1) / np.sqrt(len(a)))
    return float(a.mean()), float(a.mean()) - half, float(a.mean()) + half


def game_tables(g: Games, res: dict[str, dict[int, Cell]]) -> tuple[str, bool]:
    head = "| estimator | " + " | ".join(f"B = {b}" for b in BUDGETS) + " |"
    sep = "|---|" + "---|" * len(BUDGETS)
    lines = [f"### {g.title}: RMSE against exact, mean over {len(g.seeds)} seeds [95% interval "
             "of the mean]", "", head, sep]
    for name, cells in res.items():
        parts = []
        for b in BUDGETS:
            if not cells[b].rmse:
                parts.append(cells[b].note)
                continue
            m, lo, hi = interval(cells[b].rmse)
            parts.append(f"{m:.4f} [{lo:.4f}, {hi:.4f}]")
        lines.append(f"| {name} | " + " | ".join(parts) + " |")
    lines += ["", "Our best / best peer (mean RMSE at equal budget; goal <= 0.5):", "",
              "| | " + " | ".join(f"B = {b}" for b in BUDGETS) + " |", sep]
    best_rows: dict[str, list[str]] = {"our best": [], "best peer": [], "ratio": [], "goal met": []}
    met = True
    for b in BUDGETS:
        means = {name: float(np.mean(cells[b].rmse)) for name, cells in res.items()
                 if cells[b].rmse}
        ours = min((n for n in means if n.startswith("ours")), key=means.__getitem__)
        peer = min((n for n in means if not n.startswith("ours")), key=means.__getitem__)
        ratio = means[ours] / means[peer] if means[peer] > 0 else float("nan")
        met &= bool(ratio <= GOAL)
        best_rows["our best"].append(f"{ours[5:]} {means[ours]:.4f}")
        best_rows["best peer"].append(f"{peer} {means[peer]:.4f}")
        best_rows["ratio"].append(f"{ratio:.2f}")
        best_rows["goal met"].append("yes" if ratio <= GOAL else "**no**")
    lines += [f"| {k} | " + " | ".join(v) + " |" for k, v in best_rows.items()]
    lines += ["", "Model rows per example actually used (counted by a forward pre-hook):", "",
              head, sep]
    lines += [f"| {name} | " + " | ".join(f"{cells[b].rows:.0f}" if cells[b].rmse else "n/a"
                                          for b in BUDGETS) + " |"
              for name, cells in res.items()]
    lines += ["", *[f"- {fact}" for fact in g.facts],
              "- Seconds per contender (all budgets and seeds): " + "; ".join(
                  f"{name} {sum(c.seconds for c in cells.values()):.1f}"
                  for name, cells in res.items()) + ".", ""]
    return "\n".join(lines), met


def run(quick: bool = False) -> Section:
    """Measure both games and return the markdown section."""
    warnings.filterwarnings("ignore", module="shapiq")
    load_start = load_average()
    version = shapiq_version()
    games = [credit_games(list(range(3 if quick else 10))),
             text_games(list(range(2 if quick else 5)), (12,) if quick else (12, 13, 14))]
    parts, met = [], True
    for g in games:
        text, ok = game_tables(g, measure(g))
        parts.append(text)
        met &= ok
        print(text, flush=True)
    for c in (c for g in games for c in g.counters):
        c.close()
    shapiq_note = (
        f"shapiq {version} (installed for this run; not a project dependency). "
        + ("" if "shapiq LeverageSHAP" in peers() else
           "Its `LeverageSHAP` arrived after this release (1.8 needs Python >= 3.12, this is "
           f"{sys.version.split()[0]}), so our leverage estimator has no shapiq counterpart here.")
        if version else
        "shapiq is not installed (`pip install shapiq`; not a project dependency): its "
        "approximators are left out and the best peer is shap's.")
    md = "\n".join([
        "RMSE of estimated Shapley values against exact ones at equal model rows per example "
        f"(B: budgets {', '.join(map(str, BUDGETS))}, the empty and full coalitions included), "
        f"{torch.get_num_threads()} torch threads. Every contender plays the same game through "
        "the same model, and all rows are counted by a forward pre-hook. A seed's RMSE pools all "
        "players of all examples of the game; the interval is the 95% t-interval of the mean "
        "over seeds.", "", *parts, "Notes:", "",
        f"- {shapiq_note}",
        "- Ours: `xai.explain(model, X, method=\"shapley_sampling\", estimator=..., budget=B, "
        "max_exact=0, random_state=seed)`; seeds 0.. . shap Permutation gets `max_evals=B` and "
        "spends 2d + 1 rows per antithetic pair (so it may stop below B); shap Kernel gets "
        "`nsamples=B - 2` with `l1_reg=False` (its default `num_features(10)` keeps only 10 of the "
        "20 credit features) and its global numpy generator seeded per call (state restored).",
        "- Peers receive binary masks and score them through the same model (shap: data ones, "
        "an `Independent` masker with a zeros background, so every feature varies).",
        f"- Load average (1 min) at the start / end: {load_start} / {load_average()}."])
    return Section("Shapley estimators (shap, shapiq)", md, met)


def main() -> int:
    return area_main(run, "Shapley estimators vs shap and shapiq at equal model rows.")


if __name__ == "__main__":
    raise SystemExit(main())
