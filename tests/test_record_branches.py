"""Recorder on half-precision models, and its close() given twice or given a wrong status.
The expected weights are torch's own conversion of the model's parameters."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from topo.errors import ConfigError  # noqa: E402
from topo.io import load  # noqa: E402
from topo.record import Recorder  # noqa: E402


def _model(dtype: torch.dtype) -> torch.nn.Module:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    with torch.no_grad():
        model[0].weight[0, :] = 0.0       # output unit 0 of the first layer has no inputs
    return model.to(dtype)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["float16", "bfloat16"])
def test_a_half_precision_model_is_recorded_at_its_own_values(tmp_path, dtype):
    model = _model(dtype)
    recorder = Recorder(model, tmp_path / "run")
    path = recorder.snapshot(epoch=0)
    recorder.update(step=1)
    recorder.close()
    g = load(path)
    for k, layer in enumerate((model[0], model[2])):
        expected = layer.weight.detach().float().numpy()
        np.testing.assert_array_equal(g.layers[k].toarray(), expected)
    assert g.n_connections == [3 * 3, 4 * 2]


def test_close_refuses_an_unknown_status_and_a_second_close_changes_nothing(tmp_path):
    recorder = Recorder(_model(torch.float32), tmp_path / "run")
    recorder.snapshot(epoch=0)
    with pytest.raises(ConfigError, match=r"^close\(status='done'\): 'finished' or "
                                          r"'interrupted'$"):
        recorder.close("done")
    recorder.close("interrupted")
    manifest = (tmp_path / "run" / "run.json").read_text()
    recorder.close("finished")
    assert (tmp_path / "run" / "run.json").read_text() == manifest
    assert json.loads(manifest)["status"] == "interrupted"
