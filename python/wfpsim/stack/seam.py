"""The seam between the simulated stack and the filter engine.

The stack (``wfpsim.stack``) moves packets along their paths; at every layer visit it asks the
filter engine (``wfpsim.filtering``, built separately) what to do. This module is the whole
contract between the two; neither side imports the other's internals.

Required: an object implementing :class:`FilterEngine` — ``classify`` and ``stream_classify``.
A new ``Stack()`` creates its own :class:`wfpsim.filtering.FilterEngine` (the default stack uses
``wfpsim.filtering.default_engine()``); ``Stack(filter_engine=...)`` or ``stack.filter_engine =
...`` attaches another implementation, e.g. :class:`PermitAllEngine` (no callouts at all).

Optional hooks the stack calls when the engine has them (looked up with ``getattr``):

* ``attach(stack)`` / ``detach(stack)`` — the engine was set on / removed from a stack (an engine
  may serve several stacks; it must then keep per-stack state).
* ``current_callout() -> str | None`` — a description of the callout whose classifyFn is running
  right now ("callout 7 'inspect' (filter 12) at FWPS_LAYER_OUTBOUND_TRANSPORT_V4"). The stack
  stores it with every injection made meanwhile and names it in :class:`wfpsim.InjectionLoopError`.
  Without it the stack names the code site that called the inject function.
* ``knows_callout(callout_id: int, layer_id: int) -> bool | None`` — FwpsStreamInjectAsync0
  checks ``calloutId``: False fails the call with STATUS_FWP_INVALID_PARAMETER, None = unknown
  (accepted).
* ``needs_classify(layer_id: int) -> bool`` — False when the engine has no filter at the layer:
  the stack then skips building the incoming values and metadata (a performance hook; the
  result must be the same as classifying with no filter: permit).
* (stack side, the engine may call them) ``stack.stream_deliver(flow_id, flags, data)`` — stream
  bytes released outside ``stream_classify`` (FwpsStreamContinue0); ``stack.stream_verdict(verdict)``
  — a verdict produced outside ``stream_classify`` (``verdict.deferred``: the direction is still
  deferred); ``stack.abort_flow(flow_id)`` — FwpsFlowAbort0 / DROP_CONNECTION outside classify.
* ``flow_deleted(flow_handle: int) -> None`` — a flow ended (TCP connection closed or dropped,
  endpoint of a datagram flow closed): the engine calls the flowDeleteFn of every callout that
  has a context on it (layers.md §8) and forgets the associations.

What the stack hands to ``classify`` (its half of the contract):

* ``layer_id`` — the run-time layer id (``FWPS_BUILTIN_LAYERS``, layers.md §1).
* ``inFixedValues`` — :class:`wfpsim.fwps_types.FWPS_INCOMING_VALUES0` with ``layerId``,
  ``valueCount == FWPS_FIELD_<LAYER>_MAX`` and one ``FWP_VALUE0`` per field index of layers.md
  §6.1 (IPv4 addresses ``FWP_UINT32`` host order, IPv6 ``FWP_BYTE_ARRAY16_TYPE``, ports
  ``FWP_UINT16`` host order, indexes/flags/direction ``FWP_UINT32``, LUIDs ``FWP_UINT64``, MAC
  addresses ``FWP_BYTE_ARRAY6_TYPE``; fields the simulator does not model are ``FWP_EMPTY``).
* ``inMetaValues`` — :class:`wfpsim.fwps_types.FWPS_INCOMING_METADATA_VALUES0` with the fields
  layers.md §5.3 lists for the layer and their presence bits in ``currentMetadataValues``
  (``currentL2MetadataValues`` at the MAC layers). ``completionHandle`` (ALE_AUTH_CONNECT /
  ALE_AUTH_RECV_ACCEPT) is an :class:`AleCompletionHandle`.
* ``layerData`` — the NET_BUFFER_LIST, its first NET_BUFFER's ``DataOffset`` where layers.md §3
  puts it for the layer; None at ALE_AUTH_CONNECT for TCP (no packet).
* ``flow_handle`` — the flow of the packet (``inMetaValues.flowHandle``) or 0.
* ``exclude_callout_id`` / ``below_sublayer_weight`` — see ``stream_classify``; the stack passes
  None for every packet classify.

The engine's half (``classify``):

* Runs the filters and callouts of the layer (arbitration per layers.md §7.5) and returns the
  final arbitrated ``FWPS_CLASSIFY_OUT0``: ``actionType`` ``FWP_ACTION_BLOCK`` drops the packet;
  ``FWP_ACTION_PERMIT``, ``FWP_ACTION_CONTINUE``, ``FWP_ACTION_NONE`` and
  ``FWP_ACTION_NONE_NO_MATCH`` let it go on. ``flags & FWPS_CLASSIFY_OUT_FLAG_ABSORB`` means a
  callout took the packet: the stack drops it silently (no discard) and does not touch it again;
  it frees / completes it once its ``ChildRefCount`` and reference count are back to 0 (the
  callout owns the clone, and the clone pins the original).
* Must leave every NET_BUFFER's ``DataOffset`` as it found it (the stack checks this after every
  classify and reports a contract violation, rule B5).
* May call any inject function from inside classify (inline injection); the injected packet is
  processed later by the dispatcher, never inside the inject call (except stream data, below).

``stream_classify`` (the stream layer, STREAM_V4/V6):

* ``segment`` — a :class:`StreamSegment`: the new bytes of one direction of a TCP flow, in stream
  order, with ``flags`` (``FWPS_STREAM_FLAG_RECEIVE`` or ``..._SEND`` always set;
  ``..._DISCONNECT`` on the FIN indication, which carries no data; ``..._PUSH``,
  ``..._EXPEDITED``). The bytes are a copy: the engine builds its own NBLs for
  ``FWPS_STREAM_DATA0`` / ``FWPS_STREAM_CALLOUT_IO_PACKET0`` and owns its stream buffers
  (NEED_MORE_DATA accumulation, DEFER, countBytesEnforced re-indications — the state machine
  of layers.md §9 lives in the engine).
* ``deliver(data: bytes, flags: int)`` — the engine calls it for every run of bytes that passed
  every stream callout, in stream order, as soon as they pass (zero or more times per call).
  ``flags`` carries the direction bit and ``..._DISCONNECT`` when the FIN is released. Bytes a
  callout injects with FwpsStreamInjectAsync0 *during* its classify are delivered by the stack
  at that moment — i.e. exactly between what was permitted before and after — through a nested
  ``stream_classify`` call (below). Bytes the engine releases outside any ``stream_classify``
  call (after FwpsStreamContinue0) go to ``stack.stream_deliver(flow_id, flags, data)``.
* Injected data: for FwpsStreamInjectAsync0 the stack calls ``stream_classify`` with
  ``segment.injected = True`` and ``exclude_callout_id = calloutId``: the engine must not show the
  data to that callout nor to any callout in a sublayer of equal or higher weight — only to
  lower-weight sublayers (layers.md §10). ``below_sublayer_weight``, when not None, is an
  explicit bound (only sublayers of smaller weight). Such calls can be nested inside another
  ``stream_classify`` of the same flow (inline injection); the engine must support that.
* Returns a :class:`StreamVerdict`: ``drop_connection`` (DROP_CONNECTION honoured: the stack closes
  the flow), ``deferred`` (the inbound direction is deferred until FwpsStreamContinue0; stream
  injections into it from outside classify are then legal).

Time: the engine may read ``stack.now`` (ns) but must not sleep; asynchronous work goes through
``stack.queue_dpc(fn)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from wfpsim.constants import FWP_ACTION_PERMIT, FWPS_RIGHT_ACTION_WRITE
from wfpsim.fwps_types import (
    FWPS_CLASSIFY_OUT0,
    FWPS_INCOMING_METADATA_VALUES0,
    FWPS_INCOMING_VALUES0,
)

if TYPE_CHECKING:
    from wfpsim.stack.stack import Stack


@dataclass
class StreamSegment:
    """New bytes of one direction of a TCP flow, handed to ``stream_classify``."""

    flow_id: int
    flags: int  # FWPS_STREAM_FLAG_*: RECEIVE or SEND always set
    data: bytes
    injected: bool = False  # came from FwpsStreamInjectAsync0
    callout_id: int | None = None  # the injecting callout (injected data only)


@dataclass
class StreamVerdict:
    """What the stream layer decided beyond the bytes it delivered."""

    drop_connection: bool = False
    deferred: bool = False
    allow_connection: bool = False  # informational: the flow needs no more stream classifies


StreamDeliver = Callable[[bytes, int], None]


@runtime_checkable
class FilterEngine(Protocol):
    """What the stack calls at every layer visit. See the module docstring for the contract."""

    def classify(
        self,
        layer_id: int,
        inFixedValues: FWPS_INCOMING_VALUES0,  # noqa: N803 - WDK names
        inMetaValues: FWPS_INCOMING_METADATA_VALUES0,  # noqa: N803
        layerData: Any,  # noqa: N803
        *,
        flow_handle: int = 0,
        exclude_callout_id: int | None = None,
        below_sublayer_weight: int | None = None,
    ) -> FWPS_CLASSIFY_OUT0: ...

    def stream_classify(
        self,
        layer_id: int,
        inFixedValues: FWPS_INCOMING_VALUES0,  # noqa: N803
        inMetaValues: FWPS_INCOMING_METADATA_VALUES0,  # noqa: N803
        segment: StreamSegment,
        *,
        flow_handle: int,
        deliver: StreamDeliver,
        exclude_callout_id: int | None = None,
        below_sublayer_weight: int | None = None,
    ) -> StreamVerdict: ...


class PermitAllEngine:
    """The default engine: no filters, no callouts; every packet is permitted and every stream
    byte delivered as indicated."""

    def classify(
        self,
        layer_id: int,
        inFixedValues: FWPS_INCOMING_VALUES0,  # noqa: N803
        inMetaValues: FWPS_INCOMING_METADATA_VALUES0,  # noqa: N803
        layerData: Any,  # noqa: N803
        *,
        flow_handle: int = 0,
        exclude_callout_id: int | None = None,
        below_sublayer_weight: int | None = None,
    ) -> FWPS_CLASSIFY_OUT0:
        return FWPS_CLASSIFY_OUT0(actionType=FWP_ACTION_PERMIT, rights=FWPS_RIGHT_ACTION_WRITE)

    def stream_classify(
        self,
        layer_id: int,
        inFixedValues: FWPS_INCOMING_VALUES0,  # noqa: N803
        inMetaValues: FWPS_INCOMING_METADATA_VALUES0,  # noqa: N803
        segment: StreamSegment,
        *,
        flow_handle: int,
        deliver: StreamDeliver,
        exclude_callout_id: int | None = None,
        below_sublayer_weight: int | None = None,
    ) -> StreamVerdict:
        deliver(segment.data, segment.flags)
        return StreamVerdict()


class AleCompletionHandle:
    """``inMetaValues.completionHandle`` at ALE_AUTH_CONNECT / ALE_AUTH_RECV_ACCEPT.

    The engine's FwpsPendOperation0 keeps it (and returns its own completionContext); its
    FwpsCompleteOperation0(completionContext, netBufferList) calls :meth:`complete` once. The
    stack then does what Windows does (layers.md §7.6):

    * ALE_AUTH_CONNECT: a re-authorisation classify at the same layer, with
      ``FWP_CONDITION_FLAG_IS_REAUTHORIZE`` in FLAGS and ``packetDirection`` present; its verdict
      authorises the flow (held packets are flushed on) or refuses it (they are dropped).
    * ALE_AUTH_RECV_ACCEPT: no re-authorisation. With a ``netBufferList`` (the clone the callout
      is about to receive-inject) the flow stays pending until that clone passes
      ALE_AUTH_RECV_ACCEPT; with None the connection is refused.
    """

    def __init__(self, stack: Stack, layer_id: int, on_complete: Callable[[Any], None]) -> None:
        self.stack = stack
        self.layer_id = layer_id
        self._on_complete = on_complete
        self.completed = False
        self.pended = False

    def pend(self) -> None:
        """The engine's FwpsPendOperation0 calls this: the classify is pended, so an ABSORB
        verdict leaves the flow waiting for :meth:`complete`."""
        self.pended = True

    def complete(self, netBufferList: Any = None) -> None:  # noqa: N803
        from wfpsim.errors import ContractViolation

        if self.completed:
            raise ContractViolation(
                "FwpsCompleteOperation0: this pended ALE operation was already completed"
            )
        self.completed = True
        self._on_complete(netBufferList)

    def __repr__(self) -> str:
        state = "completed" if self.completed else "pending"
        return f"<AleCompletionHandle layer={self.layer_id} {state}>"


__all__ = [
    "FilterEngine",
    "PermitAllEngine",
    "StreamSegment",
    "StreamVerdict",
    "StreamDeliver",
    "AleCompletionHandle",
]
