"""Two networks side by side: NNSTD and connection overlap per layer and pooled.

:func:`compare` is what ``topo compare`` prints: for every layer the NNSTD topology distance
(:func:`topo.nnstd`) and its chance level (:func:`topo.nnstd_chance`: the NNSTD two random
networks of the same widths and connection counts have, with its standard error), the Jaccard
index of the two connection sets raw and after matching hidden units by the NNSTD matchings,
the Jaccard index two random masks with the same counts would have
(:func:`topo.mask_overlap`), and both densities, then a pooled ``all`` row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from topo.distance import NNSTDResult, nnstd
from topo.distance_chance import NNSTDChance, nnstd_chance
from topo.graph import LayeredGraph, require_graph
from topo.overlap import overlap_records

if TYPE_CHECKING:  # pragma: no cover
    import pandas

__all__ = ["COMPARISON_COLUMNS", "Comparison", "compare"]

#: Columns of :meth:`Comparison.to_frame`, in order: the table of ``topo compare``, its
#: ``--csv`` file, the ``"layers"`` rows of its ``--json`` output and the bars of
#: :func:`topo.plot.plot_comparison`. ``jaccard_aligned`` and ``jaccard_chance`` are the
#: ``aligned_jaccard`` and ``expected_jaccard_random`` columns of :func:`topo.mask_overlap`.
COMPARISON_COLUMNS = ("layer", "name", "nnstd", "nnstd_chance", "nnstd_chance_se", "jaccard",
                      "jaccard_aligned", "jaccard_chance", "density_a", "density_b")

#: Random network pairs drawn for the NNSTD chance level by default (``topo compare``).
CHANCE_SAMPLES = 10


@dataclass(frozen=True)
class Comparison:
    """NNSTD and mask overlap of two networks.

    Attributes
    ----------
    nnstd
        The NNSTD result (per-layer distances, their mean, the matchings).
    overlap
        The rows of :func:`topo.mask_overlap` with the NNSTD matchings: one dict per layer
        (``layer`` a string index) and a last pooled row (``layer = "all"``).
    chance
        The NNSTD chance level (:func:`topo.nnstd_chance`), or ``None`` when not asked for
        (its columns are then NaN).
    """

    nnstd: NNSTDResult
    overlap: list[dict[str, Any]]
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

        ``nnstd`` of the pooled ``all`` row is the network distance (the mean over layers) and
        ``nnstd_chance`` its chance level; its Jaccard columns pool the connections of every
        layer.
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

    def to_dict(self) -> dict[str, Any]:
        """The ``topo compare --json`` document (without the two paths).

        ``{"mode", "nnstd": {"per_layer", "distance", "sparse_distance", "dense", "chance"},
        "overlap": {"per_layer", "all"}, "layers"}``: per-layer entries carry ``layer`` as an
        integer; the pooled rows are ``overlap["all"]`` and the network distance
        ``nnstd["distance"]``; ``nnstd["chance"]`` (absent when not computed) holds the chance
        level per layer with standard errors and the network values under
        :meth:`topo.NNSTDChance.summary`'s names. NaN is written as ``null``.
        """
        nnstd_doc: dict[str, Any] = {
            "per_layer": [float(v) for v in self.nnstd.per_layer],
            "distance": float(self.nnstd.distance),
            "sparse_distance": _number(self.nnstd.sparse_distance),
            "dense": [bool(x) for x in self.nnstd.dense]}
        if self.chance is not None:
            nnstd_doc["chance"] = {
                "per_layer": [float(v) for v in self.chance.per_layer],
                "per_layer_se": [float(v) for v in self.chance.per_layer_se],
                **{k: _number(v) for k, v in self.chance.summary().items()},
                "n_samples": self.chance.n_samples, "seed": self.chance.seed}
        return {
            "mode": "reference" if self.reference else "default",
            "nnstd": nnstd_doc,
            "overlap": {"per_layer": _per_layer(self.overlap), "all": dict(self.overlap[-1])},
            "layers": _per_layer(self.rows()),
        }


def compare(a: LayeredGraph, b: LayeredGraph, *, reference: bool = False,
            chance_samples: int = CHANCE_SAMPLES, seed: int = 0) -> Comparison:
    """NNSTD and connection overlap of two networks, per layer and pooled.

    Parameters
    ----------
    a, b
        The two networks (read files with :func:`topo.load`), as for :func:`topo.nnstd`.
    reference
        Passed to :func:`topo.nnstd`: ``True`` follows the published algorithm exactly.
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

    Notes
    -----
    The aligned Jaccard index uses the NNSTD matchings, which make the incoming-neighbour
    sets of matched units agree; it can fall below the raw index (see
    :func:`topo.mask_overlap`). The pooled row averages NNSTD over layers but pools the
    Jaccard index over all connections.

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
    a, b = require_graph(a, "network a"), require_graph(b, "network b")
    result = nnstd(a, b, reference=reference)
    chance = (nnstd_chance(a, b, n_samples=max(2, chance_samples), seed=seed,
                           reference=reference) if chance_samples > 0 else None)
    return Comparison(nnstd=result, overlap=overlap_records(a, b, result.matchings),
                      chance=chance)


def _per_layer(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The per-layer rows (pooled row dropped) with ``layer`` as an integer, NaN as None."""
    return [{**{k: _number(v) if isinstance(v, float) else v for k, v in row.items()},
             "layer": int(row["layer"])} for row in rows if row["layer"] != "all"]


def _number(value: float) -> float | None:
    """``value``, or ``None`` for NaN (JSON has no NaN)."""
    return None if value != value else float(value)
