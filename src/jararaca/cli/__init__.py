"""The ``jararaca`` command: a thin shell over the library.

``main`` is the console script (``jararaca = "jararaca.cli:main"``). One module per concern:
``root`` (the group, --version), ``services`` (beat, worker, scheduler), ``schedules`` (list,
describe, pause, resume, trigger, backfill), ``messages`` (delayed messages, dead letters),
``activity`` (runs, status), ``control_common`` (what the control commands share), ``options``
(shared options, environment variables, logging), ``errors`` (the error exit path),
``reload``.
"""

from __future__ import annotations

from jararaca.cli.root import main

__all__ = ["main"]
