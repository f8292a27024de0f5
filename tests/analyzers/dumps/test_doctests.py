"""The docstring examples of the minidump modules run and pass."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "backline.analyzers.dumps.minidump.reader",
    "backline.analyzers.dumps.minidump.context",
    "backline.analyzers.dumps.minidump.types",
    "backline.analyzers.dumps.minidump.parser",
    "backline.analyzers.dumps.minidump.process",
    "backline.analyzers.dumps.symbols",
    "backline.analyzers.dumps.stackwalk.cfi",
    "backline.analyzers.dumps.exceptions",
    "backline.analyzers.dumps.signature",
    "backline.analyzers.dumps.analysis",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0
