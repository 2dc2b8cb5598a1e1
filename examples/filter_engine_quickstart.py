"""The filter engine on its own: a sublayer, a callout, filters, one classify and a stream edit.

Run: ``python examples/filter_engine_quickstart.py``. The stack (``wfpsim.stack``) calls the same
``classify`` / ``stream_classify`` at every layer visit; here they are called by hand.
"""

from __future__ import annotations

import ipaddress
import uuid

from wfpsim import NetBufferList, wdk
from wfpsim.constants import (
    FWP_ACTION_BLOCK,
    FWP_ACTION_CALLOUT_TERMINATING,
    FWP_ACTION_PERMIT,
    FWP_MATCH_EQUAL,
    FWPS_CLASSIFY_OUT_FLAG_ABSORB,
    FWPS_FIELD_OUTBOUND_TRANSPORT_V4_IP_PROTOCOL,
    FWPS_FIELD_OUTBOUND_TRANSPORT_V4_IP_REMOTE_ADDRESS,
    FWPS_FIELD_OUTBOUND_TRANSPORT_V4_IP_REMOTE_PORT,
    FWPS_FIELD_OUTBOUND_TRANSPORT_V4_MAX,
    FWPS_LAYER_OUTBOUND_TRANSPORT_V4,
    FWPS_LAYER_STREAM_V4,
    FWPS_RIGHT_ACTION_WRITE,
    FWPS_STREAM_FLAG_RECEIVE,
)
from wfpsim.filtering import FilterEngine
from wfpsim.fwps_types import (
    FWP_VALUE0,
    FWPS_CALLOUT0,
    FWPS_INCOMING_METADATA_VALUES0,
    FWPS_INCOMING_VALUE0,
    FWPS_INCOMING_VALUES0,
)

CALLOUT_KEY = uuid.UUID("6f2b1f3e-0000-4000-8000-00000000c0de")
L = FWPS_LAYER_OUTBOUND_TRANSPORT_V4


def block_http(inFixedValues, inMetaValues, layerData, filter, flowContext, classifyOut):  # noqa: N803
    """A classifyFn: absorb HTTP (as a clone-reinject callout would), permit the rest."""
    if not classifyOut.rights & FWPS_RIGHT_ACTION_WRITE:
        return  # a higher-priority filter already decided (R1)
    port = inFixedValues.incomingValue[FWPS_FIELD_OUTBOUND_TRANSPORT_V4_IP_REMOTE_PORT].value
    if port.uint16 == 80:
        classifyOut.actionType = FWP_ACTION_BLOCK
        classifyOut.rights &= ~FWPS_RIGHT_ACTION_WRITE
        classifyOut.flags |= FWPS_CLASSIFY_OUT_FLAG_ABSORB
    else:
        classifyOut.actionType = FWP_ACTION_PERMIT


def packet_values(remote: str, port: int) -> FWPS_INCOMING_VALUES0:
    n = int(FWPS_FIELD_OUTBOUND_TRANSPORT_V4_MAX)
    values = FWPS_INCOMING_VALUES0(L, n, [FWPS_INCOMING_VALUE0(FWP_VALUE0()) for _ in range(n)])
    iv = values.incomingValue
    iv[FWPS_FIELD_OUTBOUND_TRANSPORT_V4_IP_PROTOCOL].value = FWP_VALUE0.u8(6)
    iv[FWPS_FIELD_OUTBOUND_TRANSPORT_V4_IP_REMOTE_ADDRESS].value = FWP_VALUE0.u32(
        int(ipaddress.IPv4Address(remote))
    )
    iv[FWPS_FIELD_OUTBOUND_TRANSPORT_V4_IP_REMOTE_PORT].value = FWP_VALUE0.u16(port)
    return values


def main() -> None:
    engine = FilterEngine("quickstart")

    # WDK face: register the callout as a driver would
    status, callout_id = wdk.FwpsCalloutRegister0(
        wdk.DEVICE_OBJECT(engine), FWPS_CALLOUT0(CALLOUT_KEY, 0, block_http)
    )
    print("FwpsCalloutRegister0 ->", status.name, "calloutId", callout_id)

    # Pythonic face: a sublayer below FWPM_SUBLAYER_UNIVERSAL and a filter on 10.0.0.0/8
    engine.add_sublayer("sample", 0x0100)
    engine.add_filter(
        L,
        FWP_ACTION_CALLOUT_TERMINATING,
        callout_key=CALLOUT_KEY,
        sublayer="sample",
        conditions=[
            (
                FWPS_FIELD_OUTBOUND_TRANSPORT_V4_IP_REMOTE_ADDRESS,
                ipaddress.IPv4Network("10.0.0.0/8"),
            ),
            (FWPS_FIELD_OUTBOUND_TRANSPORT_V4_IP_PROTOCOL, FWP_MATCH_EQUAL, 6),
        ],
    )
    meta = FWPS_INCOMING_METADATA_VALUES0()
    for remote, port in [("10.1.2.3", 80), ("10.1.2.3", 443), ("192.0.2.1", 80)]:
        out = engine.classify(L, packet_values(remote, port), meta, None)
        absorbed = bool(out.flags & FWPS_CLASSIFY_OUT_FLAG_ABSORB)
        print(f"{remote}:{port:<4} actionType=0x{out.actionType:04x} absorbed={absorbed}")

    # The stream layer: a callout that permits 4 bytes at a time
    def four_at_a_time(inFixedValues, inMetaValues, layerData, filter, flowContext, classifyOut):  # noqa: N803
        io = layerData
        print("  indicated", io.streamData.dataLength, "bytes")
        classifyOut.actionType = FWP_ACTION_PERMIT
        io.countBytesEnforced = 4

    engine.register_callout(four_at_a_time, key="stream")
    engine.add_filter(FWPS_LAYER_STREAM_V4, FWP_ACTION_CALLOUT_TERMINATING, callout_key="stream")
    nbl = NetBufferList.from_bytes(b"hello, stream")
    verdict = engine.stream_classify_nbl(
        FWPS_LAYER_STREAM_V4,
        None,
        None,
        0x1234,
        FWPS_STREAM_FLAG_RECEIVE,
        nbl,
        len(b"hello, stream"),
    )
    print("delivered", [o.data for o in verdict.outputs])
    nbl.free()
    engine.flow_end(0x1234)
    engine.close()


if __name__ == "__main__":
    main()
