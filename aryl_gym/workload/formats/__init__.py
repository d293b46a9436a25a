"""Readers of the public trace formats, one module per family, and the mapping they
share; :mod:`aryl_gym.workload.real_traces` is the entry point."""
