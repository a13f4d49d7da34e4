"""What ``topo train`` imports before its first batch (issue 12.8: seconds of start-up)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Each test is a whole training run from the command line in a fresh interpreter (end to end):
# `make test-slow` runs them.
pytestmark = pytest.mark.slow


def test_training_on_digits_imports_neither_the_compiler_nor_scikit_learn(tmp_path):
    """``torch.optim``'s optimisers import ``torch._dynamo`` (seconds) and scikit-learn's
    split imports scipy.stats and pandas (seconds more): a whole run on digits, from the
    command line, needs neither."""
    script = (
        "import json, sys\n"
        "from topo.cli import main\n"
        f"code = main(['train', '--arch', '64-8-10', '--epochs', '1', '--optimizer', 'adam',"
        f" '--no-progress', '--out', {str(tmp_path / 'run')!r}])\n"
        "print(json.dumps({'code': code, 'imported': sorted(m for m in ('torch._dynamo', "
        "'sklearn', 'scipy.stats') if m in sys.modules)}))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    # the training summary is printed first; the last line is the probe's
    assert json.loads(out.strip().splitlines()[-1]) == {"code": 0, "imported": []}


def test_the_first_batch_comes_before_scipy_sparse_and_the_graph_model(tmp_path):
    """SciPy's sparse matrices cost about a third of a second to import: the epoch-0 row,
    snapshot and dead neuron rate are computed from plain arrays, so the first mini-batch
    runs before ``scipy.sparse``, ``topo.graph`` or the readers are imported."""
    script = (
        "import json, sys\n"
        "from topo.train import steps\n"
        "seen = []\n"
        "call = steps.GradientStep.__call__\n"
        "def first(self, *a, **k):\n"
        "    if not seen:\n"
        "        seen.append(sorted(m for m in ('scipy.sparse', 'topo.graph', 'topo.io.sequence',"
        " 'topo.structure') if m in sys.modules))\n"
        "    return call(self, *a, **k)\n"
        "steps.GradientStep.__call__ = first\n"
        "from topo.cli import main\n"
        f"code = main(['train', '--arch', '64-8-10', '--epochs', '1', '--no-progress',"
        f" '--out', {str(tmp_path / 'run')!r}])\n"
        "print(json.dumps({'code': code, 'at_first_batch': seen[0]}))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert json.loads(out.strip().splitlines()[-1]) == {"code": 0, "at_first_batch": []}
    assert (tmp_path / "run" / "snapshots" / "epoch_0000.safetensors").is_file()
