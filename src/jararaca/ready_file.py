"""``JARARACA_READY_FILE``: a file a beat, worker or scheduler process writes its pid to once it
has started (a worker: consuming its queues) and removes as it begins to stop.

For whatever wants to know that a process is ready without asking it over HTTP: a Kubernetes
``exec`` readiness probe (``test -f``), a supervisor, a deployment script, a test. The
``--metrics-port`` endpoint's ``/readyz`` says more (whether Redis and RabbitMQ are reachable
now); this says only that start-up is done and the process has not begun to stop.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from jararaca.errors import ConfigError

VARIABLE = "JARARACA_READY_FILE"


def announce() -> Path | None:
    """Write this process's pid to the ready file, if one is asked for; return its path."""
    raw = os.environ.get(VARIABLE, "").strip()
    if not raw:
        return None
    path = Path(raw)
    pid = os.getpid()
    # Written aside, then renamed: a reader finds the whole pid or no file, never half of it.
    aside = path.with_name(f".{path.name}.{pid}")
    try:
        aside.write_text(f"{pid}\n", encoding="ascii")
        os.replace(aside, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            aside.unlink()
        raise ConfigError(
            f"{VARIABLE}={raw!r}: cannot write the ready file there ({exc.strerror}); point "
            "it at a file in a folder this process may write to, or unset it"
        ) from None
    return path


def withdraw(path: Path) -> None:
    """Remove the ready file if it still holds this process's pid (a process started since,
    such as a ``--reload`` child, may have written its own)."""
    with contextlib.suppress(OSError):
        if path.read_text(encoding="ascii").strip() == str(os.getpid()):
            path.unlink()
