from __future__ import annotations

from collections.abc import Iterator

import pytest

from jararaca.backends.memory import reset_memory_stores
from jararaca.brokers.memory import reset_memory_brokers


@pytest.fixture(autouse=True)
def _fresh_memory_stores() -> Iterator[None]:
    yield
    reset_memory_stores()
    reset_memory_brokers()
