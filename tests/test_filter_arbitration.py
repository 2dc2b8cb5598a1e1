# ruff: noqa: F403, F405  (WDK constants are imported by name, as driver code does)
"""Filter arbitration, rule by rule (`layers.md §7.5`, Win32 "Filter Arbitration").

Every test builds its own engine with callouts scripted to return one action, and checks the
final FWPS_CLASSIFY_OUT0 plus who was called with which rights."""

from __future__ import annotations

import itertools

import pytest
from filterkit import Callout, block, cont, meta, permit, values

from wfpsim.constants import *  # noqa: F403
from wfpsim.errors import WfpError
from wfpsim.filtering import FWPM_SUBLAYER_UNIVERSAL, UNIVERSAL_SUBLAYER_WEIGHT, FilterEngine
from wfpsim.fwps_types import FWP_VALUE0
from wfpsim.status import NTSTATUS

L = FWPS_LAYER_OUTBOUND_TRANSPORT_V4
W = FWPS_RIGHT_ACTION_WRITE
P, B, C, N = FWP_ACTION_PERMIT, FWP_ACTION_BLOCK, FWP_ACTION_CONTINUE, FWP_ACTION_NONE

_keys = itertools.count(1)


def callout_filter(
    e,
    fn,
    *,
    sublayer=None,
    action=FWP_ACTION_CALLOUT_TERMINATING,
    weight=None,
    flags=0,
    register=True,
    **kw,
):
    key = f"callout-{next(_keys)}"
    if register:
        e.register_callout(fn, key=key)
    return e.add_filter(
        L, action, callout_key=key, sublayer=sublayer, weight=weight, flags=flags, **kw
    )


def run(e, **kw):
    return e.classify(L, values(L), meta(), None, **kw)


def two_sublayers():
    e = FilterEngine()
    e.add_sublayer("high", 0x200)
    e.add_sublayer("low", 0x100)
    return e


# ------------------------------------------------------------------------------------------------
# Rule 3: combining sublayer results — the full table
# ------------------------------------------------------------------------------------------------

FIRST = {
    "--": None,
    "cp": ("callout", P, False),
    "cP": ("callout", P, True),
    "cb": ("callout", B, False),
    "cB": ("callout", B, True),
    "sp": ("static", P, False),
    "sP": ("static", P, True),  # FWPS_FILTER_FLAG_CLEAR_ACTION_RIGHT: hard static permit
    "sb": ("static", B, False),  # a static block is always hard
}
SECOND = {
    "cp": ("callout", P, False),
    "cP": ("callout", P, True),
    "cb": ("callout", B, False),
    "cB": ("callout", B, True),
    "cc": ("callout", C, False),
    "sp": ("static", P, False),
    "sb": ("static", B, False),
}
# expected (actionType, rights) after both sublayers; "S1" = whatever the first gave alone
ALONE = {
    "cp": (P, W),
    "cP": (P, 0),
    "cb": (B, W),
    "cB": (B, 0),
    "cc": (C, W),
    "sp": (P, W),
    "sb": (B, 0),
    "sP": (P, 0),
}
HARD_PERMIT_ROW = {
    "cp": (P, 0),
    "cP": (P, 0),
    "cb": (B, 0),
    "cB": (B, 0),
    "cc": (P, 0),
    "sp": (P, 0),
    "sb": (P, 0),
}
TABLE = {}
for f, s in itertools.product(FIRST, SECOND):
    if f == "--":
        TABLE[(f, s)] = ALONE[s]
    elif f in ("cp", "cb", "sp"):  # soft: the later sublayer's decision replaces it
        TABLE[(f, s)] = ALONE[f] if s == "cc" else ALONE[s]
    elif f in ("cP", "sP"):  # hard permit: only a callout veto (block) overrides
        TABLE[(f, s)] = HARD_PERMIT_ROW[s]
    else:  # hard block is final
        TABLE[(f, s)] = (B, 0)


def _add(e, spec, sublayer):
    kind, action, hard = spec
    if kind == "static":
        flags = FWPS_FILTER_FLAG_CLEAR_ACTION_RIGHT if hard else 0
        return e.add_filter(L, action, sublayer=sublayer, flags=flags), None
    fn = Callout(action, clear=hard)
    act = FWP_ACTION_CALLOUT_UNKNOWN if action == C else FWP_ACTION_CALLOUT_TERMINATING
    return callout_filter(e, fn, sublayer=sublayer, action=act), fn


@pytest.mark.parametrize("first,second", sorted(TABLE))
def test_combination_table(first, second):
    e = two_sublayers()
    if FIRST[first] is not None:
        fid1, _ = _add(e, FIRST[first], "high")
    fid2, fn2 = _add(e, SECOND[second], "low")
    out = run(e)
    assert (out.actionType, out.rights) == TABLE[(first, second)]
    if fn2 is not None:
        # the lower callout always runs (rule 2), with the write right only if S1 was soft
        (call,) = fn2.calls
        hard_first = first in ("cP", "cB", "sP", "sb")
        assert call.entry_rights == (0 if hard_first else W)
        if hard_first:
            assert call.entry_action == FIRST[first][1]
    vetoed = first in ("cP", "sP") and second in ("cb", "cB")
    if vetoed:
        assert out.filterId == fid2


def test_veto_is_recorded_in_the_trace():
    e = two_sublayers()
    callout_filter(e, permit(clear=True), sublayer="high")
    fid = callout_filter(e, block(), sublayer="low")
    out = run(e)
    assert (out.actionType, out.rights, out.filterId) == (B, 0, fid)
    assert e.trace[-1].decision == "veto-block"


def test_static_block_cannot_veto_a_hard_permit_but_a_callout_can():
    e = two_sublayers()
    e.add_filter(L, P, sublayer="high", flags=FWPS_FILTER_FLAG_CLEAR_ACTION_RIGHT)
    e.add_filter(L, B, sublayer="low")
    assert run(e).actionType == P
    callout_filter(e, block(), sublayer="low", weight=1 << 62)
    assert run(e).actionType == B


# ------------------------------------------------------------------------------------------------
# Rule 1: inside a sublayer
# ------------------------------------------------------------------------------------------------


def test_first_terminal_filter_of_a_sublayer_wins_and_the_rest_are_skipped():
    e = FilterEngine()
    a, b, c = cont(), block(), permit()
    callout_filter(e, a, action=FWP_ACTION_CALLOUT_UNKNOWN, weight=30)
    fb = callout_filter(e, b, weight=20)
    callout_filter(e, c, weight=10)
    out = run(e)
    assert (out.actionType, out.filterId) == (B, fb)
    assert len(a.calls) == 1 and len(b.calls) == 1 and c.calls == []


def test_continue_falls_through_to_the_next_filter_of_the_sublayer():
    e = FilterEngine()
    a, b = cont(), permit()
    callout_filter(e, a, action=FWP_ACTION_CALLOUT_UNKNOWN, weight=2)
    fb = callout_filter(e, b, weight=1)
    out = run(e)
    assert (out.actionType, out.filterId) == (P, fb)
    assert len(a.calls) == len(b.calls) == 1


def test_static_filter_ends_its_sublayer():
    e = FilterEngine()
    lower = permit()
    fid = e.add_filter(L, B, weight=5)
    callout_filter(e, lower, weight=1)
    out = run(e)
    assert (out.actionType, out.filterId, out.rights) == (B, fid, 0)
    assert lower.calls == []


def test_filters_that_do_not_match_are_not_evaluated():
    e = FilterEngine()
    f = block()
    callout_filter(
        e, f, conditions=[(FWPS_FIELD_OUTBOUND_TRANSPORT_V4_IP_REMOTE_PORT, FWP_MATCH_EQUAL, 80)]
    )
    assert run(e).actionType == N
    assert f.calls == []
    v = values(L, IP_REMOTE_PORT=FWP_VALUE0.u16(80))
    assert e.classify(L, v, meta(), None).actionType == B


# ------------------------------------------------------------------------------------------------
# Rule 2: every sublayer is evaluated
# ------------------------------------------------------------------------------------------------


def test_every_sublayer_is_evaluated_after_a_hard_block():
    e = FilterEngine()
    subs = [e.add_sublayer(f"s{w}", w) for w in (0x300, 0x200, 0x100)]
    first = block(clear=True, absorb=True)
    seen = [Callout(None), Callout(None)]
    callout_filter(e, first, sublayer=subs[0])
    callout_filter(e, seen[0], sublayer=subs[1])
    callout_filter(e, seen[1], sublayer=subs[2])
    out = run(e)
    assert (out.actionType, out.rights, out.flags) == (B, 0, FWPS_CLASSIFY_OUT_FLAG_ABSORB)
    for fn in seen:
        (call,) = fn.calls
        assert (call.entry_rights, call.entry_action) == (0, B)


def test_sublayers_run_in_weight_order_and_universal_sits_at_0x8000():
    e = FilterEngine()
    order = []

    def tag(name):
        def fn(v, m, d, flt, ctx, out):
            order.append(name)
            out.actionType = C

        return fn

    e.add_sublayer("low", 0x0001)
    e.add_sublayer("high", 0x9000)
    e.add_sublayer("mid-a", 0x4000)
    e.add_sublayer("mid-b", 0x4000)  # equal weight: creation order [emu]
    for name in ("low", "mid-b", "mid-a", "high"):
        callout_filter(e, tag(name), sublayer=name, action=FWP_ACTION_CALLOUT_UNKNOWN)
    callout_filter(e, tag("universal"), action=FWP_ACTION_CALLOUT_UNKNOWN)
    assert run(e).actionType == C
    assert order == ["high", "universal", "mid-a", "mid-b", "low"]
    assert e.sublayer(None).key == FWPM_SUBLAYER_UNIVERSAL
    assert e.sublayer(None).weight == UNIVERSAL_SUBLAYER_WEIGHT == 0x8000


# ------------------------------------------------------------------------------------------------
# Callout action types
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("returned", [C, N, FWP_ACTION_NONE_NO_MATCH, 0])
def test_terminating_callout_returning_non_terminal_is_a_block(returned):
    e = FilterEngine()
    lower = permit()
    fid = callout_filter(e, Callout(returned), weight=2)
    callout_filter(e, lower, weight=1)
    out = run(e)
    assert (out.actionType, out.filterId) == (B, fid)
    assert lower.calls == []
    assert "treated as BLOCK" in e.trace[-1].notes[0]


@pytest.mark.parametrize("returned", [P, B, N])
def test_inspection_callout_returning_anything_is_a_continue(returned):
    e = FilterEngine()
    lower = Callout(None)
    callout_filter(e, Callout(returned, clear=True), action=FWP_ACTION_CALLOUT_INSPECTION, weight=2)
    callout_filter(e, lower, action=FWP_ACTION_CALLOUT_UNKNOWN, weight=1)
    out = run(e)
    assert (out.actionType, out.rights) == (C, W)
    assert len(lower.calls) == 1 and lower.calls[0].entry_rights == W


def test_inspection_callout_cannot_veto():
    e = two_sublayers()
    callout_filter(e, permit(clear=True), sublayer="high")
    callout_filter(e, block(), sublayer="low", action=FWP_ACTION_CALLOUT_INSPECTION)
    assert (run(e).actionType, run(e).rights) == (P, 0)


@pytest.mark.parametrize("returned,expected", [(P, P), (B, B), (C, C), (N, C)])
def test_unknown_callout_may_permit_block_or_continue(returned, expected):
    e = FilterEngine()
    callout_filter(e, Callout(returned), action=FWP_ACTION_CALLOUT_UNKNOWN)
    assert run(e).actionType == expected


# ------------------------------------------------------------------------------------------------
# Write right, entry state, absorb
# ------------------------------------------------------------------------------------------------


def test_classify_out_as_a_callout_receives_it():
    e = two_sublayers()
    first, second = Callout(None), Callout(None)
    callout_filter(e, first, sublayer="high", action=FWP_ACTION_CALLOUT_UNKNOWN)
    callout_filter(e, second, sublayer="low", action=FWP_ACTION_CALLOUT_UNKNOWN)
    run(e)
    assert (first.calls[0].entry_rights, first.calls[0].entry_action) == (W, C)
    assert (second.calls[0].entry_rights, second.calls[0].entry_action) == (W, C)


def test_callout_block_is_soft_unless_it_clears_the_right():
    e = two_sublayers()
    callout_filter(e, block(), sublayer="high")
    callout_filter(e, permit(), sublayer="low")
    assert run(e).actionType == P
    e = two_sublayers()
    callout_filter(e, block(clear=True), sublayer="high")
    callout_filter(e, permit(), sublayer="low")
    assert run(e).actionType == B


def test_acting_without_the_write_right_is_ignored_and_noted():
    e = two_sublayers()
    callout_filter(e, block(clear=True), sublayer="high")
    callout_filter(e, Callout(P, absorb=True), sublayer="low")
    out = run(e)
    assert (out.actionType, out.flags) == (B, 0)
    notes = " ".join(e.trace[-1].notes)
    assert "without FWPS_RIGHT_ACTION_WRITE" in notes and "B8" in notes


def test_well_behaved_callout_without_right_changes_nothing():
    e = two_sublayers()
    callout_filter(e, permit(clear=True), sublayer="high")
    polite = Callout(B, clear=True, absorb=True, honour_right=True)
    callout_filter(e, polite, sublayer="low")
    out = run(e)
    assert (out.actionType, out.rights, out.flags) == (P, 0, 0)
    assert e.trace[-1].notes == []


def test_absorb_goes_with_the_deciding_block_only():
    e = FilterEngine()
    callout_filter(e, block(clear=True, absorb=True))
    out = run(e)
    assert out.flags == FWPS_CLASSIFY_OUT_FLAG_ABSORB
    # a soft absorbing block overridden by a later permit is not absorbed
    e = two_sublayers()
    callout_filter(e, block(absorb=True), sublayer="high")
    callout_filter(e, permit(), sublayer="low")
    out = run(e)
    assert (out.actionType, out.flags) == (P, 0)
    # ABSORB with PERMIT is ignored (valid with BLOCK only)
    e = FilterEngine()
    callout_filter(e, Callout(P, absorb=True))
    out = run(e)
    assert (out.actionType, out.flags) == (P, 0)
    assert "ABSORB" in e.trace[-1].notes[0]


def test_veto_does_not_absorb():
    e = two_sublayers()
    callout_filter(e, permit(clear=True), sublayer="high")
    callout_filter(e, block(clear=True, absorb=True), sublayer="low")
    out = run(e)
    assert (out.actionType, out.flags) == (B, 0)


def test_clear_action_right_flag_ignored_by_callout_is_noted_not_corrected():
    e = two_sublayers()
    callout_filter(e, permit(), sublayer="high", flags=FWPS_FILTER_FLAG_CLEAR_ACTION_RIGHT)
    callout_filter(e, block(), sublayer="low")
    assert run(e).actionType == B
    assert any("CLEAR_ACTION_RIGHT" in n for r in e.trace for n in r.notes)


def test_callout_sees_its_filter_flags():
    e = FilterEngine()
    flags = FWPS_FILTER_FLAG_CLEAR_ACTION_RIGHT | FWPS_FILTER_FLAG_PERMIT_IF_CALLOUT_UNREGISTERED
    seen = []
    fn2 = lambda v, m, d, flt, c, o: seen.append(flt.flags)  # noqa: E731
    callout_filter(e, fn2, flags=flags)
    run(e)
    assert seen == [flags]


# ------------------------------------------------------------------------------------------------
# Unregistered callouts
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("action", [FWP_ACTION_CALLOUT_TERMINATING, FWP_ACTION_CALLOUT_UNKNOWN])
def test_unregistered_callout_filter_blocks_hard(action):
    e = two_sublayers()
    fid = callout_filter(e, None, sublayer="high", action=action, register=False)
    lower = permit()
    callout_filter(e, lower, sublayer="low")
    out = run(e)
    assert (out.actionType, out.rights, out.filterId) == (B, 0, fid)
    assert lower.calls[0].entry_rights == 0


def test_unregistered_inspection_filter_is_skipped():
    e = FilterEngine()
    callout_filter(e, None, action=FWP_ACTION_CALLOUT_INSPECTION, register=False)
    assert run(e).actionType == N
    fid = e.add_filter(L, P, weight=0)
    assert run(e).filterId == fid


def test_permit_if_callout_unregistered():
    e = two_sublayers()
    callout_filter(
        e,
        None,
        sublayer="high",
        register=False,
        flags=FWPS_FILTER_FLAG_PERMIT_IF_CALLOUT_UNREGISTERED,
    )
    assert (run(e).actionType, run(e).rights) == (P, W)  # a soft permit, like a static one
    e.add_filter(L, B, sublayer="low")
    assert run(e).actionType == B


def test_filter_follows_its_callout_registration():
    e = FilterEngine()
    fn = permit()
    e.add_filter(L, FWP_ACTION_CALLOUT_TERMINATING, callout_key="late")
    assert run(e).actionType == B  # not registered yet
    cid = e.register_callout(fn, key="late")
    assert run(e).actionType == P and e.filters()[0].fwps.action.calloutId == cid
    e.unregister_callout(cid)
    assert run(e).actionType == B and e.filters()[0].fwps.action.calloutId == 0


# ------------------------------------------------------------------------------------------------
# Weights
# ------------------------------------------------------------------------------------------------


def _order(e, *, v=None):
    e.trace.clear()
    e.classify(
        L,
        v or values(L, IP_PROTOCOL=FWP_VALUE0.u8(6), IP_REMOTE_PORT=FWP_VALUE0.u16(80)),
        meta(),
        None,
    )
    order = [r.filter_id for r in e.trace]
    return order


def _tagger():
    def fn(v, m, d, flt, ctx, out):
        out.actionType = C

    return fn


def test_explicit_uint64_weights_order_filters():
    e = FilterEngine()
    ids = [
        callout_filter(e, _tagger(), action=FWP_ACTION_CALLOUT_UNKNOWN, weight=w)
        for w in (5, 1 << 63, 7)
    ]
    assert _order(e) == [ids[1], ids[2], ids[0]]
    assert e.filter(ids[1]).weight == 1 << 63
    assert e.filter(ids[1]).fwps.weight == FWP_VALUE0(FWP_UINT64, 1 << 63)


def test_empty_weight_is_automatic_by_specificity_below_2_pow_60():
    e = FilterEngine()
    f0 = callout_filter(e, _tagger(), action=FWP_ACTION_CALLOUT_UNKNOWN)
    f2 = callout_filter(
        e,
        _tagger(),
        action=FWP_ACTION_CALLOUT_UNKNOWN,
        conditions=[
            (FWPS_FIELD_OUTBOUND_TRANSPORT_V4_IP_PROTOCOL, FWP_MATCH_EQUAL, 6),
            (FWPS_FIELD_OUTBOUND_TRANSPORT_V4_IP_REMOTE_PORT, FWP_MATCH_EQUAL, 80),
        ],
    )
    f1 = callout_filter(
        e,
        _tagger(),
        action=FWP_ACTION_CALLOUT_UNKNOWN,
        conditions=[(FWPS_FIELD_OUTBOUND_TRANSPORT_V4_IP_PROTOCOL, FWP_MATCH_EQUAL, 6)],
    )
    assert _order(e) == [f2, f1, f0]
    assert all(e.filter(f).weight < 1 << 60 for f in (f0, f1, f2))


def test_uint8_weight_goes_in_the_top_four_bits():
    e = FilterEngine()
    auto = callout_filter(
        e,
        _tagger(),
        action=FWP_ACTION_CALLOUT_UNKNOWN,
        conditions=[(FWPS_FIELD_OUTBOUND_TRANSPORT_V4_IP_PROTOCOL, FWP_MATCH_EQUAL, 6)],
    )
    w1 = callout_filter(e, _tagger(), action=FWP_ACTION_CALLOUT_UNKNOWN, weight=FWP_VALUE0.u8(1))
    w15 = callout_filter(e, _tagger(), action=FWP_ACTION_CALLOUT_UNKNOWN, weight=FWP_VALUE0.u8(15))
    w0 = callout_filter(e, _tagger(), action=FWP_ACTION_CALLOUT_UNKNOWN, weight=FWP_VALUE0.u8(0))
    assert _order(e) == [w15, w1, auto, w0]
    assert e.filter(w15).weight >> 60 == 15 and e.filter(w1).weight >> 60 == 1


def test_equal_weights_run_in_filter_id_order():
    e = FilterEngine()
    ids = [
        callout_filter(e, _tagger(), action=FWP_ACTION_CALLOUT_UNKNOWN, weight=9) for _ in range(4)
    ]
    assert _order(e) == ids


@pytest.mark.parametrize(
    "weight",
    [
        FWP_VALUE0.u8(16),
        FWP_VALUE0.u32(5),
        FWP_VALUE0(FWP_UINT64, -1),
        FWP_VALUE0(FWP_UINT64, 1 << 64),
        "heavy",
        -3,
    ],
)
def test_invalid_weight(weight):
    e = FilterEngine()
    with pytest.raises(WfpError) as err:
        e.add_filter(L, P, weight=weight)
    assert err.value.status == NTSTATUS.STATUS_FWP_INVALID_WEIGHT


# ------------------------------------------------------------------------------------------------
# Results when nothing decides; re-indication bounds
# ------------------------------------------------------------------------------------------------


def test_no_filter_is_none_and_only_continues_is_continue():
    e = FilterEngine()
    assert (run(e).actionType, run(e).rights, run(e).filterId) == (N, W, 0)
    callout_filter(e, cont(), action=FWP_ACTION_CALLOUT_UNKNOWN)
    assert (run(e).actionType, run(e).rights, run(e).filterId) == (C, W, 0)
    e.add_filter(FWPS_LAYER_INBOUND_TRANSPORT_V4, B)
    assert run(e).actionType == C  # other layers do not matter (rule 4)


def test_exclude_callout_and_below_sublayer_weight():
    e = two_sublayers()
    hi, lo = block(clear=True), permit()
    callout_filter(e, hi, sublayer="high")
    callout_filter(e, lo, sublayer="low")
    cid_hi = e.filters()[0].fwps.action.calloutId
    out = run(e, exclude_callout_id=cid_hi)
    assert out.actionType == P and len(hi.calls) == 0 and len(lo.calls) == 1
    out = run(e, below_sublayer_weight=0x200)
    assert out.actionType == P and len(hi.calls) == 0 and len(lo.calls) == 2
    out = run(e, below_sublayer_weight=0x100)
    assert out.actionType == N


def test_invalid_actions_flags_layers_and_sublayers():
    e = FilterEngine()
    cases = [
        (dict(layer=L, action=FWP_ACTION_CONTINUE), NTSTATUS.STATUS_FWP_INVALID_ACTION_TYPE),
        (
            dict(layer=L, action=FWP_ACTION_CALLOUT_TERMINATING),
            NTSTATUS.STATUS_FWP_CALLOUT_NOT_FOUND,
        ),
        (dict(layer=L, action=P, flags=0x40), NTSTATUS.STATUS_FWP_INVALID_FLAGS),
        (dict(layer=FWPS_BUILTIN_KM_LAYER_MAX, action=P), NTSTATUS.STATUS_FWP_LAYER_NOT_FOUND),
        (dict(layer=L, action=P, sublayer="nope"), NTSTATUS.STATUS_FWP_SUBLAYER_NOT_FOUND),
        (dict(layer=L, action=P, context=-1), NTSTATUS.STATUS_INVALID_PARAMETER),
    ]
    for kw, status in cases:
        layer, action = kw.pop("layer"), kw.pop("action")
        with pytest.raises(WfpError) as err:
            e.add_filter(layer, action, **kw)
        assert err.value.status == status, kw
    e.add_filter(L, P, key="k")
    with pytest.raises(WfpError) as err:
        e.add_filter(L, P, key="k")
    assert err.value.status == NTSTATUS.STATUS_FWP_ALREADY_EXISTS


def test_sublayer_management():
    e = FilterEngine()
    e.add_sublayer("s", 7)
    for args, status in [
        (("s", 8), NTSTATUS.STATUS_FWP_ALREADY_EXISTS),
        (("t", 0x10000), NTSTATUS.STATUS_INVALID_PARAMETER),
        ((None, 1), NTSTATUS.STATUS_INVALID_PARAMETER),
    ]:
        with pytest.raises(WfpError) as err:
            e.add_sublayer(*args)
        assert err.value.status == status
    fid = e.add_filter(L, P, sublayer="s")
    with pytest.raises(WfpError) as err:
        e.delete_sublayer("s")
    assert err.value.status == NTSTATUS.STATUS_FWP_IN_USE
    e.delete_filter(fid)
    e.delete_sublayer("s")
    with pytest.raises(WfpError) as err:
        e.delete_sublayer("s")
    assert err.value.status == NTSTATUS.STATUS_FWP_SUBLAYER_NOT_FOUND
    with pytest.raises(WfpError) as err:
        e.delete_sublayer(FWPM_SUBLAYER_UNIVERSAL)
    assert err.value.status == NTSTATUS.STATUS_ACCESS_DENIED
    with pytest.raises(WfpError) as err:
        e.delete_filter(fid)
    assert err.value.status == NTSTATUS.STATUS_FWP_FILTER_NOT_FOUND


def test_filter_structure_handed_to_the_callout():
    e = FilterEngine()
    e.add_sublayer("s", 0x40)
    got = []
    cid = e.register_callout(lambda v, m, d, flt, c, o: got.append(flt), key="k")
    fid = e.add_filter(
        L,
        FWP_ACTION_CALLOUT_TERMINATING,
        callout_key="k",
        sublayer="s",
        weight=77,
        context=0xDD,
        conditions=[(FWPS_FIELD_OUTBOUND_TRANSPORT_V4_IP_PROTOCOL, FWP_MATCH_EQUAL, 6)],
    )
    e.classify(L, values(L, IP_PROTOCOL=FWP_VALUE0.u8(6)), meta(), None)
    (flt,) = got
    assert flt.filterId == fid and flt.subLayerWeight == 0x40 and flt.context == 0xDD
    assert flt.weight == FWP_VALUE0(FWP_UINT64, 77)
    assert (flt.action.type, flt.action.calloutId) == (FWP_ACTION_CALLOUT_TERMINATING, cid)
    assert (
        flt.numFilterConditions == 1
        and flt.filterCondition[0].fieldId == FWPS_FIELD_OUTBOUND_TRANSPORT_V4_IP_PROTOCOL
    )
