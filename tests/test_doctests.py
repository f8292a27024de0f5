"""Docstring examples are run: every module's ``>>>`` examples must hold."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import backline


def _modules():
    for mod in pkgutil.walk_packages(backline.__path__, "backline."):
        yield mod.name


@pytest.mark.parametrize("name", sorted(_modules()))
def test_doctests(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"
