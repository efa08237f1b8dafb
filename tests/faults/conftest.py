from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.servers import PrivateRabbit, PrivateRedis
from tests.integration.cluster import Cluster
from tests.services import require_rabbitmq, require_redis, require_service

PRIVATE_REDIS_PORT = 6391
PRIVATE_RABBIT_PORT = 5673


def _require_binary(name: str) -> None:
    if shutil.which(name) is None:
        require_service(f"{name} (to run a private server)", 1)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    _require_binary("redis-server")
    server = PrivateRedis(PRIVATE_REDIS_PORT, tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def private_rabbit() -> Iterator[PrivateRabbit]:
    _require_binary("rabbitmq-server")
    # Not under pytest's tmp_path: rabbitmq-server runs as the rabbitmq user, which must be
    # able to reach its directory (pytest's base temp directory is private to this user).
    workdir = Path(tempfile.mkdtemp(prefix="jararaca-rabbit-"))
    workdir.chmod(0o755)
    server = PrivateRabbit(PRIVATE_RABBIT_PORT, workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def redis_cluster(private_redis: PrivateRedis) -> Iterator[Cluster]:
    """Processes whose backend is the private Redis (broker: the shared RabbitMQ)."""
    require_rabbitmq()
    cluster = Cluster("redis-restart", redis_url=private_redis.url)
    try:
        yield cluster
    finally:
        if not private_redis.process or private_redis.process.poll() is not None:
            private_redis.start()
        cluster.close()


@pytest.fixture
def rabbit_cluster(private_rabbit: PrivateRabbit) -> Iterator[Cluster]:
    """Processes whose broker is the private RabbitMQ (backend: the shared Redis)."""
    require_redis()
    cluster = Cluster("rabbit-restart", amqp_url=private_rabbit.url)
    try:
        yield cluster
    finally:
        cluster.close()
