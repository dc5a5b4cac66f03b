"""The engine's `subscribe_entities` messages applied to the mirrors: at once, or in slices.

- Big messages (the first one of a subscription holds every state: thousands of entities on a
  big remote) are applied in slices (`slices.Slices`), yielding to the event loop between them,
  in message order; a small one with nothing waiting is applied at once.
- The first message of each new subscription holds every current state: mirrors it does not
  hold are made unavailable (maybe they come later).
- States held until the remote's registry classified their entities (`remote_mirrors.py`) are
  released the same way, before the messages waiting (those are newer); a newer state of one of
  them, applied meanwhile, takes its place (`LocalMirrors.releasing`).
- A link lost meanwhile drops what is still waiting (the next subscription's first message
  tells it all again), and makes every mirror unavailable the same way: in slices when they are
  many (one state write each; why it matters on a big remote: `scripts/bench backfill`,
  docs/performance.md "Event-loop blocks during a big recovery").
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

from ..client import EntitiesUpdate, RemoteState, TaskSet  # noqa: TID252 - the package's engine
from ..slices import SLICE_ITEMS, Slices  # noqa: TID252 - long work in slices
from .local_entities import LocalMirrors


class SlicedUpdates:
    """Applies the messages in order to `LocalMirrors`, a slice at a time when they are big."""

    def __init__(self, mirrors: LocalMirrors, tasks: TaskSet) -> None:
        """Nothing waits yet."""
        self.mirrors = mirrors
        self.tasks = tasks
        # Messages waiting to be applied (in order): the mirrors a first message does not hold,
        # the states it told, its removals; whether a task applies them; bumped when the link
        # drops (what waits is stale then).
        self._work: deque[tuple[list[str], dict[str, RemoteState], tuple[str, ...]]] = deque()
        self._working = False
        self._link_epoch = 0

    def add(self, update: EntitiesUpdate) -> None:
        """One subscribe_entities message: at once when small and nothing waits; else queued."""
        # What this message says, as it says it (later messages change `update.states`): a copy
        # of the states it changed; for a first message, of all of them (one dict, no object per
        # entity: a big remote's first message is tens of thousands).
        states = update.states
        if update.initial:
            told = dict(states)
            # A new subscription: what it does not hold is not there now (maybe not yet).
            gone = [r for r in self.mirrors.entities if r not in told]
        else:
            told = {r: states[r] for r in update.changed}
            gone = []
        self._enqueue(gone, told, update.removed)

    def release(self, held: dict[str, RemoteState]) -> None:
        """Held states, now classified (`LocalMirrors.releasing`): applied before what waits."""
        if held and not any(told is held for _, told, _ in self._work):  # else already waiting
            self._enqueue([], held, (), first=True)

    def link_lost(self) -> None:
        """What waits is stale; every mirror unavailable (in slices too: a write each)."""
        self._work.clear()
        self.mirrors.releasing.clear()
        self._link_epoch += 1
        self._enqueue(list(self.mirrors.entities), {}, ())

    def _enqueue(
        self,
        gone: list[str],
        told: dict[str, RemoteState],
        removed: tuple[str, ...],
        *,
        first: bool = False,
    ) -> None:
        """Apply at once when it is small and nothing waits; else queue it for the slicing worker.

        `first`: queued before what waits (which is newer).
        """
        if not self._work and not self._working and len(told) + len(gone) <= SLICE_ITEMS:
            self.mirrors.begin_batch()
            try:
                for _ in self._steps(gone, told, removed):
                    pass
            finally:
                self.mirrors.add_batch()
            return
        if first:
            self._work.appendleft((gone, told, removed))
        else:
            self._work.append((gone, told, removed))
        if not self._working:
            self._working = True  # before the task: it may start (and end) eagerly
            self.tasks.start(self._apply_waiting(), "mirror updates")

    async def _apply_waiting(self) -> None:
        """Apply the waiting messages in order, a slice at a time."""
        slices = Slices()
        try:
            while self._work:
                epoch = self._link_epoch
                self.mirrors.begin_batch()
                for _ in self._steps(*self._work.popleft()):
                    if slices.full():
                        self.mirrors.add_batch()
                        await slices.pause()
                        if epoch != self._link_epoch:
                            break  # the link dropped: the rest is stale; the queue has what now
                        self.mirrors.begin_batch()
                self.mirrors.add_batch()
        finally:
            self.mirrors.drop_batch()
            self._working = False

    def _steps(
        self, gone: list[str], told: dict[str, RemoteState], removed: tuple[str, ...]
    ) -> Iterator[None]:
        """Apply one message, an entity at a time (a step after each, for slicing)."""
        if told is self.mirrors.releasing:
            yield from self._released(told)
            return
        for remote_id in gone:
            self.mirrors.apply(remote_id, None)
            yield
        for remote_id, state in told.items():
            self.mirrors.apply(remote_id, state)
            yield
        for remote_id in removed:
            self.mirrors.on_removed(remote_id)
            yield

    def _released(self, held: dict[str, RemoteState]) -> Iterator[None]:
        """The held states still there (a newer one applied meanwhile took one out), oldest first."""
        while held:
            remote_id = next(iter(held))
            self.mirrors.apply(remote_id, held.pop(remote_id))
            yield
