"""Train the demo's graph classifiers and write their weight files.

Run ``python -m xai.demo.train_graphs`` (all four models) or name some:
``python -m xai.demo.train_graphs gcn-ba2motifs gin-mutag``. It writes, in
``xai/demo/weights/`` (or ``--out``), ``<arch>_<dataset>.safetensors`` for each model of
`xai.demo.graphs.GRAPH_MODELS` and ``graph_training_report.json`` (accuracies on the 8:1:1
train/validation/test split of `xai.demo.graphs.split_graphs`, epochs, seconds).

Training is deterministic: the initialisation runs under a fixed seed inside
``torch.random.fork_rng``, the mini-batches are shuffled by a seeded ``torch.Generator``, and
the models have no dropout. Adam, cross-entropy, the weights of the epoch with the best
validation accuracy (ties: the earlier epoch) are kept. A few seconds per model on 2 cores.
"""

from __future__ import annotations

import argparse
import datetime
import json
import time
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from .graphs import (
    GRAPH_MODELS,
    GRAPH_REPORT_PATH,
    build_graph_model,
    load_graph_dataset,
    split_graphs,
)

__all__ = ["accuracy", "main", "train_graph_model"]


def accuracy(model: torch.nn.Module, graphs: list[Any]) -> float:
    """Share of ``graphs`` whose predicted class is their label (one collated forward pass)."""
    from torch_geometric.data import Batch

    batch = Batch.from_data_list(graphs)
    with torch.no_grad():
        pred = model(batch.x, batch.edge_index, batch.batch).argmax(dim=1)
    return float((pred == batch.y).float().mean())


def train_graph_model(name: str) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Train the model ``name`` of `GRAPH_MODELS` on its data set; write nothing.

    Returns
    -------
    model : torch.nn.Module
        The model at its best validation epoch, in eval mode.
    report : dict
        Accuracies (train, validation, test), split sizes, best epoch, seconds.
    """
    from torch_geometric.data import Batch

    spec = GRAPH_MODELS[name]
    start = time.perf_counter()
    graphs = load_graph_dataset(spec.dataset)
    for g in graphs:  # the ground truth is not an input
        del g.edge_mask
    train, val, test = ([graphs[i] for i in part] for part in split_graphs(len(graphs),
                                                                           seed=spec.seed))
    model = build_graph_model(name)
    optimizer = torch.optim.Adam(model.parameters(), lr=spec.lr)
    generator = torch.Generator().manual_seed(spec.seed)
    best = (-1.0, 0, {k: v.clone() for k, v in model.state_dict().items()})
    for epoch in range(1, spec.epochs + 1):
        model.train()
        order = torch.randperm(len(train), generator=generator).tolist()
        for s in range(0, len(order), spec.batch_size):
            batch = Batch.from_data_list([train[i] for i in order[s:s + spec.batch_size]])
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(
                model(batch.x, batch.edge_index, batch.batch), batch.y)
            loss.backward()  # type: ignore[no-untyped-call]  # torch stubs leave it untyped
            optimizer.step()
        model.eval()
        acc = accuracy(model, val)
        if acc > best[0]:
            best = (acc, epoch, {k: v.clone() for k, v in model.state_dict().items()})
    model.load_state_dict(best[2])
    model.eval()
    labels = torch.cat([g.y for g in test])
    report = {
        "dataset": spec.dataset, "arch": spec.arch,
        "train_accuracy": accuracy(model, train), "val_accuracy": accuracy(model, val),
        "test_accuracy": accuracy(model, test),
        "test_majority_rate": float(torch.bincount(labels).max()) / len(labels),
        "n_train": len(train), "n_val": len(val), "n_test": len(test),
        "best_epoch": best[1], "epochs": spec.epochs, "lr": spec.lr,
        "batch_size": spec.batch_size, "hidden": spec.hidden, "n_layers": spec.n_layers,
        "seed": spec.seed, "n_parameters": sum(p.numel() for p in model.parameters()),
        "seconds": round(time.perf_counter() - start, 1),
    }
    return model, report


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point: train, then write weights and the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"models to train, of {', '.join(GRAPH_MODELS)} (default: all)")
    parser.add_argument("--out", type=Path, default=GRAPH_REPORT_PATH.parent)
    args = parser.parse_args(argv)
    names = args.names or list(GRAPH_MODELS)
    unknown = [n for n in names if n not in GRAPH_MODELS]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {list(GRAPH_MODELS)}")
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    report_path = out / GRAPH_REPORT_PATH.name
    report: dict[str, Any] = (json.loads(report_path.read_text()) if report_path.is_file()
                              else {})
    for name in names:
        model, entry = train_graph_model(name)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()},
                  str(out / GRAPH_MODELS[name].path.name))
        report[name] = entry
        print(f"{name}: test accuracy {entry['test_accuracy']:.3f} "
              f"(val {entry['val_accuracy']:.3f}, epoch {entry['best_epoch']}, "
              f"{entry['seconds']} s)")
    import torch_geometric

    report["_meta"] = {"date": datetime.date.today().isoformat(), "torch": torch.__version__,
                       "torch_geometric": torch_geometric.__version__}
    report_path.write_text(json.dumps(dict(sorted(report.items())), indent=2) + "\n")


if __name__ == "__main__":
    main()
