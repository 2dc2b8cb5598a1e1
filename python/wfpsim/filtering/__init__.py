"""The filter engine of the simulated WFP: callouts, filters, arbitration, flow contexts,
pending and the stream layer (issue #5). Module map:

* :mod:`.callouts` — the run-time callout registry (FwpsCalloutRegister0/1/2)
* :mod:`.conditions` — FWP_MATCH_* over FWP_VALUE0 / FWP_CONDITION_VALUE0
* :mod:`.filters` — sublayers, filters, weights, per-layer evaluation plans
* :mod:`.arbitration` — `layers.md §7.5`
* :mod:`.engine` — :class:`FilterEngine` (classify, the seam the stack calls)
* :mod:`.flows` — flow contexts and flowDeleteFn
* :mod:`.pending` — FwpsPendOperation0 / FwpsCompleteOperation0
* :mod:`.stream` — the stream layer (stream_classify, stream data clone / copy)

The WDK names are in :mod:`wfpsim.wdk.fwps_callouts`.
"""

from __future__ import annotations

from wfpsim.filtering.engine import (
    ClassifyContext,
    ClassifyRecord,
    FilterEngine,
    current_engine,
    default_engine,
)
from wfpsim.filtering.filters import FWPM_SUBLAYER_UNIVERSAL, UNIVERSAL_SUBLAYER_WEIGHT
from wfpsim.filtering.pending import CompletionHandle, PendedOperation
from wfpsim.filtering.stream import StreamOutput, StreamVerdict

__all__ = [
    "ClassifyContext",
    "ClassifyRecord",
    "CompletionHandle",
    "FWPM_SUBLAYER_UNIVERSAL",
    "FilterEngine",
    "PendedOperation",
    "StreamOutput",
    "StreamVerdict",
    "UNIVERSAL_SUBLAYER_WEIGHT",
    "current_engine",
    "default_engine",
]
