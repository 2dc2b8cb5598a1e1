"""Injection handles, injection state, and the logic of every inject function.

Both faces call :class:`Injector` (one per stack, ``stack.injector``): the Pythonic
``stack.inject_*`` methods let its exceptions propagate; the WDK functions of
:mod:`wfpsim.wdk.fwps_inject` turn them into the documented NTSTATUS.

Validation order (injection.md §9, the simulator's rule where Windows is silent):

1. handle valid (an open or closing handle of this stack) — else STATUS_INVALID_HANDLE;
2. handle closing — STATUS_FWP_INJECT_HANDLE_CLOSING;
3. stack ready — STATUS_FWP_TCPIP_NOT_READY (``stack.tcpip_ready``; MAC/vSwitch functions:
   ``stack.l2_ready``, same code, "the MAC layer is not ready");
4. handle type matches the function — STATUS_FWP_INJECT_HANDLE_STALE;
5. required pointers (the NBL, except a FIN-only stream injection; completionFn where required)
   — STATUS_FWP_NULL_POINTER;
6. reserved flags, address family, layer id, stream flags, NBL shape — STATUS_FWP_INVALID_PARAMETER;
7. accept: append the injection history, count the NBL in flight, queue its processing on the
   dispatcher. The completion runs from the dispatcher once per NBL, never inside the call, with
   ``netBufferList.Status`` carrying late failures and ``dispatchLevel`` TRUE (DPC context).

Late failures (``netBufferList.Status`` at completion; codes marked [emu] are the simulator's
choice where Windows is undocumented):

* STATUS_SUCCESS — delivered, forwarded, sent, absorbed by a callout (the completion then waits
  until the callout's clones of the NBL are freed and its references released), or dropped by
  the stack for lack of a socket;
* STATUS_INVALID_BUFFER_SIZE — network send / forward / MAC send larger than the MTU (documented
  by WinDivert); transport sends are fragmented instead, as the stack builds their header;
* STATUS_INVALID_PARAMETER — unknown or down interface, compartment mismatch, forward injection of
  weak-host traffic (B13), bytes that are not a well-formed packet;
* STATUS_INVALID_HANDLE [emu] — transport send through an endpoint closed before the send ran (S-39);
* STATUS_NETWORK_UNREACHABLE — no route in the compartment;
* STATUS_FWP_DROP_NOICMP [emu] — a filter blocked the re-injected packet;
* STATUS_CONNECTION_ABORTED [emu] — stream injection into a flow closed meanwhile;
* STATUS_HOPLIMIT_EXCEEDED [emu] — the re-injection was refused because the packet's lineage was
  re-injected more than ``stack.max_reinjections`` times (a loop, reported as
  :class:`wfpsim.InjectionLoopError` naming the callout);
* STATUS_UNSUCCESSFUL — a callout raised while the packet was processed (the error is raised from
  ``stack.run()`` after the completion).

Injection history (injection.md §6, the suggested model): every NBL carries in its
``WfpNetBufferListInfo`` slot (10) the id of an immutable tuple of ``(handle, injectionContext)``
entries; injecting appends one (a new id), WFP clones copy the slot, so the history survives
clone → inject → re-query and the stack's own processing (reassembly copies it too).
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from wfpsim._core import NetBufferList
from wfpsim._sites import caller
from wfpsim.constants import (
    AF_INET,
    AF_INET6,
    AF_UNSPEC,
    FWPS_BUILTIN_LAYERS,
    FWPS_INJECTION_TYPE_FORWARD,
    FWPS_INJECTION_TYPE_L2,
    FWPS_INJECTION_TYPE_NETWORK,
    FWPS_INJECTION_TYPE_STREAM,
    FWPS_INJECTION_TYPE_TRANSPORT,
    FWPS_INJECTION_TYPE_VSWITCH_TRANSPORT,
    FWPS_PACKET_INJECTION_STATE,
    FWPS_SEND_INJECT_PRESERVE_IPID,
    FWPS_STREAM_FLAG_RECEIVE,
    FWPS_STREAM_FLAG_RECEIVE_ABORT,
    FWPS_STREAM_FLAG_RECEIVE_DISCONNECT,
    FWPS_STREAM_FLAG_RECEIVE_EXPEDITED,
    FWPS_STREAM_FLAG_RECEIVE_PUSH,
    FWPS_STREAM_FLAG_SEND,
    FWPS_STREAM_FLAG_SEND_ABORT,
    FWPS_STREAM_FLAG_SEND_DISCONNECT,
    FWPS_STREAM_FLAG_SEND_EXPEDITED,
    FWPS_STREAM_FLAG_SEND_NODELAY,
)
from wfpsim.errors import (
    InjectionLoopError,
    InvalidParameterError,
    InvalidStateError,
    MalformedPacketError,
)
from wfpsim.stack import ip as IP
from wfpsim.stack.contracts import describe_change, snapshot
from wfpsim.stack.paths import INBOUND, OUTBOUND, TCP_LOCKED_LAYERS, Dropped, Pkt
from wfpsim.stack.records import Delivered, InjectionRecord
from wfpsim.status import NTSTATUS

if TYPE_CHECKING:
    from wfpsim.stack.stack import Stack

S = NTSTATUS
WFP_INFO_SLOT = 10

#: What handle flags 0 means (injection.md §1.3: "transport, stream and forward").
DEFAULT_TYPES = (
    FWPS_INJECTION_TYPE_TRANSPORT | FWPS_INJECTION_TYPE_STREAM | FWPS_INJECTION_TYPE_FORWARD
)
KNOWN_TYPES = (
    FWPS_INJECTION_TYPE_STREAM
    | FWPS_INJECTION_TYPE_TRANSPORT
    | FWPS_INJECTION_TYPE_NETWORK
    | FWPS_INJECTION_TYPE_FORWARD
    | FWPS_INJECTION_TYPE_L2
    | FWPS_INJECTION_TYPE_VSWITCH_TRANSPORT
)
RECEIVE_SIDE = (
    FWPS_STREAM_FLAG_RECEIVE
    | FWPS_STREAM_FLAG_RECEIVE_EXPEDITED
    | FWPS_STREAM_FLAG_RECEIVE_DISCONNECT
    | FWPS_STREAM_FLAG_RECEIVE_PUSH
)
SEND_SIDE = (
    FWPS_STREAM_FLAG_SEND
    | FWPS_STREAM_FLAG_SEND_EXPEDITED
    | FWPS_STREAM_FLAG_SEND_NODELAY
    | FWPS_STREAM_FLAG_SEND_DISCONNECT
)
DISCONNECT = FWPS_STREAM_FLAG_RECEIVE_DISCONNECT | FWPS_STREAM_FLAG_SEND_DISCONNECT
STREAM_LAYERS = (
    int(FWPS_BUILTIN_LAYERS.FWPS_LAYER_STREAM_V4),
    int(FWPS_BUILTIN_LAYERS.FWPS_LAYER_STREAM_V6),
)
L2 = FWPS_BUILTIN_LAYERS
MAC_RECEIVE_LAYERS = (
    int(L2.FWPS_LAYER_INBOUND_MAC_FRAME_ETHERNET),
    int(L2.FWPS_LAYER_INBOUND_MAC_FRAME_NATIVE),
)
MAC_SEND_LAYERS = (
    int(L2.FWPS_LAYER_OUTBOUND_MAC_FRAME_ETHERNET),
    int(L2.FWPS_LAYER_OUTBOUND_MAC_FRAME_NATIVE),
)

# ---- handles ----------------------------------------------------------------------------------


class HandleState(enum.Enum):
    OPEN = "open"
    CLOSING = "closing"
    DESTROYED = "destroyed"


_handle_serials = itertools.count(1)


class InjectionHandle:
    """An injection handle (the ``HANDLE`` of FwpsInjectionHandleCreate0). Opaque to drivers;
    belongs to the stack that was current when it was created."""

    def __init__(self, stack: Stack, address_family: int, flags: int) -> None:
        self.serial = next(_handle_serials)
        self.stack = stack
        self.address_family = address_family
        self.flags = flags
        self.state = HandleState.OPEN
        self.in_flight = 0
        self.injections = 0

    @property
    def types(self) -> int:
        """The FWPS_INJECTION_TYPE_* bits this handle may be used with."""
        return self.flags or DEFAULT_TYPES

    def allows(self, type_bit: int) -> bool:
        return bool(self.types & type_bit)

    def destroy(self) -> None:
        """FwpsInjectionHandleDestroy0: runs this handle's pending work (every completion) and
        returns once the last completion ran. Raises on an invalid or destroyed handle."""
        self.stack.injector.destroy_handle(self)

    def __repr__(self) -> str:
        return (
            f"<InjectionHandle #{self.serial} af={self.address_family} "
            f"flags={self.flags:#x} {self.state.value} in_flight={self.in_flight}>"
        )


# ---- injection history (slot 10) --------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class HistoryEntry:
    handle_serial: int
    context: Any
    origin: str
    function: str


_HISTORIES: dict[int, tuple[HistoryEntry, ...]] = {0: ()}
_INTERN: dict[tuple, int] = {}
_history_ids = itertools.count(1)


def history_of(nbl: NetBufferList) -> tuple[HistoryEntry, ...]:
    """The injection history of an NBL, oldest first (empty: never injected)."""
    return _HISTORIES.get(nbl.get_info(WFP_INFO_SLOT), ())


def intern_history(parent: int, entry: HistoryEntry) -> int:
    """The id of history `parent` extended by `entry` (the value kept in slot 10)."""
    key = (parent, entry.handle_serial, id(entry.context), entry.origin, entry.function)
    hid = _INTERN.get(key)
    if hid is None:
        hid = next(_history_ids)
        _INTERN[key] = hid
        _HISTORIES[hid] = _HISTORIES.get(parent, ()) + (entry,)
    return hid


def push_history(nbl: NetBufferList, entry: HistoryEntry) -> None:
    nbl.set_info(WFP_INFO_SLOT, intern_history(nbl.get_info(WFP_INFO_SLOT), entry))


def query_state(
    handle: InjectionHandle, nbl: NetBufferList
) -> tuple[FWPS_PACKET_INJECTION_STATE, Any]:
    """FwpsQueryPacketInjectionState0 per the history model of injection.md §6."""
    history = history_of(nbl)
    if not history:
        return FWPS_PACKET_INJECTION_STATE.FWPS_PACKET_NOT_INJECTED, None
    if history[-1].handle_serial == handle.serial:
        return FWPS_PACKET_INJECTION_STATE.FWPS_PACKET_INJECTED_BY_SELF, history[-1].context
    for entry in reversed(history):
        if entry.handle_serial == handle.serial:
            return (
                FWPS_PACKET_INJECTION_STATE.FWPS_PACKET_PREVIOUSLY_INJECTED_BY_SELF,
                entry.context,
            )
    return FWPS_PACKET_INJECTION_STATE.FWPS_PACKET_INJECTED_BY_OTHER, None


# ---- send params (fwpsk.h) ---------------------------------------------------------------------


@dataclass
class FWPS_TRANSPORT_SEND_PARAMS0:  # noqa: N801
    """``remoteAddress``: 4 or 16 bytes in network byte order (a bytes-like buffer; read at
    send time, as the stack reads the driver's buffer asynchronously — R8/B6)."""

    remoteAddress: Any = None
    remoteScopeId: int = 0
    controlData: bytes | None = None
    controlDataLength: int = 0


@dataclass
class FWPS_TRANSPORT_SEND_PARAMS1(FWPS_TRANSPORT_SEND_PARAMS0):  # noqa: N801
    """Windows 7+: adds the header-include header of a raw socket send."""

    headerIncludeHeader: Any = None
    headerIncludeHeaderLength: int = 0


# ---- errors -----------------------------------------------------------------------------------


def _param(message: str, status: int = S.STATUS_FWP_INVALID_PARAMETER) -> InvalidParameterError:
    return InvalidParameterError(message, status)


def _state(message: str, status: int) -> InvalidStateError:
    return InvalidStateError(message, status)


def _nbl_chain(nbl: NetBufferList) -> list[NetBufferList]:
    out = []
    cur: NetBufferList | None = nbl
    for _ in range(1 << 20):
        if cur is None:
            return out
        out.append(cur)
        cur = cur.Next
    raise _param("NBL chain longer than 2**20 NBLs (a cycle?)")


_KNOWN_ETHERTYPES = (IP.ETHERTYPE_IPV4, IP.ETHERTYPE_IPV6, IP.ETHERTYPE_VLAN, 0x0806)


def _looks_like_ip(data: bytes) -> bool:
    """A complete IPv4 packet (valid header checksum, total length = the data) or IPv6 packet
    (40 + payload length = the data)."""
    if len(data) >= 20 and data[0] >> 4 == 4 and (data[0] & 0xF) >= 5:
        ihl = (data[0] & 0xF) * 4
        total = int.from_bytes(data[2:4], "big")
        return total == len(data) and IP.internet_checksum(data[:ihl]) == 0
    if len(data) >= 40 and data[0] >> 4 == 6:
        return 40 + int.from_bytes(data[4:6], "big") == len(data)
    return False


def _not_a_frame(data: bytes) -> str:
    """Why ``data`` cannot start with an Ethernet (II) header, or ""."""
    try:
        eth = IP.parse_ethernet(data[:18])
    except MalformedPacketError as e:
        return str(e)
    if eth.ethertype in (IP.ETHERTYPE_IPV4, IP.ETHERTYPE_IPV6):
        want = 4 if eth.ethertype == IP.ETHERTYPE_IPV4 else 6
        if len(data) <= eth.header_length or data[eth.header_length] >> 4 != want:
            return f"EtherType {eth.ethertype:#06x} but no IPv{want} header after the MAC header"
    elif eth.ethertype not in _KNOWN_ETHERTYPES and _looks_like_ip(data):
        return (
            "the data is an IP packet, not a frame (at INBOUND_MAC_FRAME_ETHERNET retreat by "
            "ethernetMacHeaderSize before cloning)"
        )
    return ""


class Injector:
    """The inject functions of one stack."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self._seq = itertools.count(1)

    # -- handles --

    def create_handle(self, address_family: int, flags: int) -> InjectionHandle:
        """FwpsInjectionHandleCreate0 (injection.md §2.1)."""
        stack = self.stack
        if not stack.tcpip_ready:
            raise _state("the TCP/IP stack is not ready", S.STATUS_FWP_TCPIP_NOT_READY)
        if address_family not in (AF_UNSPEC, AF_INET, AF_INET6):
            raise _param(
                f"addressFamily must be AF_UNSPEC (0), AF_INET (2) or AF_INET6 (23), "
                f"not {address_family}"
            )
        if flags & ~KNOWN_TYPES:
            raise _param(f"flags {flags:#x} has bits that are no FWPS_INJECTION_TYPE_*")
        if flags & FWPS_INJECTION_TYPE_NETWORK and address_family == AF_UNSPEC:
            # [emu] (injection.md §2.1): a network handle needs a family, one handle per family
            raise _param(
                "a FWPS_INJECTION_TYPE_NETWORK handle needs AF_INET or AF_INET6, not AF_UNSPEC "
                "(create one handle per address family)"
            )
        handle = InjectionHandle(stack, address_family, flags)
        stack.handles.append(handle)
        return handle

    def destroy_handle(self, handle: Any) -> None:
        """FwpsInjectionHandleDestroy0: OPEN → CLOSING (new injections fail with
        STATUS_FWP_INJECT_HANDLE_CLOSING, in-flight ones still complete) → DESTROYED, returning
        only after the last completion of the handle ran (injection.md §2.2)."""
        stack = self.stack
        if not isinstance(handle, InjectionHandle) or handle.stack is not stack:
            raise _state("not an injection handle of this stack", S.STATUS_INVALID_HANDLE)
        if handle.state is HandleState.DESTROYED:
            raise _state("the injection handle was already destroyed", S.STATUS_INVALID_HANDLE)
        if handle.state is HandleState.CLOSING:
            raise _state(
                "the injection handle is being destroyed", S.STATUS_FWP_INJECT_HANDLE_CLOSING
            )
        handle.state = HandleState.CLOSING
        errors: list[BaseException] = []
        try:
            for _ in range(1_000_000):
                stack._poll()
                if handle.in_flight == 0:
                    break
                try:
                    ran = stack.dispatcher.run(owner=handle)
                except Exception as e:  # noqa: BLE001 - a completion raised; go on draining
                    errors.extend(getattr(e, "errors", [e]))
                    ran = 1
                if handle.in_flight == 0:
                    break
                if ran == 0:
                    stack._poll()
                    if stack.dispatcher.pending(handle) == 0 and handle.in_flight:
                        stack.contracts.violation(
                            "destroy-would-hang",
                            f"FwpsInjectionHandleDestroy0 would wait forever: {handle.in_flight} "
                            "injection(s) of this handle cannot complete because their NBLs still "
                            "have clones or references held by a callout",
                        )
                        return
        finally:
            if handle.in_flight == 0:
                handle.state = HandleState.DESTROYED
        if errors:
            first = errors[0]
            first.errors = errors  # type: ignore[attr-defined]
            raise first

    def query(self, handle: Any, nbl: Any) -> tuple[FWPS_PACKET_INJECTION_STATE, Any]:
        if not isinstance(handle, InjectionHandle):
            raise _state("injectionHandle is not an injection handle", S.STATUS_INVALID_HANDLE)
        if nbl is None:
            raise _param("netBufferList is NULL", S.STATUS_INVALID_PARAMETER)
        return query_state(handle, nbl)

    # -- the common prologue --

    def _begin(
        self, function: str, handle: Any, type_bit: int, *, l2: bool = False
    ) -> InjectionHandle:
        stack = self.stack
        if not isinstance(handle, InjectionHandle) or handle.stack is not stack:
            raise _state(
                f"{function}: injectionHandle is not a handle of this stack",
                S.STATUS_INVALID_HANDLE,
            )
        if handle.state is HandleState.DESTROYED:
            raise _state(f"{function}: the injection handle was destroyed", S.STATUS_INVALID_HANDLE)
        if handle.state is HandleState.CLOSING:
            raise _state(
                f"{function}: the injection handle is being closed",
                S.STATUS_FWP_INJECT_HANDLE_CLOSING,
            )
        if not (stack.l2_ready if l2 else stack.tcpip_ready):
            what = "the MAC layer" if l2 else "the TCP/IP stack"
            raise _state(f"{function}: {what} is not ready", S.STATUS_FWP_TCPIP_NOT_READY)
        if not handle.allows(type_bit):
            raise _state(
                f"{function}: the handle was created with flags {handle.flags:#x}, without the "
                f"injection type this function needs ({type_bit:#x})",
                S.STATUS_FWP_INJECT_HANDLE_STALE,
            )
        return handle

    def _require_nbl(self, function: str, nbl: Any) -> NetBufferList:
        if nbl is None:
            raise _param(f"{function}: netBufferList is NULL", S.STATUS_FWP_NULL_POINTER)
        if not isinstance(nbl, NetBufferList):
            raise _param(f"{function}: netBufferList is not a NET_BUFFER_LIST")
        if nbl.FirstNetBuffer is None:
            raise _param(f"{function}: the NET_BUFFER_LIST has no NET_BUFFER")
        return nbl

    def _require_completion(self, function: str, fn: Any) -> None:
        if fn is None:
            raise _param(f"{function}: completionFn is NULL", S.STATUS_FWP_NULL_POINTER)
        if not callable(fn):
            raise _param(f"{function}: completionFn is not callable")

    def _reserved(self, function: str, name: str, value: Any, allowed: int = 0) -> None:
        bad = value is not None and value != 0 if name == "reserved" else bool(value & ~allowed)
        if bad:
            message = f"{function}: {name} is reserved and must be {'NULL' if name == 'reserved' else 0} (got {value!r})"
            self.stack.contracts.violation("reserved-flags", message, record_only=True)
            raise _param(message)

    def _single(self, function: str, nbl: NetBufferList, why: str) -> None:
        if nbl.Next is not None:
            raise _param(f"{function}: netBufferList is a chain of NBLs; {why}")

    def _family(self, function: str, handle: InjectionHandle, af: int) -> None:
        if af not in (AF_INET, AF_INET6):
            raise _param(
                f"{function}: addressFamily must be AF_INET (2) or AF_INET6 (23), not {af}"
            )
        if handle.address_family not in (AF_UNSPEC, af):
            # [emu] (injection.md §2.1 leaves it open): a per-family handle injects its family
            raise _param(
                f"{function}: addressFamily {af} does not match the handle's family "
                f"{handle.address_family}"
            )

    def _ip_start(self, function: str, nbl: NetBufferList, af: int) -> None:
        """Cheap structural check: the NBL must begin with an IP header of the family."""
        nb = nbl.FirstNetBuffer
        head = nb.tobytes()[:1] if nb.DataLength else b""
        want = 4 if af == AF_INET else 6
        if not head or head[0] >> 4 != want:
            got = head[0] >> 4 if head else "nothing"
            raise _param(
                f"{function}: the NET_BUFFER_LIST must begin with an IPv{want} header "
                f"(address family {af}); its data starts with version {got}"
            )

    def _tcp_inline(self, function: str, is_tcp: bool) -> None:
        layers = self.stack._classify_layers
        if is_tcp and layers and layers[-1] in TCP_LOCKED_LAYERS:
            self.stack.contracts.violation(
                "tcp-inline",
                f"{function} of a TCP packet issued inline from a classifyFn at "
                f"{FWPS_BUILTIN_LAYERS(layers[-1]).name}: TCP must be injected out of band, from "
                "a DPC or worker (R10, injection.md §3.13)",
            )

    def _origin(self) -> str:
        current = getattr(self.stack.filter_engine, "current_callout", None)
        if current is not None:
            try:
                name = current()
            except Exception:  # noqa: BLE001
                name = None
            if name:
                return str(name)
        running = self.stack.dispatcher.running
        if running is not None and running.origin:
            return f"{running.origin} (out of band, from {caller()})"
        return caller()

    # -- accept / process / complete --

    def _accept(
        self,
        function: str,
        handle: InjectionHandle,
        nbls: list[NetBufferList],
        *,
        completion_fn: Callable | None,
        completion_context: Any,
        injection_context: Any,
        params: dict[str, Any],
        process: Callable[[InjectionRecord], int] | None,
        queue: bool = True,
    ) -> list[InjectionRecord]:
        stack = self.stack
        for nbl in nbls:
            if nbl.handle in stack._in_flight:
                stack.contracts.violation(
                    "injected-twice",
                    f"{function}: this NET_BUFFER_LIST is already in flight (injected by "
                    f"{stack._in_flight[nbl.handle].function}, not completed yet)",
                    record_only=True,
                )
                raise _param(f"{function}: the NET_BUFFER_LIST is already in flight")
        origin = self._origin()
        depth = stack.dispatcher.depth + 1
        records = []
        for nbl in nbls:
            push_history(nbl, HistoryEntry(handle.serial, injection_context, origin, function))
            rec = InjectionRecord(
                function=function,
                handle=handle,
                nbl=nbl,
                completion_fn=completion_fn,
                completion_context=completion_context,
                injection_context=injection_context,
                params=params,
                origin=origin,
                depth=depth,
                time_ns=stack.now,
                snapshot=snapshot(nbl) if stack.contracts.enabled else None,
            )
            handle.in_flight += 1
            handle.injections += 1
            stack._in_flight[nbl.handle] = rec
            stack.injections.append(rec)
            self._guard(rec)
            records.append(rec)
            if queue and process is not None:
                stack.dispatcher.queue(
                    partial(self._run, rec, process),
                    owner=handle,
                    depth=depth,
                    label=f"{function} #{next(self._seq)}",
                )
        return records

    def _guard(self, rec: InjectionRecord) -> None:
        """Driver Verifier: freeing an NBL that is in flight is caught at the free."""
        stack = self.stack
        nbl = rec.nbl
        if not stack.contracts.enabled:
            return

        def guarded(name: str) -> Callable:
            real = getattr(type(nbl), name)

            def call(*args: Any, **kwargs: Any) -> Any:
                if nbl.handle in stack._in_flight:
                    stack.contracts.violation(
                        "free-in-flight",
                        f"{name}() of a NET_BUFFER_LIST still in flight: it was injected with "
                        f"{rec.function} and its completion has not run (injection.md §3.3)",
                    )
                    self._abandon(rec, "freed while in flight")
                return real(nbl, *args, **kwargs)

            return call

        nbl.__dict__["free"] = guarded("free")
        nbl.__dict__["free_clone"] = guarded("free_clone")

    @staticmethod
    def _unguard(nbl: NetBufferList) -> None:
        if nbl.alive:
            nbl.__dict__.pop("free", None)
            nbl.__dict__.pop("free_clone", None)

    def _abandon(self, rec: InjectionRecord, outcome: str) -> None:
        """The NBL is gone: the injection ends without completion."""
        stack = self.stack
        if stack._in_flight.pop(rec.nbl.handle, None) is None:
            return
        rec.outcome = outcome
        rec.completed = True
        rec.handle.in_flight -= 1
        self._unguard(rec.nbl)

    def _check_unmodified(self, rec: InjectionRecord, when: str) -> str | None:
        if rec.snapshot is None or not rec.nbl.alive:
            return None
        now = snapshot(rec.nbl)
        if now == rec.snapshot:
            return None
        return (
            f"the NET_BUFFER_LIST injected with {rec.function} was modified {when}: "
            f"{describe_change(rec.snapshot, now)} (it belongs to the stack until its completion, "
            "injection.md §3.3)"
        )

    def _loop_check(self, rec: InjectionRecord) -> InjectionLoopError | None:
        stack = self.stack
        history = history_of(rec.nbl)
        count = max(rec.depth, len(history))
        if count <= stack.max_reinjections:
            return None
        names: dict[str, int] = {}
        for entry in history:
            names[entry.origin] = names.get(entry.origin, 0) + 1
        names[rec.origin] = names.get(rec.origin, 0) + 1
        culprit = max(names, key=lambda k: names[k])
        err = InjectionLoopError(
            f"injection loop: {culprit} re-injected the same packet {count} times "
            f"(bound: stack.max_reinjections = {stack.max_reinjections}); its classifyFn must "
            "call FwpsQueryPacketInjectionState0 and permit packets INJECTED_BY_SELF / "
            "PREVIOUSLY_INJECTED_BY_SELF (R2, B1)",
            S.STATUS_HOPLIMIT_EXCEEDED,
        )
        err.callout = culprit  # type: ignore[attr-defined]
        err.count = count  # type: ignore[attr-defined]
        err.handle = rec.handle  # type: ignore[attr-defined]
        return err

    def _run(self, rec: InjectionRecord, process: Callable[[InjectionRecord], int]) -> None:
        stack = self.stack
        nbl = rec.nbl
        if not nbl.alive:
            self._abandon(rec, "freed while in flight")
            stack.contracts.violation(
                "free-in-flight",
                f"the NET_BUFFER_LIST injected with {rec.function} was freed before the stack "
                "processed it (injection.md §3.3)",
            )
            return
        changed = self._check_unmodified(rec, "before the stack processed it")
        if changed:
            rec.snapshot = snapshot(nbl)
        loop = self._loop_check(rec)
        error: BaseException | None = None
        if loop is not None:
            stack.loop_errors.append(loop)
            rec.outcome = "loop"
            status = S.STATUS_HOPLIMIT_EXCEEDED
            if stack.loop_policy == "raise":
                error = loop
        else:
            try:
                status = process(rec)
            except Exception as e:  # noqa: BLE001 - a callout raised: complete, then report
                status = S.STATUS_UNSUCCESSFUL
                rec.outcome = "error"
                error = e
        self._finish(rec, status)
        if changed:
            stack.contracts.violation("modified-in-flight", changed)
        if error is not None:
            raise error

    def _finish(self, rec: InjectionRecord, status: int) -> None:
        """Completes now, or once the NBL's clones are freed and references released."""
        rec.status = int(status)
        nbl = rec.nbl
        if nbl.alive and (nbl.ChildRefCount or nbl.references):
            self.stack._park(nbl, lambda: self._queue_completion(rec))
        else:
            self._complete(rec)

    def _queue_completion(self, rec: InjectionRecord) -> None:
        self.stack.dispatcher.queue(
            partial(self._complete, rec),
            owner=rec.handle,
            depth=0,
            label=f"{rec.function} completion",
        )

    def _complete(self, rec: InjectionRecord) -> None:
        stack = self.stack
        nbl = rec.nbl
        if rec.completed:
            return
        if not nbl.alive:
            self._abandon(rec, "freed while in flight")
            stack.contracts.violation(
                "free-in-flight",
                f"the NET_BUFFER_LIST injected with {rec.function} was freed before its completion",
            )
            return
        pending = rec.params.pop("restore", None)
        if pending is not None:
            stack.paths.restore(pending)
        changed = self._check_unmodified(rec, "while the stack owned it")
        stack._in_flight.pop(nbl.handle, None)
        self._unguard(nbl)
        nbl.Status = int(rec.status if rec.status is not None else S.STATUS_SUCCESS)
        rec.completed = True
        rec.handle.in_flight -= 1
        saved = stack.dispatcher.depth
        stack.dispatcher.depth = 0  # work a completion queues is not a re-indication
        try:
            if rec.completion_fn is not None:
                rec.completion_called = True
                rec.completion_fn(rec.completion_context, nbl, True)
            elif nbl.handle in stack._own:
                stack._release(nbl)
        finally:
            stack.dispatcher.depth = saved
            if rec.handle.state is HandleState.CLOSING and rec.handle.in_flight == 0:
                pass  # FwpsInjectionHandleDestroy0 finishes the transition
        if changed:
            stack.contracts.violation("modified-in-flight", changed)

    def _drive(self, rec: InjectionRecord, pkt: Pkt, step: Callable[[Pkt], None]) -> int:
        paths = self.stack.paths
        try:
            step(pkt)
            rec.outcome = pkt.outcome or "delivered"
            return S.STATUS_SUCCESS
        except Dropped as d:
            rec.outcome = d.outcome
            rec.params["reason"] = d.reason
            return d.status
        finally:
            if pkt.absorbed_layer is not None:
                rec.params["restore"] = pkt  # put back at completion, once the absorber let go
            else:
                paths.restore(pkt)

    # ============================================================== the inject functions

    def forward(
        self,
        handle: Any,
        injection_context: Any,
        flags: int,
        address_family: int,
        compartment_id: int,
        interface_index: int,
        nbl: Any,
        completion_fn: Any,
        completion_context: Any,
    ) -> None:
        fn = "FwpsInjectForwardAsync0"
        h = self._begin(fn, handle, FWPS_INJECTION_TYPE_FORWARD)
        nbl = self._require_nbl(fn, nbl)
        self._require_completion(fn, completion_fn)
        self._reserved(fn, "flags", flags)
        self._family(fn, h, address_family)
        self._single(
            fn,
            nbl,
            "a fragment group must be reassembled into one NBL before forward injection "
            "(FwpsReassembleForwardFragmentGroup0; seed 001, B14)",
        )
        self._one_nb(fn, nbl)
        self._ip_start(fn, nbl, address_family)
        params = dict(
            address_family=address_family,
            compartment_id=compartment_id,
            interface_index=interface_index,
        )
        self._accept(
            fn,
            h,
            [nbl],
            completion_fn=completion_fn,
            completion_context=completion_context,
            injection_context=injection_context,
            params=params,
            process=self._p_forward,
        )

    def _one_nb(self, fn: str, nbl: NetBufferList) -> None:
        if nbl.FirstNetBuffer.Next is not None:
            raise _param(
                f"{fn}: [emu] a receive-path or forward injection carries one packet: the NBL "
                "must hold exactly one NET_BUFFER (split it with nbl.split())"
            )

    def network_receive(
        self,
        handle: Any,
        injection_context: Any,
        flags: int,
        compartment_id: int,
        interface_index: int,
        sub_interface_index: int,
        nbl: Any,
        completion_fn: Any,
        completion_context: Any,
    ) -> None:
        fn = "FwpsInjectNetworkReceiveAsync0"
        h = self._begin(fn, handle, FWPS_INJECTION_TYPE_NETWORK)
        nbl = self._require_nbl(fn, nbl)
        self._require_completion(fn, completion_fn)
        self._reserved(fn, "flags", flags)
        self._single(fn, nbl, "inject one NBL per call")
        self._one_nb(fn, nbl)
        self._ip_start(fn, nbl, h.address_family)
        params = dict(
            address_family=h.address_family,
            compartment_id=compartment_id,
            interface_index=interface_index,
            sub_interface_index=sub_interface_index,
        )
        self._accept(
            fn,
            h,
            [nbl],
            completion_fn=completion_fn,
            completion_context=completion_context,
            injection_context=injection_context,
            params=params,
            process=partial(self._p_receive, bypass_ipsec=False),
        )

    def network_send(
        self,
        handle: Any,
        injection_context: Any,
        flags: int,
        compartment_id: int,
        nbl: Any,
        completion_fn: Any,
        completion_context: Any,
    ) -> None:
        fn = "FwpsInjectNetworkSendAsync0"
        h = self._begin(fn, handle, FWPS_INJECTION_TYPE_NETWORK)
        nbl = self._require_nbl(fn, nbl)
        self._require_completion(fn, completion_fn)
        # FWPS_SEND_INJECT_PRESERVE_IPID is declared for this function (Win8+; injection.md §1.5)
        self._reserved(fn, "flags", flags, allowed=FWPS_SEND_INJECT_PRESERVE_IPID)
        self._single(fn, nbl, "inject one NBL per call")
        for nb in nbl.net_buffers:
            head = nb.tobytes()[:1]
            want = 4 if h.address_family == AF_INET else 6
            if not head or head[0] >> 4 != want:
                raise _param(f"{fn}: every NET_BUFFER must begin with an IPv{want} header")
        params = dict(address_family=h.address_family, compartment_id=compartment_id, flags=flags)
        self._accept(
            fn,
            h,
            [nbl],
            completion_fn=completion_fn,
            completion_context=completion_context,
            injection_context=injection_context,
            params=params,
            process=self._p_network_send,
        )

    def transport_receive(
        self,
        handle: Any,
        injection_context: Any,
        reserved: Any,
        flags: int,
        address_family: int,
        compartment_id: int,
        interface_index: int,
        sub_interface_index: int,
        nbl: Any,
        completion_fn: Any,
        completion_context: Any,
    ) -> None:
        fn = "FwpsInjectTransportReceiveAsync0"
        h = self._begin(fn, handle, FWPS_INJECTION_TYPE_TRANSPORT)
        nbl = self._require_nbl(fn, nbl)
        self._require_completion(fn, completion_fn)
        self._reserved(fn, "reserved", reserved)
        self._reserved(fn, "flags", flags)
        self._family(fn, h, address_family)
        self._single(fn, nbl, "inject one NBL per call")
        self._one_nb(fn, nbl)
        self._ip_start(fn, nbl, address_family)
        self._tcp_inline(fn, self._is_tcp_ip(nbl))
        params = dict(
            address_family=address_family,
            compartment_id=compartment_id,
            interface_index=interface_index,
            sub_interface_index=sub_interface_index,
        )
        self._accept(
            fn,
            h,
            [nbl],
            completion_fn=completion_fn,
            completion_context=completion_context,
            injection_context=injection_context,
            params=params,
            process=partial(self._p_receive, bypass_ipsec=True),
        )

    @staticmethod
    def _is_tcp_ip(nbl: NetBufferList) -> bool:
        try:
            return IP.parse_ip(nbl.FirstNetBuffer.tobytes()).protocol == IP.IPPROTO_TCP
        except MalformedPacketError:
            return False

    def transport_send(
        self,
        handle: Any,
        injection_context: Any,
        endpoint_handle: int,
        flags: int,
        send_args: Any,
        address_family: int,
        compartment_id: int,
        nbl: Any,
        completion_fn: Any,
        completion_context: Any,
        *,
        version: int = 0,
    ) -> None:
        fn = f"FwpsInjectTransportSendAsync{version}"
        stack = self.stack
        h = self._begin(fn, handle, FWPS_INJECTION_TYPE_TRANSPORT)
        nbl = self._require_nbl(fn, nbl)
        self._require_completion(fn, completion_fn)
        self._reserved(fn, "flags", flags)
        self._family(fn, h, address_family)
        self._single(fn, nbl, "inject one NBL per call")
        header_include = None
        if send_args is not None:
            if not isinstance(send_args, FWPS_TRANSPORT_SEND_PARAMS0):
                raise _param(f"{fn}: sendArgs must be a FWPS_TRANSPORT_SEND_PARAMS0/1")
            if send_args.remoteAddress is None:
                raise _param(f"{fn}: sendArgs.remoteAddress is NULL", S.STATUS_FWP_NULL_POINTER)
            want = 4 if address_family == AF_INET else 16
            if len(bytes(send_args.remoteAddress)) != want:
                raise _param(
                    f"{fn}: sendArgs.remoteAddress must hold {want} bytes (network order) for "
                    f"address family {address_family}, not {len(bytes(send_args.remoteAddress))}"
                )
            if version >= 1 and isinstance(send_args, FWPS_TRANSPORT_SEND_PARAMS1):
                hih = send_args.headerIncludeHeader
                if hih is not None and send_args.headerIncludeHeaderLength:
                    header_include = bytes(hih)[: send_args.headerIncludeHeaderLength]
                    if len(header_include) != send_args.headerIncludeHeaderLength:
                        raise _param(f"{fn}: headerIncludeHeaderLength is longer than the header")
            raw = header_include is not None
        else:
            raw = True
            self._ip_start(fn, nbl, address_family)
        if raw and nbl.FirstNetBuffer.Next is not None:
            raise _param(
                f"{fn}: a raw send (IP header in the data or headerIncludeHeader) must carry "
                f"exactly one NET_BUFFER; this NBL has {len(nbl.net_buffers)} — split it into a "
                "chain of single-NB NBLs first (nbl.split(), seed 002, B23)"
            )
        endpoint = stack.endpoints.get(endpoint_handle)
        if send_args is None:
            is_tcp = self._is_tcp_ip(nbl)
        else:
            is_tcp = endpoint is not None and endpoint.protocol == IP.IPPROTO_TCP
        self._tcp_inline(fn, is_tcp)
        params = dict(
            address_family=address_family,
            compartment_id=compartment_id,
            endpoint_handle=endpoint_handle,
            send_args=send_args,  # the struct as passed; its buffers are read at send time (R8)
            remote_scope_id=send_args.remoteScopeId if send_args is not None else None,
            control_data=bytes(send_args.controlData)
            if send_args is not None and send_args.controlData
            else None,
            header_include=header_include,
        )
        self._accept(
            fn,
            h,
            [nbl],
            completion_fn=completion_fn,
            completion_context=completion_context,
            injection_context=injection_context,
            params=params,
            process=self._p_transport_send,
        )

    def stream(
        self,
        handle: Any,
        injection_context: Any,
        flags: int,
        flow_id: int,
        callout_id: int,
        layer_id: int,
        stream_flags: int,
        nbl: Any,
        data_length: int | None,
        completion_fn: Any,
        completion_context: Any,
    ) -> None:
        fn = "FwpsStreamInjectAsync0"
        stack = self.stack
        h = self._begin(fn, handle, FWPS_INJECTION_TYPE_STREAM)
        disconnect = bool(stream_flags & DISCONNECT)
        if nbl is None and not disconnect:
            raise _param(
                f"{fn}: netBufferList may be NULL only with FWPS_STREAM_FLAG_RECEIVE_DISCONNECT "
                "or FWPS_STREAM_FLAG_SEND_DISCONNECT (a FIN-only injection)",
                S.STATUS_FWP_NULL_POINTER,
            )
        if nbl is not None and not isinstance(nbl, NetBufferList):
            raise _param(f"{fn}: netBufferList is not a NET_BUFFER_LIST")
        self._require_completion(fn, completion_fn)
        self._reserved(fn, "flags", flags)
        if layer_id not in STREAM_LAYERS:
            raise _param(
                f"{fn}: layerId must be FWPS_LAYER_STREAM_V4 (20) or _V6 (22), not {layer_id}"
            )
        self._check_stream_flags(fn, stream_flags)
        af = AF_INET if layer_id == STREAM_LAYERS[0] else AF_INET6
        if h.address_family not in (AF_UNSPEC, af):
            raise _param(
                f"{fn}: layer {layer_id} does not match the handle's family {h.address_family}"
            )
        flow = stack.flows.get(flow_id)
        if flow is None:
            raise _param(
                f"{fn}: flowId {flow_id:#x} is not a TCP flow of this stack (unconfirmed code)"
            )
        if flow.address_family != af:
            raise _param(
                f"{fn}: flowId {flow_id:#x} is an address family {flow.address_family} flow, layerId {layer_id} is not"
            )
        knows = getattr(stack.filter_engine, "knows_callout", None)
        if knows is not None and knows(callout_id, layer_id) is False:
            raise _param(f"{fn}: calloutId {callout_id} is no stream callout at layer {layer_id}")
        nbls = _nbl_chain(nbl) if nbl is not None else []
        total = sum(nb.DataLength for n in nbls for nb in n.net_buffers)
        if data_length is None:
            data_length = total
        if data_length != total:
            raise _param(
                f"{fn}: dataLength {data_length} != {total} bytes in the NBL chain ([emu]; "
                "injection.md §4.6 leaves a mismatch undocumented)"
            )
        direction = INBOUND if stream_flags & FWPS_STREAM_FLAG_RECEIVE else OUTBOUND
        params = dict(
            flow_id=flow_id,
            callout_id=callout_id,
            layer_id=layer_id,
            stream_flags=stream_flags,
            data_length=data_length,
            direction=direction,
        )
        inline = flow.classifying.get(direction, 0) > 0
        if not nbls:  # FIN-only: no completion will ever be called (injection.md §5)
            fin = partial(self._stream_data, flow, direction, b"", stream_flags, callout_id, None)
            if inline:
                fin()
            else:
                stack.dispatcher.queue(
                    fin, owner=h, depth=stack.dispatcher.depth + 1, label=f"{fn} FIN"
                )
            return
        records = self._accept(
            fn,
            h,
            nbls,
            completion_fn=completion_fn,
            completion_context=completion_context,
            injection_context=injection_context,
            params=params,
            process=None,
            queue=False,
        )
        for i, rec in enumerate(records):
            last = i == len(records) - 1
            rec_flags = stream_flags if last else stream_flags & ~DISCONNECT
            process = partial(
                self._p_stream,
                flow=flow,
                direction=direction,
                flags=rec_flags,
                callout_id=callout_id,
            )
            if inline:
                # inline editing: the bytes go into the stream now, where the callout stands
                # (layers.md §9); the completion still comes from the dispatcher
                status = process(rec)
                stack.dispatcher.queue(
                    partial(self._finish, rec, status), owner=h, depth=0, label=f"{fn} completion"
                )
            else:
                stack.dispatcher.queue(
                    partial(self._run, rec, process),
                    owner=h,
                    depth=rec.depth,
                    label=f"{fn} #{next(self._seq)}",
                )

    @staticmethod
    def _check_stream_flags(fn: str, f: int) -> None:
        if f & (FWPS_STREAM_FLAG_RECEIVE_ABORT | FWPS_STREAM_FLAG_SEND_ABORT):
            raise _param(f"{fn}: the *_ABORT stream flags are indication-only ([emu])")
        if f & ~(RECEIVE_SIDE | SEND_SIDE):
            raise _param(f"{fn}: streamFlags {f:#x} has unknown bits")
        if f & FWPS_STREAM_FLAG_RECEIVE_DISCONNECT and not f & FWPS_STREAM_FLAG_RECEIVE:
            raise _param(
                f"{fn}: FWPS_STREAM_FLAG_RECEIVE_DISCONNECT requires FWPS_STREAM_FLAG_RECEIVE"
            )
        if f & FWPS_STREAM_FLAG_SEND_DISCONNECT and not f & FWPS_STREAM_FLAG_SEND:
            raise _param(f"{fn}: FWPS_STREAM_FLAG_SEND_DISCONNECT requires FWPS_STREAM_FLAG_SEND")
        if f & RECEIVE_SIDE and f & SEND_SIDE:
            raise _param(f"{fn}: streamFlags mixes receive-side and send-side bits ([emu])")
        if not f & (FWPS_STREAM_FLAG_RECEIVE | FWPS_STREAM_FLAG_SEND):
            raise _param(
                f"{fn}: streamFlags needs FWPS_STREAM_FLAG_RECEIVE (inbound) or "
                "FWPS_STREAM_FLAG_SEND (outbound) (B17)"
            )

    def mac(
        self,
        handle: Any,
        injection_context: Any,
        flags: int,
        layer_id: int,
        interface_index: int,
        ndis_port_number: int,
        nbl: Any,
        completion_fn: Any,
        completion_context: Any,
        *,
        send: bool,
    ) -> None:
        fn = "FwpsInjectMacSendAsync0" if send else "FwpsInjectMacReceiveAsync0"
        stack = self.stack
        h = self._begin(fn, handle, FWPS_INJECTION_TYPE_L2, l2=True)
        nbl = self._require_nbl(fn, nbl)
        chain = _nbl_chain(nbl)
        if completion_fn is None:
            # allowed only for the engine's original, unaltered NBLs (injection.md §3.6)
            if any(n.handle not in stack._own for n in chain):
                raise _param(
                    f"{fn}: completionFn may be NULL only when re-injecting the stack's original "
                    "NET_BUFFER_LISTs; it is required for cloned or built ones",
                    S.STATUS_FWP_NULL_POINTER,
                )
        elif not callable(completion_fn):
            raise _param(f"{fn}: completionFn is not callable")
        self._reserved(fn, "flags", flags)
        layers = MAC_SEND_LAYERS if send else MAC_RECEIVE_LAYERS
        if layer_id not in layers:
            names = " or ".join(FWPS_BUILTIN_LAYERS(x).name for x in layers)
            raise _param(f"{fn}: layerId must be {names}, not {layer_id}")
        for i, n in enumerate(chain):
            if n.FirstNetBuffer is None:
                raise _param(f"{fn}: NBL {i} of the chain has no NET_BUFFER")
            for nb in n.net_buffers:
                problem = _not_a_frame(nb.tobytes())
                if problem:
                    kind = "an Ethernet" if layer_id in (56, 57) else "a MAC"
                    raise _param(
                        f"{fn}: the NET_BUFFER_LIST must begin with {kind} header at layer "
                        f"{FWPS_BUILTIN_LAYERS(layer_id).name}: {problem}"
                    )
        params = dict(
            layer_id=layer_id, interface_index=interface_index, ndis_port_number=ndis_port_number
        )
        process = self._p_mac_send if send else self._p_mac_receive
        self._accept(
            fn,
            h,
            chain,
            completion_fn=completion_fn,
            completion_context=completion_context,
            injection_context=injection_context,
            params=params,
            process=process,
        )

    def vswitch_ingress(
        self,
        handle: Any,
        injection_context: Any,
        flags: int,
        reserved: Any,
        vswitch_id: Any,
        source_port_id: int,
        source_nic_index: int,
        nbl: Any,
        completion_fn: Any,
        completion_context: Any,
    ) -> None:
        fn = "FwpsInjectvSwitchEthernetIngressAsync0"
        stack = self.stack
        h = self._begin(fn, handle, FWPS_INJECTION_TYPE_L2, l2=True)
        nbl = self._require_nbl(fn, nbl)
        chain = _nbl_chain(nbl)
        if vswitch_id is None:
            raise _param(f"{fn}: vSwitchId is NULL", S.STATUS_FWP_NULL_POINTER)
        if completion_fn is None and any(n.handle not in stack._own for n in chain):
            raise _param(
                f"{fn}: completionFn is required for cloned or built NBLs",
                S.STATUS_FWP_NULL_POINTER,
            )
        if completion_fn is not None and not callable(completion_fn):
            raise _param(f"{fn}: completionFn is not callable")
        self._reserved(fn, "flags", flags)
        self._reserved(fn, "reserved", reserved)
        params = dict(
            vswitch_id=vswitch_id, source_port_id=source_port_id, source_nic_index=source_nic_index
        )
        self._accept(
            fn,
            h,
            chain,
            completion_fn=completion_fn,
            completion_context=completion_context,
            injection_context=injection_context,
            params=params,
            process=self._p_vswitch,
        )

    # ============================================================== processing (dispatcher)

    def _interface(self, rec: InjectionRecord, index: int, compartment_id: int) -> Any:
        stack = self.stack
        iface = stack.interfaces.get(index)
        if iface is None or not iface.up:
            raise Dropped(
                "failed", S.STATUS_INVALID_PARAMETER, f"interface {index} does not exist or is down"
            )
        if compartment_id and compartment_id != iface.compartment_id:
            raise Dropped(
                "failed",
                S.STATUS_INVALID_PARAMETER,
                f"interface {index} is in compartment {iface.compartment_id}, not {compartment_id}",
            )
        return iface

    def _p_receive(self, rec: InjectionRecord, *, bypass_ipsec: bool) -> int:
        p = rec.params
        pkt = Pkt(
            rec.nbl,
            p["address_family"],
            INBOUND,
            rec=rec,
            sub_interface_index=p["sub_interface_index"],
            ipsec_bypass=bypass_ipsec,
        )

        def step(pkt: Pkt) -> None:
            pkt.interface = self._interface(rec, p["interface_index"], p["compartment_id"])
            self.stack.paths.receive_ip(pkt)

        return self._drive(rec, pkt, step)

    def _p_forward(self, rec: InjectionRecord) -> int:
        stack = self.stack
        p = rec.params
        pkt = Pkt(
            rec.nbl, p["address_family"], OUTBOUND, rec=rec, may_fragment=False, classify_mac=False
        )

        def step(pkt: Pkt) -> None:
            iface = self._interface(rec, p["interface_index"], p["compartment_id"])
            pkt.interface = iface
            pkt.compartment_id = iface.compartment_id
            ip = stack.paths.parse_ip_of(pkt)
            if stack._is_local(ip.dst, iface.compartment_id, None) or stack._is_local(
                ip.src, iface.compartment_id, None
            ):
                # B13 / S-27: weak-host traffic must use network receive / send injection
                raise Dropped(
                    "failed",
                    S.STATUS_INVALID_PARAMETER,
                    "forward injection of a locally sourced or destined packet (weak host)",
                )
            if len(pkt.raw_ip) > iface.mtu:
                raise Dropped(
                    "failed",
                    S.STATUS_INVALID_BUFFER_SIZE,
                    f"{len(pkt.raw_ip)} bytes > MTU {iface.mtu}",
                )
            # not indicated to any WFP layer, never reclassified (seed 001)
            stack.paths.emit_nbl(pkt, iface, classify_mac=False)
            pkt.outcome = "forwarded"

        return self._drive(rec, pkt, step)

    def _p_network_send(self, rec: InjectionRecord) -> int:
        stack = self.stack
        p = rec.params
        pkt = Pkt(
            rec.nbl,
            p["address_family"],
            OUTBOUND,
            rec=rec,
            may_fragment=False,
            compartment_id=p["compartment_id"] or 1,
        )

        def step(pkt: Pkt) -> None:
            ip = stack.paths.parse_ip_of(pkt)
            if not stack._is_local(ip.src, pkt.compartment_id, None) and not ip.src == bytes(
                len(ip.src)
            ):
                # a non-local source goes to the forwarding layer (Packet Inspection Points doc)
                route = stack._route(ip.dst, pkt.compartment_id)
                if route is None:
                    raise Dropped("failed", S.STATUS_NETWORK_UNREACHABLE, "no route")
                pkt.interface = route[0]
                stack.paths._ipforward(pkt, None, route[0], FWP_OUTBOUND_PASS_THRU)
                if len(pkt.raw_ip) > route[0].mtu:
                    raise Dropped("failed", S.STATUS_INVALID_BUFFER_SIZE, "larger than the MTU")
                stack.paths.emit_nbl(pkt, route[0], classify_mac=True)
                pkt.outcome = "forwarded"
                return
            try:
                pkt.tp = IP.parse_transport(ip.protocol, pkt.raw_ip[ip.header_length :])
            except MalformedPacketError:
                pkt.tp = None
            stack.paths.send_ip(pkt)

        return self._drive(rec, pkt, step)

    def _p_transport_send(self, rec: InjectionRecord) -> int:
        stack = self.stack
        p = rec.params
        af = p["address_family"]
        pkt = Pkt(
            rec.nbl,
            af,
            OUTBOUND,
            rec=rec,
            remote_scope_id=p["remote_scope_id"],
            control_data=p["control_data"],
        )

        def step(pkt: Pkt) -> None:
            endpoint = stack.endpoints.get(p["endpoint_handle"])
            send_args = p["send_args"]
            if endpoint is None or endpoint.closed:
                if send_args is not None or p["endpoint_handle"]:
                    raise Dropped(
                        "failed",
                        S.STATUS_INVALID_HANDLE,
                        f"endpointHandle {p['endpoint_handle']:#x} is not an open endpoint "
                        "(closed before the send ran?) [emu status]",
                    )
            if endpoint is not None and endpoint.address_family != af:
                raise Dropped("failed", S.STATUS_INVALID_PARAMETER, "endpoint family mismatch")
            compartment = p["compartment_id"] or (endpoint.compartment_id if endpoint else 1)
            pkt.compartment_id = compartment
            if send_args is None:  # raw send: the NBL starts at the IP header
                ip = stack.paths.parse_ip_of(pkt)
                pkt.header_include = pkt.raw_ip[: ip.header_length]
                pkt.header_in_data = True
                pkt.may_fragment = True
                if endpoint is None:
                    endpoint = stack._raw_endpoint(af, ip.protocol, compartment)
                pkt.endpoint = endpoint
                pkt.remote = (ip.dst, 0)
                pkt.local_address = ip.src
                stack.paths.move(pkt, ip.header_length)
                try:
                    pkt.tp = IP.parse_transport(ip.protocol, pkt.raw_ip[ip.header_length :])
                except MalformedPacketError:
                    pkt.tp = IP.TransportInfo(ip.protocol, 0)
                pkt.remote = (ip.dst, pkt.tp.dst_port if ip.protocol in (6, 17) else 0)
                stack.paths.send_transport(pkt)
                return
            remote = bytes(send_args.remoteAddress)  # read now: R8, the buffer must still hold it
            if len(remote) != (4 if af == AF_INET else 16):
                raise Dropped("failed", S.STATUS_INVALID_PARAMETER, "remoteAddress changed length")
            pkt.endpoint = endpoint
            pkt.header_include = p["header_include"]
            if pkt.header_include is not None:
                try:
                    hip = IP.parse_ip(pkt.header_include + bytes(8))
                    pkt.local_address = hip.src
                except MalformedPacketError:
                    pass
            try:
                tp = IP.parse_transport(endpoint.protocol, rec.nbl.FirstNetBuffer.tobytes()[:60])
            except MalformedPacketError:
                tp = IP.TransportInfo(endpoint.protocol, 0)
            pkt.tp = tp
            pkt.remote = (remote, tp.dst_port)
            stack.paths.send_transport(pkt)

        return self._drive(rec, pkt, step)

    def _p_stream(
        self, rec: InjectionRecord, *, flow: Any, direction: int, flags: int, callout_id: int
    ) -> int:
        if flow.closed:
            rec.outcome = "failed"
            return S.STATUS_CONNECTION_ABORTED
        data = b"".join(nb.tobytes() for nb in rec.nbl.net_buffers)
        self.stack.paths.stream_indicate(
            flow, direction, data, flags, injected=True, callout_id=callout_id, rec=rec
        )
        rec.outcome = "delivered"
        return S.STATUS_SUCCESS

    def _stream_data(
        self,
        flow: Any,
        direction: int,
        data: bytes,
        flags: int,
        callout_id: int,
        rec: InjectionRecord | None,
    ) -> None:
        if not flow.closed:
            self.stack.paths.stream_indicate(
                flow, direction, data, flags, injected=True, callout_id=callout_id, rec=rec
            )

    def _p_mac_receive(self, rec: InjectionRecord) -> int:
        stack = self.stack
        p = rec.params
        pkt = Pkt(rec.nbl, AF_INET, INBOUND, rec=rec)

        def step(pkt: Pkt) -> None:
            iface = self._interface(rec, p["interface_index"], 0)
            if not iface.ethernet:
                raise Dropped(
                    "failed", S.STATUS_INVALID_PARAMETER, "the interface has no MAC layer"
                )
            pkt.interface = iface
            pkt.compartment_id = iface.compartment_id
            eth = IP.parse_ethernet(rec.nbl.FirstNetBuffer.tobytes()[:18])
            paths = stack.paths
            if p["layer_id"] == int(L2.FWPS_LAYER_INBOUND_MAC_FRAME_NATIVE):
                paths.check(
                    pkt,
                    int(L2.FWPS_LAYER_INBOUND_MAC_FRAME_NATIVE),
                    lambda: paths.mac_values(pkt, eth, INBOUND),
                    lambda: paths.l2_meta(0),
                )
            if eth.ethertype not in (IP.ETHERTYPE_IPV4, IP.ETHERTYPE_IPV6):
                raise Dropped("dropped", S.STATUS_SUCCESS, "non-IP frame")
            paths.move(pkt, eth.header_length)
            paths.check(
                pkt,
                int(L2.FWPS_LAYER_INBOUND_MAC_FRAME_ETHERNET),
                lambda: paths.mac_values(pkt, eth, INBOUND),
                lambda: paths.l2_meta(eth.header_length),
            )
            paths.receive_ip(pkt)

        return self._drive(rec, pkt, step)

    def _p_mac_send(self, rec: InjectionRecord) -> int:
        stack = self.stack
        p = rec.params
        pkt = Pkt(rec.nbl, AF_INET, OUTBOUND, rec=rec)

        def step(pkt: Pkt) -> None:
            iface = self._interface(rec, p["interface_index"], 0)
            if not iface.ethernet:
                raise Dropped(
                    "failed", S.STATUS_INVALID_PARAMETER, "the interface has no MAC layer"
                )
            pkt.interface = iface
            pkt.compartment_id = iface.compartment_id
            frame = rec.nbl.FirstNetBuffer.tobytes()
            eth = IP.parse_ethernet(frame[:18])
            if len(frame) - eth.header_length > iface.mtu:
                raise Dropped("failed", S.STATUS_INVALID_BUFFER_SIZE, "frame larger than the MTU")
            paths = stack.paths
            if p["layer_id"] == int(L2.FWPS_LAYER_OUTBOUND_MAC_FRAME_ETHERNET):
                paths.check(
                    pkt,
                    int(L2.FWPS_LAYER_OUTBOUND_MAC_FRAME_ETHERNET),
                    lambda: paths.mac_values(pkt, eth, OUTBOUND),
                    lambda: paths.l2_meta(0),
                )
            paths.check(
                pkt,
                int(L2.FWPS_LAYER_OUTBOUND_MAC_FRAME_NATIVE),
                lambda: paths.mac_values(pkt, eth, OUTBOUND),
                lambda: paths.l2_meta(0),
            )
            for nb in rec.nbl.net_buffers:
                f = nb.tobytes()
                e = IP.parse_ethernet(f[:18])
                pkt.af = AF_INET6 if e.ethertype == IP.ETHERTYPE_IPV6 else AF_INET
                stack._wire_out(pkt, iface, f, f, data=f)
            pkt.outcome = "sent"

        return self._drive(rec, pkt, step)

    def _p_vswitch(self, rec: InjectionRecord) -> int:
        """[emu] no Hyper-V switch is modelled: the frame is recorded as delivered to the vSwitch
        ingress (no vSwitch layer is classified)."""
        stack = self.stack
        data = rec.nbl.FirstNetBuffer.tobytes()
        stack._record(
            Delivered(
                rec.function,
                data,
                AF_UNSPEC,
                0,
                0,
                "vswitch",
                stack.now,
                injection_context=rec.injection_context,
            )
        )
        rec.outcome = "delivered"
        return S.STATUS_SUCCESS


FWP_OUTBOUND_PASS_THRU = 0x00040000

__all__ = [
    "InjectionHandle",
    "HandleState",
    "Injector",
    "HistoryEntry",
    "history_of",
    "query_state",
    "FWPS_TRANSPORT_SEND_PARAMS0",
    "FWPS_TRANSPORT_SEND_PARAMS1",
    "DEFAULT_TYPES",
]
