"""Fixtures of the reader tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture
def cli_json(capsys: pytest.CaptureFixture[str]) -> Callable[..., Any]:
    """Runs ``topo ARGS --json`` in-process and returns the parsed output, after checking
    that it exited with 0 and wrote nothing to stderr."""
    from topo.cli import main

    def run(*args: str) -> Any:
        assert main([*args, "--json"]) == 0
        captured = capsys.readouterr()
        assert captured.err == ""
        return json.loads(captured.out)

    return run
