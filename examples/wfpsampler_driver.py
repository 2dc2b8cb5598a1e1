# ruff: noqa: F403, F405, N802, N803, N815  (WDK names, imported by name as driver code does)
"""WFPSampler's basic packet injection, basic packet modification and basic stream injection
scenarios, as Python callouts.

Our own port of the per-packet logic of Windows-driver-samples ``network/trans/WFPSampler``
(``ClassifyBasicPacketInjection``, ``ClassifyBasicPacketModification``,
``ClassifyBasicStreamInjection``), written from ``samples.md §4`` (section numbers below refer
to it). One :class:`WfpSamplerDriver` is one scenario instance: a callout per layer, one filter
per layer in WFPSampler's sublayer or in FWPM_SUBLAYER_UNIVERSAL, and injection handles of its
own per {family} x {direction} x injection type (§4.1) — so two instances in different
sublayers see each other's clones as INJECTED_BY_OTHER and each acts once (S-28).

Per packet (§4.2): no write right or no NBL => leave it; IPsec-secured packets still needing
ALE and fragment groups => CONTINUE; our own injections => PERMIT; otherwise BLOCK + ABSORB,
and (first copy of a multi-destination vSwitch frame only) clone and re-inject it — inline
from the classifyFn, or out of band from a work item (TCP above the forward layers and inbound
loopback are always out of band) — through the inject function of the layer (§4.3), with the
injectionContext the state query returned. With ``modification`` the clone's headers are
edited first (§4.4); the stream scenario clones stream data and stream-injects it (§4.5).

The user-mode tool that adds WFPSampler's filters is replaced by constructor arguments
(``layers``, ``conditions``, ``sublayer``, ``perform_inline``, ``modification``); work items /
DPCs are work items on the stack's dispatcher (``stack.queue_dpc``), run by ``stack.run()``.

Run: ``python examples/wfpsampler_driver.py``.
"""

from __future__ import annotations

import ipaddress
import struct
import uuid
from dataclasses import dataclass, field
from typing import Any

import wfpsim
from wfpsim.constants.layers import FIELD_ENUMS
from wfpsim.filtering import FWPM_SUBLAYER_UNIVERSAL
from wfpsim.wdk import *

WFPSAMPLER_SUBLAYER = uuid.UUID("e4e7ea5f-3a4e-4a34-9c7f-2ad4c58a3f6b")
WFPSAMPLER_SUBLAYER_WEIGHT = 0x7F00  # [emu] below the universal sublayer (0x8000)

# the modification flags of PC_BASIC_PACKET_MODIFICATION_DATA (§4.4)
PCPMDF_MODIFY_MAC_HEADER = 0x10
PCPMDF_MODIFY_IP_HEADER = 0x20
PCPMDF_MODIFY_TRANSPORT_HEADER = 0x40


def L(name: str) -> int:
    return int(FWPS_BUILTIN_LAYERS[f"FWPS_LAYER_{name}"])


def layer_name(layer_id: int) -> str:
    return FWPS_BUILTIN_LAYERS(layer_id).name.removeprefix("FWPS_LAYER_")


def base_of(layer_id: int) -> str:
    name = layer_name(layer_id)
    return name[:-3] if name[-3:] in ("_V4", "_V6") else name


def incoming(inFixedValues: Any, name: str) -> Any:
    """The value of field ``name`` at the classify's layer, or None if the layer has none."""
    layer = layer_name(inFixedValues.layerId)
    member = FIELD_ENUMS[layer].__members__.get(f"FWPS_FIELD_{layer}_{name}")
    return None if member is None else inFixedValues.incomingValue[member].value


def address_bytes(value: Any) -> bytes:
    if value.type == FWP_UINT32:
        return value.uint32.to_bytes(4, "big")  # htonl (R9)
    return bytes(value.byteArray16)


def chain_length(nbl: Any) -> int:
    count = 0
    while nbl is not None:
        count += 1
        nbl = NET_BUFFER_LIST_NEXT_NBL(nbl)
    return count


INBOUND_TRANSPORTISH = {
    "INBOUND_TRANSPORT",
    "INBOUND_ICMP_ERROR",
    "ALE_AUTH_RECV_ACCEPT",
    "STREAM_PACKET",
}
OUTBOUND_TRANSPORTISH = {"OUTBOUND_TRANSPORT", "OUTBOUND_ICMP_ERROR", "ALE_AUTH_CONNECT"}
DIRECTIONAL = {"DATAGRAM_DATA", "ALE_FLOW_ESTABLISHED"}  # direction from the DIRECTION value
ABOVE_FORWARD = (  # layers "above FWPS_LAYER_IPFORWARD_V6_DISCARD": TCP there is out of band
    INBOUND_TRANSPORTISH | OUTBOUND_TRANSPORTISH | DIRECTIONAL | {"STREAM"}
)


@dataclass(eq=False)
class InjectionData:
    """INJECTION_DATA: the handle and context chosen for a classify (§4.1)."""

    handle: Any
    injectionContext: Any
    state: int
    addressFamily: int
    direction: int
    isIPsecSecured: bool = False


@dataclass(eq=False)
class CompletionData:
    """The classify copy + injection data kept until the last completion (§4.3)."""

    values: Any
    meta: Any
    nbl: Any
    injection: InjectionData
    referenced: list[Any] = field(default_factory=list)
    refCount: int = 1
    sendParams: Any = None


@dataclass
class SamplerLog:
    classifies: list[tuple[str, int, str]] = field(default_factory=list)  # (layer, state, what)
    injections: list[tuple[str, int, Any]] = field(default_factory=list)  # (fn, status, ctx)
    completions: list[int] = field(default_factory=list)
    retreats: list[tuple[str, int]] = field(default_factory=list)  # (layer, bytes retreated)


class WfpSamplerDriver:
    """One WFPSampler scenario instance (see the module docstring).

    ``scenario``: ``"basic_packet_injection"``, ``"basic_packet_modification"`` or
    ``"basic_stream_injection"``; ``layers``: run-time layer ids; ``conditions``: ``{field
    name: value}`` for every filter (e.g. ``{"IP_REMOTE_ADDRESS": ipaddress.ip_address(...)}``,
    fields a layer lacks are left out); ``sublayer``: ``"sampler"`` or ``"universal"``;
    ``modification``: ``{"flags": PCPMDF_*, "ip_source": ..., "ip_destination": ...,
    "source_port": ..., "destination_port": ...}`` (values in network order / plain ints)."""

    def __init__(
        self,
        scenario: str,
        layers: list[int],
        *,
        conditions: dict[str, Any] | None = None,
        sublayer: str = "sampler",
        perform_inline: bool = False,
        modification: dict[str, Any] | None = None,
        name: str = "WFPSampler",
    ) -> None:
        if scenario not in (
            "basic_packet_injection",
            "basic_packet_modification",
            "basic_stream_injection",
        ):
            raise ValueError(f"unknown scenario {scenario!r}")
        self.scenario = scenario
        self.layers = [int(x) for x in layers]
        self.conditions = conditions or {}
        self.sublayer = sublayer
        self.perform_inline = perform_inline
        self.modification = modification or {}
        self.name = name
        self.stack: wfpsim.Stack | None = None
        self.engine: Any = None
        self.handles: dict[tuple[int, int, int], Any] = {}
        self.callout_ids: list[int] = []
        self.filter_ids: list[int] = []
        self.log = SamplerLog()

    # ---- registration --------------------------------------------------------------------

    def register(self, stack_or_engine: Any) -> WfpSamplerDriver:
        stack = stack_or_engine if isinstance(stack_or_engine, wfpsim.Stack) else None
        engine = stack.filter_engine if stack is not None else stack_or_engine
        self.stack = stack if stack is not None else engine.stack
        self.engine = engine
        if self.sublayer == "universal":
            sublayer = FWPM_SUBLAYER_UNIVERSAL
        else:
            sublayer = WFPSAMPLER_SUBLAYER
            if WFPSAMPLER_SUBLAYER not in engine.table.sublayers:
                engine.add_sublayer(WFPSAMPLER_SUBLAYER, WFPSAMPLER_SUBLAYER_WEIGHT, "WFPSampler")
        classify = (
            self.classify_stream if self.scenario == "basic_stream_injection" else self.classify
        )
        for layer in self.layers:
            key = uuid.uuid5(WFPSAMPLER_SUBLAYER, f"{self.name}-{self.scenario}-{layer}")
            status, callout_id = FwpsCalloutRegister(
                DEVICE_OBJECT(engine), FWPS_CALLOUT(key, 0, classify, self.notify, None)
            )
            assert status == STATUS_SUCCESS, status
            self.callout_ids.append(callout_id)
            conditions = []
            for field_name, value in self.conditions.items():
                member = FIELD_ENUMS[layer_name(layer)].__members__.get(
                    f"FWPS_FIELD_{layer_name(layer)}_{field_name}"
                )
                if member is not None:
                    conditions.append((int(member), value))
            self.filter_ids.append(
                engine.add_filter(
                    layer,
                    FWP_ACTION_CALLOUT_TERMINATING,
                    callout_key=key,
                    conditions=conditions,
                    sublayer=sublayer,
                )
            )
        return self

    @staticmethod
    def notify(notifyType: int, filterKey: Any, filter: Any) -> int:
        return STATUS_SUCCESS

    def handle(self, af: int, direction: int, injection_type: int) -> Any:
        """This instance's handle for {family, direction, type} (§4.1)."""
        key = (af, direction, injection_type)
        if key not in self.handles:
            with self.stack:
                status, self.handles[key] = FwpsInjectionHandleCreate0(af, injection_type)
            assert status == STATUS_SUCCESS, status
        return self.handles[key]

    def unload(self) -> None:
        """R11: let the work items finish, remove the filters, unregister, destroy handles."""
        self.stack.run()
        with self.stack:
            for filter_id in self.filter_ids:
                self.engine.delete_filter(filter_id)
            for callout_id in self.callout_ids:
                assert FwpsCalloutUnregisterById0(callout_id) == STATUS_SUCCESS
            for handle in self.handles.values():
                FwpsInjectionHandleDestroy0(handle)

    # ---- §4.1 KrnlHlprInjectionDataPopulate ----------------------------------------------

    def _family_direction_type(self, values: Any, meta: Any) -> tuple[int, int, int]:
        layer = values.layerId
        base = base_of(layer)
        name = layer_name(layer)
        af = AF_INET if name.endswith("_V4") else AF_INET6 if name.endswith("_V6") else AF_UNSPEC
        if "MAC_FRAME" in base or "VSWITCH" in base:
            ether = incoming(values, "ETHER_TYPE")
            ether = ether.uint16 if ether is not None and ether.type else 0
            af = {0x0800: AF_INET, 0x86DD: AF_INET6}.get(ether, AF_UNSPEC)
            direction = (
                FWP_DIRECTION_INBOUND
                if base.startswith(("INBOUND", "INGRESS"))
                else FWP_DIRECTION_OUTBOUND
            )
            return af, direction, FWPS_INJECTION_TYPE_L2
        if base in DIRECTIONAL:
            direction = incoming(values, "DIRECTION").uint32
        elif base in ("ALE_AUTH_CONNECT",):
            direction = FWP_DIRECTION_OUTBOUND
        elif base in ("ALE_AUTH_RECV_ACCEPT",):
            direction = FWP_DIRECTION_INBOUND
        elif base == "IPFORWARD":
            direction = FWP_DIRECTION_OUTBOUND
        else:
            direction = (
                FWP_DIRECTION_INBOUND if base.startswith("INBOUND") else FWP_DIRECTION_OUTBOUND
            )
        if base in ("INBOUND_IPPACKET", "OUTBOUND_IPPACKET"):
            kind = FWPS_INJECTION_TYPE_NETWORK
        elif base == "IPFORWARD":
            flags = incoming(values, "FLAGS").uint32
            if flags & (
                FWP_CONDITION_FLAG_IS_INBOUND_PASS_THRU | FWP_CONDITION_FLAG_IS_OUTBOUND_PASS_THRU
            ):
                kind = FWPS_INJECTION_TYPE_NETWORK
                if flags & FWP_CONDITION_FLAG_IS_INBOUND_PASS_THRU:
                    direction = FWP_DIRECTION_INBOUND
            else:
                kind = FWPS_INJECTION_TYPE_FORWARD
        elif base == "STREAM":
            kind = FWPS_INJECTION_TYPE_STREAM
        else:
            kind = FWPS_INJECTION_TYPE_TRANSPORT
        return af, direction, kind

    def injection_data(self, values: Any, meta: Any, layerData: Any) -> InjectionData:
        af, direction, kind = self._family_direction_type(values, meta)
        handle = self.handle(af, direction, kind)
        state, context = FWPS_PACKET_NOT_INJECTED, None
        if layerData is not None and base_of(values.layerId) != "STREAM":
            state, context = FwpsQueryPacketInjectionState0(handle, layerData, None)
        return InjectionData(handle, context, int(state), af, direction)

    # ---- §4.2 ClassifyBasicPacketInjection / ...Modification -----------------------------

    def _note(self, values: Any, state: int, what: str) -> None:
        self.log.classifies.append((layer_name(values.layerId), state, what))

    def classify(
        self,
        inFixedValues,
        inMetaValues,
        layerData,
        classifyContext,
        filter,
        flowContext,
        classifyOut,
    ) -> None:
        if not classifyOut.rights & FWPS_RIGHT_ACTION_WRITE:  # 1.
            return
        if layerData is None:
            classifyOut.actionType = FWP_ACTION_PERMIT
            return self._note(inFixedValues, -1, "permit-no-nbl")
        classifyOut.actionType = FWP_ACTION_CONTINUE  # 2.
        flags_value = incoming(inFixedValues, "FLAGS")
        flags = flags_value.uint32 if flags_value is not None and flags_value.type else 0
        if flags & FWP_CONDITION_FLAG_IS_IPSEC_SECURED and FWPS_IS_METADATA_FIELD_PRESENT(
            inMetaValues, FWPS_METADATA_FIELD_ALE_CLASSIFY_REQUIRED
        ):  # 3.
            return self._note(inFixedValues, -1, "continue-ipsec-ale")
        if flags & FWP_CONDITION_FLAG_IS_FRAGMENT_GROUP:
            return self._note(inFixedValues, -1, "continue-fragment-group")
        data = self.injection_data(inFixedValues, inMetaValues, layerData)
        if data.state in (FWPS_PACKET_INJECTED_BY_SELF, FWPS_PACKET_PREVIOUSLY_INJECTED_BY_SELF):
            classifyOut.actionType = FWP_ACTION_PERMIT  # 4.
            return self._note(inFixedValues, data.state, "permit-self")
        classifyOut.actionType = FWP_ACTION_BLOCK  # 5.
        classifyOut.flags |= FWPS_CLASSIFY_OUT_FLAG_ABSORB
        classifyOut.rights ^= FWPS_RIGHT_ACTION_WRITE
        if inMetaValues.l2Flags & FWPS_L2_INCOMING_FLAG_RECLASSIFY_MULTI_DESTINATION:  # 6.
            return self._note(inFixedValues, data.state, "absorb-multi-destination-copy")
        data.isIPsecSecured = bool(flags & FWP_CONDITION_FLAG_IS_IPSEC_SECURED)  # 7.
        base = base_of(inFixedValues.layerId)
        protocol = incoming(inFixedValues, "IP_PROTOCOL")
        tcp = protocol is not None and protocol.type and protocol.uint8 == IPPROTO_TCP
        inline = self.perform_inline  # 8.
        if (tcp and base in ABOVE_FORWARD) or base == "STREAM_PACKET":
            inline = False
        if (
            flags & FWP_CONDITION_FLAG_IS_LOOPBACK
            and data.direction == FWP_DIRECTION_INBOUND
            and base != "IPFORWARD"
        ):
            inline = False
        completion = CompletionData(inFixedValues, inMetaValues, layerData, data)
        if inline:
            self._note(inFixedValues, data.state, "absorb-inline")
            self.inject(completion, inline=True)
            return
        # 9. out of band: keep the NBL(s) alive, queue a work item
        nbls = [layerData]
        if base in ("INBOUND_IPPACKET", "OUTBOUND_IPPACKET", "IPFORWARD") or "MAC" in base:
            nbls = []
            nbl = layerData
            while nbl is not None:
                nbls.append(nbl)
                nbl = NET_BUFFER_LIST_NEXT_NBL(nbl)
        for nbl in nbls:
            FwpsReferenceNetBufferList0(nbl, True)
        completion.referenced = nbls
        self._note(inFixedValues, data.state, "absorb-oob")
        self.stack.queue_dpc(lambda: self.inject(completion, inline=False), label=self.name)

    # ---- §4.3 per-layer injection --------------------------------------------------------

    def inject(self, c: CompletionData, *, inline: bool) -> None:
        base = base_of(c.values.layerId)
        if base in ("INBOUND_IPPACKET", "OUTBOUND_IPPACKET", "IPFORWARD"):
            status = self._inject_network(c, base)
        elif "MAC_FRAME" in base:
            status = self._inject_mac(c, base)
        elif "VSWITCH" in base:
            status = self._inject_vswitch(c)
        elif c.injection.direction == FWP_DIRECTION_INBOUND:
            status = self._inject_transport_receive(c, base, inline)
        else:
            status = self._inject_transport_send(c)
        if status != STATUS_SUCCESS:  # 10. the packet stays blocked + absorbed: dropped
            self._release(c)

    def _clone_at(self, c: CompletionData, retreat: int) -> tuple[int, Any]:
        nbl = c.nbl
        nb = NET_BUFFER_LIST_FIRST_NB(nbl)
        if retreat:
            status = NdisRetreatNetBufferDataStart(nb, retreat, 0, None)
            if status != STATUS_SUCCESS:
                return status, None
        status, clone = FwpsAllocateCloneNetBufferList0(nbl, None, None, 0)
        if retreat:
            NdisAdvanceNetBufferDataStart(nb, retreat, False, None)
        self.log.retreats.append((layer_name(c.values.layerId), retreat))
        return status, clone

    def _record(self, fn: str, status: int, c: CompletionData) -> int:
        self.log.injections.append((fn, int(status), c.injection.injectionContext))
        return status

    def _inject_network(self, c: CompletionData, base: str) -> int:
        v, m, d = c.values, c.meta, c.injection
        retreat = m.ipHeaderSize if base == "INBOUND_IPPACKET" else 0
        status, clone = self._clone_at(c, retreat)
        if status != STATUS_SUCCESS:
            return status
        self._modify_ip_packet(clone)
        compartment = m.compartmentId if FWPS_IS_METADATA_FIELD_PRESENT(
            m, FWPS_METADATA_FIELD_COMPARTMENT_ID
        ) else DEFAULT_COMPARTMENT_ID  # fmt: skip
        done = self.complete
        if base == "INBOUND_IPPACKET":
            fn = "FwpsInjectNetworkReceiveAsync0"
            status = FwpsInjectNetworkReceiveAsync0(
                d.handle,
                d.injectionContext,
                0,
                compartment,
                incoming(v, "INTERFACE_INDEX").uint32,
                incoming(v, "SUB_INTERFACE_INDEX").uint32,
                clone,
                done,
                c,
            )
        elif base == "OUTBOUND_IPPACKET":
            fn = "FwpsInjectNetworkSendAsync0"
            status = FwpsInjectNetworkSendAsync0(
                d.handle, d.injectionContext, 0, compartment, clone, done, c
            )
        else:
            flags = incoming(v, "FLAGS").uint32
            dest_if = incoming(v, "DESTINATION_INTERFACE_INDEX").uint32
            if flags & FWP_CONDITION_FLAG_IS_INBOUND_PASS_THRU:  # weak-host receive
                fn = "FwpsInjectNetworkReceiveAsync0"
                status = FwpsInjectNetworkReceiveAsync0(
                    d.handle,
                    d.injectionContext,
                    0,
                    compartment,
                    dest_if,
                    incoming(v, "DESTINATION_SUB_INTERFACE_INDEX").uint32,
                    clone,
                    done,
                    c,
                )
            elif flags & FWP_CONDITION_FLAG_IS_OUTBOUND_PASS_THRU:  # weak-host send
                fn = "FwpsInjectNetworkSendAsync0"
                status = FwpsInjectNetworkSendAsync0(
                    d.handle, d.injectionContext, 0, compartment, clone, done, c
                )
            else:
                fn = "FwpsInjectForwardAsync0"
                status = FwpsInjectForwardAsync0(
                    d.handle,
                    d.injectionContext,
                    0,
                    d.addressFamily,
                    compartment,
                    dest_if,
                    clone,
                    done,
                    c,
                )
        if status != STATUS_SUCCESS:
            FwpsFreeCloneNetBufferList0(clone, 0)
        return self._record(fn, status, c)

    def inbound_transport_retreat(self, c: CompletionData, base: str, inline: bool) -> int:
        """``bytesRetreated`` (§4.3): the IP header, plus the transport header except where the
        stack has already moved an out-of-band NBL back (ALE_AUTH_RECV_ACCEPT, not TCP, not a
        raw endpoint: S-32); for ICMP only at DATAGRAM_DATA / INBOUND_ICMP_ERROR."""
        v, m = c.values, c.meta
        v4 = c.injection.addressFamily == AF_INET
        protocol = incoming(v, "IP_PROTOCOL").uint8
        ip_size = m.ipHeaderSize if FWPS_IS_METADATA_FIELD_PRESENT(
            m, FWPS_METADATA_FIELD_IP_HEADER_SIZE
        ) else (20 if v4 else 40)  # fmt: skip
        minimum = {IPPROTO_TCP: 20, IPPROTO_UDP: 8}.get(protocol, 8)
        transport = m.transportHeaderSize if FWPS_IS_METADATA_FIELD_PRESENT(
            m, FWPS_METADATA_FIELD_TRANSPORT_HEADER_SIZE
        ) else minimum  # fmt: skip
        flags_value = incoming(v, "FLAGS")
        flags = flags_value.uint32 if flags_value is not None and flags_value.type else 0
        if protocol in (IPPROTO_ICMP, IPPROTO_ICMPV6):
            if base in ("DATAGRAM_DATA", "INBOUND_ICMP_ERROR"):
                return ip_size + transport
            return ip_size
        if (
            not inline
            and protocol != IPPROTO_TCP
            and not flags & FWP_CONDITION_FLAG_IS_RAW_ENDPOINT
            and base == "ALE_AUTH_RECV_ACCEPT"
        ):
            return ip_size
        return ip_size + transport

    def _inject_transport_receive(self, c: CompletionData, base: str, inline: bool) -> int:
        v, m, d = c.values, c.meta, c.injection
        if d.addressFamily == AF_INET or d.addressFamily == AF_INET6:
            _, info = FwpsGetPacketListSecurityInformation0(
                c.nbl,
                FWPS_PACKET_LIST_INFORMATION_QUERY_IPSEC
                | FWPS_PACKET_LIST_INFORMATION_QUERY_INBOUND,
            )
            ipsec = info.ipsecInformation.inbound
            if ipsec.isTunnelMode and not ipsec.isDeTunneled:
                return STATUS_UNSUCCESSFUL  # bail out: the packet stays absorbed (dropped)
        retreat = self.inbound_transport_retreat(c, base, inline)
        status, clone = self._clone_at(c, retreat)
        if status != STATUS_SUCCESS:
            return status
        if d.isIPsecSecured or self.modification.get("flags", 0) & PCPMDF_MODIFY_IP_HEADER:
            remote = address_bytes(incoming(v, "IP_REMOTE_ADDRESS"))
            local = address_bytes(incoming(v, "IP_LOCAL_ADDRESS"))
            remote = self.modification.get("ip_source", remote)
            local = self.modification.get("ip_destination", local)
            status = FwpsConstructIpHeaderForTransportPacket0(
                clone,
                m.ipHeaderSize,  # the documented meaning (samples.md §4.3 note)
                d.addressFamily,
                remote,
                local,
                incoming(v, "IP_PROTOCOL").uint8,
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
        compartment = m.compartmentId or DEFAULT_COMPARTMENT_ID
        status = FwpsInjectTransportReceiveAsync0(
            d.handle,
            d.injectionContext,
            None,
            0,
            d.addressFamily,
            compartment,
            incoming(v, "INTERFACE_INDEX").uint32,
            incoming(v, "SUB_INTERFACE_INDEX").uint32,
            clone,
            self.complete,
            c,
        )
        if status != STATUS_SUCCESS:
            FwpsFreeCloneNetBufferList0(clone, 0)
        return self._record("FwpsInjectTransportReceiveAsync0", status, c)

    def _inject_transport_send(self, c: CompletionData) -> int:
        v, m, d = c.values, c.meta, c.injection
        status, clone = self._clone_at(c, 0)
        if status != STATUS_SUCCESS:
            return status
        self._modify_ports(clone, 0)
        remote = self.modification.get(
            "ip_destination", address_bytes(incoming(v, "IP_REMOTE_ADDRESS"))
        )
        control = None
        if FWPS_IS_METADATA_FIELD_PRESENT(m, FWPS_METADATA_FIELD_TRANSPORT_CONTROL_DATA):
            control = bytes(m.controlData)
        c.sendParams = FWPS_TRANSPORT_SEND_PARAMS(  # heap-allocated, freed with the completion
            remoteAddress=bytearray(remote),
            remoteScopeId=m.remoteScopeId if d.addressFamily == AF_INET6 else 0,
            controlData=control,
            controlDataLength=len(control or b""),
        )
        status = FwpsInjectTransportSendAsync(
            d.handle,
            d.injectionContext,
            m.transportEndpointHandle,
            0,
            c.sendParams,
            d.addressFamily,
            m.compartmentId or DEFAULT_COMPARTMENT_ID,
            clone,
            self.complete,
            c,
        )
        if status != STATUS_SUCCESS:
            FwpsFreeCloneNetBufferList0(clone, 0)
        return self._record("FwpsInjectTransportSendAsync", status, c)

    def _inject_mac(self, c: CompletionData, base: str) -> int:
        v, m, d = c.values, c.meta, c.injection
        retreat = 0
        if base == "INBOUND_MAC_FRAME_ETHERNET":
            assert FWPS_IS_L2_METADATA_FIELD_PRESENT(
                m, FWPS_L2_METADATA_FIELD_ETHERNET_MAC_HEADER_SIZE
            )
            retreat = m.ethernetMacHeaderSize
        status, clone = self._clone_at(c, retreat)
        if status != STATUS_SUCCESS:
            return status
        c.refCount = chain_length(clone)  # one completion per NBL of the chain (B15)
        args = (
            d.handle,
            d.injectionContext,
            0,
            v.layerId,
            incoming(v, "INTERFACE_INDEX").uint32,
            incoming(v, "NDIS_PORT").uint32,
            clone,
            self.complete,
            c,
        )
        if base.startswith("INBOUND"):
            fn, status = "FwpsInjectMacReceiveAsync0", FwpsInjectMacReceiveAsync0(*args)
        else:
            fn, status = "FwpsInjectMacSendAsync0", FwpsInjectMacSendAsync0(*args)
        if status != STATUS_SUCCESS:
            FwpsFreeCloneNetBufferList0(clone, 0)
        return self._record(fn, status, c)

    def _inject_vswitch(self, c: CompletionData) -> int:
        v, m, d = c.values, c.meta, c.injection
        vswitch_id = incoming(v, "VSWITCH_ID")
        if vswitch_id is None or not vswitch_id.type:
            return STATUS_INVALID_MEMBER
        status, clone = self._clone_at(c, 0)
        if status != STATUS_SUCCESS:
            return status
        c.refCount = chain_length(clone)
        status = FwpsInjectvSwitchEthernetIngressAsync0(
            d.handle,
            d.injectionContext,
            0,
            None,
            vswitch_id.byteBlob.data,
            m.vSwitchSourcePortId,
            m.vSwitchSourceNicIndex,
            clone,
            self.complete,
            c,
        )
        if status != STATUS_SUCCESS:
            FwpsFreeCloneNetBufferList0(clone, 0)
        return self._record("FwpsInjectvSwitchEthernetIngressAsync0", status, c)

    # ---- §4.4 basic packet modification --------------------------------------------------

    def _modify_ip_packet(self, clone: Any) -> None:
        """At the network layers (the clone starts at the IP header): addresses (IPv4 header
        checksum recomputed) and ports — the transport checksum is left as the sample leaves
        it (a "to do" there)."""
        mod = self.modification
        flags = mod.get("flags", 0)
        if self.scenario != "basic_packet_modification" or not flags:
            return
        nb = NET_BUFFER_LIST_FIRST_NB(clone)
        head = NdisGetDataBuffer(nb, 1, None, 1, 0)
        v4 = head[0] >> 4 == 4
        size = ((head[0] & 0x0F) * 4) if v4 else 40
        header = NdisGetDataBuffer(nb, size, None, 1, 0)
        if flags & PCPMDF_MODIFY_IP_HEADER:
            src_at, dst_at, length = (12, 16, 4) if v4 else (8, 24, 16)
            if flags & 0x01 and "ip_source" in mod:
                header[src_at : src_at + length] = mod["ip_source"]
            if flags & 0x02 and "ip_destination" in mod:
                header[dst_at : dst_at + length] = mod["ip_destination"]
            if v4:  # recompute the IPv4 header checksum
                header[10:12] = b"\0\0"
                header[10:12] = wfpsim.internet_checksum(bytes(header[:size])).to_bytes(2, "big")
        self._modify_ports(clone, size)

    def _modify_ports(self, clone: Any, offset: int) -> None:
        mod = self.modification
        flags = mod.get("flags", 0)
        if (
            self.scenario != "basic_packet_modification"
            or not flags & PCPMDF_MODIFY_TRANSPORT_HEADER
        ):
            return
        nb = NET_BUFFER_LIST_FIRST_NB(clone)
        ports = NdisGetDataBuffer(nb, offset + 4, None, 1, 0)
        if flags & 0x01 and "source_port" in mod:
            struct.pack_into("!H", ports, offset, mod["source_port"])
        if flags & 0x02 and "destination_port" in mod:
            struct.pack_into("!H", ports, offset + 2, mod["destination_port"])

    # ---- completion ----------------------------------------------------------------------

    def complete(self, context: CompletionData, netBufferList: Any, dispatchLevel: bool) -> None:
        """CompleteBasicPacketInjection: Status, free the clone, release the completion data
        after the last NBL of the chain."""
        self.log.completions.append(int(netBufferList.Status))
        FwpsFreeCloneNetBufferList0(netBufferList, 0)
        context.refCount -= 1
        if context.refCount == 0:
            self._release(context)

    def _release(self, c: CompletionData) -> None:
        for nbl in c.referenced:
            FwpsDereferenceNetBufferList0(nbl, False)
        c.referenced = []
        c.sendParams = None

    # ---- §4.5 basic stream injection -----------------------------------------------------

    def classify_stream(
        self,
        inFixedValues,
        inMetaValues,
        layerData,
        classifyContext,
        filter,
        flowContext,
        classifyOut,
    ) -> None:
        """No write-right check and no injection-state check (the engine never re-indicates a
        callout's own stream injections to it)."""
        classifyOut.actionType = FWP_ACTION_CONTINUE
        io = layerData
        sd = io.streamData
        direction = incoming(inFixedValues, "DIRECTION").uint32
        if not self.perform_inline:
            # out of band: the classify data is copied and the indication blocked whole; [emu]
            # the "copy" of the stream data is a clone taken now (the NBLs are only lent)
            status, chain = FwpsCloneStreamData0(sd, None, None, 0)
            classifyOut.actionType = FWP_ACTION_BLOCK
            io.countBytesEnforced = 0
            if status != STATUS_SUCCESS:
                return
            flow, layer = inMetaValues.flowHandle, inFixedValues.layerId
            args = (flow, filter.action.calloutId, layer, sd.flags, sd.dataLength, direction)
            self.stack.queue_dpc(lambda: self._stream_inject(*args, chain), label=self.name)
            self.log.classifies.append((layer_name(layer), -1, "stream-oob"))
            return
        classifyOut.actionType = FWP_ACTION_BLOCK  # 2. inline
        io.countBytesRequired, io.countBytesEnforced = 0, sd.dataLength
        io.streamAction = FWPS_STREAM_ACTION_NONE
        status, chain = FwpsCloneStreamData0(sd, None, None, 0)
        if status != STATUS_SUCCESS:
            return
        self.log.classifies.append((layer_name(inFixedValues.layerId), -1, "stream-inline"))
        self._stream_inject(
            inMetaValues.flowHandle,
            filter.action.calloutId,
            inFixedValues.layerId,
            sd.flags,
            sd.dataLength,
            direction,
            chain,
        )

    def _stream_inject(
        self,
        flow: int,
        callout_id: int,
        layer: int,
        flags: int,
        length: int,
        direction: int,
        chain: Any,
    ) -> None:
        if not flags & (FWPS_STREAM_FLAG_RECEIVE | FWPS_STREAM_FLAG_SEND):  # B17
            flags |= (
                FWPS_STREAM_FLAG_RECEIVE
                if direction == FWP_DIRECTION_INBOUND
                else FWPS_STREAM_FLAG_SEND
            )
        data = CompletionData(None, None, None, None, refCount=chain_length(chain))
        af = AF_INET if layer == FWPS_LAYER_STREAM_V4 else AF_INET6
        handle = self.handle(af, direction, FWPS_INJECTION_TYPE_STREAM)
        status = FwpsStreamInjectAsync0(
            handle,
            None,
            0,
            flow,
            callout_id,
            layer,
            flags,
            chain,
            length,
            self.complete_stream,
            data,
        )
        self.log.injections.append(("FwpsStreamInjectAsync0", int(status), None))
        if status != STATUS_SUCCESS:
            FwpsDiscardClonedStreamData0(chain, 0, False)

    def complete_stream(
        self, context: CompletionData, netBufferList: Any, dispatchLevel: bool
    ) -> None:
        self.log.completions.append(int(netBufferList.Status))
        FwpsFreeCloneNetBufferList0(netBufferList, 0)
        context.refCount -= 1


def demo() -> None:
    """Basic packet injection at INBOUND_IPPACKET_V4, inline: every datagram is cloned and
    re-injected once, and still reaches the socket."""
    stack = wfpsim.Stack()
    stack.add_interface(index=1, addresses=["192.0.2.1/24"])
    driver = WfpSamplerDriver(
        "basic_packet_injection",
        [FWPS_LAYER_INBOUND_IPPACKET_V4],
        conditions={"IP_REMOTE_ADDRESS": ipaddress.ip_address("192.0.2.50")},
        perform_inline=True,
    ).register(stack)
    app = stack.open_endpoint(AF_INET, IPPROTO_UDP, "192.0.2.1", 53)
    ip = wfpsim.stack.ip
    src, dst = ip.addr_bytes("192.0.2.50"), ip.addr_bytes("192.0.2.1")
    segment = ip.udp_datagram(src, dst, 1234, 53, b"hello")
    stack.receive(1, ip.ip_header(src, dst, 17, len(segment)) + segment)
    stack.run()
    print("classifies:", driver.log.classifies)
    print("received:", [d.data for d in app.received])
    app.close()
    driver.unload()


if __name__ == "__main__":
    demo()
