"""Which running elastic jobs Aryl's extras step should look at this round.

A running job is worth a rate curve only when some grow could save more than the resize
guard. Checking that bound for every running job in every round is what made the
placement-aware Aryl slow (hundreds of jobs, a round every few seconds), so jobs that
cannot pass it *sleep* until the free GPUs could let them:

* the simulator's :meth:`~aryl_gym.sim.view.ClusterView.bound_levels` bounds every grow
  of a job by ``p[k] x speed`` for ``k`` GPUs within a level's reach (the free GPUs of
  the classes at least as fast as the level's), whatever the cluster becomes while the
  job's own allocation is unchanged;
* a grow saves ``R / rate - R / rate'``, which beats the guard only when
  ``rate' > rate_needed = 1 / (1 / rate - guard / R)``; the remaining work ``R`` only
  falls, so ``rate_needed`` only rises and a threshold computed now stays conservative;
* so a job sleeps with, per level, the fewest GPUs ``tau`` that could let it pass,
  and wakes when a level's reach (``view.extra_room_of``, plus the free GPUs of its own
  servers the room does not count) gets there (one heap per level), when one of its
  own servers gains a free GPU if the bound assumed them full or counted their free
  GPUs (the view's ``release_log``), or when its own allocation changes
  (:meth:`GrowWatch.add`).

The filter only skips jobs the exact checks would skip too: decisions are unchanged.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator
from heapq import heappop, heappush

from aryl_gym.sim.job import Job
from aryl_gym.sim.view import ClusterView

#: thresholds are lowered by this relative margin so rounding never hides a job
_MARGIN = 1e-9


class GrowWatch:
    """Running elastic jobs below their maximum, split into awake and sleeping."""

    def __init__(self) -> None:
        self.awake: dict[int, Job] = {}
        self._asleep: dict[int, int] = {}  # idx -> token of its heap entries
        self._heaps: dict[tuple[int, ...], list[tuple[int, int, int, Job]]] = {}
        # server -> {idx: job} of sleepers whose bound lapses when it frees a GPU: each job
        # at most once per server (sleeping again does not add a second entry); a job
        # found there asleep in a later sleep without that condition is woken too, which
        # only checks it once more
        self._on_server: dict[int, dict[int, Job]] = {}
        # idx -> the allocation version whose servers all hold the job in _on_server (a
        # sleep again at that version need not write the entries once more); forgotten
        # when one of those servers' entries is taken
        self._registered: dict[int, int] = {}
        self._log_pos: int | None = None  # release_log entries already seen
        self._token = 0

    def clear(self) -> None:
        self.awake.clear()
        self._asleep.clear()
        self._heaps.clear()
        self._on_server.clear()
        self._registered.clear()
        self._log_pos = None

    def copy(self) -> GrowWatch:
        """An independent copy (the jobs themselves are shared)."""
        other = GrowWatch()
        other.awake = dict(self.awake)
        other._asleep = dict(self._asleep)
        other._heaps = {k: list(h) for k, h in self._heaps.items()}
        other._on_server = {s: dict(v) for s, v in self._on_server.items()}
        other._registered = dict(self._registered)
        other._log_pos = self._log_pos
        other._token = self._token
        return other

    def add(self, job: Job) -> None:
        """Watch ``job`` (its allocation changed, or it was started or scaled in)."""
        self._asleep.pop(job.idx, None)
        self.awake[job.idx] = job

    def drop(self, idx: int) -> None:
        self.awake.pop(idx, None)
        self._asleep.pop(idx, None)

    def wake(self, view: ClusterView) -> None:
        """Move back every sleeping job that a level's free GPUs now reach, or whose
        servers (assumed full) gained a free GPU."""
        log = view.release_log
        if self._log_pos is None:
            self._log_pos = len(log)
        if self._on_server:
            on_server, asleep, registered = self._on_server, self._asleep, self._registered
            for s in log[self._log_pos :]:
                sleepers = on_server.pop(s, None)
                if sleepers:
                    for idx, job in sleepers.items():
                        registered.pop(idx, None)
                        if idx in asleep:
                            del asleep[idx]
                            self.awake[idx] = job
        self._log_pos = len(log)
        asleep, awake, pop = self._asleep, self.awake, heappop
        for classes, heap in self._heaps.items():
            if not heap:
                continue
            reach = view.extra_room_of(classes)
            while heap and heap[0][0] <= reach:
                _, token, idx, job = pop(heap)
                if asleep.get(idx) == token:
                    del asleep[idx]
                    awake[idx] = job

    def sleep(
        self,
        view: ClusterView,
        job: Job,
        remaining: float,
        guard: float,
        bound_levels: tuple | None = None,
    ) -> None:
        """Put ``job`` to sleep until a grow could save more than ``guard`` seconds (or
        forever, until its allocation changes, when none ever could). ``bound_levels``:
        ``view.bound_levels(job)`` when the caller has it from this round already."""
        self.sleep_all([(job, remaining, bound_levels or view.bound_levels(job))], guard)

    def sleep_all(self, grown: list[tuple], guard: float) -> None:
        """:meth:`sleep` for each ``(job, remaining, bound_levels, ...)`` of ``grown`` (a
        round's running candidates, after their check), in that order: the same entries,
        with the lookups done once per round instead of once per job."""
        awake, asleep, heaps = self.awake, self._asleep, self._heaps
        on_server, registered = self._on_server, self._registered
        token = self._token
        keep = 1.0 - _MARGIN
        for job, remaining, (prefix, levels, full, own), *_ in grown:
            idx = job.idx
            del awake[idx]
            rate = job.rate
            if remaining / rate <= guard:
                continue  # even an infinitely fast grow saves at most R / rate
            needed = 1.0 / (1.0 / rate - guard / remaining) * keep
            token += 1
            n = len(prefix)
            is_asleep = False
            for classes, speed in levels:
                tau = bisect_right(prefix, needed / speed)  # first k with p[k] x speed > needed
                if tau < n:
                    # own free GPUs (not in the room measure) only fall unless a server of
                    # the job frees more, which wakes it below: counting them now stays
                    # conservative
                    heap = heaps.get(classes)
                    if heap is None:
                        heap = heaps[classes] = []
                    heappush(heap, (tau - own, token, idx, job))
                    is_asleep = True
            # the bound counted a new server (full) or the own free GPUs now (own): it
            # lapses when one of the job's servers frees a GPU
            if is_asleep or full or own:
                asleep[idx] = token
            if (full or own) and registered.get(idx) != job.version:
                for s in job.placement:
                    on_server.setdefault(s, {})[idx] = job
                registered[idx] = job.version
        self._token = token

    def items(self) -> Iterator[tuple[int, Job]]:
        """Awake jobs (a copy: the caller may drop or put jobs to sleep meanwhile)."""
        return iter(list(self.awake.items()))
