"""A private Redis Cluster of three masters (by default without replicas) on loopback ports of its
own, each node in its own folder, stopped by pid; and how many of a namespace's keys each master
holds. Given ``replica_ports``, each master gets one replica (``replica_ports[i]`` replicates
``ports[i]``), and :meth:`PrivateRedisCluster.kill` and :meth:`PrivateRedisCluster.role` let
a failover test crash a master and see its replica promoted
(tests/faults/test_redis_cluster_failover.py).

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
from functools import partial
from pathlib import Path

import redis

from tests.faults.servers import wait_for_redis, wait_port

BINARIES = ("redis-server", "redis-cli")


def missing_binaries() -> list[str]:
    return [binary for binary in BINARIES if shutil.which(binary) is None]


class PrivateRedisCluster:
    def __init__(
        self,
        workdir: Path,
        ports: tuple[int, int, int],
        shards: int,
        *,
        replica_ports: tuple[int, ...] = (),
        node_timeout_ms: int | None = None,
    ) -> None:
        """``ports`` are the masters' (the URL names them); ``replica_ports``, if given, one
        replica per master, in the same order; ``node_timeout_ms`` the nodes'
        ``cluster-node-timeout`` (Redis's default, 15 s, if None): how long a master may be
        silent before the others count it failed and its replica takes over."""
        if replica_ports and len(replica_ports) != len(ports):
            raise ValueError("give one replica port per master, or none")
        self.workdir = workdir
        self.ports = ports
        self.replica_ports = replica_ports
        self.node_timeout_ms = node_timeout_ms
        self.processes: list[subprocess.Popen[bytes]] = []
        self.process_of: dict[int, subprocess.Popen[bytes]] = {}
        nodes = ",".join(f"127.0.0.1:{port}" for port in ports)
        self.url = f"redis+cluster://{nodes}?shards={shards}"

    def start(self) -> None:
        for port in (*self.ports, *self.replica_ports):
            folder = self.workdir / str(port)
            folder.mkdir()
            command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1"]
            command += ["--cluster-enabled", "yes", "--save", "", "--appendonly", "no"]
            command += ["--dir", str(folder), "--cluster-config-file", "nodes.conf"]
            if self.node_timeout_ms is not None:
                command += ["--cluster-node-timeout", str(self.node_timeout_ms)]
            process = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            self.processes.append(process)
            self.process_of[port] = process
            wait_port(port, up=True, timeout=20, what=f"cluster node {port}")
        create = ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports)]
        create += ["--cluster-replicas", "0", "--cluster-yes"]
        subprocess.run(create, check=True, capture_output=True, timeout=60)
        for port in self.ports:
            # --cluster create returns once the slots are assigned; each node says "ok" once
            # it has heard of the others.
            self._wait_ok(port)
        if self.replica_ports:
            self._attach_replicas()

    def _attach_replicas(self) -> None:
        """Each replica joins the cluster and replicates its master (CLUSTER MEET, then
        CLUSTER REPLICATE); done once every node knows every replica's role, each replica
        has synced, and every node says the cluster is ok. A replica the other masters do
        not know as one would get no votes when its master fails."""
        master_ids = {port: self._cli(port, "cluster", "myid").strip() for port in self.ports}
        everyone = (*self.ports, *self.replica_ports)
        for master, replica in zip(self.ports, self.replica_ports, strict=True):
            self._cli(replica, "cluster", "meet", "127.0.0.1", str(master))
            self.wait_until(
                partial(self._knows_node, replica, master_ids[master]),
                20,
                f"cluster node {replica} to hear of its master {master}",
            )
            answer = self._cli(replica, "cluster", "replicate", master_ids[master]).strip()
            assert answer == "OK", f"CLUSTER REPLICATE on {replica}: {answer}"
        for master, replica in zip(self.ports, self.replica_ports, strict=True):
            for port in everyone:
                self.wait_until(
                    partial(self._knows_replica, port, replica, master_ids[master]),
                    20,
                    f"cluster node {port} to know {replica} as the replica of {master}",
                )
            self.wait_until(
                partial(self._synced, replica), 20, f"replica {replica} to sync with {master}"
            )
        for port in everyone:
            self._wait_ok(port)

    def _knows_node(self, port: int, node_id: str) -> bool:
        return node_id in self._cli(port, "cluster", "nodes")

    def _synced(self, replica: int) -> bool:
        return "master_link_status:up" in self._cli(replica, "info", "replication")

    def _knows_replica(self, port: int, replica: int, master_id: str) -> bool:
        return any(
            f"127.0.0.1:{replica}@" in entry and f"slave {master_id}" in entry
            for entry in self._cli(port, "cluster", "nodes").splitlines()
        )

    @staticmethod
    def _cli(port: int, *args: str) -> str:
        return subprocess.run(
            ["redis-cli", "-p", str(port), *args],
            check=False,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout

    def kill(self, port: int) -> None:
        """``kill -9`` of one node: a crash, no chance to hand anything over."""
        process = self.process_of[port]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def role(self, port: int) -> str:
        """``master`` or ``slave`` as the node on ``port`` says of itself (INFO replication)."""
        with redis.Redis(port=port, socket_timeout=2) as node:
            return str(node.info("replication")["role"])

    def master_of(self, key: str, *, ask: int) -> int:
        """The port of the master that serves ``key``'s slot, as the node on ``ask`` sees the
        cluster now (CLUSTER KEYSLOT, CLUSTER SLOTS)."""
        with redis.Redis(port=ask, socket_timeout=2) as node:
            slot = int(node.execute_command("CLUSTER KEYSLOT", key))
            for start, end, master, *_ in node.execute_command("CLUSTER SLOTS"):
                if int(start) <= slot <= int(end):
                    return int(master[1])
        raise AssertionError(f"no node of the cluster serves slot {slot} of {key!r}")

    wait_until = staticmethod(wait_for_redis)

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
        """Every key each master holds, by port (the masters as started: before any failover).
        A key lives on exactly one master (the owner of its hash slot); replicas are not
        counted."""
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
