"""Aryl's scheduler (a reconstruction, docs/model.md) and its ablations.

Each round:

1. **Base demand.** Queued jobs in shortest-first order (estimated remaining time at base
   demand; FIFO as an option) get their base demand (``gpus``, or ``min_gpus`` if elastic)
   when it fits; others are skipped (backfilling). Base demand has priority over extra
   workers: if a job's base does not fit in the free GPUs, running elastic jobs give up
   extra workers for it (the cheapest extras first), and if it would span more servers
   than it needs, they give them up on one server, or on whole servers, so that it
   starts compact (``compact_starts``, :mod:`baselines.compact_start`). A start meant for
   training GPUs is kept on them (``pin_training_starts``: ``Allocation.on_training``).
2. **Extra workers (MCKP).** The GPUs still free go to elastic jobs as extra workers: one
   option per job, ``k`` extra GPUs, valued by the reduction of its remaining time
   ``R / thr(n) - R / thr(n + k)``; solved exactly (greedy where values are concave, DP
   otherwise, see :mod:`baselines.mckp`). A running job is only grown when the time it
   saves exceeds ``resize_guard x scale_overhead_s`` (the resize guard); extra workers are
   never taken from one running job to feed another's, which is what made DeepBoot's
   one-knapsack re-implementation restart jobs ~30 times.
3. **Placement.** The engine's default placer: base workers on training servers (best
   fit, fewest servers), extra workers on lent servers first, and only on the job's own
   servers or on empty ones (``extras_own_or_empty``: extras in other servers' holes
   fragment the pool).

Reclaims use :func:`baselines.reclaim.aryl_reclaim` (or another rule by name).
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from itertools import chain

import numpy as np
from aryl_gym.baselines import mckp
from aryl_gym.baselines.compact_start import ShrinkLedger, clear_servers_for
from aryl_gym.baselines.growwatch import GrowWatch
from aryl_gym.baselines.lent_start import (
    SoonerTerms,
    late_on_lent,
    sooner_on_lent,
    training_release,
)
from aryl_gym.baselines.overdue import OverdueWatch
from aryl_gym.baselines.queue import QueueOrder, fifo_key
from aryl_gym.baselines.reclaim import RECLAIM_RULES
from aryl_gym.baselines.value_rows import ValueRows, few_rows, start_row

from aryl_gym.policy import Allocation, PlacementRules, Policy
from aryl_gym.sim.cluster import TRAINING
from aryl_gym.sim.job import RUNNING, Job
from aryl_gym.sim.view import ClusterView


@dataclass(frozen=True)
class ArylConfig:
    """The named choices of the reconstruction (defaults: the full Aryl)."""

    loaning: bool = True  # the inference pool lends idle servers
    elastic: bool = True  # elastic jobs get extra workers; False: every job at its requested GPUs
    order: str = "sjf"  # queue order of step 1: "sjf" or "fifo"
    reclaim: str = "aryl"  # a name in baselines.reclaim.RECLAIM_RULES
    inelastic_on_lent: bool = (
        True  # inelastic jobs (and, without elasticity, all jobs) may run on lent servers
    )
    resize_guard: float = (
        1.0  # grow a running job only if it saves > guard x scale_overhead_s seconds
    )
    elastic_base: str = (
        "min"  # base demand of an elastic job: "min" (docs/model.md) or "requested" (its gpus)
    )
    solver: str = "auto"  # "auto" (greedy when exact), "greedy" or "dp"
    # --- readings for slower lent GPUs (docs/model.md, "Heterogeneous pools"); no_slow_mix
    # and lent_start change nothing when lent GPUs are as fast as training GPUs,
    # elastic_base_on_training acts at any speed
    no_slow_mix: bool = True  # no job mixes training and lent GPUs unless the mix is faster
    # elastic jobs' base workers stay on training servers; off: they may start on lent GPUs
    # when the lent_start verdict says that is sooner (measured faster at 0.4x and at equal
    # speeds, docs/reproducing-aryl.md "readings")
    elastic_base_on_training: bool = False
    lent_memory_fit: bool = True  # jobs whose model does not fit a T4's memory never use lent GPUs
    # a queued job starts (partly) on lent GPUs only if it is expected to finish sooner there
    # than by waiting for training GPUs ("if_sooner"), or whenever they are free ("always")
    lent_start: str = "if_sooner"
    # a start judged not worth lent GPUs whose training GPUs come from donors shrinking in
    # the same round waits one round for them (started at once, the engine, which places a
    # round's starts on the cluster as the round found it, puts it on lent GPUs). Off by
    # default until the whole comparison is re-measured with it (aryl-15d seed 0 at 0.4:
    # avg JCT 24,612 s against 24,605 s, preemptions 618 against 1,210; docs/reproducing-aryl.md)
    hold_training_starts: bool = False
    # extra workers only on the job's own servers or on empty servers, never in the holes
    # of other jobs' servers (PlacementRules.extras_own_or_empty; docs/model.md)
    extras_own_or_empty: bool = True
    # a start whose base fits one server but finds no training server with room takes
    # extra workers back on one server rather than starting split (baselines/compact_start.py)
    compact_starts: bool = True
    # a start meant for training GPUs alone, whose pools the placement rules would decide
    # on the cluster as the round found it (so, with donors shrinking in the same round,
    # possibly slow lent GPUs), is kept on training servers (Allocation.on_training)
    pin_training_starts: bool = True
    # lent_start="if_sooner": the wait still ahead of a queued job is at least the time it
    # has waited already (ski rental: wait while the waiting costs less than lent GPUs would,
    # then start on them; never worse than twice the better choice made knowing the wait).
    # The running jobs' releases alone promise training GPUs soon to jobs that the queue
    # ahead keeps waiting: without it loaning alone equals the reference point at 0.4x
    # (aryl-15d, 5 seeds: 1.025x with it, Aryl level; docs/reproducing-aryl.md "readings")
    lent_wait_at_least_waited: bool = True
    # a job whose extra workers went to slow lent GPUs (the mix beat training GPUs alone
    # while training servers were full) moves them to training servers once these have
    # room and the move saves more than a resize costs (Allocation.to_training): growing
    # such a job adds nothing (it runs at the lent speed), so the knapsack never would.
    # Off: measured worse on aryl-15d (avg JCT +1.0 to +1.6 % on seeds 0-2; the moved
    # extras hold training GPUs that queued jobs then wait for; docs/reproducing-aryl.md)
    move_off_lent: bool = False


class ArylPolicy(Policy):
    """Aryl's allocation and reclaim heuristics, configurable into its ablations."""

    def __init__(
        self, config: ArylConfig | None = None, name: str = "aryl", description: str = ""
    ) -> None:
        self.cfg = cfg = config or ArylConfig()
        if cfg.order not in ("sjf", "fifo"):
            raise ValueError(f"ArylConfig.order must be 'sjf' or 'fifo', got {cfg.order!r}")
        if cfg.reclaim not in RECLAIM_RULES:
            raise ValueError(
                f"ArylConfig.reclaim {cfg.reclaim!r} unknown; known: {', '.join(RECLAIM_RULES)}"
            )
        if cfg.elastic_base not in ("min", "requested"):
            raise ValueError(
                f"ArylConfig.elastic_base must be 'min' or 'requested', got {cfg.elastic_base!r}"
            )
        if cfg.lent_start not in ("if_sooner", "always"):
            raise ValueError(
                f"ArylConfig.lent_start must be 'if_sooner' or 'always', got {cfg.lent_start!r}"
            )
        if cfg.solver not in ("auto", "greedy", "dp"):
            raise ValueError(f"ArylConfig.solver must be auto, greedy or dp, got {cfg.solver!r}")
        self.name = name
        self.description = description or self.__class__.__doc__
        self.uses_loaning = cfg.loaning
        self.periodic_rounds = cfg.elastic
        self.elastic_scaling = cfg.elastic
        self.rules = PlacementRules(
            extra_on_lent_first=True,
            base_on_lent=True,
            inelastic_on_lent=cfg.inelastic_on_lent,
            no_slow_mix=cfg.no_slow_mix,
            elastic_base_on_training=cfg.elastic_base_on_training,
            lent_memory_fit=cfg.lent_memory_fit,
            extras_own_or_empty=cfg.extras_own_or_empty,
        )
        self._reclaim_rule = RECLAIM_RULES[cfg.reclaim][0]
        self.rng = np.random.default_rng(0)
        # indexes of running elastic jobs, kept from the engine's log of placement changes
        # (``view.moved_log``, whoever made them) so a round never scans every running
        # job: those below their maximum that may still gain from extra workers (jobs no
        # grow could help sleep), and those above their base (the donors of step 1)
        self._watch = GrowWatch()
        self._holders = Holders()
        # move_off_lent: running elastic jobs on lent and training GPUs (kept only with it)
        self._mixed: dict[int, Job] = {}
        self._log_pos = 0
        self._idle_key: tuple | None = (
            None  # (epoch, free GPUs) of the last extras step that granted nothing
        )
        self._release_cache: tuple | None = None  # (time, training release curve)
        # free-GPU histogram -> {queued job's class and GPUs: start rate}
        self._start_rates: dict[tuple, dict[tuple, float | None]] = {}
        self._sooner_memo: dict[int, SoonerTerms] = {}  # sooner_on_lent's per-job terms
        self._overdue = OverdueWatch()  # lent_wait_at_least_waited: jobs the floor acts on
        self._top_rates: dict[int, float] = {}  # idx -> its rate at max_gpus on the fastest GPUs
        # step 1's queue order, kept across rounds; keys of waiting jobs never change
        key = self._sjf_key if cfg.order == "sjf" else fifo_key
        self._queue_key = key
        self._queue = QueueOrder(key, self._queue_group)
        self._started: list[int] = []  # jobs step 1 started in the last round
        self._view: ClusterView | None = None  # the view of the round in progress
        # per-job weights on the knapsack values of the next allocate call (job index ->
        # weight > 0; unlisted jobs 1.0): the lever of ArylGym/Round-v0, whose zero action
        # leaves them all 1.0 and so reproduces Aryl exactly. The resize guard still
        # compares the unweighted remaining-time reduction.
        self.value_weights: dict[int, float] | None = None

    def reset(self, view: ClusterView, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)
        # jobs already running when the policy takes over (e.g. started by another policy)
        self._watch.clear()
        self._holders = Holders()
        self._mixed = {}
        for j in view.running.values():
            self._index(j)
        self._log_pos = len(view.moved_log)
        self._idle_key: tuple | None = None
        self._release_cache: tuple | None = None
        self._start_rates = {}
        self._sooner_memo = {}
        self._overdue.clear()
        self._top_rates = {}
        self._queue.clear()
        self._started = []

    # ------------------------------------------------------------------ reclaim
    def reclaim(self, view: ClusterView, k: int) -> list[int]:
        return self._reclaim_rule(view, k, self.rng)

    # ------------------------------------------------------------------ allocation
    def _resize_guard(self, view: ClusterView) -> float:
        """The least time (s) a resize of a running job must save: ``resize_guard`` x the
        scenario's ``scale_overhead_s``."""
        return self.cfg.resize_guard * view.scenario.dynamics.scale_overhead_s

    def _base(self, job: Job) -> int:
        if not self.cfg.elastic or not job.elastic or self.cfg.elastic_base == "requested":
            return job.gpus
        return job.min_gpus

    def _sjf_key(self, job: Job) -> tuple:
        """Step 1's order: estimated remaining time at base demand, then submit time."""
        b = self._base(job)
        return (float(job.est_remaining_work(job.submit) / job.speedup[b]), job.submit, job.idx)

    def _queue_group(self, job: Job) -> tuple[int, bool]:
        """(base demand, may its base use lent servers by the simulator's rules): step 1
        skips a group whole once it does not fit."""
        return (self._base(job), self._view.base_may_use_lent(job))

    def allocate(self, view: ClusterView) -> Allocation:
        cfg = self.cfg
        free_t, free_l = view.free_training_gpus, view.free_lent_gpus
        out: dict[int, int] = {}
        if not view.queued and not (cfg.elastic and (free_t or free_l)):
            return Allocation(out)

        self._sync(view)
        donors: DonorRows | None = None  # built on first need: running jobs' extra workers
        # what donors could release, on training and on lent servers (their extras less
        # what this round already took back): the fit test needs only these sums
        spare_t, spare_l = self._holders.spare_t, self._holders.spare_l
        shrink: dict[int, int] = {}

        # ---- step 1: base demand, shortest first, backfilling. The queue order is kept
        # incrementally (QueueOrder); a job is skipped when its base does not fit in the
        # free GPUs plus what donors could release, and then so is every later job of the
        # same base and lending right (both only shrink during the round).
        order = self._queue
        self._view = view  # the queue's groups ask it whether a base may use lent servers
        order.sync(view.queued, self._started)
        self._started = []

        def need_donors() -> DonorRows:
            # the donors in release order, built when a start first takes extras back
            # (built any time in the round it is the same list: the policy changes no job)
            nonlocal donors
            if donors is None:
                donors = self._donors(view, self._base)
            return donors

        def fits(b: int, may_lend: bool) -> bool:
            if may_lend and b in lent_late:
                return False
            if b <= free_t + (free_l if may_lend else 0):
                return True
            if not cfg.elastic:
                return False
            return b <= free_t + spare_t + ((free_l + spare_l) if may_lend else 0)

        started: list[Job] = []
        waits: tuple | None = None  # built on first need: when training GPUs free up
        # queued jobs' start rates depend on the free-GPU histogram alone
        # (view.free_histogram): kept per histogram, which busy clusters revisit often
        if len(self._start_rates) > 20_000:
            self._start_rates.clear()
        if len(self._sooner_memo) > 100_000:
            self._sooner_memo.clear()
        start_rates: dict | None = None  # this histogram's, fetched on first need
        lent_speed = view.lent_gpu_speed
        lent_speed = 1.0 if lent_speed is None else lent_speed
        slow_lent = lent_speed < 1.0
        # training GPUs free as the round found them, less what earlier starts took: the
        # engine decides where a start goes (training, lent or both) on that cluster
        found_t = free_t
        # bases whose group (may use lent servers) is left with jobs that would all wait
        # for training GPUs this round (late_on_lent); fits skips the group's rest
        lent_late: set[int] = set()
        late: dict[int, float | None] = {}  # per base: late_on_lent's threshold
        overdue: dict[int, int] | None = None  # lent_wait_at_least_waited: OverdueWatch.counts
        # compact_starts: the round's changes, server by server (built on first start)
        ledger: ShrinkLedger | None = None
        pinned: set[int] = set()  # starts kept on training servers (Allocation.on_training)
        # each job with its group: its base and whether that may use lent servers
        for job, b, may_lend in order.ordered_groups(fits):
            rules_lend = may_lend
            if may_lend and b > free_t and slow_lent and cfg.lent_start == "if_sooner":
                if waits is None:
                    waits = self._release_curve(view)
                floor = view.now - job.queued_since if cfg.lent_wait_at_least_waited else 0.0
                if start_rates is None:
                    start_rates = self._start_rates.setdefault(view.free_histogram, {})
                may_lend = sooner_on_lent(
                    view, job, b, free_t, waits, start_rates, lent_speed, self._sooner_memo, floor
                )
                if not may_lend and not fits(b, False):
                    # waits for training GPUs, and so does every later job of its group
                    # when the verdict holds for all of them (late_on_lent)
                    if cfg.order == "sjf":
                        x = late.get(b, late)
                        if x is late:
                            x = late[b] = late_on_lent(view, b, waits, lent_speed)
                        hit = self._sooner_memo[job.idx]
                        if x is not None and hit.remaining / hit.speedup >= x:
                            # ... unless the group holds an overdue job, whose verdict
                            # the wait floor may turn (baselines/overdue.py)
                            if cfg.lent_wait_at_least_waited and overdue is None:
                                t_speed = view.scenario.cluster.training_gpu_speed
                                c = 1.0 / lent_speed - 1.0 / t_speed
                                overdue = self._overdue.counts(view, self._base, c)
                            if not overdue or not overdue.get(b):
                                lent_late.add(b)
                    continue
            # Aryl means the start for training GPUs alone (judged not worth slow lent
            # ones, or training GPUs suffice, or no lent GPU is free); the engine decides
            # a start's pools on the cluster as the round found it: training first, unless
            # the training GPUs it found fall short and slow lent GPUs could make up the
            # difference (then by the placement rules, blind to this round's shrinks and
            # to Aryl's verdict), which pin_training_starts overrides (Allocation.on_training)
            meant_training = not may_lend or b <= free_t or not free_l
            lent_decides = rules_lend and slow_lent and found_t < b <= found_t + view.free_lent_gpus
            pin = lent_decides and meant_training and cfg.pin_training_starts
            pin = pin and not cfg.hold_training_starts
            if cfg.compact_starts and cfg.elastic:
                if ledger is None:
                    ledger = ShrinkLedger(view)
                # a base that goes to training servers but would span more servers than
                # it needs: take extra workers back on one server (or on whole servers)
                # instead of splitting it
                if b > 1 and meant_training and (pin or not lent_decides):
                    ledger.sync(shrink)
                    if not ledger.counts.has_compact_room(TRAINING, b):
                        got = clear_servers_for(ledger, need_donors(), shrink, b)
                        if got is not None:
                            free_t += got[0]
                            free_l += got[1]
                            spare_t -= got[0]
                            spare_l -= got[1]
            if b > free_t + (free_l if may_lend else 0):  # fits: donors can release enough
                gained_t, gained_l = self._release(
                    need_donors(), shrink, b - free_t - (free_l if may_lend else 0), may_lend
                )
                free_t += gained_t
                free_l += gained_l
                spare_t -= gained_t
                spare_l -= gained_l
            if cfg.hold_training_starts and lent_decides and b <= free_t:
                # meant for training GPUs (judged not worth lent ones, or never judged),
                # some of which come from donors shrinking now: started in the same round
                # it would be placed as the round found the cluster and could land on slow
                # lent GPUs: hold the GPUs and start it next round (at most a round interval)
                free_t -= b
                # later starts: how much of the round-start training room is left to them
                # once GPUs are held is not followed; none is counted (conservative: they
                # are held too rather than placed on lent GPUs)
                found_t = 0
                continue
            use_t = free_t if free_t < b else b
            if ledger is not None:
                ledger.sync(shrink)
                ledger.counts.take_base(TRAINING, use_t)
            found_t -= found_t if found_t < b else b
            free_t -= use_t
            free_l -= b - use_t
            out[job.idx] = b
            started.append(job)
            if pin:
                pinned.add(job.idx)
        self._started = [j.idx for j in started]
        for idx, n in shrink.items():
            out[idx] = n
        moves: set[int] = set()
        if cfg.move_off_lent and cfg.elastic and slow_lent and free_t > 0 and self._mixed:
            free_t, free_l = self._move_off_lent(view, out, pinned, moves, free_t, free_l)
        base_out = dict(out)

        # ---- step 2: extra workers by MCKP over the GPUs still free. When the last extras
        # step granted nothing and neither the allocation nor the free GPUs changed since,
        # it would grant nothing again (values only fall as remaining work falls): skip it.
        if cfg.elastic and free_t + free_l > 0:
            key = (view.allocation_epoch, free_t, free_l)
            if out or key != self._idle_key:
                self._extras(view, started, shrink.keys() | moves, free_t + free_l, out)
                self._idle_key = key if not out else None
        if slow_lent and len(started) > 1:
            _bases_before_extras(out, base_out, started)
        if out:
            _fit(view, out, base_out, pinned, moves)
            pinned = {i for i in pinned if out.get(i, 0) > 0}
        return Allocation(out, on_training=frozenset(pinned), to_training=frozenset(moves))

    def _move_off_lent(
        self,
        view: ClusterView,
        out: dict[int, int],
        pinned: set[int],
        moves: set[int],
        free_t: int,
        free_l: int,
    ) -> tuple[int, int]:
        """``move_off_lent``: jobs on slow lent and training GPUs whose lent workers would
        run faster on training servers (the simulator's what-if,
        ``view.rate_moved_to_training``) by more than a resize costs move there
        (``Allocation.to_training``), where step 1's changes leave room (``view.can_place``
        counts the moves before the round's starts and grows). Returns the free training
        and lent GPUs left for step 2."""
        guard = self._resize_guard(view)
        t = view.now
        for idx in sorted(self._mixed):
            job = self._mixed[idx]
            lent = job.lent_gpus
            if lent > free_t or idx in out or not job.rate:
                continue
            rate = view.rate_moved_to_training(job)
            if rate is None:
                continue
            r = job.est_remaining_work(t)
            if r / job.rate - r / rate <= guard:
                continue
            if not view.can_place(out, on_training=pinned, to_training=moves | {idx}):
                continue
            moves.add(idx)
            free_t -= lent
            free_l += lent
        return free_t, free_l

    def _sync(self, view: ClusterView) -> None:
        """Bring the job indexes up to date with the placement changes since last time."""
        log = view.moved_log
        if self._log_pos < len(log):
            for idx in dict.fromkeys(log[self._log_pos :]):
                self._index(view.job(idx))
            self._log_pos = len(log)

    def _index(self, job: Job) -> None:
        if self.cfg.elastic and job.elastic and job.state == RUNNING:
            if job.n_gpus < job.max_gpus:
                self._watch.add(job)
            else:
                self._watch.drop(job.idx)
            extra = job.n_gpus - self._base(job)
            if extra > 0:
                self._holders.put(job, extra)
            else:
                self._holders.drop(job.idx)
            if self.cfg.move_off_lent:
                if 0 < job.lent_gpus < job.n_gpus:
                    self._mixed[job.idx] = job
                else:
                    self._mixed.pop(job.idx, None)
        else:
            self._watch.drop(job.idx)
            self._holders.drop(job.idx)
            self._mixed.pop(job.idx, None)

    #: the release curve of training GPUs is recomputed at most this often (simulated
    #: seconds): an estimate for a heuristic, cheap enough for every round
    RELEASE_CURVE_TTL_S = 300.0

    def _release_curve(self, view: ClusterView):
        """:func:`training_release`, reused for ``RELEASE_CURVE_TTL_S``."""
        cached = self._release_cache
        if cached is None or view.now - cached[0] > self.RELEASE_CURVE_TTL_S:
            self._release_cache = cached = (view.now, training_release(view))
        return cached[1]

    def _donors(self, view: ClusterView, base) -> DonorRows:
        """Running elastic jobs with extra workers, least time saved per extra GPU first:
        ``[per-GPU value, idx, job, extras left, lent GPUs left]``. The value of a job's
        extras is the remaining-time increase of shrinking it to its base, at the rates
        the engine would apply (``view.rate_with``; a shrink's rate depends on the job's
        own placement only, so it is kept while the job does not move: Holders.shrunk).
        One array pass over the holders (their remaining work: view.est_remaining_works),
        the same float operations per job as ``(r / shrunk - r / rate) / extra``."""
        holders = self._holders
        jobs = holders.jobs
        k = len(jobs)
        if not k:
            return []
        ids = np.fromiter(jobs, dtype=np.int64, count=k)
        shrunk = holders.shrunk[ids]
        unknown = np.isnan(shrunk)
        if unknown.any():  # the holders that moved since their last shrink rate
            for i in np.flatnonzero(unknown).tolist():
                idx = int(ids[i])
                job = jobs[idx]
                shrunk[i] = holders.shrunk[idx] = view.rate_with(job, base(job))
        extra = holders.extra[ids]
        lent = holders.lent[ids]
        rate = view.job_columns(ids)[0]
        r = view.est_remaining_works(ids)
        per_gpu = (r / shrunk - r / rate) / extra
        # by (per-GPU value, idx), as a sort of the rows as lists would order them
        order = np.lexsort((ids, per_gpu))
        return DonorRows(
            per_gpu[order], ids[order], list(jobs.values()), order, extra[order], lent[order]
        )

    @staticmethod
    def _release(
        donors: DonorRows, shrink: dict[int, int], need: int, may_lend: bool
    ) -> tuple[int, int]:
        """Take extra workers off donors until ``need`` usable GPUs are free. Removing
        workers frees lent GPUs first (the placer's rule), which only jobs that may run on
        lent servers can use. Returns the GPUs freed on training and on lent servers."""
        got_t = got_l = 0
        for d in donors:
            usable = got_t + (got_l if may_lend else 0)
            if usable >= need:
                break
            _, idx, job, extra, lent = d
            if extra == 0 or (not may_lend and extra <= lent):
                continue  # nothing usable: its extras are all on lent servers
            # how many workers this donor must drop to yield the missing usable GPUs
            missing = need - usable
            r = min(extra, missing) if may_lend else min(extra, lent + missing)
            from_l = min(r, lent)
            got_l += from_l
            got_t += r - from_l
            d[3] -= r
            d[4] -= from_l
            shrink[idx] = shrink.get(idx, job.n_gpus) - r
        return got_t, got_l

    def _extras(
        self,
        view: ClusterView,
        started: list[Job],
        busy: Container[int],
        capacity: int,
        out: dict[int, int],
    ) -> None:
        """Step 2: extra workers by MCKP over the value rows of :meth:`value_rows`: one
        option per candidate within the free ``capacity``, exact (greedy where values are
        concave, DP otherwise: :mod:`baselines.mckp`); a running job's pick that fails the
        resize guard is dropped and the rest solved again."""
        rows = self.value_rows(view, started, busy, capacity)
        if rows is None:
            return
        guard = self._resize_guard(view)
        jobs, bases, lengths, tops = rows.jobs, rows.bases, rows.lengths, rows.tops
        weights, solver = self.value_weights, self.cfg.solver
        if solver == "auto" and not weights and sum(tops) <= capacity:
            # every row's best option fits at once: that is the knapsack's answer
            # (mckp.solve_matrix's first case), and each grow's best beats the guard (the
            # rows' test), so no pass drops one: granted without building the matrix
            for job, b, k in zip(jobs, bases, tops, strict=True):
                if k > 0:
                    out[job.idx] = b + k
            return
        m, filled = rows.matrix()
        lens = np.array(lengths, dtype=np.int64)
        running = np.arange(len(jobs)) >= rows.n_start
        failed = np.zeros(0, dtype=bool)
        for attempt in range(3):  # later passes drop grows that fail the resize guard
            values = m
            if weights:
                w = np.array([weights.get(j.idx, 1.0) for j in jobs])
                values = np.full(m.shape, -np.inf)  # the padding stays -inf
                np.multiply(m, w[:, None], out=values, where=filled)
            if solver == "auto":
                picks = mckp.solve_matrix(values, lens, capacity)
            else:
                vrows = [values[i, :n] for i, n in enumerate(lengths)]
                if solver == "dp":
                    picks = mckp.solve_dp(vrows, capacity)
                else:
                    picks = mckp.solve_greedy(vrows, capacity)
            k = np.array(picks, dtype=np.int64)
            failed = running & (k > 0) & (m[np.arange(len(jobs)), k] <= guard)
            if not failed.any() or attempt == 2:
                break
            kept = np.flatnonzero(~failed)
            if not kept.size:
                return  # every candidate's pick failed the guard: no grow this round
            jobs = [jobs[i] for i in kept]
            bases = [bases[i] for i in kept]
            lengths = [lengths[i] for i in kept]
            lens = lens[kept]
            width = int(lens.max())  # as a matrix built from the kept rows alone
            m, filled, running = m[kept, :width], filled[kept, :width], running[kept]
        for job, b, k, bad in zip(jobs, bases, picks, failed.tolist(), strict=True):
            if k > 0 and not bad:
                out[job.idx] = b + k

    def value_rows(
        self, view: ClusterView, started: list[Job], busy: Container[int], capacity: int
    ) -> ValueRows | None:
        """Step 2's candidates and their values, or None when there is none: the round's
        elastic starts (``started``, at their base) and the running elastic jobs the grow
        watch holds awake (not in ``busy``: shrunk or moved this round) whose best grow
        within ``capacity`` free GPUs beats the resize guard. Option ``k`` of a job at
        ``n`` GPUs is worth ``R / rate(n) - R / rate(n + k)``, the remaining-time reduction
        at the rates the engine would apply where the placer would put the workers
        (``view.start_curve`` and ``view.rate_curves``, the same floats as
        ``view.rate_with``: speedup x placement factor x slowest GPU's speed). Values may
        be negative (a grow that splits a job or adds slower GPUs) and non-concave.
        Updates the grow watch (``tests/test_aryl_values.py`` checks every value against
        the engine)."""
        t = view.now
        guard = self._resize_guard(view)
        c = view.scenario.cluster
        t_speed, i_speed = c.training_gpu_speed, c.inference_gpu_speed
        fastest = i_speed if i_speed > t_speed else t_speed  # max() without the call
        # jobs starting this round: (job, base GPUs, value per option k = 0 .. kmax)
        cands: list[tuple[Job, int, list[float] | np.ndarray, int]] = []  # ..., first maximum
        for job in started:
            base = self._base(job)
            if job.elastic and job.max_gpus > base:
                # the start's rates from its base up to its maximum or the free capacity
                curve = view.start_curve(job, base, min(job.max_gpus, base + capacity))
                if len(curve) > 1 and curve[0]:
                    v = start_row(job.est_remaining_work(t), curve)
                    if v is not None:
                        cands.append((job, base, *v))
        watch = self._watch
        top_rates = self._top_rates
        watch.wake(view)
        if not cands and not watch.awake:
            return None  # nothing to grow (most rounds of a busy cluster)
        # running candidates, their remaining work, view.bound_levels (the cluster does not
        # change during the round: what it was at the bound check) and the largest count
        # within the free GPUs (the bound's and the rate curve's)
        grow: list[tuple[Job, float, tuple, int]] = []
        grow_bound, sleep = view.grow_bound, watch.sleep  # called per candidate
        for idx, job in watch.items():
            n, n_max = job.n_gpus, job.max_gpus
            if job.state != RUNNING or n >= n_max:
                watch.drop(idx)
                continue
            rate = job.rate
            if idx in busy or not rate:  # shrunk or moved this round
                continue
            r = job.est_remaining_work(t)
            time_now = r / rate
            # the largest gain any grow could bring (compact placement on the fastest GPUs);
            # remaining work only falls, so a job that cannot beat the guard now never will
            # at this allocation: stop watching it (a scale-in puts it back)
            top = top_rates.get(idx)
            if top is None:  # what the job is alone decides it
                top = top_rates[idx] = float(job.speedup[n_max]) * fastest
            if time_now - r / top <= guard:
                watch.drop(idx)
                continue
            # the simulator's bound of the rate any grow within the GPUs free now could
            # bring (e.g. a job on full servers must split): skip the job, and let it
            # sleep until the free GPUs could let it pass (baselines/growwatch.py)
            n_top = n + capacity if n + capacity < n_max else n_max
            bound, levels = grow_bound(job, n_top)
            if not bound or time_now - r / bound <= guard:
                sleep(view, job, r, guard, levels)
                continue
            grow.append((job, r, levels, n_top))
        jobs = [c[0] for c in cands]  # the candidates' rows: starts first, then grows
        bases = [c[1] for c in cands]
        lengths = [len(c[2]) for c in cands]
        # each row's best option, its first maximum (a start's is worth more than 0)
        tops = [c[3] for c in cands]
        # the running candidates' value arrays as one flat sequence (row after row): the
        # same float operations as ``r / rates[0] - r / np.asarray(rates)`` row by row,
        # in plain Python for a few rows (few_rows), else in numpy
        flat = np.zeros(0)
        if grow:  # the simulator's rate curves of all running candidates at once
            grow.sort(key=lambda jr: jr[0].idx)  # the solver's ties must not depend on wakes
            curves = view.rate_curves([g[0] for g in grow], [g[3] for g in grow])
            rows = few_rows(grow, curves, guard) if len(grow) <= _FEW_ROWS else None
            if rows is not None:
                flat = []
                for i, values, k_top in rows:
                    job = grow[i][0]
                    jobs.append(job)
                    bases.append(job.n_gpus)
                    lengths.append(len(values))
                    tops.append(k_top)
                    flat += values
            else:
                sizes = np.fromiter(map(len, curves), dtype=np.int64, count=len(curves))
                rates = np.fromiter(
                    chain.from_iterable(curves), dtype=float, count=int(sizes.sum())
                )
                firsts = np.cumsum(sizes) - sizes
                r = np.repeat(
                    np.fromiter((g[1] for g in grow), dtype=float, count=len(grow)), sizes
                )
                flat = r / np.repeat(rates[firsts], sizes) - r / rates
                # a row's largest value is r / rates[0] - r / max(rates) bit for bit (r > 0:
                # rounded division and subtraction are monotone), the test the rows pass
                best = np.maximum.reduceat(flat, firsts)
                keep = (sizes > 1) & (best > guard)
                kept = np.flatnonzero(keep)
                # each kept row's first maximum, found in one pass (its maximum is in the
                # row: a row holding NaN has a NaN best and is not kept); 0 when the best
                # is not > 0
                at_best = np.flatnonzero(flat == np.repeat(best, sizes))
                row_firsts = firsts[kept]
                k_top = at_best[np.searchsorted(at_best, row_firsts)] - row_firsts
                grown = [grow[i][0] for i in kept.tolist()]
                jobs += grown
                bases += [job.n_gpus for job in grown]
                lengths += sizes[kept].tolist()
                tops += np.where(best[kept] > 0, k_top, 0).tolist()
                flat = flat[np.repeat(keep, sizes)]
            # back to sleep at once: the next round wakes each again (and checks it) while
            # the free GPUs still reach its threshold, and skips the check it would fail
            # once they do not (the usual case: a server empties, a hundred candidates
            # wake, one of them takes the server); a grow wakes it anyway
            watch.sleep_all(grow, guard)
        if not jobs:
            return None
        return ValueRows(jobs, bases, lengths, tops, [c[2] for c in cands], flat)


#: step 2 builds the value rows of at most this many running candidates in plain Python
#: (numpy's per-call cost outweighs its speed on a few short rows)
_FEW_ROWS = 16


class DonorRows:
    """:meth:`ArylPolicy._donors`' rows ``[per-GPU value, idx, job, extras left, lent GPUs
    left]`` in release order, made into lists as an iteration first reaches them (a few
    dozen at a time): a round's starts mostly take back the first few of hundreds.
    Iterating again yields the same row lists, with what earlier passes changed."""

    __slots__ = ("_cols", "_jobs", "_rows")

    CHUNK = 32

    def __init__(self, per_gpu, ids, jobs: list[Job], order, extra, lent) -> None:
        self._cols = (per_gpu, ids, order, extra, lent)  # arrays, in release order
        self._jobs = jobs  # the holders' jobs, in the order ``order`` indexes
        self._rows: list[list] = []

    def __iter__(self):
        rows = self._rows
        i = 0
        while True:
            if i == len(rows) and not self._more():
                return
            yield rows[i]
            i += 1

    def _more(self) -> bool:
        """Make the next chunk of rows; False when every row is made."""
        a = len(self._rows)
        per_gpu, ids, order, extra, lent = (col[a : a + self.CHUNK] for col in self._cols)
        jobs = map(self._jobs.__getitem__, order.tolist())
        self._rows += map(
            list,
            zip(per_gpu.tolist(), ids.tolist(), jobs, extra.tolist(), lent.tolist(), strict=True),
        )
        return len(self._rows) > a


class Holders:
    """Running elastic jobs above their base (step 1's donors) by index, and the sums of
    their extra workers on training and on lent servers (a shrink removes lent workers
    first), kept as jobs move so a round's fit test needs no pass over them. Their extras,
    lent GPUs and rate at base are kept in arrays by job index too, so that the donors'
    values are one array pass (ArylPolicy._donors)."""

    __slots__ = ("jobs", "extra", "lent", "shrunk", "shares", "spare_t", "spare_l")

    def __init__(self) -> None:
        self.jobs: dict[int, Job] = {}
        # by job index, read for the holders only: extras and lent GPUs when put, and the
        # rate at its base (NaN until ArylPolicy._donors needs it): a shrink's rate depends
        # on the job's own placement only, so it holds until the job moves (put)
        self.extra = np.zeros(0, dtype=np.int64)
        self.lent = np.zeros(0, dtype=np.int64)
        self.shrunk = np.zeros(0)
        # a holder's extras on training and on lent servers (a shrink removes lent ones
        # first, so its lent GPUs are extras up to its count of extras), as put
        self.shares: dict[int, tuple[int, int]] = {}
        self.spare_t = self.spare_l = 0

    def put(self, job: Job, extra: int) -> None:
        """``job`` holds ``extra`` > 0 workers above its base now."""
        idx = job.idx
        self.drop(idx)
        if idx >= len(self.extra):  # room for more job indexes (doubling)
            size = max(2 * len(self.extra), idx + 1, 1024)
            self.extra = _extended(self.extra, size, 0)
            self.lent = _extended(self.lent, size, 0)
            self.shrunk = _extended(self.shrunk, size, np.nan)
        lent = job.lent_gpus
        self.jobs[idx] = job
        self.extra[idx] = extra
        self.lent[idx] = lent
        self.shrunk[idx] = np.nan
        on_t, on_l = self.shares[idx] = (extra - lent, lent) if extra > lent else (0, extra)
        self.spare_t += on_t
        self.spare_l += on_l

    def drop(self, idx: int) -> None:
        if self.jobs.pop(idx, None) is not None:
            on_t, on_l = self.shares.pop(idx)
            self.spare_t -= on_t
            self.spare_l -= on_l

    def copy(self) -> Holders:
        other = Holders()
        other.jobs = dict(self.jobs)
        other.extra, other.lent, other.shrunk = (
            self.extra.copy(),
            self.lent.copy(),
            self.shrunk.copy(),
        )
        other.shares = dict(self.shares)
        other.spare_t, other.spare_l = self.spare_t, self.spare_l
        return other


def _extended(a: np.ndarray, size: int, fill) -> np.ndarray:
    """``a`` followed by ``fill`` up to ``size`` elements (same dtype)."""
    return np.concatenate([a, np.full(size - len(a), fill, dtype=a.dtype)])


def _bases_before_extras(out: dict[int, int], base_out: dict[int, int], started) -> None:
    """Put the round's starts that step 2 also grew after the other starts. The engine
    places grows in the mapping's order and decides each grow's pools on the cluster as the
    round found it: a start's extra workers that step 2 counted on lent GPUs but that
    ``no_slow_mix`` keeps on training servers (faster than a mix) would otherwise take the
    training GPUs step 1 counted for a later start's base, which then lands on slow lent
    GPUs for its whole run. Placed after, such a grow that no longer fits falls back to its
    base (:func:`_fit`)."""
    starts = [job.idx for job in started]
    grown = [i for i in starts if out[i] > base_out[i]]
    if not grown or grown == starts[len(starts) - len(grown) :]:
        return  # already last
    grown_set, start_set = set(grown), set(starts)
    order = [i for i in starts if i not in grown_set] + grown
    order += [i for i in out if i not in start_set]  # shrinks, then running jobs' grows
    moved = {i: out[i] for i in order}
    out.clear()
    out.update(moved)


def _fit(
    view: ClusterView,
    out: dict[int, int],
    base_out: dict[int, int],
    pinned: set[int],
    moves: set[int],
) -> None:
    """Steps 1 and 2 count free GPUs per pool the simple way (training first, then lent;
    step 2 both pools as one capacity), but the placer's rules can make a grow take
    another pool (``no_slow_mix`` may start a job on lent GPUs alone, or keep a job's
    extras on training servers) that a later grow needed. The simulator's one-pass fit
    says what can be placed: extras that cannot fall back to what step 1 gave, starts
    that cannot wait for a later round (nothing changes when everything fits)."""
    fitted = view.fit(out, base_out, on_training=pinned, to_training=moves)
    if fitted != out:
        out.clear()
        out.update(fitted)
