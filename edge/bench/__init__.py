"""``crackseg bench``: honest, comparable speed figures for every model, backend, precision and size.

Modules: :mod:`~crackseg.edge.bench.config` (the sweep and its checks), :mod:`~crackseg.edge.bench.artifacts`
(models made on the fly), :mod:`~crackseg.edge.bench.raw` (raw inference), :mod:`~crackseg.edge.bench.endtoend`
and :mod:`~crackseg.edge.bench.listener` (pipeline, naive loop, subscriber process),
:mod:`~crackseg.edge.bench.inspection` and :mod:`~crackseg.edge.bench.autopilot` (the inspection run's
recording, overlay and pose, from a loopback MAVLink autopilot),
:mod:`~crackseg.edge.bench.machine` (machine facts), :mod:`~crackseg.edge.bench.results` (the JSON schema,
``edge/BENCH.md``), :mod:`~crackseg.edge.bench.report` (JSON, Markdown, PNG) and
:mod:`~crackseg.edge.bench.sweep` (runs it all). Nothing here imports torch unless a case needs it.
This package imports nothing itself: the subscriber process, which imports it, stays light.
"""

from __future__ import annotations

__all__: list[str] = []
