"""Every command on the committed example run prints exactly what it printed before.

The expected texts in ``expected/`` were captured from the command line of topo 0.1.0, not
computed by the code under test; a change to any of them is a change of topo's output and must
be deliberate (the default mode's canonical tie rule changed the NNSTD values of later layers,
and those files were captured again with it; the evolution table's snapshot-based ITOP columns
were renamed ``ever_active_snapshots`` and ``itop_rate_snapshots``, values unchanged, beside
the exact rate a run records; issue 12 added lines that say what was computed, values
unchanged: the snapshot a run folder stands for, how compare's all row aggregates and what
aligned means, how many candidate sets ``--order any`` dropped as subsets, and the source,
widths, components, p and scale in the JSON of persistence and interactions, whose compare
JSON speaks the table's vocabulary; the persistence score's reach became the feed-forward
widest path, and ``interactions_json.txt`` was captured again with it).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from topo.cli import main

EXPECTED = Path(__file__).resolve().parent / "expected"
R = "data/example-run"
S = "data/example-run/snapshots"

COMMANDS = {
    "compare": ["compare", f"{S}/epoch_0000.safetensors", f"{S}/epoch_0015.safetensors"],
    "compare_json": ["compare", f"{S}/epoch_0000.safetensors", f"{S}/epoch_0015.safetensors",
                     "--json"],
    "compare_ref": ["compare", f"{S}/epoch_0000.safetensors", f"{S}/epoch_0015.safetensors",
                    "--reference"],
    "distances": ["distances", f"{S}/epoch_0000.safetensors", f"{S}/epoch_0005.safetensors",
                  f"{S}/epoch_0010.safetensors", f"{S}/epoch_0015.safetensors"],
    "distances_json": ["distances", f"{S}/epoch_0000.safetensors",
                       f"{S}/epoch_0005.safetensors", f"{S}/epoch_0015.safetensors", "--json"],
    "persistence": ["persistence", R],
    "persistence_json": ["persistence", R, "--json"],
    "interactions_json": ["interactions", R, "--json", "--top", "5"],
    "interactions_nid": ["interactions", R, "--method", "nid", "--top", "5"],
    "interactions_any": ["interactions", R, "--order", "any", "--top", "5"],
    "evolution": ["evolution", R],
}


@pytest.fixture
def in_repo(repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)  # the commands name the example run by relative paths


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_output_on_the_example_run_is_unchanged(name, in_repo, capsys):
    assert main(COMMANDS[name]) == 0
    captured = capsys.readouterr()
    assert captured.out == (EXPECTED / f"{name}.txt").read_text()
    assert captured.err == ""


@pytest.mark.parametrize("command, table", [
    (["compare", f"{S}/epoch_0000.safetensors", f"{S}/epoch_0015.safetensors", "--csv"],
     "compare.csv"),
    (["persistence", R, "--csv"], "persistence.csv"),
    (["evolution", R, "--csv"], "evolution.csv"),
])
def test_tables_written_from_the_example_run_are_unchanged(command, table, in_repo, tmp_path,
                                                           capsys):
    assert main([*command, str(tmp_path / table)]) == 0
    capsys.readouterr()
    assert (tmp_path / table).read_text() == (EXPECTED / table).read_text()
