"""ceiling: plain aio-pika publish (persistent, confirms) -> consume (manual ack), separate
processes, on a queue of its own: the broker's limit on this machine."""

from __future__ import annotations

import asyncio
import json
import math
import uuid

from bench import raw_amqp
from bench.config import AMQP_URL, Profile
from bench.procs import Procs
from bench.procstat import CpuWindow, find_pid
from bench.results import Section
from bench.stats import Figures
from bench.targets import CEILING_SCENARIO, CEILING_SECTION


def ceiling(count: int) -> Figures:
    name = f"bench-ceiling-{uuid.uuid4().hex[:8]}"
    asyncio.run(raw_amqp.declare(AMQP_URL, name, name))
    broker = find_pid("beam.smp")
    try:
        with Procs() as procs:
            consumer = procs.spawn(
                "consume", ["-m", "bench.raw_amqp", "consume", AMQP_URL, name, str(count)]
            )
            consumer.wait_for(lambda s: s == "READY", 60, "READY")
            publisher = procs.spawn(
                "publish", ["-m", "bench.raw_amqp", "publish", AMQP_URL, name, str(count)]
            )
            window = CpuWindow(broker) if broker else None
            if window:
                window.start()
            sent = json.loads(publisher.wait_for(lambda s: s.startswith("{"), 300, "result"))
            got = json.loads(consumer.wait_for(lambda s: s.startswith("{"), 300, "result"))
            broker_cpu = window.stop() if window else math.nan
            bad_exits = sum(p.wait_exit(60) != 0 for p in (publisher, consumer))
    finally:
        asyncio.run(raw_amqp.delete(AMQP_URL, name, name))
    span = got["last"] - sent["start"]
    return {
        "end_to_end_rate": got["count"] / span,
        "publish_rate": count / (sent["end"] - sent["start"]),
        "consume_rate": got["count"] / (got["last"] - got["first"]),
        # CPU over the whole span, % of one core (client CPU includes its start-up).
        "publisher_cpu_pct": 100 * sent["cpu"] / span,
        "consumer_cpu_pct": 100 * got["cpu"] / span,
        "rabbitmq_cpu_pct": broker_cpu,  # NaN (unmeasurable) when beam.smp is not visible
        "lost": count - got["count"],
        "bad_exits": bad_exits,
    }


def run(profile: Profile) -> list[Section]:
    label = f"{profile.ceiling_messages:,} messages, aio-pika"
    section = Section(CEILING_SCENARIO, CEILING_SECTION, label)
    for _ in range(profile.repeats):
        section.measure(ceiling, profile.ceiling_messages)
    return [section]
