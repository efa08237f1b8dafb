"""The product document's distributed snippets, as written, against the real servers:
``BeatWorker(...).run()``, ``SchedulerV2(...).run()`` and the three ``jararaca beat`` lines
(flags, ``--reload``, environment variables)."""

from __future__ import annotations

import os
import shutil
import sys
import textwrap
from pathlib import Path

import pytest

from tests.integration.cluster import ROOT, Cluster

SNIPPET = """
from jararaca import Microservice, ScheduledAction
from jararaca.scheduler.beat_worker import {cls}
from tests.fixtures.dist_app import app as _demo

app = Microservice(
    # Your microservice configuration
    controllers=_demo.controllers,
)

# Run the scheduler
beat_worker = {cls}(
    app=app,
    interval=1,
    backend_url="{backend}",
    broker_url="{broker}",
    {names}
)
beat_worker.run()
"""


@pytest.mark.parametrize(
    ("cls", "names"),
    [
        ("BeatWorker", 'scheduled_action_names={"tick"} # Optional set of action names to run'),
        ("SchedulerV2", ""),
    ],
)
def test_seed_python_snippets_start_and_dispatch(cluster: Cluster, cls: str, names: str) -> None:
    code = SNIPPET.format(
        cls=cls, backend=cluster.backend_url, broker=cluster.broker_url, names=names
    )
    worker = cluster.start("worker", "--groups", "ticks")
    cluster.wait_ready(worker)
    beat = cluster.spawn("beat-snippet", [sys.executable, "-c", textwrap.dedent(code)])
    cluster.wait_until(
        lambda: len(cluster.records("RUN")) >= 2, 30, "runs dispatched by the snippet"
    )
    assert beat.terminate() == 0


def test_seed_cli_line_with_flags(cluster: Cluster) -> None:
    worker = cluster.start("worker", "--groups", "ticks")
    beat = cluster.start("beat", "--interval", "1", "--actions", "tick")
    cluster.wait_ready(worker)
    cluster.wait_until(lambda: len(cluster.records("RUN")) >= 2, 30, "runs")
    assert beat.terminate() == 0
    assert any("SIGTERM received" in line for line in beat.lines)


def test_seed_cli_line_with_environment_variables(cluster: Cluster) -> None:
    worker = cluster.start("worker", "--groups", "ticks")
    cluster.wait_ready(worker)
    env = {
        "APP_PATH": "tests.fixtures.dist_app:app",
        "INTERVAL": "1",
        "BROKER_URL": cluster.broker_url,
        "BACKEND_URL": cluster.backend_url,
        "ACTIONS": "tick",
        "RELOAD": "false",
        "SRC_DIR": "src",
    }
    beat = cluster.spawn("beat-env", [sys.executable, "-m", "jararaca", "beat"], env)
    cluster.wait_until(
        lambda: len(cluster.records("RUN")) >= 2, 30, "runs from the env-configured beat"
    )
    assert beat.terminate() == 0


def test_seed_cli_line_with_reload_restarts_on_change_and_leaves_no_orphan(
    cluster: Cluster, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(ROOT / "tests" / "fixtures" / "dist_app.py", src / "reload_app.py")
    cluster.also_remove_queues_of("reload_app:app", src)  # its handlers' queues have its name
    worker = cluster.start("worker", "--groups", "ticks")
    cluster.wait_ready(worker)
    env = {"PYTHONPATH": f"{src}{os.pathsep}{ROOT}", "RELOAD": "true", "SRC_DIR": str(src)}
    beat = cluster.spawn(
        "beat-reload",
        [
            sys.executable,
            "-m",
            "jararaca",
            "beat",
            "reload_app:app",
            "--interval",
            "1",
            "--broker-url",
            cluster.broker_url,
            "--backend-url",
            cluster.backend_url,
            "--actions",
            "tick",
            "--reload",
        ],
        env,
        cwd=tmp_path,
    )
    # Under --reload the service runs in a child process, which writes the ready file.
    cluster.wait_until(lambda: beat.ready_pid() is not None, 30, "first start")
    first = beat.ready_pid()
    assert first != beat.popen.pid
    cluster.wait_until(lambda: len(cluster.records("RUN")) >= 1, 30, "a run")
    (src / "reload_app.py").write_text((src / "reload_app.py").read_text() + "\n# edited\n")
    cluster.wait_until(lambda: beat.ready_pid() not in (None, first), 30, "a restart")
    children = _children(beat.popen.pid)
    assert children, "the reloading parent runs the beat in a child process"
    assert beat.terminate() == 0
    # The parent has exited; its children must follow it rather than live on as orphans.
    cluster.wait_until(
        lambda: not any(_alive(pid) for pid in children),
        10,
        lambda: f"the reloader's children {[p for p in children if _alive(p)]} to exit",
    )


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
