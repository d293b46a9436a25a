"""The view's what-if answers are what the engine then does, bit for bit.

Random small scenarios (random placement rules, GPU speeds, checkpoint intervals) are
driven by a random placeable policy through :class:`~aryl_gym.sim.driver.Driver`, which
stops at random allocate or reclaim points. There the test asks the view a what-if
question, makes the decision itself and compares with ``==`` (never ``isclose``):

* (a) ``rate_with`` / ``placement_with`` of one job at one GPU count, against its rate and
  placement after ``Allocation({job: n})`` alone (an unplaceable count must be refused
  with ``InvalidDecision``, the engine left unchanged);
* (b) ``reclaim_effect`` of random lent servers, against ``decide_reclaim``'s effect and
  the jobs' preemption and lost-GPU-seconds counters;
* (c) ``lost_gpu_seconds_if_preempted``, against what stopping the job adds to its
  ``lost_gpu_seconds``;
* (d) ``can_place`` of random targets, against whether ``decide_allocation`` accepts them.

Reclaims that preempt several jobs per server get a scenario of their own (their losses
must add up in the engine's order), and the same checks run on states of the ``small``
scenario under Aryl.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aryl_gym.config import ClusterConfig, DynamicsConfig, ScenarioConfig
from aryl_gym.policy import Allocation, InvalidDecision, PlacementRules, Policy
from aryl_gym.sim.driver import Driver
from aryl_gym.sim.engine import ALLOCATE, RECLAIM, DecisionPoint, Engine
from aryl_gym.sim.job import RUNNING, Job
from aryl_gym.sim.view import ClusterView
from tests.conftest import make_jobs
from tests.test_engine_properties import PROFILES, demands, workloads

CHECKS_PER_EPISODE = 12
EXAMPLES = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------------- random states
def random_target(rng: np.random.Generator, job: Job) -> int:
    """A GPU count ``job`` may be given: 0 (stop / stay queued) or one within its bounds."""
    if rng.random() < 0.15:
        return 0
    return int(rng.integers(job.min_gpus, job.max_gpus + 1))


def active_jobs(view: ClusterView) -> list[Job]:
    """Queued and running jobs, queued first (each in the view's order)."""
    return [*view.queued.values(), *view.running.values()]


class RandomPlaceablePolicy(Policy):
    """Random starts, resizes and stops, each kept only when ``view.can_place`` accepts the
    allocation so far; random reclaim picks."""

    name = "random-placeable"
    uses_loaning = True
    periodic_rounds = True

    def __init__(self, rng: np.random.Generator, rules: PlacementRules) -> None:
        self.rng = rng
        self.rules = rules

    def reclaim(self, view: ClusterView, k: int) -> list[int]:
        return [int(s) for s in self.rng.permutation(view.lent_servers)[:k]]

    def allocate(self, view: ClusterView) -> Allocation:
        targets: dict[int, int] = {}
        for job in active_jobs(view):
            if self.rng.random() < 0.5:
                continue
            n = random_target(self.rng, job)
            if n != job.n_gpus and view.can_place({**targets, job.idx: n}):
                targets[job.idx] = n
        return Allocation(targets)


def new_engine(
    sc: ScenarioConfig, rows: list[dict], demand, rules: PlacementRules, seed: int
) -> tuple[Engine, np.random.Generator]:
    """An engine (loaning and periodic rounds on, invariants checked) and a random stream."""
    e = Engine(sc, make_jobs(rows), demand, seed=seed, uses_loaning=True, periodic_rounds=True,
               rules=rules, check_invariants=True)  # fmt: skip
    return e, np.random.default_rng(seed)


@st.composite
def engines(draw) -> tuple[Engine, np.random.Generator]:
    """A random small scenario with random placement rules."""
    n_inf = draw(st.integers(1, 4))
    sc = ScenarioConfig(
        name="whatif",
        cluster=ClusterConfig(
            training_servers=draw(st.integers(1, 2)),
            inference_servers=n_inf,
            gpus_per_server=draw(st.sampled_from([4, 8])),
            inference_gpu_speed=draw(st.sampled_from([1.0, 0.4])),
        ),
        dynamics=DynamicsConfig(
            checkpoint_interval_s=draw(st.sampled_from([37.0, 113.0, 1800.0])),
            round_interval_s=60.0,
            scale_overhead_s=draw(st.sampled_from([0.0, 20.0])),
        ),
    )
    rules = PlacementRules(
        *(draw(st.booleans()) for _ in range(5)), extras_own_or_empty=draw(st.booleans())
    )
    rows, demand = draw(workloads()), draw(demands(n_inf))
    return new_engine(sc, rows, demand, rules, draw(st.integers(0, 2**32 - 1)))


@st.composite
def crowded_engines(draw) -> tuple[Engine, np.random.Generator]:
    """Many small inelastic jobs at irregular times (numpy draws: hypothesis prefers round
    numbers, whose sums are exact) on one training server and four lent ones, until the
    inference side takes every lent server back: reclaims that preempt several jobs per
    server, each losing a different amount."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    rows, t = [], 0.0
    for _ in range(draw(st.integers(6, 16))):
        t += float(rng.exponential(7.0))
        rows.append(dict(submit=t, gpus=int(rng.integers(1, 3)),
                         duration=float(rng.uniform(500.0, 5000.0)),
                         profile=str(rng.choice(PROFILES))))  # fmt: skip
    sc = ScenarioConfig(
        name="whatif-crowded",
        cluster=ClusterConfig(
            training_servers=1,
            inference_servers=4,
            gpus_per_server=4,
            inference_gpu_speed=draw(st.sampled_from([1.0, 0.4])),
        ),
        dynamics=DynamicsConfig(checkpoint_interval_s=1800.0, round_interval_s=60.0),
    )
    demand = (np.array([0.0, 100.0 + 800.0 * rng.random()]), np.array([0, 4]))
    return new_engine(sc, rows, demand, PlacementRules(inelastic_on_lent=True), seed)


def claimed_points(
    driver: Driver, kind: str, rng: np.random.Generator, share: float
) -> Iterator[DecisionPoint]:
    """Up to ``CHECKS_PER_EPISODE`` points of ``kind``, each claimed with probability
    ``share`` (the policy decides the others); the caller decides each before the next."""
    for _ in range(CHECKS_PER_EPISODE):
        point = driver.run_until(lambda p: p.kind == kind and rng.random() < share)
        if point is None:
            return
        yield point


def engine_state(e: Engine) -> tuple:
    """Everything a decision may change (to check that a refused one changed nothing)."""
    jobs = tuple(
        (j.state, j.n_gpus, tuple(j.placement.items()), j.lent_gpus, j.rate, j.speed,
         j.progress, j.t_update, j.pause_until, j.seg_progress, j.seg_run_start, j.t_alloc,
         j.version, j.queue_time, j.queued_since, j.preemptions, j.resizes, j.gpu_seconds,
         j.lost_gpu_seconds, j.lost_work)
        for j in e.jobs if j is not None
    )  # fmt: skip
    cl = e.cluster
    return (
        e.t, e.allocation_epoch, tuple(e.queue), tuple(e.running), jobs, tuple(cl.free),
        tuple(tuple(on.items()) for on in cl.jobs_on), tuple(cl.free_total), tuple(cl.busy),
        tuple(cl.lent_order), e._waiting, tuple(e._heap), e.reclaim_preemptions,
        tuple(e.scaled_in_log), e.stalled,
    )  # fmt: skip


def refused(driver: Driver, point: DecisionPoint, alloc: Allocation) -> None:
    """``alloc`` is refused with ``InvalidDecision``, leaving the engine unchanged and
    waiting; the policy then decides the point."""
    e = driver.engine
    before = engine_state(e)
    with pytest.raises(InvalidDecision):
        e.decide_allocation(alloc)
    assert engine_state(e) == before
    driver.decide(point)


# ---------------------------------------------------------------------- the checks
def check_rate_and_placement(driver: Driver, point: DecisionPoint, rng) -> None:
    """(a) one job to one GPU count, alone."""
    view, e = point.view, driver.engine
    jobs = active_jobs(view)
    if not jobs:
        driver.decide(point)
        return
    job = jobs[int(rng.integers(len(jobs)))]
    n = job.max_gpus if rng.random() < 0.3 else random_target(rng, job)
    rate, place = view.rate_with(job, n), view.placement_with(job, n)
    assert view.can_place({job.idx: n}) is (rate is not None)
    if n <= job.n_gpus:  # a shrink's workers left per server, without the placement
        for s in {*job.placement, *view.lent_servers[:1]}:
            assert view.left_on(job, s, n) == place.get(s, 0)
            k, before = view.shrink_share(job, s)  # the same, for every count at once
            assert k - min(k, max(0, job.n_gpus - n - before)) == place.get(s, 0)
    if rate is None:
        assert place is None
        refused(driver, point, Allocation({job.idx: n}))
        return
    e.decide_allocation(Allocation({job.idx: n}))
    assert job.n_gpus == n
    assert job.rate == rate
    assert job.placement == place


def check_reclaim_effect(driver: Driver, point: DecisionPoint, rng) -> None:
    """(b) random lent servers, in a random order."""
    view, e = point.view, driver.engine
    servers = [int(s) for s in rng.permutation(view.lent_servers)[: point.k]]
    predicted = view.reclaim_effect(servers)
    jobs = {j.idx: j for j in active_jobs(view)}
    before = {i: (j.preemptions, j.lost_gpu_seconds, j.resizes) for i, j in jobs.items()}
    lost_now = {i: view.lost_gpu_seconds_if_preempted(j) for i, j in jobs.items()}
    log_len, reclaim_pre = len(e.scaled_in_log), e.reclaim_preemptions

    effect = e.decide_reclaim(servers)

    assert effect == predicted
    assert len(set(effect.preempted)) == len(effect.preempted)
    assert e.reclaim_preemptions == reclaim_pre + len(effect.preempted)
    assert e.scaled_in_log[log_len:] == effect.scaled_in
    total = 0.0
    for i, job in jobs.items():
        pre, lost, resizes = before[i]
        assert job.preemptions == pre + (i in effect.preempted)
        assert job.resizes == resizes + effect.scaled_in.count(i)
        # a scale-in checkpoints the job: a preemption later in the same reclaim loses nothing
        gone = 0.0 if i in effect.scaled_in else lost_now[i]
        assert job.lost_gpu_seconds == (lost + gone if i in effect.preempted else lost)
    for i in effect.preempted:  # the effect's total is the jobs' losses, in order
        total += 0.0 if i in effect.scaled_in else lost_now[i]
    assert effect.lost_gpu_seconds == total


def check_lost_if_preempted(driver: Driver, point: DecisionPoint, rng) -> None:
    """(c) stop a running job."""
    view, e = point.view, driver.engine
    running = list(view.running.values())
    if not running:
        driver.decide(point)
        return
    job = running[int(rng.integers(len(running)))]
    assert job.state == RUNNING
    predicted = view.lost_gpu_seconds_if_preempted(job)
    before, pre = job.lost_gpu_seconds, job.preemptions
    e.decide_allocation(Allocation({job.idx: 0}))
    assert job.preemptions == pre + 1 and job.n_gpus == 0
    assert job.lost_gpu_seconds == before + predicted


def check_can_place(driver: Driver, point: DecisionPoint, rng) -> None:
    """(d) random targets for a few jobs; large grows are likely, so both answers occur."""
    view, e = point.view, driver.engine
    jobs = active_jobs(view)
    if not jobs:
        driver.decide(point)
        return
    picked = rng.permutation(len(jobs))[: int(rng.integers(1, 5))]
    targets = {}
    for i in picked:
        job = jobs[int(i)]
        targets[job.idx] = job.max_gpus if rng.random() < 0.5 else random_target(rng, job)
    if not view.can_place(targets):
        refused(driver, point, Allocation(targets))
        return
    cut = e.grows_cut
    e.decide_allocation(Allocation(targets))
    for idx, n in targets.items():
        got = view.job(idx).n_gpus
        # counting free GPUs per class is exact, except that extras_own_or_empty may cut a
        # grow whose extra workers an earlier change of the round left no own or empty room
        if got != n:
            assert e.rules.extras_own_or_empty and e.grows_cut > cut and got < n, (idx, n, got)


def check_remaining_works(driver: Driver, point: DecisionPoint, rng) -> None:
    """(e) the array answers over many jobs equal each job's own fields and estimate,
    bit for bit (the engine mirrors the progress terms it writes)."""
    view = point.view
    jobs = list(view.running.values()) + list(view.queued.values())
    if jobs:
        idx = np.array([j.idx for j in jobs], dtype=np.int64)
        expected = [j.est_remaining_work(view.now) for j in jobs]
        assert view.est_remaining_works(idx).tolist() == expected
        rate, pause, on_training = view.job_columns(idx)
        assert rate.tolist() == [j.rate for j in jobs]
        assert pause.tolist() == [j.pause_until for j in jobs]
        assert on_training.tolist() == [j.n_gpus - j.lent_gpus for j in jobs]
    driver.decide(point)


Check = Callable[[Driver, DecisionPoint, np.random.Generator], None]
#: name -> (kind of point, check, share of those points claimed: reclaims are rare)
CHECKS: dict[str, tuple[str, Check, float]] = {
    "rate_and_placement": (ALLOCATE, check_rate_and_placement, 0.4),
    "reclaim_effect": (RECLAIM, check_reclaim_effect, 1.0),
    "lost_if_preempted": (ALLOCATE, check_lost_if_preempted, 0.4),
    "can_place": (ALLOCATE, check_can_place, 0.4),
    "remaining_works": (ALLOCATE, check_remaining_works, 0.4),
}


def run_checks(driver: Driver, name: str, rng: np.random.Generator) -> int:
    """Run check ``name`` at random points of the driver's episode; how many ran."""
    kind, check, share = CHECKS[name]
    done = 0
    for point in claimed_points(driver, kind, rng, share):
        check(driver, point, rng)
        done += 1
    return done


# ---------------------------------------------------------------------- tests
@pytest.mark.parametrize("name", list(CHECKS))
@EXAMPLES
@given(state=engines())
def test_whatif_answers_equal_what_the_engine_does(name, state):
    e, rng = state
    run_checks(Driver(e, RandomPlaceablePolicy(rng, e.rules)), name, rng)


@EXAMPLES
@given(state=crowded_engines())
def test_reclaim_effect_of_crowded_lent_servers(state):
    """Reclaims that preempt several jobs per server: the effect's lost GPU-seconds are the
    jobs' losses added in the same order as the engine adds them."""
    e, rng = state
    run_checks(Driver(e, RandomPlaceablePolicy(rng, e.rules)), "reclaim_effect", rng)


@pytest.mark.parametrize("name", list(CHECKS))
def test_whatif_answers_on_aryl_states(name):
    """The same checks on states of the ``small`` scenario under Aryl (many jobs, lent
    servers, reclaims that scale in and preempt)."""
    from aryl_gym.baselines import make_policy

    from aryl_gym.scenarios import get_scenario
    from aryl_gym.simulate import make_engine

    policy = make_policy("aryl")
    done = 0
    for seed in range(2):
        e = make_engine(get_scenario("small"), policy, seed)
        policy.reset(e.view, seed)
        done += run_checks(Driver(e, policy), name, np.random.default_rng(seed))
    assert done > 0


@pytest.mark.parametrize("speed,no_slow_mix", [(0.4, True), (0.4, False), (1.0, True)])
def test_rate_curves_equal_rate_with_for_every_count(speed, no_slow_mix):
    """The histogram and array forms of the rate query (``rate_curve``, ``rate_curves``)
    give exactly ``rate_with`` for every GPU count, cut at the first unplaceable one."""
    from dataclasses import replace

    from aryl_gym.baselines import make_policy

    from aryl_gym.scenarios import get_scenario
    from aryl_gym.simulate import make_engine

    sc = get_scenario("small")
    sc = replace(sc, cluster=replace(sc.cluster, inference_gpu_speed=speed))
    policy = make_policy("aryl", resize_guard=1e9, no_slow_mix=no_slow_mix)
    e = make_engine(sc, policy, 0)
    policy.reset(e.view, 0)
    view, checked, point = e.view, 0, e.advance()
    while point is not None and e.t < 1.5 * 86400:
        if point.kind == RECLAIM:
            e.decide_reclaim(policy.reclaim(view, point.k))
        else:
            jobs = [j for j in view.running.values() if j.elastic and j.n_gpus < j.max_gpus]
            caps = [min(j.max_gpus, j.n_gpus + 1 + j.idx % 9) for j in jobs]
            for job, cap, batch in zip(jobs, caps, view.rate_curves(jobs, caps), strict=True):
                slow = [view.rate_with(job, n) for n in range(job.n_gpus, cap + 1)]
                if None in slow:
                    slow = slow[: slow.index(None)]
                assert batch == slow == view.rate_curve(job, cap), job
                checked += 1
            e.decide_allocation(policy.allocate(view))
        point = e.advance()
    assert checked > 500


@pytest.mark.parametrize("speed", [0.4, 1.0])
def test_rate_bounds_hold_for_every_count(speed):
    """``rate_bound`` and ``bound_levels`` bound ``rate_with`` for every grow of every
    running elastic job (exact ``<=``): the guarantees Aryl's candidate filter and its
    sleeping jobs rest on."""
    from dataclasses import replace

    from aryl_gym.baselines import make_policy

    from aryl_gym.scenarios import get_scenario
    from aryl_gym.simulate import make_engine

    sc = get_scenario("small")
    sc = replace(sc, cluster=replace(sc.cluster, inference_gpu_speed=speed))
    policy = make_policy("aryl")
    e = make_engine(sc, policy, 1)
    policy.reset(e.view, 1)
    view, checked, point = e.view, 0, e.advance()
    while point is not None and e.t < 86400:
        if point.kind == RECLAIM:
            e.decide_reclaim(policy.reclaim(view, point.k))
            point = e.advance()
            continue
        for job in [j for j in view.running.values() if j.elastic and j.n_gpus < j.max_gpus]:
            prefix, levels, _, own = view.bound_levels(job)
            for n in range(job.n_gpus + 1, job.max_gpus + 1):
                rate = view.rate_with(job, n)
                if rate is None:
                    continue
                assert rate <= view.rate_bound(job, n), (job, n)
                k = n - job.n_gpus
                assert any(
                    view.extra_room_of(classes) + own >= k and rate <= prefix[k] * s
                    for classes, s in levels
                ), (job, n, levels)
                checked += 1
        e.decide_allocation(policy.allocate(view))
        point = e.advance()
    assert checked > 1000


@pytest.mark.parametrize(
    "speed,no_slow_mix,own_or_empty",
    [(0.4, True, True), (0.4, False, True), (1.0, True, True), (0.4, True, False)],
)
def test_start_curves_equal_rate_with_for_every_count(speed, no_slow_mix, own_or_empty):
    """The counted form of a queued job's rates (``start_curve``) gives exactly
    ``rate_with`` for every GPU count from its base (and from above it), cut at the first
    unplaceable one."""
    from dataclasses import replace

    from aryl_gym.baselines import make_policy

    from aryl_gym.scenarios import get_scenario
    from aryl_gym.simulate import make_engine

    sc = get_scenario("small")
    sc = replace(sc, cluster=replace(sc.cluster, inference_gpu_speed=speed))
    policy = make_policy(
        "aryl", no_slow_mix=no_slow_mix, extras_own_or_empty=own_or_empty, inelastic_on_lent=True
    )
    e = make_engine(sc, policy, 0)
    policy.reset(e.view, 0)
    view, checked, decided, point = e.view, 0, 0, e.advance()
    while point is not None and e.t < 1.5 * 86400:
        if point.kind == RECLAIM:
            e.decide_reclaim(policy.reclaim(view, point.k))
        else:
            for job in view.queued.values():
                for lo in (job.base_gpus, job.base_gpus + 1 + job.idx % 3):
                    slow = [view.rate_with(job, n) for n in range(lo, job.max_gpus + 1)]
                    if None in slow:
                        slow = slow[: slow.index(None)]
                    curve = view.start_curve(job, lo, job.max_gpus)
                    assert curve == slow, (job, lo)
                    # the class orders it leaves for the round's fit are grow_classes'
                    memo, cl_version = e.placer._classes_memo, e.placer.cluster.version
                    orders = e.placer._class_orders(job)
                    for n in range(lo, lo + len(curve)):
                        kept = memo.get((job.idx, job.version, 0, n, cl_version))
                        if kept is not None:
                            assert kept == e.placer._decide_classes(job, n, *orders), (job, n)
                            decided += 1
                    checked += 1
            e.decide_allocation(policy.allocate(view))
        point = e.advance()
    assert checked > 500
    assert decided > 100 or not (no_slow_mix and own_or_empty)


@pytest.mark.parametrize(
    "speed,own_or_empty,g,training_servers",
    [
        (0.4, True, 8, 8),
        (0.4, True, 2, 8),
        (0.4, False, 8, 8),
        (0.4, True, 8, 12),
        (0.4, True, 2, 12),
    ],
)
def test_kept_class_decisions_equal_fresh_ones(speed, own_or_empty, g, training_servers):
    """``grow_classes`` keeps the class decisions of extras-only grows of jobs on full
    servers across cluster states (``_classes_key``): each answer equals a fresh
    ``_decide_classes`` on the cluster as it is (small servers: grows over several; a
    larger training pool: empty training servers, so training-only grows often win,
    which a wrong cap of the key then shares across states where they cannot)."""
    from dataclasses import replace

    from aryl_gym.baselines import make_policy

    from aryl_gym.scenarios import get_scenario
    from aryl_gym.simulate import make_engine

    sc = get_scenario("small")
    cluster = replace(
        sc.cluster, inference_gpu_speed=speed, gpus_per_server=g, training_servers=training_servers
    )
    sc = replace(sc, cluster=cluster)
    policy = make_policy("aryl", extras_own_or_empty=own_or_empty)
    e = make_engine(sc, policy, 0)
    policy.reset(e.view, 0)
    placer, free = e.placer, e.cluster.free
    view, checked, point = e.view, 0, e.advance()
    while point is not None and e.t < 1.5 * 86400:
        if point.kind == RECLAIM:
            e.decide_reclaim(policy.reclaim(view, point.k))
        else:
            for job in view.running.values():
                if not job.elastic or any(free[s] for s in job.placement):
                    continue
                orders = placer._class_orders(job)
                for n in range(job.n_gpus + 1, job.max_gpus + 1):
                    if placer._classes_key(job, n) is None:
                        continue
                    kept = placer.grow_classes(job, n)
                    assert kept == placer._decide_classes(job, n, *orders), (job, n)
                    checked += 1
            e.decide_allocation(policy.allocate(view))
        point = e.advance()
    assert checked > 500
