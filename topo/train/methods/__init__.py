r"""Sparse-training methods: each is drop and grow rules plus a schedule, or a pruner.

========= ================================================================= =======================
method    rule                                                              reference
========= ================================================================= =======================
dense     all connections, never changed                                    --
static    random ER/ERK mask, never changed                                 Mocanu et al. 2018
set       before every epoch but the first, per layer: drop the ζ           Mocanu et al. 2018
          fraction of the smallest positive and ζ of the largest
          negative weights, regrow as many uniformly at random among
          absent positions, new weights drawn like the initial ones
rigl      every ΔT steps until 75 % of training: drop α_t of the            Evci et al. 2020
          connections by \|w\|, grow as many where \|∂L/∂w\| of the
          current batch is largest among absent positions, new
          weights 0, α_t = α/2 (1 + cos(π t / T_end))
gmp       from dense, every ΔT steps from t0 to T_end prune each            Zhu & Gupta 2017
          layer by \|w\| to s_t = s_f (1 - (1 - (t-t0)/(T_end-t0))^3)
imp       train, prune p of the remaining weights by global \|w\|,          Frankle & Carbin 2019;
          rewind survivors to their values at step k, repeat                Frankle et al. 2020
snip      at initialisation keep the top density fraction of                Lee et al. 2019
          \|g ⊙ w\| (one batch, global), then train static
ssgd      train dense with steps scaled by w²/mean(w²), w = (θ²+ε)^½        Lee et al. 2020
          or \|θ\|+ε, then prune the smallest \|θ\| (global) to density
          or below a threshold
ap        IMP, but of each level's share p, a share q (2 %) goes to         Liu et al. 2023
          the negative weights that moved least in the level
sipp      train, keep the most sensitive connections per unit and           Baykal et al. 2022
          sign (deterministic), a sensitivity-proportional reweighted
          sample (randomized) or per unit the one with the smaller
          error bound (hybrid), retrain
nodes     the dense parent with only some hidden units (given, or           Farahani 2024
          drawn at a node sparsity), never changed
========= ================================================================= =======================

The names are those of :data:`topo.train.registry.METHODS`; the shared machinery
(:class:`MaskUpdater`, :class:`Pruner`, :func:`drop_and_grow`) is in
:mod:`~topo.train.methods.base`, schedules in :mod:`~topo.train.methods.schedules`,
selection rules in :mod:`~topo.train.methods.selection`.
"""

from topo.train.methods.ap import AP, ap_keep_masks
from topo.train.methods.base import (
    Changes,
    Context,
    LayerChange,
    MaskUpdater,
    Method,
    Pruner,
    drop_and_grow,
)
from topo.train.methods.gmp import GMP
from topo.train.methods.imp import IMP, train_levels
from topo.train.methods.nodes import NodeSubnetwork, node_structure, sample_units
from topo.train.methods.rigl import RigL
from topo.train.methods.schedules import (
    CosineSchedule,
    CubicSchedule,
    EpochSchedule,
    Schedule,
    gmp_density,
    rigl_drop_fraction,
)
from topo.train.methods.selection import grow_random, grow_top, keep_top
from topo.train.methods.set import SET, set_drop_mask
from topo.train.methods.sipp import SiPP, SiPPLayer, sipp_prune, sipp_sensitivities
from topo.train.methods.snip import SNIP, snip_scores
from topo.train.methods.ssgd import SSGDPruning
from topo.train.methods.static import Dense, Static

__all__ = [
    "Method", "MaskUpdater", "Pruner", "Context", "LayerChange", "Changes", "drop_and_grow",
    "Schedule", "EpochSchedule", "CosineSchedule", "CubicSchedule", "rigl_drop_fraction",
    "gmp_density", "keep_top", "grow_top", "grow_random",
    "Dense", "Static", "SET", "set_drop_mask", "RigL", "GMP", "SNIP", "snip_scores", "IMP",
    "train_levels",
    "SSGDPruning",
    "AP", "ap_keep_masks",
    "SiPP", "SiPPLayer", "sipp_prune", "sipp_sensitivities",
    "NodeSubnetwork", "sample_units", "node_structure",
]
