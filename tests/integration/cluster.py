"""Real ``jararaca beat`` / ``jararaca worker`` processes against 127.0.0.1 for integration tests.

Each test gets its own exchange (= Redis namespace), so tests never see each other's state,
and everything it started or declared is removed afterwards. Processes are stopped by pid.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.services import AMQP_URL, REDIS_URL, require_rabbitmq, require_redis

ROOT = Path(__file__).resolve().parents[2]
APP = "tests.fixtures.dist_app:app"
# JARARACA_LEASE_SECONDS of every process started here unless a test sets its own: short, so
# that a take-over after a kill happens within a test's patience.
LEASE_SECONDS = 6


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[str]
    ready_file: Path
    lines: list[str] = field(default_factory=list)

    def ready_pid(self) -> int | None:
        """The pid in the process's ready file (JARARACA_READY_FILE): its own once started,
        a child's under --reload; None before start-up ends and once it began to stop."""
        try:
            return int(self.ready_file.read_text())
        except (OSError, ValueError):
            return None

    def kill(self) -> None:
        """``kill -9``: no chance to clean up, as in a crash."""
        if self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)

    def terminate(self, timeout: float = 30) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        return self.popen.wait(timeout=timeout)

    def records(self, kind: str) -> list[list[str]]:
        return [line.split() for line in list(self.lines) if line.startswith(kind + " ")]


class Cluster:
    """Starts processes of one app on one fresh exchange; ``close()`` removes everything."""

    def __init__(
        self,
        label: str,
        *,
        amqp_url: str = AMQP_URL,
        redis_url: str = REDIS_URL,
        app: str = APP,
    ) -> None:
        self.app = app
        self.exchange = f"it-{label}-{uuid.uuid4().hex[:8]}"
        self.amqp_url = amqp_url
        self.broker_url = f"{amqp_url}?exchange={self.exchange}"
        self.backend_url = redis_url
        self.processes: list[Process] = []
        # Other apps started on this exchange (module:attr, the folder it is imported from):
        # their queues are removed too.
        self._other_apps: list[tuple[str, Path]] = []
        self._ready_dir = Path(tempfile.mkdtemp(prefix="jararaca-ready-"))

    def also_remove_queues_of(self, app: str, folder: Path) -> None:
        self._other_apps.append((app, folder))

    def start(
        self, kind: str, *args: str, env: dict[str, str] | None = None, app: str | None = None
    ) -> Process:
        urls = ["--broker-url", self.broker_url, "--backend-url", self.backend_url]
        return self.spawn(
            f"{kind}-{len(self.processes)}",
            [sys.executable, "-m", "jararaca", kind, app or self.app, *urls, *args],
            env,
        )

    def spawn(
        self, name: str, command: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT
    ) -> Process:
        """Start any command (a CLI line, a script) whose output the test reads."""
        ready_file = self._ready_dir / f"{len(self.processes)}-{name}.ready"
        popen = subprocess.Popen(
            command,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={
                **os.environ,
                "JARARACA_LEASE_SECONDS": str(LEASE_SECONDS),
                "JARARACA_READY_FILE": str(ready_file),
                **(env or {}),
            },
        )
        process = Process(name, popen, ready_file)
        threading.Thread(target=_pump, args=(process,), daemon=True).start()
        self.processes.append(process)
        return process

    def records(self, kind: str) -> list[list[str]]:
        return [r for p in self.processes for r in p.records(kind)]

    def wait_until(
        self, condition: Callable[[], bool], timeout: float, what: str | Callable[[], str]
    ) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                described = what() if callable(what) else what
                tails = "\n".join(
                    f"--- {p.name}\n" + "\n".join(p.lines[-15:]) for p in self.processes
                )
                raise AssertionError(
                    f"timed out after {timeout} s waiting for {described}\n{tails}"
                )
            time.sleep(0.1)

    def wait_ready(self, process: Process, timeout: float = 30) -> None:
        """Until the process wrote its pid to its ready file: started (a worker: consuming)."""
        self.wait_until(
            lambda: process.ready_pid() == process.popen.pid, timeout, f"{process.name} ready"
        )

    def consumer_count(self, queue: str) -> int:
        """How many consumers RabbitMQ counts on the app's ``queue`` (named as in its
        ``QueueSpec``, without the exchange prefix): 0 once every worker stopped taking work."""

        async def count() -> int:
            import aio_pika

            connection = await aio_pika.connect(self.amqp_url)
            async with connection:
                channel = await connection.channel()
                declared = await channel.declare_queue(f"{self.exchange}.{queue}", passive=True)
                result = declared.declaration_result
                return int(result.consumer_count or 0)

        return asyncio.run(count())

    def delayed_queue_empty(self) -> bool:
        """Whether the backend holds nothing to deliver: no pending entry and none in flight
        (a beat published everything it claimed and forgot it)."""

        async def check() -> bool:
            from jararaca.backends.redis import RedisBackend

            backend = RedisBackend(self.backend_url, namespace=self.exchange)
            await backend.connect()
            try:
                return await backend.pending_count() == 0 and await backend.next_due() is None
            finally:
                await backend.close()

        return asyncio.run(check())

    def close(self) -> None:
        for process in self.processes:
            process.kill()
        shutil.rmtree(self._ready_dir, ignore_errors=True)
        asyncio.run(self._remove_state())

    async def _remove_state(self) -> None:
        from jararaca.apploader import load_app
        from jararaca.backends.redis import RedisBackend
        from jararaca.brokers.base import QueueSpec
        from jararaca.brokers.rabbitmq import RabbitMQBroker
        from jararaca.registry import action_queues, build_registry

        apps = [load_app(self.app)]
        for other, folder in self._other_apps:
            sys.path.insert(0, str(folder))
            try:
                apps.append(load_app(other))
            finally:
                sys.path.remove(str(folder))

        # The broker's topology first and whatever happens to the backend: a Redis that a
        # fault test left failing must not leave queues behind on the shared RabbitMQ.
        broker = RabbitMQBroker(self.amqp_url, namespace=self.exchange, prefetch=1)
        await broker.connect()
        try:
            queues: list[QueueSpec] = []
            for app in apps:
                registry = build_registry(app)
                queues += [h.queue for h in registry.handlers] + action_queues(registry.actions)
            await broker.declare([q for q in queues if not q.broadcast])
            await broker.delete_topology()
        finally:
            await broker.close()
        backend = RedisBackend(self.backend_url, namespace=self.exchange)
        await backend.connect()
        try:
            await backend.delete_namespace()
        finally:
            await backend.close()


@contextmanager
def live_cluster(label: str, app: str = APP) -> Iterator[Cluster]:
    """A :class:`Cluster` on the shared Redis and RabbitMQ (with CI=true a missing one fails
    the test), closed afterwards: the body of most fixtures that start processes."""
    require_redis()
    require_rabbitmq()
    cluster = Cluster(label, app=app)
    try:
        yield cluster
    finally:
        cluster.close()


def _pump(process: Process) -> None:
    assert process.popen.stdout is not None
    for line in process.popen.stdout:
        process.lines.append(line.rstrip("\n"))
