"""QueueOrder (baselines/queue.py): the incrementally sorted queue that SJF, FIFO and
Aryl's base-demand step walk instead of sorting every round. It must give exactly the
order and the picks of a full sort, also when other policies make the decisions (jobs
started and preempted behind its back) and when rounds are skipped."""

from __future__ import annotations

import pytest
from aryl_gym.baselines import make_policy
from aryl_gym.baselines.aryl import ArylConfig, ArylPolicy
from aryl_gym.baselines.queue import FifoNoLoan, QueueOrder, SjfNoLoan

from aryl_gym.scenarios import get_scenario
from aryl_gym.simulate import make_engine


def sjf_key(j):
    return (float(j.est_remaining_work(j.submit) / j.speedup[j.gpus]), j.submit, j.idx)


def sorted_sjf(view):
    t = view.now
    return sorted(
        view.queued.values(),
        key=lambda j: (j.est_remaining_work(t) / j.speedup[j.gpus], j.submit, j.idx),
    )


def reference_sjf(view) -> dict[int, int]:
    """SjfNoLoan as it was: sort the whole queue every round."""
    free = view.free_training_gpus
    out: dict[int, int] = {}
    if free == 0 or not view.queued:
        return out
    smallest = min(j.gpus for j in view.queued.values())
    for job in sorted_sjf(view):
        if smallest > free:
            break
        if job.gpus <= free:
            out[job.idx] = job.gpus
            free -= job.gpus
    return out


def reference_fifo(view) -> dict[int, int]:
    free = view.free_training_gpus
    out: dict[int, int] = {}
    if free == 0:
        return out
    for job in sorted(view.queued.values(), key=lambda j: (j.submit, j.idx)):
        if job.gpus > free:
            break
        out[job.idx] = job.gpus
        free -= job.gpus
    return out


def reference_baseline(view) -> dict[int, int]:
    """Aryl's step 1 without elasticity (the ``baseline`` policy) as it was."""
    free_t, free_l = view.free_training_gpus, view.free_lent_gpus
    out: dict[int, int] = {}
    for job in sorted_sjf(view):
        if job.gpus > free_t + free_l:
            continue
        use_t = min(job.gpus, free_t)
        free_t -= use_t
        free_l -= job.gpus - use_t
        out[job.idx] = job.gpus
    return out


def drive(scenario: str, driver: str, seed: int, observe) -> int:
    """Run ``driver`` on ``scenario``; call ``observe(view, round)`` at every allocate
    point before the driver decides. Returns the number of rounds."""
    policy = make_policy(driver)
    engine = make_engine(get_scenario(scenario), policy, seed)
    policy.reset(engine.view, seed)
    point, rounds = engine.advance(), 0
    while point is not None:
        if point.kind == "reclaim":
            engine.decide_reclaim(policy.reclaim(point.view, point.k))
        else:
            observe(point.view, rounds)
            engine.decide_allocation(policy.allocate(point.view))
            rounds += 1
        point = engine.advance()
    return rounds


@pytest.mark.parametrize("driver", ["tiresias", "aryl", "sjf-noloan"])
@pytest.mark.parametrize("every", [1, 3])
def test_order_matches_a_full_sort(driver, every):
    """Synced every ``every`` rounds while another policy decides (Tiresias preempts, Aryl's
    reclaims preempt and requeue jobs), the order is always that of a full sort."""
    order = QueueOrder(sjf_key, lambda j: (j.gpus, False))
    checked = 0

    def observe(view, r):
        nonlocal checked
        if r % every:
            return
        order.sync(view.queued)
        got = list(order.ordered(lambda size, flag: True))
        assert [j.idx for j in got] == [j.idx for j in sorted_sjf(view)]
        assert len(order) == len(view.queued)
        checked += 1

    drive("small", driver, 1, observe)
    assert checked > 50


@pytest.mark.parametrize("driver", ["tiresias", "aryl-loan-only"])
def test_policies_as_experts_pick_as_a_full_sort_does(driver):
    """SJF, FIFO and baseline asked for their decision on states another policy makes
    (as DAgger and behaviour cloning do) decide exactly as the sort-every-round versions."""
    experts = [
        (SjfNoLoan(), reference_sjf),
        (FifoNoLoan(), reference_fifo),
        (make_policy("baseline"), reference_baseline),
    ]
    nonempty = 0

    def observe(view, r):
        nonlocal nonempty
        for policy, reference in experts:
            got = policy.allocate(view).gpus
            assert got == reference(view), policy.name
            assert policy.allocate(view).gpus == got  # asking twice changes nothing
            nonempty += bool(got)

    drive("small", driver, 0, observe)
    assert nonempty > 100


def test_aryl_repeated_calls_on_one_state_agree():
    """Aryl's step 1 keeps its order across calls; a call whose decision is not applied
    (an expert's) must not disturb the next one."""
    shadow = ArylPolicy(ArylConfig())
    first = True

    def observe(view, r):
        nonlocal first
        if first:
            shadow.reset(view, 0)
            first = False
        a = shadow.allocate(view).gpus
        b = shadow.allocate(view).gpus
        assert {i: n for i, n in a.items() if i in view.queued} == {
            i: n for i, n in b.items() if i in view.queued
        }

    drive("small", "afs", 0, observe)


def test_empty_and_cleared():
    order = QueueOrder(sjf_key, lambda j: (j.gpus, False))
    order.sync({})
    assert len(order) == 0 and order.smallest() is None
    assert list(order.ordered(lambda size, flag: True)) == []


class FakeJob:
    """What QueueOrder reads of a job: idx, version, and whatever the key uses."""

    def __init__(self, idx: int, value: float, gpus: int) -> None:
        self.idx, self.value, self.gpus, self.version = idx, value, gpus, 0


@pytest.mark.parametrize("seed", range(5))
def test_random_engine_like_changes(seed):
    """Arrivals append, starts delete and bump the version, preemptions re-append with a
    new remaining work; syncs come at random (with and without the started jobs named),
    sometimes for a queue that changed under another decider."""
    import random

    rng = random.Random(seed)
    order = QueueOrder(lambda j: (j.value, j.idx), lambda j: (j.gpus, j.gpus % 2 == 0))
    queued: dict[int, FakeJob] = {}
    running: dict[int, FakeJob] = {}
    started: list[int] = []
    n = 0
    for _ in range(3000):
        op = rng.random()
        if op < 0.3:
            queued[n] = FakeJob(n, rng.choice([1.0, 2.0, rng.random()]), rng.choice([1, 2, 4, 8]))
            n += 1
        elif op < 0.55 and queued:
            idx = rng.choice(list(queued))
            job = queued.pop(idx)
            job.version += 1
            running[idx] = job
            started.append(idx)
        elif op < 0.7 and running:
            idx = rng.choice(list(running))
            job = running.pop(idx)
            job.version += 1
            job.value = rng.random()
            queued[idx] = job
        elif op < 0.8 and running:
            running.pop(rng.choice(list(running)))
        else:
            order.sync(queued, started if rng.random() < 0.7 else ())
            started = []
            got = [j.idx for j in order.ordered(lambda size, flag: True)]
            assert got == [j.idx for j in sorted(queued.values(), key=lambda j: (j.value, j.idx))]
            big = rng.choice([1, 2, 4, 8])
            some = [j.idx for j in order.ordered(lambda size, flag, big=big: size <= big)]
            assert some == [
                j.idx
                for j in sorted(queued.values(), key=lambda j: (j.value, j.idx))
                if j.gpus <= big
            ]
            assert order.smallest() == min((j.gpus for j in queued.values()), default=None)


def test_policies_pickle_before_and_during_a_run():
    """Policies travel to worker processes; QueueOrder's keys must not make them unpicklable."""
    import pickle

    from aryl_gym.baselines import policy_specs

    for name in policy_specs():
        pickle.loads(pickle.dumps(make_policy(name)))
    for name in ("aryl", "sjf-noloan", "fifo-noloan", "aryl-fifo"):
        policy = make_policy(name)
        engine = make_engine(get_scenario("tiny"), policy, 0)
        policy.reset(engine.view, 0)
        point = engine.advance()
        engine.decide_allocation(policy.allocate(point.view))
        pickle.loads(pickle.dumps(policy))
