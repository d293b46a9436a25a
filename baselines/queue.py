"""Queue-order schedulers on the training pool alone: FIFO and SJF (no loaning, no elastic
scaling; every job at its requested GPUs), and :class:`QueueOrder`, the incrementally
sorted queue that they and Aryl's base-demand step walk instead of sorting every round."""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable, Collection, Hashable, Iterator, Mapping
from heapq import heapify, heappop, heapreplace

from aryl_gym.policy import Allocation, Policy
from aryl_gym.sim.job import Job
from aryl_gym.sim.view import ClusterView


# Keys and groups are module-level functions (or bound methods) so that policies pickle.
def fifo_key(job: Job) -> tuple:
    """Submit order."""
    return (job.submit, job.idx)


def sjf_key(job: Job) -> tuple:
    """Shortest estimated remaining time at the requested GPUs first (a waiting job's
    remaining work does not change, so neither does its key)."""
    return (float(job.est_remaining_work(job.submit) / job.speedup[job.gpus]), job.submit, job.idx)


def requested_gpus(job: Job) -> tuple[int, bool]:
    """Group by requested GPUs (training pool only: no lending flag)."""
    return (job.gpus, False)


class QueueOrder:
    """The waiting jobs of a view in a fixed order, kept up to date incrementally.

    ``key(job)`` gives a job's place in the order: a tuple ending with ``job.idx`` (so keys
    are unique) that must not change while the job waits; every key a policy derives from
    the remaining work of a waiting job qualifies (a waiting job makes no progress).
    ``group(job)`` gives ``(size, flag)`` (e.g. the GPUs it needs and whether it may use
    lent servers): :meth:`ordered` skips whole groups at once.

    :meth:`sync` brings the index up to date with ``view.queued`` in time proportional to
    what changed, not to the queue's length. It relies on two engine facts: ``queued``
    keeps jobs in the order they (re)entered the queue, and a job's ``version`` changes
    when it starts, so a job that ran and came back is seen as new. A job still in the
    queue that the index knew with the same version was waiting throughout, and so was
    every job before it in ``queued``: the walk from the end stops there.
    """

    __slots__ = ("_key", "_group", "_members", "_groups")

    def __init__(self, key: Callable[[Job], tuple], group: Callable[[Job], Hashable]) -> None:
        self._key = key
        self._group = group
        self.clear()

    def clear(self) -> None:
        # idx -> (job, version, group, key); group -> sorted keys
        self._members: dict[int, tuple[Job, int, tuple, tuple]] = {}
        self._groups: dict[tuple, list[tuple]] = {}

    def __len__(self) -> int:
        return len(self._members)

    def _add(self, idx: int, job: Job) -> None:
        key, group = self._key(job), self._group(job)
        self._members[idx] = (job, job.version, group, key)
        lst = self._groups.get(group)
        if lst is None:
            self._groups[group] = [key]
        else:
            insort(lst, key)

    def _remove(self, idx: int) -> None:
        _, _, group, key = self._members.pop(idx)
        lst = self._groups[group]
        del lst[bisect_left(lst, key)]
        if not lst:
            del self._groups[group]

    def sync(self, queued: Mapping[int, Job], gone: Collection[int] = ()) -> None:
        """Match ``queued`` (a view's waiting jobs). ``gone``: jobs that may have left the
        queue since the last sync (those the caller started); others that left are found
        by a full comparison, which only a caller that lets others decide pays for."""
        members = self._members
        for idx, job in reversed(queued.items()):
            m = members.get(idx)
            if m is not None:
                if m[0] is job and m[1] == job.version:
                    break  # waiting since the last sync, and so is every job before it
                self._remove(idx)
            self._add(idx, job)
        for idx in gone:
            if idx in members and idx not in queued:
                self._remove(idx)
        if len(members) != len(queued):
            for idx in members.keys() - queued.keys():
                self._remove(idx)

    def smallest(self) -> int | None:
        """The smallest group size among waiting jobs (None: no job waits)."""
        return min((g[0] for g in self._groups), default=None)

    def ordered(self, fits: Callable[[int, bool], bool]) -> Iterator[Job]:
        """The waiting jobs in key order, each after ``fits(size, flag)`` of its group
        said yes; a group ``fits`` rejects once is skipped from then on, so callers'
        capacities must only shrink while they iterate."""
        for job, _, _ in self.ordered_groups(fits):
            yield job

    def ordered_groups(self, fits: Callable[[int, bool], bool]) -> Iterator[tuple[Job, int, bool]]:
        """:meth:`ordered`, each job with its group ``(size, flag)`` (what ``group(job)``
        said when it joined: a caller need not ask again)."""
        members = self._members
        lists = [(lst, g[0], g[1]) for g, lst in self._groups.items()]
        heap = [(lst[0], 0, i) for i, (lst, _, _) in enumerate(lists)]
        heapify(heap)
        while heap:
            key, pos, i = heap[0]
            lst, size, flag = lists[i]
            if not fits(size, flag):
                heappop(heap)
                continue
            pos += 1
            if pos < len(lst):
                heapreplace(heap, (lst[pos], pos, i))
            else:
                heappop(heap)
            yield members[key[-1]][0], size, flag


class FifoNoLoan(Policy):
    """Strict FIFO by submit time at requested GPUs on the training pool; the head of the
    queue blocks the rest (no backfilling)."""

    name = "fifo-noloan"
    elastic_scaling = False
    description = "FIFO by submit time, requested GPUs, training pool only, no backfilling"

    def __init__(self) -> None:
        self._order = QueueOrder(fifo_key, requested_gpus)
        self._started: list[int] = []

    def reset(self, view: ClusterView, seed: int | None = None) -> None:
        self._order.clear()
        self._started = []

    def allocate(self, view: ClusterView) -> Allocation:
        free = view.free_training_gpus
        out: dict[int, int] = {}
        if free == 0 or not view.queued:
            return Allocation(out)
        self._order.sync(view.queued, self._started)
        blocked = False

        def fits(size: int, _flag: bool) -> bool:
            nonlocal blocked  # the head blocks the rest: nothing after it starts
            blocked = blocked or size > free
            return not blocked

        for job in self._order.ordered(fits):
            out[job.idx] = job.gpus
            free -= job.gpus
        self._started = list(out)
        return Allocation(out)


class SjfNoLoan(Policy):
    """Shortest (estimated) job first at requested GPUs on the training pool, with
    backfilling: a job that does not fit is skipped, smaller ones behind it may start."""

    name = "sjf-noloan"
    elastic_scaling = False
    description = (
        "shortest estimated job first with backfilling, requested GPUs, training pool only"
    )

    def __init__(self) -> None:
        self._order = QueueOrder(sjf_key, requested_gpus)
        self._started: list[int] = []

    def reset(self, view: ClusterView, seed: int | None = None) -> None:
        self._order.clear()
        self._started = []

    def allocate(self, view: ClusterView) -> Allocation:
        free = view.free_training_gpus
        out: dict[int, int] = {}
        if free == 0 or not view.queued:
            return Allocation(out)
        order = self._order
        order.sync(view.queued, self._started)
        self._started = []
        if order.smallest() > free:
            return Allocation(out)

        def fits(size: int, _flag: bool) -> bool:
            return size <= free

        # shortest first; a job that does not fit is skipped (backfilling), and so is
        # every other job of its size from then on (free GPUs only shrink)
        for job in order.ordered(fits):
            out[job.idx] = job.gpus
            free -= job.gpus
        self._started = list(out)
        return Allocation(out)
