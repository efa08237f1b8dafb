"""Private Redis and RabbitMQ servers that a fault test may stop and start at will.

The shared servers on 6379/5672 are never touched: these run on their own ports, in a
temporary directory, started and stopped by this process (by pid or by their own CLI)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import redis


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for_redis(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``check`` (a Redis error counts as not yet) until it holds, or fail naming ``what``:
    private Redis servers coming up, syncing, electing."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def wait_port(port: int, *, up: bool, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while port_open(port) != up:
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not go {'up' if up else 'down'} in {timeout} s")
        time.sleep(0.1)


class PrivateRedis:
    """redis-server on its own port, with AOF so that a restart keeps the delayed queue."""

    def __init__(self, port: int, workdir: Path) -> None:
        self.port = port
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                str(self.workdir),
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(self.port, up=True, timeout=20, what="private redis")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=20)
        wait_port(self.port, up=False, timeout=10, what="private redis")


class PrivateRabbit:
    """A RabbitMQ node of its own (own name, ports, data directory)."""

    def __init__(self, port: int, workdir: Path) -> None:
        self.port = port
        self.workdir = workdir
        self.node = f"jararaca-test-{port}@localhost"
        self.url = f"amqp://guest:guest@127.0.0.1:{port}/"
        config = workdir / "rabbitmq.conf"
        config.write_text(f"listeners.tcp.1 = 127.0.0.1:{port}\nloopback_users = none\n")
        (workdir / "enabled_plugins").write_text("[].\n")
        for sub in ("mnesia", "log"):
            (workdir / sub).mkdir(exist_ok=True)
        if os.geteuid() == 0 and shutil.which("chown"):
            # rabbitmq-server drops to the rabbitmq user, which must own its directories.
            subprocess.run(["chown", "-R", "rabbitmq:rabbitmq", str(workdir)], check=False)
        self.env = {
            **os.environ,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(port),
            "RABBITMQ_DIST_PORT": str(port + 20000),
            "RABBITMQ_CONFIG_FILE": str(config),
            "RABBITMQ_MNESIA_BASE": str(workdir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(workdir / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(workdir / "enabled_plugins"),
            "RABBITMQ_FEATURE_FLAGS_FILE": str(workdir / "feature_flags"),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["rabbitmq-server"], env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_port(self.port, up=True, timeout=60, what="private rabbitmq")

    def stop(self) -> None:
        subprocess.run(
            ["rabbitmqctl", "-n", self.node, "stop"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
            check=False,
        )
        if self.process is not None:
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        wait_port(self.port, up=False, timeout=20, what="private rabbitmq")
