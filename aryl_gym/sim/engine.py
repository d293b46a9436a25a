"""The event-driven simulator: a stepper that stops at decision points.

::

    engine = Engine(scenario, jobs, demand, seed=0, uses_loaning=True)
    point = engine.advance()            # run events until a decision is due; None at the end
    while point is not None:
        if point.kind == "reclaim":
            engine.decide_reclaim(policy.reclaim(point.view, point.k))
        else:
            engine.decide_allocation(policy.allocate(point.view))
        point = engine.advance()

:class:`aryl_gym.sim.driver.Driver` runs this loop for a policy (and stops where a
caller wants to decide itself).

Events: job arrivals, completions, inference-demand changes (which lend or reclaim
servers), delayed lends and, for policies that ask for them, periodic rounds. All
events at one instant are processed together and make at most one round; an instant
that changed nothing makes none. Work per event is O(servers touched + jobs touched);
nothing scans all jobs or all servers.
"""

from __future__ import annotations

import copy
import heapq
import math
import reprlib
from collections import deque
from collections.abc import Mapping, Set
from dataclasses import dataclass
from typing import Any

import numpy as np

from aryl_gym.sim.cluster import LENT, Cluster
from aryl_gym.sim.decisions import Allocation, InvalidDecision, PlacementRules
from aryl_gym.sim.events import FINISH, PREEMPT, RESIZE, START, EventLog
from aryl_gym.sim.job import DONE, QUEUED, RUNNING, Job
from aryl_gym.sim.metrics import MetricsRecorder
from aryl_gym.sim.placer import ONLY_TRAINING, Placer
from aryl_gym.sim.profiles import get_profile
from aryl_gym.sim.reclaim import ReclaimEffect, lost_gpu_seconds, scales_in
from aryl_gym.sim.view import ClusterView

RECLAIM, ALLOCATE = "reclaim", "allocate"

__all__ = ["ALLOCATE", "RECLAIM", "DecisionPoint", "Engine", "InvalidDecision"]


@dataclass(frozen=True)
class DecisionPoint:
    """Where the engine waits for the policy: ``kind`` is "reclaim" (give back ``k`` lent
    servers) or "allocate" (a scheduling round)."""

    kind: str
    view: ClusterView
    k: int = 0


class Engine:
    """Simulates one episode of a scenario. See the module docstring for the loop.

    ``scenario`` is any object with the fields of :class:`aryl_gym.config.ScenarioConfig`
    that the engine reads (``name``, ``cluster``, ``dynamics``, ``inference.reserve_servers``,
    ``max_time_s``, ``max_drain_s``, ``window``); ``jobs`` any table with the columns of
    :class:`aryl_gym.workload.schema.JobTable`. The simulator imports neither: it sits
    below the layers that define them.

    ``event_log``: an :class:`~aryl_gym.sim.events.EventLog` that records every
    allocation change, preemption, completion, lend and reclaim; ``None`` (the default)
    records nothing.
    """

    def __init__(
        self,
        scenario,
        jobs,
        demand: tuple[np.ndarray, np.ndarray],
        *,
        seed: int = 0,
        uses_loaning: bool = True,
        periodic_rounds: bool = False,
        elastic_scaling: bool = True,
        rules: PlacementRules | None = None,
        check_invariants: bool = False,
        sample_interval_s: float = 600.0,
        event_log: EventLog | None = None,
    ) -> None:
        self.scenario = scenario
        self.dyn = scenario.dynamics
        self.cluster = Cluster(scenario.cluster)
        self.table = jobs
        self.uses_loaning = uses_loaning
        self.periodic_rounds = periodic_rounds
        self.elastic_scaling = elastic_scaling
        self.rules = rules or PlacementRules()
        self.placer = Placer(self.cluster, self.rules)
        self.check = check_invariants
        self.event_log = event_log  # None: no recording (one test per hook)
        self.view = ClusterView(self)
        self.t = 0.0

        n = len(jobs)
        self._validate_capacity(jobs)
        rng = np.random.default_rng(seed)
        sigma = self.dyn.duration_noise_sigma
        self._est = np.exp(rng.normal(0.0, sigma, n)) if sigma > 0 else np.ones(n)
        max_g = int(max(jobs.max_gpus.max(initial=1), jobs.gpus.max(initial=1)))
        tables = {}
        for name in set(jobs.profile.tolist()):
            prof = get_profile(name)
            table = prof.speedup_table(max_g)
            tables[name] = (prof, table, table.tolist())  # Job.speedups: shared per profile
        self._profiles = tables
        self._submit = jobs.submit_time.tolist()
        # columns as Python lists: an arrival reads them without numpy scalar conversions
        self._cols = (
            jobs.gpus.tolist(), jobs.min_gpus.tolist(), jobs.max_gpus.tolist(),
            jobs.elastic.tolist(), jobs.duration.tolist(), self._est.tolist(),
        )  # fmt: skip
        limits = [x for x in (scenario.max_time_s,) if x is not None]
        if scenario.max_drain_s is not None:
            limits.append((self._submit[-1] if self._submit else 0.0) + scenario.max_drain_s)
        self._time_limit = min(limits) if limits else None
        self.jobs: list[Job | None] = [None] * n
        # the running jobs' progress terms by job index, written wherever the engine writes
        # them on a Job (_mirror): what-if answers over many jobs (est_remaining_works) are
        # then one array pass instead of one Python call per job
        self._work = np.zeros(n)
        self._progress = np.zeros(n)
        self._rate = np.zeros(n)
        self._run_from = np.full(n, math.inf)
        self._pause_until = np.zeros(n)
        self._n_training = np.zeros(n, dtype=np.int64)  # GPUs on training servers
        self.queue: dict[int, Job] = {}
        self.running: dict[int, Job] = {}
        self.n_done = 0
        self._next_arrival = 0

        d_times, d_needed = demand
        self._d_times = np.asarray(d_times, dtype=float).tolist()
        self._d_needed = np.asarray(d_needed, dtype=np.int64).tolist()
        self._d_next = 0
        self.needed = 0
        self.reserve = scenario.inference.reserve_servers
        self._pending_lends: deque[float] = deque()  # times of scheduled (delayed) lends
        self._pending_reclaim = 0
        # servers returned early and held back from training (return_early); a demand rise
        # uses them up before it reclaims a lent server. 0 unless a caller returns early,
        # and then every lend and reclaim is what it was before these lines existed.
        self.held = 0
        self._loanable_raw: int | None = None  # loanable servers at the last demand change
        self.early_returns = 0  # servers given back by return_early
        self.early_return_preemptions = 0
        self.lost_gpu_seconds = 0.0  # lost by every preemption so far (reclaims, policies)

        self._heap: list[tuple[float, int, int, int]] = []  # (time, seq, job idx, version)
        self._seq = 0
        self._round_due = False
        self._next_timer = self.dyn.round_interval_s if periodic_rounds else math.inf
        self._waiting: DecisionPoint | None = None
        self._allocate_point = DecisionPoint(ALLOCATE, self.view)  # immutable: one suffices
        self._stalled = False
        self.finished = False
        self.rounds = 0
        self.scaled_in_log: list[int] = []  # jobs scaled in by reclaims, in order
        self.moved_log: list[int] = []  # jobs whose placement changed (any cause), in order
        self.events = 0
        self.reclaim_events = 0
        self.reclaimed_servers = 0
        self.reclaim_preemptions = 0  # preemptions caused by reclaims (not by policies)
        self.grows_cut = 0  # grows cut short by PlacementRules.extras_own_or_empty
        self.metrics = MetricsRecorder(self, sample_interval_s)
        if self._d_times and self._d_times[0] <= 0.0:
            self._apply_demand(0.0)

    # ------------------------------------------------------------------ construction
    def _validate_capacity(self, jobs) -> None:
        cfg = self.scenario.cluster
        cap = cfg.training_gpus + (cfg.inference_gpus if self.uses_loaning else 0)
        base = (
            np.where(jobs.elastic, jobs.min_gpus, jobs.gpus) if self.elastic_scaling else jobs.gpus
        )
        bad = np.flatnonzero(base > cap)
        if bad.size:
            i = int(bad[0])
            where = "training pool" + (" + inference pool" if self.uses_loaning else "")
            raise ValueError(
                f"{jobs.source}: job {jobs.job_id[i]!r} (row {i + 1}) needs {int(base[i])} GPUs "
                f"but the {where} of scenario {self.scenario.name!r} has only {cap}; "
                f"{bad.size} job(s) can never run"
            )

    # ------------------------------------------------------------------ stepping
    def advance(self) -> DecisionPoint | None:
        """Run events until a decision is due and return it, or ``None`` when the episode ends."""
        if self._waiting is not None:
            raise RuntimeError(f"decide on the pending {self._waiting.kind} point before advancing")
        while True:
            if self._pending_reclaim > 0:
                self._waiting = DecisionPoint(RECLAIM, self.view, self._pending_reclaim)
                return self._waiting
            if self._round_due:
                self._round_due = False
                self.rounds += 1
                self._waiting = self._allocate_point
                return self._waiting
            if self.finished:
                return None
            t = self._next_event_time()
            limit = self._time_limit
            if t is None:
                self._end(self.t, at_limit=False)
                return None
            if limit is not None and t > limit:
                self._end(limit, at_limit=True)
                return None
            self._process(t)

    def _next_event_time(self) -> float | None:
        arrivals_left = self._next_arrival < len(self._submit)
        if not arrivals_left and not self.queue and not self.running:
            return None  # every job arrived and finished
        if self._stalled:
            return None
        t = self._heap[0][0] if self._heap else math.inf
        if arrivals_left:
            a = self._submit[self._next_arrival]
            if a < t:
                t = a
        if self._d_next < len(self._d_times):
            d = self._d_times[self._d_next]
            if d < t:
                t = d
        if self._pending_lends:
            p = self._pending_lends[0]
            if p < t:
                t = p
        if self._next_timer < t and (self.queue or self.running):
            t = self._next_timer
        return None if t == math.inf else t

    def _process(self, t: float) -> None:
        """Every event at instant ``t``; sets ``_round_due`` when anything changed."""
        self.metrics.advance_to(t)
        self.t = t
        changed = False
        heap = self._heap
        if heap and heap[0][0] <= t:
            jobs, pop = self.jobs, heapq.heappop
            while heap and heap[0][0] <= t:
                _, _, idx, version = pop(heap)
                job = jobs[idx]
                if job.version == version and job.state == RUNNING:
                    self._complete(job, t)
                    changed = True
                    self.events += 1
        submit, i = self._submit, self._next_arrival
        if i < len(submit) and submit[i] <= t:
            n = len(submit)
            while i < n and submit[i] <= t:
                self._arrive(i, t)
                i += 1
                self.events += 1
            self._next_arrival = i
            changed = True
        while self._pending_lends and self._pending_lends[0] <= t:
            self._pending_lends.popleft()
            self.cluster.lend(t)
            if self.event_log is not None:
                self.event_log.record_lend(t, self.cluster)
            changed = True
            self.events += 1
        while self._d_next < len(self._d_times) and self._d_times[self._d_next] <= t:
            changed |= self._apply_demand(t)
            self.events += 1
        if self._next_timer <= t:
            while self._next_timer <= t:
                self._next_timer += self.dyn.round_interval_s
            if self.queue or self.running:
                changed = True
                self.events += 1
        if self._pending_reclaim == 0 and changed and (self.queue or self.running):
            self._round_due = True
        if self.check:
            self.check_invariants()

    # ------------------------------------------------------------------ inference side
    def _apply_demand(self, t: float) -> bool:
        self.needed = self._d_needed[self._d_next]
        self._d_next += 1
        if not self.uses_loaning:
            return False
        loanable = max(0, self.scenario.cluster.inference_servers - self.needed - self.reserve)
        if self.held:  # the servers returned early cover a rise first, then stay held back
            prev, self._loanable_raw = self._loanable_raw, loanable
            if prev is not None and loanable < prev:
                self.held -= min(self.held, prev - loanable)
            loanable = max(0, loanable - self.held)
        else:
            self._loanable_raw = loanable
        return self._lend_up_to(loanable, t)

    def _lend_up_to(self, loanable: int, t: float) -> bool:
        """Lend (now or after the loan delay) or cancel and reclaim toward ``loanable``
        lent servers; True when a server was lent at ``t``."""
        committed = self.cluster.n_lent + len(self._pending_lends)
        if loanable > committed:
            when = t + self.dyn.loan_delay_s
            for _ in range(loanable - committed):
                if when <= t:
                    self.cluster.lend(t)
                    if self.event_log is not None:
                        self.event_log.record_lend(t, self.cluster)
                else:
                    self._pending_lends.append(when)
            return when <= t
        while committed > loanable and self._pending_lends:
            self._pending_lends.pop()  # cancel the latest scheduled lends first
            committed -= 1
        if loanable < self.cluster.n_lent:
            self._pending_reclaim = self.cluster.n_lent - loanable
        return False

    def decide_reclaim(self, servers) -> ReclaimEffect:
        """Give back the chosen lent servers (in order), scaling in or preempting their jobs;
        returns what it did (the same :class:`ReclaimEffect` ``view.reclaim_effect`` predicts)."""
        point = self._peek_point(RECLAIM)
        servers = _server_ids(
            servers, f"reclaim: expected a sequence of {point.k} lent server ids", "reclaimed"
        )
        if len(servers) != point.k or len(set(servers)) != point.k:
            raise InvalidDecision(f"reclaim needs {point.k} distinct lent servers, got {servers}")
        self._check_lent(servers)
        self._waiting = None
        effect = self._remove_servers(servers)
        self.reclaim_preemptions += len(effect.preempted)
        self._pending_reclaim = 0
        self.reclaim_events += 1
        self.reclaimed_servers += len(servers)
        self._round_due = True
        if self.check:
            self.check_invariants()
        return effect

    def _check_lent(self, servers: list[int]) -> None:
        for s in servers:
            if not (0 <= s < self.cluster.n_servers) or not self.cluster.lent[s]:
                raise InvalidDecision(f"server {s} is not lent (lent: {self.cluster.lent_order})")

    def _remove_servers(self, servers: list[int]) -> ReclaimEffect:
        """Give back lent ``servers`` in order (the removal rule of
        :mod:`aryl_gym.sim.reclaim`); what it did."""
        t = self.t
        effect = ReclaimEffect()
        for s in servers:
            if self.event_log is not None:
                self.event_log.begin_reclaim(t, s, self.cluster)
            for idx, k in list(self.cluster.jobs_on[s].items()):
                job = self.jobs[idx]
                if scales_in(job, job.n_gpus, k):
                    new = dict(job.placement)
                    del new[s]
                    self._reallocate(job, new, t)
                    self.scaled_in_log.append(idx)
                    effect.scaled_in.append(idx)
                else:
                    effect.preempt(idx, self._preempt(job, t))
            self.cluster.give_back(s)
        if self.event_log is not None:
            self.event_log.end_reclaim()
        return effect

    def return_early(self, servers) -> ReclaimEffect:
        """Give back lent ``servers`` before the inference side asks (a reclaim *ahead* of
        the demand) and hold them back from training: ``held`` grows by their number, the
        next demand rises use the held servers up before any lent one is reclaimed, and
        :meth:`release_holds` lends them again. Only at a pending allocate point (the
        round then sees the cluster without them). Same removal rule as a reclaim."""
        point = self._peek_point(ALLOCATE)
        servers = _server_ids(
            servers, "return_early: expected a sequence of server ids", "returned"
        )
        if len(set(servers)) != len(servers):
            raise InvalidDecision(f"return_early needs distinct lent servers, got {servers}")
        self._check_lent(servers)
        effect = self._remove_servers(servers)
        self.held += len(servers)
        self.early_returns += len(servers)
        self.early_return_preemptions += len(effect.preempted)
        self._waiting = point  # the round still waits for its allocation
        if self.check:
            self.check_invariants()
        return effect

    def release_holds(self) -> int:
        """Stop holding servers back: lend again every server the demand leaves idle (after
        the loan delay); only at a pending allocate point. Returns the servers released."""
        self._peek_point(ALLOCATE)
        n, self.held = self.held, 0
        if n and self.uses_loaning and self._loanable_raw is not None:
            self._lend_up_to(self._loanable_raw, self.t)
        return n

    # ------------------------------------------------------------------ allocation
    def decide_allocation(self, alloc: Allocation) -> None:
        """Apply a policy's :class:`Allocation`: shrinks and stops first, then grows in order.

        The whole decision is checked first (types, jobs, bounds, room for every grow):
        ``InvalidDecision`` leaves the engine unchanged and still waiting for a decision."""
        self._peek_point(ALLOCATE)
        if (
            type(alloc) is Allocation
            and type(alloc.gpus) is dict
            and not alloc.gpus
            and type(alloc.placement) is dict
            and not alloc.placement
            and not alloc.on_training
            and not alloc.to_training
        ):
            # an empty decision (half the rounds of a busy run): nothing to check or apply
            self._waiting = None
            self._note_no_change()
        else:
            self._validate_allocation(alloc)
            self._waiting = None
            epoch = self.allocation_epoch
            self._apply_allocation(alloc)
            if self.allocation_epoch == epoch:  # the round changed nothing (no-op entries)
                self._note_no_change()
        if self.check:
            self.check_invariants()

    def _validate_allocation(self, alloc: Allocation) -> None:
        """Raise ``InvalidDecision`` unless ``alloc`` can be applied as a whole."""
        if not isinstance(alloc, Allocation):
            hint = " (wrap job -> GPUs as Allocation(gpus))" if isinstance(alloc, dict) else ""
            raise InvalidDecision(
                f"allocate must return an Allocation, got {type(alloc).__name__} "
                f"{_short(alloc)}{hint}"
            )
        for name in ("gpus", "placement"):
            value = getattr(alloc, name)
            if not isinstance(value, dict):
                raise InvalidDecision(
                    f"Allocation.{name} must be a dict, got {type(value).__name__} {_short(value)}"
                )
        targets: dict[int, int] = {}
        jobs: dict[int, Job] = {}
        all_jobs, n_jobs = self.jobs, len(self.jobs)
        for idx, n in alloc.gpus.items():
            # plain ints and live jobs take the fast path; anything else the checks below
            if type(idx) is not int:
                idx = _as_int(idx, "job index in Allocation.gpus")
            job = all_jobs[idx] if 0 <= idx < n_jobs else None
            if job is None or job.state == DONE:
                job = self._active_job(idx)
            if type(n) is not int:
                n = _as_int(n, f"GPU count of job {job.job_id!r}")
            _check_count(job, n, f"job {job.job_id!r}:")
            jobs[idx] = job
            if idx not in alloc.placement:
                targets[idx] = n
        for idx, place in alloc.placement.items():
            idx = _as_int(idx, "job index in Allocation.placement")
            self._validate_placement(self._active_job(idx), place, alloc.gpus.get(idx))
        on_training = self._validate_on_training(alloc, jobs)
        moves = self._validate_moves(alloc)
        if not alloc.placement:
            if not self.placer.feasible(targets, jobs, on_training, moves):
                grows = [jobs[i].job_id for i, n in targets.items() if n > jobs[i].n_gpus]
                raise InvalidDecision(
                    f"no room for the grows of jobs {grows} (free: {self.view.free_training_gpus} "
                    f"training, {self.view.free_lent_gpus} lent GPUs, plus what shrinks free)"
                )
        else:
            # explicit placements may use GPUs that shrinks free and compete with the default
            # placer's grows server by server: try the whole decision on a copy first
            self._trial_copy()._apply_allocation(alloc)

    def _validate_on_training(self, alloc: Allocation, jobs: dict[int, Job]) -> frozenset[int]:
        """``alloc.on_training`` as job indices, each a grow of ``alloc.gpus`` without an
        explicit placement (else ``InvalidDecision``)."""
        out = set()
        for idx in _index_set(alloc.on_training, "on_training"):
            job = jobs.get(idx)
            if job is None or alloc.gpus.get(idx, 0) <= job.n_gpus or idx in alloc.placement:
                raise InvalidDecision(
                    f"Allocation.on_training names job index {idx}, which is not a grow of "
                    "Allocation.gpus placed by the default placer"
                )
            out.add(idx)
        return frozenset(out)

    def _validate_moves(self, alloc: Allocation) -> dict[int, Job]:
        """``alloc.to_training`` as {job index: job}, sorted: running jobs with workers on
        both lent and training servers, which ``gpus`` leaves at their count and which have
        no explicit placement (else ``InvalidDecision``)."""
        out = {}
        for idx in _index_set(alloc.to_training, "to_training"):
            job = self._active_job(idx)
            why = None
            if job.state != RUNNING or not job.lent_gpus or job.lent_gpus == job.n_gpus:
                why = "is not running on both lent and training servers"
            elif alloc.gpus.get(idx, job.n_gpus) != job.n_gpus:
                why = "also changes its GPU count in Allocation.gpus"
            elif idx in alloc.placement:
                why = "also has an explicit Allocation.placement"
            if why:
                raise InvalidDecision(f"Allocation.to_training: job {job.job_id!r} {why}")
            out[idx] = job
        return out

    def _validate_placement(self, job: Job, place: object, n: int | None) -> None:
        """Raise ``InvalidDecision`` unless ``place`` (an explicit placement of ``job``; ``n``
        its GPU count in ``Allocation.gpus`` or None) is well formed and keeps the rules:
        usable servers, the job's bounds and where the placement rules let it run."""
        what = f"job {job.job_id!r}: Allocation.placement"
        if not isinstance(place, dict):
            raise InvalidDecision(
                f"{what} must be a dict server -> GPUs, got {type(place).__name__} {_short(place)}"
            )
        cl = self.cluster
        total = lent = 0
        for s, k in place.items():
            s = _as_int(s, f"server id in the placement of job {job.job_id!r}")
            k = _as_int(k, f"GPU count on server {s} in the placement of job {job.job_id!r}")
            if k < 0:
                raise InvalidDecision(f"{what}: {k} GPUs on server {s} (must be >= 0)")
            if not k:
                continue
            cls = cl.server_class(s) if 0 <= s < cl.n_servers else None
            if cls is None:
                raise InvalidDecision(
                    f"{what}: server {s} is neither a training server nor lent "
                    f"(training: 0-{cl.n_training - 1}, lent: {cl.lent_order})"
                )
            total += k
            lent += k if cls == LENT else 0
        if n is not None and total != n:
            raise InvalidDecision(f"{what} sums to {total} GPUs, Allocation.gpus says {n}")
        _check_count(job, total, f"{what}:")
        if lent and not self.placer.may_use_lent(job):
            why = (
                "its model does not fit a lent GPU (PlacementRules.lent_memory_fit)"
                if job.elastic or self.rules.inelastic_on_lent
                else "inelastic jobs may not (PlacementRules.inelastic_on_lent=False)"
            )
            raise InvalidDecision(f"{what} puts {lent} GPUs on lent servers, but {why}")
        if lent and lent > total - job.base_gpus and not self.placer.base_may_use_lent(job):
            raise InvalidDecision(
                f"{what} puts {lent} of its {total} GPUs on lent servers, so base workers too "
                f"(its base is {job.base_gpus} GPUs), which the placement rules forbid"
            )

    def _trial_copy(self) -> Engine:
        """A copy of the engine to try a decision on: it shares only what no decision
        changes (scenario, job table, profiles, arrival and demand series, finished
        jobs), records no events, checks no invariants and starts with an empty placer
        cache."""
        memo: dict[int, Any] = {id(self.event_log): None, id(self.placer): None}
        shared = [self.scenario, self.table, self._submit, self._d_times, self._d_needed, self._est]
        shared += [x for pair in self._profiles.values() for x in pair]
        shared += [j for j in self.jobs if j is not None and j.state == DONE]
        memo.update((id(x), x) for x in shared)
        trial = copy.deepcopy(self, memo)
        trial.placer = Placer(trial.cluster, trial.rules)
        trial.check = False
        return trial

    def _apply_allocation(self, alloc: Allocation) -> None:
        t = self.t
        placer = self.placer
        changes = [
            (self.jobs[idx], n)
            for idx, n in ((int(i), int(n)) for i, n in alloc.gpus.items())
            if idx not in alloc.placement  # explicit placements: handled below
        ]
        # the grows' placement classes, on the cluster as the round found it (what
        # Placer.feasible counted when the decision was validated)
        pinned = {int(i) for i in alloc.on_training}
        grows = [
            (job, n, ONLY_TRAINING if job.idx in pinned else placer.grow_classes(job, n))
            for job, n in changes
            if n > job.n_gpus
        ]
        for job, n in changes:
            if n < job.n_gpus:
                if n == 0:
                    self._preempt(job, t)
                else:
                    self._reallocate(job, placer.shrink(job, job.n_gpus - n), t)
        for idx in sorted(int(i) for i in alloc.to_training):
            job = self.jobs[idx]
            new = placer.moved_to_training(job)
            if new is None:  # validation counted room for it: a placer bug
                raise InvalidDecision(f"job {job.job_id!r}: no training room to move to")
            self._reallocate(job, new, t)
        for idx, place in alloc.placement.items():
            self._apply_explicit(self._active_job(idx), place, t, first=True)
        for job, n, classes in grows:
            new = self._grown(job, n, classes)
            if new is not None:
                self._reallocate(job, new, t)
        for idx, place in alloc.placement.items():
            self._apply_explicit(self._active_job(idx), place, t, first=False)

    def _grown(self, job: Job, n: int, classes) -> dict[int, int] | None:
        """The placement of ``job`` grown to ``n`` GPUs. Validation counted free GPUs per
        class, which is exact unless ``extras_own_or_empty`` is on: then extra workers
        that find no own or empty room left by the round's earlier changes are cut
        (the largest count that fits, counted in ``grows_cut``; base workers always fit;
        None: no extra worker fits, the job stays as it is)."""
        placer = self.placer
        try:
            return placer.grow(job, n, classes)
        except InvalidDecision:
            if not self.rules.extras_own_or_empty:
                raise
        self.grows_cut += 1
        for m in range(n - 1, job.n_gpus, -1):
            try:
                return placer.grow(job, m, classes)
            except InvalidDecision:
                continue
        return None

    def _apply_explicit(self, job: Job, place: dict[int, int], t: float, first: bool) -> None:
        # Explicit placements stop in the first pass and take in the second, so that they
        # may reuse GPUs other jobs give up in the same round. Their form and rules were
        # checked by _validate_placement; room on each server is checked here (on the
        # trial copy first, see _validate_allocation).
        place = {int(s): int(k) for s, k in place.items() if int(k) > 0}
        if first:
            if not place and job.state == RUNNING:
                self._preempt(job, t)
            return
        if not place:
            return
        for s, k in place.items():
            have = job.placement.get(s, 0)
            if k - have > self.cluster.free[s]:
                raise InvalidDecision(
                    f"job {job.job_id!r}: server {s} has {self.cluster.free[s]} free GPUs, placement adds {k - have}"
                )
        if place != job.placement:
            self._reallocate(job, place, t)

    def _active_job(self, idx: int) -> Job:
        job = self.jobs[idx] if 0 <= idx < len(self.jobs) else None
        if job is None or job.state == DONE:
            state = "not arrived" if job is None else "finished"
            raise InvalidDecision(
                f"job index {idx} is {state}; only queued or running jobs can be allocated"
            )
        return job

    # ------------------------------------------------------------------ job transitions
    def _settle(self, job: Job, t: float) -> None:
        """Bring progress and GPU-seconds of a running job up to ``t``."""
        job.progress = job.progress_at(t)
        paused = (job.pause_until if job.pause_until < t else t) - job.t_update
        if paused > 0:
            job.overhead_gpu_seconds += paused * job.n_gpus
        job.t_update = t
        job.run_from = t if t > job.pause_until else job.pause_until
        job.gpu_seconds += job.n_gpus * (t - job.t_alloc)
        job.t_alloc = t
        self._mirror(job)

    def _mirror(self, job: Job) -> None:
        """Copy ``job``'s progress terms into the arrays (after every write to them)."""
        i = job.idx
        self._progress[i] = job.progress
        self._rate[i] = job.rate
        self._run_from[i] = job.run_from
        self._pause_until[i] = job.pause_until
        self._n_training[i] = job.n_gpus - job.lent_gpus

    def est_remaining_works(self, idx: np.ndarray, t: float) -> np.ndarray:
        """``[jobs[i].est_remaining_work(t) for i in idx]`` as one array: the same float
        operations in the same order, element by element (so the same values)."""
        start = self._run_from[idx]
        done = self._progress[idx]
        run = t > start
        if run.any():
            done[run] += self._rate[idx[run]] * (t - start[run])
        left = self._work[idx] - done
        return np.where(left > 0.0, left * self._est[idx], 0.0)

    def job_columns(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(rate, pause_until, GPUs on training servers)`` of jobs ``idx`` as arrays."""
        return self._rate[idx], self._pause_until[idx], self._n_training[idx]

    def _move_workers(self, job: Job, new: dict[int, int]) -> None:
        cl = self.cluster
        old = job.placement
        idx = job.idx
        for s, k in old.items():
            d = k - new.get(s, 0)
            if d > 0:
                cl.release(s, idx, d)
        n = lent = 0
        n_training = cl.n_training
        for s, k in new.items():
            d = k - old.get(s, 0)
            if d > 0:
                cl.take(s, idx, d)
            n += k
            if s >= n_training:
                lent += k
        self.moved_log.append(idx)
        job.placement = new
        job.n_gpus = n
        job.lent_gpus = lent

    def _reallocate(self, job: Job, new: dict[int, int], t: float) -> None:
        """Start, resize or move a job to placement ``new`` (non-empty)."""
        if self.event_log is not None:
            self.event_log.record_job(t, RESIZE if job.state == RUNNING else START, job, new)
        if job.state == RUNNING:
            self._settle(job, t)
            job.resizes += 1
            pause = self.dyn.scale_overhead_s
        else:  # starting from the queue
            del self.queue[job.idx]
            self.running[job.idx] = job
            job.state = RUNNING
            job.queue_time += t - job.queued_since
            if job.first_start != job.first_start:  # NaN: first start
                job.first_start = t
            job.t_update = t
            job.t_alloc = t
            pause = self.dyn.restart_overhead_s if job.preemptions else 0.0
        self._move_workers(job, new)
        placer = self.placer  # the placement's rate, its slowest speed found once
        job.speed = speed = placer.slowest_speed(new)
        job.rate = placer.rate_on(job, job.n_gpus, len(new), speed)
        job.pause_until = t + pause
        job.run_from = job.t_update if job.t_update > job.pause_until else job.pause_until
        job.seg_progress = job.progress
        job.seg_run_start = job.pause_until
        self._mirror(job)
        self._schedule_completion(job)

    def _schedule_completion(self, job: Job) -> None:
        job.version += 1
        left = job.work - job.progress
        finish = job.pause_until + (0.0 if left < 0.0 else left) / job.rate  # max(left, 0.0)
        self._seq += 1
        heapq.heappush(self._heap, (finish, self._seq, job.idx, job.version))

    def _preempt(self, job: Job, t: float) -> float:
        """Stop ``job`` and requeue it; returns the GPU-seconds the preemption lost."""
        if self.event_log is not None:
            self.event_log.record_job(t, PREEMPT, job, {})
        ckpt = self.dyn.checkpoint_interval_s
        lost_gs = lost_gpu_seconds(job, t, ckpt)  # the formula of the what-if queries
        self._settle(job, t)
        lost = job.work_since_checkpoint(t, ckpt)
        if lost > 0:
            job.lost_gpu_seconds += lost_gs
            self.lost_gpu_seconds += lost_gs
            job.progress -= lost
            job.lost_work += lost
        self._move_workers(job, {})
        job.state = QUEUED
        job.run_from = math.inf
        job.rate = 0.0
        job.version += 1
        job.preemptions += 1
        job.queued_since = t
        self._mirror(job)
        del self.running[job.idx]
        self.queue[job.idx] = job
        return lost_gs if lost > 0 else 0.0

    def _complete(self, job: Job, t: float) -> None:
        if self.event_log is not None:
            self.event_log.record_job(t, FINISH, job, {})
        self._settle(job, t)
        job.progress = job.work
        self._move_workers(job, {})
        job.state = DONE
        job.run_from = math.inf
        job.finish = t
        job.rate = 0.0
        self._mirror(job)
        del self.running[job.idx]
        self.n_done += 1

    def _arrive(self, i: int, t: float) -> None:
        tb = self.table
        prof, speedup, speedups = self._profiles[tb.profile[i]]
        gpus, min_gpus, max_gpus, elastic, duration, est = self._cols
        g = gpus[i]
        el = elastic[i] and self.elastic_scaling
        job = Job(
            i, tb.job_id[i], self._submit[i], g, min_gpus[i] if el else g,
            max_gpus[i] if el else g, el, prof, speedup, duration[i], est[i], speedups,
        )  # fmt: skip
        self.jobs[i] = job
        self.queue[i] = job
        self._work[i] = job.work
        self._mirror(job)

    # ------------------------------------------------------------------ end of episode
    def _peek_point(self, kind: str) -> DecisionPoint:
        point = self._waiting
        if point is None or point.kind != kind:
            have = "none" if point is None else point.kind
            raise RuntimeError(f"no pending {kind} decision (pending: {have})")
        return point

    def _note_no_change(self) -> None:
        """After an allocate round that changed nothing: when nothing runs and no
        future event can change the state, the episode has stalled: it ends, and the
        waiting jobs are reported as unfinished."""
        if (
            not self.running
            and self.queue
            and self._next_arrival >= len(self._submit)
            and self._d_next >= len(self._d_times)
            and not self._pending_lends
        ):
            self._stalled = True

    def _end(self, t: float, at_limit: bool) -> None:
        """End the episode at ``t``; ``at_limit``: the time limit ended it (else no event was
        left). It has stalled when jobs wait, none runs and either nothing could ever change
        that or, at the time limit, the policy left a waiting job waiting that could start."""
        self.metrics.advance_to(max(t, self.t))
        self.t = max(t, self.t)
        for job in self.running.values():
            self._settle(job, self.t)
        if self.queue and not self.running:
            self._stalled = self._stalled or not at_limit or self._a_waiting_job_fits()
        self.finished = True

    def _a_waiting_job_fits(self) -> bool:
        """Whether some waiting job could start now at its base demand."""
        tried = set()
        for job in self.queue.values():
            # whether a queued job fits depends on its base demand and what it may use
            key = (job.base_gpus, job.elastic, job.profile.name)
            if key not in tried:
                tried.add(key)
                if self.placer.feasible({job.idx: job.base_gpus}, {job.idx: job}):
                    return True
        return False

    @property
    def allocation_epoch(self) -> int:
        """Bumps whenever any job's placement changes: the placement changes so far."""
        return len(self.moved_log)

    @property
    def stalled(self) -> bool:
        """Whether the episode ended with jobs waiting that no decision would run: nothing
        ran and nothing could change that (no event left; the episode then ends early), or
        the time limit came while nothing ran although a waiting job could have started
        (the policy kept declining to run it)."""
        return self._stalled

    def check_invariants(self) -> None:
        from aryl_gym.sim.invariants import check_invariants

        check_invariants(self)


def _short(value: object) -> str:
    """A repr of ``value`` short enough for an error message."""
    return reprlib.repr(value)


def _check_count(job: Job, n: int, what: str) -> None:
    """``InvalidDecision`` (``what`` first) unless ``n`` GPUs is 0 (stop) or within the
    bounds of ``job``."""
    if n < 0 or (n > 0 and not (job.min_gpus <= n <= job.max_gpus)):
        span = f"[{job.min_gpus}, {job.max_gpus}]" if job.elastic else f"{job.gpus}"
        raise InvalidDecision(f"{what} {n} GPUs is outside its allowed {span}")


def _server_ids(servers: object, expected: str, what: str) -> list[int]:
    """``servers`` (an ordered sequence of server ids) as ints, in order, else
    ``InvalidDecision`` saying what was ``expected`` (``what``: the ids' role)."""
    if isinstance(servers, (str, bytes, Mapping, Set)):  # no order, or not ids
        raise InvalidDecision(f"{expected}, got {type(servers).__name__} {_short(servers)}")
    try:
        return [_as_int(s, f"a {what} server id") for s in servers]
    except TypeError:
        raise InvalidDecision(
            f"{expected}, got {type(servers).__name__} {_short(servers)}"
        ) from None


def _index_set(value: object, field: str) -> list[int]:
    """``Allocation.<field>`` (a set of job indices) as sorted ints, else ``InvalidDecision``."""
    if not value:
        return []
    if not isinstance(value, set | frozenset):
        raise InvalidDecision(
            f"Allocation.{field} must be a set of job indices, got "
            f"{type(value).__name__} {_short(value)}"
        )
    return sorted(_as_int(i, f"job index in Allocation.{field}") for i in value)


def _as_int(value, what: str) -> int:
    """``value`` as an int when it is an integer (Python or numpy, not bool); else
    ``InvalidDecision`` naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidDecision(f"{what} must be an integer, got {type(value).__name__} {value!r}")
    return int(value)
