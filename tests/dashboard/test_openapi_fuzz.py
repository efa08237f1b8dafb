"""Schemathesis against ``/openapi.json``, on the memory backend: generated calls to every API
route never get a 5xx, and every answer matches the schema (status codes, content types,
bodies). Bounded to a few examples per route to stay within seconds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.dashboard.conftest import Store

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


STORE = Store()
APP = STORE.app()
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module", autouse=True)
def _open_control() -> Iterator[None]:
    """Runs the app's lifespan, so its Control is open while the calls are made; with a
    pending delayed message and a dead letter to list."""
    STORE.delay("pending", key="fuzz-key")
    STORE.dead_letter()
    with TestClient(APP):
        yield


@schema.parametrize()
@settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_answers_match_the_schema(case: schemathesis.Case[Any]) -> None:
    case.call_and_validate(checks=CHECKS, headers={"X-CSRF-Token": current_csrf_token()})


def current_csrf_token() -> str:
    return str(APP.state.guard.csrf_token)
