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
  servers the room does not count) gets there (per level, the thresholds in one sorted
  list: a job keeps its entries while they hold, so a round that wakes a hundred jobs
  and puts them back to sleep moves none of them), when one of its
  own servers gains a free GPU if the bound assumed them full or counted their free
  GPUs (the view's ``release_log``), or when its own allocation changes
  (:meth:`GrowWatch.add`).

The filter only skips jobs the exact checks would skip too: decisions are unchanged.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterator

from aryl_gym.sim.job import Job
from aryl_gym.sim.view import ClusterView

#: thresholds are lowered by this relative margin so rounding never hides a job
_MARGIN = 1e-9
#: above every job index: ``(reach, _TOP)`` sorts after every entry ``(reach, idx)``
_TOP = 1 << 62


class GrowWatch:
    """Running elastic jobs below their maximum, split into awake and sleeping."""

    def __init__(self) -> None:
        self.awake: dict[int, Job] = {}
        self._asleep: dict[int, Job] = {}
        # per level (its classes), the sleeping thresholds as sorted (threshold, idx)
        # entries, and each job's entries as (classes, threshold) pairs; an awake job's
        # entries stay until it sleeps again (rewritten when they changed) or is dropped
        self._lists: dict[tuple[int, ...], list[tuple[int, int]]] = {}
        self._keys: dict[int, tuple[tuple[tuple[int, ...], int], ...]] = {}
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

    def clear(self) -> None:
        self.awake.clear()
        self._asleep.clear()
        self._lists.clear()
        self._keys.clear()
        self._on_server.clear()
        self._registered.clear()
        self._log_pos = None

    def copy(self) -> GrowWatch:
        """An independent copy (the jobs themselves are shared)."""
        other = GrowWatch()
        other.awake = dict(self.awake)
        other._asleep = dict(self._asleep)
        other._lists = {k: list(v) for k, v in self._lists.items()}
        other._keys = dict(self._keys)
        other._on_server = {s: dict(v) for s, v in self._on_server.items()}
        other._registered = dict(self._registered)
        other._log_pos = self._log_pos
        return other

    def add(self, job: Job) -> None:
        """Watch ``job`` (its allocation changed, or it was started or scaled in)."""
        self._asleep.pop(job.idx, None)
        self.awake[job.idx] = job

    def drop(self, idx: int) -> None:
        self.awake.pop(idx, None)
        self._asleep.pop(idx, None)
        self._unlist(idx, self._keys.pop(idx, ()))

    def _unlist(self, idx: int, keys: tuple) -> None:
        """Take ``idx``'s entries ``keys`` (``(classes, threshold)`` pairs) off the lists."""
        lists = self._lists
        for classes, key in keys:
            entries = lists[classes]
            del entries[bisect_left(entries, (key, idx))]

    def wake(self, view: ClusterView) -> None:
        """Move back every sleeping job that a level's free GPUs now reach, or whose
        servers (assumed full) gained a free GPU."""
        log = view.release_log
        if self._log_pos is None:
            self._log_pos = len(log)
        asleep, awake = self._asleep, self.awake
        if self._on_server:
            on_server, registered = self._on_server, self._registered
            for s in log[self._log_pos :]:
                sleepers = on_server.pop(s, None)
                if sleepers:
                    for idx in sleepers:
                        registered.pop(idx, None)
                        job = asleep.pop(idx, None)
                        if job is not None:
                            awake[idx] = job
        self._log_pos = len(log)
        for classes, entries in self._lists.items():
            if not entries:
                continue
            end = bisect_right(entries, (view.extra_room_of(classes), _TOP))
            for _, idx in entries[:end]:  # thresholds within reach (awake ones stay listed)
                job = asleep.pop(idx, None)
                if job is not None:
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
        round's running candidates, after their check), with the lookups done once per
        round instead of once per job."""
        awake, asleep, lists, all_keys = self.awake, self._asleep, self._lists, self._keys
        on_server, registered = self._on_server, self._registered
        keep = 1.0 - _MARGIN
        for entry in grown:
            job, remaining = entry[0], entry[1]
            prefix, levels, full, own = entry[2]
            idx = job.idx
            del awake[idx]
            rate = job.rate
            passes = remaining / rate > guard  # else even an infinitely fast grow saves less
            keys: tuple = ()
            if passes:
                needed = 1.0 / (1.0 / rate - guard / remaining) * keep
                n = len(prefix)
                for classes, speed in levels:
                    tau = bisect_right(prefix, needed / speed)  # first k: p[k] x speed > needed
                    if tau < n:
                        # own free GPUs (not in the room measure) only fall unless a server
                        # of the job frees more, which wakes it below: counting them now
                        # stays conservative
                        keys += ((classes, tau - own),)
            old = all_keys.get(idx, ())
            if old != keys:
                self._unlist(idx, old)
                for classes, key in keys:
                    entries = lists.get(classes)
                    if entries is None:
                        entries = lists[classes] = []
                    insort(entries, (key, idx))
                if keys:
                    all_keys[idx] = keys
                else:
                    del all_keys[idx]
            if not passes:
                continue  # asleep for good, until its allocation changes
            # the bound counted a new server (full) or the own free GPUs now (own): it
            # lapses when one of the job's servers frees a GPU
            if keys or full or own:
                asleep[idx] = job
            if (full or own) and registered.get(idx) != job.version:
                for s in job.placement:
                    on_server.setdefault(s, {})[idx] = job
                registered[idx] = job.version

    def items(self) -> Iterator[tuple[int, Job]]:
        """Awake jobs (a copy: the caller may drop or put jobs to sleep meanwhile)."""
        return iter(list(self.awake.items()))
