"""Random sequences of buffer operations against a small pure-Python model of `nbl.md`.

The model knows nothing of the engine: MDLs are (buffer, start, length, origin) over expected
byte arrays; an NB is (chain, DataOffset, DataLength). After every step each live NBL's
offsets, CurrentMdl and bytes must agree with the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import wfpsim
from wfpsim import wdk


@dataclass
class MMdl:
    buf: bytearray  # expected bytes of the whole underlying buffer
    start: int
    length: int
    origin: str  # "caller" | "retreat" | "clone"
    real: wfpsim.Mdl | None = None  # the engine's MDL, once known


@dataclass
class MNbl:
    real: wfpsim.NetBufferList
    chain: list[MMdl]
    offset: int
    length: int
    parent: MNbl | None = None
    children: int = 0
    alive: bool = True
    clone: bool = False
    owned_mdls: list[wfpsim.Mdl] = field(default_factory=list)

    def current(self) -> tuple[int, int]:
        rest = self.offset
        i = 0
        while i + 1 < len(self.chain) and rest >= self.chain[i].length:
            rest -= self.chain[i].length
            i += 1
        return i, rest

    def data(self) -> bytes:
        out = bytearray()
        for m in self.chain:
            out += m.buf[m.start : m.start + m.length]
        return bytes(out[self.offset : self.offset + self.length])

    def locate(self, pos: int) -> tuple[MMdl, int]:
        rest = self.offset + pos
        for m in self.chain:
            if rest < m.length:
                return m, m.start + rest
            rest -= m.length
        raise AssertionError("position outside the chain")


class NblMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.nbls: list[MNbl] = []
        self.freed: list[wfpsim.NetBufferList] = []
        self.caller_mdls: list[tuple[wfpsim.Mdl, bytearray, bytearray]] = []

    @initialize()
    def start(self) -> None:
        wfpsim.set_site_tracking(False)

    def live(self) -> list[MNbl]:
        return [n for n in self.nbls if n.alive]

    @rule(
        sizes=st.lists(st.integers(0, 40), min_size=1, max_size=4),
        data=st.data(),
    )
    def allocate(self, sizes: list[int], data) -> None:
        total = sum(sizes)
        offset = data.draw(st.integers(0, total))
        length = data.draw(st.integers(0, total - offset))
        chain: list[MMdl] = []
        prev = None
        for size in sizes:
            real_mem = bytearray(data.draw(st.binary(min_size=size, max_size=size)))
            expected = bytearray(real_mem)
            mdl = wdk.NdisAllocateMdl(None, real_mem, size)
            assert mdl is not None
            self.caller_mdls.append((mdl, real_mem, expected))
            if prev is not None:
                prev.Next = mdl
            prev = mdl
            chain.append(MMdl(expected, 0, size, "caller", mdl))
        status, nbl = wdk.FwpsAllocateNetBufferAndNetBufferList0(
            None, 0, 0, chain[0].real, offset, length
        )
        assert status == wdk.STATUS_SUCCESS and nbl is not None
        self.nbls.append(MNbl(nbl, chain, offset, length))

    @precondition(lambda self: self.live())
    @rule(data=st.data(), delta=st.integers(0, 60), backfill=st.sampled_from([0, 0, 8, 16]))
    def retreat(self, data, delta: int, backfill: int) -> None:
        m = data.draw(st.sampled_from(self.live()))
        nb = m.real.FirstNetBuffer
        status = wdk.NdisRetreatNetBufferDataStart(nb, delta, backfill, None)
        assert status == wdk.NDIS_STATUS_SUCCESS
        if delta <= m.offset:
            m.offset -= delta
        else:
            shortfall = delta - m.offset
            size = shortfall + backfill
            m.chain.insert(0, MMdl(bytearray(size), 0, size, "retreat", nb.MdlChain))
            m.offset = backfill
        m.length += delta

    @precondition(lambda self: self.live())
    @rule(data=st.data(), delta=st.integers(0, 60), free_mdl=st.booleans())
    def advance(self, data, delta: int, free_mdl: bool) -> None:
        m = data.draw(st.sampled_from(self.live()))
        nb = m.real.FirstNetBuffer
        if delta > m.length:
            try:
                wdk.NdisAdvanceNetBufferDataStart(nb, delta, free_mdl, None)
            except wfpsim.InvalidParameterError as e:
                assert "past the data" in str(e)
            else:
                raise AssertionError("advance past the data must raise")
            return
        wdk.NdisAdvanceNetBufferDataStart(nb, delta, free_mdl, None)
        m.offset += delta
        m.length -= delta
        if free_mdl:
            cur, _ = m.current()
            while (
                m.chain
                and m.chain[0].origin == "retreat"
                and cur > 0
                and m.chain[0].length <= m.offset
            ):
                m.offset -= m.chain[0].length
                m.chain.pop(0)
                cur -= 1

    @precondition(lambda self: self.live())
    @rule(data=st.data(), needed=st.integers(0, 50))
    def get_data_buffer(self, data, needed: int) -> None:
        m = data.draw(st.sampled_from(self.live()))
        nb = m.real.FirstNetBuffer
        storage = bytearray(max(needed, 1))
        got = wdk.NdisGetDataBuffer(nb, needed, storage, 1, 0)
        if needed == 0 or needed > m.length:
            assert got is None
            return
        i, off = m.current()
        contiguous = m.chain[i].length - off >= needed
        if contiguous:
            assert isinstance(got, memoryview) and got is not storage
            assert bytes(got) == m.data()[:needed]
            # Writable, and a write reaches the packet (and everything sharing its memory).
            got[0] = (got[0] + 1) % 256
            mm, pos = m.locate(0)
            mm.buf[pos] = got[0]
        else:
            assert got is storage
            assert bytes(storage[:needed]) == m.data()[:needed]
        # Without Storage, a non-contiguous request is NULL.
        if not contiguous:
            assert wdk.NdisGetDataBuffer(nb, needed, None, 1, 0) is None

    @precondition(lambda self: self.live())
    @rule(data=st.data())
    def clone(self, data) -> None:
        m = data.draw(st.sampled_from(self.live()))
        status, c = wdk.FwpsAllocateCloneNetBufferList0(m.real, None, None, 0)
        assert status == wdk.STATUS_SUCCESS and c is not None
        i, off = m.current()
        chain = [MMdl(x.buf, x.start, x.length, "clone") for x in m.chain[i:]]
        m.children += 1
        self.nbls.append(MNbl(c, chain, off, m.length, parent=m, clone=True))
        assert c.ParentNetBufferList is m.real
        assert m.real.ChildRefCount == m.children

    @precondition(lambda self: any(n.length > 0 for n in self.live()))
    @rule(data=st.data(), value=st.integers(0, 255))
    def write(self, data, value: int) -> None:
        m = data.draw(st.sampled_from([n for n in self.live() if n.length > 0]))
        pos = data.draw(st.integers(0, m.length - 1))
        rest = pos
        for view in m.real.FirstNetBuffer.views():
            if rest < len(view):
                view[rest] = value
                break
            rest -= len(view)
        mm, at = m.locate(pos)
        mm.buf[at] = value

    @precondition(lambda self: self.live())
    @rule(data=st.data())
    def free(self, data) -> None:
        m = data.draw(st.sampled_from(self.live()))
        if m.children:
            try:
                m.real.free()
            except wfpsim.InvalidStateError as e:
                assert "clone" in str(e)
            else:
                raise AssertionError("freeing a parent with live clones must raise")
            return
        if m.clone:
            wdk.FwpsFreeCloneNetBufferList0(m.real, 0)
            m.parent.children -= 1
        else:
            wdk.FwpsFreeNetBufferList0(m.real)
        m.alive = False
        self.freed.append(m.real)

    @precondition(lambda self: self.freed)
    @rule(data=st.data())
    def use_after_free(self, data) -> None:
        dead = data.draw(st.sampled_from(self.freed))
        try:
            dead.FirstNetBuffer
        except wfpsim.UseAfterFreeError as e:
            assert "freed" in str(e)
        else:
            raise AssertionError("use after free must raise")
        try:
            dead.free()
        except wfpsim.DoubleFreeError:
            pass
        else:
            raise AssertionError("double free must raise")

    @invariant()
    def matches_model(self) -> None:
        for m in self.live():
            nb = m.real.FirstNetBuffer
            assert nb.DataOffset == m.offset
            assert nb.DataLength == m.length
            i, off = m.current()
            assert nb.CurrentMdlOffset == off
            mdls = nb.mdls()
            assert len(mdls) == len(m.chain)
            assert [x.ByteCount for x in mdls] == [x.length for x in m.chain]
            assert nb.CurrentMdl is mdls[i]
            assert nb.tobytes() == m.data()
            nb.validate()
        for _mdl, real, expected in self.caller_mdls:
            assert real == expected

    def teardown(self) -> None:
        for m in reversed(self.nbls):
            if m.alive and m.children == 0:
                m.real.free()
                m.alive = False
                if m.parent:
                    m.parent.children -= 1
        for m in reversed(self.nbls):
            if m.alive:
                m.real.free()
        for mdl, _, _ in self.caller_mdls:
            mdl.free()
        wfpsim.set_site_tracking(True)


NblMachine.TestCase.settings = settings(
    max_examples=500,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TestNblModel = NblMachine.TestCase
