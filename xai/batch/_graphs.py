"""Graph data sets of ``xai.batch.score``: one row per graph, or per node for node tasks.

A graph data set is a PyG ``Dataset``, a list of ``Data``, or a folder in TU format
(``<NAME>_A.txt``, ``<NAME>_graph_indicator.txt``, ... as published at chrsmrrs.github.io/datasets),
read with PyG's ``TUDataset`` from a local copy: nothing is downloaded. A node task (the
``index`` adapter option) scores the nodes of one graph: ``index="all"`` or a list of node ids.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import os
import shutil
from pathlib import Path
from typing import Any

from ..exceptions import InvalidInputError, InvalidParameterError
from ._data import Example

__all__ = ["NodeOf", "graph_inputs", "read_graphs", "read_tu"]


@dataclasses.dataclass(frozen=True, eq=False)
class NodeOf:
    """A node-task example: node ``node`` of ``graph``."""

    graph: Any
    node: int


def read_graphs(dataset: Any, *, index: Any = None) -> list[Example]:
    """Examples of a graph data set: one per graph, or one per node of ``index``.

    Parameters
    ----------
    dataset : torch_geometric Dataset, Data, list of Data, or a TU-format folder (str or path)
    index : None, "all", int or sequence of int
        Node task: the nodes to score (of the data set's only graph).
    """
    from ..adapters._pyg import import_pyg, is_pyg_data

    import_pyg("Scoring a graph data set")
    if isinstance(dataset, str | os.PathLike):
        graphs = read_tu(Path(dataset))
    elif is_pyg_data(dataset):
        from ..adapters._pyg import _as_graphs

        graphs = _as_graphs(dataset)
    else:
        msg = ("A graph model scores a torch_geometric Dataset, a list of Data or a folder in "
               f"TU format (<NAME>_A.txt, <NAME>_graph_indicator.txt, ...). Got "
               f"{type(dataset).__name__} instead.")
        raise InvalidParameterError(msg, parameter="dataset", value=type(dataset).__name__)
    if index is None:
        return [_graph_example(str(i), g) for i, g in enumerate(graphs)]
    if len(graphs) != 1:
        msg = (f"A node task (the 'index' adapter option) scores the nodes of one graph, but the "
               f"data set holds {len(graphs)} graphs. Pass one graph, or drop 'index' to score "
               "one row per graph.")
        raise InvalidParameterError(msg, parameter="index", value=index)
    graph = graphs[0]
    n = int(graph.num_nodes)
    nodes = list(range(n)) if isinstance(index, str) and index == "all" else (
        [index] if isinstance(index, int) else list(index))
    return [Example(str(int(v)), NodeOf(graph, int(v)),
                    None if 0 <= int(v) < n else
                    f"InvalidParameterError: node {int(v)} is outside the graph, which has {n} "
                    f"nodes (ids 0..{n - 1}).") for v in nodes]


def _graph_example(ident: str, graph: Any) -> Example:
    if getattr(graph, "edge_index", None) is None or getattr(graph, "x", None) is None:
        missing = "edge_index" if getattr(graph, "edge_index", None) is None else "x"
        return Example(ident, graph, f"InvalidInputError: graph {ident} has no {missing}.")
    return Example(ident, graph)


def graph_inputs(adapter: Any, values: list[Any]) -> tuple[Any, Any]:
    """(adapter, inputs) to explain ``values``: the graphs, or their nodes on one graph."""
    if values and isinstance(values[0], NodeOf):
        return adapter.configure(index=[v.node for v in values]), values[0].graph
    return adapter, list(values)


def describe_graph(value: Any) -> str:
    """The ``input`` column of a graph row."""
    if isinstance(value, NodeOf):
        return f"node {value.node} of a graph with {int(value.graph.num_nodes)} nodes"
    edges = getattr(value, "edge_index", None)
    n_edges = 0 if edges is None else int(edges.shape[1])
    return f"graph with {int(value.num_nodes or 0)} nodes and {n_edges} edges"


def read_tu(path: Path) -> list[Any]:
    """The graphs of a TU-format folder (``<NAME>_A.txt`` and friends, in ``path``, in
    ``path/raw`` or in ``path/<NAME>/raw``), through PyG's ``TUDataset`` on a cached copy (PyG
    writes its processed files next to the raw ones; the copy keeps the user's folder as it is)."""
    from torch_geometric.datasets import TUDataset

    raw = _raw_folder(path)
    name = next(raw.glob("*_A.txt")).name[: -len("_A.txt")]
    files = sorted(p for p in raw.iterdir() if p.name.startswith(f"{name}_") and p.is_file())
    digest = hashlib.sha256()
    for p in files:
        digest.update(p.name.encode())
        digest.update(p.read_bytes())
    root = _cache() / "tu" / f"{name}-{digest.hexdigest()[:16]}"
    target = root / name / "raw"
    if not target.exists():
        staging = root / f".{name}-{os.getpid()}"
        (staging / "raw").mkdir(parents=True, exist_ok=True)
        for p in files:
            shutil.copy2(p, staging / "raw" / p.name)
        try:
            staging.rename(root / name)
        except OSError:  # another process got there first
            shutil.rmtree(staging, ignore_errors=True)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            dataset = TUDataset(str(root), name)  # prints "Processing... Done!" once
    except Exception as err:
        msg = (f"The TU-format folder {str(path)!r} could not be read ({type(err).__name__}: "
               f"{err}). Check its {name}_*.txt files against the TU format "
               "(chrsmrrs.github.io/datasets).")
        raise InvalidInputError(msg, parameter="dataset", value=str(path)) from err
    return [dataset[i] for i in range(len(dataset))]


def _raw_folder(path: Path) -> Path:
    if not path.is_dir():
        msg = (f"The graph data set {str(path)!r} is not a folder. Pass a folder in TU format "
               "(<NAME>_A.txt, <NAME>_graph_indicator.txt, ...), a torch_geometric Dataset or "
               "a list of Data.")
        raise InvalidParameterError(msg, parameter="dataset", value=str(path))
    for folder in (path, path / "raw", *sorted(path.glob("*/raw"))):
        if folder.is_dir() and any(folder.glob("*_A.txt")) and any(
                folder.glob("*_graph_indicator.txt")):
            return folder
    msg = (f"The folder {str(path)!r} holds no TU-format graph data set: no <NAME>_A.txt with "
           "<NAME>_graph_indicator.txt in it, in raw/ or in <NAME>/raw/.")
    raise InvalidInputError(msg, parameter="dataset", value=str(path))


def _cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "posthoc-xai"
