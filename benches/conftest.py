"""Benchmarks: every group runs wfpsim and its peers on the same input in the same run, so
the figures to read are ratios. Run with `bash scripts/bench` (see BENCHMARKS.md)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PCAPS = REPO.parent / "shared" / "data" / "pcaps"


@pytest.fixture(scope="session")
def packets() -> list[bytes]:
    """1000 packets with a realistic size mix (40–1500 bytes), deterministic."""
    rng = random.Random(1071)
    sizes = [rng.choice([40, 52, 60, 64, 576, 1200, 1500]) for _ in range(1000)]
    return [bytes(rng.getrandbits(8) for _ in range(n)) for n in sizes]
