"""Shared fixtures: the capture corpus in ../shared, and a leak check around every test."""

from __future__ import annotations

from pathlib import Path

import pytest

import wfpsim

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
PCAPS = SHARED / "data" / "pcaps"


@pytest.fixture
def pcaps() -> Path:
    if not PCAPS.is_dir():
        pytest.skip(f"capture corpus not found at {PCAPS}")
    return PCAPS


@pytest.fixture
def no_leaks():
    """Asserts the test left nothing allocated in the engine."""
    before = {(leak["kind"], leak["handle"]) for leak in wfpsim.leak_report()}
    yield
    after = [leak for leak in wfpsim.leak_report() if (leak["kind"], leak["handle"]) not in before]
    assert not after, f"leaked: {after}"
