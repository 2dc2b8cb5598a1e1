"""Layer traversal: the inbound, outbound and forward paths, and what a callout sees at each layer.

Every layer visit goes through :meth:`Paths.visit`: it builds ``FWPS_INCOMING_VALUES0`` (the
field indexes of layers.md §6.1, typed per §6), ``FWPS_INCOMING_METADATA_VALUES0`` (the fields
and presence bits of §5.3 for the layer), hands the NBL with its first NET_BUFFER's
``DataOffset`` where §3 puts it for the layer to ``stack.filter_engine.classify`` (see
:mod:`wfpsim.stack.seam`), checks the callout put the offset back (B5), and returns
``"permit"``, ``"block"`` or ``"absorb"``.

Paths (layers.md §10; the ``*_DISCARD`` layers are not indicated — [emu] simplification):

* inbound (``receive``): [INBOUND_MAC_FRAME_NATIVE → INBOUND_MAC_FRAME_ETHERNET on Ethernet
  interfaces] → INBOUND_IPPACKET (fragments: each twice, plain then ``IS_FRAGMENT``; the
  reassembled packet once more with ``IS_REASSEMBLED``, §11) → INBOUND_TRANSPORT (or
  INBOUND_ICMP_ERROR) → [ALE_AUTH_RECV_ACCEPT → ALE_FLOW_ESTABLISHED for the first packet of a
  flow / a TCP SYN and final ACK] → DATAGRAM_DATA (or STREAM_PACKET + STREAM for TCP) → the
  endpoint. Non-local destinations take the forward path when forwarding is on.
* forward: IPFORWARD (fragments one by one, or held and indicated again as a group chain with
  ``IS_FRAGMENT_GROUP`` when ``stack.forward_fragment_grouping``) → out the route's interface
  (outbound MAC layers) → the wire.
* outbound (``send``): [ALE_AUTH_CONNECT → ALE_FLOW_ESTABLISHED, first packet of a flow] →
  DATAGRAM_DATA (non-TCP) or STREAM (TCP data) → OUTBOUND_TRANSPORT (and STREAM_PACKET for TCP)
  → OUTBOUND_IPPACKET → fragmentation (not indicated) → [OUTBOUND_MAC_FRAME_ETHERNET →
  OUTBOUND_MAC_FRAME_NATIVE] → the wire; a local destination loops back up the inbound path
  with ``IS_LOOPBACK``. ICMP errors the stack sends: OUTBOUND_ICMP_ERROR → OUTBOUND_TRANSPORT →
  OUTBOUND_IPPACKET.

Re-entry of injected packets (the processors in :mod:`wfpsim.stack.injection` call these):
network/transport receive re-enter at the bottom (``receive_ip``), transport send at the top
(``send_transport``), network send at OUTBOUND_IPPACKET (``send_ip``), forward injection goes
straight out (``forward_out``, never classified), MAC injections at the MAC layer named.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wfpsim.constants import (
    AF_INET,
    FIELDS_BY_LAYER,
    FWP_ACTION_BLOCK,
    FWP_CONDITION_FLAG_IS_FRAGMENT,
    FWP_CONDITION_FLAG_IS_FRAGMENT_GROUP,
    FWP_CONDITION_FLAG_IS_INBOUND_PASS_THRU,
    FWP_CONDITION_FLAG_IS_IPSEC_SECURED,
    FWP_CONDITION_FLAG_IS_LOOPBACK,
    FWP_CONDITION_FLAG_IS_OUTBOUND_PASS_THRU,
    FWP_CONDITION_FLAG_IS_RAW_ENDPOINT,
    FWP_CONDITION_FLAG_IS_REASSEMBLED,
    FWP_CONDITION_FLAG_IS_REAUTHORIZE,
    FWP_DIRECTION_INBOUND,
    FWP_DIRECTION_OUTBOUND,
    FWP_SECURITY_DESCRIPTOR_TYPE,
    FWPS_BUILTIN_LAYERS,
    FWPS_CLASSIFY_OUT_FLAG_ABSORB,
    FWPS_L2_METADATA_FIELD_ETHERNET_MAC_HEADER_SIZE,
    FWPS_L2_METADATA_FIELD_VSWITCH_SOURCE_NIC_INDEX,
    FWPS_L2_METADATA_FIELD_VSWITCH_SOURCE_PORT_ID,
    FWPS_METADATA_FIELD_ALE_CLASSIFY_REQUIRED,
    FWPS_METADATA_FIELD_COMPARTMENT_ID,
    FWPS_METADATA_FIELD_COMPLETION_HANDLE,
    FWPS_METADATA_FIELD_DESTINATION_INTERFACE_INDEX,
    FWPS_METADATA_FIELD_FLOW_HANDLE,
    FWPS_METADATA_FIELD_FORWARD_LAYER_INBOUND_PASS_THRU,
    FWPS_METADATA_FIELD_FORWARD_LAYER_OUTBOUND_PASS_THRU,
    FWPS_METADATA_FIELD_FRAGMENT_DATA,
    FWPS_METADATA_FIELD_ICMP_ID_AND_SEQUENCE,
    FWPS_METADATA_FIELD_IP_HEADER_SIZE,
    FWPS_METADATA_FIELD_PACKET_DIRECTION,
    FWPS_METADATA_FIELD_PARENT_ENDPOINT_HANDLE,
    FWPS_METADATA_FIELD_PATH_MTU,
    FWPS_METADATA_FIELD_PROCESS_ID,
    FWPS_METADATA_FIELD_PROCESS_PATH,
    FWPS_METADATA_FIELD_REMOTE_SCOPE_ID,
    FWPS_METADATA_FIELD_SOURCE_INTERFACE_INDEX,
    FWPS_METADATA_FIELD_SUB_PROCESS_TAG,
    FWPS_METADATA_FIELD_SYSTEM_FLAGS,
    FWPS_METADATA_FIELD_TOKEN,
    FWPS_METADATA_FIELD_TRANSPORT_CONTROL_DATA,
    FWPS_METADATA_FIELD_TRANSPORT_ENDPOINT_HANDLE,
    FWPS_METADATA_FIELD_TRANSPORT_HEADER_INCLUDE_HEADER,
    FWPS_METADATA_FIELD_TRANSPORT_HEADER_SIZE,
    FWPS_STREAM_FLAG_RECEIVE,
    FWPS_STREAM_FLAG_RECEIVE_DISCONNECT,
    FWPS_STREAM_FLAG_RECEIVE_EXPEDITED,
    FWPS_STREAM_FLAG_RECEIVE_PUSH,
    FWPS_STREAM_FLAG_SEND_DISCONNECT,
)
from wfpsim.errors import MalformedPacketError
from wfpsim.fwps_types import (
    FWP_BYTE_BLOB,
    FWP_VALUE0,
    FWPS_INBOUND_FRAGMENT_METADATA0,
    FWPS_INCOMING_METADATA_VALUES0,
    FWPS_INCOMING_VALUE0,
    FWPS_INCOMING_VALUES0,
)
from wfpsim.stack import ip as IP
from wfpsim.stack import ipsec
from wfpsim.stack.host import (
    IF_TYPE_SOFTWARE_LOOPBACK,
    DatagramFlow,
    Endpoint,
    Interface,
    NlatBroadcast,
    NlatMulticast,
    NlatUnicast,
    NlatUnspecified,
    TcpFlow,
)
from wfpsim.stack.records import Delivered
from wfpsim.stack.seam import AleCompletionHandle, StreamSegment, StreamVerdict
from wfpsim.status import NTSTATUS

if TYPE_CHECKING:
    from wfpsim.stack.records import InjectionRecord
    from wfpsim.stack.stack import Stack

S = NTSTATUS
INBOUND, OUTBOUND = FWP_DIRECTION_INBOUND, FWP_DIRECTION_OUTBOUND
PERMIT, BLOCK, ABSORB = "permit", "block", "absorb"

_BASES = (
    "INBOUND_IPPACKET",
    "OUTBOUND_IPPACKET",
    "IPFORWARD",
    "INBOUND_TRANSPORT",
    "OUTBOUND_TRANSPORT",
    "STREAM",
    "DATAGRAM_DATA",
    "INBOUND_ICMP_ERROR",
    "OUTBOUND_ICMP_ERROR",
    "ALE_AUTH_RECV_ACCEPT",
    "ALE_AUTH_CONNECT",
    "ALE_FLOW_ESTABLISHED",
    "STREAM_PACKET",
)
_LAYER = {
    base: (
        FWPS_BUILTIN_LAYERS[f"FWPS_LAYER_{base}_V4"],
        FWPS_BUILTIN_LAYERS[f"FWPS_LAYER_{base}_V6"],
    )
    for base in _BASES
}
INBOUND_MAC_ETHERNET = FWPS_BUILTIN_LAYERS.FWPS_LAYER_INBOUND_MAC_FRAME_ETHERNET
OUTBOUND_MAC_ETHERNET = FWPS_BUILTIN_LAYERS.FWPS_LAYER_OUTBOUND_MAC_FRAME_ETHERNET
INBOUND_MAC_NATIVE = FWPS_BUILTIN_LAYERS.FWPS_LAYER_INBOUND_MAC_FRAME_NATIVE
OUTBOUND_MAC_NATIVE = FWPS_BUILTIN_LAYERS.FWPS_LAYER_OUTBOUND_MAC_FRAME_NATIVE
INGRESS_VSWITCH_ETHERNET = FWPS_BUILTIN_LAYERS.FWPS_LAYER_INGRESS_VSWITCH_ETHERNET

#: Layers from whose classifyFn a TCP transport injection must not be issued inline (R10).
TCP_LOCKED_LAYERS = frozenset(
    int(FWPS_BUILTIN_LAYERS[f"FWPS_LAYER_{b}_{v}{d}"])
    for b in (
        "INBOUND_TRANSPORT",
        "OUTBOUND_TRANSPORT",
        "ALE_AUTH_RECV_ACCEPT",
        "ALE_AUTH_CONNECT",
        "ALE_FLOW_ESTABLISHED",
        "ALE_RESOURCE_ASSIGNMENT",
        "ALE_AUTH_LISTEN",
    )
    for v in ("V4", "V6")
    for d in ("", "_DISCARD")
) | {int(FWPS_BUILTIN_LAYERS.FWPS_LAYER_STREAM_PACKET_V4), 71}


#: Layers after which an absorbed inbound NBL drifts back by transportHeaderSize (B4).
DRIFT_LAYERS = frozenset({"INBOUND_TRANSPORT", "ALE_AUTH_RECV_ACCEPT", "DATAGRAM_DATA"})


def layer_id(base: str, af: int) -> int:
    return int(_LAYER[base][0 if af == AF_INET else 1])


def layer_base(layer: int) -> str:
    name = FWPS_BUILTIN_LAYERS(layer).name[len("FWPS_LAYER_") :]
    for suffix in ("_V4", "_V6"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


# ---- metadata presence per layer (layers.md §5.3) ---------------------------------------------

FH = FWPS_METADATA_FIELD_FLOW_HANDLE
IHS = FWPS_METADATA_FIELD_IP_HEADER_SIZE
THS = FWPS_METADATA_FIELD_TRANSPORT_HEADER_SIZE
SF = FWPS_METADATA_FIELD_SYSTEM_FLAGS
CID = FWPS_METADATA_FIELD_COMPARTMENT_ID
FRAG = FWPS_METADATA_FIELD_FRAGMENT_DATA
MTU = FWPS_METADATA_FIELD_PATH_MTU
TEH = FWPS_METADATA_FIELD_TRANSPORT_ENDPOINT_HANDLE
TCD = FWPS_METADATA_FIELD_TRANSPORT_CONTROL_DATA
RSI = FWPS_METADATA_FIELD_REMOTE_SCOPE_ID
ACR = FWPS_METADATA_FIELD_ALE_CLASSIFY_REQUIRED
ICMP = FWPS_METADATA_FIELD_ICMP_ID_AND_SEQUENCE
PP = FWPS_METADATA_FIELD_PROCESS_PATH
TOK = FWPS_METADATA_FIELD_TOKEN
PID = FWPS_METADATA_FIELD_PROCESS_ID
CH = FWPS_METADATA_FIELD_COMPLETION_HANDLE
PD = FWPS_METADATA_FIELD_PACKET_DIRECTION
PEH = FWPS_METADATA_FIELD_PARENT_ENDPOINT_HANDLE
SPT = FWPS_METADATA_FIELD_SUB_PROCESS_TAG
HIH = FWPS_METADATA_FIELD_TRANSPORT_HEADER_INCLUDE_HEADER
FWD_OUT = FWPS_METADATA_FIELD_FORWARD_LAYER_OUTBOUND_PASS_THRU
FWD_IN = FWPS_METADATA_FIELD_FORWARD_LAYER_INBOUND_PASS_THRU
SRCIF = FWPS_METADATA_FIELD_SOURCE_INTERFACE_INDEX
DSTIF = FWPS_METADATA_FIELD_DESTINATION_INTERFACE_INDEX

#: The metadata bits each layer may carry (layers.md §5.3; HIH added at DATAGRAM_DATA and
#: OUTBOUND_TRANSPORT where the seeds' header-include raw sends read it; forward pass-thru per §5.1).
LAYER_METADATA: dict[str, int] = {
    "INBOUND_IPPACKET": IHS | CID | FRAG,
    "OUTBOUND_IPPACKET": IHS | THS | CID | FRAG | MTU,
    "IPFORWARD": CID | FWD_OUT | FWD_IN,
    "INBOUND_TRANSPORT": FH | IHS | SF | THS | CID | TEH | ACR | ICMP,
    "OUTBOUND_TRANSPORT": FH | SF | THS | CID | TEH | TCD | RSI | ICMP | HIH,
    "STREAM": FH | SF,
    "DATAGRAM_DATA": FH | IHS | SF | THS | CID | TEH | TCD | RSI | ICMP | HIH,
    "INBOUND_ICMP_ERROR": IHS | THS | CID | TEH,
    "OUTBOUND_ICMP_ERROR": SF | THS | CID | TEH | TCD | RSI,
    "ALE_AUTH_RECV_ACCEPT": FH
    | IHS
    | PP
    | TOK
    | PID
    | THS
    | CID
    | CH
    | TEH
    | PD
    | PEH
    | ICMP
    | SPT,
    "ALE_AUTH_CONNECT": FH | PP | TOK | PID | THS | CID | CH | TEH | RSI | PD | PEH | ICMP | SPT,
    "ALE_FLOW_ESTABLISHED": FH | PP | TOK | PID | TEH | PEH | ICMP | SPT,
    "STREAM_PACKET": FH | IHS | SF | THS | CID | TEH | TCD | RSI,
}

_META_FIELD_BIT = {
    "flowHandle": FH,
    "ipHeaderSize": IHS,
    "transportHeaderSize": THS,
    "compartmentId": CID,
    "fragmentMetadata": FRAG,
    "pathMtu": MTU,
    "transportEndpointHandle": TEH,
    "controlData": TCD,
    "remoteScopeId": RSI,
    "icmpIdAndSequence": ICMP,
    "processPath": PP,
    "token": TOK,
    "processId": PID,
    "completionHandle": CH,
    "packetDirection": PD,
    "parentEndpointHandle": PEH,
    "headerIncludeHeader": HIH,
    "sourceInterfaceIndex": SRCIF,
    "destinationInterfaceIndex": DSTIF,
}


def build_metadata(layer: int, **fields: Any) -> FWPS_INCOMING_METADATA_VALUES0:
    """Metadata for one classify: each given field is stored, and its presence bit set, when the
    layer provides it (layers.md §5.3). Flag-only bits are passed as ``bits=``."""
    base = layer_base(layer)
    allowed = LAYER_METADATA.get(base, 0)
    meta = FWPS_INCOMING_METADATA_VALUES0()
    present = fields.pop("bits", 0) & allowed
    if allowed & SF:
        present |= SF
    for name, value in fields.items():
        if value is None:
            continue
        if name == "l2":
            continue
        bit = _META_FIELD_BIT.get(name)
        if bit is None:
            setattr(meta, name, value)
            continue
        if allowed & bit:
            setattr(meta, name, value)
            present |= bit
            if name == "controlData":
                meta.controlDataLength = len(value)
            if name == "headerIncludeHeader":
                meta.headerIncludeHeaderLength = len(value)
    meta.currentMetadataValues = present
    return meta


# ---- incoming values (layers.md §6) -----------------------------------------------------------

_FIELD_CACHE: dict[int, tuple[str, dict[str, int], int]] = {}
#: The one FWP_EMPTY incoming value shared by every unset slot (incoming values are const).
_EMPTY = FWPS_INCOMING_VALUE0(FWP_VALUE0())


def _field_map(layer: int) -> tuple[str, dict[str, int], int] | None:
    cached = _FIELD_CACHE.get(layer)
    if cached is None:
        enum_cls = FIELDS_BY_LAYER.get(FWPS_BUILTIN_LAYERS(layer))
        if enum_cls is None:
            return None
        prefix = "FWPS_FIELD_" + FWPS_BUILTIN_LAYERS(layer).name[len("FWPS_LAYER_") :] + "_"
        members = {n[len(prefix) :]: int(m) for n, m in enum_cls.__members__.items()}
        cached = _FIELD_CACHE[layer] = (prefix, members, members["MAX"])
    return cached


def build_values(layer: int, named: dict[str, FWP_VALUE0]) -> FWPS_INCOMING_VALUES0:
    """FWPS_INCOMING_VALUES0 for ``layer``: every field FWP_EMPTY except those in ``named``
    (keys are field names without the ``FWPS_FIELD_<LAYER>_`` prefix)."""
    fm = _field_map(layer)
    if fm is None:
        return FWPS_INCOMING_VALUES0(layerId=layer, valueCount=0, incomingValue=[])
    _, members, count = fm
    values = [_EMPTY] * count
    for name, value in named.items():
        index = members.get(name)
        if index is not None and index < count:
            values[index] = FWPS_INCOMING_VALUE0(value)
    return FWPS_INCOMING_VALUES0(layerId=layer, valueCount=count, incomingValue=values)


def addr_value(address: bytes) -> FWP_VALUE0:
    """IPv4: FWP_UINT32 in host byte order; IPv6: FWP_BYTE_ARRAY16_TYPE (network order)."""
    if len(address) == 4:
        return FWP_VALUE0.u32(int.from_bytes(address, "big"))
    return FWP_VALUE0.bytes16(address)


def address_type(address: bytes) -> int:
    """NL_ADDRESS_TYPE of an address."""
    a = ipaddress.ip_address(address)
    if a.is_unspecified:
        return NlatUnspecified
    if a.is_multicast:
        return NlatMulticast
    if a.version == 4 and address == b"\xff\xff\xff\xff":
        return NlatBroadcast
    return NlatUnicast


def app_id_blob(path: str) -> FWP_VALUE0:
    return FWP_VALUE0.blob((path + "\0").encode("utf-16-le"))


# ---- the packet being moved -------------------------------------------------------------------


@dataclass(eq=False)
class Pkt:
    """A packet travelling a path: its NBL and what the stack knows about it."""

    nbl: Any
    af: int
    direction: int
    interface: Interface | None = None
    sub_interface_index: int = 0
    compartment_id: int = 1
    rec: InjectionRecord | None = None
    ip: IP.IpInfo | None = None
    tp: IP.TransportInfo | None = None
    flags: int = 0
    endpoint: Endpoint | None = None
    flow_handle: int = 0
    shift: int = 0  # bytes every NB was advanced (>0) / retreated (<0) from its start
    ipsec_bypass: bool = False
    header_include: bytes | None = None
    remote: tuple[bytes, int] | None = None
    local_address: bytes | None = None
    remote_scope_id: int | None = None
    control_data: bytes | None = None
    may_fragment: bool = True
    header_in_data: bool = False  # raw send: the IP header is already in the NBL's data
    classify_mac: bool = True
    fragment: FWPS_INBOUND_FRAGMENT_METADATA0 | None = None
    raw_ip: bytes = b""  # the IP packet as parsed (receive paths)
    absorbed_layer: int | None = None  # where a callout absorbed the packet
    absorbed_ths: int = 0  # the transportHeaderSize it was shown there
    trimmed: int = 0  # bytes cut from the end of every NB (an ESP trailer, see ipsec.py)
    security: Any = None  # inbound IPsec state (ipsec.FWPS_PACKET_LIST_INBOUND_IPSEC_...)
    outcome: str = ""
    layers: list[int] = field(default_factory=list)

    @property
    def function(self) -> str | None:
        return self.rec.function if self.rec is not None else None


@dataclass
class PathResult:
    """What ``stack.receive`` / ``stack.send`` report."""

    outcome: str  # "delivered", "forwarded", "sent", "absorbed", "blocked", "dropped", ...
    status: int
    layers: tuple[int, ...]
    reason: str = ""


class Dropped(Exception):
    """Internal: the packet stops here (not an error of the caller)."""

    def __init__(self, outcome: str, status: int = S.STATUS_SUCCESS, reason: str = "") -> None:
        super().__init__(reason or outcome)
        self.outcome = outcome
        self.status = status
        self.reason = reason


def _nb_write(nb: Any, offset: int, data: bytes) -> None:
    """Writes ``data`` at ``offset`` of the NB's used data (across MDLs)."""
    pos = 0
    remaining = memoryview(data)
    for view in nb.views():
        n = len(view)
        if pos + n <= offset:
            pos += n
            continue
        start = max(0, offset - pos)
        take = min(n - start, len(remaining))
        view[start : start + take] = remaining[:take]
        remaining = remaining[take:]
        pos += n
        if not remaining:
            return
    if remaining:
        raise MalformedPacketError("header write past the end of the NET_BUFFER")


def _head(nb: Any, n: int) -> bytes:
    if nb.DataLength <= n:
        return nb.tobytes()
    return nb.tobytes()[:n]


class Paths:
    """The path engine of one stack."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    # -- offsets --

    @staticmethod
    def move(pkt: Pkt, n: int) -> None:
        """Advance (n > 0) or retreat (n < 0) every NB of the packet's NBL by |n| bytes."""
        if n == 0:
            return
        for nb in pkt.nbl.net_buffers:
            if n > 0:
                nb.advance(n, False)
            else:
                nb.retreat(-n, 0)
        pkt.shift += n

    def restore(self, pkt: Pkt) -> None:
        """Puts the NBL back where the packet started (frees MDLs a retreat allocated)."""
        if pkt.trimmed and pkt.nbl.alive:
            for nb in pkt.nbl.net_buffers:
                nb.DataLength += pkt.trimmed
            pkt.trimmed = 0
        if pkt.shift and pkt.nbl.alive:
            for nb in pkt.nbl.net_buffers:
                if pkt.shift > 0:
                    nb.retreat(pkt.shift, 0)
                else:
                    nb.advance(-pkt.shift, True)
        pkt.shift = 0

    # -- classify --

    def visit(
        self,
        pkt: Pkt,
        layer: int,
        values: dict[str, FWP_VALUE0] | Callable[[], dict[str, FWP_VALUE0]],
        meta: FWPS_INCOMING_METADATA_VALUES0 | Callable[[], FWPS_INCOMING_METADATA_VALUES0],
        layer_data: Any = "nbl",
    ) -> str:
        """Classifies at ``layer``. ``values`` / ``meta`` may be callables: they are built only
        when the engine classifies there (an engine without filters at a layer says so with
        ``needs_classify(layer_id) -> False``; :class:`PermitAllEngine` never needs one)."""
        stack = self.stack
        self.last_meta = None
        if stack.trace is None and not stack._engine_needs(layer):
            pkt.layers.append(layer)
            if pkt.rec is not None:
                pkt.rec.layers.append(layer)
            return PERMIT
        if callable(meta):
            meta = meta()
        self.last_meta = meta
        fixed = build_values(layer, values() if callable(values) else values)
        data = pkt.nbl if layer_data == "nbl" else layer_data
        nbls = []
        if data is not None and data is pkt.nbl:
            nbls = [pkt.nbl]
        before = [[nb.DataOffset for nb in n.net_buffers] for n in nbls]
        stack._classify_layers.append(layer)
        if stack.trace is not None:
            stack.trace.append(
                Visit(
                    layer,
                    before[0][0] if before and before[0] else None,
                    fixed,
                    meta,
                    pkt.function,
                    pkt.nbl if data is not None else None,
                )
            )
        try:
            out = stack.filter_engine.classify(
                layer, fixed, meta, data, flow_handle=pkt.flow_handle
            )
        finally:
            stack._classify_layers.pop()
        pkt.layers.append(int(layer))
        if pkt.rec is not None:
            pkt.rec.layers.append(int(layer))
        for n, offsets in zip(nbls, before, strict=True):
            if n.alive and [nb.DataOffset for nb in n.net_buffers] != offsets:
                now = [nb.DataOffset for nb in n.net_buffers]
                for nb, want in zip(n.net_buffers, offsets, strict=False):
                    if nb.DataOffset > want:
                        nb.retreat(nb.DataOffset - want, 0)
                    elif nb.DataOffset < want:
                        nb.advance(want - nb.DataOffset, False)
                stack.contracts.violation(
                    "offset-not-restored",
                    f"a classifyFn at {FWPS_BUILTIN_LAYERS(layer).name} returned with the "
                    f"indicated NBL's DataOffset at {now} instead of {offsets} (B5); the stack "
                    "put it back",
                )
        if out is None:
            return PERMIT
        if out.flags & FWPS_CLASSIFY_OUT_FLAG_ABSORB:
            return ABSORB
        if out.actionType == FWP_ACTION_BLOCK:
            return BLOCK
        return PERMIT

    def _stop(self, verdict: str, layer_name: str) -> None:
        if verdict == ABSORB:
            raise Dropped("absorbed", S.STATUS_SUCCESS, f"absorbed at {layer_name}")
        if verdict == BLOCK:
            raise Dropped("blocked", S.STATUS_FWP_DROP_NOICMP, f"blocked at {layer_name}")

    def check(self, pkt: Pkt, layer: int, values: dict, meta: Any, layer_data: Any = "nbl") -> None:
        verdict = self.visit(pkt, layer, values, meta, layer_data)
        if verdict != PERMIT:
            if verdict == ABSORB:
                self.note_absorbed(pkt, layer, self.last_meta)
            self._stop(verdict, FWPS_BUILTIN_LAYERS(layer).name)

    @staticmethod
    def note_absorbed(pkt: Pkt, layer: int, meta: Any) -> None:
        pkt.absorbed_layer = int(layer)
        if meta is not None and meta.currentMetadataValues & THS:
            pkt.absorbed_ths = meta.transportHeaderSize

    def settle(self, pkt: Pkt) -> None:
        """End of a path. An absorbed NBL stays where the absorbing classify saw it (a callout
        may hold a reference and clone it later, R4/R5); with ``stack.absorbed_offset_drift``
        True the stack moves an absorbed inbound NBL back by transportHeaderSize at the
        transport, ALE recv-accept and datagram layers, the drift TLInspect / WFPSampler guard
        against (B4, S-08; [emu], unconfirmed when Windows does it); with ``"recv-accept"`` only
        at ALE_AUTH_RECV_ACCEPT for non-TCP, non-ICMP, non-raw packets (WFPSampler's rule, S-32). Any other NBL is put back where the
        path started."""
        if pkt.absorbed_layer is None or pkt.nbl is None or not pkt.nbl.alive:
            self.restore(pkt)
            return
        mode = self.stack.absorbed_offset_drift
        if not mode or not pkt.absorbed_ths:
            return
        base = layer_base(pkt.absorbed_layer)
        if mode == "recv-accept":
            # WFPSampler's reading (samples.md §4.3): only at ALE_AUTH_RECV_ACCEPT, only for
            # packets that are not TCP, not ICMP and not for a raw endpoint
            proto = pkt.ip.protocol if pkt.ip is not None else 0
            if (
                base != "ALE_AUTH_RECV_ACCEPT"
                or proto in (IP.IPPROTO_TCP, IP.IPPROTO_ICMP, IP.IPPROTO_ICMPV6)
                or pkt.flags & FWP_CONDITION_FLAG_IS_RAW_ENDPOINT
            ):
                return
        elif base not in DRIFT_LAYERS:
            return
        self.move(pkt, -pkt.absorbed_ths)

    # -- values common to a packet --

    def ip_values(self, pkt: Pkt) -> dict[str, FWP_VALUE0]:
        ip = pkt.ip
        assert ip is not None
        if pkt.direction == INBOUND:
            local, remote = ip.dst, ip.src
        else:
            local, remote = ip.src, ip.dst
        iface = pkt.interface
        v = {
            "IP_LOCAL_ADDRESS": addr_value(local),
            "IP_REMOTE_ADDRESS": addr_value(remote),
            "IP_LOCAL_ADDRESS_TYPE": FWP_VALUE0.u8(address_type(local)),
            "IP_DESTINATION_ADDRESS_TYPE": FWP_VALUE0.u8(address_type(ip.dst)),
            "IP_PROTOCOL": FWP_VALUE0.u8(ip.protocol),
            "FLAGS": FWP_VALUE0.u32(pkt.flags),
            "COMPARTMENT_ID": FWP_VALUE0.u32(pkt.compartment_id),
            "TUNNEL_TYPE": FWP_VALUE0.u32(0),
            "DIRECTION": FWP_VALUE0.u32(pkt.direction),
        }
        if iface is not None:
            if_type = IF_TYPE_SOFTWARE_LOOPBACK if pkt.flags & 1 else iface.if_type
            v.update(
                IP_LOCAL_INTERFACE=FWP_VALUE0.u64(iface.luid),
                INTERFACE_INDEX=FWP_VALUE0.u32(iface.index),
                SUB_INTERFACE_INDEX=FWP_VALUE0.u32(pkt.sub_interface_index),
                INTERFACE_TYPE=FWP_VALUE0.u32(if_type),
            )
            if pkt.direction == INBOUND:
                v.update(
                    IP_ARRIVAL_INTERFACE=FWP_VALUE0.u64(iface.luid),
                    ARRIVAL_INTERFACE_INDEX=FWP_VALUE0.u32(iface.index),
                    ARRIVAL_INTERFACE_TYPE=FWP_VALUE0.u32(if_type),
                    ARRIVAL_TUNNEL_TYPE=FWP_VALUE0.u32(0),
                )
            else:
                v.update(
                    IP_NEXTHOP_INTERFACE=FWP_VALUE0.u64(iface.luid),
                    NEXTHOP_INTERFACE_INDEX=FWP_VALUE0.u32(iface.index),
                    NEXTHOP_SUB_INTERFACE_INDEX=FWP_VALUE0.u32(pkt.sub_interface_index),
                    NEXTHOP_INTERFACE_TYPE=FWP_VALUE0.u32(if_type),
                    NEXTHOP_TUNNEL_TYPE=FWP_VALUE0.u32(0),
                )
        tp = pkt.tp
        if tp is not None and tp.protocol in (IP.IPPROTO_UDP, IP.IPPROTO_TCP):
            lport, rport = (
                (tp.dst_port, tp.src_port)
                if pkt.direction == INBOUND
                else (tp.src_port, tp.dst_port)
            )
            v["IP_LOCAL_PORT"] = FWP_VALUE0.u16(lport)
            v["IP_REMOTE_PORT"] = FWP_VALUE0.u16(rport)
        elif tp is not None and tp.protocol in (IP.IPPROTO_ICMP, IP.IPPROTO_ICMPV6):
            # ICMP type / code travel in the local / remote port slots (layers.md §6)
            v["IP_LOCAL_PORT"] = FWP_VALUE0.u16(tp.src_port)
            v["IP_REMOTE_PORT"] = FWP_VALUE0.u16(tp.dst_port)
        if pkt.endpoint is not None:
            v["ALE_APP_ID"] = app_id_blob(pkt.endpoint.app_path)
            v["ALE_ORIGINAL_APP_ID"] = app_id_blob(pkt.endpoint.app_path)
            v["ALE_USER_ID"] = FWP_VALUE0(FWP_SECURITY_DESCRIPTOR_TYPE, FWP_BYTE_BLOB(0, b""))
        return v

    def ip_meta(self, pkt: Pkt, layer: int, **extra: Any) -> FWPS_INCOMING_METADATA_VALUES0:
        ip, tp, ep = pkt.ip, pkt.tp, pkt.endpoint
        fields: dict[str, Any] = {
            "compartmentId": pkt.compartment_id,
            "flowHandle": pkt.flow_handle or None,
            "transportEndpointHandle": ep.handle if ep is not None else None,
        }
        if ip is not None:
            fields["ipHeaderSize"] = ip.header_length
        if tp is not None and tp.header_length:
            fields["transportHeaderSize"] = tp.header_length
            if tp.protocol in (IP.IPPROTO_ICMP, IP.IPPROTO_ICMPV6):
                fields["icmpIdAndSequence"] = tp.icmp_id_seq
        if ep is not None:
            fields["processId"] = ep.process_id
            fields["processPath"] = FWP_BYTE_BLOB(
                len(ep.app_path) * 2 + 2, (ep.app_path + "\0").encode("utf-16-le")
            )
            fields["token"] = 0
        if pkt.remote_scope_id is not None:
            fields["remoteScopeId"] = pkt.remote_scope_id
        if pkt.control_data is not None:
            fields["controlData"] = pkt.control_data
        fields.update(extra)
        return build_metadata(layer, **fields)

    # ================================================================================= inbound

    def receive_frame(self, pkt: Pkt) -> None:
        """From the wire on an Ethernet interface: the NBL starts at the MAC header."""
        nb = pkt.nbl.FirstNetBuffer
        try:
            eth = IP.parse_ethernet(_head(nb, 18))
        except MalformedPacketError as e:
            raise Dropped("dropped", S.STATUS_INVALID_PARAMETER, str(e)) from None
        self.check(
            pkt,
            INBOUND_MAC_NATIVE,
            lambda: self.mac_values(pkt, eth, INBOUND),
            lambda: self.l2_meta(0),
        )
        if eth.ethertype not in (IP.ETHERTYPE_IPV4, IP.ETHERTYPE_IPV6):
            raise Dropped("dropped", S.STATUS_SUCCESS, f"non-IP frame (type {eth.ethertype:#x})")
        self.move(pkt, eth.header_length)
        self.check(
            pkt,
            INBOUND_MAC_ETHERNET,
            lambda: self.mac_values(pkt, eth, INBOUND),
            lambda: self.l2_meta(eth.header_length),
        )
        self.receive_ip(pkt)

    def vswitch_ingress(
        self, pkt: Pkt, l2_flags: int, vswitch_id: bytes, source_port_id: int, nic_index: int
    ) -> None:
        """INGRESS_VSWITCH_ETHERNET (see :meth:`wfpsim.Stack.vswitch_receive`, [emu])."""
        stack = self.stack
        nb = pkt.nbl.FirstNetBuffer
        try:
            eth = IP.parse_ethernet(_head(nb, 18))
        except MalformedPacketError as e:
            raise Dropped("dropped", S.STATUS_INVALID_PARAMETER, str(e)) from None

        def dl_type(mac: bytes) -> int:
            return 2 if mac == b"\xff" * 6 else (1 if mac[0] & 1 else 0)

        def values() -> dict[str, FWP_VALUE0]:
            return {
                "MAC_SOURCE_ADDRESS": FWP_VALUE0.bytes6(eth.src),
                "MAC_SOURCE_ADDRESS_TYPE": FWP_VALUE0.u8(dl_type(eth.src)),
                "MAC_DESTINATION_ADDRESS": FWP_VALUE0.bytes6(eth.dst),
                "MAC_DESTINATION_ADDRESS_TYPE": FWP_VALUE0.u8(dl_type(eth.dst)),
                "ETHER_TYPE": FWP_VALUE0.u16(eth.ethertype),
                "VLAN_ID": FWP_VALUE0.u16(eth.vlan_id),
                "VSWITCH_ID": FWP_VALUE0.blob(vswitch_id),
                "VSWITCH_SOURCE_INTERFACE_ID": FWP_VALUE0.u32(source_port_id),
                "L2_FLAGS": FWP_VALUE0.u32(l2_flags),
                "COMPARTMENT_ID": FWP_VALUE0.u32(0),
            }

        def meta() -> FWPS_INCOMING_METADATA_VALUES0:
            m = FWPS_INCOMING_METADATA_VALUES0()
            m.l2Flags = l2_flags
            m.vSwitchSourcePortId = source_port_id
            m.vSwitchSourceNicIndex = nic_index
            m.currentL2MetadataValues = (
                FWPS_L2_METADATA_FIELD_VSWITCH_SOURCE_PORT_ID
                | FWPS_L2_METADATA_FIELD_VSWITCH_SOURCE_NIC_INDEX
            )
            return m

        self.check(pkt, INGRESS_VSWITCH_ETHERNET, values, meta)
        stack._record(
            Delivered(None, nb.tobytes(), 0, 0, 0, "vswitch", stack.now, layers=tuple(pkt.layers))
        )
        pkt.outcome = "delivered"

    def mac_values(self, pkt: Pkt, eth: IP.EthernetInfo, direction: int) -> dict[str, FWP_VALUE0]:
        iface = pkt.interface
        assert iface is not None
        local, remote = (eth.dst, eth.src) if direction == INBOUND else (eth.src, eth.dst)

        def dl_type(mac: bytes) -> int:  # DL_ADDRESS_TYPE: unicast 0, multicast 1, broadcast 2
            if mac == b"\xff" * 6:
                return 2
            return 1 if mac[0] & 1 else 0

        return {
            "INTERFACE_MAC_ADDRESS": FWP_VALUE0.bytes6(iface.mac or bytes(6)),
            "MAC_LOCAL_ADDRESS": FWP_VALUE0.bytes6(local),
            "MAC_REMOTE_ADDRESS": FWP_VALUE0.bytes6(remote),
            "MAC_LOCAL_ADDRESS_TYPE": FWP_VALUE0.u8(dl_type(local)),
            "MAC_REMOTE_ADDRESS_TYPE": FWP_VALUE0.u8(dl_type(remote)),
            "ETHER_TYPE": FWP_VALUE0.u16(eth.ethertype),
            "VLAN_ID": FWP_VALUE0.u16(eth.vlan_id),
            "INTERFACE": FWP_VALUE0.u64(iface.luid),
            "INTERFACE_INDEX": FWP_VALUE0.u32(iface.index),
            "NDIS_PORT": FWP_VALUE0.u32(0),
            "L2_FLAGS": FWP_VALUE0.u32(0),
            "COMPARTMENT_ID": FWP_VALUE0.u32(iface.compartment_id),
            "NDIS_MEDIA_TYPE": FWP_VALUE0.u32(0),  # NdisMedium802_3
            "NDIS_PHYSICAL_MEDIA_TYPE": FWP_VALUE0.u32(14),  # NdisPhysicalMedium802_3
            "INTERFACE_TYPE": FWP_VALUE0.u32(iface.if_type),
        }

    @staticmethod
    def l2_meta(mac_header_size: int) -> FWPS_INCOMING_METADATA_VALUES0:
        meta = FWPS_INCOMING_METADATA_VALUES0()
        if mac_header_size:
            meta.ethernetMacHeaderSize = mac_header_size
            meta.currentL2MetadataValues = FWPS_L2_METADATA_FIELD_ETHERNET_MAC_HEADER_SIZE
        return meta

    def parse_ip_of(self, pkt: Pkt) -> IP.IpInfo:
        nb = pkt.nbl.FirstNetBuffer
        data = nb.tobytes()
        try:
            info = IP.parse_ip(data)
        except MalformedPacketError as e:
            raise Dropped("dropped", S.STATUS_INVALID_PARAMETER, str(e)) from None
        if info.total_length > len(data):
            raise Dropped(
                "dropped",
                S.STATUS_INVALID_PARAMETER,
                f"IP length field {info.total_length} > {len(data)} bytes present",
            )
        pkt.ip = info
        pkt.af = info.address_family
        pkt.raw_ip = data[: info.total_length]
        return info

    def receive_ip(self, pkt: Pkt) -> None:
        """The bottom of the IP receive path: the NBL's data starts at the IP header."""
        stack = self.stack
        ip = self.parse_ip_of(pkt)
        iface = pkt.interface
        assert iface is not None
        pkt.compartment_id = iface.compartment_id
        local = stack._is_local(ip.dst, pkt.compartment_id, iface)
        if ip.is_fragment:
            pkt.fragment = FWPS_INBOUND_FRAGMENT_METADATA0(
                ip.identification, ip.fragment_offset, ip.total_length - ip.header_length
            )
            if local:
                self._local_fragment(pkt)
            else:
                self._forward(pkt)
            return
        if local:
            owner = stack._interface_with(ip.dst, pkt.compartment_id)
            if stack.forwarding and owner is not None and owner is not iface:
                # weak-host receive [emu]: the packet is forwarded inside the host to the
                # interface that owns the address, through IPFORWARD with IS_INBOUND_PASS_THRU
                self._ipforward(
                    pkt, iface, owner, pkt.flags | FWP_CONDITION_FLAG_IS_INBOUND_PASS_THRU
                )
            self._local_in(pkt)
        else:
            self._forward(pkt)

    def _inbound_ippacket(self, pkt: Pkt, extra_flags: int = 0) -> None:
        ip = pkt.ip
        assert ip is not None
        layer = layer_id("INBOUND_IPPACKET", pkt.af)
        saved = pkt.flags
        pkt.flags |= extra_flags
        try:
            self.check(
                pkt,
                layer,
                lambda: self.ip_values(pkt),
                lambda: self.ip_meta(
                    pkt, layer, fragmentMetadata=pkt.fragment, ipHeaderSize=ip.header_length
                ),
            )
        finally:
            pkt.flags = saved

    def _local_in(self, pkt: Pkt) -> None:
        ip = pkt.ip
        assert ip is not None
        self.move(pkt, ip.header_length)  # INBOUND_IPPACKET: data starts at the transport header
        self._inbound_ippacket(pkt)
        self._transport_in(pkt)

    def _local_fragment(self, pkt: Pkt) -> None:
        stack = self.stack
        ip = pkt.ip
        assert ip is not None
        self.move(pkt, ip.header_length)
        # layers.md §11: each fragment as an IP packet, then again as a fragment
        self._inbound_ippacket(pkt)
        self._inbound_ippacket(pkt, FWP_CONDITION_FLAG_IS_FRAGMENT)
        self.move(pkt, -ip.header_length)
        packet = pkt.raw_ip
        history = pkt.nbl.get_info(10)
        result = stack.reassembler.add(packet, stack.now, (history, pkt.rec), ip)
        stack._arm_reassembly_timer()
        if result is None:
            raise Dropped("queued", S.STATUS_SUCCESS, "fragment held for reassembly")
        first_history = result.tags[0][0] if result.tags and result.tags[0] else 0
        whole = stack._new_nbl(result.packet)
        whole.set_info(10, first_history)
        inner = Pkt(
            whole,
            pkt.af,
            INBOUND,
            pkt.interface,
            pkt.sub_interface_index,
            pkt.compartment_id,
            rec=pkt.rec,
            flags=(pkt.flags & ~FWP_CONDITION_FLAG_IS_FRAGMENT) | FWP_CONDITION_FLAG_IS_REASSEMBLED,
            ipsec_bypass=pkt.ipsec_bypass,
        )
        try:
            self.parse_ip_of(inner)
            self._local_in(inner)
        finally:
            pkt.layers.extend(inner.layers)
            self.settle(inner)
            stack._release(whole)

    # -- transport --

    def _transport_in(self, pkt: Pkt) -> None:
        try:
            if pkt.ip is not None and pkt.ip.protocol in (IP.IPPROTO_ESP, IP.IPPROTO_AH):
                if self._ipsec_in(pkt):
                    return
            self._transport_in_clear(pkt)
        finally:
            if pkt.security is not None:
                ipsec.forget(pkt.nbl)

    def _ipsec_in(self, pkt: Pkt) -> bool:
        """IPsec verification of an inbound ESP packet (the model of :mod:`.ipsec`). Transport
        mode: strips the trailer, leaves IP + ESP header in the NBL and returns False (the
        packet goes on to INBOUND_TRANSPORT). Tunnel mode: indicates the outer packet at
        INBOUND_TRANSPORT, then the inner one climbs from the bottom; returns True."""
        stack = self.stack
        ip = pkt.ip
        assert ip is not None
        if pkt.ipsec_bypass:
            raise Dropped(
                "failed",
                S.STATUS_DATA_NOT_ACCEPTED,
                "a packet receive-injected with FwpsInjectTransportReceiveAsync0 still carries "
                "its ESP/AH header: rebuild it with FwpsConstructIpHeaderForTransportPacket0 "
                "(headerIncludeHeaderLength = ipHeaderSize) before injecting (B11; [emu] status)",
            )
        sa = stack.ipsec_sas.get(ip.src)
        if sa is None or ip.protocol != IP.IPPROTO_ESP:
            raise Dropped("dropped", S.STATUS_SUCCESS, f"IPsec: no SA for {IP.addr_text(ip.src)}")
        segment = pkt.raw_ip[ip.header_length :]
        try:
            _spi, _seq, next_header, inner = ipsec.esp_unwrap(segment)
        except MalformedPacketError as e:
            raise Dropped("dropped", S.STATUS_INVALID_PARAMETER, str(e)) from None
        pkt.flags |= FWP_CONDITION_FLAG_IS_IPSEC_SECURED
        esp = ipsec.ESP_HEADER_LENGTH
        if next_header in (ipsec.IPPROTO_IPV4, ipsec.IPPROTO_IPV6):
            self._ipsec_tunnel_in(pkt, inner)
            return True
        trailer = len(segment) - esp - len(inner)
        pkt.ip = dataclasses.replace(ip, header_length=ip.header_length + esp, protocol=next_header)
        pkt.raw_ip = pkt.raw_ip[: len(pkt.raw_ip) - trailer]
        self.move(pkt, esp)
        for nb in pkt.nbl.net_buffers:
            nb.DataLength -= trailer
        pkt.trimmed += trailer
        pkt.security = ipsec.FWPS_PACKET_LIST_INBOUND_IPSEC_INFORMATION0(isSecure=1)
        ipsec.mark(pkt.nbl, pkt.security)
        return False

    def _ipsec_tunnel_in(self, pkt: Pkt, inner_packet: bytes) -> None:
        stack = self.stack
        ip = pkt.ip
        assert ip is not None
        outer = ipsec.FWPS_PACKET_LIST_INBOUND_IPSEC_INFORMATION0(1, 1, 0)
        pkt.security = outer
        ipsec.mark(pkt.nbl, outer)
        pkt.tp = IP.TransportInfo(IP.IPPROTO_ESP, 0)
        self.move(pkt, ipsec.ESP_HEADER_LENGTH)  # the data: the inner IP header
        layer = layer_id("INBOUND_TRANSPORT", pkt.af)
        meta_ip = dataclasses.replace(ip, header_length=ip.header_length + ipsec.ESP_HEADER_LENGTH)
        saved, pkt.ip = pkt.ip, meta_ip
        try:
            self.check(pkt, layer, lambda: self.ip_values(pkt), lambda: self.ip_meta(pkt, layer))
        finally:
            pkt.ip = saved
        whole = stack._new_nbl(inner_packet)
        whole.set_info(10, pkt.nbl.get_info(10))
        inner = Pkt(
            whole,
            pkt.af,
            INBOUND,
            pkt.interface,
            pkt.sub_interface_index,
            pkt.compartment_id,
            rec=pkt.rec,
            flags=pkt.flags | FWP_CONDITION_FLAG_IS_IPSEC_SECURED,
        )
        inner.security = ipsec.FWPS_PACKET_LIST_INBOUND_IPSEC_INFORMATION0(1, 1, 1)
        ipsec.mark(whole, inner.security)
        try:
            self.receive_ip(inner)
            pkt.outcome = inner.outcome
        finally:
            ipsec.forget(whole)
            pkt.layers.extend(inner.layers)
            self.settle(inner)
            stack._release(whole)

    def _transport_in_clear(self, pkt: Pkt) -> None:
        stack = self.stack
        ip = pkt.ip
        assert ip is not None
        segment = pkt.raw_ip[ip.header_length :]
        proto = ip.protocol
        if proto in (IP.IPPROTO_ICMP, IP.IPPROTO_ICMPV6) and segment:
            errors = IP.ICMPV4_ERROR_TYPES if proto == IP.IPPROTO_ICMP else IP.ICMPV6_ERROR_TYPES
            if segment[0] in errors:
                self._icmp_error_in(pkt, segment)
                return
        try:
            tp = IP.parse_transport(proto, segment)
        except MalformedPacketError as e:
            raise Dropped("dropped", S.STATUS_INVALID_PARAMETER, str(e)) from None
        pkt.tp = tp
        if stack._ipsec_required(ip.src) and not pkt.ipsec_bypass and pkt.security is None:
            raise Dropped(
                "dropped",
                S.STATUS_SUCCESS,
                f"IPsec: cleartext packet from protected peer {IP.addr_text(ip.src)}",
            )
        if proto == IP.IPPROTO_TCP:
            self._tcp_in(pkt, segment)
            return
        endpoint = stack._find_endpoint(pkt.af, proto, ip.dst, tp.dst_port, pkt.compartment_id)
        if endpoint is None:
            if proto == IP.IPPROTO_UDP and not stack._is_multicast_or_broadcast(ip.dst):
                self.send_icmp_error(pkt, *((3, 3) if pkt.af == AF_INET else (1, 4)))
            raise Dropped("dropped", S.STATUS_SUCCESS, "no endpoint for the packet")
        pkt.endpoint = endpoint
        if endpoint.raw:
            pkt.flags |= FWP_CONDITION_FLAG_IS_RAW_ENDPOINT
        flow = stack._datagram_flow(endpoint, (ip.src, tp.src_port), INBOUND)
        ale_required = flow.state != "authorized"
        if not ale_required:
            pkt.flow_handle = flow.flow_id
        icmp = proto in (IP.IPPROTO_ICMP, IP.IPPROTO_ICMPV6)
        self.move(pkt, 0 if icmp else tp.header_length)  # data (ICMP socket: the ICMP header)
        layer = layer_id("INBOUND_TRANSPORT", pkt.af)
        self.check(
            pkt,
            layer,
            lambda: self.ip_values(pkt),
            lambda: self.ip_meta(pkt, layer, bits=ACR if ale_required else 0),
        )
        if ale_required:
            self._ale_inbound(pkt, flow)
        layer = layer_id("DATAGRAM_DATA", pkt.af)
        self.check(pkt, layer, lambda: self.ip_values(pkt), lambda: self.ip_meta(pkt, layer))
        payload = segment[0 if icmp else tp.header_length :]
        stack._deliver_local(pkt, endpoint, payload, (ip.src, tp.src_port))
        pkt.outcome = "delivered"

    def _ale_inbound(self, pkt: Pkt, flow: DatagramFlow | TcpFlow) -> None:
        stack = self.stack
        layer = layer_id("ALE_AUTH_RECV_ACCEPT", pkt.af)
        pkt.flow_handle = flow.flow_id

        def completed(nbl: Any) -> None:
            if nbl is None:
                stack._refuse_flow(flow)
            # with a clone: it is about to be receive-injected; its classify authorises the flow

        handle = AleCompletionHandle(stack, layer, completed)
        meta = self.ip_meta(
            pkt,
            layer,
            completionHandle=handle,
            parentEndpointHandle=pkt.endpoint.handle
            if pkt.endpoint is not None and pkt.endpoint.listening
            else None,
        )
        verdict = self.visit(pkt, layer, lambda: self.ip_values(pkt), meta)
        if verdict == ABSORB:
            self.note_absorbed(pkt, layer, self.last_meta)
        if verdict == ABSORB and getattr(handle, "pended", False):
            flow.state = "pending"
        elif verdict == BLOCK and not handle.completed:
            flow.state = "new"
        if verdict != PERMIT:
            self._stop(verdict, FWPS_BUILTIN_LAYERS(layer).name)
        flow.state = "authorized" if isinstance(flow, DatagramFlow) else "syn_received"
        if isinstance(flow, DatagramFlow):
            self._flow_established(pkt, flow, INBOUND)

    def _flow_established(
        self, pkt: Pkt, flow: DatagramFlow | TcpFlow, direction: int, layer_data: Any = "nbl"
    ) -> None:
        layer = layer_id("ALE_FLOW_ESTABLISHED", pkt.af)
        values = self.ip_values(pkt)
        values["DIRECTION"] = FWP_VALUE0.u32(direction)
        meta = self.ip_meta(pkt, layer)
        if self.visit(pkt, layer, values, meta, layer_data) == BLOCK:
            self.stack._refuse_flow(flow)
            raise Dropped("blocked", S.STATUS_FWP_DROP_NOICMP, "blocked at ALE_FLOW_ESTABLISHED")

    def _icmp_error_in(self, pkt: Pkt, segment: bytes) -> None:
        stack = self.stack
        ip = pkt.ip
        assert ip is not None
        icmp_type, icmp_code = segment[0], segment[1]
        try:
            inner = IP.parse_ip(segment[8:])
            ports = segment[8 + inner.header_length : 8 + inner.header_length + 4]
        except MalformedPacketError as e:
            raise Dropped("dropped", S.STATUS_INVALID_PARAMETER, str(e)) from None
        sport, dport = struct.unpack("!HH", ports) if len(ports) == 4 else (0, 0)
        endpoint = stack._find_endpoint(
            pkt.af, inner.protocol, inner.src, sport, pkt.compartment_id
        )
        pkt.endpoint = endpoint
        pkt.tp = IP.TransportInfo(ip.protocol, 8, icmp_type, icmp_code)
        self.move(pkt, 8)  # INBOUND_ICMP_ERROR: data starts at the inner IP header
        layer = layer_id("INBOUND_ICMP_ERROR", pkt.af)
        values = self.ip_values(pkt)
        values.update(
            EMBEDDED_PROTOCOL=FWP_VALUE0.u8(inner.protocol),
            EMBEDDED_REMOTE_ADDRESS=addr_value(inner.dst),
            EMBEDDED_LOCAL_ADDRESS_TYPE=FWP_VALUE0.u8(address_type(inner.src)),
            EMBEDDED_LOCAL_PORT=FWP_VALUE0.u16(sport),
            EMBEDDED_REMOTE_PORT=FWP_VALUE0.u16(dport),
            ICMP_TYPE=FWP_VALUE0.u16(icmp_type),
            ICMP_CODE=FWP_VALUE0.u16(icmp_code),
        )
        # ipHeaderSize alone is the retreat back to the outer IP header (layers.md §4)
        meta = self.ip_meta(pkt, layer, ipHeaderSize=ip.header_length + 8, transportHeaderSize=8)
        self.check(pkt, layer, values, meta)
        if endpoint is None:
            raise Dropped("dropped", S.STATUS_SUCCESS, "ICMP error for no local endpoint")
        stack._deliver_icmp_error(pkt, endpoint, icmp_type, icmp_code, segment[8:])
        pkt.outcome = "delivered"

    # -- TCP (minimal: in-order data, handshake, FIN; no retransmission, no ACK generation) --

    def _tcp_in(self, pkt: Pkt, segment: bytes) -> None:
        stack = self.stack
        ip, tp = pkt.ip, pkt.tp
        assert ip is not None and tp is not None
        key = (pkt.af, ip.dst, tp.dst_port, ip.src, tp.src_port)
        flow = stack.tcp_by_tuple.get(key)
        syn = bool(tp.tcp_flags & IP.TCP_SYN)
        ack = bool(tp.tcp_flags & IP.TCP_ACK)
        payload = segment[tp.header_length :]
        self.move(pkt, tp.header_length)  # INBOUND_TRANSPORT: data starts at the payload
        in_transport = layer_id("INBOUND_TRANSPORT", pkt.af)
        if flow is None or flow.state in ("new", "pending"):
            if not syn or ack:
                raise Dropped("dropped", S.STATUS_SUCCESS, "TCP segment for no connection")
            listener = stack._find_listener(pkt.af, ip.dst, tp.dst_port, pkt.compartment_id)
            if listener is None:
                raise Dropped("dropped", S.STATUS_SUCCESS, "TCP SYN to a closed port")
            if flow is None:
                flow = stack._new_tcp_flow(
                    pkt.af,
                    (ip.dst, tp.dst_port),
                    (ip.src, tp.src_port),
                    listener,
                    INBOUND,
                    pkt.interface,
                    state="new",
                )
            pkt.endpoint = listener
            self.check(
                pkt,
                in_transport,
                lambda: self.ip_values(pkt),
                lambda: self.ip_meta(pkt, in_transport, bits=ACR),
            )
            self._ale_inbound(pkt, flow)
            flow.rcv_nxt = (tp.seq + 1) & 0xFFFFFFFF
            flow.interface_index = pkt.interface.index if pkt.interface else 0
            stack._tcp_output(flow, IP.TCP_SYN | IP.TCP_ACK)
            pkt.outcome = "delivered"
            return
        pkt.endpoint = flow.endpoint
        pkt.flow_handle = flow.flow_id
        self.check(
            pkt, in_transport, lambda: self.ip_values(pkt), lambda: self.ip_meta(pkt, in_transport)
        )
        sp = layer_id("STREAM_PACKET", pkt.af)
        self.check(pkt, sp, lambda: self.ip_values(pkt), lambda: self.ip_meta(pkt, sp))
        if tp.tcp_flags & IP.TCP_RST:
            flow.close()
            pkt.outcome = "delivered"
            return
        if flow.state == "syn_received" and ack:
            flow.state = "established"
            self._flow_established(pkt, flow, INBOUND)
        elif flow.state == "syn_sent" and syn and ack:
            flow.rcv_nxt = (tp.seq + 1) & 0xFFFFFFFF
            flow.state = "established"
            stack._tcp_output(flow, IP.TCP_ACK, flow_established=True)
            pkt.outcome = "delivered"
            return
        if flow.rcv_nxt is None:
            flow.rcv_nxt = tp.seq
        if payload or tp.tcp_flags & IP.TCP_FIN:
            if tp.seq != flow.rcv_nxt:
                raise Dropped("dropped", S.STATUS_SUCCESS, "out-of-order TCP segment")
            flow.rcv_nxt = (flow.rcv_nxt + len(payload)) & 0xFFFFFFFF
            flags = FWPS_STREAM_FLAG_RECEIVE
            if tp.tcp_flags & IP.TCP_PSH:
                flags |= FWPS_STREAM_FLAG_RECEIVE_PUSH
            if tp.tcp_flags & IP.TCP_URG:
                flags |= FWPS_STREAM_FLAG_RECEIVE_EXPEDITED
            if payload:
                self.stream_indicate(flow, INBOUND, payload, flags, rec=pkt.rec)
            if tp.tcp_flags & IP.TCP_FIN and not flow.closed:
                flow.rcv_nxt = (flow.rcv_nxt + 1) & 0xFFFFFFFF
                self.stream_indicate(
                    flow,
                    INBOUND,
                    b"",
                    FWPS_STREAM_FLAG_RECEIVE | FWPS_STREAM_FLAG_RECEIVE_DISCONNECT,
                    rec=pkt.rec,
                )
        pkt.outcome = "delivered"

    # -- the stream layer --

    def stream_values(self, flow: TcpFlow) -> dict[str, FWP_VALUE0]:
        return {
            "IP_LOCAL_ADDRESS": addr_value(flow.local[0]),
            "IP_LOCAL_ADDRESS_TYPE": FWP_VALUE0.u8(address_type(flow.local[0])),
            "IP_REMOTE_ADDRESS": addr_value(flow.remote[0]),
            "IP_LOCAL_PORT": FWP_VALUE0.u16(flow.local[1]),
            "IP_REMOTE_PORT": FWP_VALUE0.u16(flow.remote[1]),
            "DIRECTION": FWP_VALUE0.u32(flow.direction),  # of the connection (stmedit note)
            "FLAGS": FWP_VALUE0.u32(0),
            "COMPARTMENT_ID": FWP_VALUE0.u32(flow.compartment_id),
        }

    def stream_indicate(
        self,
        flow: TcpFlow,
        direction: int,
        data: bytes,
        flags: int,
        *,
        injected: bool = False,
        callout_id: int | None = None,
        rec: InjectionRecord | None = None,
    ) -> StreamVerdict:
        """Hands stream bytes of one direction to the engine's stream layer; what passes is
        delivered to the application (inbound) or segmented onto the wire (outbound)."""
        stack = self.stack
        layer = layer_id("STREAM", flow.address_family)
        meta = build_metadata(layer, flowHandle=flow.flow_id)
        segment = StreamSegment(flow.flow_id, flags, bytes(data), injected, callout_id)
        sink = self.stream_sink(flow, direction, rec)
        if flags & (FWPS_STREAM_FLAG_RECEIVE_DISCONNECT | FWPS_STREAM_FLAG_SEND_DISCONNECT):
            flow.fin_indicated[direction] = True
        if rec is not None:
            rec.layers.append(int(layer))
        flow.classifying[direction] = flow.classifying.get(direction, 0) + 1
        try:
            verdict = stack.filter_engine.stream_classify(
                layer,
                build_values(layer, self.stream_values(flow)),
                meta,
                segment,
                flow_handle=flow.flow_id,
                deliver=sink,
                exclude_callout_id=callout_id,
            )
        finally:
            flow.classifying[direction] -= 1
        verdict = verdict or StreamVerdict()
        flow.deferred[direction] = bool(verdict.deferred)
        if verdict.drop_connection:
            stack._drop_flow(flow)
        return verdict

    def stream_sink(self, flow: TcpFlow, direction: int, rec: InjectionRecord | None) -> Any:
        stack = self.stack

        def deliver(data: bytes, flags: int) -> None:
            data = bytes(data)
            disconnect = bool(
                flags & (FWPS_STREAM_FLAG_RECEIVE_DISCONNECT | FWPS_STREAM_FLAG_SEND_DISCONNECT)
            )
            if disconnect:
                flow.fin_released[direction] = True
            stack._record_stream(flow, direction, data, flags, rec)
            if direction == INBOUND:
                flow.received += data
                if disconnect:
                    flow.fin_received = True
                return
            flow.sent += data
            stack._tcp_send_data(flow, data, fin=disconnect, rec=rec)

        return deliver

    # ================================================================================ forward

    def _forward(self, pkt: Pkt) -> None:
        stack = self.stack
        ip = pkt.ip
        assert ip is not None
        arrival = pkt.interface
        if not stack.forwarding:
            raise Dropped("dropped", S.STATUS_SUCCESS, "not for this host; forwarding is off")
        route = stack._route(ip.dst, pkt.compartment_id)
        if route is None:
            raise Dropped("dropped", S.STATUS_NETWORK_UNREACHABLE, "no route")
        out_if, _ = route
        flags = pkt.flags | (FWP_CONDITION_FLAG_IS_FRAGMENT if ip.is_fragment else 0)
        if ip.is_fragment and stack.forward_fragment_grouping:
            # each fragment is indicated alone, then (once the group is complete) inside the
            # group (layers.md §11); a fragment a callout took at its own indication is not
            # forwarded by the stack, but still belongs to the group indication [emu]
            entry = [pkt.raw_ip, False]
            stack.forward_groups.setdefault(stack.reassembler.key_of(ip), []).append(entry)
            stopped: Dropped | None = None
            try:
                self._ipforward(pkt, arrival, out_if, flags)
                entry[1] = True
            except Dropped as d:
                stopped = d
            complete = self._forward_group(pkt, arrival, out_if)
            if stopped is not None:
                raise stopped
            if not complete:
                raise Dropped("queued", S.STATUS_SUCCESS, "fragment held for its group")
            return
        self._ipforward(pkt, arrival, out_if, flags)
        self.forward_emit(pkt, out_if, pkt.raw_ip)

    def _ipforward(
        self, pkt: Pkt, arrival: Interface | None, out_if: Interface, flags: int, data: Any = "nbl"
    ) -> None:
        ip = pkt.ip
        assert ip is not None
        layer = layer_id("IPFORWARD", pkt.af)

        def values() -> dict[str, FWP_VALUE0]:
            return {
                "IP_SOURCE_ADDRESS": addr_value(ip.src),
                "IP_DESTINATION_ADDRESS": addr_value(ip.dst),
                "IP_DESTINATION_ADDRESS_TYPE": FWP_VALUE0.u8(address_type(ip.dst)),
                "IP_LOCAL_INTERFACE": FWP_VALUE0.u64(arrival.luid if arrival else 0),
                "IP_FORWARD_INTERFACE": FWP_VALUE0.u64(out_if.luid),
                "SOURCE_INTERFACE_INDEX": FWP_VALUE0.u32(arrival.index if arrival else 0),
                "SOURCE_SUB_INTERFACE_INDEX": FWP_VALUE0.u32(pkt.sub_interface_index),
                "DESTINATION_INTERFACE_INDEX": FWP_VALUE0.u32(out_if.index),
                "DESTINATION_SUB_INTERFACE_INDEX": FWP_VALUE0.u32(out_if.sub_interface_index),
                "FLAGS": FWP_VALUE0.u32(flags),
                "IP_PHYSICAL_ARRIVAL_INTERFACE": FWP_VALUE0.u64(arrival.luid if arrival else 0),
                "IP_PHYSICAL_NEXTHOP_INTERFACE": FWP_VALUE0.u64(out_if.luid),
                "COMPARTMENT_ID": FWP_VALUE0.u32(pkt.compartment_id),
            }

        def meta() -> FWPS_INCOMING_METADATA_VALUES0:
            bits = 0
            if flags & FWP_CONDITION_FLAG_IS_OUTBOUND_PASS_THRU:
                bits |= FWD_OUT
            if flags & FWP_CONDITION_FLAG_IS_INBOUND_PASS_THRU:
                bits |= FWD_IN
            return build_metadata(layer, compartmentId=pkt.compartment_id, bits=bits)

        self.check(pkt, layer, values, meta, data)

    def _forward_group(self, pkt: Pkt, arrival: Interface | None, out_if: Interface) -> bool:
        """Fragment grouping on: once every fragment of the group arrived, indicate the group
        as an NBL chain with IS_FRAGMENT_GROUP (layers.md §11) and forward the fragments that
        passed their own indication. Returns False while the group is incomplete."""
        stack = self.stack
        ip = pkt.ip
        assert ip is not None
        key = stack.reassembler.key_of(ip)
        group = stack.forward_groups.get(key, [])
        from wfpsim.stack.fragments import reassemble_group

        try:
            reassemble_group([data for data, _ in group])
        except Exception:  # noqa: BLE001 - not complete yet
            return False
        del stack.forward_groups[key]
        chain = [stack._new_nbl(data) for data, _ in group]
        for a, b in zip(chain, chain[1:], strict=False):
            a.Next = b
        try:
            group_pkt = Pkt(
                chain[0],
                pkt.af,
                pkt.direction,
                arrival,
                compartment_id=pkt.compartment_id,
                rec=pkt.rec,
                ip=ip,
            )
            try:
                self._ipforward(
                    group_pkt, arrival, out_if, pkt.flags | FWP_CONDITION_FLAG_IS_FRAGMENT_GROUP
                )
            finally:
                pkt.layers.extend(group_pkt.layers)
            for data, permitted in group:
                if permitted:
                    self.forward_emit(pkt, out_if, data)
        finally:
            for a in chain:
                a.Next = None
            for a in chain:
                stack._release(a)
        return True

    def forward_emit(self, pkt: Pkt, out_if: Interface, data: bytes) -> None:
        """Forwarding: TTL/hop limit minus one, fragment if needed, out the interface."""
        ip = IP.parse_ip(data)
        if ip.ttl <= 1:
            self.send_icmp_error(pkt, *((11, 0) if ip.version == 4 else (3, 0)))
            raise Dropped("dropped", S.STATUS_HOPLIMIT_EXCEEDED, "TTL expired in transit")
        out = bytearray(data)
        if ip.version == 4:
            out[8] -= 1
            IP.fix_ipv4_checksum(out)
        else:
            out[7] -= 1
        self.emit_packets(pkt, out_if, [bytes(out)], classify_mac=True)
        pkt.outcome = "forwarded"

    # ================================================================================ outbound

    def send_transport(self, pkt: Pkt) -> None:
        """The top of the send path: the NBL's data starts at the transport header (or at the IP
        header of a header-include raw send, ``pkt.header_include`` set)."""
        stack = self.stack
        ep = pkt.endpoint
        assert ep is not None and pkt.remote is not None
        proto = ep.protocol
        nb = pkt.nbl.FirstNetBuffer
        if pkt.tp is None:
            try:
                pkt.tp = IP.parse_transport(proto, _head(nb, 60))
            except MalformedPacketError:
                pkt.tp = IP.TransportInfo(proto, 0)
        src = pkt.local_address or ep.local_address
        route = stack._route(pkt.remote[0], pkt.compartment_id)
        if route is None:
            raise Dropped("failed", S.STATUS_NETWORK_UNREACHABLE, "no route to the destination")
        pkt.interface = route[0]
        if src is None:
            src = route[1]
        if src is None:
            raise Dropped("failed", S.STATUS_NETWORK_UNREACHABLE, "no source address")
        pkt.local_address = src
        hlen = len(pkt.header_include) if pkt.header_include else (20 if pkt.af == AF_INET else 40)
        pkt.ip = IP.IpInfo(
            4 if pkt.af == AF_INET else 6, hlen, src, pkt.remote[0], proto, hlen + nb.DataLength
        )
        if ep.raw:
            pkt.flags |= FWP_CONDITION_FLAG_IS_RAW_ENDPOINT
        if proto != IP.IPPROTO_TCP:
            flow = stack._datagram_flow(ep, pkt.remote, OUTBOUND)
            if flow.state != "authorized":
                self._ale_outbound(pkt, flow)
            pkt.flow_handle = flow.flow_id
            layer = layer_id("DATAGRAM_DATA", pkt.af)
            raw_extra: dict[str, Any] = {}
            if ep.raw:  # ipHeaderSize > 0 identifies a raw-socket datagram (seed 000)
                raw_extra["ipHeaderSize"] = hlen
                if pkt.header_include:
                    raw_extra["headerIncludeHeader"] = pkt.header_include
            else:
                raw_extra["ipHeaderSize"] = None
            self.check(
                pkt,
                layer,
                lambda: self.ip_values(pkt),
                lambda: self.ip_meta(pkt, layer, **raw_extra),
            )
        else:
            flow_tcp = stack.tcp_by_tuple.get((pkt.af, src, pkt.tp.src_port, *pkt.remote))
            if flow_tcp is not None:
                pkt.flow_handle = flow_tcp.flow_id
        layer = layer_id("OUTBOUND_TRANSPORT", pkt.af)
        extra: dict[str, Any] = {"ipHeaderSize": None}
        if pkt.header_include:
            extra["headerIncludeHeader"] = pkt.header_include
        self.check(
            pkt, layer, lambda: self.ip_values(pkt), lambda: self.ip_meta(pkt, layer, **extra)
        )
        if proto == IP.IPPROTO_TCP:
            sp = layer_id("STREAM_PACKET", pkt.af)
            self.check(
                pkt,
                sp,
                lambda: self.ip_values(pkt),
                lambda: self.ip_meta(pkt, sp, ipHeaderSize=None),
            )
        self._prepend_ip_header(pkt, src, pkt.remote[0], proto)
        self.send_ip(pkt)

    def _prepend_ip_header(self, pkt: Pkt, src: bytes, dst: bytes, proto: int) -> None:
        stack = self.stack
        nbs = pkt.nbl.net_buffers
        if pkt.header_include:
            hlen = len(pkt.header_include)
        else:
            hlen = 20 if pkt.af == AF_INET else 40
        self.move(pkt, -hlen)
        if pkt.header_in_data:  # a raw send: the driver's header goes out as it is
            pkt.ip = IP.parse_ip(_head(nbs[0], 4096))
            return
        for nb in nbs:
            payload_len = nb.DataLength - hlen
            if pkt.header_include:
                header = bytearray(pkt.header_include)
                if header[0] >> 4 == 4:
                    struct.pack_into("!H", header, 2, hlen + payload_len)
                    if struct.unpack_from("!H", header, 4)[0] == 0:
                        struct.pack_into("!H", header, 4, stack._next_ip_id())
                    IP.fix_ipv4_checksum(header)
                else:
                    struct.pack_into("!H", header, 4, payload_len + hlen - 40)
                header = bytes(header)
            else:
                header = IP.ip_header(src, dst, proto, payload_len, ident=stack._next_ip_id())
            _nb_write(nb, 0, header)
        pkt.ip = IP.parse_ip(_head(nbs[0], 4096))

    def _ale_outbound(self, pkt: Pkt, flow: DatagramFlow) -> None:
        stack = self.stack
        if flow.state == "pending":
            raise Dropped("dropped", S.STATUS_FWP_DROP_NOICMP, "the flow's connect is pended")
        layer = layer_id("ALE_AUTH_CONNECT", pkt.af)
        pkt.flow_handle = flow.flow_id
        template = Pkt(
            None,
            pkt.af,
            OUTBOUND,
            pkt.interface,
            compartment_id=pkt.compartment_id,
            ip=pkt.ip,
            tp=pkt.tp,
            endpoint=pkt.endpoint,
            flow_handle=flow.flow_id,
        )

        def completed(_nbl: Any) -> None:
            self.reauthorize_connect(template, flow)

        handle = AleCompletionHandle(stack, layer, completed)
        meta = self.ip_meta(pkt, layer, completionHandle=handle, ipHeaderSize=None)
        verdict = self.visit(pkt, layer, lambda: self.ip_values(pkt), meta)
        if verdict == ABSORB:
            self.note_absorbed(pkt, layer, self.last_meta)
        if verdict == ABSORB and getattr(handle, "pended", False) and not handle.completed:
            flow.state = "pending"
        if verdict != PERMIT:
            self._stop(verdict, FWPS_BUILTIN_LAYERS(layer).name)
        if flow.state == "authorized":  # completed synchronously and re-authorised meanwhile
            return
        flow.state = "authorized"
        self._flow_established(pkt, flow, OUTBOUND)

    def reauthorize_connect(self, template: Pkt, flow: DatagramFlow) -> None:
        """FwpsCompleteOperation0 on a pended ALE_AUTH_CONNECT: the re-authorisation classify
        (IS_REAUTHORIZE, packetDirection present, no packet) decides the flow."""
        layer = layer_id("ALE_AUTH_CONNECT", template.af)
        template.flags |= FWP_CONDITION_FLAG_IS_REAUTHORIZE
        template.layers = []
        meta = self.ip_meta(template, layer, packetDirection=OUTBOUND, ipHeaderSize=None)
        verdict = self.visit(template, layer, lambda: self.ip_values(template), meta, None)
        template.flags &= ~FWP_CONDITION_FLAG_IS_REAUTHORIZE
        if verdict != PERMIT:
            flow.state = "new"
            return
        flow.state = "authorized"
        try:
            self._flow_established(template, flow, OUTBOUND, None)
        except Dropped:
            pass

    def send_ip(self, pkt: Pkt) -> None:
        """From OUTBOUND_IPPACKET down: the NBL's data starts at the IP header."""
        stack = self.stack
        ip = pkt.ip
        if ip is None:
            ip = self.parse_ip_of(pkt)
        if pkt.interface is None:
            route = stack._route(ip.dst, pkt.compartment_id)
            if route is None:
                raise Dropped("failed", S.STATUS_NETWORK_UNREACHABLE, "no route to the destination")
            pkt.interface = route[0]
        iface = pkt.interface
        loopback = stack._is_local(ip.dst, pkt.compartment_id, None)
        if loopback:
            pkt.flags |= FWP_CONDITION_FLAG_IS_LOOPBACK
            dst_if = stack._interface_with(ip.dst, pkt.compartment_id) or iface
            pkt.interface = dst_if
        tp_len = pkt.tp.header_length if pkt.tp is not None else None
        layer = layer_id("OUTBOUND_IPPACKET", pkt.af)
        self.check(
            pkt,
            layer,
            lambda: self.ip_values(pkt),
            lambda: self.ip_meta(
                pkt,
                layer,
                ipHeaderSize=ip.header_length,
                transportHeaderSize=tp_len,
                pathMtu=pkt.interface.mtu,
            ),
        )
        packets = [nb.tobytes() for nb in pkt.nbl.net_buffers]
        if loopback:
            for data in packets:
                stack._loopback(pkt, data)
            pkt.outcome = "delivered"
            return
        if any(len(p) > iface.mtu for p in packets):
            if not pkt.may_fragment:
                raise Dropped(
                    "failed",
                    S.STATUS_INVALID_BUFFER_SIZE,
                    f"packet of {max(len(p) for p in packets)} bytes > MTU {iface.mtu}",
                )
            from wfpsim.stack.fragments import fragment

            frags: list[bytes] = []
            for p in packets:
                try:
                    frags += fragment(p, iface.mtu, None if p[0] >> 4 == 4 else stack._next_ip_id())
                except MalformedPacketError as e:
                    raise Dropped("failed", S.STATUS_INVALID_BUFFER_SIZE, str(e)) from None
            self.emit_packets(pkt, iface, frags, classify_mac=pkt.classify_mac)
        else:
            self.emit_nbl(pkt, iface, classify_mac=pkt.classify_mac)
        pkt.outcome = "sent"

    # -- the link --

    def emit_nbl(self, pkt: Pkt, iface: Interface, *, classify_mac: bool) -> None:
        """Puts the packet's NBL (offset at the IP header) on the wire through the MAC layers."""
        stack = self.stack
        if not iface.ethernet:
            for nb in pkt.nbl.net_buffers:
                stack._wire_out(pkt, iface, nb.tobytes(), None)
            return
        ip = pkt.ip
        assert ip is not None
        header = IP.ethernet_header(
            stack._next_hop_mac(iface, ip.dst), iface.mac, IP.ethertype_for(ip.version)
        )
        self.move(pkt, -len(header))
        for nb in pkt.nbl.net_buffers:
            _nb_write(nb, 0, header)
        if classify_mac:
            self.mac_out(pkt, iface, header)
        for nb in pkt.nbl.net_buffers:
            frame = nb.tobytes()
            stack._wire_out(pkt, iface, frame[len(header) :], frame)

    def mac_out(self, pkt: Pkt, iface: Interface, header: bytes) -> None:
        eth = IP.parse_ethernet(header)
        self.check(
            pkt,
            OUTBOUND_MAC_ETHERNET,
            lambda: self.mac_values(pkt, eth, OUTBOUND),
            lambda: self.l2_meta(0),
        )
        self.check(
            pkt,
            OUTBOUND_MAC_NATIVE,
            lambda: self.mac_values(pkt, eth, OUTBOUND),
            lambda: self.l2_meta(0),
        )

    def emit_packets(
        self, pkt: Pkt, iface: Interface, packets: list[bytes], *, classify_mac: bool
    ) -> None:
        """Puts IP packets the stack built (fragments, forwarded copies) on the wire."""
        stack = self.stack
        for data in packets:
            if not iface.ethernet or not classify_mac:
                frame = None
                if iface.ethernet:
                    frame = (
                        IP.ethernet_header(
                            stack._next_hop_mac(iface, IP.parse_ip(data).dst),
                            iface.mac,
                            IP.ethertype_for(data[0] >> 4),
                        )
                        + data
                    )
                stack._wire_out(pkt, iface, data, frame)
                continue
            nbl = stack._new_nbl(data)
            nbl.set_info(10, pkt.nbl.get_info(10) if pkt.nbl is not None and pkt.nbl.alive else 0)
            sub = Pkt(
                nbl,
                pkt.af,
                OUTBOUND,
                iface,
                compartment_id=pkt.compartment_id,
                rec=pkt.rec,
                flags=pkt.flags,
            )
            try:
                sub.ip = IP.parse_ip(data)
                self.emit_nbl(sub, iface, classify_mac=True)
            finally:
                pkt.layers.extend(sub.layers)
                self.restore(sub)
                stack._release(nbl)

    # -- ICMP errors the stack sends --

    def send_icmp_error(self, about: Pkt, icmp_type: int, code: int) -> None:
        """Sends an ICMP error about the packet ``about`` (RFC 792 / RFC 4443)."""
        if about.raw_ip:
            self.send_icmp_error_bytes(
                about.raw_ip, about.interface, about.compartment_id, icmp_type, code
            )

    def send_icmp_error_bytes(
        self,
        original: bytes,
        iface: Interface | None,
        compartment_id: int,
        icmp_type: int,
        code: int,
    ) -> None:
        stack = self.stack
        try:
            oip = IP.parse_ip(original)
        except MalformedPacketError:
            return
        # RFC 1122 §3.2.2 / RFC 4443 §2.4(e): never about an ICMP error, a non-first fragment,
        # or a packet from a multicast / unspecified source
        if oip.fragment_offset or stack._is_multicast_or_broadcast(oip.src) or not any(oip.src):
            return
        upper = original[oip.header_length : oip.header_length + 1]
        if oip.protocol in (IP.IPPROTO_ICMP, IP.IPPROTO_ICMPV6) and upper:
            errors = IP.ICMPV4_ERROR_TYPES if oip.version == 4 else IP.ICMPV6_ERROR_TYPES
            if upper[0] in errors:
                return
        src = oip.dst if stack._is_local(oip.dst, compartment_id, None) else None
        route = stack._route(oip.src, compartment_id)
        if route is None:
            return
        out_if, route_src = route
        src = src or route_src
        if src is None:
            return
        if oip.version == 4:
            body = original[: oip.header_length + 8]
            msg = IP.icmp_message(src, oip.src, icmp_type, code, 0, body)
            proto = IP.IPPROTO_ICMP
        else:
            body = original[: 1280 - 48]
            msg = IP.icmp_message(src, oip.src, icmp_type, code, 0, body)
            proto = IP.IPPROTO_ICMPV6
        nbl = stack._new_nbl(msg, backfill=128)
        pkt = Pkt(nbl, oip.address_family, OUTBOUND, out_if, compartment_id=compartment_id)
        pkt.tp = IP.TransportInfo(proto, 8, icmp_type, code)
        pkt.ip = IP.IpInfo(oip.version, 20 if oip.version == 4 else 40, src, oip.src, proto, 0)
        try:
            layer = layer_id("OUTBOUND_ICMP_ERROR", pkt.af)
            values = self.ip_values(pkt)
            values.update(ICMP_TYPE=FWP_VALUE0.u16(icmp_type), ICMP_CODE=FWP_VALUE0.u16(code))
            self.check(pkt, layer, values, lambda: self.ip_meta(pkt, layer, ipHeaderSize=None))
            layer = layer_id("OUTBOUND_TRANSPORT", pkt.af)
            self.check(
                pkt,
                layer,
                lambda: self.ip_values(pkt),
                lambda: self.ip_meta(pkt, layer, ipHeaderSize=None),
            )
            self._prepend_ip_header(pkt, src, oip.src, proto)
            self.send_ip(pkt)
        except Dropped:
            pass
        finally:
            stack.icmp_errors_sent.append((icmp_type, code, IP.addr_text(oip.src)))
            self.restore(pkt)
            stack._release(nbl)


@dataclass
class Visit:
    """One classify, when ``stack.trace`` is a list (tests and debugging)."""

    layer_id: int
    data_offset: int | None
    values: FWPS_INCOMING_VALUES0
    meta: FWPS_INCOMING_METADATA_VALUES0
    function: str | None
    nbl: Any

    def value(self, name: str) -> Any:
        """An incoming value by field name (``"IP_LOCAL_PORT"``)."""
        fm = _field_map(self.layer_id)
        assert fm is not None
        return self.values.incomingValue[fm[1][name]].value

    @property
    def layer_name(self) -> str:
        return FWPS_BUILTIN_LAYERS(self.layer_id).name


__all__ = [
    "Paths",
    "Pkt",
    "PathResult",
    "Visit",
    "Dropped",
    "build_values",
    "build_metadata",
    "layer_id",
    "layer_base",
    "LAYER_METADATA",
    "TCP_LOCKED_LAYERS",
    "OUTBOUND",
    "INBOUND",
]
