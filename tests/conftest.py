"""Shared test helpers: hand-made workloads and a scripted policy."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from aryl_gym.config import ClusterConfig, DynamicsConfig, ScenarioConfig
from aryl_gym.policy import Allocation, Policy
from aryl_gym.sim.driver import Driver
from aryl_gym.sim.engine import Engine
from aryl_gym.workload.schema import JobTable

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test with the reason when it is absent."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(
            f"{p} not present: real data lives in ../shared beside the checkout (CI has it)"
        )
    return p


def load_script(name: str):
    """``scripts/<name>.py`` imported as a module (the scripts are not a package)."""
    path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_jobs(rows: list[dict]) -> JobTable:
    """A JobTable from dicts with keys submit, gpus, duration and optional elastic/min/max/profile."""
    return JobTable.from_columns(
        submit_time=[r["submit"] for r in rows],
        gpus=[r["gpus"] for r in rows],
        duration=[r["duration"] for r in rows],
        elastic=[r.get("elastic", False) for r in rows],
        min_gpus=[r.get("min", r["gpus"]) for r in rows],
        max_gpus=[r.get("max", r["gpus"]) for r in rows],
        profile=[r.get("profile", "linear") for r in rows],
        job_id=[r.get("id", str(i)) for i, r in enumerate(rows)],
        source="<test>",
    )


def two_server_scenario(**dyn) -> ScenarioConfig:
    """One training and one inference server of 8 GPUs each."""
    return ScenarioConfig(
        name="two-server",
        cluster=ClusterConfig(training_servers=1, inference_servers=1, gpus_per_server=8),
        dynamics=DynamicsConfig(**dyn),
    )


class ScriptedPolicy(Policy):
    """Plays a fixed list of allocations, one per allocate round, then does nothing."""

    name = "scripted"

    def __init__(self, script, uses_loaning: bool = False, reclaim_order=None) -> None:
        self.script = list(script)
        self.uses_loaning = uses_loaning
        self.reclaim_order = reclaim_order
        self.times: list[float] = []

    def allocate(self, view):
        self.times.append(view.now)
        step = self.script.pop(0) if self.script else {}
        return step if isinstance(step, Allocation) else Allocation(dict(step))

    def reclaim(self, view, k):
        if self.reclaim_order is not None:
            return self.reclaim_order[:k]
        return super().reclaim(view, k)


def run_engine(scenario, jobs, policy, demand=None, **kw) -> Engine:
    if demand is None:
        demand = (np.array([0.0]), np.array([scenario.cluster.inference_servers]))
    e = Engine(scenario, jobs, demand, uses_loaning=policy.uses_loaning,
               periodic_rounds=policy.periodic_rounds, elastic_scaling=policy.elastic_scaling, rules=policy.rules, check_invariants=True, **kw)  # fmt: skip
    Driver(e, policy).run_until()
    return e
