"""What ``topo train`` imports before its first batch (issue 12.8: seconds of start-up)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.mark.slow   # a whole training run from the command line in a fresh interpreter
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
