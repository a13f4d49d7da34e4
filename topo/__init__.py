"""topo: the topology of sparse neural networks.

Read checkpoints into layered bipartite graphs (:func:`load`) and runs into sequences of them
(:func:`read_sequence`), compare sparse topologies (:func:`nnstd`, :func:`compare`), follow
how a run rewired its connections (:func:`topology_evolution`), and read feature
interactions from the persistent homology of the weight graph. Analyses take graphs and never
open files; :mod:`topo.io` reads and writes.

Heavy modules are imported on first use of a name, so ``import topo`` and the ``topo``
command start fast.
"""

from __future__ import annotations

import importlib.metadata as _metadata
from types import ModuleType
from typing import Any

from topo.errors import (
    ConfigError,
    EmptyInputError,
    GraphStructureError,
    IncompatibleGraphsError,
    InvalidTableError,
    NonFiniteWeightsError,
    NotAGraphError,
    OutputError,
    TopoError,
    UnreadableFileError,
    UnsafeFileError,
)

try:
    # one number, in pyproject.toml; CHANGELOG.md's latest release names the same (tested)
    __version__ = _metadata.version("topo")
except _metadata.PackageNotFoundError:  # pragma: no cover - a source tree never installed
    __version__ = "0+unknown"

# public name -> module that defines it, imported by __getattr__ on first use
_LAZY = {
    "LayeredGraph": "graph",
    "LayerGeometry": "graph",
    "load": "io",
    "save_snapshot": "io",
    "snapshot_paths": "io",
    "detect_format": "io",
    "read_sequence": "io",
    "export_graph": "io",
    "nnstd": "distance",
    "nnstd_chance": "distance_chance",
    "NNSTDChance": "distance_chance",
    "NNSTDResult": "distance",
    "compare": "comparison",
    "Comparison": "comparison",
    "mask_overlap": "overlap",
    "distance_matrix": "pairwise",
    "neural_persistence": "persistence",
    "persistence_diagrams": "persistence",
    "interaction_strengths": "interactions",
    "topology_evolution": "evolution",
    "input_connectivity": "evolution",
    "ever_active_rate": "evolution",
    "Recorder": "record",
    "dead_neuron_rate": "activity",
    "DeadNeuronRate": "activity",
}

__all__ = [
    "ConfigError",
    "EmptyInputError",
    "GraphStructureError",
    "IncompatibleGraphsError",
    "InvalidTableError",
    "NonFiniteWeightsError",
    "NotAGraphError",
    "OutputError",
    "TopoError",
    "UnreadableFileError",
    "UnsafeFileError",
    "__version__",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module = _module(_LAZY[name]) if name in _LAZY else None
    if module is None:
        raise AttributeError(f"module 'topo' has no attribute {name!r}")
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def _module(name: str) -> ModuleType:
    """The submodule ``topo.<name>``, imported now (plain imports: no import machinery)."""
    if name == "graph":
        from topo import graph

        return graph
    elif name == "io":
        from topo import io

        return io
    elif name == "distance":
        from topo import distance

        return distance
    elif name == "distance_chance":
        from topo import distance_chance

        return distance_chance
    elif name == "comparison":
        from topo import comparison

        return comparison
    elif name == "overlap":
        from topo import overlap

        return overlap
    elif name == "pairwise":
        from topo import pairwise

        return pairwise
    elif name == "persistence":
        from topo import persistence

        return persistence
    elif name == "interactions":
        from topo import interactions

        return interactions
    elif name == "evolution":
        from topo import evolution

        return evolution
    elif name == "record":
        from topo import record

        return record
    elif name == "activity":
        from topo import activity

        return activity
    else:  # pragma: no cover - _LAZY names only the modules above
        raise AssertionError(f"no lazy module {name!r}")
