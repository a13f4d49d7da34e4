"""The Examples sections of the API docstrings run and print what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["topo.structure", "topo.graph", "topo.comparison", "topo.distance", "topo.io.tables",
           "topo.io.sequence", "topo.interactions", "topo.activity"]


@pytest.mark.parametrize("name", MODULES)
def test_examples_hold(name, repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
