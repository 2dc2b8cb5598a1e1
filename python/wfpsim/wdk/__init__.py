"""The WDK face of wfpsim: every function, macro, structure, constant and status code under its
exact WDK name, for porting callout-driver code line by line.

Conventions: NULL is None; positional parameters in WDK order, keyword names equal to the WDK
parameter names; a function with pointer out-parameters returns ``(return_value, out1, ...)``;
status codes are `NTSTATUS` members with their real unsigned values.
"""

from __future__ import annotations

from wfpsim.constants import *  # noqa: F403
from wfpsim.status import *  # noqa: F403
from wfpsim.status import NT_SUCCESS, NTSTATUS
from wfpsim.wdk.fwps_callouts import *  # noqa: F403
from wfpsim.wdk.fwps_inject import *  # noqa: F403
from wfpsim.wdk.fwps_nbl import *  # noqa: F403
from wfpsim.wdk.ndis import *  # noqa: F403

# Every status code at module level: wdk.STATUS_FWP_INJECT_HANDLE_CLOSING is the enum member.
globals().update(NTSTATUS.__members__)

__all__ = [n for n in dir() if not n.startswith("_")]
_ = NT_SUCCESS
