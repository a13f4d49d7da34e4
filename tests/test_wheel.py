"""The package as users install it: build the sdist and the wheel from a copy of the
tracked files, install the wheel (made from that sdist) into a fresh virtual environment and
run the ``topo`` command there.

The fresh environment gets topo from the wheel only; its dependencies (numpy, torch, ...)
come from this environment's site-packages, added by a ``.pth`` line, which Python reads
without running the editable install's hooks, so the checkout cannot stand in for a file
missing from the wheel. ``make wheel-test`` runs this file alone; it is part of the default
suite under the ``slow`` marker.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import venv
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_RUN = ROOT / "data" / "example-run"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """``(sdist, wheel, python)``: the artefacts and the fresh environment's interpreter."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True,
                             capture_output=True).stdout.decode().split("\0")
    for name in filter(None, tracked):
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / name).is_file():
            shutil.copy2(ROOT / name, target)
    dist = work / "dist"
    # --no-isolation: the build backend (setuptools) is this environment's; nothing is fetched
    subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--sdist", "--wheel",
                    "--outdir", str(dist), str(source)], check=True, capture_output=True)
    (sdist,) = dist.glob("topo-*.tar.gz")
    (wheel,) = dist.glob("topo-*.whl")
    env = work / "env"
    venv.EnvBuilder(with_pip=False).create(env)
    python = env / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                              "['purelib'])"], check=True, capture_output=True,
                             text=True).stdout.strip()
    Path(purelib, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # this pip installs into the fresh environment (--python), with its entry point script
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
                    "--no-deps", "--no-index", str(wheel)], check=True, capture_output=True)
    return sdist, wheel, python


def run_in_env(python: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return subprocess.run([str(python), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_the_wheel_holds_every_module_of_the_package(built):
    _, wheel, _ = built
    with zipfile.ZipFile(wheel) as archive:
        shipped = {n for n in archive.namelist() if n.startswith("topo/")}
    package = {p.relative_to(ROOT).as_posix() for p in (ROOT / "topo").rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    assert package <= shipped, sorted(package - shipped)


def test_the_sdist_holds_the_package_and_its_metadata(built):
    sdist, _, _ = built
    with tarfile.open(sdist) as archive:
        names = {n.split("/", 1)[1] for n in archive.getnames() if "/" in n}
    assert {"pyproject.toml", "README.md", "LICENSE", "topo/__init__.py", "topo/cli/__init__.py"
            } <= names


def test_topo_runs_from_the_installed_wheel(built, tmp_path):
    _, _, python = built
    where = run_in_env(python, "-c", "import topo; print(topo.__file__)", cwd=tmp_path)
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(python.parent.parent)
    topo_command = python.parent / "topo"
    version = subprocess.run([str(topo_command), "--version"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=300)
    assert version.returncode == 0 and version.stdout == f"topo {metadata.version('topo')}\n"
    helped = subprocess.run([str(topo_command), "--help"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300)
    assert helped.returncode == 0 and "compare" in helped.stdout


def test_topo_info_reads_the_example_run_from_the_installed_wheel(built, tmp_path):
    _, _, python = built
    info = subprocess.run([str(python.parent / "topo"), "info", str(EXAMPLE_RUN), "--json"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert info.returncode == 0, info.stderr
    report = json.loads(info.stdout)
    run = json.loads((EXAMPLE_RUN / "run.json").read_text())
    assert report["widths"] == run["widths"] == run["config"]["arch"]
    # the installed package reads the run exactly as the checkout does
    checkout = subprocess.run([sys.executable, "-m", "topo", "info", str(EXAMPLE_RUN), "--json"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert json.loads(checkout.stdout) == report
