"""wfpsim: a user-mode simulator of the Windows Filtering Platform packet path.

Two faces over one Rust engine:

- `wfpsim` (this module) is Pythonic: ``NetBufferList.from_bytes(...)``, ``nb.retreat(n)``,
  ``nbl.clone()``, ``with`` blocks that free, exceptions carrying an NTSTATUS.
- `wfpsim.wdk` keeps the WDK names and calling conventions, for porting driver code line by line.
"""

from __future__ import annotations

from wfpsim._core import (  # noqa: I001  (errors must be importable before the extension raises)
    BatchFix,
    BatchVerdicts,
    CaptureReader,
    CaptureWriter,
    Chain,
    ChecksumVerdicts,
    FixReport,
    Mdl,
    NetBuffer,
    NetBufferList,
    ParseSummary,
    Pool,
    checksum_update16,
    checksum_update32,
    fail_allocations,
    internet_checksum,
    leak_report,
    live_counts,
    ones_sum,
    pseudo_header_sum,
    set_site_tracking,
)
from wfpsim.checksums import ChecksumInfo, Verdict
from wfpsim.errors import (
    CaptureError,
    ContractViolation,
    DoubleFreeError,
    InjectionLoopError,
    InvalidParameterError,
    InvalidStateError,
    MalformedPacketError,
    ResourcesError,
    UseAfterFreeError,
    WfpError,
)
from wfpsim.pipeline import Pipeline
from wfpsim.replayer import ReplaySummary, replay
from wfpsim.stack import Stack, current_stack, default_stack
from wfpsim.status import NT_SUCCESS, NTSTATUS

__version__ = "0.1.0"


def chain_from_buffer(buffer, offsets, lengths=None, *, copy: bool = False) -> Chain:
    """One NBL per packet over ``buffer[offsets[i] : offsets[i] + lengths[i]]``, zero-copy."""
    return Chain.from_buffer(buffer, offsets, lengths, copy)


def chain_from_packets(packets) -> Chain:
    """One NBL per bytes-like packet (copied into one engine buffer)."""
    return Chain.from_packets(packets)


__all__ = [
    "BatchFix",
    "BatchVerdicts",
    "CaptureReader",
    "CaptureWriter",
    "Pipeline",
    "ReplaySummary",
    "replay",
    "Chain",
    "ChecksumInfo",
    "ChecksumVerdicts",
    "FixReport",
    "ParseSummary",
    "Verdict",
    "checksum_update16",
    "checksum_update32",
    "internet_checksum",
    "ones_sum",
    "pseudo_header_sum",
    "Mdl",
    "NetBuffer",
    "NetBufferList",
    "Pool",
    "NTSTATUS",
    "NT_SUCCESS",
    "chain_from_buffer",
    "chain_from_packets",
    "fail_allocations",
    "leak_report",
    "live_counts",
    "set_site_tracking",
    "WfpError",
    "UseAfterFreeError",
    "DoubleFreeError",
    "InvalidParameterError",
    "InvalidStateError",
    "ResourcesError",
    "MalformedPacketError",
    "ContractViolation",
    "CaptureError",
    "InjectionLoopError",
    "Stack",
    "default_stack",
    "current_stack",
]
