"""The registries: one list of names, checked, listed in --help and resolved lazily."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from topo.cli import build_parser
from topo.errors import ConfigError
from topo.train import methods, optim
from topo.train.methods import Method
from topo.train.registry import (
    ACTIVATIONS,
    BACKENDS,
    INIT_SPARSITIES,
    METHODS,
    OPTIMIZERS,
    WEIGHT_INITS,
    Entry,
    Registry,
)


def test_the_registered_names_are_the_documented_ones():
    assert METHODS.names == ("dense", "static", "set", "rigl", "gmp", "imp", "snip", "ssgd",
                             "ap", "sipp", "nodes")
    assert OPTIMIZERS.names == ("sgd", "adam", "ssgd", "sketched-gn")
    assert ACTIVATIONS.names == ("relu", "tanh", "sigmoid", "leaky_relu", "elu", "gelu",
                                 "identity")
    assert WEIGHT_INITS.names == ("he_uniform", "he_normal", "xavier_uniform",
                                  "torch_default")
    assert INIT_SPARSITIES.names == ("er", "erk", "dense")
    assert BACKENDS.names == ("auto", "dense", "sparse")


def test_every_method_entry_is_a_method_class():
    for name in METHODS:
        cls = METHODS.load(name, methods)
        assert isinstance(cls, type) and issubclass(cls, Method), name


def test_every_activation_entry_builds_the_named_function():
    x = torch.tensor([-2.0, 0.5])
    expected = {"relu": [0.0, 0.5], "identity": [-2.0, 0.5],
                "leaky_relu": [-0.02, 0.5], "tanh": torch.tanh(x).tolist()}
    for name, values in expected.items():
        torch.testing.assert_close(ACTIVATIONS.load(name, torch.nn)()(x), torch.tensor(values))
    assert all(isinstance(ACTIVATIONS.load(n, torch.nn)(), torch.nn.Module) for n in ACTIVATIONS)


def test_unknown_name_lists_the_choices():
    with pytest.raises(ConfigError, match="unknown method 'lottery'; choose one of dense, "
                                          "static, set, rigl, gmp, imp, snip, "
                                          "ssgd, ap, sipp, nodes"):
        METHODS.check("lottery")
    with pytest.raises(ConfigError, match="unknown optimizer"):
        OPTIMIZERS.load("rmsprop", optim)


def test_plain_choices_have_no_implementation():
    with pytest.raises(ConfigError, match="plain choice"):
        BACKENDS.load("auto", optim)


def test_choices_and_description_are_prose_and_wrapped():
    reg = Registry("colour", [Entry("red", None, "warm"), Entry("blue", None, "cool " * 30)])
    assert reg.choices() == "red or blue"
    assert Registry("x", [Entry("one", None, "")]).choices() == "one"
    lines = reg.describe(width=40).splitlines()
    assert lines[0] == "  red   warm"
    assert lines[1].startswith("  blue  cool") and all(len(line) <= 40 for line in lines)
    assert lines[2].startswith("        cool")   # continuation under the summary column


def test_duplicate_names_are_refused():
    with pytest.raises(ValueError, match="duplicate"):
        Registry("x", [Entry("a", None, ""), Entry("a", None, "")])


def test_help_of_topo_train_lists_every_method_with_its_summary(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    out = capsys.readouterr().out
    flowing = " ".join(out.split())
    assert "dense, static, set, rigl, gmp, imp, snip, ssgd, ap, sipp or nodes" in flowing
    assert "sgd, adam, ssgd or sketched-gn" in flowing
    for name in ("dense", "static", "set", "rigl", "gmp", "imp", "snip", "ssgd", "ap", "sipp",
                 "nodes"):
        assert f"\n  {name} " in out


def test_checking_a_configuration_does_not_import_torch():
    code = ("import sys; from topo.train import TrainConfig; TrainConfig(method='rigl'); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"


def test_a_registry_is_a_mapping_of_entries():
    assert len(METHODS) == 11 and METHODS["rigl"].target == "RigL"
    assert "Evci" in METHODS["rigl"].summary and "rigl" in METHODS
