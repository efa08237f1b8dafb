"""The ``jararaca`` command: a thin shell over the library (beat, worker, scheduler).

``main`` is the console script (``jararaca = "jararaca.cli:main"``). One module per concern:
``root`` (the group, --version), ``services`` (beat, worker, scheduler), ``options`` (shared
options, environment variables, logging), ``errors`` (the error exit path), ``reload``.
"""

from __future__ import annotations

from jararaca.cli.root import main

__all__ = ["main"]
