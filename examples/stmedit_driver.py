# ruff: noqa: F403, F405, N802, N803, N815  (WDK names, imported by name as driver code does)
"""stmedit — find-and-replace in TCP byte streams, inline and out of band — as Python callouts.

Our own port of the per-packet logic of Windows-driver-samples ``network/trans/stmedit``, written
from ``samples.md §3`` (section numbers below refer to it):

* callout set 1, **out of band** (sublayer weight 0x40): the stream classifyFn clones every
  indication (FwpsCloneStreamData0) and blocks it; a per-flow work item scans the clones,
  replaces ``string_to_find`` ("rainy") by ``string_x`` ("cloudy") — also when the pattern is
  split across segments (a trailing partial match waits in the scratch buffer) — and re-injects
  the result in order with FwpsStreamInjectAsync0; it defers the inbound stream above
  ``busy_threshold`` pending bytes and resumes it with FwpsStreamContinue0 (§3.4);
* callout set 2, **inline** (sublayer weight 0x20): the classifyFn itself permits the bytes
  before a match (countBytesEnforced), injects the replacement of ``string_x`` by
  ``string_to_replace`` ("sunny") and blocks the pattern; a pattern split across indications is
  held in a scratch buffer (SKIPPING) and re-injected if it was not a match (§3.3);
* with both sets, "rainy" becomes "sunny": the data set 1 injects is indicated to set 2 (lower
  weight) but never back to set 1;
* both sets select their flows with an ALE_FLOW_ESTABLISHED inspection callout that associates
  a flow context with the stream callout (FWP_CALLOUT_FLAG_CONDITIONAL_ON_FLOW, §3.1, §3.2).

Registry values become constructor arguments; ``out_of_band`` / ``inline`` choose the sets (the
sample always registers set 1 and registers set 2 when MultipleCallouts is non-zero; enabling
set 2 alone is a test configuration of samples.md §9.3). The work-item queues are work items on
the stack's dispatcher (``stack.queue_dpc``), run by ``stack.run()``.

Run: ``python examples/stmedit_driver.py``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import wfpsim
from wfpsim.constants.layers import FIELD_ENUMS
from wfpsim.wdk import *

SUBLAYER_OOB = uuid.UUID("a08d2d1f-43f7-4b3c-9c4b-cc8d47b8b4a1")
SUBLAYER_INLINE = uuid.UUID("a08d2d1f-43f7-4b3c-9c4b-cc8d47b8b4a2")
DISCONNECT = FWPS_STREAM_FLAG_RECEIVE_DISCONNECT | FWPS_STREAM_FLAG_SEND_DISCONNECT
DIRECTION_BITS = FWPS_STREAM_FLAG_RECEIVE | FWPS_STREAM_FLAG_SEND


def stream_bytes(streamData: Any) -> bytes:
    """The indicated bytes, flattened (FwpsCopyStreamDataToBuffer0)."""
    buffer = bytearray(streamData.dataLength)
    _, copied = FwpsCopyStreamDataToBuffer0(streamData, buffer, len(buffer))
    return bytes(buffer[:copied])


def chain_bytes(chain: Any) -> bytes:
    out = bytearray()
    while chain is not None:
        for nb in chain.net_buffers:
            out += nb.tobytes()
        chain = NET_BUFFER_LIST_NEXT_NBL(chain)
    return bytes(out)


def partial_suffix(data: bytes, pattern: bytes) -> int:
    """The length of the longest tail of ``data`` that is a proper prefix of ``pattern``."""
    for k in range(min(len(pattern) - 1, len(data)), 0, -1):
        if data.endswith(pattern[:k]):
            return k
    return 0


@dataclass(eq=False)
class OutgoingEntry:
    """An entry of a flow's ordered outgoing queue (§3.4 worker step 2)."""

    nbl: Any
    length: int
    flags: int
    mdl: Any = None  # allocated data: the MDL over the driver's copy
    clone: bool = False  # the cloned chain itself (freed per NBL on completion)


@dataclass(eq=False)
class Task:
    chain: Any
    flags: int
    length: int
    no_more_data: bool


@dataclass(eq=False)
class StreamFlowContext:
    """STREAM_FLOW_CONTEXT (§3.2): shared by both editing modes."""

    flowHandle: int
    layerId: int
    calloutId: int
    inline: bool
    active: bool = True
    refCount: int = 1
    # inline state (§3.3)
    state: str = "IDLE"  # IDLE, SCANNING, MODIFYING, SKIPPING
    scratch: bytes = b""
    partialFlags: int = 0
    # out-of-band state (§3.4)
    oobState: str = "IDLE"  # IDLE, PROCESSING, BUSY, ERROR
    tasks: list[Task] = field(default_factory=list)
    outgoing: list[OutgoingEntry] = field(default_factory=list)
    pendedDataLength: int = 0
    noMoreData: bool = False
    flowTerminating: bool = False
    savedStreamFlags: int = 0
    queued: bool = False  # a work item for this flow is queued


@dataclass
class StmEditLog:
    inline: list[tuple[bytes, str, int]] = field(default_factory=list)  # (data, why, count)
    oob_seen: list[bytes] = field(default_factory=list)
    completions: list[tuple[str, int]] = field(default_factory=list)  # (kind, nbl.Status)
    defers: int = 0
    continues: list[int] = field(default_factory=list)
    drops: list[str] = field(default_factory=list)
    flow_deletes: int = 0
    aborts: list[int] = field(default_factory=list)


class StmEditDriver:
    def __init__(
        self,
        *,
        string_to_find: bytes = b"rainy",
        string_x: bytes = b"cloudy",
        string_to_replace: bytes = b"sunny",
        inspection_local_port: int = 8888,
        inspection_remote_port: int = 0,
        inspection_direction: int = FWP_DIRECTION_MAX,
        busy_threshold: int = 0x4000,
        out_of_band: bool = True,
        inline: bool = True,
    ) -> None:
        if not (inspection_local_port or inspection_remote_port):
            raise ValueError("STATUS_DEVICE_CONFIGURATION_ERROR: a port must be given")
        self.find, self.x, self.replace = string_to_find, string_x, string_to_replace
        self.local_port, self.remote_port = inspection_local_port, inspection_remote_port
        self.direction = inspection_direction
        self.busy_threshold = busy_threshold
        self.sets = [s for s, on in (("oob", out_of_band), ("inline", inline)) if on]
        self.stack: wfpsim.Stack | None = None
        self.engine: Any = None
        self.injection_handle: Any = None
        self.flows: list[StreamFlowContext] = []
        self.unloading = False
        self.stream_callouts: dict[int, tuple[str, int]] = {}  # calloutId -> (set, layerId)
        self.fe_to_stream: dict[int, int] = {}  # flow-established calloutId -> stream calloutId
        self.callout_ids: list[int] = []
        self.log = StmEditLog()

    @property
    def zero_flows(self) -> bool:
        """The sample's zero-flows event: set when no flow context is live."""
        return not self.flows

    # ---- setup (§3.1) --------------------------------------------------------------------

    def register(self, stack_or_engine: Any) -> StmEditDriver:
        stack = stack_or_engine if isinstance(stack_or_engine, wfpsim.Stack) else None
        engine = stack.filter_engine if stack is not None else stack_or_engine
        self.stack = stack if stack is not None else engine.stack
        self.engine = engine
        # 1. driver-global MDLs, reused by every replacement injection
        self.string_x_mdl = Mdl.allocate(bytearray(self.x))
        self.string_to_replace_mdl = Mdl.allocate(bytearray(self.replace))
        # 4. one stream injection handle for both families
        with self.stack:
            status, self.injection_handle = FwpsInjectionHandleCreate0(
                AF_UNSPEC, FWPS_INJECTION_TYPE_STREAM
            )
        assert status == STATUS_SUCCESS
        _, self.engine_handle = FwpmEngineOpen0(
            None, 0, None, FWPM_SESSION0(flags=FWPM_SESSION_FLAG_DYNAMIC), engine
        )
        h = self.engine_handle
        FwpmTransactionBegin0(h)
        device = DEVICE_OBJECT(engine)
        for edit_set in self.sets:
            sublayer, weight = (
                (SUBLAYER_OOB, 0x40) if edit_set == "oob" else (SUBLAYER_INLINE, 0x20)
            )
            FwpmSubLayerAdd0(
                h,
                FWPM_SUBLAYER0(sublayer, FWPM_DISPLAY_DATA0(f"stmedit {edit_set}"), weight=weight),
            )
            for sfx in ("V4", "V6"):
                fe_layer = FWPS_BUILTIN_LAYERS[f"FWPS_LAYER_ALE_FLOW_ESTABLISHED_{sfx}"]
                stream_layer = FWPS_BUILTIN_LAYERS[f"FWPS_LAYER_STREAM_{sfx}"]
                fe_key = uuid.uuid5(sublayer, f"flow-established-{sfx}")
                stream_key = uuid.uuid5(sublayer, f"stream-{sfx}")
                status, stream_id = FwpsCalloutRegister(
                    device,
                    FWPS_CALLOUT(
                        stream_key,
                        FWP_CALLOUT_FLAG_CONDITIONAL_ON_FLOW,
                        self.stream_classify,
                        self.notify,
                        self.flow_delete,
                    ),
                )
                assert status == STATUS_SUCCESS
                status, fe_id = FwpsCalloutRegister(
                    device, FWPS_CALLOUT(fe_key, 0, self.flow_established_classify, self.notify)
                )
                assert status == STATUS_SUCCESS
                self.callout_ids += [stream_id, fe_id]
                self.stream_callouts[stream_id] = (edit_set, stream_layer)
                self.stream_callouts[fe_id] = (edit_set, stream_layer)
                self.fe_to_stream[fe_id] = stream_id
                FwpmCalloutAdd0(h, FWPM_CALLOUT0(fe_key, applicableLayer=fe_layer))
                FwpmCalloutAdd0(h, FWPM_CALLOUT0(stream_key, applicableLayer=stream_layer))
                self._add_filters(fe_layer, fe_key, stream_layer, stream_key, sublayer)
        FwpmTransactionCommit0(h)
        return self

    def _add_filters(
        self, fe_layer: int, fe_key: Any, stream_layer: int, stream_key: Any, sublayer: Any
    ) -> None:
        name = FWPS_BUILTIN_LAYERS(fe_layer).name.removeprefix("FWPS_LAYER_")
        fields = FIELD_ENUMS[name]

        def cond(field_name: str, kind: int, value: int) -> FWPM_FILTER_CONDITION0:
            index = fields[f"FWPS_FIELD_{name}_{field_name}"]
            return FWPM_FILTER_CONDITION0(index, FWP_MATCH_EQUAL, FWP_CONDITION_VALUE0(kind, value))

        conditions = [cond("IP_PROTOCOL", FWP_UINT8, IPPROTO_TCP)]
        if self.direction != FWP_DIRECTION_MAX:  # the direction of the *connection*
            conditions.append(cond("DIRECTION", FWP_UINT32, self.direction))
        if self.local_port:
            conditions.append(cond("IP_LOCAL_PORT", FWP_UINT16, self.local_port))
        if self.remote_port:
            conditions.append(cond("IP_REMOTE_PORT", FWP_UINT16, self.remote_port))
        for layer, key, action, conds in (
            (fe_layer, fe_key, FWP_ACTION_CALLOUT_INSPECTION, conditions),
            (stream_layer, stream_key, FWP_ACTION_CALLOUT_TERMINATING, []),  # the context selects
        ):
            status, _ = FwpmFilterAdd0(
                self.engine_handle,
                FWPM_FILTER0(
                    layerKey=layer,
                    subLayerKey=sublayer,
                    numFilterConditions=len(conds),
                    filterCondition=conds,
                    action=FWPM_ACTION0(action, key),
                ),
            )
            assert status == STATUS_SUCCESS, status

    @staticmethod
    def notify(notifyType: int, filterKey: Any, filter: Any) -> int:
        return STATUS_SUCCESS

    # ---- flow contexts (§3.2, §3.5) ------------------------------------------------------

    def flow_established_classify(
        self,
        inFixedValues,
        inMetaValues,
        layerData,
        classifyContext,
        filter,
        flowContext,
        classifyOut,
    ) -> None:
        classifyOut.actionType = FWP_ACTION_CONTINUE  # an inspection callout
        if self.unloading:
            return
        edit_set, stream_layer = self.stream_callouts[filter.action.calloutId]
        stream_id = self.fe_to_stream[filter.action.calloutId]
        ctx = StreamFlowContext(
            inMetaValues.flowHandle, stream_layer, stream_id, inline=edit_set == "inline"
        )
        self.flows.append(ctx)
        status = FwpsFlowAssociateContext0(ctx.flowHandle, stream_layer, stream_id, ctx)
        if status != STATUS_SUCCESS:
            self.flows.remove(ctx)

    def flow_delete(self, layerId: int, calloutId: int, flowContext: Any) -> None:
        ctx: StreamFlowContext = flowContext
        ctx.active = False
        if ctx in self.flows:
            self.flows.remove(ctx)
        self.log.flow_deletes += 1
        for task in ctx.tasks:  # clones never handed to WFP
            FwpsDiscardClonedStreamData0(task.chain, 0, False)
        ctx.tasks.clear()
        ctx.refCount -= 1

    def stream_classify(
        self,
        inFixedValues,
        inMetaValues,
        layerData,
        classifyContext,
        filter,
        flowContext,
        classifyOut,
    ) -> None:
        """StreamEditCommonStreamClassify: dispatch to the flow's editing mode."""
        ctx: StreamFlowContext = flowContext
        ctx.refCount += 1
        try:
            if ctx.inline:
                self.inline_classify(ctx, layerData, classifyOut)
            else:
                self.oob_classify(ctx, layerData, classifyOut)
        finally:
            ctx.refCount -= 1

    # ---- inline editing (§3.3) -----------------------------------------------------------

    def inline_classify(self, ctx: StreamFlowContext, io: Any, classifyOut: Any) -> None:
        sd = io.streamData
        data = stream_bytes(sd)
        pattern = self.x

        def done(action, enforced=0, stream_action=FWPS_STREAM_ACTION_NONE, required=0, why=""):
            classifyOut.actionType, io.countBytesEnforced = action, enforced
            io.streamAction, io.countBytesRequired = stream_action, required
            count = enforced if stream_action == FWPS_STREAM_ACTION_NONE else required
            self.log.inline.append((data, why, count))

        if sd.flags & DISCONNECT or not ctx.active:  # 1. FIN: flush held bytes, let it pass
            if self._flush_scratch(ctx) != STATUS_SUCCESS:
                return self._drop(io, classifyOut, "inline flush failed")
            return done(FWP_ACTION_PERMIT, why="fin")
        if not data:  # 2.
            return done(FWP_ACTION_PERMIT, why="empty")
        no_more = classifyOut.flags & FWPS_CLASSIFY_OUT_FLAG_NO_MORE_DATA
        if ctx.state != "SKIPPING" and len(data) < len(pattern) and not no_more:  # 3.
            return done(
                FWP_ACTION_NONE,
                stream_action=FWPS_STREAM_ACTION_NEED_MORE_DATA,
                required=len(pattern),
                why="need",
            )
        if ctx.state == "SKIPPING":  # 6. the re-classify of the held tail: block it all
            ctx.state = "IDLE"
            return done(FWP_ACTION_BLOCK, why="skip")
        held = len(ctx.scratch)  # 4. PartialLength
        buf = ctx.scratch + data
        ctx.state = "SCANNING"
        i = buf.find(pattern)  # 5.
        if i == 0:  # the held bytes start the match
            if self._inject_replacement(ctx, sd.flags) != STATUS_SUCCESS:
                return self._drop(io, classifyOut, "inline injection failed")
            ctx.scratch, ctx.state = b"", "IDLE"
            return done(FWP_ACTION_BLOCK, len(pattern) - held, why="replace")
        if 0 < i < held:  # the held bytes are partly before the match: re-inject them first
            before, ctx.scratch = buf[:i], b""
            status = self._inject_bytes(ctx, before, ctx.partialFlags)
            if status == STATUS_SUCCESS:
                status = self._inject_replacement(ctx, sd.flags)
            if status != STATUS_SUCCESS:
                return self._drop(io, classifyOut, "inline injection failed")
            ctx.state = "IDLE"
            return done(FWP_ACTION_BLOCK, i + len(pattern) - held, why="replace")
        if i > 0:  # i >= held: bytes before the match pass; the rest is indicated again
            if self._flush_scratch(ctx) != STATUS_SUCCESS:
                return self._drop(io, classifyOut, "inline flush failed")
            if i == held:
                if self._inject_replacement(ctx, sd.flags) != STATUS_SUCCESS:
                    return self._drop(io, classifyOut, "inline injection failed")
                ctx.state = "IDLE"
                return done(FWP_ACTION_BLOCK, len(pattern), why="replace")
            ctx.state = "MODIFYING"
            return done(FWP_ACTION_PERMIT, i - held, why="before-match")
        if no_more:  # near the end with NO_MORE_DATA: everything passes
            if self._flush_scratch(ctx) != STATUS_SUCCESS:
                return self._drop(io, classifyOut, "inline flush failed")
            ctx.state = "IDLE"
            return done(FWP_ACTION_PERMIT, why="no-more-data")
        k = partial_suffix(buf, pattern)
        if k:  # a tail that may start the pattern: keep it in the scratch buffer
            keep = buf[-k:]
            if held and k < len(buf) and len(buf) - k < held:
                # only part of the held bytes is still a prefix: re-inject the rest of them
                if self._inject_bytes(ctx, buf[: len(buf) - k], ctx.partialFlags):
                    return self._drop(io, classifyOut, "inline flush failed")
                ctx.scratch = b""
            elif held:
                if self._flush_scratch(ctx) != STATUS_SUCCESS:
                    return self._drop(io, classifyOut, "inline flush failed")
            new_before = len(data) - k
            ctx.scratch, ctx.partialFlags = keep, sd.flags & ~DISCONNECT
            if new_before > 0:
                ctx.state = "SKIPPING"
                return done(FWP_ACTION_PERMIT, new_before, why="before-partial")
            ctx.state = "IDLE"
            return done(FWP_ACTION_BLOCK, why="partial")
        if self._flush_scratch(ctx) != STATUS_SUCCESS:  # no match at all
            return self._drop(io, classifyOut, "inline flush failed")
        ctx.state = "IDLE"
        return done(FWP_ACTION_PERMIT, why="no-match")

    def _inject_replacement(self, ctx: StreamFlowContext, flags: int) -> int:
        """§3.3 step 7: an NBL over the shared StringToReplace MDL, completion context NULL."""
        status, nbl = FwpsAllocateNetBufferAndNetBufferList0(
            None, 0, 0, self.string_to_replace_mdl, 0, len(self.replace)
        )
        if status != STATUS_SUCCESS:
            return status
        status = FwpsStreamInjectAsync0(
            self.injection_handle,
            None,
            0,
            ctx.flowHandle,
            ctx.calloutId,
            ctx.layerId,
            flags & ~DISCONNECT,
            nbl,
            len(self.replace),
            self.inject_complete,
            None,
        )
        if status != STATUS_SUCCESS:
            FwpsFreeNetBufferList0(nbl)
        return status

    def _inject_bytes(self, ctx: StreamFlowContext, data: bytes, flags: int) -> int:
        """§3.3 step 8: a copy in a fresh buffer + MDL; the completion frees both."""
        assert not flags & DISCONNECT
        mdl = Mdl.allocate(bytearray(data))
        status, nbl = FwpsAllocateNetBufferAndNetBufferList0(None, 0, 0, mdl, 0, len(data))
        if status != STATUS_SUCCESS:
            mdl.free()
            return status
        status = FwpsStreamInjectAsync0(
            self.injection_handle,
            None,
            0,
            ctx.flowHandle,
            ctx.calloutId,
            ctx.layerId,
            flags,
            nbl,
            len(data),
            self.inject_complete,
            mdl,
        )
        if status != STATUS_SUCCESS:
            FwpsFreeNetBufferList0(nbl)
            mdl.free()
        return status

    def _flush_scratch(self, ctx: StreamFlowContext) -> int:
        if not ctx.scratch:
            return STATUS_SUCCESS
        data, ctx.scratch = ctx.scratch, b""
        return self._inject_bytes(ctx, data, ctx.partialFlags)

    def _drop(self, io: Any, classifyOut: Any, why: str) -> None:
        """§3.3 step 9 / §3.4: any failure drops the connection (never a FIN, B18)."""
        io.streamAction = FWPS_STREAM_ACTION_DROP_CONNECTION
        classifyOut.actionType = FWP_ACTION_NONE
        self.log.drops.append(why)

    def inject_complete(self, context: Any, netBufferList: Any, dispatchLevel: bool) -> None:
        """StreamEditInjectCompletionFn / StreamOobInjectCompletionFn: the NBL, then the
        driver's own MDL + buffer when there was one (none for the shared pattern MDLs)."""
        self.log.completions.append(("allocated", int(netBufferList.Status)))
        FwpsFreeNetBufferList0(netBufferList)
        if context is not None:
            context.free()

    def clone_inject_complete(self, context: Any, netBufferList: Any, dispatchLevel: bool) -> None:
        """StreamOobCloneInjectCompletionFn: called once per NBL of a cloned chain."""
        self.log.completions.append(("clone", int(netBufferList.Status)))
        FwpsFreeCloneNetBufferList0(netBufferList, 0)

    # ---- out-of-band editing (§3.4) ------------------------------------------------------

    def oob_classify(self, ctx: StreamFlowContext, io: Any, classifyOut: Any) -> None:
        sd = io.streamData
        self.log.oob_seen.append(stream_bytes(sd))
        classifyOut.actionType = FWP_ACTION_BLOCK  # 1. the whole indication is consumed
        io.streamAction, io.countBytesEnforced = FWPS_STREAM_ACTION_NONE, 0
        no_more = bool(classifyOut.flags & FWPS_CLASSIFY_OUT_FLAG_NO_MORE_DATA)
        fin = bool(sd.flags & DISCONNECT)
        if sd.dataLength < len(self.find) and not no_more and not fin:  # 2.
            classifyOut.actionType = FWP_ACTION_NONE
            io.streamAction = FWPS_STREAM_ACTION_NEED_MORE_DATA
            io.countBytesRequired = len(self.find)
            return
        if ctx.flowTerminating:  # 3. data after the FIN is blocked
            return
        if ctx.oobState == "ERROR":
            return self._drop(io, classifyOut, "flow in ERROR")
        if (  # 4. flow control: only inbound streams can be deferred
            ctx.oobState == "PROCESSING"
            and sd.flags & FWPS_STREAM_FLAG_RECEIVE
            and sd.dataLength
            and not no_more
            and ctx.pendedDataLength + sd.dataLength > self.busy_threshold
        ):
            classifyOut.actionType = FWP_ACTION_NONE
            io.streamAction = FWPS_STREAM_ACTION_DEFER
            ctx.savedStreamFlags, ctx.oobState = sd.flags, "BUSY"
            self.log.defers += 1
            return
        status, chain = FwpsCloneStreamData0(sd, None, None, 0)
        if status != STATUS_SUCCESS:
            return self._drop(io, classifyOut, "FwpsCloneStreamData0 failed")
        ctx.tasks.append(Task(chain, sd.flags, sd.dataLength, no_more))
        ctx.refCount += 1  # the work item's reference
        ctx.noMoreData = ctx.noMoreData or no_more
        if fin and sd.dataLength == 0:
            ctx.flowTerminating = True
        ctx.pendedDataLength += sd.dataLength
        ctx.oobState = "PROCESSING"
        if not ctx.queued:
            ctx.queued = True
            self.stack.queue_dpc(lambda: self.oob_worker(ctx), label="stmedit OOB work item")

    def oob_worker(self, ctx: StreamFlowContext) -> None:
        """The per-flow work item: edit the queued clones and re-inject, in order."""
        ctx.queued = False
        if not ctx.active:  # the context was removed meanwhile (flowDeleteFn discarded the tasks)
            return
        while ctx.tasks:
            task = ctx.tasks.pop(0)
            ctx.refCount -= 1
            if ctx.oobState == "ERROR" or not ctx.active:  # 1.
                FwpsDiscardClonedStreamData0(task.chain, 0, False)
                continue
            if ctx.flowTerminating and task.length == 0 and task.flags & DISCONNECT:
                self._queue_scratch(ctx)  # 3. buffered bytes first
                status = self._flush_outgoing(ctx)
                if status == STATUS_SUCCESS:  # 5. then the cloned FIN itself
                    status = self._inject_entry(
                        ctx, OutgoingEntry(task.chain, 0, task.flags, clone=True)
                    )
                if status != STATUS_SUCCESS:
                    FwpsDiscardClonedStreamData0(task.chain, 0, False)
                    self._error(ctx)
                continue
            self._scan(ctx, task)  # 2.
            ctx.pendedDataLength -= task.length
            if self._flush_outgoing(ctx) != STATUS_SUCCESS:  # 4.
                self._error(ctx)
        # 7. flow control
        if ctx.oobState == "BUSY" and ctx.pendedDataLength <= self.busy_threshold // 4:
            ctx.oobState = "PROCESSING" if ctx.pendedDataLength >= len(self.find) else "IDLE"
            status = FwpsStreamContinue0(
                ctx.flowHandle, ctx.calloutId, ctx.layerId, ctx.savedStreamFlags
            )
            self.log.continues.append(int(status))
            if status != STATUS_SUCCESS:
                self._error(ctx)

    def _scan(self, ctx: StreamFlowContext, task: Task) -> None:
        """§3.4 worker step 2: bytes before a match are re-injected as an allocated copy, the
        match as an NBL over the shared StringX MDL; a trailing partial match stays in the
        scratch buffer; with nothing to change the cloned chain itself is queued."""
        data = chain_bytes(task.chain)[: task.length]
        flags = task.flags & ~DISCONNECT
        held = ctx.scratch
        buf = held + data
        pieces: list[tuple[str, bytes]] = []
        i = 0
        for _ in range(len(buf) + 1):
            j = buf.find(self.find, i)
            if j < 0:
                break
            pieces += [("data", buf[i:j]), ("match", b"")]
            i = j + len(self.find)
        tail = buf[i:]
        k = 0 if task.no_more_data else partial_suffix(tail, self.find)
        if not pieces and not held and not k:
            ctx.outgoing.append(OutgoingEntry(task.chain, task.length, flags, clone=True))
            return
        pieces.append(("data", tail[: len(tail) - k]))
        ctx.scratch, ctx.partialFlags = tail[len(tail) - k :], flags
        for kind, piece in pieces:
            if kind == "match":
                _, nbl = FwpsAllocateNetBufferAndNetBufferList0(
                    None, 0, 0, self.string_x_mdl, 0, len(self.x)
                )
                ctx.outgoing.append(OutgoingEntry(nbl, len(self.x), flags))
            elif piece:
                mdl = Mdl.allocate(bytearray(piece))
                _, nbl = FwpsAllocateNetBufferAndNetBufferList0(None, 0, 0, mdl, 0, len(piece))
                ctx.outgoing.append(OutgoingEntry(nbl, len(piece), flags, mdl=mdl))
        FwpsDiscardClonedStreamData0(task.chain, 0, False)  # its bytes were copied

    def _queue_scratch(self, ctx: StreamFlowContext) -> None:
        if ctx.scratch:
            mdl = Mdl.allocate(bytearray(ctx.scratch))
            _, nbl = FwpsAllocateNetBufferAndNetBufferList0(None, 0, 0, mdl, 0, len(ctx.scratch))
            ctx.outgoing.append(OutgoingEntry(nbl, len(ctx.scratch), ctx.partialFlags, mdl=mdl))
            ctx.scratch = b""

    def _inject_entry(self, ctx: StreamFlowContext, entry: OutgoingEntry) -> int:
        return FwpsStreamInjectAsync0(
            self.injection_handle,
            None,
            0,
            ctx.flowHandle,
            ctx.calloutId,
            ctx.layerId,
            entry.flags,
            entry.nbl,
            entry.length,
            self.clone_inject_complete if entry.clone else self.inject_complete,
            entry.mdl,
        )

    def _flush_outgoing(self, ctx: StreamFlowContext) -> int:
        """§3.4 worker steps 4 and 6: inject in order; after an error return what is left
        without injecting it (R6: no completion will come for it)."""
        status = STATUS_SUCCESS
        while ctx.outgoing:
            entry = ctx.outgoing.pop(0)
            if status == STATUS_SUCCESS and ctx.oobState != "ERROR":
                status = self._inject_entry(ctx, entry)
                if status == STATUS_SUCCESS:
                    continue
            if entry.clone:
                FwpsDiscardClonedStreamData0(entry.nbl, 0, False)
            else:
                FwpsFreeNetBufferList0(entry.nbl)
                if entry.mdl is not None:
                    entry.mdl.free()
        return status

    def _error(self, ctx: StreamFlowContext) -> None:
        """§3.4 worker step 8: the flow is in ERROR; abort it (Win8+), else remove the context."""
        ctx.oobState = "ERROR"
        for task in ctx.tasks:
            FwpsDiscardClonedStreamData0(task.chain, 0, False)
        ctx.tasks.clear()
        status = FwpsFlowAbort0(ctx.flowHandle)
        self.log.aborts.append(int(status))
        if status != STATUS_SUCCESS and ctx.active:
            FwpsFlowRemoveContext0(ctx.flowHandle, ctx.layerId, ctx.calloutId)

    # ---- unload (§3.5) -------------------------------------------------------------------

    def remove_flow_context(self, ctx: StreamFlowContext) -> int:
        """StreamEditRemoveFlowCtx: flush pending data, then remove the context (flowDeleteFn
        runs inside FwpsFlowRemoveContext0 on STATUS_SUCCESS, later on STATUS_PENDING)."""
        if ctx.inline:
            self._flush_scratch(ctx)
        elif ctx.active:
            self.oob_worker(ctx)  # the flow's queued clones, edited and injected in order
            self._queue_scratch(ctx)
            self._flush_outgoing(ctx)
        if not ctx.active:
            return STATUS_SUCCESS
        return FwpsFlowRemoveContext0(ctx.flowHandle, ctx.layerId, ctx.calloutId)

    def unload(self) -> None:
        """Remove every flow context (after flushing its pending data), check the zero-flows
        event, destroy the injection handle — which returns only once every stream injection
        made with it has completed — then close the session and unregister the callouts."""
        self.unloading = True
        with self.stack:
            for ctx in list(self.flows):
                self.remove_flow_context(ctx)
            assert self.zero_flows
            FwpsInjectionHandleDestroy0(self.injection_handle)
            FwpmEngineClose0(self.engine_handle)
            for callout_id in self.callout_ids:
                status = FwpsCalloutUnregisterById0(callout_id)
                assert status == STATUS_SUCCESS, status
        self.string_x_mdl.free()
        self.string_to_replace_mdl.free()


def demo() -> None:
    """Both callout sets: "rainy" becomes "cloudy" (out of band), then "sunny" (inline)."""
    from wfpsim.stack import ip as IP

    stack = wfpsim.Stack()
    stack.add_interface(index=1, addresses=["192.0.2.1/24"])
    driver = StmEditDriver().register(stack)
    flow = stack.open_tcp_flow(AF_INET, ("192.0.2.1", 8888), ("192.0.2.50", 40000), direction=1)
    local, peer = IP.addr_bytes("192.0.2.1"), IP.addr_bytes("192.0.2.50")
    for seq, chunk in ((1, b"it is rai"), (10, b"ny today")):
        segment = IP.tcp_segment(peer, local, 40000, 8888, seq, 0, IP.TCP_ACK | IP.TCP_PSH, chunk)
        stack.receive(1, IP.ip_header(peer, local, IP.IPPROTO_TCP, len(segment)) + segment)
        stack.run()
    print("the application reads", bytes(flow.received))
    flow.close()
    driver.unload()


if __name__ == "__main__":
    demo()
