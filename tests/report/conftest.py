"""Fixtures: AnalysisResults built in the tests (see samples.py)."""

from __future__ import annotations

import pytest

from backline.model import AnalysisResult

from .samples import empty_result, hostile_result, many_events_result, rich_result


@pytest.fixture
def rich() -> AnalysisResult:
    return rich_result()


@pytest.fixture
def hostile() -> AnalysisResult:
    return hostile_result()


@pytest.fixture
def empty() -> AnalysisResult:
    return empty_result()


@pytest.fixture(scope="session")
def many() -> AnalysisResult:
    return many_events_result()
