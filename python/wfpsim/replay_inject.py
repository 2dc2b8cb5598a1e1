"""The `--inject FUNCTION` stage of replay: every packet of a batch goes through the chosen
inject function's checks and is completed, at native speed.

Each batch uses a real injection handle of a real `Stack` (validated per batch exactly as the
inject call validates it: handle open, TCP/IP ready, the handle's injection type), and the
per-packet work — the call's packet checks, the completion with its `Status` (MTU failures
included) and the injection-history tag that `FwpsQueryPacketInjectionState0` reads — runs in
Rust over the whole chain. This is the path for replays without callouts: with no filter
engine attached nothing classifies the packets, so nothing Python needs to see them. Deliveries
are counted in the summary rather than recorded one by one in `stack.delivered` (millions of
records would not fit); with callouts, inject through the stack API instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wfpsim import _core
from wfpsim.constants import (
    AF_INET,
    AF_INET6,
    AF_UNSPEC,
    FWPS_INJECTION_TYPE_FORWARD,
    FWPS_INJECTION_TYPE_L2,
    FWPS_INJECTION_TYPE_NETWORK,
)
from wfpsim.stack.injection import HistoryEntry, intern_history

# inject function → (native path, injection type, L2 handle)
FUNCTIONS = {
    "FwpsInjectNetworkSendAsync0": ("network-send", FWPS_INJECTION_TYPE_NETWORK, False),
    "FwpsInjectNetworkReceiveAsync0": ("network-receive", FWPS_INJECTION_TYPE_NETWORK, False),
    "FwpsInjectForwardAsync0": ("forward", FWPS_INJECTION_TYPE_FORWARD, False),
    "FwpsInjectMacSendAsync0": ("mac-send", FWPS_INJECTION_TYPE_L2, True),
    "FwpsInjectMacReceiveAsync0": ("mac-receive", FWPS_INJECTION_TYPE_L2, True),
}


def make_injector(
    function: str,
    *,
    stack: Any = None,
    completion: Callable[[dict[str, Any]], None] | None = None,
    mtu: int | None = None,
) -> Callable[[_core.Chain], dict[str, Any]]:
    """A replay stage injecting every NBL of a chain with `function` and completing it.

    `completion`, if given, is called once per batch with the batch's counts (a per-packet
    Python completion would cost microseconds a packet; use the stack API for that).
    """
    if function not in FUNCTIONS:
        known = ", ".join(FUNCTIONS)
        raise ValueError(f"unknown or unsupported inject function {function!r}; use one of {known}")
    path, type_bit, l2 = FUNCTIONS[function]
    if stack is None:
        from wfpsim.stack import Stack

        stack = Stack()
    if l2:
        handles = [stack.injection_handle(AF_UNSPEC, type_bit)] * 2
    else:
        handles = [
            stack.injection_handle(AF_INET, type_bit),
            stack.injection_handle(AF_INET6, type_bit),
        ]
    if mtu is None:
        mtu = min((i.mtu for i in stack.interfaces.values()), default=1500)
    tags = [intern_history(0, HistoryEntry(h.serial, None, "replay", function)) for h in handles]

    def inject(chain: _core.Chain) -> dict[str, Any]:
        for h in handles:  # the call's handle checks, once per batch
            stack.injector._begin(function, h, type_bit, l2=l2)
        counts = _core.inject_chain(chain, path, mtu, tags[0], tags[1])
        first = counts.pop("first_rejection")
        for h in handles[:1]:
            h.injections += counts["injected"]
        if completion is not None:
            completion(dict(counts))
        if first is not None:
            counts["first_rejection"] = f"packet {first[0]}: {first[1]}"
        return counts

    inject.stack = stack  # type: ignore[attr-defined]
    inject.handles = handles  # type: ignore[attr-defined]
    return inject


__all__ = ["make_injector", "FUNCTIONS"]
