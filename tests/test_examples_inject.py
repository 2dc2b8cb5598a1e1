"""The README's inject-and-complete example runs and does what it says."""

from __future__ import annotations

import runpy
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "inject_and_complete.py"


def test_inject_and_complete_example(no_leaks):
    log = runpy.run_path(str(EXAMPLE))["main"]()
    assert log == [
        "state FWPS_PACKET_INJECTED_BY_SELF",
        "completed wdk: Status=0x00000000 dispatchLevel=True",
        "run() ran 1 work item(s)",
        "FwpsInjectNetworkSendAsync0 -> wire on interface 1",
        "completed pythonic: Status=0x00000000 dispatchLevel=True",
    ]
