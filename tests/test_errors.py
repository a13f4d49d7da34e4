"""The exception family: every class is reachable from ``topo`` and is a TopoError."""

from __future__ import annotations

import inspect

import pytest

import topo
import topo.errors

ERROR_CLASSES = ["TopoError", "UnreadableFileError", "UnsafeFileError", "GraphStructureError",
                 "NonFiniteWeightsError", "IncompatibleGraphsError", "ConfigError",
                 "OutputError", "NotAGraphError", "EmptyInputError", "InvalidTableError"]


def test_every_error_class_of_topo_errors_is_listed_here():
    defined = {name for name, value in vars(topo.errors).items()
               if inspect.isclass(value) and issubclass(value, Exception)}
    assert defined == set(ERROR_CLASSES)


@pytest.mark.parametrize("name", ERROR_CLASSES)
def test_error_class_is_exported_from_topo_and_is_a_topo_error(name):
    assert name in topo.__all__
    cls = getattr(topo, name)
    assert cls is getattr(topo.errors, name)
    assert issubclass(cls, topo.TopoError)


def test_errors_for_python_mistakes_are_also_the_builtin_kind():
    # an analysis given a path is a TypeError; an empty or unfit table a ValueError
    assert issubclass(topo.NotAGraphError, TypeError)
    assert issubclass(topo.EmptyInputError, ValueError)
    assert issubclass(topo.InvalidTableError, ValueError)
    assert not issubclass(topo.OutputError, ValueError)


def test_public_names_of_topo_resolve_without_importlib():
    for name in topo.__all__:
        assert getattr(topo, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        topo.nonsense  # noqa: B018
    assert set(topo.__all__) <= set(dir(topo))
