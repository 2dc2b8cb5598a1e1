"""Per-packet NBL work from Python: allocate, retreat 14 bytes (prepend a link header), advance
them back, free. wfpsim one NBL at a time, wfpsim batched over a chain, and the same work done
with plain bytearrays."""

from __future__ import annotations

import numpy as np
import pytest

import wfpsim

pytestmark = pytest.mark.benchmark(group="nbl-alloc-retreat-advance-free")

HEADER = 14


def test_wfpsim_single(benchmark, packets):
    wfpsim.set_site_tracking(False)

    def run():
        for p in packets:
            nbl = wfpsim.NetBufferList.from_bytes(p, HEADER)
            nb = nbl.FirstNetBuffer
            nb.retreat(HEADER)
            nb.advance(HEADER)
            nbl.free()

    benchmark(run)
    wfpsim.set_site_tracking(True)


def test_wfpsim_batch(benchmark, packets):
    wfpsim.set_site_tracking(False)
    packed = np.frombuffer(b"".join(packets), dtype=np.uint8)
    lengths = np.array([len(p) for p in packets], dtype=np.uint32)
    offsets = np.concatenate(([0], np.cumsum(lengths[:-1]))).astype(np.uint64)

    def run():
        chain = wfpsim.chain_from_buffer(packed, offsets, lengths)
        chain.retreat(HEADER)
        chain.advance(HEADER, True)
        chain.free()

    benchmark(run)
    wfpsim.set_site_tracking(True)


def test_python_bytearray(benchmark, packets):
    header = bytes(HEADER)

    def run():
        for p in packets:
            buf = bytearray(header)  # allocate with room for the header
            buf += p
            view = memoryview(buf)[HEADER:]  # advance past it again
            view.release()

    benchmark(run)
