"""Initial densities and the density budget given arguments that cannot be met, and the
kernel-blind ER shape for convolutions, worked out by hand."""

from __future__ import annotations

import pytest

from topo.errors import ConfigError
from topo.train.sparsity import initial_densities, kernel_densities, prunable_density


def test_erk_without_a_target_density_is_refused():
    with pytest.raises(ConfigError, match=r"^erk needs a target density$"):
        initial_densities("erk", [4, 3, 2], [True, True], epsilon=20.0, density=None)
    with pytest.raises(ConfigError, match=r"^erk needs a target density$"):
        kernel_densities("erk", [(4, 2, 3, 3), (2, 4)], [True, True], epsilon=20.0,
                         density=None)


@pytest.mark.parametrize("density", [0.0, -0.1, 1.5])
def test_a_density_outside_the_unit_interval_is_refused(density):
    with pytest.raises(ConfigError, match=rf"^density must lie in \(0, 1\], got {density}$"):
        prunable_density(density, [4, 3, 2], [True, True])


def test_the_budget_needs_widths_or_sizes():
    with pytest.raises(ValueError, match="^give widths or sizes$"):
        prunable_density(0.5, None, [True])


def test_a_network_kept_dense_everywhere_has_density_one_only():
    assert prunable_density(1.0, [4, 3, 2], [False, False]) == 1.0
    with pytest.raises(ConfigError, match=r"^density 0.5 cannot be met: every layer is kept "
                                          r"dense$"):
        prunable_density(0.5, [4, 3, 2], [False, False])


def test_kernel_densities_dense_are_one_and_refuse_a_lower_density():
    assert kernel_densities("dense", [(4, 2, 3, 3), (2, 4)], [True, True], epsilon=20.0,
                            density=None) == [1.0, 1.0]
    with pytest.raises(ConfigError, match=r"^init_sparsity dense starts every layer dense: "
                                          r"density 0.5 cannot be met \(choose er or erk\)$"):
        kernel_densities("dense", [(4, 2, 3, 3)], [True], epsilon=20.0, density=0.5)


def test_kernel_blind_er_of_a_conv_uses_channels_as_units():
    # conv 2 -> 4 channels, 3 x 3: eps (4 + 2) / (4 * 2) = 2 * 0.75 -> capped at 1;
    # linear 36 -> 10: 2 * 46 / 360; the layer kept dense stays 1
    out = kernel_densities("er", [(4, 2, 3, 3), (10, 36), (3, 10)], [True, True, False],
                           epsilon=2.0, density=None)
    assert out == pytest.approx([1.0, 92 / 360, 1.0])
