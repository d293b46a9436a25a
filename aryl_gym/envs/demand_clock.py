"""What both observation encoders share: squashing and the episode's demand clock."""

from __future__ import annotations

import math

import numpy as np

from aryl_gym.sim.view import ClusterView

HOUR = 3600.0
DAY = 86400.0


def needed_at(times, needed, t: float) -> int:
    """The inference servers a demand series ``(times, needed)`` asks for at ``t``: its last
    step at or before ``t`` (the first before it starts; 0 for an empty series)."""
    if not len(times):
        return 0
    i = int(np.searchsorted(times, t, side="right")) - 1
    return int(needed[max(i, 0)])


def squash(x: float, tau: float) -> float:
    return x / (x + tau) if x > 0 else 0.0


class DemandClock:
    """Time of day and the inference-demand trend of an episode (shared by both encoders)."""

    def __init__(self) -> None:
        self.offset = 0.0
        self.times: list[float] = [0.0]
        self.needed: list[int] = [0]

    def start_episode(
        self, time_offset_s: float, demand: tuple[np.ndarray, np.ndarray] | None
    ) -> None:
        self.offset = float(time_offset_s)
        if demand is None:
            self.times, self.needed = [0.0], [0]
        else:
            self.times = np.asarray(demand[0], float)
            self.needed = np.asarray(demand[1], np.int64)

    def needed_at(self, t: float) -> int:
        return needed_at(self.times, self.needed, t)

    def features(self, view: ClusterView) -> tuple[float, float, float]:
        """(trend, sin, cos): trend = (needed now - needed 1 h ago) / inference servers."""
        now = view.now
        n_inf = max(view.scenario.cluster.inference_servers, 1)
        trend = (view.inference_needed - self.needed_at(now - HOUR)) / n_inf
        phase = 2.0 * math.pi * ((now + self.offset) % DAY) / DAY
        return max(-1.0, min(1.0, trend)), math.sin(phase), math.cos(phase)
