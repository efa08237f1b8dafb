"""Every Redis key and channel name the Redis backend uses, in one place.

All names start with ``jararaca:{<namespace>}:``. The braces are a Redis Cluster hash tag: every
key of a namespace lives in one slot, so each multi-key Lua script is Cluster-safe, and apps
sharing one Redis never see each other's state.

Layout (``P`` = the prefix):

* ``P last`` HASH action id -> epoch ms of its last dispatched fire;
* ``P claims`` ZSET fire id -> epoch ms until which the claim is remembered; expired members are
  trimmed by every claim, and the key itself expires an hour after the last claim, so it never
  grows past one hour of fires;
* ``P inflight`` ZSET in-flight id -> lease end ms, ``P inflight:env`` HASH in-flight id -> entry
  (a fire's envelope; for a delayed message ``{"due": ms, "envelope": ...}``);
* ``P delayed`` ZSET task id -> due ms, ``P delayed:env`` HASH task id -> envelope;
* ``P run:<fire id>`` HASH ``owner``, ``lease`` (ms), ``attempt``, ``done`` (ms until which the
  run counts as finished), with a TTL past its lease of how long it is remembered (a day for a
  fire, ``JARARACA_DEDUPE_SECONDS`` for a handled message);
* ``P overlap:<overlap key>`` HASH of the running fire (``fire``, ``owner``, ``lease`` ms, ``at``),
  a stop request of ``cancel_other`` (``cancel``, ``cancel_at``, ``cancel_until``), one
  ``w:<fire>`` field per fire waiting its turn (``buffer_one``/``buffer_all``) and the earliest
  of them cached (``next``, ``next_at``, ``next_until``); with a TTL of a day past its lease
  (liveness is the ``lease`` field; the TTL only collects marks of vanished actions);
* ``P wakeup`` the pub/sub channel told when an enqueue makes the delayed queue's head sooner;
* ``P history:<action>`` ZSET fire id -> scheduled ms and ``P history:<action>:rec`` HASH fire id
  -> run record JSON (:class:`jararaca.backends.records.RunRecord`), trimmed to the newest
  ``JARARACA_RUN_HISTORY`` by scheduled instant;
* ``P paused`` HASH action id -> reason;
* ``P processes`` SET of process ids, ``P process:<id>`` the heartbeat JSON, expiring on its own;
* ``P schedules`` HASH schedule id -> dynamic schedule JSON, ``P schedules:version`` a counter
  bumped by every change.

Envelopes are stored as :meth:`jararaca.wire.Envelope.to_json`, readable with ``redis-cli``.

**Shards** (``?shards=N`` of the backend URL, default 1). The delayed queue and the in-flight
set are the hot keys; on a Redis Cluster one hash tag puts them all on one master. With N > 1
shard 0 keeps the names above and shard ``k`` (1 to N-1) has its own four, under the prefix
``jararaca:{<namespace>#<k>}:`` (another hash tag, so another slot): ``delayed``,
``delayed:env``, ``inflight``, ``inflight:env``. ``#``, not ``:``, separates the shard: a
namespace may contain ``:`` (``a`` shard ``1`` must never be namespace ``a:1``) but no ``#``.
A delayed message lives in the shard :func:`shard_of` its task id (idempotency key or message
id), so the idempotency policies stay one atomic script; fires and everything else stay in
shard 0. With one shard (and on plain Redis) the key names are exactly those above.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from jararaca.errors import ConfigError


def prefix(namespace: str) -> str:
    if not namespace or "{" in namespace or "}" in namespace:
        # A brace would end the hash tag early: two namespaces could then share key prefixes.
        raise ConfigError(
            f"bad Redis namespace {namespace!r}: it must be non-empty and contain no braces"
        )
    return f"jararaca:{{{namespace}}}:"


SHARD_SEPARATOR = "#"


def shard_prefix(namespace: str, shard: int) -> str:
    """The prefix of shard ``shard``'s queue keys (shard 0: the namespace's own prefix)."""
    if shard == 0:
        return prefix(namespace)
    if SHARD_SEPARATOR in namespace:
        raise ConfigError(
            f"bad Redis namespace {namespace!r} for a sharded backend: it must not contain "
            f"{SHARD_SEPARATOR!r}, which separates the shard number"
        )
    return f"jararaca:{{{namespace}{SHARD_SEPARATOR}{shard}}}:"


def shard_of(task_id: str, shards: int) -> int:
    """The shard of a delayed message's task id: CRC-32 (the same in every process and
    Python version, unlike ``hash()``) modulo the number of shards."""
    return zlib.crc32(task_id.encode()) % shards if shards > 1 else 0


def scan_pattern(namespace: str, shard: int = 0) -> str:
    """A SCAN MATCH pattern for exactly this namespace's keys (of one shard; shard 0 holds
    every key but the other shards' queues), glob characters escaped."""
    escaped = "".join("\\" + c if c in "*?[]\\" else c for c in shard_prefix(namespace, shard))
    return escaped + "*"


@dataclass(frozen=True, slots=True)
class QueueKeys:
    """The keys of one shard of the delayed queue and of the in-flight set."""

    delayed: str
    delayed_env: str
    inflight: str
    inflight_env: str

    @classmethod
    def for_shard(cls, namespace: str, shard: int) -> QueueKeys:
        p = shard_prefix(namespace, shard)
        return cls(p + "delayed", p + "delayed:env", p + "inflight", p + "inflight:env")


@dataclass(frozen=True, slots=True)
class Keys:
    """The names of one namespace's keys."""

    prefix: str
    last_fires: str
    fire_claims: str
    inflight: str
    inflight_env: str
    delayed: str
    delayed_env: str
    wakeup_channel: str
    paused: str
    processes: str
    schedules: str
    schedules_version: str
    shards: tuple[QueueKeys, ...]

    @classmethod
    def for_namespace(cls, namespace: str, shards: int = 1) -> Keys:
        p = prefix(namespace)
        return cls(
            prefix=p,
            last_fires=p + "last",
            fire_claims=p + "claims",
            inflight=p + "inflight",
            inflight_env=p + "inflight:env",
            delayed=p + "delayed",
            delayed_env=p + "delayed:env",
            wakeup_channel=p + "wakeup",
            paused=p + "paused",
            processes=p + "processes",
            schedules=p + "schedules",
            schedules_version=p + "schedules:version",
            shards=tuple(QueueKeys.for_shard(namespace, k) for k in range(shards)),
        )

    def run(self, fire_id: str) -> str:
        return f"{self.prefix}run:{fire_id}"

    def overlap(self, overlap_key: str) -> str:
        return f"{self.prefix}overlap:{overlap_key}"

    def history(self, action_id: str) -> tuple[str, str]:
        """The action's history index (ZSET) and records (HASH)."""
        return f"{self.prefix}history:{action_id}", f"{self.prefix}history:{action_id}:rec"

    def process(self, process_id: str) -> str:
        return f"{self.prefix}process:{process_id}"
