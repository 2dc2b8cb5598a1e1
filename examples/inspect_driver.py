# ruff: noqa: F403, F405, N802, N803, N815  (WDK names, imported by name as driver code does)
"""TLInspect — transport-layer inspection with out-of-band clone-reinject — as Python callouts.

Our own port of the per-packet logic of Windows-driver-samples ``network/trans/inspect``, written
from the step lists of ``samples.md §1`` (section numbers below refer to it). Every connection
and every TCP/UDP/ICMP packet to or from one remote address is held, handed to a worker, and
then re-injected unchanged (permit) or silently dropped (``block_traffic``):

* ALE_AUTH_CONNECT / ALE_AUTH_RECV_ACCEPT classifies are pended (FwpsPendOperation0) and
  completed by the worker; outbound connects come back as a re-authorisation classify (§1.4);
* OUTBOUND_/INBOUND_TRANSPORT packets are referenced, absorbed, cloned by the worker and
  re-injected with FwpsInjectTransportSendAsync / FwpsInjectTransportReceiveAsync0 (§1.7, §1.8);
* the injected clone comes back to the same callout, which sees INJECTED_BY_SELF and permits it.

Differences from the C sample, all Windows-neutral: the registry values are constructor
arguments; the system thread + event is a worker queued on the stack's dispatcher
(``stack.queue_dpc``) whenever the queues go from empty to non-empty, so it runs when the host
calls ``stack.run()``; ports and addresses are Python ints / bytes (addresses kept in network
order as the sample does, ports as plain numbers).

Run: ``python examples/inspect_driver.py``.
"""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import dataclass, field
from typing import Any

import wfpsim
from wfpsim.constants.layers import FIELD_ENUMS
from wfpsim.wdk import *

CONNECT, DATA, REAUTH = "CONNECT", "DATA", "REAUTH"

SUBLAYER_KEY = uuid.UUID("2e207682-d95f-4525-b966-969f26587f03")


def incoming(inFixedValues: Any, name: str) -> Any:
    """The FWP_VALUE0 of field ``name`` at the classify's layer (the sample's
    GetNetwork5TupleIndexesForLayer)."""
    layer = FWPS_BUILTIN_LAYERS(inFixedValues.layerId).name.removeprefix("FWPS_LAYER_")
    index = FIELD_ENUMS[layer][f"FWPS_FIELD_{layer}_{name}"]
    return inFixedValues.incomingValue[index].value


def address_bytes(value: Any) -> bytes:
    """An IP address incoming value in network byte order (R9: FWP_UINT32 is host order)."""
    if value.type == FWP_UINT32:
        return value.uint32.to_bytes(4, "big")  # RtlUlongByteSwap
    return bytes(value.byteArray16)


@dataclass(eq=False)
class PendedPacket:
    """TL_INSPECT_PENDED_PACKET (§1.2)."""

    type: str
    direction: int
    addressFamily: int
    localAddr: bytes = b""
    remoteAddr: bytes = b""
    localPort: int = 0
    remotePort: int = 0
    protocol: int = 0
    netBufferList: Any = None
    compartmentId: int = 0
    endpointHandle: int = 0
    remoteScopeId: int = 0
    controlData: bytes | None = None
    interfaceIndex: int = 0
    subInterfaceIndex: int = 0
    ipHeaderSize: int = 0
    transportHeaderSize: int = 0
    ipSecProtected: bool = False
    nblOffset: int = 0
    completionContext: Any = None
    authConnectDecision: int = 0


@dataclass
class InspectLog:
    """What the driver did, for tests and the demo."""

    classifies: list[tuple[str, int, str]] = field(default_factory=list)  # (layer, state, result)
    injections: list[tuple[str, int]] = field(default_factory=list)  # (function, status)
    completions: list[int] = field(default_factory=list)  # nbl.Status per completion
    pends: list[str] = field(default_factory=list)  # layer names
    completed_operations: list[tuple[str, bool]] = field(default_factory=list)  # (dir, with NBL)
    freed_without_injection: int = 0


class InspectDriver:
    """TLInspect. ``remote_address``: the RemoteAddressToInspect value (IPv4 or IPv6 literal);
    ``block_traffic``: the BlockTraffic value, re-read by the worker for every item."""

    def __init__(self, remote_address: str, *, block_traffic: bool = False) -> None:
        self.remote = ipaddress.ip_address(remote_address)
        self.block_traffic = block_traffic
        self.stack: wfpsim.Stack | None = None
        self.engine: Any = None
        self.injection_handle: Any = None
        self.connection_list: list[PendedPacket] = []
        self.packet_queue: list[PendedPacket] = []
        self.unloading = False
        self.worker_signalled = False
        self.callout_ids: list[int] = []
        self.engine_handle: Any = None
        self.log = InspectLog()

    # ---- DriverEntry (§1.1) --------------------------------------------------------------

    def register(self, stack_or_engine: Any) -> InspectDriver:
        """Creates the injection handle, the sublayer (weight 0), the four callouts and their
        filters for the family of the configured address, in a dynamic session."""
        stack = stack_or_engine if isinstance(stack_or_engine, wfpsim.Stack) else None
        engine = stack.filter_engine if stack is not None else stack_or_engine
        self.stack = stack if stack is not None else engine.stack
        self.engine = engine
        with self.stack:
            status, self.injection_handle = FwpsInjectionHandleCreate0(
                AF_UNSPEC, FWPS_INJECTION_TYPE_TRANSPORT
            )
        assert status == STATUS_SUCCESS
        v4 = self.remote.version == 4
        status, self.engine_handle = FwpmEngineOpen0(
            None,
            0,
            None,
            FWPM_SESSION0(flags=FWPM_SESSION_FLAG_DYNAMIC),
            engine,
        )
        FwpmTransactionBegin0(self.engine_handle)
        # weight 0: below FWPM_SUBLAYER_UNIVERSAL, so the IPsec interop rules hold (§1.1 step 4)
        FwpmSubLayerAdd0(
            self.engine_handle,
            FWPM_SUBLAYER0(
                SUBLAYER_KEY, FWPM_DISPLAY_DATA0("Transport Inspect Sub-Layer"), weight=0
            ),
        )
        sfx = "V4" if v4 else "V6"
        condition_value = (
            FWP_CONDITION_VALUE0(FWP_UINT32, int(self.remote))  # host order for V4 (§1.1)
            if v4
            else FWP_CONDITION_VALUE0(FWP_BYTE_ARRAY16_TYPE, self.remote.packed)
        )
        for base, classify in (
            ("ALE_AUTH_CONNECT", self.connect_classify),
            ("ALE_AUTH_RECV_ACCEPT", self.recv_accept_classify),
            ("OUTBOUND_TRANSPORT", self.transport_classify),
            ("INBOUND_TRANSPORT", self.transport_classify),
        ):
            layer = FWPS_BUILTIN_LAYERS[f"FWPS_LAYER_{base}_{sfx}"]
            key = uuid.uuid5(SUBLAYER_KEY, f"{base}_{sfx}")
            status, callout_id = FwpsCalloutRegister(
                DEVICE_OBJECT(engine), FWPS_CALLOUT(key, 0, classify, self.notify, None)
            )
            assert status == STATUS_SUCCESS, status
            self.callout_ids.append(callout_id)
            FwpmCalloutAdd0(self.engine_handle, FWPM_CALLOUT0(key, applicableLayer=layer))
            remote_field = FIELD_ENUMS[f"{base}_{sfx}"][
                f"FWPS_FIELD_{base}_{sfx}_IP_REMOTE_ADDRESS"
            ]
            status, _ = FwpmFilterAdd0(
                self.engine_handle,
                FWPM_FILTER0(
                    displayData=FWPM_DISPLAY_DATA0(f"Transport Inspect {base}"),
                    layerKey=layer,
                    subLayerKey=SUBLAYER_KEY,
                    weight=FWP_VALUE0(),  # FWP_EMPTY: auto weight
                    numFilterConditions=1,
                    filterCondition=[
                        FWPM_FILTER_CONDITION0(remote_field, FWP_MATCH_EQUAL, condition_value)
                    ],
                    action=FWPM_ACTION0(FWP_ACTION_CALLOUT_TERMINATING, key),
                ),
            )
            assert status == STATUS_SUCCESS, status
        FwpmTransactionCommit0(self.engine_handle)
        return self

    @staticmethod
    def notify(notifyType: int, filterKey: Any, filter: Any) -> int:
        return STATUS_SUCCESS

    # ---- the per-packet record (§1.2) ----------------------------------------------------

    def allocate_pended_packet(
        self,
        inFixedValues: Any,
        inMetaValues: Any,
        addressFamily: int,
        layerData: Any,
        packetType: str,
        direction: int,
    ) -> PendedPacket:
        rec = PendedPacket(packetType, direction, addressFamily)
        rec.localAddr = address_bytes(incoming(inFixedValues, "IP_LOCAL_ADDRESS"))
        rec.remoteAddr = address_bytes(incoming(inFixedValues, "IP_REMOTE_ADDRESS"))
        rec.protocol = incoming(inFixedValues, "IP_PROTOCOL").uint8
        if rec.protocol in (IPPROTO_TCP, IPPROTO_UDP):
            rec.localPort = incoming(inFixedValues, "IP_LOCAL_PORT").uint16
            rec.remotePort = incoming(inFixedValues, "IP_REMOTE_PORT").uint16
        if layerData is not None:
            FwpsReferenceNetBufferList0(layerData, True)  # R4: keep it past classifyFn
            rec.netBufferList = layerData
        assert FWPS_IS_METADATA_FIELD_PRESENT(inMetaValues, FWPS_METADATA_FIELD_COMPARTMENT_ID)
        rec.compartmentId = inMetaValues.compartmentId
        if direction == FWP_DIRECTION_OUTBOUND and layerData is not None:
            rec.endpointHandle = inMetaValues.transportEndpointHandle
            rec.remoteScopeId = inMetaValues.remoteScopeId
            if FWPS_IS_METADATA_FIELD_PRESENT(
                inMetaValues, FWPS_METADATA_FIELD_TRANSPORT_CONTROL_DATA
            ):
                rec.controlData = bytes(inMetaValues.controlData)  # deep copy (R8)
        elif direction == FWP_DIRECTION_INBOUND:
            rec.interfaceIndex = incoming(inFixedValues, "INTERFACE_INDEX").uint32
            rec.subInterfaceIndex = incoming(inFixedValues, "SUB_INTERFACE_INDEX").uint32
            assert FWPS_IS_METADATA_FIELD_PRESENT(inMetaValues, FWPS_METADATA_FIELD_IP_HEADER_SIZE)
            rec.ipHeaderSize = inMetaValues.ipHeaderSize
            rec.transportHeaderSize = inMetaValues.transportHeaderSize
            if layerData is not None:
                _, info = FwpsGetPacketListSecurityInformation0(
                    layerData,
                    FWPS_PACKET_LIST_INFORMATION_QUERY_IPSEC
                    | FWPS_PACKET_LIST_INFORMATION_QUERY_INBOUND,
                )
                rec.ipSecProtected = bool(info.ipsecInformation.inbound.isSecure)
                rec.nblOffset = NET_BUFFER_DATA_OFFSET(NET_BUFFER_LIST_FIRST_NB(layerData))
        return rec

    def free_pended_packet(self, rec: PendedPacket) -> None:
        """FreePendedPacket (§1.2)."""
        if rec.netBufferList is not None:
            FwpsDereferenceNetBufferList0(rec.netBufferList, False)
            rec.netBufferList = None
        rec.controlData = None
        if rec.completionContext is not None:  # only an inbound recv-accept: refuse it
            assert rec.direction == FWP_DIRECTION_INBOUND
            ctx, rec.completionContext = rec.completionContext, None
            FwpsCompleteOperation0(ctx, None)
            self.log.completed_operations.append(("inbound", False))

    # ---- classifyFns ---------------------------------------------------------------------

    def _injected_by_self(self, layerData: Any) -> bool:
        state, _ = FwpsQueryPacketInjectionState0(self.injection_handle, layerData, None)
        return state in (FWPS_PACKET_INJECTED_BY_SELF, FWPS_PACKET_PREVIOUSLY_INJECTED_BY_SELF)

    @staticmethod
    def _permit(filter: Any, classifyOut: Any) -> None:
        classifyOut.actionType = FWP_ACTION_PERMIT
        if filter.flags & FWPS_FILTER_FLAG_CLEAR_ACTION_RIGHT:
            classifyOut.rights &= ~FWPS_RIGHT_ACTION_WRITE

    @staticmethod
    def _absorb(classifyOut: Any) -> None:
        """R3: take ownership of the packet."""
        classifyOut.actionType = FWP_ACTION_BLOCK
        classifyOut.rights &= ~FWPS_RIGHT_ACTION_WRITE
        classifyOut.flags |= FWPS_CLASSIFY_OUT_FLAG_ABSORB

    def _note(self, inFixedValues: Any, state: int, result: str) -> None:
        layer = FWPS_BUILTIN_LAYERS(inFixedValues.layerId).name.removeprefix("FWPS_LAYER_")
        self.log.classifies.append((layer, state, result))

    def _state(self, layerData: Any) -> int:
        if layerData is None:
            return -1
        return int(FwpsQueryPacketInjectionState0(self.injection_handle, layerData, None)[0])

    def transport_classify(
        self,
        inFixedValues: Any,
        inMetaValues: Any,
        layerData: Any,
        classifyContext: Any,
        filter: Any,
        flowContext: int,
        classifyOut: Any,
    ) -> None:
        """TLInspectTransportClassify (§1.3)."""
        if not classifyOut.rights & FWPS_RIGHT_ACTION_WRITE:  # 1. R1
            return
        state = self._state(layerData)
        if self._injected_by_self(layerData):  # 2. R2
            self._permit(filter, classifyOut)
            return self._note(inFixedValues, state, "permit-self")
        layer = inFixedValues.layerId
        inbound = layer in (FWPS_LAYER_INBOUND_TRANSPORT_V4, FWPS_LAYER_INBOUND_TRANSPORT_V6)
        af = AF_INET if layer in (FWPS_LAYER_INBOUND_TRANSPORT_V4,
                                  FWPS_LAYER_OUTBOUND_TRANSPORT_V4) else AF_INET6  # fmt: skip
        if inbound:  # 3. inspected at ALE_AUTH_RECV_ACCEPT instead; never tunnelled IPsec
            if FWPS_IS_METADATA_FIELD_PRESENT(
                inMetaValues, FWPS_METADATA_FIELD_ALE_CLASSIFY_REQUIRED
            ):
                self._permit(filter, classifyOut)
                return self._note(inFixedValues, state, "permit-ale-required")
            _, info = FwpsGetPacketListSecurityInformation0(
                layerData,
                FWPS_PACKET_LIST_INFORMATION_QUERY_IPSEC
                | FWPS_PACKET_LIST_INFORMATION_QUERY_INBOUND,
            )
            ipsec = info.ipsecInformation.inbound
            if ipsec.isTunnelMode and not ipsec.isDeTunneled:
                self._permit(filter, classifyOut)
                return self._note(inFixedValues, state, "permit-tunnel")
        direction = FWP_DIRECTION_INBOUND if inbound else FWP_DIRECTION_OUTBOUND
        rec = self.allocate_pended_packet(  # 4.
            inFixedValues, inMetaValues, af, layerData, DATA, direction
        )
        if self.unloading:  # 5.
            self.free_pended_packet(rec)
            self._permit(filter, classifyOut)
            return self._note(inFixedValues, state, "permit-unloading")
        self.packet_queue.append(rec)
        self._absorb(classifyOut)
        self._signal_worker()
        self._note(inFixedValues, state, "absorb")

    def connect_classify(
        self,
        inFixedValues: Any,
        inMetaValues: Any,
        layerData: Any,
        classifyContext: Any,
        filter: Any,
        flowContext: int,
        classifyOut: Any,
    ) -> None:
        """TLInspectALEConnectClassify (§1.4)."""
        if not classifyOut.rights & FWPS_RIGHT_ACTION_WRITE:
            return
        state = self._state(layerData)
        if layerData is not None and self._injected_by_self(layerData):
            self._permit(filter, classifyOut)
            return self._note(inFixedValues, state, "permit-self")
        af = AF_INET if inFixedValues.layerId == FWPS_LAYER_ALE_AUTH_CONNECT_V4 else AF_INET6
        flags = incoming(inFixedValues, "FLAGS").uint32
        if not flags & FWP_CONDITION_FLAG_IS_REAUTHORIZE:  # 2. initial authorisation
            rec = self.allocate_pended_packet(
                inFixedValues, inMetaValues, af, layerData, CONNECT, FWP_DIRECTION_OUTBOUND
            )
            status, rec.completionContext = FwpsPendOperation0(inMetaValues.completionHandle)
            if status != STATUS_SUCCESS:
                self.free_pended_packet(rec)
                classifyOut.actionType = FWP_ACTION_BLOCK
                classifyOut.rights &= ~FWPS_RIGHT_ACTION_WRITE
                return self._note(inFixedValues, state, "block-pend-failed")
            self.log.pends.append("ALE_AUTH_CONNECT")
            self.connection_list.append(rec)
            self._absorb(classifyOut)
            self._signal_worker()
            return self._note(inFixedValues, state, "pend")
        # 3. re-authorisation
        direction = inMetaValues.packetDirection
        if direction == FWP_DIRECTION_OUTBOUND:
            probe = self.allocate_pended_packet(
                inFixedValues, inMetaValues, af, None, CONNECT, FWP_DIRECTION_OUTBOUND
            )
            for rec in self.connection_list:
                if rec.authConnectDecision and self._same_connection(rec, probe):
                    self.connection_list.remove(rec)
                    classifyOut.actionType = rec.authConnectDecision
                    if (
                        rec.authConnectDecision == FWP_ACTION_BLOCK
                        or filter.flags & FWPS_FILTER_FLAG_CLEAR_ACTION_RIGHT
                    ):
                        classifyOut.rights &= ~FWPS_RIGHT_ACTION_WRITE
                    if (
                        not self.unloading
                        and rec.netBufferList is not None
                        and rec.authConnectDecision == FWP_ACTION_PERMIT
                    ):
                        rec.type = DATA  # the datagram held at connect time is sent now
                        self.packet_queue.append(rec)
                        self._signal_worker()
                    else:
                        self.free_pended_packet(rec)
                    decision = "permit" if rec.authConnectDecision == FWP_ACTION_PERMIT else "block"
                    return self._note(inFixedValues, state, f"reauth-{decision}")
        self._reauth_packet(inFixedValues, inMetaValues, layerData, af, filter, classifyOut)

    def recv_accept_classify(
        self,
        inFixedValues: Any,
        inMetaValues: Any,
        layerData: Any,
        classifyContext: Any,
        filter: Any,
        flowContext: int,
        classifyOut: Any,
    ) -> None:
        """TLInspectALERecvAcceptClassify (§1.5)."""
        if not classifyOut.rights & FWPS_RIGHT_ACTION_WRITE:
            return
        state = self._state(layerData)
        if self._injected_by_self(layerData):
            self._permit(filter, classifyOut)
            return self._note(inFixedValues, state, "permit-self")
        af = AF_INET if inFixedValues.layerId == FWPS_LAYER_ALE_AUTH_RECV_ACCEPT_V4 else AF_INET6
        flags = incoming(inFixedValues, "FLAGS").uint32
        if flags & FWP_CONDITION_FLAG_IS_REAUTHORIZE:
            return self._reauth_packet(
                inFixedValues, inMetaValues, layerData, af, filter, classifyOut
            )
        rec = self.allocate_pended_packet(
            inFixedValues, inMetaValues, af, layerData, CONNECT, FWP_DIRECTION_INBOUND
        )
        status, rec.completionContext = FwpsPendOperation0(inMetaValues.completionHandle)
        if status != STATUS_SUCCESS:
            self.free_pended_packet(rec)
            classifyOut.actionType = FWP_ACTION_BLOCK
            classifyOut.rights &= ~FWPS_RIGHT_ACTION_WRITE
            return self._note(inFixedValues, state, "block-pend-failed")
        self.log.pends.append("ALE_AUTH_RECV_ACCEPT")
        self.connection_list.append(rec)
        self._absorb(classifyOut)
        self._signal_worker()
        self._note(inFixedValues, state, "pend")

    def _reauth_packet(
        self,
        inFixedValues: Any,
        inMetaValues: Any,
        layerData: Any,
        af: int,
        filter: Any,
        classifyOut: Any,
    ) -> None:
        """§1.4 step 3b: a policy-change re-authorisation carrying a packet."""
        if layerData is None:
            self._permit(filter, classifyOut)
            return self._note(inFixedValues, -1, "permit-reauth-no-packet")
        direction = inMetaValues.packetDirection
        rec = self.allocate_pended_packet(
            inFixedValues, inMetaValues, af, layerData, REAUTH, direction
        )
        if direction == FWP_DIRECTION_INBOUND:
            flags = incoming(inFixedValues, "FLAGS").uint32
            rec.ipSecProtected = bool(flags & FWP_CONDITION_FLAG_IS_IPSEC_SECURED)
        if self.unloading:
            self.free_pended_packet(rec)
            self._permit(filter, classifyOut)
            return self._note(inFixedValues, self._state(layerData), "permit-unloading")
        self.packet_queue.append(rec)
        self._absorb(classifyOut)
        self._signal_worker()
        self._note(inFixedValues, self._state(layerData), "absorb-reauth")

    @staticmethod
    def _same_connection(a: PendedPacket, b: PendedPacket) -> bool:
        return (a.addressFamily, a.direction, a.protocol, a.localAddr, a.remoteAddr) == (
            b.addressFamily,
            b.direction,
            b.protocol,
            b.localAddr,
            b.remoteAddr,
        ) and (a.localPort, a.remotePort) == (b.localPort, b.remotePort)

    # ---- the worker (§1.6) ---------------------------------------------------------------

    def _signal_worker(self) -> None:
        """KeSetEvent: the worker runs from the stack's dispatcher (the simulated thread)."""
        if not self.worker_signalled:
            self.worker_signalled = True
            self.stack.queue_dpc(self.worker, label="TLInspect worker")

    def worker(self) -> None:
        self.worker_signalled = False
        for _ in range(1 << 16):  # until both queues are empty (the event is cleared)
            if self.unloading:
                return self._worker_exit()
            permit = not self.block_traffic  # 2. BlockTraffic re-read for every item
            rec = next((r for r in self.connection_list if r.authConnectDecision == 0), None)
            if rec is not None and rec.direction == FWP_DIRECTION_INBOUND:
                self.connection_list.remove(rec)  # no re-auth follows an inbound completion
            if rec is None:
                if not self.packet_queue:
                    return
                rec = self.packet_queue.pop(0)
            owned = True
            if rec.type == CONNECT:  # 5.
                owned = self.complete_pended_connection(rec, permit)
            if owned and permit:  # 6.
                if rec.direction == FWP_DIRECTION_OUTBOUND:
                    status = self.clone_reinject_outbound(rec)
                else:
                    status = self.clone_reinject_inbound(rec)
                owned = status != STATUS_SUCCESS
            if owned:  # 7. blocked data / failed injection: dropped silently
                self.log.freed_without_injection += 1
                self.free_pended_packet(rec)

    def complete_pended_connection(self, rec: PendedPacket, permit: bool) -> bool:
        """TlInspectCompletePendedConnection (§1.6 step 5): True while the worker still owns
        the record."""
        ctx = rec.completionContext
        if rec.direction == FWP_DIRECTION_OUTBOUND:
            rec.authConnectDecision = FWP_ACTION_PERMIT if permit else FWP_ACTION_BLOCK
            rec.completionContext = None
            # triggers the re-authorisation classify (§1.4 step 3a), which consumes the record
            self.log.completed_operations.append(("outbound", False))
            FwpsCompleteOperation0(ctx, None)
            return False
        if not permit:
            self.free_pended_packet(rec)  # completes with NULL: connection refused
            return False
        return True  # clone-reinjected below; the operation is completed there (§1.8 step 6)

    def _worker_exit(self) -> None:
        """§1.6 step 9: complete every remaining CONNECT with BLOCK, free every queued packet."""
        for rec in list(self.connection_list):
            if rec.authConnectDecision == 0:
                if rec.direction == FWP_DIRECTION_INBOUND:
                    self.connection_list.remove(rec)
                    self.free_pended_packet(rec)
                else:
                    self.complete_pended_connection(rec, False)
        while self.packet_queue:
            self.log.freed_without_injection += 1
            self.free_pended_packet(self.packet_queue.pop(0))

    # ---- re-injection (§1.7, §1.8) -------------------------------------------------------

    def clone_reinject_outbound(self, rec: PendedPacket) -> int:
        """§1.7: the data already starts at the transport header."""
        status, clone = FwpsAllocateCloneNetBufferList0(rec.netBufferList, None, None, 0)
        if status != STATUS_SUCCESS:
            return status
        send_args = FWPS_TRANSPORT_SEND_PARAMS(
            remoteAddress=rec.remoteAddr,  # owned by the record until completion (R8)
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
            rec.addressFamily,
            rec.compartmentId,
            clone,
            self.inject_complete,
            rec,
        )
        self.log.injections.append(("FwpsInjectTransportSendAsync", int(status)))
        if status != STATUS_SUCCESS:
            FwpsFreeCloneNetBufferList0(clone, 0)  # R6: no completion will come
        return status

    def clone_reinject_inbound(self, rec: PendedPacket) -> int:
        """§1.8: retreat to the IP header, clone, advance back, rebuild IPsec headers, complete
        a pended recv-accept with the clone, receive-inject."""
        nb = NET_BUFFER_LIST_FIRST_NB(rec.netBufferList)
        transport_header_size = rec.transportHeaderSize
        if NET_BUFFER_DATA_OFFSET(nb) != rec.nblOffset:  # 1. offset drift (B4)
            assert rec.nblOffset - NET_BUFFER_DATA_OFFSET(nb) == rec.transportHeaderSize
            transport_header_size = 0
        back = rec.ipHeaderSize + transport_header_size
        status = NdisRetreatNetBufferDataStart(nb, back, 0, None)  # 2.
        if status != STATUS_SUCCESS:
            return status
        status, clone = FwpsAllocateCloneNetBufferList0(rec.netBufferList, None, None, 0)  # 3.
        NdisAdvanceNetBufferDataStart(nb, back, False, None)  # 4. whatever happened
        if status != STATUS_SUCCESS:
            return status
        if rec.ipSecProtected:  # 5. strip AH/ESP, recompute the checksums
            status = FwpsConstructIpHeaderForTransportPacket0(
                clone,
                rec.ipHeaderSize,
                rec.addressFamily,
                rec.remoteAddr,  # source
                rec.localAddr,  # destination
                rec.protocol,
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
        if rec.completionContext is not None:  # 6.
            ctx, rec.completionContext = rec.completionContext, None
            self.log.completed_operations.append(("inbound", True))
            FwpsCompleteOperation0(ctx, clone)
        status = FwpsInjectTransportReceiveAsync0(  # 7.
            self.injection_handle,
            None,
            None,
            0,
            rec.addressFamily,
            rec.compartmentId,
            rec.interfaceIndex,
            rec.subInterfaceIndex,
            clone,
            self.inject_complete,
            rec,
        )
        self.log.injections.append(("FwpsInjectTransportReceiveAsync0", int(status)))
        if status != STATUS_SUCCESS:
            FwpsFreeCloneNetBufferList0(clone, 0)  # 8.
        return status

    def inject_complete(
        self, context: PendedPacket, netBufferList: Any, dispatchLevel: bool
    ) -> None:
        """TLInspectInjectComplete (§1.9): nbl->Status is not examined by the sample; we log it."""
        self.log.completions.append(int(netBufferList.Status))
        FwpsFreeCloneNetBufferList0(netBufferList, 0)
        self.free_pended_packet(context)

    # ---- DriverUnload (§1.9) -------------------------------------------------------------

    def unload(self) -> None:
        """Stop accepting work, let the worker drain and exit, close the dynamic session (its
        filters, callouts and sublayer vanish), unregister the callouts, destroy the handle
        (which waits for in-flight injections)."""
        self.unloading = True
        if not self.worker_signalled:
            self.worker_signalled = True
            self.stack.queue_dpc(self.worker, label="TLInspect worker (unload)")
        self.stack.run()  # "wait for the thread"
        with self.stack:
            FwpmEngineClose0(self.engine_handle)
            for callout_id in self.callout_ids:
                status = FwpsCalloutUnregisterById0(callout_id)
                assert status == STATUS_SUCCESS, status
            FwpsInjectionHandleDestroy0(self.injection_handle)


def demo() -> None:
    """One outbound UDP exchange through TLInspect: the connect is pended, completed, and the
    held datagram re-injected."""
    stack = wfpsim.Stack()
    stack.add_interface(index=1, addresses=["192.0.2.1/24"])
    driver = InspectDriver("192.0.2.99").register(stack)
    app = stack.open_endpoint(AF_INET, IPPROTO_UDP, "192.0.2.1", 5000)
    print("send:", stack.send(app, b"hello", ("192.0.2.99", 53)).outcome)
    stack.run()
    print("wire:", [frame.data[-5:] for frame in stack.wire])
    print("classifies:", driver.log.classifies)
    print("completions:", driver.log.completions)
    app.close()
    driver.unload()


if __name__ == "__main__":
    demo()
