"""The documentation site: every public name in the API reference, the gallery's figures, the
changelog and the version.

The site is built by ``make docs`` (``make test`` builds it first and sets
``TOPO_REQUIRE_DOCS=1``, so these checks fail rather than skip when it is missing). The
public names are enumerated here from the package itself, not from ``docs/conf.py``.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import importlib
import os
import pkgutil
import re
from html.parser import HTMLParser
from importlib import metadata
from pathlib import Path

import pytest

import topo

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "docs" / "_build" / "html"


def public_files() -> dict[str, Path]:
    """Every public module (no part of its name starts with ``_``) that assigns ``__all__`` at
    its top level, by a look at the text: collecting this file stays cheap (each worker of the
    suite collects it; the source is parsed only by the tests that read the names)."""
    out = {}
    for path in sorted((ROOT / "topo").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if any(part.startswith("_") for part in parts):
            continue
        if re.search(r"^__all__\s*[:=]", path.read_text(encoding="utf-8"), re.M):
            out[".".join(parts)] = path
    return out


@functools.cache
def module_all(module: str) -> list[str]:
    """``__all__`` of one public module, read from its source without importing it
    (importing topo.integrations.lightning alone imports Lightning and torch).
    :func:`test_public_names_are_the_modules_own` checks these lists against the imports."""
    literals: dict[str, object] = {}   # the module's top-level literal constants
    path = public_files()[module]
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        targets = (node.targets if isinstance(node, ast.Assign)
                   else [node.target] if isinstance(node, ast.AnnAssign) else [])
        names = [t.id for t in targets if isinstance(t, ast.Name)]
        if "__all__" in names:
            return [name for element in node.value.elts  # type: ignore[union-attr]
                    for name in (literals[element.value.id]  # `*_LAZY`: a literal's keys
                                 if isinstance(element, ast.Starred)
                                 else [ast.literal_eval(element)])]
        if names and node.value is not None:
            with contextlib.suppress(ValueError, TypeError, SyntaxError):
                literals[names[0]] = ast.literal_eval(node.value)
    raise AssertionError(f"{path}: no top-level __all__ assignment found in the syntax tree")


def public_all() -> dict[str, list[str]]:
    """``__all__`` of every public module, read from the source (:func:`module_all`)."""
    return {module: module_all(module) for module in public_files()}


def public_modules() -> list[str]:
    return sorted(public_files())


class _Page(HTMLParser):
    """The ids, link targets and image sources of one HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.hrefs: set[str] = set()
        self.images: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(values["id"] or "")
        if tag == "a" and values.get("href"):
            self.hrefs.add(values["href"] or "")
        if tag == "img" and values.get("src"):
            self.images.append(values["src"] or "")


@functools.cache
def page(relative: str) -> _Page:
    """The parsed page (parsed once: each of the many name checks reads its module's page)."""
    require_site()
    path = HTML / relative
    assert path.is_file(), f"{relative} missing from the built site"
    parsed = _Page()
    parsed.feed(path.read_text(encoding="utf-8"))
    return parsed


def require_site() -> None:
    if not (HTML / "index.html").is_file():
        if os.environ.get("TOPO_REQUIRE_DOCS") == "1":
            pytest.fail("docs/_build/html is missing: `make docs` did not build the site")
        pytest.skip("the site is not built; run `make docs`")


@pytest.mark.xdist_group("torch-dynamo")   # imports Lightning (and torch._dynamo)
def test_public_names_are_the_modules_own():
    """The names read from the source are each module's ``__all__`` once imported, and the
    modules read are all the public ones that have an ``__all__``."""
    for module, names in public_all().items():
        assert importlib.import_module(module).__all__ == names, module
    walked = ["topo"] + [info.name for info in pkgutil.walk_packages(topo.__path__, "topo.")
                         if not any(p.startswith("_") for p in info.name.split("."))]
    assert sorted(n for n in walked if hasattr(importlib.import_module(n), "__all__")) == \
        public_modules()


@pytest.mark.parametrize("module", public_modules())
def test_every_public_name_is_in_its_modules_reference_page(module):
    """Each name of the module's ``__all__`` is documented on the module's page, or linked from
    it to where it is documented; every name missing is listed (one test per module, not per
    name: ~540 names would each pay pytest's per-test cost)."""
    names = module_all(module)
    parsed = page(f"api/{module}.html")
    missing = [name for name in names
               if f"{module}.{name}" not in parsed.ids
               and not any(re.search(rf"\.html#topo(\.\w+)*\.{re.escape(name)}$", h)
                           for h in parsed.hrefs)]
    assert missing == [], f"not documented on api/{module}.html: {missing}"


def test_linked_names_resolve_to_a_documented_entry():
    """A re-export's link points at an id that exists on the target page."""
    for module in public_modules():
        for href in page(f"api/{module}.html").hrefs:
            match = re.fullmatch(r"(topo[\w.]*\.html)#(topo[\w.]+)", href)
            if match:
                assert match.group(2) in page(f"api/{match.group(1)}").ids, href


def test_front_page_links_the_guide_gallery_and_reference():
    hrefs = page("index.html").hrefs
    for target in ("getting_started.html", "guide/index.html", "auto_examples/index.html",
                   "api/index.html", "architecture.html", "changelog.html"):
        assert target in hrefs


def test_gallery_pages_embed_the_figures_their_scripts_drew():
    require_site()
    examples = sorted(p.stem for p in (ROOT / "docs" / "examples").glob("plot_*.py"))
    assert examples
    for name in examples:
        images = [src for src in page(f"auto_examples/{name}.html").images
                  if f"sphx_glr_{name}_" in src]
        assert images, name
        for src in images:
            assert (HTML / "auto_examples" / src).is_file(), src


def test_api_page_renders_a_docstring_section():
    require_site()
    text = (HTML / "api" / "topo.distance.html").read_text(encoding="utf-8")
    assert 'id="topo.distance.nnstd"' in text and "Parameters" in text and "Raises" in text


def test_changelog_latest_release_is_the_package_version():
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    releases = re.findall(r"^## \[(\d+\.\d+\.\d+)\] - \d{4}-\d{2}-\d{2}$", changelog, re.M)
    assert releases and releases[0] == topo.__version__ == metadata.version("topo")


def test_changelog_is_published_in_the_site():
    require_site()
    text = (HTML / "changelog.html").read_text(encoding="utf-8")
    assert f"[{topo.__version__}]" in text
