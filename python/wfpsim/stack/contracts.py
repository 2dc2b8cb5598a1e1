"""Driver-Verifier-style contract checks on callout drivers.

A :class:`Contracts` object per stack (``stack.contracts``) decides what happens to a violation:

* ``mode = "raise"`` (default) — raise :class:`wfpsim.ContractViolation` where it is detected
  (inside the offending call; or, when found by the dispatcher, from ``stack.run()``);
* ``mode = "record"`` — append it to :attr:`Contracts.violations` and go on;
* ``mode = "off"`` — ignore.

Checks (rule ids from samples.md §0/§7 and injection.md §3):

* ``free-in-flight`` — freeing an NBL between a successful inject call and its completion
  (injection.md §3.3). Detected at the free (the stack guards injected NBLs) and, as a fallback,
  when the dispatcher finds the NBL dead.
* ``modified-in-flight`` — the injected NBL's geometry or bytes changed between the inject call and
  the completion (injection.md §3.3), checked when the stack picks it up and at completion.
* ``tcp-inline`` (R10/B9) — FwpsInjectTransportSendAsync*/ReceiveAsync0 of a TCP packet issued
  from inside a transport, ALE or stream-packet classifyFn instead of a DPC/worker
  (injection.md §3.13).
* ``reserved-flags`` (§3.5) — non-zero reserved ``flags``/``reserved`` parameters. The call also
  fails with STATUS_FWP_INVALID_PARAMETER, so this one is always *recorded*, never raised.
* ``offset-not-restored`` (B5) — a classifyFn returned with the indicated NBL's DataOffset
  changed (the stack puts it back).
* ``injected-twice`` — an NBL injected again while its previous injection is in flight.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wfpsim.errors import ContractViolation

MODES = ("raise", "record", "off")


@dataclass
class Violation:
    rule: str
    message: str
    time_ns: int = 0

    def __str__(self) -> str:
        return f"[{self.rule}] {self.message}"


class Contracts:
    """The contract checker of one stack."""

    def __init__(self, mode: str = "raise") -> None:
        self.mode = mode
        self.violations: list[Violation] = []
        self.clock = lambda: 0

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        if value not in MODES:
            raise ValueError(f"contract mode must be one of {MODES}, not {value!r}")
        self._mode = value

    @property
    def enabled(self) -> bool:
        return self._mode != "off"

    def violation(self, rule: str, message: str, *, record_only: bool = False) -> None:
        """Reports a violation per the mode. ``record_only`` never raises (the caller already
        fails the call with a status)."""
        if self._mode == "off":
            return
        v = Violation(rule, message, self.clock())
        self.violations.append(v)
        if self._mode == "raise" and not record_only:
            err = ContractViolation(f"contract violation [{rule}]: {message}")
            err.rule = rule
            raise err

    def clear(self) -> None:
        self.violations.clear()


def snapshot(nbl: Any) -> tuple:
    """The NBL as the driver handed it over: NB geometry and used bytes (one NBL, not a chain)."""
    return tuple((nb.DataOffset, nb.DataLength, nb.tobytes()) for nb in nbl.net_buffers) + (
        (nbl.Next is None),
    )


def describe_change(before: tuple, after: tuple) -> str:
    if len(before) != len(after):
        return f"it had {len(before) - 1} NET_BUFFER(s), now {len(after) - 1}"
    if before[-1] != after[-1]:
        return "its Next link changed"
    for i, (b, a) in enumerate(zip(before[:-1], after[:-1], strict=True)):
        if b[0] != a[0] or b[1] != a[1]:
            return f"NET_BUFFER {i} DataOffset/DataLength went from {b[:2]} to {a[:2]}"
        if b[2] != a[2]:
            first = next(j for j, (x, y) in enumerate(zip(b[2], a[2], strict=True)) if x != y)
            return f"NET_BUFFER {i} data changed at byte {first}"
    return "unchanged"


__all__ = ["Contracts", "Violation", "snapshot", "describe_change", "MODES"]
