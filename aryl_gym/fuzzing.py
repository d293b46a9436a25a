"""Random episodes that hunt for crashes, hangs and broken invariants.

Three kinds of episode, each seeded and run with the engine's invariant checker on
(``check_invariants=True``):

* :func:`simulator_episode` — a random cluster, workload, inference demand and placement
  rules, driven decision by decision by a random policy. With probability ``p_invalid`` a
  decision is broken in one of the ways of :data:`ALLOCATION_FAULTS` /
  :data:`RECLAIM_FAULTS` (a bad type, job, count, server or placement); the engine must
  reject it with a non-empty ``InvalidDecision`` and leave its state exactly as it was
  (:func:`engine_fingerprint`), and the policy then decides validly. A valid decision,
  built with the view's own ``can_place``, must be accepted.
* :func:`env_episode` — ``Allocate-v0`` or ``Reclaim-v0`` with random actions: mostly valid
  ones, some integers outside the mask (counted invalid no-ops) and some non-integers
  (``InvalidAction``, nothing counted). Observations must stay in the observation space,
  rewards finite, and every episode must end with a summary.
* :func:`trace_episode` — a random trace file, valid or not (bad numbers, missing cells,
  unsorted rows, jobs too large or too long); loading and simulating it must either run
  or raise ``ValueError``, never another exception type.

Each returns an :class:`EpisodeResult`; what breaks a rule raises :class:`FuzzViolation`
naming the episode's seed, so ``seed`` reproduces it. ``tests/test_fuzz.py`` runs a few
hundred episodes under hypothesis; ``scripts/fuzz.py`` runs thousands.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aryl_gym.config import ClusterConfig, DynamicsConfig, ScenarioConfig
from aryl_gym.policy import Allocation, InvalidDecision, PlacementRules
from aryl_gym.sim.engine import RECLAIM, Engine
from aryl_gym.sim.job import DONE
from aryl_gym.sim.profiles import PROFILES
from aryl_gym.workload.inference import InferenceConfig
from aryl_gym.workload.schema import JobTable

__all__ = [
    "ALLOCATION_FAULTS",
    "RECLAIM_FAULTS",
    "EpisodeResult",
    "FuzzViolation",
    "engine_fingerprint",
    "env_episode",
    "episode_kinds",
    "random_world",
    "simulator_episode",
    "trace_episode",
]

HOUR = 3600.0


class FuzzViolation(AssertionError):
    """A fuzz episode broke a rule: a crash of an unexpected type, a state changed by a
    rejected decision, an invalid decision accepted, a hang, or a broken invariant."""


@dataclass
class EpisodeResult:
    """What one episode did: decisions or env steps taken, and bad inputs cleanly rejected."""

    steps: int = 0
    rejected: int = 0


# --------------------------------------------------------------------------- engine state
def engine_fingerprint(e: Engine) -> tuple:
    """Everything a decision can change: every job's state, every server's GPUs and jobs,
    the free-GPU buckets, the queue and running orders, the completion heap, the clock,
    the counters and the pending decision point."""
    jobs = tuple(
        None
        if j is None
        else (j.state, j.n_gpus, tuple(sorted(j.placement.items())), j.progress, j.version,
              j.preemptions, j.resizes, j.rate, j.gpu_seconds, j.queue_time, j.lost_work,
              j.pause_until)
        for j in e.jobs
    )  # fmt: skip
    cl = e.cluster
    servers = (
        tuple(cl.free),
        tuple(cl.lent),
        tuple(tuple(sorted(on.items())) for on in cl.jobs_on),
        tuple(tuple(tuple(sorted(b)) for b in cls) for cls in cl.buckets),
        tuple(cl.busy),
        tuple(cl.free_total),
        tuple(cl.lent_order),
    )
    point = None if e._waiting is None else (e._waiting.kind, e._waiting.k)
    return (jobs, servers, tuple(e.queue), tuple(e.running), tuple(sorted(e._heap)), e.t,
            e.allocation_epoch, e.n_done, e.reclaim_events, point)  # fmt: skip


# --------------------------------------------------------------------------- random world
def random_world(
    rng: np.random.Generator,
) -> tuple[ScenarioConfig, JobTable, tuple[np.ndarray, np.ndarray], PlacementRules]:
    """A small random scenario (1-3 training and 0-3 inference servers), 1-12 jobs that
    fit it, a random inference demand series over 12 h and random placement rules."""
    g = int(rng.choice([1, 2, 4, 8]))
    n_train, n_inf = int(rng.integers(1, 4)), int(rng.integers(0, 4))
    cluster = ClusterConfig(
        training_servers=n_train,
        inference_servers=n_inf,
        gpus_per_server=g,
        inference_gpu_speed=float(rng.choice([1.0, 0.4])),
    )
    dynamics = DynamicsConfig(
        loan_delay_s=float(rng.choice([0.0, 300.0])),
        duration_noise_sigma=float(rng.choice([0.0, 0.5])),
        round_interval_s=float(rng.choice([60.0, 900.0])),
        checkpoint_interval_s=float(rng.choice([600.0, 1800.0])),
    )
    reserve = int(rng.integers(0, 2)) if n_inf else 0
    scenario = ScenarioConfig(
        name="fuzz",
        cluster=cluster,
        dynamics=dynamics,
        inference=InferenceConfig(reserve_servers=reserve),
        max_drain_s=float(rng.choice([2.0, 12.0])) * HOUR,
    )
    n = int(rng.integers(1, 13))
    cap = n_train * g  # every job fits the training pool
    gpus = rng.integers(1, cap + 1, n)
    elastic = rng.random(n) < 0.5
    lo = np.where(elastic, rng.integers(1, gpus + 1), gpus)
    hi = np.where(elastic, np.minimum(gpus * 2, cap + n_inf * g), gpus)
    profiles = sorted(PROFILES)
    jobs = JobTable.from_columns(
        submit_time=np.sort(rng.uniform(0.0, 4 * HOUR, n)),
        gpus=gpus,
        duration=rng.uniform(30.0, 3 * HOUR, n),
        elastic=elastic,
        min_gpus=lo,
        max_gpus=hi,
        profile=[profiles[i] for i in rng.integers(len(profiles), size=n)],
        source="<fuzz>",
    )
    steps = int(rng.integers(1, 12))
    times = np.concatenate(([0.0], np.sort(rng.uniform(0.0, 12 * HOUR, steps - 1))))
    needed = rng.integers(0, n_inf + 1, steps)
    rules = PlacementRules(*(bool(b) for b in rng.random(7) < 0.5))
    return scenario, jobs, (times, needed), rules


# --------------------------------------------------------------------------- decisions
def valid_allocation(e: Engine, rng: np.random.Generator) -> Allocation:
    """A random decision the engine must accept: some running jobs shrink or stop, some
    grow and some waiting jobs start, kept only while the view says the whole change can
    be placed; or, one time in four, one job pinned to the placement the default placer
    would give it (an explicit placement)."""
    view = e.view
    active = [*view.queued.values(), *view.running.values()]
    if active and rng.random() < 0.25:
        job = active[int(rng.integers(len(active)))]
        n = int(rng.integers(job.min_gpus, job.max_gpus + 1)) if rng.random() < 0.8 else 0
        place = view.placement_with(job, n)
        if place is not None:
            return Allocation({job.idx: n}, {job.idx: place})
    targets: dict[int, int] = {}
    for idx, job in list(view.running.items()):
        if rng.random() < 0.15:
            targets[idx] = (
                0 if rng.random() < 0.5 else int(rng.integers(job.min_gpus, job.n_gpus + 1))
            )
    grows = [(idx, job.n_gpus + 1) for idx, job in view.running.items() if idx not in targets]
    grows += [(idx, job.min_gpus) for idx, job in view.queued.items()]
    for idx, low in grows:
        job = view.job(idx)
        if low <= job.max_gpus and rng.random() < 0.6:
            trial = dict(targets)
            trial[idx] = int(rng.integers(low, job.max_gpus + 1))
            if view.can_place(trial):
                targets = trial
    return Allocation(targets)


def _some_job(e: Engine, rng: np.random.Generator) -> int:
    active = [*e.queue, *e.running]
    return int(rng.choice(active)) if active else 0


def _inactive_job(e: Engine, rng: np.random.Generator) -> int:
    """A job index that is not active: finished, not arrived yet, or out of range."""
    inactive = [i for i, j in enumerate(e.jobs) if j is None or j.state == DONE]
    return int(rng.choice(inactive)) if inactive and rng.random() < 0.7 else len(e.jobs) + 5


def _overfull_placement(e: Engine, rng: np.random.Generator) -> Allocation:
    """A queued job pinned to a server with fewer free GPUs than the placement asks
    (valid in form, invalid in room)."""
    queued = list(e.queue.values())
    if not queued:
        return Allocation({len(e.jobs) + 1: 1})
    job = queued[int(rng.integers(len(queued)))]
    cl = e.cluster
    full = [s for s in range(cl.n_training) if cl.free[s] < job.base_gpus]
    if not full or job.base_gpus > cl.gpus_per_server:
        return Allocation({job.idx: job.base_gpus}, {job.idx: {-1: job.base_gpus}})
    return Allocation({job.idx: job.base_gpus}, {job.idx: {int(rng.choice(full)): job.base_gpus}})


#: Broken allocate decisions: name -> builder(engine, rng). Every one of them must be
#: rejected (InvalidDecision, engine unchanged).
ALLOCATION_FAULTS: dict[str, Callable[[Engine, np.random.Generator], Any]] = {
    "none": lambda e, r: None,
    "dict": lambda e, r: {_some_job(e, r): 1},
    "list": lambda e, r: [(_some_job(e, r), 1)],
    "string": lambda e, r: "allocate everything",
    "gpus-not-a-dict": lambda e, r: Allocation([(_some_job(e, r), 1)]),
    "placement-not-a-dict": lambda e, r: Allocation({}, [(0, {0: 1})]),
    "inactive-job": lambda e, r: Allocation({_inactive_job(e, r): 1}),
    "negative-job": lambda e, r: Allocation({-1 - int(r.integers(5)): 1}),
    "string-job": lambda e, r: Allocation({str(_some_job(e, r)): 1}),
    "float-job": lambda e, r: Allocation({float(_some_job(e, r)): 1}),
    "float-gpus": lambda e, r: Allocation({_some_job(e, r): float(r.integers(1, 4)) + 0.5}),
    "integral-float-gpus": lambda e, r: Allocation({_some_job(e, r): 2.0}),
    "nan-gpus": lambda e, r: Allocation({_some_job(e, r): math.nan}),
    "inf-gpus": lambda e, r: Allocation({_some_job(e, r): math.inf}),
    "bool-gpus": lambda e, r: Allocation({_some_job(e, r): True}),
    "string-gpus": lambda e, r: Allocation({_some_job(e, r): "4"}),
    "negative-gpus": lambda e, r: Allocation({_some_job(e, r): -1}),
    "too-many-gpus": lambda e, r: Allocation({(j := _some_job(e, r)): _max_gpus(e, j) + 1}),
    "unknown-server": lambda e, r: Allocation({}, {_some_job(e, r): {e.cluster.n_servers: 1}}),
    "float-server": lambda e, r: Allocation({}, {_some_job(e, r): {0.0: 1}}),
    "negative-count": lambda e, r: Allocation({}, {_some_job(e, r): {0: -1}}),
    "placement-sum": lambda e, r: Allocation({(j := _some_job(e, r)): 1}, {j: {0: 2}}),
    "overfull-server": _overfull_placement,
}


def _max_gpus(e: Engine, idx: int) -> int:
    job = e.jobs[idx] if 0 <= idx < len(e.jobs) else None
    return job.max_gpus if job is not None else 1


def _unlent_server(e: Engine, lent: list[int]) -> list[int]:
    cl = e.cluster
    other = [s for s in range(cl.n_servers) if s not in lent]
    return [other[0] if other else cl.n_servers, *lent][: len(lent)]


#: Broken reclaim decisions: name -> builder(engine, k, rng). Every one must be rejected.
RECLAIM_FAULTS: dict[str, Callable[[Engine, int, np.random.Generator], Any]] = {
    "none": lambda e, k, r: None,
    "too-few": lambda e, k, r: e.cluster.lent_order[: k - 1],
    "too-many": lambda e, k, r: [*e.cluster.lent_order[:k], e.cluster.n_servers],
    "duplicate": lambda e, k, r: [e.cluster.lent_order[0]] * max(k, 2),
    "not-lent": lambda e, k, r: _unlent_server(e, e.cluster.lent_order[:k]),
    "float-ids": lambda e, k, r: [float(s) for s in e.cluster.lent_order[:k]],
    "set": lambda e, k, r: set(e.cluster.lent_order[:k]),
    "dict": lambda e, k, r: dict.fromkeys(e.cluster.lent_order[:k], 1),
    "string": lambda e, k, r: ",".join(map(str, e.cluster.lent_order[:k])),
    "negative": lambda e, k, r: [-1, *e.cluster.lent_order[: k - 1]],
}


# --------------------------------------------------------------------------- episodes
def _violation(kind: str, seed: int, what: str) -> FuzzViolation:
    return FuzzViolation(f"{kind} episode, seed {seed}: {what}")


def simulator_episode(
    seed: int, p_invalid: float = 0.3, max_decisions: int = 50_000
) -> EpisodeResult:
    """One random world (:func:`random_world`) run to its end by a random policy whose
    decisions are broken with probability ``p_invalid``; see the module docstring."""
    rng = np.random.default_rng(seed)
    scenario, jobs, demand, rules = random_world(rng)
    e = Engine(
        scenario, jobs, demand, seed=seed, uses_loaning=bool(rng.random() < 0.8),
        periodic_rounds=bool(rng.random() < 0.3), elastic_scaling=bool(rng.random() < 0.8),
        rules=rules, check_invariants=True,
    )  # fmt: skip
    out = EpisodeResult()
    while (point := e.advance()) is not None:
        out.steps += 1
        if out.steps > max_decisions:
            raise _violation("simulator", seed, f"more than {max_decisions} decisions (a hang?)")
        if point.kind == RECLAIM:
            k = point.k
            decide: Callable[[Any], Any] = e.decide_reclaim
            faults = RECLAIM_FAULTS
            lent = list(e.cluster.lent_order)
            valid = [lent[i] for i in rng.permutation(len(lent))[:k]]
            args: tuple = (e, k, rng)
        else:
            decide, faults = e.decide_allocation, ALLOCATION_FAULTS
            valid = valid_allocation(e, rng)
            args = (e, rng)
        if rng.random() < p_invalid:
            name = list(faults)[int(rng.integers(len(faults)))]
            bad = faults[name](*args)
            _expect_rejection(e, decide, bad, f"simulator episode, seed {seed}, fault {name!r}")
            out.rejected += 1
        try:
            decide(valid)
        except InvalidDecision as exc:
            raise _violation(
                "simulator", seed, f"a valid decision {valid!r} was rejected: {exc}"
            ) from exc
    summary = e.metrics.summary()
    if summary["jobs_finished"] + summary["jobs_unfinished"] != summary["jobs_total"]:
        raise _violation("simulator", seed, f"job counts do not add up: {summary}")
    return out


def _expect_rejection(e: Engine, decide: Callable[[Any], Any], bad: Any, where: str) -> None:
    """``decide(bad)`` must raise a non-empty ``InvalidDecision`` and change nothing."""
    before = engine_fingerprint(e)
    try:
        decide(bad)
    except InvalidDecision as exc:
        if not str(exc):
            raise FuzzViolation(f"{where}: InvalidDecision without a message") from exc
    except Exception as exc:
        raise FuzzViolation(
            f"{where}: {type(exc).__name__} instead of InvalidDecision for {bad!r}: {exc}"
        ) from exc
    else:
        raise FuzzViolation(f"{where}: the invalid decision {bad!r} was accepted")
    if engine_fingerprint(e) != before:
        raise FuzzViolation(f"{where}: the rejected decision {bad!r} changed the engine")


#: Non-integer actions an env must refuse with InvalidAction.
BAD_ACTIONS: tuple = (
    1.5,
    2.0,
    "0",
    True,
    np.bool_(False),
    math.nan,
    math.inf,
    None,
    [0],
    np.float32(1),
)


def env_episode(env, seed: int, p_unmasked: float = 0.2, p_non_integer: float = 0.05,
                max_steps: int = 200_000) -> EpisodeResult:  # fmt: skip
    """One episode of ``env`` (Allocate-v0 or Reclaim-v0, built with
    ``check_invariants=True``) with random actions; see the module docstring."""
    from aryl_gym.envs.protocol import InvalidAction

    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    env_id = type(env).__name__
    out = EpisodeResult()
    n = int(env.action_space.n)
    commit = n - 1 if hasattr(env.round, "commit_action") else None
    while True:
        if not env.observation_space.contains(obs):
            raise _violation(env_id, seed, f"observation outside the space after {out.steps} steps")
        mask = env.action_masks()
        if not mask.any():
            raise _violation(env_id, seed, f"no valid action after {out.steps} steps")
        u = rng.random()
        if u < p_non_integer:
            bad = BAD_ACTIONS[int(rng.integers(len(BAD_ACTIONS)))]
            counted = env.protocol.steps
            try:
                env.step(bad)
            except InvalidAction:
                out.rejected += 1
            except Exception as exc:
                raise _violation(
                    env_id, seed, f"{type(exc).__name__} for action {bad!r}: {exc}"
                ) from exc
            else:
                raise _violation(env_id, seed, f"the action {bad!r} was accepted")
            if env.protocol.steps != counted:
                raise _violation(env_id, seed, f"the refused action {bad!r} was counted")
            continue
        if u < p_non_integer + p_unmasked:
            action = int(rng.integers(-2, n + 2))
        elif commit is not None and rng.random() < 0.4:
            action = commit
        else:
            action = int(rng.choice(np.flatnonzero(mask)))
        obs, reward, term, trunc, info = env.step(action)
        out.steps += 1
        if not math.isfinite(reward):
            raise _violation(env_id, seed, f"reward {reward} at step {out.steps}")
        if term or trunc:
            if "summary" not in info:
                raise _violation(env_id, seed, "the final info has no summary")
            return out
        if out.steps >= max_steps:
            raise _violation(env_id, seed, f"no end after {max_steps} steps (a hang?)")


_BAD_CELLS: dict[str, tuple[str, ...]] = {
    "submit_time": ("-5", "nan", "inf", "1e12", "abc", "", "1e300"),
    "gpus": ("0", "-2", "1.5", "1e300", "x", "", "100000"),
    "duration": ("0", "-1", "nan", "inf", "1e300", "1e9", "", "ten"),
}


def trace_episode(seed: int, folder: Path, p_bad: float = 0.04) -> EpisodeResult:
    """Write a random trace (0-8 rows, each cell bad with probability ``p_bad``, rows
    sometimes out of order), load it as the ``tiny`` scenario's workload and, if that
    works, simulate it with Aryl; anything but success or ``ValueError`` is a violation."""
    from aryl_gym.baselines import make_policy
    from aryl_gym.scenarios import build_workload, get_scenario, scenario_with_trace
    from aryl_gym.simulate import run_policy

    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 9))
    sane = {
        "submit_time": np.sort(rng.uniform(0.0, 6 * HOUR, n)),
        "gpus": rng.choice([1, 2, 4, 8, 16], n),
        "duration": rng.uniform(10.0, 4 * HOUR, n),
    }
    if rng.random() < 0.1:
        sane["submit_time"] = sane["submit_time"][::-1]
    lines = ["job_id,submit_time,gpus,duration"]
    for i in range(n):
        cells = [f"j{i}"]
        for col in ("submit_time", "gpus", "duration"):
            bad = _BAD_CELLS[col]
            cells.append(
                bad[int(rng.integers(len(bad)))]
                if rng.random() < p_bad
                else repr(sane[col][i].item())
            )
        lines.append(",".join(cells))
    path = folder / f"fuzz-{seed}.csv"
    path.write_text("\n".join(lines) + "\n")
    out = EpisodeResult()
    try:
        # the command line's path: the training pool is sized for a trace that does not fit
        scenario = scenario_with_trace(get_scenario("tiny"), trace=path)
        jobs, demand = build_workload(scenario, seed)
        run_policy(scenario, make_policy("aryl"), seed, jobs=jobs, demand=demand,
                   check_invariants=True)  # fmt: skip
        out.steps = 1
    except ValueError as exc:
        if not str(exc):
            raise _violation("trace", seed, "ValueError without a message") from exc
        out.rejected = 1
    except Exception as exc:
        raise _violation(
            "trace", seed, f"{type(exc).__name__} from {path.read_text()!r}: {exc}"
        ) from exc
    finally:
        path.unlink()
    return out


def episode_kinds(folder: Path) -> dict[str, Callable[[int], EpisodeResult]]:
    """The kinds of fuzz episode by name, each a function of the seed: ``simulator``,
    ``trace`` (trace files written to ``folder``), ``allocate`` (Allocate-v0 on ``tiny``,
    1-hour windows, at most 64 actions a round) and ``reclaim`` (Reclaim-v0 on ``small``,
    6-hour windows). The envs are built on first use and reused by later episodes."""
    envs: dict[str, Any] = {}

    def on_env(name: str) -> Callable[[int], EpisodeResult]:
        def run(seed: int) -> EpisodeResult:
            if name not in envs:
                envs[name] = _fuzz_env(name)
            return env_episode(envs[name], seed)

        return run

    return {
        "simulator": simulator_episode,
        "trace": lambda seed: trace_episode(seed, folder),
        "allocate": on_env("allocate"),
        "reclaim": on_env("reclaim"),
    }


def _fuzz_env(name: str):
    from aryl_gym.envs.allocate import AllocateEnv
    from aryl_gym.envs.reclaim import ReclaimEnv

    if name == "allocate":
        # the widest action set (periodic rounds, ops that undo others, the agent's own
        # preemptions): random actions then reach every engine path the env can
        return AllocateEnv(
            "tiny", episode_hours=1.0, drain_hours=3.0, max_actions_per_round=64,
            periodic_rounds=True, monotone_rounds=False, allow_preemption=True,
            check_invariants=True,
        )  # fmt: skip
    return ReclaimEnv("small", episode_hours=6.0, drain_hours=6.0, check_invariants=True)
