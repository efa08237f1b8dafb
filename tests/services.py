"""Reachability of the real Redis and RabbitMQ on 127.0.0.1 for the tests that need them.

Outside CI a missing service skips those tests with the reason; in CI (``CI=true``) it fails
them, so a missing service can never hide behind a skip.
"""

from __future__ import annotations

import os
import socket

import pytest

REDIS_URL = os.environ.get("JARARACA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("JARARACA_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, port: int) -> None:
    if _port_open(port):
        return
    message = f"{name} is not answering on 127.0.0.1:{port}; run ./scripts/test, which starts it"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


def require_redis() -> None:
    require_service("Redis", 6379)


def require_rabbitmq() -> None:
    require_service("RabbitMQ", 5672)
