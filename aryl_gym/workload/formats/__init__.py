"""The trace formats: one module per format (or family), each declaring its
:class:`TraceFormat` objects in ``TRACE_FORMATS``, and the code they share.

* :mod:`~aryl_gym.workload.formats.registry`: :class:`TraceFormat`, the registry
  (:func:`register`, :func:`formats`, :func:`get_format`) and :func:`detect_format`;
  it finds the formats of this package by importing its modules (``pkgutil``).
* :mod:`~aryl_gym.workload.formats.common`: the CSV checks and :class:`Rows`.
* :mod:`~aryl_gym.workload.formats.mapping`: :class:`MappingOptions`,
  :class:`MappingReport`, and ``map_rows`` / ``rows_loader``, Rows -> jobs.

:mod:`aryl_gym.workload.real_traces` is the entry point (``load_any``). Importing this
package imports only the standard library: the readers (numpy, pandas) are imported
when the registry is first read.
"""

from aryl_gym.workload.formats.registry import *  # noqa: F403 (its __all__ is the API)
from aryl_gym.workload.formats.registry import __all__  # noqa: F401
