"""Plug-in policies: ``package.module:Class`` import paths and the ``aryl_gym.policies``
entry-point group."""

from __future__ import annotations

import sys
import textwrap

import pandas as pd
import pytest
from aryl_gym.baselines import (
    ENTRY_POINT_GROUP,
    PolicyLoadError,
    load_policy_class,
    make_policy,
    policy_specs,
)
from aryl_gym.baselines.queue import FifoNoLoan

from aryl_gym.cli import main
from aryl_gym.experiments.runner import validate_policies

MODULE = "aryl_plugin_test_policies"
SOURCE = """
from aryl_gym.baselines.queue import FifoNoLoan


class PlugFifo(FifoNoLoan):
    name = "plug-fifo"
    description = "FIFO, from a plug-in module"


class NotAPolicy:
    pass


class Outer:
    class Inner(FifoNoLoan):
        name = "inner"
"""


@pytest.fixture
def plugin_module(tmp_path, monkeypatch):
    """A module of policies in a temporary folder on ``sys.path``."""
    (tmp_path / f"{MODULE}.py").write_text(textwrap.dedent(SOURCE))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield MODULE
    sys.modules.pop(MODULE, None)


@pytest.fixture
def fake_distribution(plugin_module, tmp_path):
    """An installed-looking distribution (a ``.dist-info`` folder on ``sys.path``) whose
    entry points name the plug-in module's classes; nothing is installed."""
    info = tmp_path / "fake_aryl_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-aryl-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\n"
        f"fake-fifo = {plugin_module}:PlugFifo\n"
        f"broken = {plugin_module}:Missing\n"
        f"aryl = {plugin_module}:PlugFifo\n"  # a built-in name: ignored
    )
    return "fake-aryl-plugin"


def test_import_path_resolves_to_the_class(plugin_module):
    policy = make_policy(f"{plugin_module}:PlugFifo")
    assert type(policy).__name__ == "PlugFifo" and isinstance(policy, FifoNoLoan)
    assert type(make_policy(f"{plugin_module}:Outer.Inner")).__name__ == "Inner"
    validate_policies([f"{plugin_module}:PlugFifo", "fifo-noloan"])


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("no_such_module_xyz:Policy", "cannot import module 'no_such_module_xyz'"),
        ("{m}:Missing", "module '{m}' has no class 'Missing'"),
        ("{m}:NotAPolicy", "'NotAPolicy' in module '{m}' is not a subclass of aryl_gym.policy"),
        ("{m}:", "must look like package.module:Class"),
    ],
)
def test_bad_import_paths_name_module_and_class(plugin_module, path, message):
    path, message = path.format(m=plugin_module), message.format(m=plugin_module)
    with pytest.raises(PolicyLoadError, match=message):
        load_policy_class(path)
    with pytest.raises(ValueError, match=message):  # checked before any run
        validate_policies(["fifo-noloan", path])


def test_cli_reports_a_bad_class_before_running(plugin_module, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["benchmark", "--scenario", "tiny", "--policies", f"{plugin_module}:Nope"]
    assert main([*argv, "--out", str(out), "--quiet"]) == 2
    assert f"module '{plugin_module}' has no class 'Nope'" in capsys.readouterr().err
    assert not out.exists()
    assert main(["simulate", "--scenario", "tiny", "--policy", "nowhere_mod:X", "--quiet"]) == 2
    assert "cannot import module 'nowhere_mod'" in capsys.readouterr().err


def test_benchmark_runs_an_import_path_policy_in_worker_processes(plugin_module, tmp_path):
    path = f"{plugin_module}:PlugFifo"
    out = tmp_path / "bench"
    argv = ["benchmark", "--scenario", "tiny", "--policies", f"{path},fifo-noloan"]
    argv += ["--seeds", "2", "--workers", "2", "--reference", "fifo-noloan"]
    assert main([*argv, "--out", str(out), "--quiet"]) == 0
    df = pd.read_csv(out / "results.csv")
    assert sorted(df.policy.unique()) == sorted([path, "fifo-noloan"]) and len(df) == 4
    # the plug-in is FIFO under another name: same results, seed by seed
    cols = ["seed", "avg_jct_s", "makespan_s", "preemptions"]
    mine = df[df.policy == path][cols].reset_index(drop=True)
    fifo = df[df.policy == "fifo-noloan"][cols].reset_index(drop=True)
    pd.testing.assert_frame_equal(mine, fifo)


def test_simulate_and_env_kwargs_take_an_import_path(plugin_module, capsys):
    from aryl_gym.envs import make_env

    assert main(["simulate", "--scenario", "tiny", "--policy", f"{plugin_module}:PlugFifo"]) == 0
    assert "tiny / plug-fifo / seed 0" in capsys.readouterr().out
    env = make_env(
        "ArylGym/Allocate-v0", scenario="tiny", reclaim_policy=f"{plugin_module}:PlugFifo"
    )
    assert type(env.unwrapped.reclaim_policy).__name__ == "PlugFifo"


def test_entry_point_policies_are_listed_and_resolve_by_name(fake_distribution, capsys):
    with pytest.warns(UserWarning, match="entry point 'aryl'.*built-in policy has that name"):
        specs = policy_specs()
    assert specs["fake-fifo"].source == f"package {fake_distribution}"
    assert specs["aryl"].source == "built-in"
    assert type(make_policy("fake-fifo")).__name__ == "PlugFifo"
    assert type(make_policy("aryl")).__name__ == "ArylPolicy"
    with pytest.raises(PolicyLoadError, match="entry point 'broken'.*fake-aryl-plugin"):
        make_policy("broken")
    assert "cannot load" in specs["broken"].description

    with pytest.warns(UserWarning):
        assert main(["policies"]) == 0
    listed = capsys.readouterr().out
    line = next(ln for ln in listed.splitlines() if ln.startswith("fake-fifo "))
    assert (
        "FIFO, from a plug-in module" in line
        and f"plug-in from package {fake_distribution}" in line
    )
    assert main(["simulate", "--scenario", "tiny", "--policy", "fake-fifo", "--quiet"]) == 0


def test_unknown_name_lists_plugins(fake_distribution):
    with pytest.raises(KeyError, match="unknown policy 'nope'.*fake-fifo.*package.module:Class"):
        make_policy("nope")
