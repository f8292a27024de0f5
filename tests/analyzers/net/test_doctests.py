"""Run the docstring examples of the net package (they are part of its tests)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["reader", "decode", "tcp", "dns", "http", "tls", "smb2", "capture", "findings",
           "synth"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    mod = importlib.import_module(f"backline.analyzers.net.{name}")
    result = doctest.testmod(mod)
    assert result.failed == 0
    assert result.attempted > 0 or name in ()
