"""topo: the topology of sparse neural networks.

Read checkpoints into layered bipartite graphs (:func:`load`), compare sparse topologies
(:func:`nnstd`), follow how a run rewired its connections, and read feature interactions from
the persistent homology of the weight graph.

Heavy modules are imported on first use, so ``import topo`` and the ``topo`` command start
fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from topo.errors import (
    ConfigError,
    GraphStructureError,
    IncompatibleGraphsError,
    NonFiniteWeightsError,
    TopoError,
    UnreadableFileError,
    UnsafeFileError,
)

__version__ = "0.1.0"

# public name -> module that defines it (imported lazily by __getattr__)
_LAZY = {
    "LayeredGraph": "topo.graph",
    "load": "topo.io",
    "save_snapshot": "topo.io",
    "snapshot_paths": "topo.io",
    "detect_format": "topo.io",
    "nnstd": "topo.distance",
    "NNSTDResult": "topo.distance",
    "distance_matrix": "topo.distance",
    "nnstd_chance": "topo.distance_chance",
    "mask_overlap": "topo.overlap",
    "ever_active_rate": "topo.overlap",
    "neural_persistence": "topo.persistence",
    "persistence_diagrams": "topo.persistence",
    "interaction_strengths": "topo.interactions",
    "topology_evolution": "topo.evolution",
    "input_connectivity": "topo.evolution",
}

__all__ = [
    "ConfigError",
    "GraphStructureError",
    "IncompatibleGraphsError",
    "NonFiniteWeightsError",
    "TopoError",
    "UnreadableFileError",
    "UnsafeFileError",
    "__version__",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'topo' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
