"""Sphinx configuration of topo's documentation (``make docs``).

The API reference is generated from the code: every public module's ``__all__`` becomes one
page (``api/<module>.rst``, written by :func:`write_api_pages` when the build starts), so a
name added to ``__all__`` is documented without editing the docs, and a name whose docstring
does not render fails the ``-W`` build. The gallery scripts in ``examples/`` run at build time
on ``data/example-run``.
"""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import re
import sys
import typing
import warnings
from pathlib import Path

import matplotlib
from sphinx.pycode import ModuleAnalyzer

matplotlib.use("Agg")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import topo  # noqa: E402

project = "topo"
author = "the topo developers"
copyright = "the topo developers"  # noqa: A001
release = topo.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "examples", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.md5", "auto_examples/*.json"]
html_theme = "alabaster"
html_title = f"topo {release}"
html_static_path: list[str] = []
myst_heading_anchors = 3

autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"  # numpydoc's Parameters sections say the types
autosummary_generate = False
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# The build must work without internet (tests and CI never download): the inventories of
# numpy, scipy, networkx and torch are fetched only when TOPO_DOCS_INTERSPHINX=1.
intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable", None),
    "scipy": ("https://docs.scipy.org/doc/scipy", None),
    "networkx": ("https://networkx.org/documentation/stable", None),
    "torch": ("https://pytorch.org/docs/stable", None),
}
if os.environ.get("TOPO_DOCS_INTERSPHINX") != "1":
    intersphinx_mapping = {}

sphinx_gallery_conf = {
    "examples_dirs": str(HERE / "examples"),
    "gallery_dirs": str(HERE / "auto_examples"),
    "filename_pattern": r"/plot_",
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
}

# Library warnings raised inside an example would otherwise be printed in the page.
warnings.filterwarnings("ignore", category=UserWarning, message="Matplotlib is currently using agg")


def public_modules() -> list[str]:
    """Every importable ``topo`` module with no ``_`` in its path that defines ``__all__``."""
    names = ["topo"]
    for info in pkgutil.walk_packages(topo.__path__, "topo."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        names.append(info.name)
    return sorted(n for n in names if hasattr(importlib.import_module(n), "__all__"))


def home_module(obj: object, name: str, modules: dict[str, object]) -> str | None:
    """The module that defines ``obj`` (documented there; re-exports link to it)."""
    owner = getattr(obj, "__module__", None)
    if directive(obj) != "autodata" and owner in modules \
            and name in getattr(modules[owner], "__all__", ()):
        return owner
    # data (constants, registries): the public module whose source assigns the name
    pattern = re.compile(rf"^{re.escape(name)}\s*(:[^=\n]*)?=", re.MULTILINE)
    for module_name, module in modules.items():
        if name not in module.__all__ or getattr(module, name) is not obj:
            continue
        try:
            source = inspect.getsource(module)
        except (OSError, TypeError):
            continue
        if pattern.search(source):
            return module_name
    return None


def directive(obj: object) -> str:
    if typing.get_origin(obj) is not None:  # a type alias such as ``tuple[int, str]``
        return "autodata"
    if inspect.isclass(obj):
        return "autoclass"
    if inspect.isfunction(obj) or inspect.isbuiltin(obj):
        return "autofunction"
    return "autodata"


def write_api_pages() -> None:
    """Write ``api/index.rst`` and one page per public module from the modules' ``__all__``."""
    names = public_modules()
    modules = {n: importlib.import_module(n) for n in names}
    folder = HERE / "api"
    folder.mkdir(exist_ok=True)
    pages = {}
    for module_name, module in modules.items():
        title = f"``{module_name}``"
        lines = [title, "=" * len(title), "", f".. automodule:: {module_name}",
                 "   :no-members:", "", f".. currentmodule:: {module_name}", ""]
        local, reexported = [], []
        for name in module.__all__:
            obj = getattr(module, name)
            home = home_module(obj, name, modules)
            if home is None or home == module_name:
                local.append((name, obj))
            else:
                reexported.append((name, home))
        if local:
            # type aliases (``tuple[...]``) are left out of the summary table, which cannot
            # describe them; they are documented below like the other names
            lines += [".. autosummary::", ""]
            lines += [f"   {name}" for name, obj in local if typing.get_origin(obj) is None]
            lines.append("")
            for name, obj in local:
                if typing.get_origin(obj) is not None:
                    # autodoc cannot document a generic alias; say what it stands for
                    lines += [f".. py:data:: {name}", ""]
                    comment = ModuleAnalyzer.for_module(module_name).find_attr_docs()
                    lines += [f"   {line}" for line in comment.get(("", name), [])]
                    lines += ["", f"   Type alias of ``{obj!r}``.", ""]
                    continue
                lines.append(f".. {directive(obj)}:: {name}")
                if directive(obj) == "autoclass":
                    lines += ["   :members:", "   :show-inheritance:"]
                if directive(obj) == "autodata":
                    lines.append("   :no-value:")
                lines.append("")
        if reexported:
            heading = "Documented in the modules that define them"
            lines += [heading, "-" * len(heading), "", ".. currentmodule:: None", "",
                      ".. autosummary::", "   :nosignatures:", ""]
            lines += [f"   ~{home}.{name}" for name, home in reexported
                      if typing.get_origin(getattr(module, name)) is None]
            lines.append("")
            lines += [f"* :py:data:`{name} <{home}.{name}>`" for name, home in reexported
                      if typing.get_origin(getattr(module, name)) is not None]
            lines.append("")
        text = "\n".join(lines)
        path = folder / f"{module_name}.rst"
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
        pages[module_name] = module.__doc__.strip().splitlines()[0] if module.__doc__ else ""
    index = ["API reference", "=============", "",
             "Generated from each public module's ``__all__``.", "",
             ".. toctree::", "   :maxdepth: 1", ""]
    index += [f"   {name}" for name in pages] + [""]
    text = "\n".join(index)
    path = folder / "index.rst"
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)


write_api_pages()
