"""scripts/explain_extras.py: its counting Aryl decides as Aryl does, and counts sense."""

from __future__ import annotations

from dataclasses import replace

from aryl_gym.baselines import make_policy

from aryl_gym.scenarios import get_scenario
from aryl_gym.simulate import run_policy
from tests.conftest import load_script


def test_counting_aryl_makes_aryls_decisions_and_counts_every_round(tmp_path):
    sc = get_scenario("small")
    sc = replace(sc, cluster=replace(sc.cluster, inference_gpu_speed=0.4))
    sc = replace(sc, workload=replace(sc.workload, days=1.0))
    script = load_script("explain_extras")
    counting = script.CountingAryl(big=8)
    got = dict(run_policy(sc, counting, 0).summary)
    want = dict(run_policy(sc, make_policy("aryl"), 0).summary)
    got.pop("wall_s", None)
    want.pop("wall_s", None)
    assert got == want
    rounds = sum(h["rounds"] for h in counting.by_hour.values())
    assert rounds == got["rounds"] > 0
    assert 0 < counting.kept <= counting.granted  # some grows were granted and kept
    for h in counting.by_hour.values():
        assert h["big_at_base"] <= h["big_running"]
        assert h["empty_and_big_at_base"] <= h["rounds"]
        assert h["no_empty_training"] <= h["rounds"]
    # the by-hour figure draws from the same counts
    path = script.plot_by_hour(counting.by_hour, 8, "small", tmp_path / "h.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
