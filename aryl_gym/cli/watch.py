"""``aryl-gym watch``: play one episode of a policy or a trained agent and show it, as text
frames in the terminal or as a video (``--video out.gif`` / ``out.mp4``).

A heuristic (``--policy``) acts through the env like an agent (see
:mod:`aryl_gym.envs.playback`); an agent (``--agent``) acts with its model,
deterministically, with its masks. Frames come from the envs' ``render()``
(:mod:`aryl_gym.envs.render`): one after the reset and one after every step.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

#: Video formats of ``--video`` and what writes them.
VIDEO_SUFFIXES = (".gif", ".mp4")


def register(sub) -> None:
    w = sub.add_parser(
        "watch",
        help="play one episode of a policy or a trained agent: text frames or a GIF/MP4",
        description=__doc__.split("\n\n")[0],
    )
    who = w.add_mutually_exclusive_group(required=True)
    who.add_argument(
        "--policy", help="a policy name (see `aryl-gym policies`) or package.module:Class"
    )
    who.add_argument(
        "--agent",
        help="a trained agent: its folder or zip, or a packaged agent's name (allocate, reclaim)",
    )
    w.add_argument(
        "--env",
        choices=("allocate", "reclaim"),
        help="the decision --policy makes through the env (Allocate-v0 or Reclaim-v0; "
        "default allocate); an agent's env is its config's",
    )
    w.add_argument("--scenario", help="scenario (default: small, or the agent's)")
    w.add_argument("--seed", type=int, default=0, help="episode seed (default 0)")
    w.add_argument("--split", default="test", choices=("train", "val", "test"))
    w.add_argument("--episode-hours", type=float, help="episode length (default: the env's)")
    w.add_argument(
        "--max-steps",
        type=int,
        default=300,
        help="stop after this many env steps (default 300; 0 = the whole episode)",
    )
    w.add_argument(
        "--delay",
        type=float,
        help="seconds between text frames (default 0.2 in a terminal, else 0)",
    )
    w.add_argument(
        "--video",
        type=Path,
        help="write the episode as a video instead: .gif (Pillow or imageio) or .mp4 "
        "(Gymnasium's RecordVideo, needs moviepy)",
    )
    w.add_argument("--fps", type=float, help="video frames per second (default: the env's)")
    w.set_defaults(func=cmd_watch)


def cmd_watch(args: argparse.Namespace) -> int:
    if args.max_steps < 0:
        raise ValueError(f"--max-steps must be >= 0, got {args.max_steps}")
    if args.video is not None and args.video.suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"--video must end in {' or '.join(VIDEO_SUFFIXES)}, got {args.video}")
    if args.video is not None:
        video_writer_check(args.video)  # before the (slow) env and agent are built
    mode = "ansi" if args.video is None else "rgb_array"
    env, act, label = _env_and_actor(args, mode)
    from aryl_gym.envs.playback import play

    max_steps = args.max_steps or None
    options = {"split": args.split}
    if args.video is None:
        show = _terminal_printer(args.delay)
        result = play(env, act, seed=args.seed, options=options, max_steps=max_steps, on_frame=show)
    else:
        fps = args.fps or env.metadata.get("render_fps", 4)
        result = record_video(
            env, act, args.video, fps, seed=args.seed, options=options, max_steps=max_steps
        )
        print(f"wrote {args.video}")
    _print_outcome(label, result, args.max_steps)
    return 0


def _env_and_actor(args: argparse.Namespace, mode: str) -> tuple[Any, Any, str]:
    """(env with ``render_mode=mode``, act, label) for ``--policy`` or ``--agent``."""
    kwargs: dict[str, Any] = {"render_mode": mode}
    if args.episode_hours is not None:
        kwargs["episode_hours"] = args.episode_hours
    if args.policy is not None:
        from aryl_gym.baselines import make_policy
        from aryl_gym.envs.playback import policy_env

        kind = args.env or "allocate"
        env, act = policy_env(
            kind, make_policy(args.policy), scenario=args.scenario or "small", **kwargs
        )
        return env, act, f"{args.policy} on {env.spec.id}"
    if args.env is not None:
        raise ValueError("--env goes with --policy: an agent acts in the env it was trained in")
    from aryl_gym.cli.agents import _rl_stack_missing

    missing = _rl_stack_missing()
    if missing is not None:
        from aryl_gym._install import install_hint

        raise ValueError(
            f"--agent needs the RL stack (no module named {missing!r}); "
            f"install it with: {install_hint('rl')}"
        )
    from aryl_gym.agents.callbacks import make_agent_policy
    from aryl_gym.agents.evaluate import load_agent
    from aryl_gym.envs import make_env

    model, cfg, plain = load_agent(args.agent)
    env_kwargs = {**cfg["env_kwargs"], **kwargs}
    if args.scenario is not None:
        env_kwargs["scenario"] = args.scenario
    env = make_env(cfg["env_id"], **env_kwargs)
    agent = make_agent_policy(model, plain, cfg["algo"] == "maskable_ppo")
    return env, agent.act, f"agent {args.agent} on {env.spec.id}"


def _terminal_printer(delay: float | None):
    """``show(frame)``: print a text frame; in a terminal, over the previous one."""
    import time

    tty = sys.stdout.isatty()
    pause = (0.2 if tty else 0.0) if delay is None else max(delay, 0.0)

    def show(frame: str) -> None:
        if tty:
            sys.stdout.write("\x1b[H\x1b[2J")  # cursor home, clear screen
        sys.stdout.write(frame + ("" if tty else "\n"))
        sys.stdout.flush()
        if pause:
            time.sleep(pause)

    return show


def _print_outcome(label: str, result, max_steps: int) -> None:
    if not result.done:
        print(f"{label}: stopped after {result.steps} steps (--max-steps {max_steps})")
        return
    s = result.info.get("summary", {})
    keys = ("jobs_finished", "jobs_total", "avg_jct_s", "preemptions", "lost_gpu_hours")
    shown = ", ".join(f"{k} {s[k]:.4g}" for k in keys if k in s)
    print(
        f"{label}: episode over after {result.steps} steps, return {result.episode_return:.4g}; {shown}"
    )


# --------------------------------------------------------------------------- video
def record_video(
    env: Any,
    act: Any,
    path: Path,
    fps: float,
    **play_kwargs: Any,
):
    """Play an episode of ``env`` (``render_mode="rgb_array"``) and write it to ``path``:
    ``.mp4`` through Gymnasium's ``RecordVideo`` (needs moviepy), ``.gif`` with Pillow
    (or imageio). ``ValueError`` naming the package to install when the writer is
    missing; returns :func:`~aryl_gym.envs.playback.play`'s result."""
    from aryl_gym.envs.playback import play

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".mp4":
        return _record_mp4(env, act, path, fps, play_kwargs)
    writer = _gif_writer()
    frames: list = []
    result = play(env, act, on_frame=frames.append, **play_kwargs)
    env.close()
    writer(path, frames, fps)
    return result


def video_writer_check(path: Path) -> None:
    """``ValueError`` naming the package to install when ``path``'s format has no writer."""
    if Path(path).suffix.lower() == ".mp4":
        _require_moviepy()
    else:
        _gif_writer()


def _require_moviepy() -> None:
    import importlib.util

    if importlib.util.find_spec("moviepy") is None:
        raise ValueError(
            "writing an MP4 needs moviepy, which is not installed: pip install moviepy "
            "(or 'gymnasium[other]'); or write a GIF instead: --video out.gif"
        )


def _record_mp4(env: Any, act: Any, path: Path, fps: float, play_kwargs: dict):
    import shutil
    import tempfile

    from gymnasium.wrappers import RecordVideo

    from aryl_gym.envs.playback import play

    _require_moviepy()
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        rec = RecordVideo(
            env,
            str(Path(tmp, "video")),
            episode_trigger=lambda episode: episode == 0,
            name_prefix="watch",
            fps=fps,
        )
        result = play(rec, act, **play_kwargs)
        rec.close()  # writes the video
        (video,) = Path(tmp, "video").glob("watch-episode-0.mp4")
        shutil.move(str(video), path)
    return result


def _gif_writer():
    """``write(path, frames, fps)`` with Pillow, else imageio; ``ValueError`` naming them."""
    try:
        from PIL import Image
    except ImportError:
        pass
    else:

        def write_pillow(path: Path, frames: list, fps: float) -> None:
            Image.fromarray(frames[0]).save(
                path,
                save_all=True,
                append_images=(Image.fromarray(f) for f in frames[1:]),  # one at a time
                duration=int(round(1000 / fps)),
                loop=0,
            )

        return write_pillow
    try:
        import imageio.v2 as imageio
    except ImportError:
        raise ValueError(
            "writing a GIF needs Pillow or imageio, and neither is installed: "
            "pip install pillow (or pip install imageio)"
        ) from None

    def write_imageio(path: Path, frames: list, fps: float) -> None:
        imageio.mimsave(path, frames, duration=1.0 / fps, loop=0)

    return write_imageio
