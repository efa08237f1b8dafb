"""``--reload``: run the same command without it in a child, restarted on .py changes."""

from __future__ import annotations

import logging
import os
import shlex
import sys
from pathlib import Path

from jararaca.cli.errors import EXIT_CONFIG, fail, missing_extra_message
from jararaca.cli.options import envvars

log = logging.getLogger("jararaca.cli")


def run_with_reload(src_dir: str) -> None:
    """Run this same command without --reload in a child, restarted on .py changes."""
    try:
        import watchfiles  # an extra: pip install 'jararaca[reload]'
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] != "watchfiles":
            raise
        fail(missing_extra_message("watchfiles", "reload", "--reload"), EXIT_CONFIG)
    if not Path(src_dir).is_dir():
        fail(
            f"--src-dir {src_dir!r} is not a directory: point --src-dir (or JARARACA_SRC_DIR) "
            "at the folder holding your code, or drop --reload",
            EXIT_CONFIG,
        )
    argv = [a for a in sys.argv[1:] if a != "--reload"]
    # The child inherits the environment: RELOAD=true there would make it watch again.
    for name in envvars("RELOAD"):
        os.environ[name] = "false"
    command = shlex.join([sys.executable, "-m", "jararaca", *argv])
    log.info("watching %s for .py changes", Path(src_dir).resolve())
    watchfiles.run_process(
        src_dir,
        target=command,
        target_type="command",
        watch_filter=watchfiles.PythonFilter(),
        callback=lambda changes: log.info("%d change(s): restarting", len(changes)),
    )
