"""Hand-written policies of ``ArylGym/ReclaimAhead-v0`` (the baselines beside a learned one).

They read the env's state (the same oracle demand forecast the observation shows) and
return an action of the env:

* :class:`FollowAryl`: always ``follow``: Aryl's own run.
* :class:`Foresight`: the foresight rule. At an ahead point, when the forecast says some
  lent server must go back within ``horizon_s``, it returns now the lent server whose
  early return gains most, if the gain is positive::

      gain = lost_due - lost_now - idle_weight x busy GPUs x (t_due - now)

  (``lost_now``: GPU-seconds its preemptions lose now; ``lost_due``: what they would lose
  at ``t_due``, the first instant the demand takes a lent server back, if the jobs ran on
  and checkpointed on schedule; the last term charges the GPU-time the early return leaves
  idle). An empty server gains ``idle_weight x 0`` and ``0`` lost: it goes back (a server
  lent shortly before a rise is *not borrowed*). Held servers are released when the
  forecast leaves room for them over the whole horizon. At a pick point it picks by lost
  GPU-seconds now (Aryl's greedy with the lost-GPU-seconds cost: the feature alone).
"""

from __future__ import annotations

from dataclasses import dataclass

from aryl_gym.envs.reclaim_ahead_round import PICK
from aryl_gym.sim.reclaim import lost_gpu_seconds


class FollowAryl:
    """Always ``follow``: the env then plays Aryl's run exactly."""

    name = "aryl"

    def action(self, env) -> int:
        return env.unwrapped.round.follow


@dataclass
class Foresight:
    """The foresight rule (module doc)."""

    horizon_s: float = 3600.0
    idle_weight: float = 1.0
    release: bool = True
    ahead: bool = True  # False: only the pick rule (lost GPU-seconds), never ahead
    name: str = "foresight"

    def action(self, env) -> int:
        u = env.unwrapped
        rr = u.round
        if u.pass_through or u._point is None:
            return rr.follow
        if rr.mode == PICK:
            return self._pick(rr)
        if not self.ahead:
            return rr.follow
        view, fc = u.engine.view, u.forecast
        t = view.now
        lent = len(view.lent_servers)
        room = fc.min_loanable(t, t + self.horizon_s) >= lent + view.held_servers
        if self.release and rr.mask[rr.release] and room:
            return rr.release
        t_due = fc.first_below(t, t + self.horizon_s, lent)
        if t_due is None:
            return rr.follow
        ckpt = view.scenario.dynamics.checkpoint_interval_s
        best, best_gain = None, 0.0
        for i, s in enumerate(rr.slots):
            if s is None or not rr.mask[i]:
                continue
            pre, _ = rr.sim.effect(s)
            now = sum(rr.sim.lost[j] for j in pre)
            due = sum(_lost_at(view.job(j), t_due, ckpt) for j in pre)
            busy = sum(rr.sim.on[s].values())
            gain = due - now - self.idle_weight * busy * (t_due - t)
            if gain > best_gain or (best is None and busy == 0):
                best, best_gain = i, gain
        return rr.follow if best is None else best

    def _pick(self, rr) -> int:
        """The slot whose return now loses the fewest GPU-seconds (ties: Aryl's next)."""
        cands = [i for i, s in enumerate(rr.slots) if s is not None and rr.mask[i]]
        nxt = rr.follow_server()

        def cost(i: int) -> tuple[float, int]:
            pre, _ = rr.sim.effect(rr.slots[i])
            return (sum(rr.sim.lost[j] for j in pre), 0 if rr.slots[i] == nxt else 1)

        return min(cands, key=cost) if cands else rr.follow


def _lost_at(job, t: float, ckpt: float) -> float:
    """GPU-seconds a preemption of ``job`` at a later ``t`` would lose if it ran on as now."""
    return lost_gpu_seconds(job, t, ckpt)


POLICIES = {"aryl": FollowAryl, "foresight": Foresight}
