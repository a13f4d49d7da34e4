"""The `topo` command itself: help, and how it ends on an interrupt or a closed pipe."""

from __future__ import annotations

from importlib import metadata

import pytest

from topo.cli import build_parser, main


def test_no_command_prints_the_help_and_succeeds(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: topo")
    commands = ["info", "export", "compare", "distances", "persistence", "interactions",
                "evolution", "demo"]
    listed = [line.split()[0] for line in out.split("COMMAND")[-1].splitlines()
              if line.startswith("    ") and line.split()]
    assert [c for c in listed if c in commands] == commands  # in their ORDER


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        build_parser().parse_args(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out == f"topo {metadata.version('topo')}\n"


def test_an_interrupt_ends_with_status_130_and_one_line(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr("topo.cli.persistence.run_persistence", interrupted)
    assert main(["persistence", "x.safetensors"]) == 130
    assert capsys.readouterr().err == "topo persistence: interrupted\n"


def test_a_closed_pipe_ends_quietly(monkeypatch, capsys):
    def pipe_closed(args):
        raise BrokenPipeError

    monkeypatch.setattr("topo.cli.persistence.run_persistence", pipe_closed)
    assert main(["persistence", "x.safetensors"]) == 0
    assert capsys.readouterr().err == ""
