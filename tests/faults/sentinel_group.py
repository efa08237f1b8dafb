"""A private Redis Sentinel group for failover tests: a master, one replica and three Sentinels
on their own loopback ports, each in its own folder under the test's temporary directory.

Only the processes started here are ever stopped, by pid. The Sentinels run the redis-server
binary in Sentinel mode (``--sentinel``), which is what ``redis-sentinel`` is."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import redis

from tests.faults.servers import wait_for_redis, wait_port

SERVICE = "jararaca-test"
MASTER_PORT = 6395
REPLICA_PORT = 6396
SENTINEL_PORTS = (26395, 26396, 26397)
# How long the Sentinels wait before they call the master down: short, so a test's failover
# takes seconds (production settings are typically 5-30 s).
DOWN_AFTER_MS = 1000


class SentinelGroup:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        hosts = ",".join(f"127.0.0.1:{port}" for port in SENTINEL_PORTS)
        self.url = f"redis+sentinel://{hosts}/{SERVICE}/0"

    def start(self) -> None:
        self._redis(MASTER_PORT)
        self._redis(REPLICA_PORT, "--replicaof", "127.0.0.1", str(MASTER_PORT))
        for port in SENTINEL_PORTS:
            folder = self._folder(port)
            config = folder / "sentinel.conf"
            config.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {folder}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {MASTER_PORT} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {SERVICE} 5000\n"
                f"sentinel parallel-syncs {SERVICE} 1\n"
            )
            self._spawn(port, ["redis-server", str(config), "--sentinel"])
        self.wait_until(self._replica_in_sync, 20, "the replica to sync with the master")
        self.wait_until(self._sentinels_see_the_replica, 20, "the Sentinels to find the replica")

    def _folder(self, port: int) -> Path:
        folder = self.workdir / str(port)
        folder.mkdir(exist_ok=True)
        return folder

    def _redis(self, port: int, *extra: str) -> None:
        command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        command += ["--appendonly", "yes", "--dir", str(self._folder(port)), *extra]
        self._spawn(port, command)

    def _spawn(self, port: int, command: list[str]) -> None:
        self.processes[port] = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_port(port, up=True, timeout=20, what=f"redis on {port}")

    def kill(self, port: int) -> None:
        """``kill -9`` of one server: a crash, no chance to hand anything over."""
        process = self.processes[port]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def master_port(self) -> int | None:
        """The master's port as a Sentinel reports it (None if it cannot say)."""
        for port in SENTINEL_PORTS:
            try:
                with redis.Redis(port=port, socket_timeout=1) as sentinel:
                    address = sentinel.sentinel_get_master_addr_by_name(SERVICE)
            except redis.RedisError:
                continue
            if address:
                return int(address[1])
        return None

    def _replica_in_sync(self) -> bool:
        with redis.Redis(port=REPLICA_PORT, socket_timeout=1) as replica:
            info = replica.info("replication")
        return bool(info.get("master_link_status") == "up")

    def _sentinels_see_the_replica(self) -> bool:
        for port in SENTINEL_PORTS:
            with redis.Redis(port=port, socket_timeout=1) as sentinel:
                if not sentinel.sentinel_slaves(SERVICE):
                    return False
                if int(sentinel.sentinel_master(SERVICE).get("num-other-sentinels", 0)) < 2:
                    return False
        return True

    wait_until = staticmethod(wait_for_redis)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
