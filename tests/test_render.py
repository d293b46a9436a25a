"""Rendering of both envs: ``render_mode="ansi"`` and ``"rgb_array"``."""

from __future__ import annotations

import re
import warnings

import gymnasium as gym
import numpy as np
import pytest

from aryl_gym.envs import make_env
from aryl_gym.envs.render import RENDER_MODES, Frame, ansi_frame, job_color, rgb_frame

ALLOC, RECL = "ArylGym/Allocate-v0", "ArylGym/Reclaim-v0"


def named(frame: str, name: str) -> bool:
    """Whether ``name`` appears in ``frame`` as a whole word (``s1`` is not in ``s12``)."""
    return re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", frame) is not None


@pytest.mark.parametrize("env_id", [ALLOC, RECL])
@pytest.mark.parametrize("mode", RENDER_MODES)
def test_check_env_passes_with_each_render_mode(env_id, mode):
    from gymnasium.utils.env_checker import check_env

    env = gym.make(env_id, render_mode=mode)
    assert env.metadata["render_modes"] == list(RENDER_MODES)
    assert env.metadata["render_fps"] > 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)  # renders in every declared mode through env.spec
    assert not [w for w in caught if "render" in str(w.message).lower()]


def test_unknown_render_mode_is_a_clear_error():
    from aryl_gym.envs.allocate import AllocateEnv
    from aryl_gym.envs.reclaim import ReclaimEnv

    for cls in (AllocateEnv, ReclaimEnv):
        with pytest.raises(ValueError, match="render_mode must be None or one of 'ansi', 'rgb"):
            cls("tiny", render_mode="human")


def test_render_without_a_mode_returns_none():
    env = make_env(ALLOC, scenario="tiny")
    env.reset(seed=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert env.unwrapped.render() is None
    assert any("render_mode" in str(w.message) for w in caught)


def test_ansi_frames_name_every_lent_server_queued_and_running_job():
    env = make_env(ALLOC, scenario="small", render_mode="ansi")
    env.reset(seed=3)
    u = env.unwrapped
    seen_lent = seen_queue = seen_running = 0
    for _ in range(400):
        frame = env.render()
        e = u.engine
        assert isinstance(frame, str)
        for s in e.cluster.lent_order:
            assert named(frame, f"s{s}"), f"lent server s{s} missing:\n{frame}"
        for job in e.queue.values():
            assert named(frame, job.job_id), f"queued job {job.job_id} missing:\n{frame}"
        for job in e.running.values():
            line = next(ln for ln in frame.splitlines() if ln.startswith(f"  {job.job_id}: "))
            assert re.match(rf"  {job.job_id}: {job.n_gpus} GPUs?\b", line), line
            assert f"rate {job.rate:.2f}" in line
        assert f"{len(e.queue)} queued" in frame and f"{e.cluster.n_lent} lent" in frame
        seen_lent += bool(e.cluster.lent_order)
        seen_queue += bool(e.queue)
        seen_running += bool(e.running)
        _, _, term, trunc, _ = env.step(u.round.commit_action)  # nothing ever starts: a queue
        if term or trunc:
            break
    assert seen_lent and seen_queue, "the episode never lent a server or queued a job"


def test_ansi_frame_shows_the_pending_allocation_and_the_reclaim_picks():
    env = make_env(ALLOC, scenario="small", render_mode="ansi")
    env.reset(seed=3)
    u = env.unwrapped
    rnd = u.round
    slot = next(i for i, j in enumerate(rnd.slot_jobs) if j is not None and j.n_gpus == 0)
    job = rnd.slot_jobs[slot]
    assert "no change yet" in env.render()
    env.step(rnd.action(slot, 0))  # op 0: start at the base demand
    assert f"start {job.job_id}@{job.base_gpus}" in env.render()

    renv = make_env(RECL, scenario="small", render_mode="ansi")
    renv.reset(seed=0)
    ru = renv.unwrapped
    k = ru.round.k
    assert f"reclaim 1: return {k} lent server(s); picked none yet ({k} left)" in renv.render()
    # the state between two picks of a reclaim (the env applies the reclaim after k picks)
    slot = int(np.flatnonzero(ru.action_masks())[0])
    server = ru.round.slots[slot]
    ru.round.pick(slot)
    frame = renv.render()
    assert f"picked s{server} ({k - 1} left)" in frame
    assert re.search(rf"s{server} .*← returning", frame)


def test_ansi_frame_caps_long_lists():
    env = make_env(ALLOC, scenario="small", render_mode="ansi")
    env.reset(seed=3)
    cl = env.unwrapped.engine.cluster
    frame = ansi_frame(Frame(env.unwrapped.engine, "t"), max_lines=2)
    assert f"… and {cl.n_training + cl.n_lent - 2} more" in frame  # training + lent servers
    assert "s0 " in frame and "s2 " not in frame


def test_rgb_array_is_a_fixed_size_uint8_picture_with_the_jobs_colours():
    env = make_env(RECL, scenario="small", render_mode="rgb_array")
    blank = env.unwrapped.render()  # before reset: same size, no state
    env.reset(seed=0)
    img = env.render()
    assert isinstance(img, np.ndarray) and img.dtype == np.uint8
    assert img.ndim == 3 and img.shape[2] == 3 and img.shape == blank.shape
    job = next(iter(env.unwrapped.engine.running.values()))
    assert (img == job_color(job.idx)).all(axis=-1).any(), "a running job's colour is missing"
    assert not (blank == job_color(job.idx)).all(axis=-1).any()
    env.step(int(np.flatnonzero(env.unwrapped.action_masks())[0]))
    assert env.render().shape == img.shape


def test_frames_of_a_bare_engine():
    from aryl_gym.baselines import make_policy

    from aryl_gym.scenarios import get_scenario
    from aryl_gym.simulate import run_policy

    engine = run_policy(get_scenario("tiny"), make_policy("aryl"), seed=0).engine
    frame = Frame(engine, "tiny / aryl", "done")
    text = ansi_frame(frame)
    assert text.startswith("tiny / aryl\n") and "decision: done" in text
    assert rgb_frame(frame).shape[2] == 3
