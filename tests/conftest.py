from __future__ import annotations

from collections.abc import Iterator

import pytest

from jararaca.backends.memory import reset_memory_stores
from jararaca.brokers.memory import reset_memory_brokers
from tests.integration.cluster import Cluster
from tests.services import require_rabbitmq, require_redis


@pytest.fixture(autouse=True)
def _fresh_memory_stores() -> Iterator[None]:
    yield
    reset_memory_stores()
    reset_memory_brokers()


@pytest.fixture
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """Real beat/worker processes of tests/fixtures/dist_app.py on a fresh exchange."""
    require_redis()
    require_rabbitmq()
    label = request.node.name.split("[")[0].removeprefix("test_")[:20].replace("_", "-")
    started = Cluster(label)
    try:
        yield started
    finally:
        started.close()
