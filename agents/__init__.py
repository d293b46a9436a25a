"""RL agents for aryl-gym's envs (optional extra ``.[rl]``: torch, stable-baselines3,
sb3-contrib, tensorboard). See ``docs/agents.md``.

* :mod:`agents.train` — ``aryl-gym train --config agents/configs/NAME.yaml``
* :mod:`agents.evaluate` — ``aryl-gym evaluate --agent agents/trained/allocate``
* :mod:`agents.networks` — the permutation-equivariant set policy
* :mod:`agents.bc` — behaviour cloning of Aryl (warm start)
* :mod:`agents.callbacks` — TensorBoard metrics, validation, best model, checkpoints
* :mod:`agents.round_train` — ``aryl-gym train-round``: CEM then PPO on ``Round-v0``
* :mod:`agents.round_policy` — the Round-v0 set policy started from a linear scorer
"""
