"""Every analyzer class in the package is listed in the explicit registry, once."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import backline.analyzers
from backline.analyzers.base import Analyzer
from backline.analyzers.registry import BUILTIN_ANALYZERS, builtin_analyzer_classes


def _all_analyzer_classes_in_package():
    found = set()
    for mod in pkgutil.walk_packages(backline.analyzers.__path__, "backline.analyzers."):
        module = importlib.import_module(mod.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, Analyzer) and obj is not Analyzer and obj.__module__ == module.__name__ and obj.name:
                found.add(f"{obj.__module__}:{obj.__name__}")
    return found


def test_every_analyzer_is_registered():
    assert _all_analyzer_classes_in_package() <= set(BUILTIN_ANALYZERS)


def test_registry_entries_are_valid_and_unique():
    classes = builtin_analyzer_classes()
    names = [c.name for c in classes]
    assert len(names) == len(set(names))
    for c in classes:
        assert c.name and c.version and c.consumes, c
