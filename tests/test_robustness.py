"""Nothing a careless user or a buggy policy does crashes, hangs or loses a result:
env copies continue like their originals, every small scenario runs with both envs,
a rejected decision changes nothing, bad decisions and actions fail with messages that
name the policy, the job and the field, and the end-of-run flags tell the truth."""

from __future__ import annotations

import copy
import math
import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from aryl_gym.baselines import make_policy, policy_specs

from aryl_gym.config import ClusterConfig, ScenarioConfig
from aryl_gym.envs.allocate import AllocateEnv
from aryl_gym.envs.protocol import InvalidAction
from aryl_gym.envs.reclaim import ReclaimEnv
from aryl_gym.fuzzing import engine_fingerprint
from aryl_gym.policy import Allocation, InvalidDecision, PlacementRules, Policy
from aryl_gym.scenarios import build_workload, get_scenario
from aryl_gym.sim.driver import Driver
from aryl_gym.sim.engine import ALLOCATE, RECLAIM, Engine
from aryl_gym.simulate import make_engine, run_policy
from tests.conftest import ScriptedPolicy, make_jobs, run_engine, two_server_scenario

ENVS = {"Allocate-v0": AllocateEnv, "Reclaim-v0": ReclaimEnv}


# --------------------------------------------------------------------------- helpers
def assert_same(a: Any, b: Any, where: str = "step") -> None:
    """``a == b`` all the way down (arrays element-wise, NaN equal to NaN)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), f"{where}: keys {list(a)} != {list(b)}"
        for k in a:
            assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (tuple, list)):
        assert type(a) is type(b) and len(a) == len(b), f"{where}: {a!r} != {b!r}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, float) and math.isnan(a):
        assert isinstance(b, float) and math.isnan(b), f"{where}: nan != {b!r}"
    else:
        assert a == b and type(a) is type(b), f"{where}: {a!r} != {b!r}"


def masked_action(env, rng: np.random.Generator) -> int:
    """A random valid action; on Allocate-v0 commit half of the time (short rounds)."""
    valid = np.flatnonzero(env.action_masks())
    if isinstance(env, AllocateEnv) and rng.random() < 0.5:
        return int(env.action_space.n - 1)
    return int(rng.choice(valid))


def engine_at(scenario, rows, script, policy_rules=None, demand=None, kind=ALLOCATE):
    """An engine driven by ``script`` (one Allocation per allocate round) until its next
    ``kind`` point after the script is played; returns (engine, point)."""

    class Script(Policy):
        name = "script"
        uses_loaning = True
        rules = policy_rules or PlacementRules()

        def __init__(self) -> None:
            self.todo = list(script)

        def allocate(self, view):
            return self.todo.pop(0) if self.todo else Allocation()

    if demand is None:
        demand = (np.array([0.0]), np.array([0]))
    pol = Script()
    e = Engine(scenario, make_jobs(rows), demand, uses_loaning=True, rules=pol.rules,
               check_invariants=True)  # fmt: skip
    point = Driver(e, pol).run_until(lambda p: not pol.todo and p.kind == kind)
    assert point is not None and point.kind == kind
    return e, point


# ------------------------------------------------------------------ 5. envs that copy
COPIES = {
    "deepcopy": copy.deepcopy,
    "pickle": lambda env: pickle.loads(pickle.dumps(env)),
}
try:
    import cloudpickle

    COPIES["cloudpickle"] = lambda env: cloudpickle.loads(cloudpickle.dumps(env))
except ImportError:  # pragma: no cover - cloudpickle comes with gymnasium
    pass


def _play_in_lockstep(env, twin, rng, max_steps: int) -> int:
    """Step both envs with the same actions and compare everything they return; the
    number of steps (the episode's end included)."""
    for n in range(1, max_steps + 1):
        a = masked_action(env, rng)
        out, out2 = env.step(a), twin.step(a)
        assert_same(out, out2, f"step {n} after the copy")
        np.testing.assert_array_equal(env.action_masks(), twin.action_masks())
        if out[2] or out[3]:
            assert "summary" in out[4]  # the final summaries were compared too
            return n
    return max_steps


@pytest.mark.parametrize("how", list(COPIES))
def test_allocate_env_copied_mid_episode_continues_like_the_original(how):
    """The round encoder writes its observation and mask through views (``_slot_obs``,
    ``_mv``); a copy used to get views of arrays of their own, so its masks and
    observations froze. Copied after 25 steps, the copy plays the episode to the end
    exactly as the original, final summary included."""
    # periodic rounds: hundreds of steps in this window (with the default event rounds a
    # random agent ends it in 28), so the copy plays long enough to diverge if it could
    env = AllocateEnv("small", episode_hours=3.0, check_invariants=True, periodic_rounds=True)
    env.reset(seed=3)
    rng = np.random.default_rng(3)
    for _ in range(25):
        env.step(masked_action(env, rng))
    twin = COPIES[how](env)
    assert _play_in_lockstep(env, twin, rng, 20_000) > 100


@pytest.mark.parametrize("how", list(COPIES))
def test_reclaim_env_copied_mid_episode_continues_like_the_original(how):
    """A cluster's free-GPU buckets are sets whose iteration order depends on their
    history, which a copy lost: the placer then picked other servers in the copy, and 4 of
    these 12 episodes, copied after their first step, diverged (seeds 2, 7, 8 and 10)."""
    for seed in range(12):
        env = ReclaimEnv("small", check_invariants=True)
        env.reset(seed=seed)
        rng = np.random.default_rng(seed)
        env.step(masked_action(env, rng))
        if not env._done:
            _play_in_lockstep(env, COPIES[how](env), rng, 1000)


def test_every_policy_pickles_mid_run():
    """No lambda or local function in what a policy or the engine keeps: the standard
    pickle takes a driver in the middle of a run, for every registered policy."""
    for name in policy_specs():
        policy = make_policy(name)
        e = make_engine(get_scenario("tiny"), policy, 0)
        policy.reset(e.view, 0)
        d = Driver(e, policy)
        for _ in range(20):
            point = d.run_until(lambda p: True)
            if point is None:
                break
            d.decide(point)
        copied = pickle.loads(pickle.dumps(d))
        assert copied.engine.t == e.t, name


# ------------------------------------------------- 6. every small scenario, both envs
@pytest.mark.parametrize("env_name", list(ENVS))
@pytest.mark.parametrize("scenario", ["tiny", "small"])
def test_every_small_scenario_runs_episodes_of_both_envs(scenario, env_name):
    """Reclaim-v0 on tiny raised RuntimeError at every reset: its two inference servers
    never lend more than one, so no reclaim is ever a choice. Now every split of both
    scenarios runs episodes of both envs to the end."""
    rng = np.random.default_rng(0)
    for split in ("train", "val", "test"):
        env = ENVS[env_name](scenario, split=split, check_invariants=True)
        obs, info = env.reset(seed=1)
        assert env.observation_space.contains(obs) and env.action_masks().any()
        for _ in range(50_000):
            obs, r, term, trunc, info = env.step(masked_action(env, rng))
            assert env.observation_space.contains(obs) and math.isfinite(r)
            if term or trunc:
                break
        assert term or trunc, f"{scenario}/{split}: the episode did not end"
        assert info["summary"]["jobs_total"] > 0
        if env_name == "Reclaim-v0":
            assert info["pass_through"] is (scenario == "tiny")


def test_reclaim_pass_through_episode_is_one_step_that_charges_every_reclaim():
    env = ReclaimEnv("tiny")
    obs, info = env.reset(seed=0)
    assert info["pass_through"] and not obs.any()
    assert env.action_masks().tolist() == [True] + [False] * (env.round.n_slots - 1)
    with pytest.raises(InvalidAction):
        env.step(0.0)
    _, r, term, trunc, info = env.step(0)
    assert term and not trunc and info["pass_through"]
    assert r == -info["summary"]["preemptions"] == -info["preemptions"]
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(0)


# ------------------------------------------- 7. a rejected decision changes nothing
ROWS = [
    dict(submit=0, gpus=4, duration=5000),  # 0: on server 0 (4 of its 8 GPUs)
    dict(submit=0, gpus=8, duration=5000, elastic=True, min=4, max=8),  # 1: on server 1
    dict(submit=10, gpus=4, duration=5000),  # 2: queued
    dict(submit=10, gpus=4, duration=5000),  # 3: queued
]
TWO_POOLS = ScenarioConfig(
    name="2+2", cluster=ClusterConfig(training_servers=2, inference_servers=2, gpus_per_server=8)
)


def _rejected(e: Engine, decide: Callable[[Any], Any], decision: Any, match: str) -> None:
    """``decide(decision)`` raises ``InvalidDecision`` matching ``match`` and changes
    nothing: the engine still waits for the same decision."""
    before = engine_fingerprint(e)
    point = e._waiting
    with pytest.raises(InvalidDecision, match=match):
        decide(decision)
    assert engine_fingerprint(e) == before and e._waiting is point


@pytest.mark.parametrize(
    "alloc, match",
    [
        (Allocation({0: 0, 2: 4, 1002: 1}), "job index 1002"),
        (Allocation({0: 0, 2: 1.99}), "must be an integer, got float 1.99"),
        # explicit placements used to be checked while they were applied: the stop of
        # job 0 (or the start of job 3) was done when the placement of job 2 failed
        (Allocation({0: 0, 2: 4}, {2: {7: 4}}), "server 7 is neither a training server"),
        (Allocation({0: 0, 2: 4}, {2: {0: 3}}), "sums to 3 GPUs, Allocation.gpus says 4"),
        (Allocation({0: 0}, {2: {0: 5}}), "5 GPUs is outside its allowed 4"),
        (Allocation({0: 0}, {2: {0: -4, 1: 8}}), "-4 GPUs on server 0"),
        (Allocation({0: 0, 2: 4}, {2: {1: 4}}), "server 1 has 0 free GPUs, placement adds 4"),
        # the default placer's start of job 3 takes the 4 GPUs free on server 0 first
        (Allocation({3: 4, 2: 4}, {2: {0: 4}}), "server 0 has 0 free GPUs, placement adds 4"),
    ],
    ids=["bad-index", "float-gpus", "unusable", "sum", "bounds", "negative", "room", "grow"],
)
def test_rejected_allocation_leaves_the_engine_unchanged(alloc, match):
    script = [Allocation({0: 4, 1: 8}, {0: {0: 4}, 1: {1: 8}})]
    e, _ = engine_at(TWO_POOLS, ROWS, script)
    assert set(e.running) == {0, 1} and set(e.queue) == {2, 3}
    _rejected(e, e.decide_allocation, alloc, match)
    e.decide_allocation(Allocation({2: 4}))  # the engine still takes a valid decision
    assert e.jobs[2].placement == {0: 4}


@pytest.mark.parametrize(
    "servers, match",
    [
        ([2, 3], "needs 1 distinct lent servers"),
        ([0], "server 0 is not lent"),
        ([99], "server 99 is not lent"),
        ([2.0], "must be an integer, got float 2.0"),
        (None, "got NoneType None"),
        ({2}, "got set"),
        ({2: 1}, "got dict"),
        ("2", "got str"),
    ],
)
def test_rejected_reclaim_leaves_the_engine_unchanged(servers, match):
    rows = [dict(submit=0, gpus=16, duration=5000), dict(submit=0, gpus=4, duration=5000)]
    script = [Allocation({0: 16, 1: 4}, {0: {2: 8, 3: 8}, 1: {0: 4}})]
    demand = (np.array([0.0, 100.0]), np.array([0, 1]))
    rules = PlacementRules(inelastic_on_lent=True)
    e, point = engine_at(TWO_POOLS, rows, script, rules, demand, kind=RECLAIM)
    assert point.k == 1 and e.cluster.lent_order == [2, 3]
    _rejected(e, e.decide_reclaim, servers, match)
    e.decide_reclaim([3])
    assert e.jobs[0].preemptions == 1


# ---------------------------------------- 8. silent coercions and raw errors from policies
def test_explicit_placements_keep_the_placement_rules():
    rows = [
        dict(submit=0, gpus=4, duration=5000),  # 0: inelastic
        dict(submit=0, gpus=4, duration=5000, elastic=True, min=2, max=8, profile="bert-big"),
        dict(submit=0, gpus=4, duration=5000, elastic=True, min=4, max=8),  # 2: base 4
    ]
    demand = (np.array([0.0]), np.array([0]))
    cases = [
        (PlacementRules(), {0: {2: 4}}, "inelastic jobs may not .*inelastic_on_lent=False"),
        (PlacementRules(lent_memory_fit=True), {1: {2: 4}}, "does not fit a lent GPU"),
        (PlacementRules(base_on_lent=False), {2: {0: 2, 2: 4}}, "so base workers too"),
    ]
    for rules, place, match in cases:
        e, _ = engine_at(TWO_POOLS, rows, [], rules, demand)
        gpus = {j: sum(p.values()) for j, p in place.items()}
        _rejected(e, e.decide_allocation, Allocation(gpus, place), match)
    # allowed when the rules let it
    e, _ = engine_at(TWO_POOLS, rows, [], PlacementRules(inelastic_on_lent=True), demand)
    e.decide_allocation(Allocation({0: 4}, {0: {2: 4}}))
    assert e.jobs[0].lent_gpus == 4
    e, _ = engine_at(TWO_POOLS, rows, [], PlacementRules(base_on_lent=False), demand)
    e.decide_allocation(Allocation({2: 6}, {2: {0: 4, 2: 2}}))  # extras on lent: fine
    assert e.jobs[2].lent_gpus == 2
    # an empty placement stops a job, whatever the rules say about lent servers
    later = [*rows, dict(submit=100, gpus=1, duration=5000)]
    e, _ = engine_at(TWO_POOLS, later, [Allocation({2: 4})], PlacementRules(base_on_lent=False))
    e.decide_allocation(Allocation({}, {2: {}}))
    assert e.jobs[2].n_gpus == 0 and e.jobs[2].preemptions == 1


class ReturnsThis(Policy):
    """Returns ``decision`` in every allocate round."""

    uses_loaning = True

    def __init__(self, name: str, decision: Callable[[Any], Any]) -> None:
        self.name = name
        self.decision = decision

    def allocate(self, view):
        return self.decision(view)


def _first_queued(view) -> int:
    return next(iter(view.queued))


@pytest.mark.parametrize(
    "decision, match",
    [
        (lambda v: None, "allocate must return an Allocation, got NoneType None"),
        (lambda v: {_first_queued(v): 1}, r"got dict .*wrap job -> GPUs as Allocation\(gpus\)"),
        (lambda v: [1, 2], "got list"),
        (lambda v: Allocation({str(_first_queued(v)): 1}), "job index in Allocation.gpus .* str"),
        (lambda v: Allocation({_first_queued(v): math.nan}), r"GPU count of job '\d+' .* nan"),
        (lambda v: Allocation({_first_queued(v): 1.99}), r"GPU count of job '\d+' .* 1.99"),
        (lambda v: Allocation({_first_queued(v): True}), r"GPU count of job '\d+' .* bool"),
        (lambda v: Allocation([(0, 1)]), "Allocation.gpus must be a dict, got list"),
        (lambda v: Allocation({}, {_first_queued(v): {0.0: 1}}), "server id .* float 0.0"),
        # empty but malformed: the engine's shortcut for empty decisions must not take them
        (lambda v: Allocation([]), "Allocation.gpus must be a dict, got list"),
        (lambda v: Allocation({}, []), "Allocation.placement must be a dict, got list"),
    ],
    ids=[
        "none",
        "dict",
        "list",
        "str-job",
        "nan",
        "1.99",
        "bool",
        "gpus-list",
        "float-server",
        "empty-gpus-list",
        "empty-placement-list",
    ],
)
def test_bad_decisions_name_the_policy_the_job_and_the_field(decision, match):
    policy = ReturnsThis("careless", decision)
    with pytest.raises(
        InvalidDecision, match=r"policy 'careless', allocate decision at t = "
    ) as exc:
        run_policy(get_scenario("tiny"), policy, 0)
    assert exc.match(match)


def test_bad_reclaims_name_the_policy():
    class BadReclaim(ReturnsThis):
        def reclaim(self, view, k):
            return [float(s) for s in view.lent_servers[:k]]

    aryl = make_policy("aryl")
    policy = BadReclaim("float-ids", aryl.allocate)
    policy.rules, policy.periodic_rounds = aryl.rules, aryl.periodic_rounds
    with pytest.raises(InvalidDecision, match=r"policy 'float-ids', reclaim decision .* float"):
        run_policy(get_scenario("small"), policy, 0)


@pytest.mark.parametrize("env_name", list(ENVS))
def test_env_actions_must_be_integers(env_name):
    env = ENVS[env_name]("small")
    env.reset(seed=0)
    steps = env.protocol.steps
    for bad in (1.9, 2.0, "0", True, np.bool_(False), math.nan, math.inf, None, [0],
                np.float64(1.0), np.array([1])):  # fmt: skip
        with pytest.raises(InvalidAction, match=f"{env_name}: an action must be an integer"):
            env.step(bad)
        assert env.protocol.steps == steps, f"{bad!r} was counted"
    valid = int(np.flatnonzero(env.action_masks())[0])
    for good in (np.int64(valid), np.array(valid), np.uint8(valid)):
        env.reset(seed=0)
        *_, info = env.step(good)
        assert not info["invalid"]


# ------------------------------------------------------------------ 9. wrong flags
class Never(Policy):
    name = "never"
    uses_loaning = True

    def allocate(self, view):
        return Allocation()


def test_a_policy_that_never_allocates_ends_stalled():
    """It used to end after 31 simulated days with 0 of 68 jobs finished and
    stalled=false (the demand series kept the episode going to the drain limit)."""
    s = run_policy(get_scenario("tiny"), Never(), 0).summary
    assert s["jobs_finished"] == 0 and s["jobs_unfinished"] == s["jobs_total"] > 0
    assert s["stalled"] is True


def test_stopping_the_last_running_job_ends_stalled():
    """The policy preempts the only running job and starts nothing: no event is left, the
    run ends at once with a waiting job; it used to say stalled=false."""
    rows = [dict(submit=0, gpus=4, duration=5000), dict(submit=10, gpus=4, duration=5000)]
    e, _ = engine_at(two_server_scenario(), rows, [Allocation({0: 4})])
    e.decide_allocation(Allocation({0: 0}))
    assert e.advance() is None and e.finished
    assert e.stalled and e.metrics.summary()["stalled"] is True


def test_a_time_limit_is_not_a_stall_when_jobs_run_or_cannot_start():
    rows = [dict(submit=0, gpus=4, duration=5000)]
    sc = two_server_scenario().with_(max_time_s=1000.0)
    running = run_engine(sc, make_jobs(rows), ScriptedPolicy([{0: 4}]))
    assert running.finished and running.running and not running.stalled  # cut while running
    # a 16-GPU job needs the lent server, which inference holds until after the limit
    rows = [dict(submit=0, gpus=16, duration=5000)]
    demand = (np.array([0.0, 2000.0]), np.array([1, 0]))
    waiting = Engine(sc, make_jobs(rows), demand, uses_loaning=True)
    Driver(waiting, Never()).run_until()
    assert waiting.finished and waiting.queue and not waiting.stalled
    idle = Engine(sc, make_jobs(rows), (np.array([0.0]), np.array([0])), uses_loaning=True)
    Driver(idle, Never()).run_until()  # now it fits, and the policy leaves it waiting
    assert idle.finished and idle.stalled


def test_a_job_longer_than_any_simulation_is_rejected_at_load(tmp_path):
    """A job of duration 1e300 s used to be silently reported unfinished."""
    trace = tmp_path / "forever.csv"
    trace.write_text("job_id,submit_time,gpus,duration\na,0,1,100\nforever,10,1,1e300\n")
    with pytest.raises(
        ValueError, match=r"the duration of job 'forever' \(duration\) is 1e\+300 s"
    ):
        build_workload(get_scenario("tiny", trace=str(trace)), 0)
