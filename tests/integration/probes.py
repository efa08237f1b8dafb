"""Reading a process's ``--metrics-port`` endpoint from a test: scrape, probe, find it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get(url: str, token: str | None = None) -> tuple[int, str]:
    """(status, body) of a GET; an HTTP error status is an answer, not an exception."""
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def probe(address: str, path: str) -> int:
    """The status of /healthz or /readyz; 0 while nothing answers on the port."""
    try:
        return get(address + path)[0]
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0


def scrape(address: str, token: str | None = None) -> Samples:
    status, body = get(address + "/metrics", token)
    assert status == 200, body
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """A sample's value; 0 for a labelled series that has not appeared yet."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def status_json(app: str, backend_url: str, broker_url: str) -> list[dict[str, Any]]:
    """What ``jararaca status APP --json`` prints, parsed."""
    done = subprocess.run(
        [
            *(sys.executable, "-m", "jararaca", "status", app, "--json"),
            *("--backend-url", backend_url, "--broker-url", broker_url),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    found: list[dict[str, Any]] = json.loads(done.stdout)
    return found
