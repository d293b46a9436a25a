"""aryl-gym: a simulator and Gymnasium environments of a shared GPU cluster with capacity
loaning and elastic training jobs (the Aryl / Lyra scheduler, arXiv 2202.07896)."""

__version__ = "0.1.0"

from aryl_gym.envs import register_envs as _register_envs  # noqa: E402

_register_envs()  # gymnasium registration only: the env modules load on gym.make


def __getattr__(name: str):
    # aryl_gym.evaluate / aryl_gym.AgentPolicy without importing them at package import
    if name in ("evaluate", "AgentPolicy"):
        import importlib

        return getattr(importlib.import_module("aryl_gym.evaluation"), name)
    raise AttributeError(f"module 'aryl_gym' has no attribute {name!r}")
