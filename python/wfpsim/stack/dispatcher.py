"""The stack's dispatcher: the simulated DPC queue and the deterministic clock.

Work items (injection processing + completion, timers, frames arriving over a link, work a
callout queues with :meth:`Stack.queue_dpc`) wait here until the embedding code runs them:

* ``run()`` runs every item that is due *now* (time does not move), including items queued while
  it runs, and returns how many it ran (0 when idle);
* ``run(until=t)`` runs items in time order up to ``t`` and leaves the clock at ``t`` — this is
  how a host simulator drives time (fragment-reassembly timers, link delays);
* ``step()`` runs at most one due item.

Order is deterministic: (due time, sequence number of queueing). A work item that raises does
not stop the queue: the error is kept, the rest runs, and the first error is raised from
``run()`` afterwards (the others are attached to it as ``.errors`` and as notes).

Every loop is bounded: ``max_items`` (default one million per call) ends a run that never goes
idle with a :class:`wfpsim.WfpError` naming the last item.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wfpsim.errors import WfpError

#: Default bound on the number of work items one ``run`` call may execute.
MAX_ITEMS_PER_RUN = 1_000_000


@dataclass(order=True)
class WorkItem:
    time: int
    seq: int
    fn: Callable[[], Any] = field(compare=False)
    label: str = field(default="", compare=False)
    owner: Any = field(default=None, compare=False)  # e.g. the injection handle it belongs to
    depth: int = field(default=0, compare=False)  # causal re-injection depth (loop detection)
    origin: str | None = field(default=None, compare=False)  # the callout whose work this is
    cancelled: bool = field(default=False, compare=False)


class Dispatcher:
    """A deterministic queue of work items with a clock in nanoseconds."""

    def __init__(self, start_ns: int = 0) -> None:
        self.now: int = start_ns
        self._heap: list[tuple[int, int, WorkItem]] = []
        self._seq = 0
        self.depth = 0  # causal depth of the item now running (0 outside items)
        self.running: WorkItem | None = None
        self.after_item: list[Callable[[], None]] = []  # pollers run after every item
        self.items_run = 0
        self._sinks: list[list[BaseException]] = []

    # -- queueing --

    def queue(
        self,
        fn: Callable[[], Any],
        *,
        delay_ns: int = 0,
        at_ns: int | None = None,
        label: str = "",
        owner: Any = None,
        depth: int | None = None,
        origin: str | None = None,
    ) -> WorkItem:
        """Queues ``fn`` to run at ``at_ns`` (or ``now + delay_ns``). Items queued while another
        runs inherit its causal depth and origin unless ``depth`` / ``origin`` are given."""
        when = self.now + max(0, delay_ns) if at_ns is None else max(at_ns, 0)
        self._seq += 1
        if depth is None:
            depth = self.depth
            if origin is None and self.running is not None:
                origin = self.running.origin
        item = WorkItem(when, self._seq, fn, label, owner, depth, origin)
        heapq.heappush(self._heap, (when, self._seq, item))
        return item

    def pending(self, owner: Any = None) -> int:
        """Number of queued items (of ``owner`` when given)."""
        if owner is None:
            return sum(1 for _, _, i in self._heap if not i.cancelled)
        return sum(1 for _, _, i in self._heap if not i.cancelled and i.owner is owner)

    def next_time(self) -> int | None:
        live = [i.time for _, _, i in self._heap if not i.cancelled]
        return min(live) if live else None

    # -- running --

    def _execute(self, item: WorkItem) -> None:
        saved_depth, saved_running = self.depth, self.running
        self.depth, self.running = item.depth, item
        try:
            item.fn()
        except Exception as e:  # noqa: BLE001 - reported from run(), the queue goes on
            if not getattr(e, "__notes__", None) or item.label not in "".join(e.__notes__):
                e.add_note(f"raised by work item {item.label or item.fn!r} at t={item.time} ns")
            if self._sinks:
                self._sinks[-1].append(e)
            else:
                raise
        finally:
            self.depth, self.running = saved_depth, saved_running
            self.items_run += 1
            for poll in list(self.after_item):
                try:
                    poll()
                except Exception as e:  # noqa: BLE001
                    if self._sinks:
                        self._sinks[-1].append(e)
                    else:
                        raise

    def _pop_due(self, limit: int, owner: Any = None) -> WorkItem | None:
        heap = self._heap
        if owner is None:
            while heap:
                when, _, item = heap[0]
                if item.cancelled:
                    heapq.heappop(heap)
                    continue
                if when > limit:
                    return None
                return heapq.heappop(heap)[2]
            return None
        candidates = [e for e in heap if not e[2].cancelled and e[2].owner is owner]
        if not candidates:
            return None
        entry = min(candidates, key=lambda e: (e[0], e[1]))
        heap.remove(entry)
        heapq.heapify(heap)
        return entry[2]

    def run(
        self,
        until: int | None = None,
        *,
        max_items: int = MAX_ITEMS_PER_RUN,
        owner: Any = None,
        raise_errors: bool = True,
    ) -> int:
        """Runs due items; see the module docstring. ``owner`` restricts the run to the items of
        one owner, whatever their time (used by FwpsInjectionHandleDestroy0)."""
        limit = self.now if until is None else max(until, self.now)
        sink: list[BaseException] = []
        self._sinks.append(sink)
        count = 0
        try:
            while True:
                item = self._pop_due(limit, owner)
                if item is None:
                    break
                if count >= max_items:
                    heapq.heappush(self._heap, (item.time, item.seq, item))
                    raise WfpError(
                        f"dispatcher did not go idle after {max_items} work items "
                        f"(last: {item.label or item.fn!r}): a work item keeps queueing work"
                    )
                if item.time > self.now:
                    self.now = item.time
                self._execute(item)
                count += 1
            if until is not None and owner is None and until > self.now:
                self.now = until
        finally:
            self._sinks.pop()
        if sink and raise_errors:
            first = sink[0]
            first.errors = list(sink)  # type: ignore[attr-defined]
            for other in sink[1:]:
                first.add_note(f"also raised during the same run: {type(other).__name__}: {other}")
            raise first
        if sink and self._sinks:
            self._sinks[-1].extend(sink)
        return count

    def step(self) -> int:
        """Runs at most one due item (time does not move); returns 1 or 0. An error the item
        raised is raised from here."""
        item = self._pop_due(self.now)
        if item is None:
            return 0
        sink: list[BaseException] = []
        self._sinks.append(sink)
        try:
            self._execute(item)
        finally:
            self._sinks.pop()
        if sink:
            first = sink[0]
            first.errors = list(sink)  # type: ignore[attr-defined]
            raise first
        return 1


__all__ = ["Dispatcher", "WorkItem", "MAX_ITEMS_PER_RUN"]
