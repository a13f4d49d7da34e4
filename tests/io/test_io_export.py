"""topo.io.export: graphs for other tools, figures, and output checks before any work."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import networkx as nx
import numpy as np
import pytest

from topo.errors import ConfigError, NotAGraphError, OutputError
from topo.graph import LayeredGraph
from topo.io.export import (
    check_figure_path,
    check_output_path,
    check_outputs,
    export_graph,
    save_figure,
)


def small_graph() -> LayeredGraph:
    # 3 inputs -> 2 hidden -> 1 output; h1 <- x2 kept at exactly 0 by the mask.
    # Global ids: inputs 0-2, hidden 3-4, output 5.
    w0 = np.array([[0.5, 0.0, -1.0], [0.0, 0.0, 0.0]])
    m0 = np.array([[1, 0, 1], [0, 0, 1]])
    w1 = np.array([[2.0, 0.0]])
    return LayeredGraph([w0, w1], masks=[m0, w1 != 0], names=["fc1", "fc2"])


def test_graphml_roundtrip(tmp_path):
    out = export_graph(small_graph(), tmp_path / "g.graphml", "graphml")
    back = nx.read_graphml(out)
    assert back.number_of_nodes() == 6 and back.number_of_edges() == 4
    assert back["0"]["3"]["weight"] == 0.5
    assert back["2"]["4"]["weight"] == 0.0  # a connection of weight 0 is kept
    assert back.nodes["4"]["layer"] == 1 and back.nodes["4"]["unit"] == 1


def test_gexf_roundtrip(tmp_path):
    back = nx.read_gexf(export_graph(small_graph(), tmp_path / "g.gexf", "gexf"))
    assert back.number_of_nodes() == 6 and back.number_of_edges() == 4
    assert float(back["3"]["5"]["weight"]) == 2.0


def test_edgelist_lines_and_layer_comments(tmp_path):
    path = export_graph(small_graph(), tmp_path / "g.txt", "edgelist")
    lines = path.read_text().splitlines()
    comments = [ln for ln in lines if ln.startswith("#")]
    body = [ln.split() for ln in lines if not ln.startswith("#")]
    assert "# widths: 3-2-1" in comments
    assert "# layer 0 fc1: inputs 0..2 -> outputs 3..4" in comments
    assert "# layer 1 fc2: inputs 3..4 -> outputs 5..5" in comments
    triples = sorted((int(a), int(b), float(c)) for a, b, c in body)
    assert triples == [(0, 3, 0.5), (2, 3, -1.0), (2, 4, 0.0), (3, 5, 2.0)]


def biased_graph() -> LayeredGraph:
    w0 = np.array([[0.5, 0.0, -1.0], [0.0, 0.0, 0.0]])
    m0 = np.array([[1, 0, 1], [0, 0, 1]])
    w1 = np.array([[2.0, 0.0]])
    return LayeredGraph([w0, w1], masks=[m0, w1 != 0], names=["fc1", "fc2"],
                        biases=[np.array([0.25, -0.75]), None])


@pytest.mark.parametrize("name, check", [
    ("g.gexf", lambda p: nx.read_gexf(p).number_of_edges() == 4),
    ("g.GRAPHML", lambda p: nx.read_graphml(p).number_of_edges() == 4),
    ("g.edgelist", lambda p: len([ln for ln in p.read_text().splitlines()
                                  if not ln.startswith("#")]) == 4),
    ("g.edges", lambda p: p.read_text().startswith("# topo edge list")),
])
def test_the_file_suffix_names_the_format(tmp_path, name, check):
    assert check(export_graph(small_graph(), tmp_path / name))


def test_an_unknown_suffix_is_refused_and_a_given_format_overrides_it(tmp_path):
    with pytest.raises(ConfigError, match=r"g.xml: cannot tell the export format from the "
                                          r"suffix '.xml'.*--format"):
        export_graph(small_graph(), tmp_path / "g.xml")
    with pytest.raises(ConfigError, match=r"suffix '\(none\)'"):
        export_graph(small_graph(), tmp_path / "g")
    assert not any(tmp_path.iterdir())
    out = export_graph(small_graph(), tmp_path / "g.xml", "gexf")
    assert nx.read_gexf(out).number_of_nodes() == 6


@pytest.mark.parametrize("suffix, read", [(".graphml", nx.read_graphml),
                                          (".gexf", nx.read_gexf)])
def test_nodes_carry_their_layer_name_and_bias_and_edges_their_layer(tmp_path, suffix, read):
    back = read(export_graph(biased_graph(), tmp_path / f"g{suffix}"))
    # inputs 0-2, hidden 3-4 (fed by fc1, biases 0.25 and -0.75), output 5 (fc2, no bias)
    names = {n: back.nodes[n]["layer_name"] for n in back.nodes}
    assert names == {"0": "input", "1": "input", "2": "input", "3": "fc1", "4": "fc1",
                     "5": "fc2"}
    assert [int(back.nodes[n]["layer"]) for n in "012345"] == [0, 0, 0, 1, 1, 2]
    assert float(back.nodes["3"]["bias"]) == 0.25 and float(back.nodes["4"]["bias"]) == -0.75
    assert "bias" not in back.nodes["0"] and "bias" not in back.nodes["5"]
    assert back["3"]["5"]["layer_name"] == "fc2" and back["0"]["3"]["layer_name"] == "fc1"


def test_graphml_carries_the_widths_and_layer_names_of_the_network(tmp_path):
    back = nx.read_graphml(export_graph(biased_graph(), tmp_path / "g.graphml"))
    assert back.graph["widths"] == "3-2-1"
    assert back.graph["layer_names"] == '["fc1", "fc2"]'


def test_export_refuses_an_unknown_format_and_a_path(tmp_path):
    with pytest.raises(ConfigError, match="unknown export format 'dot'"):
        export_graph(small_graph(), tmp_path / "g.x", "dot")
    with pytest.raises(NotAGraphError, match="topo.load"):
        export_graph(str(tmp_path / "g.safetensors"), tmp_path / "g.graphml")
    assert not any(tmp_path.iterdir())


def test_save_figure_writes_the_suffix_format_and_closes_it(tmp_path):
    for suffix, magic in ((".png", b"\x89PNG"), (".pdf", b"%PDF"), (".svg", b"<?xml")):
        fig = plt.figure(figsize=(1, 1))  # nothing drawn: the format is what is checked
        path = save_figure(fig, tmp_path / f"f{suffix}")
        assert path.read_bytes()[: len(magic)] == magic
        assert not plt.fignum_exists(fig.number)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.pdf", "f.png", "f.svg"]


def test_figure_path_needs_a_known_suffix(tmp_path):
    with pytest.raises(OutputError, match=r"evo.txt: figure files must end in \.png"):
        check_figure_path(tmp_path / "evo.txt")
    assert check_figure_path(tmp_path / "a" / "b.SVG") == tmp_path / "a" / "b.SVG"


def test_output_check_refuses_a_folder_and_a_file_parent(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    with pytest.raises(OutputError, match="it is a folder"):
        check_output_path(tmp_path)
    with pytest.raises(OutputError, match="blocker is a file, not a folder"):
        check_output_path(blocker / "deeper" / "x.csv")
    target = tmp_path / "new" / "x.csv"
    assert check_output_path(target) == target and not (tmp_path / "new").exists()


def test_output_check_reports_a_folder_it_cannot_write_in(tmp_path, monkeypatch):
    import topo.io.export as export

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(export.tempfile, "mkstemp", refuse)
    with pytest.raises(OutputError, match=r"cannot write in .* \(Permission denied\)"):
        check_output_path(tmp_path / "x.csv")


def test_check_outputs_skips_absent_paths_and_checks_the_rest(tmp_path):
    check_outputs(files=(None, tmp_path / "a.csv"), figures=(None, tmp_path / "a.png"))
    with pytest.raises(OutputError, match="x.gif"):
        check_outputs(files=(tmp_path / "a.csv",), figures=(Path(tmp_path / "x.gif"),))


def test_graphml_of_a_residual_network_names_sets_and_adds_biases(tmp_path):
    # a: 2 inputs -> set 1 (2 units); res: set 1 -> set 1 (the stream); out: set 1 -> 1 unit
    g = LayeredGraph([np.ones((2, 2)), np.eye(2), np.ones((1, 2))], names=["a", "res", "out"],
                     biases=[np.array([1.0, 2.0]), np.array([0.5, 0.25]), np.array([3.0])],
                     reads=[0, 1, 1], writes=[1, 1, 2])
    export_graph(g, tmp_path / "r.graphml")
    read = nx.read_graphml(tmp_path / "r.graphml")
    nodes = {int(n): d for n, d in read.nodes(data=True)}
    assert [nodes[i]["set"] for i in range(5)] == [0, 0, 1, 1, 2]
    assert [nodes[i]["layer_name"] for i in range(5)] == ["input", "input", "a + res",
                                                          "a + res", "out"]
    # the stream's units add both writers' biases: 1 + 0.5, 2 + 0.25
    assert [nodes[i].get("bias") for i in range(5)] == [None, None, 1.5, 2.25, 3.0]
    assert read.number_of_edges() == 4 + 2 + 2
