"""scripts/reproduce_aryl.py: its policies and report tables (on made-up run records)."""

from __future__ import annotations

import pytest
from aryl_gym.baselines.aryl import ArylConfig, ArylPolicy

from tests.conftest import load_script


@pytest.fixture(scope="module")
def repro():
    return load_script("reproduce_aryl")


def test_each_reading_is_the_aryl_it_names(repro):
    keys = set()
    for name, kwargs in repro.READINGS.items():
        policy = repro._policy(name)
        assert isinstance(policy, ArylPolicy)
        assert policy.cfg == ArylConfig(**kwargs), name
        key = repro._key(None, None, name, 0)
        assert "/" not in key  # a file name
        keys.add(key)
    assert len(keys) == len(repro.READINGS)


def _record(policy, seed, **summary):
    base = dict(
        avg_queue_s=100.0,
        p95_queue_s=200.0,
        avg_jct_s=1000.0,
        usage_overall=0.5,
        preemptions=0,
        lost_gpu_hours=0.0,
    )
    base.update(summary)
    return {"policy": policy, "seed": seed, "summary": base, "daily_usage": [0.5, 0.5]}


def test_reclaim_table_pairs_each_rule_with_the_greedy(repro):
    seeds = [0, 1, 2]
    runs = {}
    for s in seeds:
        for p, _ in repro.RECLAIMS:
            extra = 3 + s if p == "aryl-reclaim-random" else 0
            runs[repro._key(*repro.HOMOGENEOUS, p, s)] = _record(p, s, preemptions=extra)
    rows = repro.reclaim_table(runs, seeds, *repro.HOMOGENEOUS)
    random_row = next(r for r in rows if r.startswith("| random"))
    assert "+4.0 ±" in random_row  # (3 + 4 + 5) / 3 more than the greedy, paired
    last_lent = next(r for r in rows if r.startswith("| last-lent"))
    assert "+0.0 ± 0.0" in last_lent


def test_headline_ratios_are_per_seed_then_averaged(repro):
    seeds = [0, 1]
    runs = {
        repro._key(None, None, "baseline", 0): _record("baseline", 0, avg_jct_s=1200.0),
        repro._key(None, None, "baseline", 1): _record("baseline", 1, avg_jct_s=3000.0),
        repro._key(None, None, "aryl", 0): _record("aryl", 0, avg_jct_s=1000.0),
        repro._key(None, None, "aryl", 1): _record("aryl", 1, avg_jct_s=2000.0),
    }
    rows = repro.headline(runs, seeds, policies=["aryl"])
    # (1.2 + 1.5) / 2, not 4200 / 3000
    assert rows[-1].rstrip().endswith("1.35 ± 1.91x |")


def test_equal_throughput_makes_lent_gpus_fast_and_the_pool_smaller(repro):
    sc = repro._apply(repro.get_scenario("aryl-15d"), repro.EQUAL_THROUGHPUT, 280)
    assert sc.cluster.inference_gpu_speed == 1.0
    assert sc.cluster.inference_servers == 280
    assert sc.cluster.training_servers == repro.get_scenario("aryl-15d").cluster.training_servers
    # never taken for the default run (no default of its own), and a file name of its own
    assert repro._norm(repro.EQUAL_THROUGHPUT, 700) == (repro.EQUAL_THROUGHPUT, 700)
    assert repro._key(repro.EQUAL_THROUGHPUT, 280, "aryl", 0) != repro._key(None, None, "aryl", 0)


def test_throughput_points_pair_lent_throughput_with_the_jct_ratio(repro):
    seeds = [0, 1]
    runs = {}
    points = [("inference_servers", 350, 0.4), (repro.EQUAL_THROUGHPUT, 280, 1.0)]
    for param, value, _ in points:
        for s in seeds:
            runs[repro._key(param, value, "baseline", s)] = _record("baseline", s, avg_jct_s=1200.0)
            rec = _record("aryl", s, avg_jct_s=1000.0 if s == 0 else 800.0)
            rec["summary"]["avg_lent_servers"] = 100.0 + 20 * s
            runs[repro._key(param, value, "aryl", s)] = rec
    got = repro.throughput_points(runs, seeds)
    assert len(got) == 2  # one line per lent speed; points with runs missing are left out
    (slow,) = got["lent GPUs at 0.4x"]
    (fast,) = got["lent GPUs at 1.0x"]
    # 110 servers lent on average x 8 GPUs x the speed; ratio per seed then averaged
    assert slow == (350, pytest.approx(110 * 8 * 0.4), pytest.approx((1.2 + 1.5) / 2))
    assert fast == (280, pytest.approx(110 * 8 * 1.0), pytest.approx((1.2 + 1.5) / 2))
