"""TrainConfig: validation, architecture parsing and the JSON round trip of run.json."""

from __future__ import annotations

import json

import pytest

from topo.errors import ConfigError
from topo.train.config import TrainConfig, parse_arch


def test_arch_string_is_parsed_into_widths():
    assert parse_arch("64-100-100-10") == [64, 100, 100, 10]
    assert parse_arch("784,1000,10") == [784, 1000, 10]
    assert parse_arch(" 64, 100 - 10 ") == parse_arch("64 100 10") == [64, 100, 10]
    assert parse_arch([10, 140, 100, 60, 20, 1]) == [10, 140, 100, 60, 20, 1]


@pytest.mark.parametrize("bad", ["64", "64-x-10", "64--0-10", "", "a-b", [64, 0, 10],
                                 "64--10", "64-10-", "-64-10", "64,,10", "64 - - 10"])
def test_malformed_arch_is_a_config_error(bad):
    with pytest.raises(ConfigError, match="architecture"):
        parse_arch(bad)


@pytest.mark.parametrize("field, value, message", [
    ("method", "lottery", "unknown method"),
    ("dataset", "imagenet", "unknown dataset"),
    ("density", 0.0, "density"),
    ("density", 1.5, "density"),
    ("optimizer", "rmsprop", "unknown optimizer"),
    ("epochs", 0, "epochs"),
    ("zeta", 1.0, "zeta"),
])
def test_invalid_fields_are_config_errors_naming_the_field(field, value, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**{field: value})


def test_density_of_one_is_allowed():
    assert TrainConfig(method="snip", density=1.0).target_density() == 1.0


def test_config_round_trips_through_json():
    config = TrainConfig(method="imp", dataset="synthetic-F3", arch=[10, 140, 100, 60, 20, 1],
                         optimizer="adam", l1=1e-4, density=0.2,
                         early_stopping_patience=5, n_samples=3000, sparse_output=False,
                         extra={"standardize": True})
    text = json.dumps(config.to_dict())
    assert TrainConfig.from_dict(json.loads(text)) == config


def test_unknown_keys_in_a_stored_config_are_rejected():
    data = TrainConfig().to_dict()
    data["warp_speed"] = 9
    with pytest.raises(ConfigError, match="warp_speed"):
        TrainConfig.from_dict(data)


def test_imp_levels_follow_from_the_target_density():
    # 0.8^7 = 0.2097 > 0.2 and 0.8^8 = 0.1678 <= 0.2: eight levels reach 20 %
    assert TrainConfig(method="imp", density=0.2).n_imp_levels() == 8
    # 0.8^1 = 0.8 exactly reaches a density of 0.8
    assert TrainConfig(method="imp", density=0.8).n_imp_levels() == 1
    assert TrainConfig(method="imp", imp_levels=3).n_imp_levels() == 3


@pytest.mark.parametrize("changes, message", [
    ({"activation": "swish"}, "unknown activation"),
    ({"init_sparsity": "uniform"}, "unknown init_sparsity"),
    ({"weight_init": "orthogonal"}, "unknown weight_init"),
    ({"backend": "gpu"}, "unknown backend"),
    ({"lr": 0.0}, "lr must be positive"),
    ({"momentum": -0.1}, "momentum must not be negative"),
    ({"rigl_end_fraction": 0.0}, "rigl_end_fraction must lie in"),
    ({"imp_levels": 0}, "imp_levels must be at least 1"),
    ({"imp_rewind_step": -1}, "must not be negative"),
    ({"early_stopping_patience": 0}, "early_stopping_patience"),
    ({"threads": 0}, "threads must be at least 1"),
    ({"n_samples": 2}, "n_samples must be at least 3"),
    ({"method": "imp", "density": 1.0}, "imp needs a density below 1"),
    ({"batch_size": True}, "batch_size must be a positive integer"),
])
def test_every_range_check_names_its_field(changes, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**changes)


def test_non_integer_widths_are_refused():
    with pytest.raises(ConfigError, match="integers"):
        parse_arch([64, 10.5, 10])
    with pytest.raises(ConfigError, match="list of widths"):
        parse_arch(None)


def test_default_target_densities():
    # 0.1 unless given; IMP's default is five levels of 20 %: 0.8^5 = 0.32768
    assert TrainConfig(method="snip").target_density() == 0.1
    assert TrainConfig(method="imp").n_imp_levels() == 5
    assert TrainConfig(method="imp").target_density() == pytest.approx(0.32768)


def test_replace_validates_again():
    config = TrainConfig(method="set")
    assert config.replace(epochs=3).epochs == 3
    with pytest.raises(ConfigError, match="epochs"):
        config.replace(epochs=0)


def test_prune_output_is_imps_option_only():
    assert TrainConfig(method="imp", prune_output=True).prune_output
    with pytest.raises(ConfigError, match="prune_output is IMP's option; set makes"):
        TrainConfig(method="set", prune_output=True)
