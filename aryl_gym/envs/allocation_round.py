"""Allocate-v0's observation encoder, action decoding and mask: :class:`AllocationRound`
(see :mod:`aryl_gym.envs.observation`)."""

from __future__ import annotations

import heapq
from bisect import bisect_right
from collections.abc import Sequence
from typing import Any

import numpy as np

from aryl_gym.envs.demand_clock import HOUR, DemandClock
from aryl_gym.policy import Allocation, PlacementRules
from aryl_gym.sim.job import QUEUED, RUNNING, Job
from aryl_gym.sim.view import ClusterView

#: Per-job slot features of Allocate-v0: (name, meaning and normalisation).
SLOT_FEATURES: tuple[tuple[str, str], ...] = (
    ("present", "1 if the slot holds a job, else the whole row is 0"),
    ("queued", "1 if the job was waiting at the start of the round, 0 if running"),
    ("elastic", "1 if the job is elastic"),
    ("gpus", "requested GPUs / gpu_scale"),
    ("min_gpus", "minimum GPUs / gpu_scale (= gpus if inelastic)"),
    ("max_gpus", "maximum GPUs / gpu_scale (= gpus if inelastic)"),
    ("current_gpus", "GPUs held at the start of the round / gpu_scale"),
    ("target_gpus", "GPUs after the pending allocation of this round / gpu_scale"),
    (
        "est_remaining",
        "estimated remaining time at c GPUs at the rate the simulator says the job would get "
        "there (view.rate_with: speedup x placement factor x slowest GPU), squashed with "
        "tau = 1 h; c = target, or base demand if the target is 0",
    ),
    (
        "gain_one_gpu",
        "relative remaining-time change of one more GPU at those rates: 1 - rate(c) / "
        "rate(c + 1), clipped to [-1, 1] (negative: the grow would slow the job); 0 at max, "
        "inelastic or not placeable",
    ),
    (
        "gain_to_max",
        "remaining-time reduction of growing from c to the largest placeable count up to "
        "max_gpus, at those rates (seconds, >= 0), squashed with tau = 1 h",
    ),
    ("waiting", "total queueing time so far (including the current wait), squashed with tau = 1 h"),
    ("age", "time since submission, squashed with tau = 1 h"),
    ("lent_share", "share of the job's GPUs on lent servers (0 when not running)"),
    ("preemptions", "preemptions so far p, as p / (p + 1)"),
    ("lost_if_preempted", "GPU-hours a preemption now would lose h, as h / (h + 1)"),
)

#: Global features of Allocate-v0.
GLOBAL_FEATURES: tuple[tuple[str, str], ...] = (
    ("free_training", "free training GPUs at the start of the round / training GPUs"),
    ("free_lent", "free GPUs on lent servers at the start of the round / inference GPUs"),
    (
        "free_after_pending",
        "GPUs left free after the pending allocation / (training + inference GPUs)",
    ),
    ("lent_servers", "lent servers / inference servers"),
    ("inference_needed", "inference servers the inference side needs now / inference servers"),
    ("inference_trend", "(needed now - needed 1 h ago) / inference servers, clipped to [-1, 1]"),
    ("time_of_day_sin", "sin(2 pi time-of-day / 24 h)"),
    ("time_of_day_cos", "cos(2 pi time-of-day / 24 h)"),
    ("queued_jobs", "waiting jobs q, as q / (q + queue_slots)"),
    ("running_jobs", "running jobs r, as r / (r + running_slots)"),
    ("hidden_queued", "waiting jobs without a slot h, as h / (h + queue_slots)"),
    ("round_actions", "actions taken in this round / max_actions_per_round"),
)

N_SLOT_F = len(SLOT_FEATURES)
N_GLOBAL_F = len(GLOBAL_FEATURES)
_TARGET = 7  # target_gpus; the target-dependent features are 7..10

# step() outcomes of AllocationRound
APPLIED, INVALID, COMMIT = 0, 1, 2


class AllocationRound:
    """The agent's side of one scheduling round, reused across rounds and episodes.

    **Slots.** ``queue_slots`` waiting jobs in Aryl's shortest-first order (estimated
    remaining time at base demand, then submit time, then index), then ``running_slots``
    running elastic jobs (``min_gpus < max_gpus``) with the largest estimated remaining
    time first (they gain most from extra GPUs). Slots are fixed for the whole round.
    Running inelastic jobs have no slot (their only possible action would be preemption).

    **Actions.** ``Discrete(n_ops * n_slots + 1)``, op-major: action ``op * n_slots +
    slot``; the last action commits the round. Ops: ``0`` start (a job with target 0 gets
    its base demand: ``min_gpus`` if elastic else ``gpus``), ``1..K`` grow the target by
    ``deltas[i]``, ``K+1..2K`` shrink it by ``deltas[i]`` (elastic jobs, within
    ``[min_gpus, max_gpus]``), ``2K+1`` stop (target 0: a running job is preempted, a
    queued one stays queued). With powers of two any target is reachable in ``O(log)``
    steps, so a round takes at most about ``n_slots * (K + 1) + 1`` steps whatever the
    cluster's size (``max_actions_per_round`` caps it: reaching the cap commits).

    **Pending allocation.** Targets are collected in a dict in the order of the first
    action on each job; commit hands the engine ``Allocation`` of the jobs whose target
    differs from their current GPUs, in that order (the engine applies shrinks, then grows
    in order).

    **Mask.** An op is valid when its target respects the job's bounds and the whole
    pending allocation stays placeable. With the default rules (every job may use lent
    servers: ``inelastic_on_lent`` and ``base_on_lent``) the placer takes any free GPU of
    either class, so placeability is exactly "grows <= free GPUs + GPUs freed by shrinks
    and stops" (a pooled count, O(1) numpy calls per step). With other rules the mask
    simulates the placer's class order (training / lent) for each candidate (exact, slower).

    **Round rules** (the defaults are the settings under which a short MaskablePPO run
    learns to commit; ``docs/agents.md``, "Defaults that learn"). ``monotone_rounds``
    (default True): within a round each job's target moves one way only, so after a
    start or grow its shrinks and stop are masked, and after a shrink or stop its grows
    and start: no op can undo an earlier one, every round ends after finitely many valid
    ops (at most about the GPUs it can move) and a deterministic agent cannot loop
    grow/shrink or start/stop on one slot until the cap. Every set of final targets stays
    reachable (start then grows, or shrinks, or stop: the order Aryl's decisions are
    translated in). ``allow_preemption`` (default False): the stop op is masked on running
    jobs, so the agent's allocation never preempts (as Aryl's never does); reclaims still
    preempt. ``monotone_rounds=False, allow_preemption=True`` are the rules before these
    defaults.
    """

    def __init__(
        self,
        *,
        queue_slots: int = 16,
        running_slots: int = 16,
        deltas: Sequence[int] = (1, 2, 4, 8, 16),
        rules: PlacementRules | None = None,
        max_actions_per_round: int | None = None,
        gpu_scale: float = 32.0,
        monotone_rounds: bool = True,
        allow_preemption: bool = False,
    ) -> None:
        if queue_slots < 1 or running_slots < 0:
            raise ValueError(
                f"need queue_slots >= 1 and running_slots >= 0, got {queue_slots}, {running_slots}"
            )
        d = sorted(int(x) for x in deltas)
        if not d or min(d) < 1 or len(set(d)) != len(d):
            raise ValueError(f"deltas must be distinct positive integers, got {deltas}")
        self.qs, self.rs = int(queue_slots), int(running_slots)
        self.n_slots = n = self.qs + self.rs
        self.deltas = np.asarray(d, dtype=np.int64)
        self.K = K = len(d)
        self.n_ops = 2 * K + 2
        self.n_actions = self.n_ops * n + 1
        self.commit_action = self.n_actions - 1
        self.rules = rules or PlacementRules(True, True, True)
        r = self.rules
        # every job may take any free GPU of either pool: placeability is a pooled count
        self.pooled = (
            r.inelastic_on_lent
            and r.base_on_lent
            and not (r.no_slow_mix or r.elastic_base_on_training or r.lent_memory_fit)
        )
        self.max_actions = int(max_actions_per_round or n * (K + 1))
        self.gpu_scale = float(gpu_scale)
        self.monotone = bool(monotone_rounds)
        self.allow_preemption = bool(allow_preemption)
        self.obs_size = n * N_SLOT_F + N_GLOBAL_F
        self.clock = DemandClock()

        # op tables: kind (0 start, 1 grow, 2 shrink, 3 stop) and delta
        self.op_kind = [0] + [1] * K + [2] * K + [3]
        self.op_delta = [0] + d + d + [0]
        self._dcol = self.deltas.reshape(K, 1)
        # _pat[v, k] = deltas[k] <= v: the grow / shrink ops a slack of v allows
        self._vmax = d[-1]
        self._dlist = d
        self._pat = np.arange(d[-1] + 1)[:, None] >= self.deltas[None, :]
        self._room_ge = np.zeros((K, n), bool)  # grow ops the job's bounds allow (before pf)
        self.obs = np.zeros(self.obs_size, dtype=np.float32)
        self.mask = np.zeros(self.n_actions, dtype=bool)
        self._make_views()
        self.present = np.zeros(n, bool)
        self.el = np.zeros(n, bool)
        self.base = np.zeros(n, np.int64)
        self.mn = np.zeros(n, np.int64)
        self.mx = np.zeros(n, np.int64)
        self.cur = np.zeros(n, np.int64)
        self.tgt = np.zeros(n, np.int64)
        # start is valid when _startable <= pf (base demand, or "infinite" when not startable)
        self._startable = np.zeros(n, np.int64)
        # per slot, the way its target moved in this round (+1 up, -1 down, 0 not yet):
        # with monotone_rounds the ops of the other way are masked
        self._dir = np.zeros(n, np.int8)
        # per slot, whether its stop op may be valid: a queued job (stop = leave it queued),
        # a running one only with allow_preemption (stop = preempt it)
        self._stoppable = np.zeros(n, bool)
        self.slot_jobs: list[Job | None] = [None] * n
        self._slot_of: dict[int, int] = {}
        self.R = [0.0] * n  # estimated remaining work per slot
        self._rates: list[dict[int, float]] = [{} for _ in range(n)]  # GPUs -> rate, per round
        self.pending: dict[int, int] = {}
        self.view: ClusterView | None = None
        self.pf = 0
        self.free_t = self.free_l = 0
        self.n_taken = 0
        self.rounds = 0
        self.n_queued = self.n_running = 0
        self.last_invalid = False
        self._total = 1.0

    def _make_views(self) -> None:
        """The views the encoder writes through: ``_slot_obs`` (the slot block of ``obs``
        as ``(n_slots, features)``) and ``_mv`` (the mask without commit, op-major)."""
        n = self.n_slots
        self._slot_obs = self.obs[: n * N_SLOT_F].reshape(n, N_SLOT_F)
        self._mv = self.mask[:-1].reshape(self.n_ops, n)

    def __getstate__(self) -> dict[str, Any]:
        # deepcopy and pickle copy a view as an array of its own, so that writes through
        # the copy's views would miss its obs and mask: leave them out and rebuild them
        state = self.__dict__.copy()
        for name in _VIEWS:
            del state[name]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._make_views()

    def options(self) -> dict[str, Any]:
        """The constructor's keyword arguments (but ``rules``) that give this encoder."""
        return dict(
            queue_slots=self.qs,
            running_slots=self.rs,
            deltas=tuple(int(d) for d in self.deltas),
            max_actions_per_round=self.max_actions,
            gpu_scale=self.gpu_scale,
            monotone_rounds=self.monotone,
            allow_preemption=self.allow_preemption,
        )

    # ------------------------------------------------------------------ round
    def begin_round(self, view: ClusterView) -> None:
        """Fill the slots from the engine's state at an allocate point."""
        self.view = view
        self.rounds += 1
        t = view.now
        queued = view.queued
        running = view.running

        def qkey(j: Job):
            return (j.est_remaining_work(t) / j.speedup[j.base_gpus], j.submit, j.idx)

        if len(queued) > self.qs:
            qjobs = heapq.nsmallest(self.qs, queued.values(), key=qkey)
        else:
            qjobs = sorted(queued.values(), key=qkey)
        rjobs: list[Job] = []
        if self.rs:
            el = [j for j in running.values() if j.elastic and j.min_gpus < j.max_gpus]
            if len(el) > self.rs:
                rjobs = heapq.nlargest(
                    self.rs,
                    el,
                    key=lambda j: (j.est_remaining_work(t) / j.speedup[j.n_gpus], -j.idx),
                )
            else:
                rjobs = sorted(
                    el, key=lambda j: (-j.est_remaining_work(t) / j.speedup[j.n_gpus], j.idx)
                )
        n = self.n_slots
        jobs: list[Job | None] = [None] * n
        jobs[: len(qjobs)] = qjobs
        jobs[self.qs : self.qs + len(rjobs)] = rjobs
        self.slot_jobs = jobs
        self._slot_of = {j.idx: i for i, j in enumerate(jobs) if j is not None}
        big = 1 << 40
        base = [big] * n
        mn = [0] * n
        mx = [0] * n
        cur = [0] * n
        el_l = [False] * n
        R = [0.0] * n
        for i, j in enumerate(jobs):
            if j is not None:
                el_l[i] = j.elastic
                base[i], mn[i], mx[i], cur[i] = j.base_gpus, j.min_gpus, j.max_gpus, j.n_gpus
                R[i] = j.est_remaining_work(t)
        self.R = R
        self._rates: list[dict[int, float]] = [{} for _ in range(n)]
        self.present[:] = [j is not None for j in jobs]
        self._stoppable[:] = self.present
        if not self.allow_preemption:
            self._stoppable[self.qs :] = False  # the running slots
        self.el[:] = el_l
        self.base[:] = base
        self.mn[:] = mn
        self.mx[:] = mx
        self.cur[:] = cur
        self.tgt[:] = cur
        self._dir[:] = 0
        self.pending = {}
        self.free_t, self.free_l = view.free_training_gpus, view.free_lent_gpus
        self.pf = self.free_t + self.free_l
        c = view.scenario.cluster
        self._total = float(c.training_gpus + c.inference_gpus)
        self.n_taken = 0
        self.n_queued, self.n_running = len(queued), len(running)
        self.last_invalid = False
        so = self._slot_obs
        nq, nr = len(qjobs), len(rjobs)
        if nq:
            so[:nq] = [self._slot_row(i) for i in range(nq)]
        so[nq : self.qs] = 0.0
        if nr:
            so[self.qs : self.qs + nr] = [self._slot_row(i) for i in range(self.qs, self.qs + nr)]
        so[self.qs + nr :] = 0.0
        self._write_globals()
        self._full_mask()

    def end_episode(self) -> None:
        """The terminal observation: all zeros, only commit valid."""
        self.obs[:] = 0.0
        self.mask[:] = False
        self.mask[-1] = True
        self.present[:] = False
        self.slot_jobs = [None] * self.n_slots
        self._slot_of = {}

    @property
    def trivial(self) -> bool:
        """True when committing unchanged is the only valid action."""
        return not self.mask[:-1].any()

    # ------------------------------------------------------------------ actions
    def step(self, action: int) -> int:
        """Apply one action; returns APPLIED, INVALID (a no-op; also ``last_invalid``) or
        COMMIT. Reaching ``max_actions_per_round`` actions (valid or not) in a round also
        returns COMMIT, after applying the action."""
        if action == self.commit_action:
            self.last_invalid = False
            return COMMIT
        self.n_taken += 1
        if 0 <= action < self.commit_action and self.mask[action]:
            op, slot = divmod(action, self.n_slots)
            job = self.slot_jobs[slot]
            old = self.pending.get(job.idx, job.n_gpus)
            new = self._op_target(op, job.base_gpus, old)
            self.tgt[slot] = new
            self._dir[slot] = 1 if new > old else -1
            self.pf -= new - old
            self.pending[job.idx] = new
            self.last_invalid = False
            if self.n_taken >= self.max_actions:
                return COMMIT
            self._update_slot(slot, new)
        else:
            self.last_invalid = True
            if self.n_taken >= self.max_actions:
                return COMMIT
        g0 = self.n_slots * N_SLOT_F
        o = self.obs
        o[g0 + 2] = min(max(self.pf, 0) / self._total, 1.0)
        o[g0 + 11] = self.n_taken / self.max_actions
        return INVALID if self.last_invalid else APPLIED

    def allocation(self) -> Allocation:
        """The pending targets that change something, in first-action order."""
        job = self.view.job
        return Allocation({idx: n for idx, n in self.pending.items() if n != job(idx).n_gpus})

    def stops_of_running(self) -> int:
        """Running jobs the pending allocation preempts."""
        job = self.view.job
        return sum(1 for idx, n in self.pending.items() if n == 0 and job(idx).state == RUNNING)

    def slot_of(self, idx: int) -> int | None:
        """The slot holding job ``idx`` this round, or None."""
        return self._slot_of.get(idx)

    def action(self, slot: int, op: int) -> int:
        return op * self.n_slots + slot

    def actions_for(self, alloc: Allocation, view: ClusterView) -> tuple[list[int], int]:
        """Actions that reproduce a policy's ``alloc`` in this round (without the commit),
        and how many of its jobs have no slot. Shrinks come first, so the mask sees the
        GPUs they free (the engine applies them first anyway); grows keep ``alloc``'s
        order. This is how Aryl acts through the env (tests, behaviour cloning)."""
        items = sorted(alloc.gpus.items(), key=lambda kv: kv[1] >= view.job(kv[0]).n_gpus)
        actions: list[int] = []
        missing = 0
        for idx, n in items:
            ops = self.ops_to_target(idx, n)
            if ops is None:
                missing += 1
            else:
                actions += ops
        return actions, missing

    def ops_to_target(self, idx: int, target: int) -> list[int] | None:
        """Actions that move job ``idx`` from its pending target to ``target`` (start, then
        the largest deltas first), or None when it has no slot or the deltas cannot reach
        ``target``."""
        slot = self._slot_of.get(idx)
        if slot is None:
            return None
        n, K = self.n_slots, self.K
        acts: list[int] = []
        cur = int(self.tgt[slot])
        if target == 0:
            return [(2 * K + 1) * n + slot] if cur > 0 else []
        if cur == 0:
            acts.append(slot)
            cur = int(self.base[slot])
        diff = target - cur
        for i in sorted(range(K), key=lambda i: -self.deltas[i]):
            d = int(self.deltas[i])
            while abs(diff) >= d:
                acts.append((1 + i if diff > 0 else 1 + K + i) * n + slot)
                diff += -d if diff > 0 else d
        return acts if diff == 0 else None

    # ------------------------------------------------------------------ encoding
    def _rate(self, i: int, n: int) -> float:
        """The rate slot ``i``'s job would run at with ``n`` GPUs (the simulator's what-if,
        cached for the round; 0.0 when they cannot be placed)."""
        cache = self._rates[i]
        r = cache.get(n)
        if r is None:
            job = self.slot_jobs[i]
            if not cache and job.n_gpus and n >= job.n_gpus:
                curve = self.view.rate_curve(job, job.max_gpus)
                cache.update({job.n_gpus + k: v for k, v in enumerate(curve)})
                r = cache.get(n)
            if r is None:
                r = self.view.rate_with(job, n) or 0.0
                cache[n] = r
        return r

    def _gains(self, i: int, c: int, R: float) -> tuple[float, float, float]:
        """(remaining time at c, gain of one more GPU, time saved up to the maximum)."""
        job = self.slot_jobs[i]
        rate_c = self._rate(i, c) or float(job.speedup[c])  # unplaceable: compact as a guess
        rem = R / rate_c
        if not (job.elastic and c < job.max_gpus):
            return rem, 0.0, 0.0
        r1 = self._rate(i, c + 1)
        g1 = max(-1.0, min(1.0, 1.0 - rate_c / r1)) if r1 else 0.0
        best = max((self._rate(i, m) for m in range(c + 1, job.max_gpus + 1)), default=0.0)
        gmax = max(0.0, rem - R / best) if best else 0.0
        return rem, g1, gmax

    def _slot_row(self, i: int) -> tuple[float, ...]:
        job = self.slot_jobs[i]
        if job is None:
            return _ZERO_ROW
        view = self.view
        t = view.now
        gs = self.gpu_scale
        tgt = int(self.tgt[i])
        c = tgt if tgt > 0 else job.base_gpus
        R = self.R[i]
        queued = job.state == QUEUED
        waiting = job.queue_time + (t - job.queued_since if queued else 0.0)
        rem, g1, gmax = self._gains(i, c, R)
        n = job.n_gpus
        if n and job.rate:
            lost_h = view.lost_work_if_preempted(job) / job.rate * n / HOUR
            lent = job.lent_gpus / n
        else:
            lost_h = lent = 0.0
        p = job.preemptions
        age = t - job.submit
        return (
            1.0,
            1.0 if queued else 0.0,
            1.0 if job.elastic else 0.0,
            min(job.gpus / gs, 1.0),
            min(job.min_gpus / gs, 1.0),
            min(job.max_gpus / gs, 1.0),
            min(n / gs, 1.0),
            min(tgt / gs, 1.0),
            rem / (rem + HOUR) if rem > 0 else 0.0,
            g1,
            gmax / (gmax + HOUR) if gmax > 0 else 0.0,
            waiting / (waiting + HOUR) if waiting > 0 else 0.0,
            age / (age + HOUR) if age > 0 else 0.0,
            lent,
            p / (p + 1.0),
            lost_h / (lost_h + 1.0) if lost_h > 0 else 0.0,
        )

    def _update_slot(self, i: int, tgt: int) -> None:
        """After an op on slot ``i``: its target-dependent features and the mask."""
        job = self.slot_jobs[i]
        c = tgt if tgt > 0 else job.base_gpus
        rem, g1, gmax = self._gains(i, c, self.R[i])
        g2 = gmax / (gmax + HOUR) if gmax > 0 else 0.0
        a = i * N_SLOT_F + _TARGET
        self.obs[a : a + 4] = (
            min(tgt / self.gpu_scale, 1.0),
            rem / (rem + HOUR) if rem > 0 else 0.0,
            g1,
            g2,
        )
        # this slot's column of the mask, then the rows that depend on the free GPUs
        mv, K, vmax = self._mv, self.K, self._vmax
        if tgt > 0:
            self._startable[i] = 1 << 40
            if job.elastic:
                room, down = job.max_gpus - tgt, tgt - job.min_gpus
                self._room_ge[:, i] = self._pat[room if room < vmax else vmax]
                mv[K + 1 : 2 * K + 1, i] = self._pat[down if down < vmax else vmax]
            else:
                self._room_ge[:, i] = False
                mv[K + 1 : 2 * K + 1, i] = False
            mv[2 * K + 1, i] = self._stoppable[i]
        else:
            self._startable[i] = job.base_gpus
            self._room_ge[:, i] = False
            mv[K + 1 : 2 * K + 1, i] = False
            mv[2 * K + 1, i] = False
        if self.monotone:
            # one way per round: an op that would undo an earlier one is masked (an
            # untrained agent otherwise loops grow/shrink or start/stop on one slot)
            if self._dir[i] > 0:
                mv[K + 1 : 2 * K + 2, i] = False
            elif self._dir[i] < 0:
                self._room_ge[:, i] = False
                self._startable[i] = 1 << 40
        self._pf_mask()

    def _pf_mask(self) -> None:
        """Rows that depend on the free GPUs ``pf``: start (base <= pf) and grow (d <= pf)."""
        mv, K, pf = self._mv, self.K, self.pf
        np.less_equal(self._startable, pf, out=mv[0])
        kk = bisect_right(self._dlist, pf) if pf < self._vmax else K
        if kk > 0:
            mv[1 : 1 + kk] = self._room_ge[:kk]
        if kk < K:
            mv[1 + kk : K + 1] = False
        if not self.pooled:
            self._exact_mask()

    def _full_mask(self) -> None:
        big = 1 << 40
        tgt = self.tgt
        pos = tgt > 0
        act_el = pos & self.el
        K = self.K
        np.copyto(self._startable, np.where(self.present & ~pos, self.base, big))
        room = np.where(act_el, self.mx - tgt, -1)
        down = np.where(act_el, tgt - self.mn, -1)
        np.greater_equal(room, self._dcol, out=self._room_ge)
        np.greater_equal(down, self._dcol, out=self._mv[K + 1 : 2 * K + 1])
        self._mv[2 * K + 1] = pos & self._stoppable
        self.mask[-1] = True
        self._pf_mask()

    def _write_globals(self) -> None:
        view = self.view
        c = view.scenario.cluster
        g0 = self.n_slots * N_SLOT_F
        trend, s, co = self.clock.features(view)
        hidden = max(self.n_queued - self.qs, 0)
        n_inf = max(c.inference_servers, 1)
        self.obs[g0 : g0 + N_GLOBAL_F] = (
            self.free_t / c.training_gpus,
            self.free_l / max(c.inference_gpus, 1),
            min(max(self.pf, 0) / self._total, 1.0),
            len(view.lent_servers) / n_inf if c.inference_servers else 0.0,
            min(view.inference_needed / n_inf, 1.0),
            trend,
            s,
            co,
            self.n_queued / (self.n_queued + self.qs),
            self.n_running / (self.n_running + max(self.rs, 1)),
            hidden / (hidden + self.qs),
            self.n_taken / self.max_actions,
        )

    # ------------------------------------------------------------------ exact placeability
    def _exact_mask(self) -> None:
        """Clear start/grow ops whose pending allocation the placer could not place
        (only needed when some jobs may not use lent servers). Under
        ``extras_own_or_empty`` a shrink or stop can also make pending grows unplaceable
        (the GPUs it frees change where a start's base workers go, and with them the
        room left for extra workers), so those ops are checked too."""
        mv, n, K = self._mv, self.n_slots, self.K
        ops = range(self.n_ops) if self.rules.extras_own_or_empty else range(K + 1)
        for i in range(n):
            job = self.slot_jobs[i]
            if job is None:
                continue
            old = int(self.tgt[i])
            for op in ops:
                if mv[op, i]:
                    new = self._op_target(op, int(self.base[i]), old)
                    mv[op, i] = self._placeable(job.idx, new)

    def _op_target(self, op: int, base: int, old: int) -> int:
        """The GPU count op ``op`` sets for a job of base ``base`` whose target is ``old``."""
        kind = self.op_kind[op]
        if kind == 0:
            return base
        if kind == 1:
            return old + self.op_delta[op]
        if kind == 2:
            return old - self.op_delta[op]
        return 0

    def _placeable(self, idx: int, new: int) -> bool:
        targets = dict(self.pending)
        targets[idx] = new
        return self.view.can_place(targets)


_ZERO_ROW = (0.0,) * N_SLOT_F
#: Attributes of :class:`AllocationRound` that are views of ``obs`` and ``mask``.
_VIEWS = ("_slot_obs", "_mv")
