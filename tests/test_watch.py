"""``aryl-gym watch`` and the playback it runs on (:mod:`aryl_gym.envs.playback`)."""

from __future__ import annotations

import importlib.machinery
import subprocess
import sys
import types

import pytest
from aryl_gym.baselines import make_policy

import aryl_gym
from aryl_gym.cli import main
from aryl_gym.envs.playback import play, policy_env

TITLE = "ArylGym/Allocate-v0 · small · test split"


def test_parser_build_imports_nothing_heavy():
    code = (
        "import sys; from aryl_gym.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('pandas', 'matplotlib', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_aryl_through_the_follower_equals_aryl_on_the_simulator():
    env, act = policy_env("allocate", make_policy("aryl"), scenario="tiny")
    result = play(env, act, seed=0, options={"split": "test"})
    direct = aryl_gym.evaluate("aryl", "tiny", "test", seeds=(0,))[0]
    assert result.done
    for k in ("jobs_finished", "avg_jct_s", "p95_jct_s", "preemptions", "resizes", "rounds"):
        assert result.info["summary"][k] == direct[k], k


def test_policy_env_rejects_an_unknown_kind():
    with pytest.raises(ValueError, match="env must be one of allocate, reclaim"):
        policy_env("schedule", make_policy("aryl"))


def test_watch_policy_prints_a_frame_per_step(capsys):
    assert main(["watch", "--policy", "aryl", "--max-steps", "5", "--delay", "0"]) == 0
    out = capsys.readouterr().out
    assert out.count(TITLE) == 6  # after the reset and after each step
    assert "decision: round " in out and "GPUs busy" in out
    assert out.rstrip().endswith(
        "aryl on ArylGym/Allocate-v0: stopped after 5 steps (--max-steps 5)"
    )


def test_watch_reclaim_policy_plays_the_whole_episode(capsys):
    argv = ["watch", "--policy", "aryl-reclaim-lost", "--env", "reclaim", "--max-steps", "0"]
    assert main([*argv, "--delay", "0"]) == 0
    out = capsys.readouterr().out
    assert "decision: reclaim 1: return" in out and "decision: episode over" in out
    assert "aryl-reclaim-lost on ArylGym/Reclaim-v0: episode over after" in out
    assert "jobs_finished" in out


def test_watch_writes_a_gif_with_a_frame_per_step(tmp_path, capsys):
    from PIL import Image

    out = tmp_path / "sub" / "episode.gif"
    assert main(["watch", "--policy", "aryl", "--max-steps", "3", "--video", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    with Image.open(out) as gif:
        assert gif.n_frames == 4 and gif.size == (800, 480)


def _fake_moviepy(monkeypatch) -> list:
    """A stand-in for moviepy's ImageSequenceClip (what RecordVideo uses); returns the
    list the clips append (frames, fps, path) to."""
    written: list = []

    class ImageSequenceClip:
        def __init__(self, frames, fps):
            self.frames, self.fps = list(frames), fps

        def write_videofile(self, path, logger=None):
            written.append((len(self.frames), self.fps, path))
            with open(path, "wb") as f:
                f.write(b"fake mp4")

    names = ["moviepy", "moviepy.video", "moviepy.video.io", "moviepy.video.io.ImageSequenceClip"]
    for name in names:
        mod = types.ModuleType(name)
        mod.__spec__ = importlib.machinery.ModuleSpec(name, None)
        monkeypatch.setitem(sys.modules, name, mod)
    sys.modules[names[-1]].ImageSequenceClip = ImageSequenceClip
    return written


def test_watch_writes_an_mp4_through_record_video(tmp_path, monkeypatch):
    written = _fake_moviepy(monkeypatch)
    out = tmp_path / "episode.mp4"
    argv = ["watch", "--policy", "aryl", "--max-steps", "2", "--fps", "8", "--video", str(out)]
    assert main(argv) == 0
    assert out.read_bytes() == b"fake mp4"
    assert [(n, fps) for n, fps, _ in written] == [(3, 8)]
    assert [p.name for p in tmp_path.iterdir()] == ["episode.mp4"]  # no leftovers


def test_mp4_without_moviepy_names_the_package(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)  # no moviepy
    out = tmp_path / "episode.mp4"
    assert main(["watch", "--policy", "aryl", "--video", str(out)]) == 2
    err = capsys.readouterr().err
    assert "writing an MP4 needs moviepy" in err and "pip install moviepy" in err
    assert "--video out.gif" in err and not out.exists()


def test_gif_without_pillow_or_imageio_names_them(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "PIL", None)
    monkeypatch.setitem(sys.modules, "imageio", None)
    assert main(["watch", "--policy", "aryl", "--video", str(tmp_path / "e.gif")]) == 2
    assert "pip install pillow" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--video", "x.avi"], "--video must end in .gif or .mp4"),
        (["--max-steps", "-1"], "--max-steps must be >= 0"),
        (["--policy", "nope"], "unknown policy 'nope'"),
    ],
)
def test_watch_usage_errors(argv, message, capsys):
    base = ["watch", "--policy", "aryl"] if "--policy" not in argv else ["watch"]
    assert main([*base, *argv]) == 2
    assert message in capsys.readouterr().err


def test_watch_agent(tmp_path, monkeypatch, capsys):
    pytest.importorskip("sb3_contrib", reason="the RL stack is the optional extra .[rl]")
    monkeypatch.chdir(tmp_path)
    assert main(["watch", "--agent", "nope"]) == 2
    assert "packaged: allocate, reclaim" in capsys.readouterr().err
    assert main(["watch", "--agent", "reclaim", "--env", "allocate"]) == 2
    assert "--env goes with --policy" in capsys.readouterr().err
    assert main(["watch", "--agent", "reclaim", "--max-steps", "0", "--delay", "0"]) == 0
    out = capsys.readouterr().out
    assert "ArylGym/Reclaim-v0 · small · test split" in out
    assert "agent reclaim on ArylGym/Reclaim-v0: episode over after" in out
