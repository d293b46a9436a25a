"""Rewards of the envs as small objects: a new reward is one class, not constructor edits.

An env calls its reward once per step with a :class:`StepOutcome` (what happened since
the previous step) and returns the value. Pass ``reward=`` by name (see
:data:`ALLOCATE_REWARDS`, :data:`RECLAIM_REWARDS`) or as an instance; the envs' old
keywords (``reward_scale``, ``preemption_penalty``) configure the default reward.

::

    class QueueReward(Reward):
        name = "queue"
        def __call__(self, out): return -out.engine.metrics.jobs_in_system_s  # your rule

    gym.make("ArylGym/Allocate-v0", reward=QueueReward())
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from aryl_gym.sim.engine import Engine


@dataclass(frozen=True)
class StepOutcome:
    """What happened since the previous step: the engine now, the preemptions (by the
    agent's decisions and by reclaims) and the GPU-seconds they lost."""

    engine: Engine
    preemptions: float = 0.0
    lost_gpu_seconds: float = 0.0


class Reward(ABC):
    """A step reward. ``reset`` is called at the start of each episode."""

    name: ClassVar[str] = "reward"

    def reset(self, engine: Engine) -> None:  # noqa: B027 - optional hook
        """Start of an episode."""

    @abstractmethod
    def __call__(self, outcome: StepOutcome) -> float:
        """The reward of the step that led to ``outcome``."""


class JobsInSystem(Reward):
    """``-(increase of the jobs-in-system integral + preemption_penalty x preemptions) /
    scale``: over an episode, minus the total JCT (in hours at the default scale) minus
    the penalty."""

    name = "jct"

    def __init__(self, scale: float = 3600.0, preemption_penalty: float = 0.0) -> None:
        if not scale > 0:
            raise ValueError(f"reward scale must be > 0, got {scale}")
        self.scale = float(scale)
        self.preemption_penalty = float(preemption_penalty)
        self._paid = 0.0

    def reset(self, engine: Engine) -> None:
        self._paid = engine.metrics.jobs_in_system_s

    def __call__(self, outcome: StepOutcome) -> float:
        jis = outcome.engine.metrics.jobs_in_system_s
        r = -(jis - self._paid + self.preemption_penalty * outcome.preemptions) / self.scale
        self._paid = jis
        return r


class Preemptions(Reward):
    """``-preemptions / scale``: over an episode, minus the preemptions."""

    name = "preemptions"

    def __init__(self, scale: float = 1.0) -> None:
        if not scale > 0:
            raise ValueError(f"reward scale must be > 0, got {scale}")
        self.scale = float(scale)

    def __call__(self, outcome: StepOutcome) -> float:
        return -outcome.preemptions / self.scale


class LostGpuTime(Reward):
    """``-lost GPU-seconds / scale``: minus the lost GPU-hours at the default scale."""

    name = "lost_gpu_seconds"

    def __init__(self, scale: float = 3600.0) -> None:
        if not scale > 0:
            raise ValueError(f"reward scale must be > 0, got {scale}")
        self.scale = float(scale)

    def __call__(self, outcome: StepOutcome) -> float:
        return -outcome.lost_gpu_seconds / self.scale


ALLOCATE_REWARDS: dict[str, type[Reward]] = {JobsInSystem.name: JobsInSystem}
RECLAIM_REWARDS: dict[str, type[Reward]] = {
    Preemptions.name: Preemptions,
    "count": Preemptions,  # Reclaim-v0's ``cost`` names
    LostGpuTime.name: LostGpuTime,
}


def make_reward(reward: str | Reward, known: dict[str, type[Reward]], **defaults) -> Reward:
    """``reward`` itself when it is a :class:`Reward`, else the named one built with
    ``defaults``; ``ValueError`` listing the known names otherwise."""
    if isinstance(reward, Reward):
        return reward
    if reward not in known:
        raise ValueError(f"unknown reward {reward!r}; known: {', '.join(known)} (or a Reward)")
    return known[reward](**defaults)
