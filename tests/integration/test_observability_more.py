"""More of DESIGN.md section 6 on real processes: /readyz while Redis is down and back, every
line of a beat under ``--log-format json``, and the W3C tracestate kept through the delayed
queue. Every wait polls state (a probe, a run record, a file the app writes) with a deadline."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

from jararaca import connect
from jararaca.backends.redis import RedisBackend
from jararaca.control import Control
from jararaca.wire import Envelope
from tests.faults.servers import PrivateRedis, wait_port
from tests.fixtures.observed_app import app as observed_app
from tests.fixtures.tracestate_app import Stated
from tests.integration.cluster import ROOT, Cluster, Process, live_cluster
from tests.integration.probes import free_port, get, probe
from tests.services import require_rabbitmq, require_service

LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
FORMAT_VARIABLES = ("JARARACA_LOG_FORMAT", "LOG_FORMAT")


def _require_binary(name: str) -> None:
    if shutil.which(name) is None:
        require_service(f"{name} (to run a private server)", 1)


def readyz(address: str) -> tuple[int, str]:
    """(status, body) of /readyz; (0, "") while nothing answers on the port."""
    if probe(address, "/healthz") == 0:
        return 0, ""
    return get(address + "/readyz")


# -- /readyz follows Redis --------------------------------------------------------------------


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A redis-server of this test's own on a free loopback port (the shared one is never
    touched); stopped by its pid at the end."""
    _require_binary("redis-server")
    server = PrivateRedis(free_port(), tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def kill_redis(server: PrivateRedis) -> None:
    """``kill -9`` the private server, by its pid: gone at once, as in a crash."""
    assert server.process is not None and server.process.poll() is None
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait(timeout=20)
    wait_port(server.port, up=False, timeout=10, what="private redis")


def test_readyz_is_503_while_redis_is_down_and_200_once_it_is_back(
    private_redis: PrivateRedis,
) -> None:
    require_rabbitmq()
    cluster = Cluster("readyz-redis", redis_url=private_redis.url)
    try:
        ports = {"beat": free_port(), "worker": free_port()}
        beat = cluster.start("beat", "--actions", "tick", "--metrics-port", str(ports["beat"]))
        worker = cluster.start(
            "worker", "--groups", "ticks", "--metrics-port", str(ports["worker"])
        )
        addresses = {kind: f"http://127.0.0.1:{port}" for kind, port in ports.items()}

        def all_answer(status: int) -> bool:
            return all(readyz(address)[0] == status for address in addresses.values())

        def answers() -> str:
            return str({kind: readyz(address) for kind, address in addresses.items()})

        cluster.wait_until(lambda: all_answer(200), 60, lambda: f"both ready: {answers()}")
        for address in addresses.values():
            assert readyz(address) == (200, "ready\n")

        kill_redis(private_redis)
        cluster.wait_until(lambda: all_answer(503), 30, lambda: f"503 without Redis: {answers()}")
        for kind, address in addresses.items():
            status, body = readyz(address)
            assert status == 503 and "backend" in body, (kind, body)
            assert "broker" not in body, f"{kind}: RabbitMQ is up, yet {body!r}"
            assert probe(address, "/healthz") == 200, f"{kind}: the loop still turns"

        private_redis.start()  # the same port, the same data directory
        cluster.wait_until(lambda: all_answer(200), 60, lambda: f"200 once back: {answers()}")
        assert beat.popen.poll() is None and worker.popen.poll() is None
    finally:
        if private_redis.process is None or private_redis.process.poll() is not None:
            private_redis.start()  # for close() to remove this test's state
        cluster.close()


# -- a beat's output under --log-format json --------------------------------------------------

OBSERVED_APP = "tests.fixtures.observed_app:app"


@pytest.fixture
def observed(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    with live_cluster("beat-json", OBSERVED_APP) as cluster:
        yield cluster


def control(cluster: Cluster, action: str, *, pause: bool = False) -> list[str]:
    """Pause ``action`` (with ``pause``), then the fire ids of its skipped_paused runs."""

    async def run() -> list[str]:
        async with Control(
            observed_app, backend_url=cluster.backend_url, broker_url=cluster.broker_url
        ) as c:
            if pause:
                await c.pause(action, reason="json test")
            runs = await c.runs(action=action, outcome="skipped_paused", limit=100)
            return [r.fire_id for r in runs]

    return asyncio.run(run())


def json_lines(text: str, where: str) -> list[dict[str, Any]]:
    """Every line of ``text`` as a JSON object with the standard keys (fails on the first line
    that is not)."""
    parsed = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            pytest.fail(f"{where} line {number} is not JSON: {line!r}", pytrace=False)
        assert isinstance(entry, dict), f"{where} line {number}: {line!r}"
        assert {"timestamp", "level", "logger", "message"} <= set(entry), line
        assert entry["level"] in LEVELS, line
        assert isinstance(entry["logger"], str) and isinstance(entry["message"], str), line
        assert datetime.fromisoformat(entry["timestamp"]).tzinfo is not None, line
        parsed.append(entry)
    return parsed


@pytest.mark.parametrize("chosen_by", ["option", "environment"])
def test_every_line_of_a_beat_is_json(observed: Cluster, tmp_path: Path, chosen_by: str) -> None:
    """The beat logs its start, a line per paused fire and its shutdown; stdout and stderr
    alike hold nothing but JSON objects, whether json comes from --log-format after the
    command or from JARARACA_LOG_FORMAT."""
    control(observed, "fails", pause=True)  # the beat logs each of its fires it skips
    stdout, stderr = tmp_path / "stdout", tmp_path / "stderr"
    args = ["--log-format", "json"] if chosen_by == "option" else []
    env = {**os.environ, "JARARACA_LEASE_SECONDS": "2"}
    for variable in FORMAT_VARIABLES:
        env.pop(variable, None)
    if chosen_by == "environment":
        env["JARARACA_LOG_FORMAT"] = "json"
    command = [
        *(sys.executable, "-m", "jararaca", "beat", OBSERVED_APP),
        *("--broker-url", observed.broker_url, "--backend-url", observed.backend_url),
        *("--metrics-port", "0", *args),
    ]
    with stdout.open("w") as out, stderr.open("w") as err:
        popen = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=err, text=True, env=env)
    beat = Process("beat-json", popen, tmp_path / "unused.ready")
    observed.processes.append(beat)  # killed by close() should the test fail midway

    skipped: list[str] = []

    def two_skipped() -> bool:
        skipped[:] = control(observed, "fails")
        return len(skipped) >= 2

    observed.wait_until(two_skipped, 60, lambda: f"two paused fires: {stderr.read_text()}")
    assert beat.terminate() == 0

    logged = json_lines(stderr.read_text(), "stderr") + json_lines(stdout.read_text(), "stdout")
    messages = [entry["message"] for entry in logged]
    assert any(m.startswith("beat started with ") for m in messages), messages
    assert any(m.startswith("SIGTERM received: draining") for m in messages), messages
    # One INFO line of the beat's for each fire the run history says it skipped.
    for fire_id in skipped:
        about = [e for e in logged if fire_id in e["message"]]
        assert [(e["logger"], e["level"]) for e in about] == [("jararaca.beat", "INFO")], about
        assert about[0]["message"] == f"fails is paused: fire {fire_id} skipped"


def test_a_beat_that_cannot_start_says_why_in_json(tmp_path: Path) -> None:
    """Even the last words of a beat that gives up on an unreachable Redis are a JSON line."""
    closed = free_port()  # nothing listens there
    done = subprocess.run(
        [
            *(sys.executable, "-m", "jararaca", "beat", OBSERVED_APP, "--log-format", "json"),
            *("--broker-url", "amqp://guest:guest@127.0.0.1:5672/?exchange=never-used"),
            *("--backend-url", f"redis://127.0.0.1:{closed}/0", "--connect-timeout", "0.5"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={k: v for k, v in os.environ.items() if k not in FORMAT_VARIABLES},
    )
    assert done.returncode == 1, done.stderr
    logged = json_lines(done.stderr, "stderr") + json_lines(done.stdout, "stdout")
    [error] = [entry for entry in logged if entry["level"] == "ERROR"]
    assert error["logger"] == "jararaca"
    assert error["message"].startswith(f"cannot use Redis at redis://127.0.0.1:{closed}/0 ")


# -- tracestate through the delayed queue -----------------------------------------------------

TRACESTATE_APP = "tests.fixtures.tracestate_app:app"
TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
TRACESTATE = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"


@pytest.fixture
def stated() -> Iterator[Cluster]:
    with live_cluster("tracestate", TRACESTATE_APP) as cluster:
        yield cluster


def read_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


async def delay_inside_a_request(cluster: Cluster) -> tuple[str, str]:
    """Delay a message inside an application's span whose context carries a tracestate (as an
    HTTP request that came in with ``traceparent`` and ``tracestate`` headers); gives the
    message id and that span's id. The span is the application's own SDK's, not the global
    provider, which this process's other tests may have set."""
    caller = SpanContext(
        trace_id=TRACE_ID,
        span_id=0x00F067AA0BA902B7,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=TraceState.from_header([TRACESTATE]),
    )
    tracer = TracerProvider().get_tracer("test")
    parent = trace.set_span_in_context(NonRecordingSpan(caller))
    async with connect(broker_url=cluster.broker_url, backend_url=cluster.backend_url):
        with tracer.start_as_current_span("http.request", context=parent) as request:
            assert request.get_span_context().trace_state.to_header() == TRACESTATE
            message_id = await Stated(text="later").delay(1)
    return message_id, f"{request.get_span_context().span_id:016x}"


async def queued(cluster: Cluster, message_id: str) -> Envelope:
    backend = RedisBackend(cluster.backend_url, namespace=cluster.exchange)
    await backend.connect()
    try:
        entries = await backend.list_delayed(limit=10)
    finally:
        await backend.close()
    [entry] = [e for e in entries if e.envelope.message_id == message_id]
    return entry.envelope


@pytest.mark.parametrize("sdk", [True, False], ids=["with-sdk", "api-only"])
def test_tracestate_travels_with_traceparent_through_the_delayed_queue(
    stated: Cluster, tmp_path: Path, sdk: bool
) -> None:
    seen = tmp_path / "seen.jsonl"
    traces = tmp_path / "traces"
    traces.mkdir()
    env = {"TRACESTATE_SEEN": str(seen)}
    if sdk:
        env["TRACES_DIR"] = str(traces)
    message_id, request_span = asyncio.run(delay_inside_a_request(stated))

    # Kept in the delayed queue (Redis) with the trace it was delayed in.
    headers = (asyncio.run(queued(stated, message_id))).headers
    version, trace_id, _span, _flags = headers["traceparent"].split("-")
    assert (version, trace_id) == ("00", f"{TRACE_ID:032x}")
    assert headers["tracestate"] == TRACESTATE

    stated.start("beat", env=env)
    stated.start("worker", env=env)

    def handled() -> list[dict[str, Any]]:
        return [line for line in read_lines(seen) if line["message_id"] == message_id]

    stated.wait_until(lambda: bool(handled()), 60, "the delayed message handled")
    assert handled() == [
        {"message_id": message_id, "trace_id": f"{TRACE_ID:032x}", "tracestate": TRACESTATE}
    ]
    if not sdk:
        assert list(traces.iterdir()) == []
        return

    # With an SDK: the beat's dispatch span and the worker's handle span, in the trace and
    # with the tracestate of the request the message was delayed in.
    # The handler wrote what it saw before its span ended: wait for both spans to be exported.
    def mine_spans() -> list[dict[str, Any]]:
        spans = [s for f in traces.glob("*.jsonl") for s in read_lines(f)]
        return [s for s in spans if s["message_id"] == message_id]

    stated.wait_until(lambda: len(mine_spans()) >= 2, 30, "the dispatch and handle spans")
    mine = mine_spans()
    by_name = {s["name"]: s for s in mine}
    assert sorted(by_name) == ["jararaca.dispatch", "jararaca.handle"], mine
    assert len(mine) == 2, mine
    dispatch, handle = by_name["jararaca.dispatch"], by_name["jararaca.handle"]
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        # This process has an SDK too (set by another test): a delay span came in between.
        assert dispatch["parent_id"] not in (None, request_span)
    else:  # the context was passed on as it was: the request's span is the parent
        assert dispatch["parent_id"] == request_span
    assert handle["parent_id"] == dispatch["span_id"]
    for span in (dispatch, handle):
        assert span["trace_id"] == f"{TRACE_ID:032x}", span
        assert span["tracestate"] == TRACESTATE, span
