"""Example traces shipped as package data: ``traces/`` installs as ``aryl_gym.traces``
(see :func:`aryl_gym.resources.resolve_trace`); the format is documented in
``traces/README.md``."""
