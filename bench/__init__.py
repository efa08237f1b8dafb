"""Benchmarks of jararaca against the real Redis and RabbitMQ on 127.0.0.1.

Run them with ``./scripts/bench`` (see docs/benchmarks.md); ``bench.run`` is the entry point.
"""
