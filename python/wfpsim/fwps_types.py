"""The WFP classify structures under their WDK names (`layers.md §5–§9`).

These are the seam between the simulated stack (which builds the inputs at every layer visit)
and the filter engine (which runs filters and callouts): both import them from here, nowhere
else. Plain mutable dataclasses: a classifyFn writes `classifyOut.actionType` exactly as in C.
Pointers are object references; NULL is None; 64-bit values are plain ints (C stores some by
pointer, which changes nothing for Python).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wfpsim.constants import (
    FWP_BYTE_ARRAY6_TYPE,
    FWP_BYTE_ARRAY16_TYPE,
    FWP_BYTE_BLOB_TYPE,
    FWP_EMPTY,
    FWP_UINT8,
    FWP_UINT16,
    FWP_UINT32,
    FWP_UINT64,
    FWP_UNICODE_STRING_TYPE,
)

# ---- FWP_VALUE0 ----


@dataclass
class FWP_BYTE_BLOB:  # noqa: N801
    size: int = 0
    data: bytes = b""


@dataclass
class FWP_VALUE0:  # noqa: N801
    """A typed value; `value` holds the union arm named by `type`.

    Addresses and ports follow the WDK's byte-order rules (`layers.md §6`): IPv4 addresses and
    ports are host-order integers; IPv6 addresses are 16 network-order bytes.
    """

    type: int = FWP_EMPTY
    value: Any = None

    # the union arms, as C code spells them
    @property
    def uint8(self) -> int:
        return self.value

    @property
    def uint16(self) -> int:
        return self.value

    @property
    def uint32(self) -> int:
        return self.value

    @property
    def uint64(self) -> int:
        return self.value

    @property
    def byteArray16(self) -> bytes:
        return self.value

    @property
    def byteArray6(self) -> bytes:
        return self.value

    @property
    def byteBlob(self) -> FWP_BYTE_BLOB:
        return self.value

    @property
    def unicodeString(self) -> str:
        return self.value

    @classmethod
    def u8(cls, v: int) -> FWP_VALUE0:
        return cls(FWP_UINT8, v)

    @classmethod
    def u16(cls, v: int) -> FWP_VALUE0:
        return cls(FWP_UINT16, v)

    @classmethod
    def u32(cls, v: int) -> FWP_VALUE0:
        return cls(FWP_UINT32, v)

    @classmethod
    def u64(cls, v: int) -> FWP_VALUE0:
        return cls(FWP_UINT64, v)

    @classmethod
    def bytes16(cls, v: bytes) -> FWP_VALUE0:
        return cls(FWP_BYTE_ARRAY16_TYPE, bytes(v))

    @classmethod
    def bytes6(cls, v: bytes) -> FWP_VALUE0:
        return cls(FWP_BYTE_ARRAY6_TYPE, bytes(v))

    @classmethod
    def blob(cls, v: bytes) -> FWP_VALUE0:
        return cls(FWP_BYTE_BLOB_TYPE, FWP_BYTE_BLOB(len(v), bytes(v)))

    @classmethod
    def string(cls, v: str) -> FWP_VALUE0:
        return cls(FWP_UNICODE_STRING_TYPE, v)


@dataclass
class FWPS_INCOMING_VALUE0:  # noqa: N801
    value: FWP_VALUE0 = field(default_factory=FWP_VALUE0)


@dataclass
class FWPS_INCOMING_VALUES0:  # noqa: N801
    """`incomingValue` is indexed by the layer's `FWPS_FIELD_<LAYER>_*` enum."""

    layerId: int = 0
    valueCount: int = 0
    incomingValue: list[FWPS_INCOMING_VALUE0] = field(default_factory=list)


# ---- metadata ----


@dataclass
class FWPS_DISCARD_METADATA0:  # noqa: N801
    discardModule: int = 0
    discardReason: int = 0
    filterId: int = 0


@dataclass
class FWPS_INBOUND_FRAGMENT_METADATA0:  # noqa: N801
    fragmentIdentification: int = 0
    fragmentOffset: int = 0
    fragmentLength: int = 0


@dataclass
class FWPS_INCOMING_METADATA_VALUES0:  # noqa: N801
    """Fields are valid only when their bit is set in `currentMetadataValues` (`layers.md §5`)."""

    currentMetadataValues: int = 0
    flags: int = 0
    reserved: int = 0
    discardMetadata: FWPS_DISCARD_METADATA0 = field(default_factory=FWPS_DISCARD_METADATA0)
    flowHandle: int = 0
    ipHeaderSize: int = 0
    transportHeaderSize: int = 0
    processPath: FWP_BYTE_BLOB | None = None
    token: int = 0
    processId: int = 0
    sourceInterfaceIndex: int = 0
    destinationInterfaceIndex: int = 0
    compartmentId: int = 0
    fragmentMetadata: FWPS_INBOUND_FRAGMENT_METADATA0 = field(
        default_factory=FWPS_INBOUND_FRAGMENT_METADATA0
    )
    pathMtu: int = 0
    completionHandle: Any = None
    transportEndpointHandle: int = 0
    remoteScopeId: int = 0
    controlData: bytes | None = None
    controlDataLength: int = 0
    packetDirection: int = 0
    headerIncludeHeader: bytes | None = None
    headerIncludeHeaderLength: int = 0
    destinationPrefix: Any = None
    frameLength: int = 0
    parentEndpointHandle: int = 0
    icmpIdAndSequence: int = 0
    localRedirectTargetPID: int = 0
    originalDestination: Any = None
    redirectRecords: Any = None
    currentL2MetadataValues: int = 0
    l2Flags: int = 0
    ethernetMacHeaderSize: int = 0
    wiFiOperationMode: int = 0
    vSwitchSourcePortId: int = 0
    vSwitchSourceNicIndex: int = 0
    vSwitchDestinationPortId: int = 0
    vSwitchPacketContext: Any = None
    subProcessTag: Any = None
    reserved1: int = 0


def FWPS_IS_METADATA_FIELD_PRESENT(
    metadataValues: FWPS_INCOMING_METADATA_VALUES0, metadataField: int
) -> bool:  # noqa: N802
    """True iff every bit of `metadataField` is set (`layers.md §5.1`)."""
    return (metadataValues.currentMetadataValues & metadataField) == metadataField


def FWPS_IS_L2_METADATA_FIELD_PRESENT(
    metadataValues: FWPS_INCOMING_METADATA_VALUES0, metadataField: int
) -> bool:  # noqa: N802
    return (metadataValues.currentL2MetadataValues & metadataField) == metadataField


# ---- filters, actions, classify output ----


@dataclass
class FWP_RANGE0:  # noqa: N801
    valueLow: FWP_VALUE0 = field(default_factory=FWP_VALUE0)
    valueHigh: FWP_VALUE0 = field(default_factory=FWP_VALUE0)


@dataclass
class FWP_V4_ADDR_AND_MASK:  # noqa: N801
    addr: int = 0
    mask: int = 0


@dataclass
class FWP_V6_ADDR_AND_MASK:  # noqa: N801
    addr: bytes = bytes(16)
    prefixLength: int = 0


@dataclass
class FWP_CONDITION_VALUE0:  # noqa: N801
    """Like FWP_VALUE0, plus the condition-only types (masks, ranges): `value` holds the arm."""

    type: int = FWP_EMPTY
    value: Any = None


@dataclass
class FWPS_FILTER_CONDITION0:  # noqa: N801
    fieldId: int = 0
    reserved: int = 0
    matchType: int = 0
    conditionValue: FWP_CONDITION_VALUE0 = field(default_factory=FWP_CONDITION_VALUE0)


@dataclass
class FWPS_ACTION0:  # noqa: N801
    type: int = 0
    calloutId: int = 0


@dataclass
class FWPS_FILTER0:  # noqa: N801
    """What a classifyFn receives as `filter` (FILTER1/2/3 differ only in providerContext)."""

    filterId: int = 0
    weight: FWP_VALUE0 = field(default_factory=FWP_VALUE0)
    subLayerWeight: int = 0
    flags: int = 0
    numFilterConditions: int = 0
    filterCondition: list[FWPS_FILTER_CONDITION0] = field(default_factory=list)
    action: FWPS_ACTION0 = field(default_factory=FWPS_ACTION0)
    context: int = 0
    providerContext: Any = None


FWPS_FILTER1 = FWPS_FILTER0
FWPS_FILTER2 = FWPS_FILTER0


@dataclass
class FWPS_CLASSIFY_OUT0:  # noqa: N801
    actionType: int = 0
    outContext: int = 0
    filterId: int = 0
    rights: int = 0
    flags: int = 0
    reserved: int = 0


@dataclass
class FWPS_CALLOUT0:  # noqa: N801
    """classifyFn(inFixedValues, inMetaValues, layerData, filter, flowContext, classifyOut)."""

    calloutKey: Any = None
    flags: int = 0
    classifyFn: Any = None
    notifyFn: Any = None
    flowDeleteFn: Any = None


@dataclass
class FWPS_CALLOUT1(FWPS_CALLOUT0):  # noqa: N801
    """classifyFn(inFixedValues, inMetaValues, layerData, classifyContext, filter, flowContext,
    classifyOut)."""


@dataclass
class FWPS_CALLOUT2(FWPS_CALLOUT1):  # noqa: N801
    """As FWPS_CALLOUT1, with FWPS_FILTER2."""


# ---- stream layer (`layers.md §9`) ----


@dataclass
class FWPS_STREAM_DATA_OFFSET0:  # noqa: N801
    netBufferList: Any = None
    netBuffer: Any = None
    mdl: Any = None
    mdlOffset: int = 0
    netBufferOffset: int = 0
    streamDataOffset: int = 0


@dataclass
class FWPS_STREAM_DATA0:  # noqa: N801
    flags: int = 0
    dataOffset: FWPS_STREAM_DATA_OFFSET0 = field(default_factory=FWPS_STREAM_DATA_OFFSET0)
    dataLength: int = 0
    netBufferListChain: Any = None


@dataclass
class FWPS_STREAM_CALLOUT_IO_PACKET0:  # noqa: N801
    streamData: FWPS_STREAM_DATA0 | None = None
    missedBytes: int = 0
    countBytesRequired: int = 0
    countBytesEnforced: int = 0
    streamAction: int = 0


# ---- management side (fwpmtypes.h): what FwpmSubLayerAdd0 / FwpmCalloutAdd0 / FwpmFilterAdd0 take
#
# Simulator conventions (documented deviations, the spec lists no FWPM GUID values):
# * `layerKey` / `applicableLayer` is the run-time layer id (an FWPS_LAYER_* int) instead of the
#   FWPM_LAYER_* GUID; `fieldKey` is the FWPS_FIELD_<LAYER>_* index instead of the
#   FWPM_CONDITION_* GUID.
# * Every other key (filterKey, subLayerKey, calloutKey, providerKey) is any hashable value; a
#   `uuid.UUID` is what a port of driver code would use. None is the zero GUID.


@dataclass
class FWPM_DISPLAY_DATA0:  # noqa: N801
    name: str | None = None
    description: str | None = None


@dataclass
class FWPM_SESSION0:  # noqa: N801
    sessionKey: Any = None
    displayData: FWPM_DISPLAY_DATA0 = field(default_factory=FWPM_DISPLAY_DATA0)
    flags: int = 0
    txnWaitTimeoutInMSec: int = 0


@dataclass
class FWPM_SUBLAYER0:  # noqa: N801
    subLayerKey: Any = None
    displayData: FWPM_DISPLAY_DATA0 = field(default_factory=FWPM_DISPLAY_DATA0)
    flags: int = 0
    providerKey: Any = None
    providerData: FWP_BYTE_BLOB | None = None
    weight: int = 0  # UINT16, higher = evaluated first


@dataclass
class FWPM_CALLOUT0:  # noqa: N801
    calloutKey: Any = None
    displayData: FWPM_DISPLAY_DATA0 = field(default_factory=FWPM_DISPLAY_DATA0)
    flags: int = 0
    providerKey: Any = None
    providerData: FWP_BYTE_BLOB | None = None
    applicableLayer: int = 0  # run-time layer id (simulator convention, see above)
    calloutId: int = 0  # output: the run-time id once registered


@dataclass
class FWPM_ACTION0:  # noqa: N801
    """`calloutKey` when `type` has FWP_ACTION_FLAG_CALLOUT, else `filterType` (C union)."""

    type: int = 0
    calloutKey: Any = None

    @property
    def filterType(self) -> Any:
        return self.calloutKey


@dataclass
class FWPM_FILTER_CONDITION0:  # noqa: N801
    fieldKey: int = 0  # FWPS_FIELD_<LAYER>_* index (simulator convention, see above)
    matchType: int = 0
    conditionValue: FWP_CONDITION_VALUE0 = field(default_factory=FWP_CONDITION_VALUE0)


@dataclass
class FWPM_FILTER0:  # noqa: N801
    filterKey: Any = None
    displayData: FWPM_DISPLAY_DATA0 = field(default_factory=FWPM_DISPLAY_DATA0)
    flags: int = 0  # FWPM_FILTER_FLAG_*
    providerKey: Any = None
    providerData: FWP_BYTE_BLOB | None = None
    layerKey: int = 0  # run-time layer id (simulator convention, see above)
    subLayerKey: Any = None  # None: FWPM_SUBLAYER_UNIVERSAL
    weight: FWP_VALUE0 = field(default_factory=FWP_VALUE0)
    numFilterConditions: int = 0
    filterCondition: list[FWPM_FILTER_CONDITION0] = field(default_factory=list)
    action: FWPM_ACTION0 = field(default_factory=FWPM_ACTION0)
    rawContext: int = 0  # union with providerContextKey
    providerContextKey: Any = None
    reserved: Any = None
    filterId: int = 0  # output
    effectiveWeight: FWP_VALUE0 = field(default_factory=FWP_VALUE0)  # output
