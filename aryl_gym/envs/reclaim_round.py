"""Reclaim-v0's observation encoder, action decoding and mask: :class:`ReclaimRound`
(see :mod:`aryl_gym.envs.observation`)."""

from __future__ import annotations

import numpy as np

from aryl_gym.envs.demand_clock import HOUR, DemandClock, squash
from aryl_gym.sim.view import ClusterView

RECLAIM_SLOT_FEATURES: tuple[tuple[str, str], ...] = (
    ("present", "1 if the slot holds a lent server not yet picked in this reclaim"),
    ("busy_gpus", "busy GPUs / gpus_per_server (given earlier picks of this reclaim)"),
    ("jobs", "jobs with workers on it / gpus_per_server"),
    (
        "preempted_jobs",
        "jobs that returning it would preempt (given earlier picks) / gpus_per_server",
    ),
    ("scaled_in_jobs", "jobs that returning it would scale in / gpus_per_server"),
    ("lost_gpu_hours", "GPU-hours its preemptions would lose h, as h / (h + 1)"),
    ("spanning_share", "share of its jobs that also run on other lent servers"),
    ("time_lent", "time since it was lent, squashed with tau = 1 h"),
    (
        "aryl_cost",
        "Aryl's preemption cost c (sum of 1 / lent servers of each preempted job), as c / (c + 1)",
    ),
    (
        "est_remaining",
        "mean estimated remaining time of its jobs (at the rates they run at), squashed with "
        "tau = 1 h",
    ),
)
RECLAIM_GLOBAL_FEATURES: tuple[tuple[str, str], ...] = (
    ("picks_left", "servers still to pick in this reclaim / server slots"),
    ("picks_total", "servers this reclaim returns (k) / server slots"),
    ("lent_servers", "lent servers / inference servers"),
    ("free_lent", "free GPUs on lent servers / inference GPUs"),
    ("free_training", "free training GPUs / training GPUs"),
    ("queued_jobs", "waiting jobs q, as q / (q + 16)"),
    ("inference_needed", "inference servers needed now / inference servers"),
    ("inference_trend", "(needed now - needed 1 h ago) / inference servers, clipped to [-1, 1]"),
    ("time_of_day_sin", "sin(2 pi time-of-day / 24 h)"),
    ("time_of_day_cos", "cos(2 pi time-of-day / 24 h)"),
)
N_RSLOT_F = len(RECLAIM_SLOT_FEATURES)
N_RGLOBAL_F = len(RECLAIM_GLOBAL_FEATURES)


def reclaim_is_choice(view: ClusterView, k: int) -> bool:
    """A reclaim is a real choice when some lent servers stay (k < lent) and at least one
    lent server holds workers; otherwise every pick costs the same preemptions."""
    lent = view.lent_servers
    return k < len(lent) and any(view.free_gpus(s) < view.gpus_per_server for s in lent)


class ReclaimRound:
    """The agent's side of one reclaim: ``k`` picks among the lent servers, one per step.

    **Slots.** Up to ``n_slots`` unpicked lent servers, in the order they were lent;
    when more are lent, the ``n_slots`` with the fewest busy GPUs (ties: lent earlier)
    are shown. The slots are refilled after every pick. Each pick's effect comes from
    the simulator's what-if :class:`~aryl_gym.sim.reclaim.ReclaimSimulation` (the
    engine's own removal rule).
    """

    def __init__(self, n_slots: int = 8) -> None:
        self.n_slots = int(n_slots)
        self.obs_size = self.n_slots * N_RSLOT_F + N_RGLOBAL_F
        self.obs = np.zeros(self.obs_size, dtype=np.float32)
        self.mask = np.zeros(self.n_slots, dtype=bool)
        self.clock = DemandClock()
        self.slots: list[int | None] = [None] * self.n_slots
        self.view: ClusterView | None = None
        self.k = 0
        self.picked: list[int] = []

    def begin(self, view: ClusterView, k: int) -> None:
        self.view = view
        self.k = int(k)
        self.picked = []
        self.order = {s: i for i, s in enumerate(view.lent_servers)}
        self.sim = view.reclaim_simulation()  # the engine's removal rule, server by server
        self._refresh()

    @property
    def on(self) -> dict[int, dict[int, int]]:
        """Unpicked lent server -> {job: GPUs} (given earlier picks)."""
        return self.sim.on

    @property
    def picks_left(self) -> int:
        return self.k - len(self.picked)

    def effect(self, s: int) -> tuple[list[int], list[int]]:
        """(preempted, scaled-in) jobs if server ``s`` is returned next."""
        return self.sim.effect(s)

    def cost(self, s: int, kind: str = "count") -> float:
        pre, _ = self.effect(s)
        return float(len(pre)) if kind == "count" else sum(self.sim.lost[j] for j in pre)

    def pick(self, slot: int) -> tuple[int, float, float]:
        """Return the slot's server next; gives (server, preemptions, lost GPU-seconds)."""
        s = self.slots[slot]
        eff = self.sim.remove(s)
        self.picked.append(s)
        self._refresh()
        return s, float(len(eff.preempted)), eff.lost_gpu_seconds

    def pick_cheapest_rest(self, kind: str = "count") -> tuple[float, float]:
        """Make the remaining picks by :meth:`cheapest_slot`; (preemptions, lost GPU-s)."""
        n_pre = lost = 0.0
        while self.picks_left > 0:
            _, p, lo = self.pick(self.cheapest_slot(kind))
            n_pre += p
            lost += lo
        return n_pre, lost

    def slot_of(self, server: int) -> int | None:
        try:
            return self.slots.index(server)
        except ValueError:
            return None

    def _refresh(self) -> None:
        view = self.view
        g = view.gpus_per_server
        left = list(self.on)
        if len(left) > self.n_slots:
            left = sorted(left, key=lambda s: (sum(self.on[s].values()), self.order[s]))[
                : self.n_slots
            ]
            left.sort(key=lambda s: self.order[s])
        slots: list[int | None] = list(left) + [None] * (self.n_slots - len(left))
        self.slots = slots
        o = self.obs
        t = view.now
        for i, s in enumerate(slots):
            a = i * N_RSLOT_F
            if s is None:
                o[a : a + N_RSLOT_F] = 0.0
                self.mask[i] = False
                continue
            self.mask[i] = self.picks_left > 0
            jobs = self.on[s]
            pre, sc = self.effect(s)
            busy = sum(jobs.values())
            spans, lost = self.sim.spans, self.sim.lost
            span = sum(1 for j in jobs if len(spans[j]) > 1)
            aryl = sum(1.0 / len(spans[j]) for j in pre)
            lost_h = sum(lost[j] for j in pre) / HOUR
            rem = 0.0
            for j in jobs:
                job = view.job(j)
                rem += job.est_remaining_work(t) / job.rate  # at the rate it runs at now
            rem = rem / len(jobs) if jobs else 0.0
            o[a : a + N_RSLOT_F] = (
                1.0,
                busy / g,
                min(len(jobs) / g, 1.0),
                min(len(pre) / g, 1.0),
                min(len(sc) / g, 1.0),
                squash(lost_h, 1.0),
                span / len(jobs) if jobs else 0.0,
                squash(t - view.lent_time(s), HOUR),
                aryl / (aryl + 1.0),
                squash(rem, HOUR),
            )
        c = view.scenario.cluster
        n_inf = max(c.inference_servers, 1)
        trend, sn, co = self.clock.features(view)
        q = len(view.queued)
        g0 = self.n_slots * N_RSLOT_F
        o[g0 : g0 + N_RGLOBAL_F] = (
            min(self.picks_left / self.n_slots, 1.0),
            min(self.k / self.n_slots, 1.0),
            len(view.lent_servers) / n_inf,
            view.free_lent_gpus / max(c.inference_gpus, 1),
            view.free_training_gpus / c.training_gpus,
            q / (q + 16.0),
            min(view.inference_needed / n_inf, 1.0),
            trend,
            sn,
            co,
        )

    def cheapest_slot(self, kind: str = "count") -> int:
        """The fallback pick: lowest cost, then fewest busy GPUs, then lent earliest."""
        cands = [i for i, s in enumerate(self.slots) if s is not None]
        return min(
            cands,
            key=lambda i: (self.cost(self.slots[i], kind), sum(self.on[self.slots[i]].values()), i),
        )


class ReclaimPlanFollower:
    """Turns a reclaim Policy's picks into Reclaim-v0 actions, one pick per step.

    At each new reclaim the policy names its ``k`` servers once; the follower then
    returns the slot of the next server not yet picked. A server without a slot (more
    lent servers than slots) falls back to the cheapest slot and is counted in
    ``untranslatable``. Used by the evaluation path and by behaviour cloning.
    """

    def __init__(self, policy) -> None:
        self.policy = policy
        self.plan: list[int] = []
        self.seen = -1
        self.untranslatable = 0

    def action(self, env) -> int:
        if env.pass_through:  # no reclaim to pick for: the one step takes any action
            return 0
        rr = env.round
        if env.reclaims != self.seen or not self.plan:
            self.seen = env.reclaims
            self.plan = list(self.policy.reclaim(env.engine.view, rr.k))[len(rr.picked) :]
        slot = rr.slot_of(self.plan.pop(0))
        if slot is None:
            self.untranslatable += 1
            slot = rr.cheapest_slot(env.cost)
        return slot
