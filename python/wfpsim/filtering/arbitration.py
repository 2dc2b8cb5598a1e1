"""Filter arbitration, exactly as `layers.md §7.5` restates the Win32 "Filter Arbitration" page.

The engine walks sublayers in weight order; inside one sublayer it evaluates the matching
filters in weight order until one returns PERMIT or BLOCK (CONTINUE moves on) — that filter's
:class:`Decision` is the sublayer's result and the rest of the sublayer is skipped. Every
sublayer is evaluated. :class:`Arbiter` combines the sublayer results in priority order while
tracking (current action, write right):

* no decision yet: the sublayer's decision is taken;
* the current decision is *soft* (the write right is still set): the later sublayer's decision
  replaces it — a BLOCK overrides a soft PERMIT, a PERMIT overrides a soft BLOCK (the doc's
  "soft block ... can be permitted in another sublayer");
* the current decision is *hard* (write right cleared): a hard BLOCK is final; a hard PERMIT
  can only be overridden by a callout **veto** (a BLOCK returned by a callout that was entered
  without the write right), which blocks.

Defaults (§7.5 rule 3): static PERMIT = soft, static BLOCK = hard, callout PERMIT / BLOCK = soft
unless the callout clears FWPS_RIGHT_ACTION_WRITE; FWPS_FILTER_FLAG_CLEAR_ACTION_RIGHT on a
static filter makes its PERMIT hard. For callouts the engine takes ``classifyOut->rights`` as the
callout left it (a callout that ignores CLEAR_ACTION_RIGHT is recorded as a diagnostic, not
corrected: its bug stays visible).

What one callout returns is normalised per filter action type (:func:`callout_decision`):
CALLOUT_TERMINATING returning anything but PERMIT/BLOCK is a BLOCK; CALLOUT_INSPECTION returning
anything but CONTINUE is a CONTINUE (an inspection callout can neither decide nor veto);
CALLOUT_UNKNOWN may return PERMIT, BLOCK or CONTINUE (anything else is CONTINUE).

How a callout's FWPS_CLASSIFY_OUT0 is initialised (:func:`initial_classify_out`) [emu]: with
the write right (no hard decision yet) ``rights = FWPS_RIGHT_ACTION_WRITE`` and ``actionType =
FWP_ACTION_CONTINUE``; without it ``rights = 0`` and ``actionType`` = the current hard action, so
a callout that "simply returns" when it lacks the right (every sample does) changes nothing.
A callout entered without the right that writes anything but a veto is ignored (B8) and noted;
so is ABSORB from such a callout, and ABSORB with PERMIT.

Unregistered callouts (§7.5): CALLOUT_TERMINATING / CALLOUT_UNKNOWN filters act as a static
BLOCK, or as a static PERMIT with FWPS_FILTER_FLAG_PERMIT_IF_CALLOUT_UNREGISTERED;
CALLOUT_INSPECTION filters are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

from wfpsim.constants import (
    FWP_ACTION_BLOCK,
    FWP_ACTION_CALLOUT_INSPECTION,
    FWP_ACTION_CALLOUT_TERMINATING,
    FWP_ACTION_CONTINUE,
    FWP_ACTION_NONE,
    FWP_ACTION_PERMIT,
    FWPS_CLASSIFY_OUT_FLAG_ABSORB,
    FWPS_FILTER_FLAG_CLEAR_ACTION_RIGHT,
    FWPS_FILTER_FLAG_PERMIT_IF_CALLOUT_UNREGISTERED,
    FWPS_RIGHT_ACTION_WRITE,
)
from wfpsim.fwps_types import FWPS_CLASSIFY_OUT0

TERMINAL = (FWP_ACTION_PERMIT, FWP_ACTION_BLOCK)


@dataclass
class Decision:
    """A terminal result of one filter (and so of its sublayer)."""

    action: int
    hard: bool
    filter_id: int
    absorb: bool = False
    veto: bool = False


@dataclass
class Arbiter:
    """The running (action, write right) of one classify across sublayers."""

    action: int | None = None
    hard: bool = False
    filter_id: int = 0
    absorb: bool = False
    veto: bool = False
    matched: bool = False

    @property
    def write_right(self) -> bool:
        return not self.hard

    def combine(self, d: Decision | None) -> None:
        """Folds one sublayer's result in (sublayers arrive in priority order)."""
        if d is None:
            return
        if self.action is None or not self.hard:
            self.action, self.hard, self.filter_id = d.action, d.hard, d.filter_id
            self.absorb = d.absorb and d.action == FWP_ACTION_BLOCK
            self.veto = d.veto
            return
        if self.action == FWP_ACTION_PERMIT and d.veto:
            self.action, self.hard, self.filter_id = FWP_ACTION_BLOCK, True, d.filter_id
            self.absorb, self.veto = False, True

    def result(self) -> FWPS_CLASSIFY_OUT0:
        """The final FWPS_CLASSIFY_OUT0: PERMIT / BLOCK, or CONTINUE (filters matched but none
        decided) / NONE (nothing matched) — both mean "the stack's default", i.e. permit."""
        if self.action is None:
            action = FWP_ACTION_CONTINUE if self.matched else FWP_ACTION_NONE
        else:
            action = self.action
        return FWPS_CLASSIFY_OUT0(
            actionType=action,
            filterId=self.filter_id,
            rights=0 if self.hard else FWPS_RIGHT_ACTION_WRITE,
            flags=FWPS_CLASSIFY_OUT_FLAG_ABSORB if self.absorb else 0,
        )


def initial_classify_out(arb: Arbiter) -> FWPS_CLASSIFY_OUT0:
    """The FWPS_CLASSIFY_OUT0 a callout receives, given the arbitration so far [emu]."""
    if arb.hard:
        return FWPS_CLASSIFY_OUT0(actionType=arb.action or FWP_ACTION_CONTINUE, rights=0)
    return FWPS_CLASSIFY_OUT0(actionType=FWP_ACTION_CONTINUE, rights=FWPS_RIGHT_ACTION_WRITE)


def static_decision(action: int, flags: int, filter_id: int) -> Decision:
    """A static PERMIT (soft unless CLEAR_ACTION_RIGHT) or BLOCK (always hard)."""
    if action == FWP_ACTION_BLOCK:
        return Decision(FWP_ACTION_BLOCK, True, filter_id)
    return Decision(FWP_ACTION_PERMIT, bool(flags & FWPS_FILTER_FLAG_CLEAR_ACTION_RIGHT), filter_id)


def unregistered_decision(filter_action: int, flags: int, filter_id: int) -> Decision | None:
    """A filter whose callout is not registered: BLOCK, PERMIT with PERMIT_IF_CALLOUT_UNREGISTERED,
    or None (skipped) for an inspection filter."""
    if filter_action == FWP_ACTION_CALLOUT_INSPECTION:
        return None
    if flags & FWPS_FILTER_FLAG_PERMIT_IF_CALLOUT_UNREGISTERED:
        return static_decision(FWP_ACTION_PERMIT, flags, filter_id)
    return static_decision(FWP_ACTION_BLOCK, flags, filter_id)


def callout_decision(
    filter_action: int,
    filter_flags: int,
    filter_id: int,
    entered_with_write: bool,
    current_action: int | None,
    out: FWPS_CLASSIFY_OUT0,
    notes: list[str],
) -> Decision | None:
    """Normalises what a callout left in `out`: a terminal Decision, or None (continue)."""
    returned = out.actionType
    absorb = bool(out.flags & FWPS_CLASSIFY_OUT_FLAG_ABSORB)
    if filter_action == FWP_ACTION_CALLOUT_INSPECTION:
        if returned != FWP_ACTION_CONTINUE and entered_with_write:
            notes.append(f"inspection callout returned 0x{returned:x}; treated as CONTINUE")
        return None
    if not entered_with_write:
        if absorb:
            notes.append("ABSORB set without FWPS_RIGHT_ACTION_WRITE; ignored (B8)")
        if returned == FWP_ACTION_BLOCK and current_action == FWP_ACTION_PERMIT:
            return Decision(FWP_ACTION_BLOCK, True, filter_id, absorb=False, veto=True)
        if returned in TERMINAL:
            if returned != current_action:
                notes.append(
                    f"callout wrote 0x{returned:x} without FWPS_RIGHT_ACTION_WRITE; ignored (B8)"
                )
            return Decision(returned, True, filter_id)
        notes.append(f"callout without write right returned 0x{returned:x}; ignored")
        return None
    hard = not (out.rights & FWPS_RIGHT_ACTION_WRITE)
    if returned in TERMINAL:
        if absorb and returned != FWP_ACTION_BLOCK:
            notes.append("ABSORB is valid with BLOCK only; ignored with PERMIT")
        if filter_flags & FWPS_FILTER_FLAG_CLEAR_ACTION_RIGHT and not hard:
            notes.append(
                "filter has FWPS_FILTER_FLAG_CLEAR_ACTION_RIGHT but the callout left the write "
                "right set"
            )
        return Decision(returned, hard, filter_id, absorb=absorb and returned == FWP_ACTION_BLOCK)
    if filter_action == FWP_ACTION_CALLOUT_TERMINATING:
        notes.append(f"terminating callout returned 0x{returned:x}; treated as BLOCK")
        return Decision(FWP_ACTION_BLOCK, hard, filter_id, absorb=absorb)
    return None


__all__ = [
    "Arbiter",
    "Decision",
    "callout_decision",
    "initial_classify_out",
    "static_decision",
    "unregistered_decision",
]
