"""A window-length curriculum for Round-v0: short windows first (short episodes, quick
feedback), longer ones later (closer to the evaluation's windows).

A schedule is a list of ``(from_step, hours)`` pairs, the first at step 0, steps rising:
from ``from_step`` on, new episodes are ``hours`` long. :func:`window_hours_at` reads it;
:func:`window_curriculum` is the SB3 callback that applies it before each rollout
through ``RoundEnv.set_window_hours`` (``env_method``: works with Dummy- and
SubprocVecEnv, through Gymnasium wrappers). A single episode can also set its own length
with ``reset(options={"window_hours": h})``.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from aryl_gym.envs.workload_splits import check_window_hours

Schedule = Sequence[tuple[int, float]]


def check_schedule(schedule: Schedule) -> list[tuple[int, float]]:
    """The schedule as a list; ``ValueError`` naming the bad entry otherwise."""
    out: list[tuple[int, float]] = []
    for i, entry in enumerate(schedule):
        try:
            step, hours = entry
        except (TypeError, ValueError):
            raise ValueError(
                f"curriculum entry {i}: need (from_step, hours), got {entry!r}"
            ) from None
        if int(step) != step or step < 0:
            raise ValueError(
                f"curriculum entry {i}: from_step must be an integer >= 0, got {step!r}"
            )
        if out and step <= out[-1][0]:
            raise ValueError(
                f"curriculum entry {i}: steps must rise, got {step} after {out[-1][0]}"
            )
        out.append((int(step), check_window_hours(hours, f"curriculum entry {i} hours")))
    if not out or out[0][0] != 0:
        raise ValueError("a curriculum must start with an entry at step 0")
    return out


def window_hours_at(step: int, schedule: Schedule) -> float:
    """The window length the schedule gives at ``step``."""
    sched = check_schedule(schedule)
    i = bisect.bisect_right([s for s, _ in sched], step) - 1
    return sched[max(i, 0)][1]


def window_curriculum(schedule: Schedule):
    """An SB3 callback setting every env's window length from ``schedule`` at each
    rollout start (needs the ``rl`` extra)."""
    from stable_baselines3.common.callbacks import BaseCallback

    sched = check_schedule(schedule)

    class WindowCurriculum(BaseCallback):
        """Sets ``window_hours`` on the training envs when the schedule changes it."""

        def __init__(self) -> None:
            super().__init__()
            self.hours: float | None = None

        def _on_rollout_start(self) -> None:
            h = window_hours_at(self.num_timesteps, sched)
            if h != self.hours:
                self.training_env.env_method("set_window_hours", h)
                self.hours = h
                self.logger.record("curriculum/window_hours", h)

        def _on_step(self) -> bool:
            return True

    return WindowCurriculum()
