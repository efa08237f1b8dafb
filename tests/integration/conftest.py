from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.cluster import Cluster
from tests.services import require_rabbitmq, require_redis


@pytest.fixture
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    require_redis()
    require_rabbitmq()
    label = request.node.name.split("[")[0].removeprefix("test_")[:20].replace("_", "-")
    cluster = Cluster(label)
    try:
        yield cluster
    finally:
        cluster.close()
