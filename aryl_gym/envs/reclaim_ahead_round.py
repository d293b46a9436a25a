"""ReclaimAhead-v0's observation encoder and mask: :class:`AheadRound`.

One encoder serves both kinds of decision point of the env:

* **pick** (``mode = PICK``): the inference side reclaims ``k`` lent servers now; the agent
  names them one per step (as in Reclaim-v0), each pick's effect played by the simulator's
  what-if :class:`~aryl_gym.sim.reclaim.ReclaimSimulation`;
* **ahead** (``mode = AHEAD``): nothing is reclaimed yet; the agent may return a lent
  server early (and hold it back from training), release the servers it holds, or keep.

Slots are the lent servers (not yet picked), in the order they were lent; when more are
lent than there are slots, those with the fewest busy GPUs are shown.
"""

from __future__ import annotations

import math

import numpy as np

from aryl_gym.envs.demand_clock import DAY, HOUR, needed_at, squash
from aryl_gym.sim.reclaim import lost_gpu_seconds
from aryl_gym.sim.view import ClusterView

PICK, AHEAD = 1, 0
#: Forecast horizons of the observation (seconds).
HORIZONS = (HOUR, 2 * HOUR, 4 * HOUR)

SLOT_FEATURES: tuple[tuple[str, str], ...] = (
    ("present", "1 if the slot holds a lent server (not yet picked in this reclaim)"),
    ("busy_gpus", "busy GPUs / gpus_per_server"),
    ("preempted_jobs", "jobs that returning it now would preempt / gpus_per_server"),
    ("scaled_in_jobs", "jobs that returning it now would scale in / gpus_per_server"),
    ("lost_gpu_hours", "GPU-hours its preemptions would lose now h, as h / (h + 1)"),
    (
        "lost_gpu_hours_due",
        "GPU-hours the same jobs would lose at the next forecast reclaim (``time_to_due``) if "
        "they ran on as now, h / (h + 1) (0 when none is due within 4 h)",
    ),
    (
        "checkpoint_age",
        "mean over the jobs it would preempt of (time since their last checkpoint) / "
        "checkpoint_interval (0 when it preempts none)",
    ),
    ("remaining", "mean estimated remaining time of its jobs, squashed with tau = 1 h"),
    (
        "preempted_remaining",
        "shortest estimated remaining time of the jobs it would preempt, tau = 1 h",
    ),
    ("time_lent", "time since it was lent, squashed with tau = 1 h"),
    ("aryl_cost", "Aryl's preemption cost c (sum of 1 / lent servers per job), c / (c + 1)"),
    ("aryl_next", "1 if Aryl's reclaim would return it next (pick points only)"),
)
GLOBAL_FEATURES: tuple[tuple[str, str], ...] = (
    ("pick_mode", "1 at a reclaim the inference side asks for now, 0 at a point ahead of it"),
    ("picks_left", "servers still to pick in this reclaim / server slots"),
    ("lent_servers", "lent servers / inference servers"),
    ("held_servers", "servers returned early and still held back / inference servers"),
    ("free_lent", "free GPUs on lent servers / inference GPUs"),
    ("free_training", "free training GPUs / training GPUs"),
    ("queued_jobs", "waiting jobs q, as q / (q + 16)"),
    ("demand_now", "inference servers needed now / inference servers"),
    (
        "time_to_due",
        "time until the demand takes a lent server back (oracle), tau = 1 h; 1: none in 4 h",
    ),
    ("due_1h", "lent servers the demand takes back within 1 h (oracle forecast) / slots"),
    ("due_2h", "... within 2 h"),
    ("due_4h", "... within 4 h"),
    (
        "spare_4h",
        "(fewest loanable servers over the next 4 h - lent - held) / inference servers, "
        "clipped to [-1, 1]: > 0 when held servers could be lent without a reclaim",
    ),
    ("time_of_day_sin", "sin(2 pi time-of-day / 24 h)"),
    ("time_of_day_cos", "cos(2 pi time-of-day / 24 h)"),
)
N_SLOT_F = len(SLOT_FEATURES)
N_GLOBAL_F = len(GLOBAL_FEATURES)


class DemandForecast:
    """The episode's inference demand series read ahead (an *oracle* forecast: the series
    the engine will play, as Round-v0's observation reads it)."""

    def __init__(self, demand: tuple[np.ndarray, np.ndarray], spare: int) -> None:
        self.times = np.asarray(demand[0], float)
        self.needed = np.asarray(demand[1], np.int64)
        self.spare = int(spare)  # inference servers - reserve

    def needed_at(self, t: float) -> int:
        return needed_at(self.times, self.needed, t)

    def min_loanable(self, t0: float, t1: float) -> int:
        """The fewest servers the demand leaves to lend over ``[t0, t1]``."""
        if not len(self.times):
            return self.spare
        a = max(int(np.searchsorted(self.times, t0, side="right")) - 1, 0)
        b = int(np.searchsorted(self.times, t1, side="right"))
        return max(0, self.spare - int(self.needed[a:b].max()))

    def first_below(self, t0: float, t1: float, lent: int) -> float | None:
        """The first instant in ``[t0, t1]`` at which fewer than ``lent`` servers are
        loanable (``t0`` when already so); None when none is."""
        if not len(self.times):
            return None
        a = max(int(np.searchsorted(self.times, t0, side="right")) - 1, 0)
        b = int(np.searchsorted(self.times, t1, side="right"))
        below = np.flatnonzero(self.spare - self.needed[a:b] < lent)
        return None if not below.size else max(float(self.times[a + below[0]]), t0)


class AheadRound:
    """Observation, mask and slot bookkeeping of one decision point (see module doc).
    Actions: slot ``i`` (``< n_slots``), ``follow`` (Aryl: its next pick at a pick
    point, keep at an ahead point) and ``release`` (ahead points with held servers)."""

    def __init__(self, n_slots: int) -> None:
        self.n_slots = int(n_slots)
        self.follow = self.n_slots
        self.release = self.n_slots + 1
        self.n_actions = self.n_slots + 2
        self.obs_size = self.n_slots * N_SLOT_F + N_GLOBAL_F
        self.obs = np.zeros(self.obs_size, dtype=np.float32)
        self.mask = np.zeros(self.n_actions, dtype=bool)
        self.slots: list[int | None] = [None] * self.n_slots
        self.mode = AHEAD
        self.k = 0
        self.picked: list[int] = []
        self.plan: list[int] = []

    # ------------------------------------------------------------------ points
    def begin(
        self, view: ClusterView, mode: int, k: int, plan: list[int], forecast, offset: float
    ) -> None:
        """Start a decision point: ``k`` servers to pick (0 ahead), ``plan`` the allocation
        policy's own reclaim of them (what ``follow`` picks)."""
        self.view, self.mode, self.k = view, mode, int(k)
        self.picked, self.plan = [], list(plan)
        self.forecast, self.offset = forecast, float(offset)
        self.order = {s: i for i, s in enumerate(view.lent_servers)}
        self.sim = view.reclaim_simulation()
        self.refresh()

    @property
    def picks_left(self) -> int:
        return self.k - len(self.picked)

    def follow_server(self) -> int:
        """The server ``follow`` picks: the plan's next server not picked yet."""
        return next(s for s in self.plan if s not in self.picked)

    def pick(self, s: int):
        """Return ``s`` next in this reclaim (what-if only; the env applies the picks)."""
        eff = self.sim.remove(s)
        self.picked.append(s)
        self.refresh()
        return eff

    # ------------------------------------------------------------------ encoding
    def refresh(self) -> None:
        view, sim = self.view, self.sim
        g = view.gpus_per_server
        left = list(sim.on)
        if len(left) > self.n_slots:  # the emptiest servers, kept in lend order
            left = sorted(left, key=lambda s: (sum(sim.on[s].values()), self.order[s]))
            left = sorted(left[: self.n_slots], key=lambda s: self.order[s])
        self.slots = left + [None] * (self.n_slots - len(left))
        t = view.now
        ckpt = view.scenario.dynamics.checkpoint_interval_s
        nxt = self.follow_server() if self.mode == PICK and self.picks_left > 0 else None
        lent = len(view.lent_servers)
        self.t_due = self.forecast.first_below(t, t + HORIZONS[-1], lent)
        o, m = self.obs, self.mask
        m[:] = False
        for i, s in enumerate(self.slots):
            a = i * N_SLOT_F
            if s is None:
                o[a : a + N_SLOT_F] = 0.0
                continue
            m[i] = self.mode == AHEAD or self.picks_left > 0
            jobs = sim.on[s]
            pre, sc = sim.effect(s)
            rem = [view.job(j).est_remaining_work(t) / view.job(j).rate for j in jobs]
            pre_rem = [view.job(j).est_remaining_work(t) / view.job(j).rate for j in pre]
            ages = [_checkpoint_age(view.job(j), t, ckpt) for j in pre]
            aryl = sum(1.0 / len(sim.spans[j]) for j in pre)
            lost_h = sum(sim.lost[j] for j in pre) / HOUR
            due_h = 0.0
            if self.t_due is not None:
                due_h = sum(lost_gpu_seconds(view.job(j), self.t_due, ckpt) for j in pre) / HOUR
            o[a : a + N_SLOT_F] = (
                1.0,
                sum(jobs.values()) / g,
                min(len(pre) / g, 1.0),
                min(len(sc) / g, 1.0),
                squash(lost_h, 1.0),
                squash(due_h, 1.0),
                float(np.mean(ages)) if ages else 0.0,
                squash(float(np.mean(rem)), HOUR) if rem else 0.0,
                squash(min(pre_rem), HOUR) if pre_rem else 0.0,
                squash(t - view.lent_time(s), HOUR),
                aryl / (aryl + 1.0),
                1.0 if s == nxt else 0.0,
            )
        m[self.follow] = True
        held = view.held_servers
        m[self.release] = self.mode == AHEAD and held > 0
        self._globals(view, held)

    def _globals(self, view: ClusterView, held: int) -> None:
        c = view.scenario.cluster
        n_inf = max(c.inference_servers, 1)
        t, fc = view.now, self.forecast
        lent = len(view.lent_servers)
        due = [max(0, lent - fc.min_loanable(t, t + h)) / self.n_slots for h in HORIZONS]
        spare = (fc.min_loanable(t, t + HORIZONS[-1]) - lent - held) / n_inf
        q = len(view.queued)
        phase = 2.0 * math.pi * ((t + self.offset) % DAY) / DAY
        g0 = self.n_slots * N_SLOT_F
        self.obs[g0:] = (
            float(self.mode == PICK),
            min(self.picks_left / self.n_slots, 1.0),
            lent / n_inf,
            min(held / n_inf, 1.0),
            view.free_lent_gpus / max(c.inference_gpus, 1),
            view.free_training_gpus / max(c.training_gpus, 1),
            q / (q + 16.0),
            min(view.inference_needed / n_inf, 1.0),
            1.0 if self.t_due is None else squash(self.t_due - t, HOUR),
            *(min(d, 1.0) for d in due),
            max(-1.0, min(1.0, spare)),
            math.sin(phase),
            math.cos(phase),
        )

    def clear(self) -> None:
        """The observation after the episode's end (all zero, nothing valid but follow)."""
        self.obs[:] = 0.0
        self.mask[:] = False
        self.mask[self.follow] = True
        self.slots = [None] * self.n_slots


def _checkpoint_age(job, t: float, ckpt: float) -> float:
    """Time since ``job``'s last checkpoint / the checkpoint interval (the engine's rule:
    a job checkpoints at every allocation change and every interval of run time after)."""
    if t <= job.seg_run_start:
        return 0.0
    return ((t - job.seg_run_start) % ckpt) / ckpt
