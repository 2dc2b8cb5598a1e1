"""The stream layer (STREAM_V4 / STREAM_V6, `layers.md §9`, `injection.md §4.6`, `nbl.md §10.5`).

Model. Per flow and per direction the engine keeps a *pipeline*: the matching stream filters
in arbitration order (sublayers by weight, filters by weight). Each filter is a stage with its
own pending bytes. Bytes enter at the top (data the stack indicates) or below an injecting
callout (stream-injected data: never indicated to the injecting callout, only to stream callouts
of lower-weight sublayers), and flow down (the "waterfall" of §7.5: a callout sees bytes only if
every earlier callout let them through; a block removes them for everyone):

* PERMIT passes the first ``countBytesEnforced`` bytes (0 = all) to the next *sublayer*; the
  rest is indicated again at once, same chain, ``dataOffset`` advanced;
* BLOCK removes the first ``countBytesEnforced`` bytes (the callout may stream-inject
  replacements during the same classify: they take the place of the blocked bytes);
* CONTINUE (inspection callouts; CALLOUT_UNKNOWN returning CONTINUE) passes all the indicated
  bytes to the next filter; CALLOUT_TERMINATING returning neither PERMIT nor BLOCK blocks;
* NEED_MORE_DATA holds the bytes and re-indicates them together with later ones once
  ``countBytesRequired`` *additional* bytes arrived (0: any), or at FIN (with
  FWPS_CLASSIFY_OUT_FLAG_NO_MORE_DATA), or when the stage holds the buffer limit (8 MB; with
  FWPS_CLASSIFY_OUT_FLAG_BUFFER_LIMIT_REACHED). NEED_MORE_DATA with either flag set is a
  :class:`ContractViolation`;
* DEFER (inbound only; outbound is a ContractViolation) holds the bytes and everything after them
  until FwpsStreamContinue0, which re-indicates all of it;
* DROP_CONNECTION ends the flow (both directions, held bytes discarded, ``verdict.dropped``);
  ignored from a CALLOUT_INSPECTION filter (§9); honoured from CALLOUT_TERMINATING too, as
  stmedit relies on it (the doc names only CALLOUT_UNKNOWN; unconfirmed) [emu];
* ALLOW_CONNECTION passes the indicated bytes and makes the stage transparent for the rest of
  the flow, both directions.

Also per stage: a filter added after the flow's first indication is skipped unless its callout
has FWP_CALLOUT_FLAG_ALLOW_MID_STREAM_INSPECTION; CONDITIONAL_ON_FLOW callouts need a context on
the flow at this layer; unregistered callouts act as static BLOCK (PERMIT with
PERMIT_IF_CALLOUT_UNREGISTERED; inspection filters skipped); a stage cannot be re-entered while
its callout runs (a :class:`ContractViolation` names the rule). Deleting a filter whose stage
holds or defers data is refused with STATUS_FWP_IN_USE (§9: "not supported").

A FIN (``FWPS_STREAM_FLAG_*_DISCONNECT``) travels as its own indication after any held bytes:
if a stage holds bytes when the FIN reaches it, those bytes are indicated first, alone, with
NO_MORE_DATA; then the FIN indication (its own bytes, possibly none, flags with DISCONNECT, and
NO_MORE_DATA) [emu]. A callout that blocks the FIN (out-of-band pattern) re-injects it later.

``missedBytes`` counts the bytes a higher stage removed since this callout's last call.
``FWPS_RIGHT_ACTION_WRITE`` is always set in the classifyOut of a stream callout (it is
meaningless there, §7.5) and ``actionType`` starts as FWP_ACTION_CONTINUE.

Buffers. A chain passed to :meth:`FilterEngine.stream_classify_nbl` is *borrowed* for the call:
callouts see it zero-copy (``dataOffset`` into the caller's NBL / NB / MDL). Bytes the engine
must keep beyond the call are copied into engine-owned NBLs; an indication that must join
several pieces (accumulated data) is copied into one engine-owned NBL. The seam's
:meth:`FilterEngine.stream_classify` gets bytes and builds an engine-owned NBL (an empty one for
a FIN / RST, so that callouts can clone the FIN indication). Engine NBLs are freed once consumed
and once their clones (FwpsCloneStreamData0) are freed. Callouts' clones of a caller's chain keep
its NBLs' ChildRefCount up: the caller frees those NBLs only when it drops to 0.

Contracts. The stack seam (``wfpsim.stack.seam``)::

    stream_classify(layer_id, inFixedValues, inMetaValues, segment, *, flow_handle, deliver,
                    exclude_callout_id=None, below_sublayer_weight=None) -> StreamVerdict

* ``segment.data`` (bytes), ``segment.flags`` (FWPS_STREAM_FLAG_*: RECEIVE-side bits for inbound
  data or SEND-side bits for outbound, never both; DISCONNECT marks the FIN, which carries no
  data), ``segment.injected`` / ``segment.callout_id`` (FwpsStreamInjectAsync0 data).
* ``deliver(data, flags)`` is called for every run of bytes that passed every stream callout, in
  stream order, *as soon as it passes* (zero or more times per call); ``flags`` has the direction
  bit, and ..._DISCONNECT on the call that releases the FIN (``data`` may then be empty).
* Injected data (``exclude_callout_id``, or ``segment.injected``) is never indicated to the
  injecting callout, only to stream callouts of sublayers weighted below its own (the weight is
  derived from the callout's stage when ``below_sublayer_weight`` is None). A call made from
  inside a stream classifyFn (inline injection) is nested: its bytes are delivered at once, i.e.
  exactly between what the callout permitted before and after.
* Returns :class:`StreamVerdict`: ``drop_connection`` (DROP_CONNECTION honoured: close the flow),
  ``deferred`` (an inbound stage is deferred: stop acknowledging), ``allow_connection`` (every
  callout allowed the flow: no stream classify needed any more), plus ``outputs`` (what was
  delivered), ``fin`` / ``abort``, ``blocked`` (bytes callouts removed), ``held`` (bytes the
  engine keeps for this direction), ``nested``.
* Bytes released outside any stream_classify (FwpsStreamContinue0) go to
  ``stack.stream_deliver(flow_id, flags, data)`` of the attached stack owning the flow; a flow
  dropped outside stream_classify (FwpsFlowAbort0, DROP_CONNECTION during FwpsStreamContinue0)
  is reported with ``stack.abort_flow(flow_id)``; without a stack the verdict goes to
  ``engine.stream_sink`` or ``engine.stream.pending_verdicts``.

The chain form (tests, embedders that own NBLs)::

    stream_classify_nbl(layer_id, inFixedValues, inMetaValues, flow_handle, stream_flags,
                        nbl_chain, data_length, *, deliver=None, exclude_callout_id=None,
                        below_sublayer_weight=None) -> StreamVerdict

takes the first ``data_length`` payload bytes of ``nbl_chain`` (NBs' DataOffset at the payload;
None with ``data_length`` 0 for a FIN without NBL). Without ``deliver`` the bytes are only in
``verdict.outputs``; a nested call without ``deliver`` hands them to the enclosing call.
:meth:`FilterEngine.stream_inject` is the same for data a callout injected (by callout id).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wfpsim._core import NetBufferList
from wfpsim.constants import (
    FWP_ACTION_BLOCK,
    FWP_ACTION_CALLOUT_INSPECTION,
    FWP_ACTION_CALLOUT_TERMINATING,
    FWP_ACTION_CONTINUE,
    FWP_ACTION_PERMIT,
    FWPS_CLASSIFY_OUT_FLAG_BUFFER_LIMIT_REACHED,
    FWPS_CLASSIFY_OUT_FLAG_NO_MORE_DATA,
    FWPS_LAYER_STREAM_V4,
    FWPS_LAYER_STREAM_V6,
    FWPS_RIGHT_ACTION_WRITE,
    FWPS_STREAM_ACTION_ALLOW_CONNECTION,
    FWPS_STREAM_ACTION_DEFER,
    FWPS_STREAM_ACTION_DROP_CONNECTION,
    FWPS_STREAM_ACTION_NEED_MORE_DATA,
    FWPS_STREAM_ACTION_NONE,
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
    ContractViolation,
    InvalidParameterError,
    InvalidStateError,
    MalformedPacketError,
)
from wfpsim.filtering.arbitration import static_decision, unregistered_decision
from wfpsim.fwps_types import (
    FWPS_CLASSIFY_OUT0,
    FWPS_INCOMING_VALUES0,
    FWPS_STREAM_CALLOUT_IO_PACKET0,
    FWPS_STREAM_DATA0,
    FWPS_STREAM_DATA_OFFSET0,
)
from wfpsim.status import NTSTATUS

if TYPE_CHECKING:
    from wfpsim.filtering.callouts import Callout
    from wfpsim.filtering.engine import FilterEngine
    from wfpsim.filtering.filters import Filter, SubLayer

RECEIVE_BITS = (
    FWPS_STREAM_FLAG_RECEIVE
    | FWPS_STREAM_FLAG_RECEIVE_EXPEDITED
    | FWPS_STREAM_FLAG_RECEIVE_DISCONNECT
    | FWPS_STREAM_FLAG_RECEIVE_ABORT
    | FWPS_STREAM_FLAG_RECEIVE_PUSH
)
SEND_BITS = (
    FWPS_STREAM_FLAG_SEND
    | FWPS_STREAM_FLAG_SEND_EXPEDITED
    | FWPS_STREAM_FLAG_SEND_NODELAY
    | FWPS_STREAM_FLAG_SEND_DISCONNECT
    | FWPS_STREAM_FLAG_SEND_ABORT
)
DISCONNECT_BITS = FWPS_STREAM_FLAG_RECEIVE_DISCONNECT | FWPS_STREAM_FLAG_SEND_DISCONNECT
ABORT_BITS = FWPS_STREAM_FLAG_RECEIVE_ABORT | FWPS_STREAM_FLAG_SEND_ABORT
STREAM_LAYERS = frozenset({FWPS_LAYER_STREAM_V4, FWPS_LAYER_STREAM_V6})

#: walk bounds (a chain longer than this is treated as corrupt)
MAX_CHAIN = 1 << 20


def stream_direction(flags: int) -> int:
    """FWPS_STREAM_FLAG_RECEIVE or FWPS_STREAM_FLAG_SEND for a flags word with one side set."""
    recv, send = flags & RECEIVE_BITS, flags & SEND_BITS
    if recv and send:
        raise InvalidParameterError(
            f"stream flags 0x{flags:x} mix RECEIVE-side and SEND-side bits",
            NTSTATUS.STATUS_FWP_INVALID_PARAMETER,
        )
    if not (recv or send):
        raise InvalidParameterError(
            f"stream flags 0x{flags:x} carry no direction (RECEIVE or SEND side)",
            NTSTATUS.STATUS_FWP_INVALID_PARAMETER,
        )
    return FWPS_STREAM_FLAG_RECEIVE if recv else FWPS_STREAM_FLAG_SEND


# ------------------------------------------------------------------------------------------------
# Walking stream data in NBL chains
# ------------------------------------------------------------------------------------------------


def _mdl_at(nb: Any, offset: int) -> tuple[Any, int]:
    """(MDL, offset inside it) of byte `offset` of an NB's used data."""
    mdl, moff = nb.CurrentMdl, nb.CurrentMdlOffset
    remaining = offset
    for _ in range(MAX_CHAIN):
        if mdl is None:
            break
        avail = mdl.ByteCount - moff
        if remaining < avail:
            return mdl, moff + remaining
        remaining -= avail
        mdl, moff = mdl.Next, 0
    raise MalformedPacketError("NET_BUFFER DataLength runs past its MDL chain")


def chain_length(chain: Any) -> int:
    total = 0
    nbl = chain
    for _ in range(MAX_CHAIN):
        if nbl is None:
            return total
        nb = nbl.FirstNetBuffer
        for _ in range(MAX_CHAIN):
            if nb is None:
                break
            total += nb.DataLength
            nb = nb.Next
        nbl = nbl.Next
    raise MalformedPacketError("NET_BUFFER_LIST chain too long (a cycle?)")


def locate(chain: Any, start: int) -> FWPS_STREAM_DATA_OFFSET0:
    """FWPS_STREAM_DATA_OFFSET0 of stream byte `start` of `chain` (NBL, NB, MDL, mdlOffset)."""
    if chain is None:
        return FWPS_STREAM_DATA_OFFSET0(streamDataOffset=start)
    remaining = start
    nbl = chain
    for _ in range(MAX_CHAIN):
        if nbl is None:
            break
        nb = nbl.FirstNetBuffer
        for _ in range(MAX_CHAIN):
            if nb is None:
                break
            length = nb.DataLength
            if remaining < length:
                mdl, moff = _mdl_at(nb, remaining)
                return FWPS_STREAM_DATA_OFFSET0(nbl, nb, mdl, moff, remaining, start)
            remaining -= length
            nb = nb.Next
        nbl = nbl.Next
    # an empty indication (a FIN): the first NB of the chain, at its data start
    nb = chain.FirstNetBuffer
    mdl = None if nb is None else nb.CurrentMdl
    moff = 0 if nb is None else nb.CurrentMdlOffset
    return FWPS_STREAM_DATA_OFFSET0(chain, nb, mdl, moff, 0, start)


def _offset_in_nb(nb: Any, mdl: Any, mdl_offset: int) -> int:
    m, mo = nb.CurrentMdl, nb.CurrentMdlOffset
    before = 0
    for _ in range(MAX_CHAIN):
        if m is None:
            raise InvalidParameterError(
                "dataOffset.mdl is not in dataOffset.netBuffer's MDL chain",
                NTSTATUS.STATUS_INVALID_PARAMETER,
            )
        if m is mdl:
            return before + mdl_offset - mo
        before += m.ByteCount - mo
        m, mo = m.Next, 0
    raise MalformedPacketError("MDL chain too long (a cycle?)")


def _nb_views(nb: Any, skip: int) -> Iterator[memoryview]:
    for view in nb.views():
        if skip >= len(view):
            skip -= len(view)
            continue
        yield view[skip:]
        skip = 0


def iter_stream_data(stream_data: FWPS_STREAM_DATA0) -> Iterator[memoryview]:
    """The indicated bytes, from ``dataOffset`` for ``dataLength`` bytes, as memoryviews."""
    remaining = stream_data.dataLength
    off = stream_data.dataOffset
    if remaining <= 0:
        return
    nbl, nb = off.netBufferList, off.netBuffer
    if nbl is None or nb is None:
        raise InvalidParameterError(
            "FWPS_STREAM_DATA0 with data but no dataOffset.netBufferList / netBuffer",
            NTSTATUS.STATUS_INVALID_PARAMETER,
        )
    skip = _offset_in_nb(nb, off.mdl, off.mdlOffset) if off.mdl is not None else 0
    for _ in range(MAX_CHAIN):
        while nb is not None and remaining > 0:
            for view in _nb_views(nb, skip):
                if len(view) >= remaining:
                    yield view[:remaining]
                    return
                yield view
                remaining -= len(view)
            skip = 0
            nb = nb.Next
        nbl = nbl.Next
        if nbl is None or remaining <= 0:
            break
        nb = nbl.FirstNetBuffer
    if remaining > 0:
        raise InvalidParameterError(
            f"dataLength runs {remaining} bytes past the end of the NBL chain",
            NTSTATUS.STATUS_INVALID_PARAMETER,
        )


def read_range(chain: Any, start: int, length: int) -> bytes:
    if length <= 0:
        return b""
    sd = FWPS_STREAM_DATA0(0, locate(chain, start), length, chain)
    return b"".join(bytes(v) for v in iter_stream_data(sd))


def copy_stream_data_to_buffer(
    stream_data: FWPS_STREAM_DATA0, buffer: Any, bytes_to_copy: int
) -> int:
    """FwpsCopyStreamDataToBuffer0: copies ``min(bytesToCopy, dataLength)`` bytes; returns the
    count. The buffer must hold `bytes_to_copy` bytes (a short buffer is a caller bug)."""
    dest = memoryview(buffer).cast("B")
    if dest.readonly:
        raise InvalidParameterError("buffer must be writable", NTSTATUS.STATUS_INVALID_PARAMETER)
    if bytes_to_copy < 0 or bytes_to_copy > len(dest):
        raise InvalidParameterError(
            f"bytesToCopy {bytes_to_copy} exceeds the {len(dest)}-byte buffer",
            NTSTATUS.STATUS_INVALID_PARAMETER,
        )
    want = min(bytes_to_copy, stream_data.dataLength)
    copied = 0
    if want <= 0:
        return 0
    sd = FWPS_STREAM_DATA0(stream_data.flags, stream_data.dataOffset, want, None)
    for view in iter_stream_data(sd):
        dest[copied : copied + len(view)] = view
        copied += len(view)
    return copied


def clone_stream_data(stream_data: FWPS_STREAM_DATA0) -> NetBufferList | None:
    """FwpsCloneStreamData0: WFP clones (ParentNetBufferList set) of the chain's NBLs that hold
    the indicated bytes, linked by Next, each NB advanced / shortened so that the clone chain
    holds exactly the indicated bytes. A 0-byte indication (FIN) clones its NBL as 0 bytes; no
    chain at all gives None. Raises ResourcesError (clones made so far are freed)."""
    off = stream_data.dataOffset
    first = off.netBufferList or stream_data.netBufferListChain
    if first is None:
        if stream_data.dataLength:
            raise InvalidParameterError(
                "FWPS_STREAM_DATA0 with data but no NBL", NTSTATUS.STATUS_INVALID_PARAMETER
            )
        return None
    remaining = stream_data.dataLength
    if off.netBufferList is None or off.netBuffer is None:
        start_nb, before = first.FirstNetBuffer, 0
    else:
        start_nb = off.netBuffer
        before = _offset_in_nb(start_nb, off.mdl, off.mdlOffset) if off.mdl is not None else 0
    clones: list[NetBufferList] = []
    try:
        nbl = first
        for _ in range(MAX_CHAIN):
            if nbl is None or (remaining <= 0 and clones):
                break
            clone = nbl.clone()
            clones.append(clone)
            started = nbl is not first
            onb, cnb = nbl.FirstNetBuffer, clone.FirstNetBuffer
            for _ in range(MAX_CHAIN):
                if onb is None or cnb is None:
                    break
                length = onb.DataLength
                if started:
                    skip = 0
                elif onb is start_nb:
                    started, skip = True, before
                else:
                    skip = length
                take = max(0, min(length - skip, remaining))
                if skip:
                    cnb.advance(skip)
                if cnb.DataLength != take:
                    cnb.DataLength = take
                remaining -= take
                onb, cnb = onb.Next, cnb.Next
            nbl = nbl.Next
    except Exception:
        for clone in clones:
            clone.free_clone()
        raise
    if remaining > 0:
        for clone in clones:
            clone.free_clone()
        raise InvalidParameterError(
            f"dataLength runs {remaining} bytes past the end of the NBL chain",
            NTSTATUS.STATUS_INVALID_PARAMETER,
        )
    for a, b in zip(clones, clones[1:], strict=False):
        a.Next = b
    return clones[0]


def discard_cloned_stream_data(chain: Any) -> int:
    """FwpsDiscardClonedStreamData0: frees every clone of a FwpsCloneStreamData0 chain."""
    count = 0
    nbl = chain
    for _ in range(MAX_CHAIN):
        if nbl is None:
            return count
        nxt = nbl.Next
        nbl.Next = None
        nbl.free_clone()
        count += 1
        nbl = nxt
    raise MalformedPacketError("cloned stream chain too long (a cycle?)")


# ------------------------------------------------------------------------------------------------
# State
# ------------------------------------------------------------------------------------------------


@dataclass(eq=False)
class _Owned:
    """An engine-owned NBL holding copied stream bytes, shared by the pieces over it."""

    nbl: NetBufferList
    refs: int = 1


@dataclass(eq=False)
class Piece:
    """A run of stream bytes: ``length`` bytes of `chain` from stream offset `start`."""

    chain: Any
    start: int
    length: int
    flags: int
    fin: bool = False
    owned: _Owned | None = None
    skip_callout: int | None = None


@dataclass
class StreamOutput:
    data: bytes
    flags: int


@dataclass
class StreamVerdict:
    """What the stack does after a stream_classify (see the module docstring)."""

    flow_handle: int
    layer_id: int
    direction: int
    outputs: list[StreamOutput] = field(default_factory=list)
    fin: bool = False
    abort: bool = False
    blocked: int = 0
    held: int = 0
    deferred: bool = False
    dropped: bool = False
    allow_connection: bool = False
    nested: bool = False

    @property
    def data(self) -> bytes:
        return b"".join(o.data for o in self.outputs)

    @property
    def drop_connection(self) -> bool:
        """The seam's name for `dropped`: the stack closes the flow."""
        return self.dropped


@dataclass(eq=False)
class _Frame:
    """One stream_classify (or FwpsStreamContinue0) call on a flow direction."""

    deliver: Any = None
    outputs: list[StreamOutput] = field(default_factory=list)
    fin: bool = False
    abort: bool = False
    blocked: int = 0


@dataclass(eq=False)
class Stage:
    filter_id: int
    data: list[Piece] = field(default_factory=list)
    need: int | None = None
    need_base: int = 0
    deferred: bool = False
    deferred_flags: int = 0
    missed: int = 0
    busy: bool = False

    @property
    def held(self) -> int:
        return sum(p.length for p in self.data)


@dataclass(eq=False)
class FlowDir:
    flow_handle: int
    layer_id: int
    direction: int
    stages: dict[int, Stage] = field(default_factory=dict)
    in_fixed: Any = None
    in_meta: Any = None
    fin_in: bool = False
    frames: list[_Frame] = field(default_factory=list)

    def stage(self, filter_id: int) -> Stage:
        st = self.stages.get(filter_id)
        if st is None:
            st = Stage(filter_id)
            self.stages[filter_id] = st
        return st


@dataclass(eq=False)
class StreamFlow:
    flow_handle: int
    layer_id: int
    serial: int
    dirs: dict[int, FlowDir] = field(default_factory=dict)
    allowed: set[int] = field(default_factory=set)
    dropped: bool = False
    in_fixed: Any = None
    in_meta: Any = None

    def dir(self, direction: int) -> FlowDir:
        fd = self.dirs.get(direction)
        if fd is None:
            fd = FlowDir(self.flow_handle, self.layer_id, direction)
            self.dirs[direction] = fd
        return fd


@dataclass
class _StageRef:
    flt: Filter
    sub: SubLayer
    callout: Callout | None


class StreamLayer:
    def __init__(self, engine: FilterEngine, buffer_limit: int) -> None:
        self.engine = engine
        self.buffer_limit = buffer_limit
        self.flows: dict[tuple[int, int], StreamFlow] = {}
        self.flow_serial = 0
        self._retired: list[NetBufferList] = []
        self._owned_live: set[int] = set()
        self._owned: dict[int, _Owned] = {}
        self._borrowed: list[Any] = []
        #: verdicts produced outside a stream_classify with no engine.stream_sink set
        self.pending_verdicts: list[StreamVerdict] = []

    # ---- bookkeeping ---------------------------------------------------------------------

    def _flow(self, flow_handle: int, layer_id: int) -> StreamFlow:
        fl = self.flows.get((flow_handle, layer_id))
        if fl is None:
            self.flow_serial += 1
            fl = StreamFlow(flow_handle, layer_id, self.flow_serial)
            self.flows[(flow_handle, layer_id)] = fl
        return fl

    def knows_flow(self, flow_handle: int) -> bool:
        return any(fh == flow_handle for fh, _ in self.flows)

    def filter_busy(self, filter_id: int) -> bool:
        return any(
            (st.data or st.deferred)
            for fl in self.flows.values()
            for fd in fl.dirs.values()
            for fid, st in fd.stages.items()
            if fid == filter_id
        )

    def held_bytes(self) -> int:
        return sum(
            st.held
            for fl in self.flows.values()
            for fd in fl.dirs.values()
            for st in fd.stages.values()
        )

    def owned_nbls(self) -> int:
        return len(self._owned) + len(self._retired)

    def _own(self, data: bytes) -> _Owned:
        nbl = NetBufferList.from_bytes(data)
        owned = _Owned(nbl)
        self._owned[id(owned)] = owned
        return owned

    def _release(self, piece: Piece) -> None:
        owned = piece.owned
        piece.owned = None
        if owned is None:
            return
        owned.refs -= 1
        if owned.refs > 0:
            return
        self._owned.pop(id(owned), None)
        if owned.nbl.ChildRefCount:
            self._retired.append(owned.nbl)
        else:
            owned.nbl.free()

    def reap(self) -> int:
        """Frees engine NBLs whose clones are all gone; returns how many remain retired."""
        keep = []
        for nbl in self._retired:
            if nbl.alive and nbl.ChildRefCount:
                keep.append(nbl)
            elif nbl.alive:
                nbl.free()
        self._retired = keep
        return len(keep)

    def _split(self, piece: Piece, n: int) -> tuple[Piece, Piece | None]:
        """(first n bytes, rest) — the FIN mark stays with the rest."""
        if n >= piece.length:
            return piece, None
        head = Piece(
            piece.chain,
            piece.start,
            n,
            piece.flags & ~DISCONNECT_BITS,
            False,
            piece.owned,
            piece.skip_callout,
        )
        tail = Piece(
            piece.chain,
            piece.start + n,
            piece.length - n,
            piece.flags,
            piece.fin,
            piece.owned,
            piece.skip_callout,
        )
        if piece.owned is not None:
            piece.owned.refs += 1
        return head, tail

    def _merge(self, pieces: list[Piece]) -> Piece:
        data = b"".join(read_range(p.chain, p.start, p.length) for p in pieces)
        owned = self._own(data)
        last = pieces[-1]
        merged = Piece(owned.nbl, 0, len(data), last.flags, last.fin, owned, last.skip_callout)
        for p in pieces:
            self._release(p)
        return merged

    def _materialize(self, fl: StreamFlow, chain: Any) -> None:
        """Copies every held piece of the flow still pointing into the borrowed `chain`."""
        if chain is None:
            return
        for fd in fl.dirs.values():
            for st in fd.stages.values():
                for i, p in enumerate(st.data):
                    if p.owned is None and p.chain is chain:
                        owned = self._own(read_range(p.chain, p.start, p.length))
                        st.data[i] = Piece(
                            owned.nbl, 0, p.length, p.flags, p.fin, owned, p.skip_callout
                        )

    # ---- the pipeline --------------------------------------------------------------------

    def _pipeline(self, fl: StreamFlow, fd: FlowDir) -> list[_StageRef]:
        engine = self.engine
        values = fd.in_fixed.incomingValue if fd.in_fixed is not None else []
        out: list[_StageRef] = []
        for sub, filters in engine.table.plan(fl.layer_id):
            for flt in filters:
                st = fd.stages.get(flt.filter_id)
                holding = st is not None and (st.data or st.deferred)
                callout = (
                    engine.callouts.by_key(flt.callout_key) if flt.callout_key is not None else None
                )
                if not holding:
                    if flt.filter_id in fl.allowed or not flt.predicate(values):
                        continue
                    if flt.callout_key is not None:
                        if callout is None:
                            if flt.action_type == FWP_ACTION_CALLOUT_INSPECTION:
                                continue
                        else:
                            ctx = engine.flows.context(
                                fl.flow_handle, fl.layer_id, callout.callout_id
                            )
                            if callout.conditional_on_flow and not ctx:
                                continue
                            if flt.created_at >= fl.serial and not callout.allow_mid_stream:
                                continue
                out.append(_StageRef(flt, sub, callout))
        return out

    @staticmethod
    def _next_sublayer(pipeline: list[_StageRef], idx: int) -> int:
        sub = pipeline[idx].sub
        j = idx + 1
        while j < len(pipeline) and pipeline[j].sub is sub:
            j += 1
        return j

    def _deliver(self, fd: FlowDir, pieces: list[Piece]) -> None:
        """Bytes that passed every stage: to the innermost call's deliver callback, at once."""
        frame = fd.frames[-1] if fd.frames else _Frame()
        for p in pieces:
            data = read_range(p.chain, p.start, p.length)
            flags = p.flags | fd.direction
            self._release(p)
            if data:
                frame.outputs.append(StreamOutput(data, flags))
            if p.fin and flags & DISCONNECT_BITS:
                frame.fin = True
            if p.fin and flags & ABORT_BITS:
                frame.abort = True
            if frame.deliver is not None and (data or p.fin):
                frame.deliver(data, flags)

    def _drop(self, fd: FlowDir, pipeline: list[_StageRef], idx: int, pieces: list[Piece]) -> None:
        n = sum(p.length for p in pieces)
        if fd.frames:
            fd.frames[-1].blocked += n
        for ref in pipeline[idx + 1 :]:
            fd.stage(ref.flt.filter_id).missed += n
        for p in pieces:
            self._release(p)

    def _feed(
        self, fl: StreamFlow, fd: FlowDir, pipeline: list[_StageRef], idx: int, pieces: list[Piece]
    ) -> None:
        for p in pieces:
            if not (p.length or p.fin):
                self._release(p)  # nothing to indicate: drop its reference
        pieces = [p for p in pieces if p.length or p.fin]
        if not pieces or fl.dropped:
            for p in pieces:
                self._release(p)
            return
        while idx < len(pipeline):
            ref = pipeline[idx]
            skip = pieces[0].skip_callout
            if ref.callout is None or skip is None or ref.callout.callout_id != skip:
                break
            idx += 1
        if idx >= len(pipeline):
            self._deliver(fd, pieces)
            return
        ref = pipeline[idx]
        flt = ref.flt
        if ref.callout is None:
            if flt.callout_key is None:
                decision = static_decision(flt.action_type, flt.flags, flt.filter_id)
            else:
                decision = unregistered_decision(flt.action_type, flt.flags, flt.filter_id)
            st = fd.stage(flt.filter_id)
            held, st.data = st.data, []
            pieces = held + pieces
            if decision is None:
                self._feed(fl, fd, pipeline, idx + 1, pieces)
            elif decision.action == FWP_ACTION_PERMIT:
                self._feed(fl, fd, pipeline, self._next_sublayer(pipeline, idx), pieces)
            else:
                self._drop(fd, pipeline, idx, pieces)
            return
        st = fd.stage(flt.filter_id)
        if st.busy:
            raise ContractViolation(
                f"stream data re-entered the stage of callout {ref.callout.key!r} while it is "
                "classifying: stream-injected data is never indicated to the injecting callout "
                "(injection.md §4.6); check exclude_callout_id / below_sublayer_weight"
            )
        st.data.extend(pieces)
        self._run_stage(fl, fd, pipeline, idx, st)

    def _run_stage(
        self, fl: StreamFlow, fd: FlowDir, pipeline: list[_StageRef], idx: int, st: Stage
    ) -> None:
        if st.deferred or fl.dropped:
            return
        total = st.held
        has_fin = any(p.fin for p in st.data)
        at_limit = total >= self.buffer_limit
        if st.need is not None:
            if not (has_fin or at_limit or total - st.need_base >= max(st.need, 1)):
                return
            st.need = None
        st.busy = True
        try:
            for _ in range(total + len(st.data) + 2):  # each round consumes >= 1 byte or a piece
                if not st.data or fl.dropped or st.deferred or st.need is not None:
                    break
                self._classify_once(fl, fd, pipeline, idx, st)
            else:
                raise ContractViolation("stream stage made no progress (internal bound reached)")
        finally:
            st.busy = False

    def _classify_once(
        self, fl: StreamFlow, fd: FlowDir, pipeline: list[_StageRef], idx: int, st: Stage
    ) -> None:
        ref = pipeline[idx]
        flt, callout = ref.flt, ref.callout
        assert callout is not None
        # the window: the bytes before a FIN, or the FIN piece alone
        fin_at = next((i for i, p in enumerate(st.data) if p.fin), None)
        if fin_at is None:
            window, rest = st.data, []
        elif fin_at > 0:
            window, rest = st.data[:fin_at], st.data[fin_at:]
        else:
            window, rest = st.data[:1], st.data[1:]
        piece = window[0] if len(window) == 1 else self._merge(window)
        st.data = [piece] + rest
        no_more = any(p.fin for p in st.data)
        total = st.held
        out_flags = 0
        if no_more:
            out_flags |= FWPS_CLASSIFY_OUT_FLAG_NO_MORE_DATA
        if total >= self.buffer_limit:
            out_flags |= FWPS_CLASSIFY_OUT_FLAG_BUFFER_LIMIT_REACHED
        flags = (piece.flags if piece.fin else piece.flags & ~DISCONNECT_BITS) | fd.direction
        stream_data = FWPS_STREAM_DATA0(
            flags, locate(piece.chain, piece.start), piece.length, piece.chain
        )
        io = FWPS_STREAM_CALLOUT_IO_PACKET0(stream_data, st.missed, 0, 0, FWPS_STREAM_ACTION_NONE)
        st.missed = 0
        classify_out = FWPS_CLASSIFY_OUT0(
            actionType=FWP_ACTION_CONTINUE, rights=FWPS_RIGHT_ACTION_WRITE, flags=out_flags
        )
        engine = self.engine
        flow_context = engine.flows.context(fl.flow_handle, fl.layer_id, callout.callout_id)
        engine._serial += 1
        from wfpsim.filtering.engine import ClassifyContext, ClassifyRecord

        values = fd.in_fixed if fd.in_fixed is not None else FWPS_INCOMING_VALUES0(fl.layer_id)
        callout.active += 1
        engine._running.append((callout, flt, fl.layer_id))
        try:
            callout.call_classify(
                values,
                fd.in_meta,
                io,
                ClassifyContext(fl.layer_id, engine._serial),
                flt.fwps,
                flow_context,
                classify_out,
            )
        finally:
            callout.active -= 1
            engine._running.pop()
        notes: list[str] = []
        action = io.streamAction
        n_total = piece.length
        decision = self._stream_decision(flt, action, classify_out, io, out_flags, fd, notes)
        if engine.trace is not None:
            engine.trace.append(
                ClassifyRecord(
                    fl.layer_id,
                    flt.filter_id,
                    callout.callout_id,
                    ref.sub.weight,
                    fl.flow_handle,
                    FWPS_RIGHT_ACTION_WRITE,
                    FWP_ACTION_CONTINUE,
                    classify_out.actionType,
                    classify_out.rights,
                    classify_out.flags,
                    decision,
                    notes,
                    {
                        "streamAction": action,
                        "countBytesEnforced": io.countBytesEnforced,
                        "countBytesRequired": io.countBytesRequired,
                        "dataLength": n_total,
                        "missedBytes": io.missedBytes,
                        "streamFlags": flags,
                        "classifyOutFlags": out_flags,
                    },
                )
            )
        if decision == "need-more-data":
            st.need = io.countBytesRequired
            st.need_base = total
            return
        if decision == "defer":
            st.deferred = True
            st.deferred_flags = flags
            return
        if decision == "drop-connection":
            self._drop_flow(fl)
            return
        if decision == "allow-connection":
            fl.allowed.add(flt.filter_id)
            pieces, st.data = st.data, []
            self._feed(fl, fd, pipeline, self._next_sublayer(pipeline, idx), pieces)
            return
        n = n_total
        if decision in ("permit", "block"):
            enforced = io.countBytesEnforced
            if 0 < enforced < n_total:
                n = enforced
            elif enforced > n_total:
                notes.append(f"countBytesEnforced {enforced} > dataLength {n_total}; all enforced")
        head, tail = self._split(piece, n)
        st.data = ([tail] if tail is not None else []) + rest
        if decision == "permit":
            self._feed(fl, fd, pipeline, self._next_sublayer(pipeline, idx), [head])
        elif decision == "block":
            self._drop(fd, pipeline, idx, [head])
        else:
            self._feed(fl, fd, pipeline, idx + 1, [head])

    def _stream_decision(
        self,
        flt: Filter,
        action: int,
        classify_out: FWPS_CLASSIFY_OUT0,
        io: FWPS_STREAM_CALLOUT_IO_PACKET0,
        out_flags: int,
        fd: FlowDir,
        notes: list[str],
    ) -> str:
        if action == FWPS_STREAM_ACTION_NEED_MORE_DATA:
            if out_flags & (
                FWPS_CLASSIFY_OUT_FLAG_NO_MORE_DATA | FWPS_CLASSIFY_OUT_FLAG_BUFFER_LIMIT_REACHED
            ):
                raise ContractViolation(
                    "FWPS_STREAM_ACTION_NEED_MORE_DATA is not allowed when the classify carries "
                    "FWPS_CLASSIFY_OUT_FLAG_NO_MORE_DATA or BUFFER_LIMIT_REACHED: permit or block "
                    "the indicated data (layers.md §9)"
                )
            return "need-more-data"
        if action == FWPS_STREAM_ACTION_DEFER:
            if fd.direction != FWPS_STREAM_FLAG_RECEIVE:
                raise ContractViolation(
                    "FWPS_STREAM_ACTION_DEFER is valid for inbound (RECEIVE) streams only (B19)"
                )
            return "defer"
        if action == FWPS_STREAM_ACTION_DROP_CONNECTION:
            if flt.action_type == FWP_ACTION_CALLOUT_INSPECTION:
                notes.append("DROP_CONNECTION from a CALLOUT_INSPECTION filter is ignored")
                return "continue"
            return "drop-connection"
        if action == FWPS_STREAM_ACTION_ALLOW_CONNECTION:
            return "allow-connection"
        if action != FWPS_STREAM_ACTION_NONE:
            raise ContractViolation(f"streamAction {action} is not an FWPS_STREAM_ACTION_TYPE")
        if flt.action_type == FWP_ACTION_CALLOUT_INSPECTION:
            return "continue"
        returned = classify_out.actionType
        if returned == FWP_ACTION_PERMIT:
            return "permit"
        if returned == FWP_ACTION_BLOCK:
            return "block"
        if flt.action_type == FWP_ACTION_CALLOUT_TERMINATING:
            notes.append(f"terminating callout returned 0x{returned:x}; treated as BLOCK")
            return "block"
        return "continue"

    def _drop_flow(self, fl: StreamFlow) -> None:
        fl.dropped = True
        for fd in fl.dirs.values():
            for st in fd.stages.values():
                if fd.frames:
                    fd.frames[-1].blocked += st.held
                for p in st.data:
                    self._release(p)
                st.data = []
                st.need = None
                st.deferred = False

    # ---- entry points --------------------------------------------------------------------

    def _verdict(self, fl: StreamFlow, fd: FlowDir, frame: _Frame) -> StreamVerdict:
        nested = bool(fd.frames)
        verdict = StreamVerdict(fl.flow_handle, fl.layer_id, fd.direction, nested=nested)
        verdict.outputs, verdict.fin, verdict.abort = frame.outputs, frame.fin, frame.abort
        verdict.blocked = frame.blocked
        verdict.held = sum(st.held for st in fd.stages.values())
        verdict.deferred = any(st.deferred for st in fd.stages.values())
        verdict.dropped = fl.dropped
        if fl.allowed and not fl.dropped:
            verdict.allow_connection = not self._pipeline(fl, fd)
        return verdict

    def _pop_frame(self, fd: FlowDir, frame: _Frame) -> None:
        """Ends a call: a nested call without its own deliver hands its bytes to its parent."""
        popped = fd.frames.pop()
        assert popped is frame
        if frame.deliver is None and fd.frames:
            parent = fd.frames[-1]
            parent.blocked += frame.blocked
            parent.fin = parent.fin or frame.fin
            parent.abort = parent.abort or frame.abort
            for out in frame.outputs:
                parent.outputs.append(out)
                if parent.deliver is not None:
                    parent.deliver(out.data, out.flags)
            frame.outputs = []
            frame.blocked = 0
            frame.fin = frame.abort = False

    def _entry(
        self, layer_id: int, pipeline: list[_StageRef], exclude: int | None, below: int | None
    ) -> int:
        if below is None and exclude is not None:
            # the sublayer(s) of the injecting callout's filters at this layer, whether or not
            # its stage is still in this flow's pipeline (it may have allowed the connection)
            callout = self.engine.callouts.by_id(exclude)
            weights = [
                sub.weight
                for sub, filters in self.engine.table.plan(layer_id)
                for flt in filters
                if callout is not None and flt.callout_key == callout.key
            ]
            if weights:
                below = max(weights)
        if below is None:
            return 0
        for i, ref in enumerate(pipeline):
            if ref.sub.weight < below:
                return i
        return len(pipeline)

    def indicate(
        self,
        layer_id: int,
        in_fixed: Any,
        in_meta: Any,
        flow_handle: int,
        stream_flags: int,
        chain: Any,
        data_length: int,
        *,
        owned: _Owned | None = None,
        deliver: Any = None,
        exclude_callout_id: int | None = None,
        below_sublayer_weight: int | None = None,
    ) -> StreamVerdict:
        """One indication of stream bytes (see the module docstring). `owned`: the chain is the
        engine's own (built from the seam's bytes), else it is borrowed for the call."""
        if layer_id not in STREAM_LAYERS:
            raise InvalidParameterError(
                f"layer {layer_id} is not FWPS_LAYER_STREAM_V4/V6",
                NTSTATUS.STATUS_FWP_INVALID_PARAMETER,
            )
        if not flow_handle:
            raise InvalidParameterError(
                "stream data needs a flow handle", NTSTATUS.STATUS_INVALID_PARAMETER
            )
        direction = stream_direction(stream_flags)
        if data_length < 0 or (chain is None and data_length):
            raise InvalidParameterError(
                "data_length must be >= 0, and 0 without a chain", NTSTATUS.STATUS_INVALID_PARAMETER
            )
        if chain is not None and chain_length(chain) < data_length:
            raise InvalidParameterError(
                f"data_length {data_length} exceeds the chain's {chain_length(chain)} bytes",
                NTSTATUS.STATUS_INVALID_PARAMETER,
            )
        fl = self._flow(flow_handle, layer_id)
        fd = fl.dir(direction)
        if in_fixed is not None:
            fd.in_fixed, fd.in_meta = in_fixed, in_meta
            fl.in_fixed, fl.in_meta = in_fixed, in_meta
        elif fd.in_fixed is None and fl.in_fixed is not None:
            # the stream layer's values describe the connection, the same for both directions
            fd.in_fixed, fd.in_meta = fl.in_fixed, fl.in_meta
        injected = exclude_callout_id is not None or below_sublayer_weight is not None
        terminal = bool(stream_flags & (DISCONNECT_BITS | ABORT_BITS))
        frame = _Frame(deliver)
        if fl.dropped:
            if owned is not None:
                self._release(Piece(chain, 0, data_length, stream_flags, False, owned))
            frame.blocked = data_length
            return self._verdict(fl, fd, frame)
        if fd.fin_in and not injected and (data_length or terminal):
            if owned is not None:
                self._release(Piece(chain, 0, data_length, stream_flags, False, owned))
            raise InvalidStateError(
                "stream data indicated after the FIN of this direction",
                NTSTATUS.STATUS_INVALID_DEVICE_STATE,
            )
        if terminal and not injected:
            fd.fin_in = True
        engine = self.engine
        fd.frames.append(frame)
        flow_state = engine.flows.enter(flow_handle)
        from wfpsim.filtering.engine import _current

        ctx_token = _current.set(engine)
        try:
            piece = Piece(chain, 0, data_length, stream_flags, terminal, owned, exclude_callout_id)
            if data_length or terminal:
                pipeline = self._pipeline(fl, fd)
                entry = 0
                if injected:
                    entry = self._entry(
                        layer_id, pipeline, exclude_callout_id, below_sublayer_weight
                    )
                self._feed(fl, fd, pipeline, entry, [piece])
            else:
                self._release(piece)
        finally:
            _current.reset(ctx_token)
            if owned is None:
                self._materialize(fl, chain)
            engine.flows.leave(flow_state)
            self._pop_frame(fd, frame)
        verdict = self._verdict(fl, fd, frame)
        if not fd.frames:
            self.reap()
        return verdict

    def indicate_bytes(
        self,
        layer_id: int,
        in_fixed: Any,
        in_meta: Any,
        flow_handle: int,
        stream_flags: int,
        data: bytes,
        *,
        deliver: Any = None,
        exclude_callout_id: int | None = None,
        below_sublayer_weight: int | None = None,
    ) -> StreamVerdict:
        """As :meth:`indicate` for bytes (the seam's StreamSegment): the engine builds its own
        NBL over a copy and frees it when every byte has been consumed."""
        # a FIN / RST carries no data but still comes in an (empty) NBL that callouts may clone
        terminal = stream_flags & (DISCONNECT_BITS | ABORT_BITS)
        owned = self._own(bytes(data)) if data or terminal else None
        return self.indicate(
            layer_id,
            in_fixed,
            in_meta,
            flow_handle,
            stream_flags,
            owned.nbl if owned is not None else None,
            len(data),
            owned=owned,
            deliver=deliver,
            exclude_callout_id=exclude_callout_id,
            below_sublayer_weight=below_sublayer_weight,
        )

    def inject(
        self,
        flow_handle: int,
        callout_id: int,
        layer_id: int,
        stream_flags: int,
        chain: Any,
        data_length: int,
    ) -> StreamVerdict:
        return self.indicate(
            layer_id,
            None,
            None,
            flow_handle,
            stream_flags,
            chain,
            data_length,
            exclude_callout_id=callout_id,
        )

    def resume(
        self,
        flow_handle: int,
        callout_id: int,
        layer_id: int,
        stream_flags: int,
        deliver: Any = None,
    ) -> StreamVerdict:
        """FwpsStreamContinue0: re-indicates what a deferred inbound stage holds."""
        fl = self.flows.get((flow_handle, layer_id))
        if fl is None or FWPS_STREAM_FLAG_RECEIVE not in fl.dirs:
            raise InvalidStateError(
                f"flow {flow_handle} has no inbound stream at layer {layer_id}",
                NTSTATUS.STATUS_INVALID_PARAMETER,
            )
        if not stream_flags & FWPS_STREAM_FLAG_RECEIVE:
            raise InvalidParameterError(
                "FwpsStreamContinue0 resumes inbound streams: streamFlags needs RECEIVE",
                NTSTATUS.STATUS_FWP_INVALID_PARAMETER,
            )
        if self.engine._running:
            raise InvalidStateError(
                "FwpsStreamContinue0 cannot be called from inside a classifyFn",
                NTSTATUS.STATUS_INVALID_DEVICE_STATE,
            )
        fd = fl.dirs[FWPS_STREAM_FLAG_RECEIVE]
        pipeline = self._pipeline(fl, fd)
        idx = next(
            (
                i
                for i, r in enumerate(pipeline)
                if r.callout is not None
                and r.callout.callout_id == callout_id
                and fd.stage(r.flt.filter_id).deferred
            ),
            None,
        )
        if idx is None:
            raise InvalidStateError(
                f"callout {callout_id} has not deferred flow {flow_handle}",
                NTSTATUS.STATUS_INVALID_PARAMETER,
            )
        st = fd.stage(pipeline[idx].flt.filter_id)
        st.deferred = False
        frame = _Frame(deliver if deliver is not None else self._out_of_band_deliver(flow_handle))
        fd.frames.append(frame)
        from wfpsim.filtering.engine import _current

        ctx_token = _current.set(self.engine)
        flow_state = self.engine.flows.enter(flow_handle)
        try:
            self._run_stage(fl, fd, pipeline, idx, st)
        finally:
            self.engine.flows.leave(flow_state)
            _current.reset(ctx_token)
            self._pop_frame(fd, frame)
        verdict = self._verdict(fl, fd, frame)
        self.reap()
        if verdict.dropped:
            self.engine._tell_stack_flow_dropped(flow_handle)
        return verdict

    def _out_of_band_deliver(self, flow_handle: int) -> Any:
        """Where bytes released outside stream_classify go: ``stack.stream_deliver(flow_id,
        flags, data)`` of the attached stack that owns the flow (the seam), else None (they are
        only in the returned verdict)."""
        for stack in self.engine.stacks_for_flow(flow_handle):
            fn = getattr(stack, "stream_deliver", None)
            if fn is not None:
                return lambda data, flags, _fn=fn: _fn(flow_handle, flags, data)
        return None

    def emit(self, verdict: StreamVerdict) -> None:
        """Hands a verdict produced outside stream_classify to the stack that owns the flow
        (its optional ``stream_verdict(verdict)`` hook: e.g. the direction is no longer
        deferred), else to ``engine.stream_sink``, else keeps it in ``pending_verdicts``."""
        for stack in self.engine.stacks_for_flow(verdict.flow_handle)[:1]:
            hook = getattr(stack, "stream_verdict", None)
            if hook is not None and _owns(stack, verdict.flow_handle):
                hook(verdict)
                return
        sink = getattr(self.engine, "stream_sink", None)
        if sink is not None:
            sink(verdict)
        else:
            self.pending_verdicts.append(verdict)

    def abort_flow(self, flow_handle: int) -> None:
        for (fh, _), fl in list(self.flows.items()):
            if fh != flow_handle:
                continue
            self._drop_flow(fl)
            for fd in fl.dirs.values():
                self.emit(self._verdict(fl, fd, _Frame()))

    def end_flow(self, flow_handle: int) -> None:
        for key in [k for k in self.flows if k[0] == flow_handle]:
            fl = self.flows.pop(key)
            for fd in fl.dirs.values():
                for st in fd.stages.values():
                    for p in st.data:
                        self._release(p)
                    st.data = []
        self.reap()

    def close(self) -> None:
        for fh in {k[0] for k in self.flows}:
            self.end_flow(fh)
        self.reap()


def _owns(stack: Any, flow_handle: int) -> bool:
    from wfpsim.filtering.engine import _stack_owns

    return _stack_owns(stack, flow_handle)


__all__ = [
    "Piece",
    "StreamLayer",
    "StreamOutput",
    "StreamVerdict",
    "chain_length",
    "clone_stream_data",
    "copy_stream_data_to_buffer",
    "discard_cloned_stream_data",
    "iter_stream_data",
    "locate",
    "read_range",
    "stream_direction",
]
