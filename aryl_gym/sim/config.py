"""The simulator's own configuration: the two pools of servers and the job dynamics."""

from __future__ import annotations

from dataclasses import dataclass

from aryl_gym.sim.limits import check_at_most


@dataclass(frozen=True)
class ClusterConfig:
    """Two pools of identical servers.

    ``inference_gpu_speed`` is the training throughput of an inference GPU relative to a
    training GPU. 1.0 is the homogeneous case; 0.4 models T4-class inference GPUs beside
    V100-class training GPUs (T4 vs V100 training throughput is roughly 0.3-0.5, docs/model.md
    "Heterogeneous pools"; 0.4 is the middle of that range).
    """

    training_servers: int = 4
    inference_servers: int = 4
    gpus_per_server: int = 8
    training_gpu_speed: float = 1.0
    inference_gpu_speed: float = 1.0

    def __post_init__(self) -> None:
        if self.training_servers < 1:
            raise ValueError(
                f"ClusterConfig.training_servers must be >= 1, got {self.training_servers}"
            )
        if self.inference_servers < 0:
            raise ValueError(
                f"ClusterConfig.inference_servers must be >= 0, got {self.inference_servers}"
            )
        if self.gpus_per_server < 1:
            raise ValueError(
                f"ClusterConfig.gpus_per_server must be >= 1, got {self.gpus_per_server}"
            )
        for name in ("training_gpu_speed", "inference_gpu_speed"):
            if not getattr(self, name) > 0:
                raise ValueError(f"ClusterConfig.{name} must be > 0, got {getattr(self, name)}")
        # upper bounds (aryl_gym.sim.limits): memory stays proportional to a sane cluster
        for name in ("training_servers", "inference_servers"):
            check_at_most(f"ClusterConfig.{name}", getattr(self, name), "MAX_SERVERS_PER_POOL")
        check_at_most("ClusterConfig.gpus_per_server", self.gpus_per_server, "MAX_GPUS_PER_SERVER")

    @property
    def training_gpus(self) -> int:
        return self.training_servers * self.gpus_per_server

    @property
    def inference_gpus(self) -> int:
        return self.inference_servers * self.gpus_per_server


@dataclass(frozen=True)
class DynamicsConfig:
    """How jobs and the loaning protocol behave in time (docs/model.md defaults)."""

    scale_overhead_s: float = 30.0  # pause of a running job on resize (Pollux uses 30 s)
    restart_overhead_s: float = 60.0  # pause when a preempted job starts again
    checkpoint_interval_s: float = 1800.0  # work since the last checkpoint is lost on preemption
    round_interval_s: float = 60.0  # periodic re-optimisation rounds of elastic policies
    loan_delay_s: float = 0.0  # delay between an inference server becoming idle and being lent
    duration_noise_sigma: float = 0.0  # log-normal sigma of duration estimates; 0 = oracle

    def __post_init__(self) -> None:
        for name in (
            "scale_overhead_s",
            "restart_overhead_s",
            "loan_delay_s",
            "duration_noise_sigma",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"DynamicsConfig.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("checkpoint_interval_s", "round_interval_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"DynamicsConfig.{name} must be > 0, got {getattr(self, name)}")
