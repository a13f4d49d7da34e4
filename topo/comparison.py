"""Two networks side by side: NNSTD and connection overlap per layer and over all layers.

:func:`compare` is what ``topo compare`` prints: for every layer the NNSTD topology distance
(:func:`topo.nnstd`), the Jaccard index of the two connection sets raw and after matching hidden
units (by the NNSTD matchings, or by :func:`topo.overlap.overlap_matchings`, which maximise the
shared connections), the Jaccard index two random masks with the same counts would have
(:func:`topo.mask_overlap`), and both densities, then an ``all`` row over every layer, whose
columns aggregate in different ways (:data:`ALL_ROW`): NNSTD is the mean over the layers, the
Jaccard indices and densities pool the connections of every layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from topo.distance import NNSTDResult, nnstd
from topo.errors import ConfigError
from topo.graph import LayeredGraph, require_graph
from topo.overlap import overlap_matchings, overlap_records

if TYPE_CHECKING:  # pragma: no cover
    import pandas

__all__ = ["COMPARISON_COLUMNS", "DETAIL_COLUMNS", "ALIGNMENTS", "ALL_ROW", "Comparison",
           "compare"]

#: Columns of :meth:`Comparison.to_frame`, in order: the table of ``topo compare``, its
#: ``--csv`` file, the first columns of the ``"layers"`` rows of its ``--json`` output and
#: the bars of :func:`topo.plot.plot_comparison`. ``jaccard_aligned`` and ``jaccard_chance``
#: are the ``aligned_jaccard`` and ``expected_jaccard_random`` columns of
#: :func:`topo.mask_overlap`.
COMPARISON_COLUMNS = ("layer", "name", "nnstd", "jaccard", "jaccard_aligned",
                      "jaccard_chance", "density_a", "density_b")

#: The rest of :func:`topo.mask_overlap`'s columns in the same vocabulary (``--json`` rows
#: after :data:`COMPARISON_COLUMNS`): this name <- the overlap table's name.
DETAIL_COLUMNS = {
    "possible": "possible", "connections_a": "connections_a",
    "connections_b": "connections_b", "intersection": "intersection", "union": "union",
    "hamming": "hamming", "hamming_fraction": "hamming_fraction",
    "intersection_chance": "expected_intersection_random",
    "intersection_aligned": "aligned_intersection", "union_aligned": "aligned_union",
    "hamming_aligned": "aligned_hamming",
}

#: How hidden units are matched before the aligned overlap: ``"nnstd"`` (the NNSTD
#: matchings: matched units have similar incoming sets; the aligned overlap can fall below
#: the raw one) or ``"overlap"`` (:func:`topo.overlap.overlap_matchings`: the most shared
#: connections, layer by layer given the previous layer's matching).
ALIGNMENTS = ("nnstd", "overlap")

#: How the ``all`` row aggregates each column over the layers.
ALL_ROW = {
    "nnstd": "mean of the layers' NNSTD (the network distance)",
    "jaccard": "pooled: every layer's connections together",
    "jaccard_aligned": "pooled: every layer's connections together",
    "jaccard_chance": "pooled: expected pooled Jaccard index of random masks",
    "density_a": "pooled: all connections over all possible",
    "density_b": "pooled: all connections over all possible",
}


@dataclass(frozen=True)
class Comparison:
    """NNSTD and mask overlap of two networks.

    Attributes
    ----------
    nnstd
        The NNSTD result (per-layer distances, their mean, the matchings).
    overlap
        The rows of :func:`topo.mask_overlap` with the alignment's matchings: one dict per
        layer (``layer`` a string index) and a last pooled row (``layer = "all"``).
    alignment
        How hidden units were matched for the aligned overlap (:data:`ALIGNMENTS`).
    """

    nnstd: NNSTDResult
    overlap: list[dict[str, Any]]
    alignment: str = "nnstd"

    @property
    def distance(self) -> float:
        """The network's NNSTD (mean over layers)."""
        return self.nnstd.distance

    @property
    def reference(self) -> bool:
        """Whether the published algorithm was followed exactly."""
        return self.nnstd.reference

    def rows(self) -> list[dict[str, Any]]:
        """The rows of :meth:`to_frame` as plain dicts (no pandas needed).

        ``nnstd`` of the ``all`` row is the network distance (the mean over layers); its
        Jaccard and density columns pool the connections of every layer (:data:`ALL_ROW`).
        """
        values = [*self.nnstd.per_layer, self.nnstd.distance]
        return [dict(zip(COMPARISON_COLUMNS, (
            row["layer"], row["name"], float(value), row["jaccard"], row["aligned_jaccard"],
            row["expected_jaccard_random"], row["density_a"], row["density_b"])))
            for row, value in zip(self.overlap, values)]

    def to_frame(self) -> pandas.DataFrame:
        """One row per layer and a pooled ``all`` row, columns :data:`COMPARISON_COLUMNS`."""
        import pandas as pd

        return pd.DataFrame(self.rows(), columns=list(COMPARISON_COLUMNS))

    def overlap_frame(self) -> pandas.DataFrame:
        """The full overlap table (:func:`topo.mask_overlap`'s columns)."""
        import pandas as pd

        return pd.DataFrame(self.overlap)

    def detail_rows(self) -> list[dict[str, Any]]:
        """:meth:`rows` with the rest of the overlap table (:data:`DETAIL_COLUMNS`), in the
        same vocabulary: per layer, then the ``all`` row."""
        return [{**row, **{name: overlap.get(source) for name, source in
                           DETAIL_COLUMNS.items() if source in overlap}}
                for row, overlap in zip(self.rows(), self.overlap)]

    def to_dict(self) -> dict[str, Any]:
        """The ``topo compare --json`` document (without the two paths), in one vocabulary.

        ``{"mode", "alignment", "distance", "layers", "all", "all_row"}``: ``distance`` is
        the network's NNSTD; ``layers`` one object per layer (``layer`` an integer) with the
        columns of :data:`COMPARISON_COLUMNS` and then :data:`DETAIL_COLUMNS`; ``all`` the
        same for all layers together, whose columns aggregate as ``all_row`` says
        (:data:`ALL_ROW`: NNSTD is the mean over the layers, the Jaccard indices and
        densities pool the connections).
        """
        rows = self.detail_rows()
        return {
            "mode": "reference" if self.reference else "default",
            "alignment": self.alignment,
            "distance": float(self.nnstd.distance),
            "layers": _per_layer(rows),
            "all": rows[-1],
            "all_row": dict(ALL_ROW),
        }


def compare(a: LayeredGraph, b: LayeredGraph, *, reference: bool = False,
            align: str = "nnstd") -> Comparison:
    """NNSTD and connection overlap of two networks, per layer and over all layers.

    Parameters
    ----------
    a, b
        The two networks (read files with :func:`topo.load`), as for :func:`topo.nnstd`.
    reference
        Passed to :func:`topo.nnstd`: ``True`` follows the published algorithm exactly.
    align
        How hidden units are matched for ``jaccard_aligned`` (:data:`ALIGNMENTS`):
        ``"nnstd"`` uses the NNSTD matchings, ``"overlap"`` those of
        :func:`topo.overlap.overlap_matchings`, which maximise the shared connections layer
        by layer (the output layer is matched too in reference mode, as NNSTD matches it).

    Returns
    -------
    Comparison
        ``.to_frame()`` is the table ``topo compare`` prints (:data:`COMPARISON_COLUMNS`).

    Raises
    ------
    IncompatibleGraphsError
        The networks cannot be compared (see :func:`topo.nnstd`).
    NotAGraphError
        ``a`` or ``b`` is not a LayeredGraph.
    ConfigError
        An unknown ``align``.

    Notes
    -----
    With ``align="nnstd"`` the aligned Jaccard index uses the NNSTD matchings, which make the
    incoming-neighbour sets of matched units agree, not the overlap as large as possible: it
    can fall below the raw index (see :func:`topo.mask_overlap`). ``align="overlap"``
    maximises the shared connections of each layer given the previous layer's matching, so
    layer 0's aligned index is never below its raw one (later layers' can still be: see
    :func:`topo.overlap.overlap_matchings`). The ``all`` row averages NNSTD over layers but
    pools the Jaccard indices over all connections (:data:`ALL_ROW`).

    Examples
    --------
    >>> import numpy as np
    >>> from topo.graph import LayeredGraph
    >>> a = LayeredGraph([np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]), np.ones((1, 2))])
    >>> b = LayeredGraph([np.array([[0.0, 0.0, 1.0], [1.0, 1.0, 0.0]]), np.ones((1, 2))])
    >>> table = compare(a, b).to_frame()  # b is a with its hidden units swapped
    >>> print(table[["layer", "nnstd", "jaccard", "jaccard_aligned"]].to_string(index=False))
    layer  nnstd  jaccard  jaccard_aligned
        0    0.0     0.00              1.0
        1    0.0     1.00              1.0
      all    0.0     0.25              1.0

    Hidden units matched, the networks are identical (NNSTD 0, aligned Jaccard 1), though
    their first layers share no connection in place; pooled, 2 of 8 distinct connections are
    shared.
    """
    if align not in ALIGNMENTS:
        raise ConfigError(f"unknown alignment {align!r}; choose one of {', '.join(ALIGNMENTS)}")
    a, b = require_graph(a, "network a"), require_graph(b, "network b")
    result = nnstd(a, b, reference=reference)
    matchings = (result.matchings if align == "nnstd"
                 else overlap_matchings(a, b, match_outputs=reference))
    return Comparison(nnstd=result, overlap=overlap_records(a, b, matchings), alignment=align)


def _per_layer(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The per-layer rows (pooled row dropped) with ``layer`` as an integer."""
    return [{**row, "layer": int(row["layer"])} for row in rows if row["layer"] != "all"]
