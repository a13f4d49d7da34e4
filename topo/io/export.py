"""Files made from results: graphs for other tools, figures, and the checks before writing.

- :func:`export_graph` writes a :class:`~topo.graph.LayeredGraph` as GraphML, GEXF or a plain
  edge list, the format named by the file's suffix unless given (the data model itself never
  touches files; ``LayeredGraph.to_networkx`` builds the in-memory view these writers use).
- :func:`save_figure` saves a matplotlib figure in the format its suffix names.
- :func:`check_output_path` / :func:`check_figure_path` / :func:`check_outputs` refuse, before
  any work, a path that could not be written, so a command never computes for minutes and then
  fails, nor leaves half its outputs.

Every file is written atomically (a temporary file beside the target, then a rename).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from topo.errors import ConfigError, OutputError
from topo.graph import LayeredGraph, require_graph
from topo.io.atomic import atomic_path

__all__ = ["EXPORT_FORMATS", "EXPORT_SUFFIXES", "FIGURE_SUFFIXES", "export_graph",
           "export_format", "save_figure", "check_output_path", "check_figure_path",
           "check_outputs"]

EXPORT_FORMATS = ("graphml", "gexf", "edgelist")
#: The file suffixes that name an export format (:func:`export_format`).
EXPORT_SUFFIXES = {".graphml": "graphml", ".gexf": "gexf", ".edgelist": "edgelist",
                   ".edges": "edgelist"}
FIGURE_SUFFIXES = (".png", ".svg", ".pdf")


def export_graph(graph: LayeredGraph, path: str | Path, format: str | None = None) -> Path:
    """Write ``graph`` to ``path`` as GraphML, GEXF or an edge list, atomically.

    Parameters
    ----------
    graph
        The network.
    path
        Target file. Its suffix names the format (:data:`EXPORT_SUFFIXES`: ``.graphml``,
        ``.gexf``, ``.edgelist`` or ``.edges``) unless ``format`` is given.
    format
        ``"graphml"`` or ``"gexf"``: networkx's writers of :meth:`LayeredGraph.to_networkx`
        with global node ids (inputs first); every node carries ``layer`` (its unit layer,
        0 = the inputs; ``set`` for a network that is not a chain), ``layer_name``
        (``"input"``, else the name of the weight layer that feeds it), ``unit`` (its index
        within its unit layer) and, where that weight layer has a bias, ``bias``; every edge
        carries ``weight``, ``layer`` (the index of its weight layer) and ``layer_name``; the
        graph carries ``source``, ``widths`` (``"64-100-10"``) and ``layer_names`` (a JSON
        list). ``"edgelist"``: one connection per line, ``source target weight`` separated by
        a space, global node ids, and ``#`` comment lines at the top naming the layers and
        their node ranges (a plain edge list has no place for biases: use GraphML or GEXF for
        them). Layers with several positions per unit (conv) are written as their unit graph,
        one edge per unit pair weighted by the L2 norm of its kept kernel elements. ``None``
        (the default): from the suffix of ``path``.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ConfigError
        An unknown ``format``, or none given and a suffix that names no format.
    OutputError
        ``path`` cannot be written.
    """
    graph = require_graph(graph)
    path = Path(path)
    format = export_format(path, format)
    with atomic_path(path) as tmp:
        if format == "edgelist":
            _write_edgelist(graph, tmp)
        else:
            import networkx as nx

            writer = nx.write_graphml if format == "graphml" else nx.write_gexf
            writer(_attributed_networkx(graph), tmp)
    return path


def export_format(path: str | Path, format: str | None = None) -> str:
    """The export format for ``path``: ``format`` when given, else the one its suffix names.

    Raises
    ------
    ConfigError
        ``format`` is not one of :data:`EXPORT_FORMATS`, or it is None and the suffix of
        ``path`` is not one of :data:`EXPORT_SUFFIXES`.
    """
    if format is not None:
        if format not in EXPORT_FORMATS:
            raise ConfigError(
                f"unknown export format {format!r}; choose one of {', '.join(EXPORT_FORMATS)}")
        return format
    suffix = Path(path).suffix.lower()
    if suffix not in EXPORT_SUFFIXES:
        raise ConfigError(
            f"{path}: cannot tell the export format from the suffix {suffix or '(none)'!r}; "
            f"name the file {', '.join(EXPORT_SUFFIXES)} or choose one with "
            f"--format (format= in Python: {', '.join(EXPORT_FORMATS)})")
    return EXPORT_SUFFIXES[suffix]


def save_figure(fig: Any, path: str | Path) -> Path:
    """Save a matplotlib figure atomically in the format its suffix names, then close it.

    Raises
    ------
    OutputError
        The suffix is not one of :data:`FIGURE_SUFFIXES`, or ``path`` cannot be written.
    """
    path = check_figure_path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lower().lstrip("."), bbox_inches="tight", dpi=150)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def check_output_path(path: str | Path) -> Path:
    """Fail early, before any work, when ``path`` cannot be written as a file.

    The path must not be a folder, and its nearest existing ancestor must be a folder this
    process may write in (missing folders below it are created when writing).

    Raises
    ------
    OutputError
        Naming the path and why.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path}: cannot write a file here, it is a folder")
    ancestor = path.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OutputError(f"{path}: cannot write, {ancestor} is a file, not a folder")
    # Try it: permission bits do not bind root, and a read-only or virtual file system
    # (/proc) only shows itself when something is created there.
    try:
        fd, probe = tempfile.mkstemp(prefix=".topo-write-check.", dir=ancestor)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write in {ancestor} ({exc.strerror or exc})") from None
    return path


def check_figure_path(path: str | Path) -> Path:
    """:func:`check_output_path` for a figure, whose suffix must be one of
    :data:`FIGURE_SUFFIXES`."""
    path = Path(path)
    if path.suffix.lower() not in FIGURE_SUFFIXES:
        raise OutputError(
            f"{path}: figure files must end in {', '.join(FIGURE_SUFFIXES)}")
    return check_output_path(path)


def check_outputs(*, files: Iterable[Any] = (), figures: Iterable[Any] = ()) -> None:
    """Check every given output path (``None`` entries are skipped) before any work."""
    for path in files:
        if path:
            check_output_path(path)
    for path in figures:
        if path:
            check_figure_path(path)


def _attributed_networkx(graph: LayeredGraph) -> Any:
    """:meth:`LayeredGraph.to_networkx` with layer names and biases as attributes.

    In a network that is not a chain a node belongs to a unit set (node attribute ``set``):
    its ``layer_name`` names every layer that writes the set (``" + "`` between them) and
    its ``bias`` is the sum of their biases (a residual addition adds each writer's bias).
    """
    g = graph.to_networkx()
    offsets = graph.offsets()
    if graph.is_chain:
        key, set_names = "layer", ["input", *graph.names]
    else:
        key = "set"
        set_names = ["input" if not graph.writers(s) else
                     " + ".join(graph.names[k] for k in graph.writers(s))
                     for s in range(len(graph.set_sizes))]
    for _, data in g.nodes(data=True):
        data["layer_name"] = set_names[data[key]]
    biases: dict[int, np.ndarray] = {}
    for k, bias in enumerate(graph.biases):
        if bias is not None:
            unit_set = k + 1 if graph.is_chain else graph.writes[k]
            value = np.asarray(bias, dtype=np.float64)
            biases[unit_set] = biases[unit_set] + value if unit_set in biases else value
    for unit_set, bias in biases.items():
        for unit, value in enumerate(bias.tolist()):
            g.nodes[int(offsets[unit_set]) + unit]["bias"] = value
    for _, _, data in g.edges(data=True):
        data["layer_name"] = graph.names[data["layer"]]
    g.graph.update(source=str(graph.source), widths="-".join(map(str, graph.widths)),
                   layer_names=json.dumps(list(graph.names)))
    return g


def _write_edgelist(graph: LayeredGraph, path: Path) -> None:
    src, dst, wts = graph.edges()
    offsets = graph.offsets()
    header = [
        "topo edge list: source target weight (global node ids, input side first)",
        f"source: {graph.source}",
        f"widths: {'-'.join(map(str, graph.widths))}",
    ]
    if graph.is_chain:
        header += [
            f"layer {k} {name}: inputs {offsets[k]}..{offsets[k] + graph.n_in[k] - 1} -> "
            f"outputs {offsets[k + 1]}..{offsets[k + 1] + graph.n_out[k] - 1}"
            for k, name in enumerate(graph.names)
        ]
    else:
        header[2] = f"unit sets: {'-'.join(map(str, graph.widths))}"
        header += [
            f"layer {k} {name}: reads set {r} ({offsets[r]}..{offsets[r] + graph.n_in[k] - 1})"
            f" -> writes set {w} ({offsets[w]}..{offsets[w] + graph.n_out[k] - 1})"
            for k, (name, r, w) in enumerate(zip(graph.names, graph.reads, graph.writes))
        ]
    if any(p > 1 for p in graph.positions):
        header.append("weights: the l2 norm of each unit pair's kept kernel elements "
                      "(pairs with one element: its weight)")
    table = np.empty(len(src), dtype=[("s", np.int64), ("t", np.int64), ("w", np.float64)])
    table["s"], table["t"], table["w"] = src, dst, wts
    np.savetxt(path, table, fmt=["%d", "%d", "%.9g"], header="\n".join(header),
               comments="# ")
