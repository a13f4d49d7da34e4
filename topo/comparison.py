"""Two networks side by side: NNSTD and connection overlap per layer and over all layers.

:func:`compare` is what ``topo compare`` prints: for every layer the NNSTD topology distance
(:func:`topo.nnstd`) and its chance level (:func:`topo.nnstd_chance`: the NNSTD two random
networks of the same widths and connection counts have, with its standard error), the Jaccard
index of the two connection sets raw and after matching hidden units (by the NNSTD matchings,
or by :func:`topo.overlap.overlap_matchings`, which maximise the shared connections), the
Jaccard index two random masks with the same counts would have (:func:`topo.mask_overlap`), and
both densities, then an ``all`` row over every layer, whose columns aggregate in different ways
(:data:`ALL_ROW`): NNSTD and its chance level are means over the layers, the Jaccard indices and
densities pool the connections of every layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from topo.distance import NNSTDResult, nnstd
from topo.distance_chance import NNSTDChance, nnstd_chance
from topo.errors import ConfigError
from topo.graph import LayeredGraph, require_graph
from topo.overlap import overlap_matchings, overlap_records

if TYPE_CHECKING:  # pragma: no cover
    import pandas

__all__ = ["COMPARISON_COLUMNS", "DETAIL_COLUMNS", "ALIGNMENTS", "ALL_ROW", "CHANCE_SAMPLES",
           "Comparison", "compare"]

#: Columns of :meth:`Comparison.to_frame`, in order: the table of ``topo compare``, its
#: ``--csv`` file, the first columns of the ``"layers"`` rows of its ``--json`` output and
#: the bars of :func:`topo.plot.plot_comparison`. ``jaccard_aligned`` and ``jaccard_chance``
#: are the ``aligned_jaccard`` and ``expected_jaccard_random`` columns of
#: :func:`topo.mask_overlap`.
COMPARISON_COLUMNS = ("layer", "name", "nnstd", "nnstd_chance", "nnstd_chance_se", "jaccard",
                      "jaccard_aligned", "jaccard_chance", "density_a", "density_b")

#: Random network pairs drawn for the NNSTD chance level by default (``topo compare``).
CHANCE_SAMPLES = 10

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
    "nnstd_chance": "mean of the layers' chance levels (the network's chance level)",
    "nnstd_chance_se": "standard error of the network's chance level",
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
    chance
        The NNSTD chance level (:func:`topo.nnstd_chance`), or ``None`` when not asked for
        (its columns are then NaN).
    """

    nnstd: NNSTDResult
    overlap: list[dict[str, Any]]
    alignment: str = "nnstd"
    chance: NNSTDChance | None = None

    @property
    def sparse_distance(self) -> float:
        """Mean NNSTD over the sparse layers (a dense layer always scores 0)."""
        return self.nnstd.sparse_distance

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

        ``nnstd`` of the ``all`` row is the network distance (the mean over layers) and
        ``nnstd_chance`` its chance level; its Jaccard and density columns pool the
        connections of every layer (:data:`ALL_ROW`).
        """
        values = [*self.nnstd.per_layer, self.nnstd.distance]
        nan = float("nan")
        if self.chance is not None:
            chance = [*self.chance.per_layer, self.chance.distance]
            chance_se = [*self.chance.per_layer_se, self.chance.distance_se]
        else:
            chance = chance_se = [nan] * len(values)
        return [dict(zip(COMPARISON_COLUMNS, (
            row["layer"], row["name"], float(value), float(c), float(se), row["jaccard"],
            row["aligned_jaccard"], row["expected_jaccard_random"], row["density_a"],
            row["density_b"])))
            for row, value, c, se in zip(self.overlap, values, chance, chance_se)]

    def summary_line(self) -> str:
        """The network summary ``topo compare`` prints under the table: the mean NNSTD over
        the sparse layers and its chance level."""
        sparse = self.nnstd.sparse_distance
        if np.isnan(sparse):
            return "Every layer is dense in both networks: NNSTD 0 by construction"
        text = f"Mean over sparse layers: {sparse:.4g}"
        if self.chance is not None:
            text += (f" vs chance level {self.chance.sparse_distance:.4g} "
                     f"± {self.chance.sparse_distance_se:.2g} "
                     f"({self.chance.n_samples} random network pairs)")
        return text

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

        ``{"mode", "alignment", "distance", "sparse_distance", "chance", "layers", "all",
        "all_row"}``: ``distance`` is the network's NNSTD and ``sparse_distance`` its mean
        over the layers that are not dense in both networks (``null`` when every layer is);
        ``chance`` (absent when not computed) the chance level's network values under
        :meth:`topo.NNSTDChance.summary`'s names with ``n_samples`` and ``seed``; ``layers``
        one object per layer (``layer`` an integer) with the columns of
        :data:`COMPARISON_COLUMNS`, then :data:`DETAIL_COLUMNS` and ``dense`` (fully
        connected in both networks); ``all`` the same for all layers together, whose columns
        aggregate as ``all_row`` says (:data:`ALL_ROW`: NNSTD and its chance level are means
        over the layers, the Jaccard indices and densities pool the connections). NaN is
        written as ``null``.
        """
        rows = self.detail_rows()
        dense = [bool(x) for x in self.nnstd.dense]
        for row, is_dense in zip(rows, [*dense, all(dense)]):
            row["dense"] = is_dense
        document: dict[str, Any] = {
            "mode": "reference" if self.reference else "default",
            "alignment": self.alignment,
            "distance": float(self.nnstd.distance),
            "sparse_distance": _number(self.nnstd.sparse_distance),
        }
        if self.chance is not None:
            document["chance"] = {
                **{k: _number(v) for k, v in self.chance.summary().items()},
                "n_samples": self.chance.n_samples, "seed": self.chance.seed}
        pooled = {k: _number(v) if isinstance(v, float) else v for k, v in rows[-1].items()}
        document.update(layers=_per_layer(rows), all=pooled, all_row=dict(ALL_ROW))
        return document


def compare(a: LayeredGraph, b: LayeredGraph, *, reference: bool = False,
            align: str = "nnstd", chance_samples: int = CHANCE_SAMPLES,
            seed: int = 0) -> Comparison:
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
    chance_samples
        Random network pairs for the NNSTD chance level (:func:`topo.nnstd_chance`, same
        mode); 0 skips it. Estimates are cached in the process per shape.
    seed
        Seed of the chance level's random networks.

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
    >>> table = compare(a, b, chance_samples=0).to_frame()  # b: a with hidden units swapped
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
    chance = (nnstd_chance(a, b, n_samples=max(2, chance_samples), seed=seed,
                           reference=reference) if chance_samples > 0 else None)
    return Comparison(nnstd=result, overlap=overlap_records(a, b, matchings), alignment=align,
                      chance=chance)


def _per_layer(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The per-layer rows (pooled row dropped) with ``layer`` as an integer, NaN as None."""
    return [{**{k: _number(v) if isinstance(v, float) else v for k, v in row.items()},
             "layer": int(row["layer"])} for row in rows if row["layer"] != "all"]


def _number(value: float) -> float | None:
    """``value``, or ``None`` for NaN (JSON has no NaN)."""
    return None if value != value else float(value)
