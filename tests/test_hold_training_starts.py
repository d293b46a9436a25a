"""A queued job that Aryl judged not worth starting on slow lent GPUs, but whose training
GPUs come from donors shrinking in the same round, is placed (as the round found the
cluster) on lent GPUs unless Aryl pins it to training servers (``pin_training_starts``,
the default: ``Allocation.on_training``) or holds it a round (``hold_training_starts``)."""

from __future__ import annotations

from dataclasses import replace

import aryl_gym.baselines.aryl as aryl_module
import pytest
from aryl_gym.baselines import make_policy
from aryl_gym.baselines.aryl import ArylConfig, ArylPolicy

from aryl_gym.scenarios import get_scenario
from aryl_gym.simulate import run_policy


def _lent_starts_judged_not_worth_it(monkeypatch, policy) -> tuple[int, int]:
    """(starts judged not worth lent GPUs whose base landed on lent GPUs, starts judged) over
    2.5 days of ``aryl-15d`` at lent speed 0.4."""
    judged: dict[int, bool] = {}
    sooner = aryl_module.sooner_on_lent

    def record(view, job, *args):
        judged[job.idx] = out = sooner(view, job, *args)
        return out

    monkeypatch.setattr(aryl_module, "sooner_on_lent", record)
    counts = [0, 0]
    allocate = aryl_module.ArylPolicy.allocate

    def checked(self, view):
        for idx in self._started:  # last round's starts, now placed
            job = view.job(idx)
            # the last verdict on it (a held start is judged a round before it starts)
            if job.n_gpus and judged.pop(idx, None) is False:
                counts[1] += 1
                # its base on lent GPUs (extra workers step 2 gave it may go there)
                counts[0] += job.n_gpus - job.lent_gpus < self._base(job)
        return allocate(self, view)

    monkeypatch.setattr(aryl_module.ArylPolicy, "allocate", checked)
    sc = replace(get_scenario("aryl-15d"), max_time_s=2.5 * 86400)
    run_policy(sc, policy, 0)
    return counts[0], counts[1]


@pytest.mark.parametrize(
    "policy,lands_on_lent",
    [
        ("aryl", False),  # pinned to training servers (pin_training_starts)
        ("aryl-hold-training-starts", False),  # held a round
        ("unpinned", True),
    ],
)
def test_starts_judged_not_worth_lent_gpus_stay_off_them(monkeypatch, policy, lands_on_lent):
    if policy == "unpinned":
        pol = ArylPolicy(ArylConfig(pin_training_starts=False), name="aryl-unpinned")
    else:
        pol = make_policy(policy)
    on_lent, judged = _lent_starts_judged_not_worth_it(monkeypatch, pol)
    assert judged > 20
    assert (on_lent > 0) is lands_on_lent, (on_lent, judged)
