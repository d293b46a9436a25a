"""Typed configuration of a simulation: the cluster, the job dynamics and the scenario.

Every knob that the Aryl paper does not pin down is a named field here with its
default and the reason for it, so a result can always say what it assumed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from aryl_gym.sim.config import ClusterConfig, DynamicsConfig
from aryl_gym.sim.limits import DAY_S, check_at_most, check_sim_time
from aryl_gym.workload.generator import WorkloadConfig
from aryl_gym.workload.inference import InferenceConfig


@dataclass(frozen=True)
class ScenarioConfig:
    """A named, reproducible experiment: cluster + training workload + inference demand.

    The training workload comes from ``trace`` (a file in the project's trace format or a
    public format of ``workload.real_traces``, read as ``trace_format`` with ``trace_options``)
    when set, else from the synthetic generator with ``workload``. ``window`` is the
    steady-state window ``(start_s, end_s)``: job metrics count jobs submitted inside it
    and usage integrals are clipped to it. ``max_time_s`` stops the simulation early;
    jobs not finished then are reported as unfinished. ``max_drain_s`` stops it that long
    after the last arrival (the earlier of the two limits applies).
    """

    name: str
    description: str = ""
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    workload: WorkloadConfig = field(default_factory=WorkloadConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    dynamics: DynamicsConfig = field(default_factory=DynamicsConfig)
    trace: str | None = None
    trace_format: str | None = None  # a real_traces.FORMATS name; None: detect from the header
    # real_traces.MappingOptions (typed object to avoid a circular import); None: defaults
    trace_options: object | None = None
    window: tuple[float, float] | None = None
    max_time_s: float | None = None
    max_drain_s: float | None = None

    def __post_init__(self) -> None:
        # upper bounds (aryl_gym.sim.limits) of the synthetic workload, checked before any job
        # is generated; a trace's jobs are checked when it is loaded (limits.check_jobs)
        wl = self.workload
        check_sim_time(f"scenario {self.name!r}: workload.days", wl.days * DAY_S)
        check_at_most(
            f"scenario {self.name!r}: the expected number of jobs "
            f"(workload.jobs_per_day {wl.jobs_per_day:g} x workload.days {wl.days:g})",
            wl.jobs_per_day * wl.days,
            "MAX_JOBS",
        )

    def with_(self, **changes) -> ScenarioConfig:
        """A copy with some top-level fields replaced (dataclasses.replace)."""
        return replace(self, **changes)


__all__ = ["ClusterConfig", "DynamicsConfig", "ScenarioConfig"]
