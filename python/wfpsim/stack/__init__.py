"""The simulated Windows TCP/IP stack with WFP layers, and the injection API it serves.

Modules: :mod:`.stack` (Stack, default / current stack, links), :mod:`.host` (interfaces,
endpoints, flows), :mod:`.dispatcher` (DPC queue, clock), :mod:`.paths` (layer traversal, what a
callout sees), :mod:`.injection` (handles, injection state, inject functions), :mod:`.fragments`
(reassembly), :mod:`.records` (what leaves the stack), :mod:`.contracts` (Driver-Verifier checks),
:mod:`.seam` (the filter-engine protocol), :mod:`.ip` (header helpers).
"""

from __future__ import annotations

from wfpsim.stack.contracts import Contracts, Violation
from wfpsim.stack.dispatcher import Dispatcher
from wfpsim.stack.fragments import Reassembler, fragment, reassemble_group
from wfpsim.stack.host import Datagram, Endpoint, Interface, TcpFlow
from wfpsim.stack.injection import (
    FWPS_TRANSPORT_SEND_PARAMS0,
    FWPS_TRANSPORT_SEND_PARAMS1,
    HandleState,
    InjectionHandle,
    history_of,
)
from wfpsim.stack.paths import PathResult, Visit
from wfpsim.stack.records import Delivered, InjectionRecord, WireFrame, write_pcap
from wfpsim.stack.seam import (
    AleCompletionHandle,
    FilterEngine,
    PermitAllEngine,
    StreamSegment,
    StreamVerdict,
)
from wfpsim.stack.stack import Link, Stack, connect, current_stack, default_stack, run_all

__all__ = [
    "Stack",
    "default_stack",
    "current_stack",
    "connect",
    "run_all",
    "Link",
    "Interface",
    "Endpoint",
    "TcpFlow",
    "Datagram",
    "Dispatcher",
    "Contracts",
    "Violation",
    "InjectionHandle",
    "HandleState",
    "history_of",
    "FWPS_TRANSPORT_SEND_PARAMS0",
    "FWPS_TRANSPORT_SEND_PARAMS1",
    "Delivered",
    "WireFrame",
    "InjectionRecord",
    "write_pcap",
    "PathResult",
    "Visit",
    "Reassembler",
    "reassemble_group",
    "fragment",
    "FilterEngine",
    "PermitAllEngine",
    "StreamSegment",
    "StreamVerdict",
    "AleCompletionHandle",
]
