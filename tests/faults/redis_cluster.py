"""A private Redis Cluster of three masters (no replicas) on loopback ports of its own, each node
in its own folder, stopped by pid; and how many of a namespace's keys each master holds.

Used by the fault tests (tests/faults/test_redis_cluster.py, test_cluster_processes.py) and by
the bench's redis-cluster scenario, so it does not import pytest: a caller that needs the
binaries asks :func:`missing_binaries` and skips or fails in its own way. Each user passes
ports of its own, so two of them never meet on a port (a node also takes port + 10000 for
the cluster bus)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from tests.faults.servers import wait_port

BINARIES = ("redis-server", "redis-cli")


def missing_binaries() -> list[str]:
    return [binary for binary in BINARIES if shutil.which(binary) is None]


class PrivateRedisCluster:
    def __init__(self, workdir: Path, ports: tuple[int, int, int], shards: int) -> None:
        self.workdir = workdir
        self.ports = ports
        self.processes: list[subprocess.Popen[bytes]] = []
        nodes = ",".join(f"127.0.0.1:{port}" for port in ports)
        self.url = f"redis+cluster://{nodes}?shards={shards}"

    def start(self) -> None:
        for port in self.ports:
            folder = self.workdir / str(port)
            folder.mkdir()
            command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1"]
            command += ["--cluster-enabled", "yes", "--save", "", "--appendonly", "no"]
            command += ["--dir", str(folder), "--cluster-config-file", "nodes.conf"]
            self.processes.append(
                subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )
            wait_port(port, up=True, timeout=20, what=f"cluster node {port}")
        create = ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports)]
        create += ["--cluster-replicas", "0", "--cluster-yes"]
        subprocess.run(create, check=True, capture_output=True, timeout=60)
        for port in self.ports:
            # --cluster create returns once the slots are assigned; each node says "ok" once
            # it has heard of the others.
            self._wait_ok(port)

    @staticmethod
    def _wait_ok(port: int) -> None:
        deadline = time.monotonic() + 20
        while True:
            info = subprocess.run(
                ["redis-cli", "-p", str(port), "cluster", "info"],
                check=False,
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout
            if "cluster_state:ok" in info:
                return
            assert time.monotonic() < deadline, f"cluster node {port} never got ready: {info}"
            time.sleep(0.1)

    def keys_per_master(self) -> dict[int, list[str]]:
        """Every key each master holds, by port. With no replicas every node is a master, and
        a key lives on exactly one of them (the owner of its hash slot)."""
        found: dict[int, list[str]] = {}
        for port in self.ports:
            with redis.Redis(port=port, socket_timeout=10) as node:
                found[port] = sorted(key.decode() for key in node.scan_iter(count=1000))
        return found

    @contextmanager
    def running(self) -> Iterator[PrivateRedisCluster]:
        """Started, and stopped when the block ends (also when starting failed half-way)."""
        try:
            self.start()
            yield self
        finally:
            self.stop()

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
