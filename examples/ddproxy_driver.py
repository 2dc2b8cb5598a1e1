# ruff: noqa: F403, F405, N802, N803, N815  (WDK names, imported by name as driver code does)
"""ddproxy — a datagram-data proxy (destination rewrite, out of band) — as Python callouts.

Our own port of the per-packet logic of Windows-driver-samples ``network/trans/ddproxy``,
written from ``samples.md §2`` (section numbers below refer to it). UDP flows (or non-error ICMP
in ICMP mode) to an *original* destination O:p are transparently redirected to a *new*
destination N:q; replies from N:q are rewritten to look as if they came from O:p:

* ALE_FLOW_ESTABLISHED tags each flow with a context (ORIGINAL or PROXY) associated with the
  DATAGRAM_DATA callout (FwpsFlowAssociateContext0, §2.2);
* the DATAGRAM_DATA callout (FWP_CALLOUT_FLAG_CONDITIONAL_ON_FLOW: it runs only on flows that
  carry its context) references and absorbs matching datagrams (§2.3);
* the worker clones them, rewrites the UDP port of every NET_BUFFER (checksum 0), and sends the
  clone to N (``sendArgs.remoteAddress``) or, inbound, rebuilds the IP header with source O
  (FwpsConstructIpHeaderForTransportPacket0) and receive-injects it (§2.4);
* flowDeleteFn marks the context deleted: queued packets of a deleted flow are freed without
  injection (§2.5, S-12).

Registry values become constructor arguments; the worker thread is a work item on the stack's
dispatcher (``stack.queue_dpc``), run by ``stack.run()``.

Run: ``python examples/ddproxy_driver.py``.
"""

from __future__ import annotations

import ipaddress
import struct
import uuid
from dataclasses import dataclass, field
from typing import Any

import wfpsim
from wfpsim.constants.layers import FIELD_ENUMS
from wfpsim.wdk import *

DD_PROXY_FLOW_ORIGINAL, DD_PROXY_FLOW_PROXY = 1, 2
SUBLAYER_KEY = uuid.UUID("0104fd7e-c825-414e-94c9-f0d525bbc169")


def incoming(inFixedValues: Any, name: str) -> Any:
    layer = FWPS_BUILTIN_LAYERS(inFixedValues.layerId).name.removeprefix("FWPS_LAYER_")
    index = FIELD_ENUMS[layer][f"FWPS_FIELD_{layer}_{name}"]
    return inFixedValues.incomingValue[index].value


def address_bytes(value: Any) -> bytes:
    """Network byte order (R9)."""
    if value.type == FWP_UINT32:
        return value.uint32.to_bytes(4, "big")
    return bytes(value.byteArray16)


@dataclass(eq=False)
class FlowContext:
    """DD_PROXY_FLOW_CONTEXT (§2.2)."""

    flowType: int
    addressFamily: int
    flowId: int
    layerId: int
    calloutId: int
    localAddr: bytes
    protocol: int
    toRemoteAddr: bytes
    toRemotePort: int
    refCount: int = 1
    deleted: bool = False


@dataclass(eq=False)
class PendedPacket:
    """DD_PROXY_PENDED_PACKET (§2.3)."""

    belongingFlow: FlowContext
    direction: int
    netBufferList: Any
    compartmentId: int
    endpointHandle: int = 0
    remoteAddr: bytes = b""
    remoteScopeId: int = 0
    controlData: bytes | None = None
    interfaceIndex: int = 0
    subInterfaceIndex: int = 0
    ipHeaderSize: int = 0
    transportHeaderSize: int = 0
    nblOffset: int = 0


@dataclass
class DDProxyLog:
    flow_contexts: list[tuple[int, int]] = field(default_factory=list)  # (flowId, flowType)
    datagram_classifies: list[tuple[int, int, str]] = field(default_factory=list)
    injections: list[tuple[str, int]] = field(default_factory=list)
    completions: list[int] = field(default_factory=list)
    flow_deletes: list[int] = field(default_factory=list)  # flowType of each flowDeleteFn
    freed_without_injection: int = 0
    remove_context_statuses: list[int] = field(default_factory=list)


class DDProxyDriver:
    """ddproxy for one family: ``original`` and ``new`` are (address literal, port); with
    ``inspect_udp=False`` (ICMP mode) the ports are ignored."""

    def __init__(
        self,
        original: tuple[str, int],
        new: tuple[str, int],
        *,
        inspect_udp: bool = True,
    ) -> None:
        self.original = (ipaddress.ip_address(original[0]), original[1])
        self.new = (ipaddress.ip_address(new[0]), new[1])
        if self.original[0].version != self.new[0].version:
            raise ValueError("STATUS_DEVICE_CONFIGURATION_ERROR: one address family")
        if inspect_udp and self.original == self.new:
            raise ValueError("STATUS_DEVICE_CONFIGURATION_ERROR: nothing to redirect")
        self.inspect_udp = inspect_udp
        self.stack: wfpsim.Stack | None = None
        self.engine: Any = None
        self.injection_handle: Any = None
        self.flow_list: list[FlowContext] = []
        self.packet_queue: list[PendedPacket] = []
        self.unloading = False
        self.worker_signalled = False
        self.flow_established_id = 0
        self.datagram_data_id = 0
        self.engine_handle: Any = None
        self.log = DDProxyLog()

    # ---- DriverEntry (§2.1) --------------------------------------------------------------

    def register(self, stack_or_engine: Any) -> DDProxyDriver:
        stack = stack_or_engine if isinstance(stack_or_engine, wfpsim.Stack) else None
        engine = stack.filter_engine if stack is not None else stack_or_engine
        self.stack = stack if stack is not None else engine.stack
        self.engine = engine
        with self.stack:
            status, self.injection_handle = FwpsInjectionHandleCreate0(
                AF_UNSPEC, FWPS_INJECTION_TYPE_TRANSPORT
            )
        assert status == STATUS_SUCCESS
        sfx = "V4" if self.original[0].version == 4 else "V6"
        self.af = AF_INET if sfx == "V4" else AF_INET6
        self.fe_layer = FWPS_BUILTIN_LAYERS[f"FWPS_LAYER_ALE_FLOW_ESTABLISHED_{sfx}"]
        self.dd_layer = FWPS_BUILTIN_LAYERS[f"FWPS_LAYER_DATAGRAM_DATA_{sfx}"]
        device = DEVICE_OBJECT(engine)
        fe_key = uuid.uuid5(SUBLAYER_KEY, f"flow-established-{sfx}")
        dd_key = uuid.uuid5(SUBLAYER_KEY, f"datagram-data-{sfx}")
        status, self.flow_established_id = FwpsCalloutRegister(
            device, FWPS_CALLOUT(fe_key, 0, self.flow_established_classify, self.notify, None)
        )
        assert status == STATUS_SUCCESS
        status, self.datagram_data_id = FwpsCalloutRegister(
            device,
            FWPS_CALLOUT(
                dd_key,
                FWP_CALLOUT_FLAG_CONDITIONAL_ON_FLOW,
                self.datagram_data_classify,
                self.notify,
                self.flow_delete,
            ),
        )
        assert status == STATUS_SUCCESS
        _, self.engine_handle = FwpmEngineOpen0(
            None, 0, None, FWPM_SESSION0(flags=FWPM_SESSION_FLAG_DYNAMIC), engine
        )
        h = self.engine_handle
        FwpmTransactionBegin0(h)
        FwpmSubLayerAdd0(h, FWPM_SUBLAYER0(SUBLAYER_KEY, FWPM_DISPLAY_DATA0("DDProxy"), weight=0))
        FwpmCalloutAdd0(h, FWPM_CALLOUT0(fe_key, applicableLayer=self.fe_layer))
        FwpmCalloutAdd0(h, FWPM_CALLOUT0(dd_key, applicableLayer=self.dd_layer))
        # ALE_FLOW_ESTABLISHED: the "original flow" and the "proxy flow" filters (§2.1 step 4)
        for (address, port), flow_type in (
            (self.original, DD_PROXY_FLOW_ORIGINAL),
            (self.new, DD_PROXY_FLOW_PROXY),
        ):
            self._add_filter(
                fe_key, self.fe_layer, address, port, FWP_DIRECTION_OUTBOUND, flow_type
            )
        # DATAGRAM_DATA: outbound to the original destination, inbound from the new one (step 5)
        self._add_filter(dd_key, self.dd_layer, *self.original, FWP_DIRECTION_OUTBOUND, 0)
        self._add_filter(dd_key, self.dd_layer, *self.new, FWP_DIRECTION_INBOUND, 0)
        FwpmTransactionCommit0(h)
        return self

    def _add_filter(
        self, callout_key: Any, layer: int, address: Any, port: int, direction: int, context: int
    ) -> None:
        name = FWPS_BUILTIN_LAYERS(layer).name.removeprefix("FWPS_LAYER_")
        fields = FIELD_ENUMS[name]

        def cond(field_name: str, value: FWP_CONDITION_VALUE0) -> FWPM_FILTER_CONDITION0:
            index = fields[f"FWPS_FIELD_{name}_{field_name}"]
            return FWPM_FILTER_CONDITION0(index, FWP_MATCH_EQUAL, value)

        if address.version == 4:
            addr = FWP_CONDITION_VALUE0(FWP_UINT32, int(address))  # host order
        else:
            addr = FWP_CONDITION_VALUE0(FWP_BYTE_ARRAY16_TYPE, address.packed)
        conditions = [
            cond("IP_REMOTE_ADDRESS", addr),
            cond("DIRECTION", FWP_CONDITION_VALUE0(FWP_UINT32, direction)),
        ]
        if self.inspect_udp:
            conditions.append(cond("IP_REMOTE_PORT", FWP_CONDITION_VALUE0(FWP_UINT16, port)))
            conditions.append(cond("IP_PROTOCOL", FWP_CONDITION_VALUE0(FWP_UINT8, IPPROTO_UDP)))
        status, _ = FwpmFilterAdd0(
            self.engine_handle,
            FWPM_FILTER0(
                layerKey=layer,
                subLayerKey=SUBLAYER_KEY,
                numFilterConditions=len(conditions),
                filterCondition=conditions,
                action=FWPM_ACTION0(FWP_ACTION_CALLOUT_TERMINATING, callout_key),
                rawContext=context,
            ),
        )
        assert status == STATUS_SUCCESS, status

    @staticmethod
    def notify(notifyType: int, filterKey: Any, filter: Any) -> int:
        return STATUS_SUCCESS

    # ---- ALE_FLOW_ESTABLISHED (§2.2) -----------------------------------------------------

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
        assert FWPS_IS_METADATA_FIELD_PRESENT(inMetaValues, FWPS_METADATA_FIELD_FLOW_HANDLE)
        flow_type = filter.context
        if flow_type == DD_PROXY_FLOW_ORIGINAL:
            target, port = self.new
        else:
            target, port = self.original
        ctx = FlowContext(
            flowType=flow_type,
            addressFamily=self.af,
            flowId=inMetaValues.flowHandle,
            layerId=self.dd_layer,
            calloutId=self.datagram_data_id,
            localAddr=address_bytes(incoming(inFixedValues, "IP_LOCAL_ADDRESS")),
            protocol=incoming(inFixedValues, "IP_PROTOCOL").uint8,
            toRemoteAddr=target.packed,
            toRemotePort=port,
        )
        status = STATUS_UNSUCCESSFUL
        if not self.unloading:
            status = FwpsFlowAssociateContext0(ctx.flowId, ctx.layerId, ctx.calloutId, ctx)
            if status == STATUS_SUCCESS:
                self.flow_list.append(ctx)
                self.log.flow_contexts.append((ctx.flowId, flow_type))
        if status != STATUS_SUCCESS:
            classifyOut.actionType = FWP_ACTION_BLOCK
            classifyOut.rights &= ~FWPS_RIGHT_ACTION_WRITE
            return
        classifyOut.actionType = FWP_ACTION_PERMIT
        if filter.flags & FWPS_FILTER_FLAG_CLEAR_ACTION_RIGHT:
            classifyOut.rights &= ~FWPS_RIGHT_ACTION_WRITE

    # ---- DATAGRAM_DATA (§2.3) ------------------------------------------------------------

    def datagram_data_classify(
        self,
        inFixedValues,
        inMetaValues,
        layerData,
        classifyContext,
        filter,
        flowContext,
        classifyOut,
    ) -> None:
        if not classifyOut.rights & FWPS_RIGHT_ACTION_WRITE:  # R1
            return
        state, _ = FwpsQueryPacketInjectionState0(self.injection_handle, layerData, None)
        direction = incoming(inFixedValues, "DIRECTION").uint32
        if state in (FWPS_PACKET_INJECTED_BY_SELF, FWPS_PACKET_PREVIOUSLY_INJECTED_BY_SELF):
            classifyOut.actionType = FWP_ACTION_PERMIT  # R2
            if filter.flags & FWPS_FILTER_FLAG_CLEAR_ACTION_RIGHT:
                classifyOut.rights &= ~FWPS_RIGHT_ACTION_WRITE
            self.log.datagram_classifies.append((direction, int(state), "permit-self"))
            return
        flow: FlowContext = flowContext
        flow.refCount += 1
        FwpsReferenceNetBufferList0(layerData, True)
        rec = PendedPacket(flow, direction, layerData, inMetaValues.compartmentId)
        if direction == FWP_DIRECTION_OUTBOUND:
            rec.endpointHandle = inMetaValues.transportEndpointHandle
            rec.remoteAddr = address_bytes(incoming(inFixedValues, "IP_REMOTE_ADDRESS"))
            rec.remoteScopeId = inMetaValues.remoteScopeId
            if FWPS_IS_METADATA_FIELD_PRESENT(
                inMetaValues, FWPS_METADATA_FIELD_TRANSPORT_CONTROL_DATA
            ):
                rec.controlData = bytes(inMetaValues.controlData)
        else:
            rec.interfaceIndex = incoming(inFixedValues, "INTERFACE_INDEX").uint32
            rec.subInterfaceIndex = incoming(inFixedValues, "SUB_INTERFACE_INDEX").uint32
            rec.ipHeaderSize = inMetaValues.ipHeaderSize
            rec.transportHeaderSize = inMetaValues.transportHeaderSize
            rec.nblOffset = NET_BUFFER_DATA_OFFSET(NET_BUFFER_LIST_FIRST_NB(layerData))
        if self.unloading:
            self.free_pended_packet(rec)
            classifyOut.actionType = FWP_ACTION_PERMIT
            return
        self.packet_queue.append(rec)
        classifyOut.actionType = FWP_ACTION_BLOCK
        classifyOut.rights &= ~FWPS_RIGHT_ACTION_WRITE
        classifyOut.flags |= FWPS_CLASSIFY_OUT_FLAG_ABSORB
        self.log.datagram_classifies.append((direction, int(state), "absorb"))
        if not self.worker_signalled:
            self.worker_signalled = True
            self.stack.queue_dpc(self.worker, label="DDProxy worker")

    # ---- flowDeleteFn and the records' lifetime ------------------------------------------

    def flow_delete(self, layerId: int, calloutId: int, flowContext: Any) -> None:
        """§2.5: unlink unless unload already did; mark it deleted so that queued packets of
        the flow are freed without injection (S-12); drop the association's reference."""
        ctx: FlowContext = flowContext
        if not ctx.deleted:
            ctx.deleted = True
            if ctx in self.flow_list:
                self.flow_list.remove(ctx)
        self.log.flow_deletes.append(ctx.flowType)
        ctx.refCount -= 1

    def free_pended_packet(self, rec: PendedPacket) -> None:
        FwpsDereferenceNetBufferList0(rec.netBufferList, False)
        rec.belongingFlow.refCount -= 1
        rec.controlData = None

    # ---- the worker (§2.4) ---------------------------------------------------------------

    def worker(self) -> None:
        self.worker_signalled = False
        while self.packet_queue:
            rec = self.packet_queue.pop(0)
            if self.unloading or rec.belongingFlow.deleted:
                self.log.freed_without_injection += 1
                self.free_pended_packet(rec)
                continue
            if rec.direction == FWP_DIRECTION_OUTBOUND:
                status = self.clone_modify_reinject_outbound(rec)
            else:
                status = self.clone_modify_reinject_inbound(rec)
            if status != STATUS_SUCCESS:
                self.free_pended_packet(rec)

    def clone_modify_reinject_outbound(self, rec: PendedPacket) -> int:
        flow = rec.belongingFlow
        status, clone = FwpsAllocateCloneNetBufferList0(rec.netBufferList, None, None, 0)
        if status != STATUS_SUCCESS:
            return status
        if flow.protocol == IPPROTO_UDP and flow.toRemotePort:
            nb = NET_BUFFER_LIST_FIRST_NB(clone)
            while nb is not None:  # every NET_BUFFER: destination port, checksum 0
                udp = NdisGetDataBuffer(nb, 8, None, 1, 0)
                struct.pack_into("!H", udp, 2, flow.toRemotePort)
                struct.pack_into("!H", udp, 6, 0)
                nb = NET_BUFFER_NEXT_NB(nb)
        send_args = FWPS_TRANSPORT_SEND_PARAMS(
            remoteAddress=flow.toRemoteAddr or rec.remoteAddr,
            remoteScopeId=rec.remoteScopeId,
            controlData=rec.controlData,
            controlDataLength=len(rec.controlData or b""),
        )
        status = FwpsInjectTransportSendAsync(
            self.injection_handle,
            None,
            rec.endpointHandle,
            0,
            send_args,
            flow.addressFamily,
            rec.compartmentId,
            clone,
            self.inject_complete,
            rec,
        )
        self.log.injections.append(("FwpsInjectTransportSendAsync", int(status)))
        if status != STATUS_SUCCESS:
            FwpsFreeCloneNetBufferList0(clone, 0)
        return status

    def clone_modify_reinject_inbound(self, rec: PendedPacket) -> int:
        flow = rec.belongingFlow
        nb = NET_BUFFER_LIST_FIRST_NB(rec.netBufferList)
        transport_header_size = rec.transportHeaderSize
        if NET_BUFFER_DATA_OFFSET(nb) != rec.nblOffset:  # offset drift (B4)
            assert rec.nblOffset - NET_BUFFER_DATA_OFFSET(nb) == rec.transportHeaderSize
            transport_header_size = 0
        back = rec.ipHeaderSize + transport_header_size
        NdisRetreatNetBufferDataStart(nb, back, 0, None)
        status, clone = FwpsAllocateCloneNetBufferList0(rec.netBufferList, None, None, 0)
        NdisAdvanceNetBufferDataStart(nb, back, False, None)
        if status != STATUS_SUCCESS:
            return status
        if flow.protocol == IPPROTO_UDP and flow.toRemotePort:
            first = NET_BUFFER_LIST_FIRST_NB(clone)
            NdisAdvanceNetBufferDataStart(first, rec.ipHeaderSize, False, None)
            udp = NdisGetDataBuffer(first, 8, None, 1, 0)
            struct.pack_into("!H", udp, 0, flow.toRemotePort)  # source port := p
            struct.pack_into("!H", udp, 6, 0)
            NdisRetreatNetBufferDataStart(first, rec.ipHeaderSize, 0, None)
        if flow.toRemoteAddr:
            status = FwpsConstructIpHeaderForTransportPacket0(
                clone,
                rec.ipHeaderSize,
                flow.addressFamily,
                flow.toRemoteAddr,  # the new source: O
                flow.localAddr,
                flow.protocol,
                0,
                None,
                0,
                0,
                None,
                0,
                0,
            )
            if status != STATUS_SUCCESS:
                FwpsFreeCloneNetBufferList0(clone, 0)
                return status
        status = FwpsInjectTransportReceiveAsync0(
            self.injection_handle,
            None,
            None,
            0,
            flow.addressFamily,
            rec.compartmentId,
            rec.interfaceIndex,
            rec.subInterfaceIndex,
            clone,
            self.inject_complete,
            rec,
        )
        self.log.injections.append(("FwpsInjectTransportReceiveAsync0", int(status)))
        if status != STATUS_SUCCESS:
            FwpsFreeCloneNetBufferList0(clone, 0)
        return status

    def inject_complete(
        self, context: PendedPacket, netBufferList: Any, dispatchLevel: bool
    ) -> None:
        """DDProxyInjectComplete."""
        self.log.completions.append(int(netBufferList.Status))
        FwpsFreeCloneNetBufferList0(netBufferList, 0)
        self.free_pended_packet(context)

    # ---- DriverUnload (§2.5) -------------------------------------------------------------

    def remove_flow_contexts(self) -> None:
        """For each listed flow: unlink, mark deleted, then (no lock held) remove the context;
        flowDeleteFn runs synchronously inside FwpsFlowRemoveContext0."""
        self.unloading = True
        with self.stack:
            while self.flow_list:
                ctx = self.flow_list.pop(0)
                ctx.deleted = True
                status = FwpsFlowRemoveContext0(ctx.flowId, ctx.layerId, ctx.calloutId)
                self.log.remove_context_statuses.append(int(status))

    def unload(self) -> None:
        self.remove_flow_contexts()
        if self.packet_queue and not self.worker_signalled:
            self.worker_signalled = True
            self.stack.queue_dpc(self.worker, label="DDProxy worker (unload)")
        self.stack.run()  # wait for the worker: it frees the queued records
        with self.stack:
            FwpmEngineClose0(self.engine_handle)
            for callout_id in (self.flow_established_id, self.datagram_data_id):
                status = FwpsCalloutUnregisterById0(callout_id)
                assert status == STATUS_SUCCESS, status
            FwpsInjectionHandleDestroy0(self.injection_handle)


def demo() -> None:
    """An application talks to 192.0.2.50:53; ddproxy sends its datagram to 192.0.2.60:5353
    and the reply comes back as if from 192.0.2.50:53."""
    stack = wfpsim.Stack()
    stack.add_interface(index=1, addresses=["192.0.2.1/24"])
    driver = DDProxyDriver(("192.0.2.50", 53), ("192.0.2.60", 5353)).register(stack)
    app = stack.open_endpoint(AF_INET, IPPROTO_UDP, "192.0.2.1", 40000)
    stack.send(app, b"question", ("192.0.2.50", 53))
    stack.run()
    out = stack.wire[-1].data
    print(
        "on the wire to", ".".join(map(str, out[16:20])), "port", int.from_bytes(out[22:24], "big")
    )
    reply = wfpsim.stack.ip.udp_datagram(out[16:20], out[12:16], 5353, 40000, b"answer")
    stack.receive(1, wfpsim.stack.ip.ip_header(out[16:20], out[12:16], 17, len(reply)) + reply)
    stack.run()
    print("the application got", app.received[-1])
    app.close()
    driver.unload()


if __name__ == "__main__":
    demo()
