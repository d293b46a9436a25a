"""The wheel's contents and the resolvers of packaged files (trained agents, configs,
the example trace). ``scripts/check_wheel.sh`` installs the wheel in a fresh venv and
runs the commands from another folder (too slow for the suite: it installs torch)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from aryl_gym.cli import main
from aryl_gym.resources import (
    resolve_agent,
    resolve_config,
    resolve_trace,
    trained_agents,
    training_configs,
)

REPO = Path(__file__).resolve().parents[1]


def _tracked(*patterns: str) -> list[str]:
    """Files git tracks or would add (untracked, not ignored) under ``patterns``."""
    out = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "--", *patterns],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sorted(p for p in out.splitlines() if (REPO / p).is_file())


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    """The wheel built from a clean copy of the checkout (no stale build/ folder)."""
    if subprocess.run(["git", "rev-parse"], cwd=REPO, capture_output=True).returncode:
        pytest.skip("needs the git checkout")
    src = tmp_path_factory.mktemp("src")
    for rel in _tracked("."):
        dest = src / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes((REPO / rel).read_bytes())
    out = tmp_path_factory.mktemp("wheel")
    cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run([*cmd, "-w", str(out), str(src)], check=True, capture_output=True)
    (whl,) = out.glob("aryl_gym-*.whl")
    return zipfile.ZipFile(whl)


def test_wheel_has_only_the_aryl_gym_package(wheel):
    names = wheel.namelist()
    top = {n.split("/")[0] for n in names}
    assert top == {"aryl_gym", next(t for t in top if t.endswith(".dist-info"))}
    assert not any(n.startswith(("agents/", "baselines/", "traces/")) for n in names)
    (top_level,) = [n for n in names if n.endswith("top_level.txt")]
    assert wheel.read(top_level).decode().split() == ["aryl_gym"]
    assert "aryl_gym/baselines/aryl.py" in names and "aryl_gym/agents/evaluate.py" in names


def test_wheel_ships_trained_agents_configs_and_the_example_trace(wheel):
    names = set(wheel.namelist())
    shipped = {
        f"aryl_gym/{p}": p
        for p in _tracked("agents/trained", "agents/configs/*.yaml", "traces/example.csv")
    }
    for must in ("trained/allocate/model.zip", "trained/reclaim/config.yaml", "configs/smoke.yaml"):
        assert f"aryl_gym/agents/{must}" in shipped
    assert "aryl_gym/traces/example.csv" in shipped
    missing = sorted(set(shipped) - names)
    assert not missing, f"not in the wheel: {missing}"
    for name, rel in shipped.items():
        assert wheel.read(name) == (REPO / rel).read_bytes(), name
    assert "aryl_gym/data/inference_curves.json" in names


def test_resolvers_find_packaged_files_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    agents = trained_agents()
    assert {"allocate", "reclaim"} <= set(agents)
    assert resolve_agent("allocate") == agents["allocate"]
    assert (resolve_agent("allocate") / "model.zip").is_file()
    assert resolve_config("smoke") == resolve_config("smoke.yaml") == training_configs()["smoke"]
    assert resolve_trace("example").name == "example.csv"
    # an existing path wins over a packaged name
    (tmp_path / "allocate").mkdir()
    assert resolve_agent("allocate") == Path("allocate")


@pytest.mark.parametrize("name", ["nope", "agents/trained/nope"])
def test_unknown_agent_lists_the_packaged_ones(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="packaged: allocate, reclaim"):
        resolve_agent(name)
    with pytest.raises(FileNotFoundError, match=r"packaged: .*\bexample\b"):
        resolve_trace(name + ".csv")


def test_cli_unknown_agent_and_trace(tmp_path, monkeypatch, capsys):
    pytest.importorskip("sb3_contrib", reason="the RL stack is the optional extra .[rl]")
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", "--agent", "nope", "--seeds", "1"]) == 2
    err = capsys.readouterr().err
    assert "agent 'nope' is neither an existing path nor a packaged agent" in err
    assert "allocate, reclaim" in err and "model.zip" not in err
    assert main(["simulate", "--scenario", "tiny", "--trace", "nope.csv", "--quiet"]) == 2
    assert "packaged: example" in capsys.readouterr().err
    assert main(["simulate", "--scenario", "tiny", "--trace", "example", "--quiet"]) == 0


def test_packaged_agent_loads_where_top_level_agents_is_not_importable(tmp_path, monkeypatch):
    """The model zips name their policy class by the old top-level ``agents`` module."""
    pytest.importorskip("sb3_contrib", reason="the RL stack is the optional extra .[rl]")
    from aryl_gym.agents.evaluate import load_agent

    monkeypatch.chdir(tmp_path)
    root = str(REPO)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".", root)])
    for mod in [m for m in sys.modules if m == "agents" or m.startswith("agents.")]:
        monkeypatch.delitem(sys.modules, mod)
    with pytest.raises(ModuleNotFoundError):
        __import__("agents")
    for name in ("allocate", "reclaim"):
        model, cfg, env = load_agent(name)
        obs, _ = env.reset(seed=0)
        action, _ = model.predict(obs, action_masks=env.unwrapped.action_masks())
        assert env.action_space.contains(int(action))
