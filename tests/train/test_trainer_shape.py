"""The training loop stays short and method-agnostic (issue 9's design): the ``Trainer``
class is under 150 lines and its code names no training method."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import topo.train.trainer as trainer_module
from topo.train.registry import METHODS

SOURCE = Path(trainer_module.__file__).read_text(encoding="utf-8")


def _trainer_class(tree: ast.Module) -> ast.ClassDef:
    return next(node for node in tree.body
                if isinstance(node, ast.ClassDef) and node.name == "Trainer")


def _code_words(node: ast.AST) -> set[str]:
    """Identifiers, attribute names and string constants of ``node``'s code (docstrings,
    which may explain the methods, excluded)."""
    docstrings = {id(body[0].value) for body in
                  (n.body for n in ast.walk(node)
                   if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef)))
                  if body and isinstance(body[0], ast.Expr)
                  and isinstance(body[0].value, ast.Constant)}
    words: set[str] = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            words.add(n.id)
        elif isinstance(n, ast.Attribute):
            words.add(n.attr)
        elif isinstance(n, ast.arg):
            words.add(n.arg)
        elif isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings:
            words.update(n.value.replace(".", " ").replace("_", " ").split())
    return {w.lower() for w in words}


def test_the_trainer_class_is_under_150_lines():
    cls = _trainer_class(ast.parse(SOURCE))
    assert cls.end_lineno is not None
    assert cls.end_lineno - cls.lineno + 1 < 150


@pytest.mark.parametrize("name", list(METHODS))
def test_the_trainer_module_names_no_method(name):
    assert name.lower() not in _code_words(ast.parse(SOURCE))


def test_the_word_finder_sees_code_but_not_docstrings():
    tree = ast.parse('def f(x):\n    """Uses set and rigl."""\n    return x.imp + gmp("snip")\n')
    words = _code_words(tree)
    assert {"imp", "gmp", "snip"} <= words
    assert "set" not in words and "rigl" not in words
