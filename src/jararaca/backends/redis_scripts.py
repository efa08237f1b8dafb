"""The Lua scripts of the Redis backend: loaded once per server, called by SHA.

Every state change of the Redis backend is one of these scripts (``backends/lua/``), so it is
atomic across any number of beats and workers; only a heartbeat's two writes go out as a plain
pipeline, half of one being harmless (``RedisControl.heartbeat``). A server that lost its
script cache (restart, failover, ``SCRIPT FLUSH``) answers NOSCRIPT, and the script is loaded
again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from importlib import resources
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError


def as_text(value: bytes | str) -> str:
    """A reply of the client (bytes: it does not decode responses) as text."""
    return value.decode() if isinstance(value, bytes) else value


def _lua(name: str) -> bytes:
    return resources.files("jararaca.backends").joinpath("lua", f"{name}.lua").read_bytes()


class Script:
    """One Lua file, identified on the server by the SHA1 of its source.

    ``prelude`` names shared files (``lua/_<name>.lua``) put in front of it: Lua scripts have
    no imports, and the run history is written by several scripts the same way."""

    __slots__ = ("name", "sha", "source")

    def __init__(self, name: str, *, prelude: tuple[str, ...] = ()) -> None:
        self.name = name
        self.source = b"\n".join([*(_lua(f"_{p}") for p in prelude), _lua(name)])
        self.sha = hashlib.sha1(self.source, usedforsecurity=False).hexdigest()


_HISTORY = ("history",)
CLAIM_FIRES = Script("claim_fires", prelude=_HISTORY)
ACK_INFLIGHT = Script("ack_inflight")
RECLAIM_INFLIGHT = Script("reclaim_inflight")
ENQUEUE_DELAYED = Script("enqueue_delayed")
ENQUEUE_DELAYED_MANY = Script("enqueue_delayed_many")
ENQUEUE_FIRES = Script("enqueue_fires")
CLAIM_DUE = Script("claim_due")
BEGIN_RUN = Script("begin_run", prelude=_HISTORY)
RENEW_RUN = Script("renew_run", prelude=_HISTORY)
FINISH_RUN = Script("finish_run", prelude=_HISTORY)
RECORD_RUNS = Script("record_runs", prelude=_HISTORY)
CANCEL_DELAYED = Script("cancel_delayed")
PUT_SCHEDULE = Script("put_schedule")
DELETE_SCHEDULE = Script("delete_schedule")
ALL: tuple[Script, ...] = (
    CLAIM_FIRES,
    ACK_INFLIGHT,
    RECLAIM_INFLIGHT,
    ENQUEUE_DELAYED,
    ENQUEUE_DELAYED_MANY,
    CLAIM_DUE,
    BEGIN_RUN,
    RENEW_RUN,
    FINISH_RUN,
    ENQUEUE_FIRES,
    RECORD_RUNS,
    CANCEL_DELAYED,
    PUT_SCHEDULE,
    DELETE_SCHEDULE,
)


async def load_all(client: aioredis.Redis, *, pipelined: bool = True) -> None:
    """Load every script (at connect, so the first calls find them): in one round trip, or
    one call each on a Redis Cluster, which sends SCRIPT LOAD to every master itself (a
    cluster pipeline only takes commands with keys)."""
    if not pipelined:
        for script in ALL:
            await client.script_load(script.source)
        return
    pipe = client.pipeline(transaction=False)
    for script in ALL:
        pipe.script_load(script.source)
    await pipe.execute()


async def run(
    client: aioredis.Redis, script: Script, keys: Sequence[str], args: Sequence[Any]
) -> Any:
    try:
        return await client.evalsha(script.sha, len(keys), *keys, *args)
    except NoScriptError:
        await client.script_load(script.source)
        return await client.evalsha(script.sha, len(keys), *keys, *args)


# Milliseconds a write waits for its replicas before it goes on without them.
WAIT_TIMEOUT_MS = 1000


async def run_replicated(
    client: aioredis.Redis,
    script: Script,
    keys: Sequence[str],
    args: Sequence[Any],
    *,
    replicas: int,
) -> tuple[Any, int]:
    """Run ``script``, then Redis ``WAIT replicas`` in the same pipeline: WAIT counts the
    replicas that have this connection's writes, so it must follow the script on the very
    connection that ran it. Returns the script's answer and how many replicas have it."""
    for attempt in (1, 2):
        pipe = client.pipeline(transaction=False)
        pipe.evalsha(script.sha, len(keys), *keys, *args)
        pipe.execute_command("WAIT", replicas, WAIT_TIMEOUT_MS)
        answer, acknowledged = await pipe.execute(raise_on_error=False)
        if isinstance(answer, NoScriptError) and attempt == 1:
            await client.script_load(script.source)
            continue
        if isinstance(answer, Exception):
            raise answer
        return answer, int(acknowledged)
    raise AssertionError("unreachable")  # pragma: no cover
