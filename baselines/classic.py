"""Two classic GPU-cluster schedulers on the training pool alone (no loaning).

* :class:`Tiresias` — discretised two-dimensional least-attained-service (2D-LAS, Gu et
  al., NSDI '19). A job's *attained service* is the GPU-seconds it has been allocated so
  far (:func:`attained_service`). ``K = len(thresholds) + 1`` priority queues split it:
  queue ``i`` holds jobs with attained service in ``[thresholds[i-1], thresholds[i])``
  (after subtracting the service at their last promotion, see below). The default is the
  two queues of the authors' public simulator (``num_queue = 2``, first ``queue_limit`` =
  3250 GPU-seconds): ``Q0 = [0, 3250)``, ``Q1 = [3250, inf)``. Order: lower queue first,
  FIFO by submit time inside a queue. Every job runs at its requested GPUs.

  Preemption: a waiting job that does not fit in the free GPUs preempts running jobs of
  *strictly lower-priority queues* (lowest priority first: highest queue, latest submit),
  and only when the GPUs they free, together with the free ones, let it start in the same
  round; otherwise nothing is preempted. Jobs of the same queue never preempt each other
  (as in the authors' simulator, where running jobs stay ahead of pending ones inside a
  queue). This matters here: a preempted job loses the work since its last checkpoint
  and pays the restart overhead (docs/model.md), which Tiresias's own simulator does
  not charge. For the same reason a running job becomes preemptible only after
  ``min_run_s`` of progress in its current run (default: the scenario's
  ``checkpoint_interval_s``), so every run keeps at least one checkpoint; without it,
  jobs preempted before their first checkpoint lose all their progress, and promoted
  and demoted jobs can keep preempting each other without progress (with the guard off
  and promotion on, a ``small`` run did not finish within minutes). This guard is not in
  Tiresias; ``min_run_s=0`` switches it off.

  Starvation guard (Tiresias's ``PROMOTE_KNOB``, the simulator's ``solve_starvation``): a
  waiting job in a queue below Q0 whose current wait reaches ``promote_knob`` x its run
  time since its last promotion (attained GPU-seconds since then / requested GPUs) is put
  back into Q0 and its queue-deciding service restarts from zero (its total is kept). The
  authors' simulator ships knobs 0.5, 1, 2, 4, 8, 10, 100, 1000 (and none in plain
  ``dlas-gpu``); the default here is 8, large enough that a promoted job, which then
  preempts lower-queue jobs, has waited far longer than it ran.

  Demotions and promotions are noticed at the next round; the policy asks for periodic
  rounds (every ``DynamicsConfig.round_interval_s``) so that they are at most that late.

* :class:`Afs` — an AFS/Optimus-style marginal-gain elastic allocator (Hwang et al., NSDI
  '21; Peng et al., EuroSys '18) on the training pool. Each round:

  1. **Base demand.** Waiting jobs in order of estimated remaining time at their base
     (``min_gpus`` if elastic, else ``gpus``), shortest first, get their base when it fits
     (backfilling: a job that does not fit is skipped). Base demand beats extra workers:
     if the free GPUs do not suffice, running elastic jobs give up extra workers for it,
     lowest marginal value first. Running jobs keep at least their base: nothing is ever
     preempted. A job that cannot get its base waits.
  2. **Extra workers.** The GPUs still free are handed out one at a time to the elastic
     job (just started or running, below ``max_gpus``) with the largest *AFS value*
     ``(thr(n + 1) - thr(n)) / R`` — the throughput gain of one more GPU divided by the
     job's estimated remaining work ``R``, i.e. the rise of its completion rate
     ``1 / remaining time``. This is the rule that favours short jobs (AFS); Optimus's
     ``R / thr(n) - R / thr(n + 1)`` favours long ones. Ties: earlier submit, lower index.
     Resize guard: a running job is only grown when the remaining time it saves,
     ``R / thr(n0) - R / thr(n1)``, exceeds ``resize_guard x scale_overhead_s`` (the pause a
     resize costs); failing grows are dropped and their GPUs re-offered.
     With ``extras_when_blocked=False`` (default) step 2 runs only when every waiting job
     got its base: while a job waits for room, spare GPUs are kept for it rather than lent
     to running jobs as extra workers that its start would take back (two resizes each).
     Extra workers are never moved from one running job to another.

Both are deterministic (no randomness; ties broken by submit time and job index) and keep
their own incremental indexes of waiting and running jobs, so a round never scans all
running jobs.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right, insort
from collections.abc import Sequence

from aryl_gym.policy import Allocation, PlacementRules, Policy
from aryl_gym.sim.job import QUEUED, RUNNING, Job
from aryl_gym.sim.view import ClusterView

_TRAINING_ONLY = PlacementRules(
    extra_on_lent_first=False, base_on_lent=False, inelastic_on_lent=False
)


def attained_service(job: Job, t: float) -> float:
    """GPU-seconds ``job`` has been allocated up to ``t``: the settled ``gpu_seconds`` plus
    the current allocation's share since ``job.t_alloc`` (restart pauses included)."""
    if job.state == RUNNING:
        return job.gpu_seconds + job.n_gpus * (t - job.t_alloc)
    return job.gpu_seconds


def _new_arrivals(view: ClusterView, nxt: int) -> tuple[list[Job], int]:
    """Jobs that arrived since the last round. Jobs arrive in index order and every arrival
    makes a round before any job can start, so they are exactly the queued indices from
    ``nxt`` on."""
    queued = view.queued
    out = []
    while nxt in queued:
        out.append(queued[nxt])
        nxt += 1
    return out, nxt


# ====================================================================================== Tiresias
class Tiresias(Policy):
    """Discretised 2D least-attained-service with starvation promotion (Tiresias)."""

    name = "tiresias"
    description = (
        "Tiresias 2D-LAS: queues by attained GPU-s (Q0 < 3250 <= Q1), FIFO inside, requested GPUs, "
        "preempts lower queues (after a checkpoint) only if the waiting job then starts, promote after 8x run time waiting"
    )
    uses_loaning = False
    periodic_rounds = True
    elastic_scaling = False
    rules = _TRAINING_ONLY

    def __init__(
        self,
        thresholds: Sequence[float] = (3250.0,),
        promote_knob: float | None = 8.0,
        min_run_s: float | None = None,
    ) -> None:
        th = [float(x) for x in thresholds]
        if any(x <= 0 for x in th) or th != sorted(th) or len(set(th)) != len(th):
            raise ValueError(
                f"Tiresias thresholds must be positive and increasing, got {list(thresholds)}"
            )
        if promote_knob is not None and not promote_knob > 0:
            raise ValueError(f"Tiresias promote_knob must be > 0 or None, got {promote_knob}")
        if min_run_s is not None and min_run_s < 0:
            raise ValueError(f"Tiresias min_run_s must be >= 0 or None, got {min_run_s}")
        self.min_run_s = min_run_s
        self.thresholds = tuple(th)
        self.promote_knob = promote_knob
        self.n_queues = len(th) + 1
        self._clear()

    def _clear(self) -> None:
        k = self.n_queues
        self._next = 0  # next job index to look for among arrivals
        self._wait: list[
            tuple[int, float, int]
        ] = []  # sorted keys (queue, submit, idx) of waiting jobs
        self._wkey: dict[int, tuple[int, float, int]] = {}
        self._offset: dict[int, float] = {}  # attained service at the last promotion
        # running jobs by queue (queues >= 1 only: possible preemption victims); entries of
        # jobs that finished since are dropped lazily, so _vgpus is an upper bound
        self._victims: list[dict[int, Job]] = [{} for _ in range(k)]
        self._vgpus = [0] * k
        self._runq: dict[int, int] = {}  # running job idx -> victim set it is in (0: none)
        # (time, idx, segment stamp, queue): when a running job becomes a victim of that
        # queue (it crossed the threshold and has run min_run_s since its start)
        self._demote: list[tuple[float, int, int, int]] = []
        self._promote: list[tuple[float, int, int]] = []  # (time, idx, wait stamp)
        self._idle_epoch: int | None = None
        self.promotions = 0  # statistics: promotions done
        self.demotions = 0

    def reset(self, view: ClusterView, seed: int | None = None) -> None:
        self._clear()

    # ---------------------------------------------------------------- helpers
    def queue_of(self, job: Job, t: float) -> int:
        """The priority queue of ``job`` at ``t`` (0 = highest)."""
        return bisect_right(
            self.thresholds, attained_service(job, t) - self._offset.get(job.idx, 0.0)
        )

    def _enqueue(self, job: Job, q: int, t: float, wait_stamp: int) -> None:
        key = (q, job.submit, job.idx)
        insort(self._wait, key)
        self._wkey[job.idx] = key
        if q > 0 and self.promote_knob is not None:
            ran = (attained_service(job, t) - self._offset.get(job.idx, 0.0)) / job.gpus
            heapq.heappush(self._promote, (t + self.promote_knob * ran, job.idx, wait_stamp))

    def _dequeue(self, idx: int) -> None:
        key = self._wkey.pop(idx)
        i = bisect_left(self._wait, key)
        del self._wait[i]

    def _track_running(self, view: ClusterView, job: Job, q: int, stamp: int) -> None:
        """Schedule when a job started now at queue ``q`` joins a victim set."""
        t = view.now
        dyn = view.scenario.dynamics
        min_run = dyn.checkpoint_interval_s if self.min_run_s is None else self.min_run_s
        eligible = t + (dyn.restart_overhead_s if job.preemptions else 0.0) + min_run
        self._runq[job.idx] = 0
        if q >= 1:
            heapq.heappush(self._demote, (eligible, job.idx, stamp, q))
        elif q < self.n_queues - 1:
            left = self.thresholds[0] - (attained_service(job, t) - self._offset.get(job.idx, 0.0))
            heapq.heappush(
                self._demote, (max(eligible, t + max(left, 0.0) / job.gpus), job.idx, stamp, 1)
            )

    def _clean_victims(self, lo: int) -> int:
        """Drop finished jobs from the victim sets of queues ``>= lo``; their exact GPUs."""
        total = 0
        for q in range(lo, self.n_queues):
            vic = self._victims[q]
            dead = [i for i, j in vic.items() if j.state != RUNNING]
            for i in dead:
                del vic[i]
                self._runq.pop(i, None)
            self._vgpus[q] = sum(j.gpus for j in vic.values())
            total += self._vgpus[q]
        return total

    # ---------------------------------------------------------------- the round
    def allocate(self, view: ClusterView) -> Allocation:
        t = view.now
        changed = False
        arrivals, self._next = _new_arrivals(view, self._next)
        for job in arrivals:
            self._enqueue(job, self.queue_of(job, t), t, job.preemptions)
            changed = True
        # running jobs that crossed a threshold (and ran min_run_s) join a victim set
        dh = self._demote
        while dh and dh[0][0] <= t:
            _, idx, stamp, q = heapq.heappop(dh)
            job = view.job(idx)
            old = self._runq.get(idx, 0)
            if job.state != RUNNING or job.preemptions != stamp:
                continue
            q = max(q, self.queue_of(job, t))
            if q <= old:
                continue
            if old > 0 and self._victims[old].pop(idx, None) is not None:
                self._vgpus[old] -= job.gpus
            self._victims[q][idx] = job
            self._vgpus[q] += job.gpus
            self._runq[idx] = q
            self.demotions += 1
            if q < self.n_queues - 1:
                left = self.thresholds[q] - (attained_service(job, t) - self._offset.get(idx, 0.0))
                heapq.heappush(dh, (t + max(left, 0.0) / job.gpus, idx, stamp, q + 1))
            changed = True
        # starvation promotions of waiting jobs
        ph = self._promote
        while ph and ph[0][0] <= t:
            _, idx, stamp = heapq.heappop(ph)
            job = view.job(idx)
            key = self._wkey.get(idx)
            if job.state != QUEUED or job.preemptions != stamp or key is None or key[0] == 0:
                continue
            self._dequeue(idx)
            self._offset[idx] = attained_service(job, t)
            self._enqueue(job, 0, t, stamp)
            self.promotions += 1
            changed = True

        out: dict[int, int] = {}
        if not self._wait:
            return Allocation(out)
        epoch = view.allocation_epoch
        if not changed and epoch == self._idle_epoch:
            return Allocation(out)  # nothing moved since a round that could start nothing

        free = view.free_training_gpus
        last_q = self.n_queues - 1
        requeue: list[Job] = []
        victims, vgpus = self._victims, self._vgpus
        exact_from: int | None = None  # victim sums of queues >= this are exact this round
        for key in list(self._wait):
            q, _, idx = key
            job = view.job(idx)
            g = job.gpus
            if g > free:
                bound = sum(vgpus[q + 1 :]) if q < last_q else 0
                if free + bound < g:
                    if free == 0 and bound == 0:
                        break  # later keys are in the same or lower-priority queues: none can start
                    continue
                if exact_from is None or exact_from > q + 1:
                    bound = self._clean_victims(q + 1)
                    exact_from = q + 1
                    if free + bound < g:
                        continue
                # preempt the lowest-priority running jobs of lower queues until it fits
                cands = [(vq, v) for vq in range(last_q, q, -1) for v in victims[vq].values()]
                cands.sort(key=lambda c: (-c[0], -c[1].submit, -c[1].idx))
                for vq, v in cands:
                    if free >= g:
                        break
                    out[v.idx] = 0
                    del victims[vq][v.idx]
                    vgpus[vq] -= v.gpus
                    self._runq.pop(v.idx, None)
                    free += v.gpus
                    requeue.append(v)
            # start it
            free -= g
            out[idx] = g
            self._dequeue(idx)
            self._track_running(view, job, q, job.preemptions)
        for v in requeue:
            self._enqueue(v, self.queue_of(v, t), t, v.preemptions + 1)
        self._idle_epoch = None if out else epoch
        return Allocation(out)


# ====================================================================================== AFS
class Afs(Policy):
    """AFS/Optimus-style marginal-gain elastic allocation on the training pool."""

    name = "afs"
    description = (
        "AFS-style elastic: bases shortest-remaining first (extras yield to bases), then one GPU at a "
        "time to the max (thr(n+1)-thr(n))/remaining work, resize guard, training pool only"
    )
    uses_loaning = False
    periodic_rounds = False
    elastic_scaling = True
    rules = _TRAINING_ONLY

    def __init__(self, resize_guard: float = 1.0, extras_when_blocked: bool = False) -> None:
        if resize_guard < 0:
            raise ValueError(f"Afs resize_guard must be >= 0, got {resize_guard}")
        self.resize_guard = resize_guard
        self.extras_when_blocked = extras_when_blocked
        self._clear()

    def _clear(self) -> None:
        self._next = 0
        self._wait: list[tuple[float, float, int]] = []  # sorted (est. time at base, submit, idx)
        self._wkey: dict[int, tuple[float, float, int]] = {}
        self._base_count: dict[int, int] = {}  # base size -> waiting jobs of that base
        self._donors: dict[int, Job] = {}  # running elastic jobs above their base (lazily cleaned)
        self._donor_gpus = 0  # upper bound of their extra GPUs
        self._watch: dict[int, Job] = {}  # running elastic jobs that may still gain from growing
        self._idle_key: tuple | None = None

    def reset(self, view: ClusterView, seed: int | None = None) -> None:
        self._clear()

    @staticmethod
    def value(job: Job, n: int, r: float) -> float:
        """AFS value of the ``n + 1``-th GPU of ``job`` with remaining work ``r``."""
        if n >= job.max_gpus:
            return -1.0
        gain = float(job.speedup[n + 1] - job.speedup[n])
        return gain / r if r > 0 else (float("inf") if gain > 0 else 0.0)

    def _clean_donors(self) -> int:
        dead = [i for i, j in self._donors.items() if j.state != RUNNING or j.n_gpus <= j.min_gpus]
        for i in dead:
            del self._donors[i]
        self._donor_gpus = sum(j.n_gpus - j.min_gpus for j in self._donors.values())
        return self._donor_gpus

    def allocate(self, view: ClusterView) -> Allocation:
        t = view.now
        arrivals, self._next = _new_arrivals(view, self._next)
        for job in arrivals:
            b = job.base_gpus
            key = (job.est_remaining_work(t) / float(job.speedup[b]), job.submit, job.idx)
            insort(self._wait, key)
            self._wkey[job.idx] = key
            self._base_count[b] = self._base_count.get(b, 0) + 1
        free = view.free_training_gpus
        out: dict[int, int] = {}
        if not self._wait and free == 0:
            return Allocation(out)
        key = (view.allocation_epoch, free, len(self._wait))
        if not arrivals and key == self._idle_key:
            return Allocation(out)

        # ---- step 1: base demand, shortest first, extras yield to it
        shrink: dict[int, int] = {}  # donor idx -> GPUs after this round
        started: list[Job] = []
        if self._wait:
            smallest = min(b for b, c in self._base_count.items() if c)
            donors_exact = False
            for wkey in list(self._wait):
                if free + self._donor_gpus < smallest:
                    break
                idx = wkey[2]
                job = view.job(idx)
                b = job.base_gpus
                if b > free:
                    if not donors_exact:
                        self._clean_donors()
                        donors_exact = True
                    if b > free + self._donor_gpus:
                        continue
                    free += self._take_extras(view, b - free, shrink)
                free -= b
                out[idx] = b
                started.append(job)
                del self._wkey[idx]
                del self._wait[bisect_left(self._wait, wkey)]
                self._base_count[b] -= 1
        for idx, n in shrink.items():
            out[idx] = n
            job = view.job(idx)
            if n < job.max_gpus:
                self._watch[idx] = job

        # ---- step 2: extra workers, one GPU at a time by AFS value
        if free > 0 and (self.extras_when_blocked or not self._wait):
            self._extras(view, started, shrink, free, out)
        for job in started:
            n = out[job.idx]
            if job.elastic and n < job.max_gpus:
                self._watch[job.idx] = job
            if job.elastic and n > job.min_gpus:
                self._donors[job.idx] = job
                self._donor_gpus += n - job.min_gpus
        self._idle_key = None if out else (view.allocation_epoch, free, len(self._wait))
        return Allocation(out)

    def _take_extras(self, view: ClusterView, need: int, shrink: dict[int, int]) -> int:
        """Take ``need`` extra GPUs off donors, the lowest-valued last GPU first."""
        t = view.now
        heap = []
        for idx, job in self._donors.items():
            n = shrink.get(idx, job.n_gpus)
            if n > job.min_gpus:
                r = job.est_remaining_work(t)
                heap.append((self.value(job, n - 1, r), job.submit, idx, r))
        heapq.heapify(heap)
        got = 0
        while got < need and heap:
            _, sub, idx, r = heapq.heappop(heap)
            job = self._donors[idx]
            n = shrink.get(idx, job.n_gpus) - 1
            shrink[idx] = n
            got += 1
            self._donor_gpus -= 1
            if n > job.min_gpus:
                heapq.heappush(heap, (self.value(job, n - 1, r), sub, idx, r))
            else:
                del self._donors[idx]
        return got

    def _extras(
        self,
        view: ClusterView,
        started: list[Job],
        shrink: dict[int, int],
        free: int,
        out: dict[int, int],
    ) -> None:
        t = view.now
        guard = self.resize_guard * view.scenario.dynamics.scale_overhead_s
        # candidates: [job, GPUs now, running?, remaining work]
        cands: list[tuple[Job, int, bool, float]] = []
        for job in started:
            if job.elastic and job.max_gpus > job.min_gpus:
                cands.append((job, out[job.idx], False, job.est_remaining_work(t)))
        for idx, job in list(self._watch.items()):
            if job.state != RUNNING or job.n_gpus >= job.max_gpus:
                del self._watch[idx]
                continue
            if idx in shrink:
                continue
            r = job.est_remaining_work(t)
            n = job.n_gpus
            # the most any grow can save; remaining work only falls, so once this is under
            # the guard it stays there until the job's allocation changes
            if r / float(job.speedup[n]) - r / float(job.speedup[job.max_gpus]) <= guard:
                del self._watch[idx]
                continue
            cands.append((job, n, True, r))
        while cands:
            heap = [(-self.value(c[0], c[1], c[3]), c[0].submit, i) for i, c in enumerate(cands)]
            heapq.heapify(heap)
            add = [0] * len(cands)
            left = free
            while left > 0 and heap:
                negv, sub, i = heapq.heappop(heap)
                if negv >= 0:  # no gain left anywhere
                    break
                add[i] += 1
                left -= 1
                job, n0, _, r = cands[i]
                heapq.heappush(heap, (-self.value(job, n0 + add[i], r), sub, i))
            failed = {
                i
                for i, (job, n0, running, r) in enumerate(cands)
                if running
                and add[i]
                and r / float(job.speedup[n0]) - r / float(job.speedup[n0 + add[i]]) <= guard
            }
            if not failed:
                break
            cands = [c for i, c in enumerate(cands) if i not in failed]
        else:
            return
        for i, (job, n0, _, _) in enumerate(cands):
            if add[i]:
                out[job.idx] = n0 + add[i]
                if add[i] and (n0 + add[i]) > job.min_gpus:
                    self._donors[job.idx] = job
                    if cands[i][2]:
                        self._donor_gpus += add[i]
