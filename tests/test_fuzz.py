"""Fuzzing under hypothesis (bounded to ~20 s): random traces, random policies and random
env actions, with the engine's invariant checker on (:mod:`aryl_gym.fuzzing` says what
each episode checks; ``scripts/fuzz.py`` runs the same episodes by the thousand)."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aryl_gym.fuzzing import episode_kinds, simulator_episode

SEEDS = st.integers(min_value=0, max_value=2**32 - 1)
FAST = settings(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


@functools.cache
def kinds():
    """The episode kinds, built once for the module (envs and a folder for traces)."""
    return episode_kinds(Path(tempfile.mkdtemp(prefix="aryl-fuzz-")))


@settings(FAST, max_examples=600)
@given(seed=SEEDS, p_invalid=st.floats(min_value=0.0, max_value=1.0))
def test_random_policies_valid_and_invalid(seed, p_invalid):
    """Every broken decision is an InvalidDecision with a message that changes nothing;
    every decision the view calls placeable is accepted; invariants hold throughout."""
    out = simulator_episode(seed, p_invalid)
    assert out.steps >= 1


@settings(FAST, max_examples=300)
@given(seed=SEEDS)
def test_random_traces_run_or_fail_with_a_value_error(seed):
    kinds()["trace"](seed)


@settings(FAST, max_examples=80)
@given(seed=SEEDS)
def test_random_actions_on_allocate_env(seed):
    out = kinds()["allocate"](seed)
    assert out.steps >= 1


@settings(FAST, max_examples=60)
@given(seed=SEEDS)
def test_random_actions_on_reclaim_env(seed):
    out = kinds()["reclaim"](seed)
    assert out.steps >= 1
