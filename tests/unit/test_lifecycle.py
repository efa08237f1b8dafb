"""The lifecycle's own-process mode: once started, start-up's objects leave the collector's
work (``gc.freeze``); a service served inside someone else's process leaves the collector
alone."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from contextlib import AsyncExitStack

import pytest

from jararaca.lifecycle import Service


class Probe(Service):
    """Records how many objects were frozen while it served."""

    def __init__(self) -> None:
        super().__init__(graceful_shutdown_seconds=1)
        self.frozen_while_serving = -1
        self.opened = False

    async def _open(self, stack: AsyncExitStack) -> None:
        self.opened = True

    async def _serve(self, stop: asyncio.Event) -> None:
        self.frozen_while_serving = gc.get_freeze_count()


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # what a test froze goes back to the collector


def test_a_service_in_its_own_process_freezes_what_start_up_left() -> None:
    probe = Probe()
    asyncio.run(probe.serve(own_process=True))
    assert probe.opened
    assert probe.frozen_while_serving > 0


def test_a_service_served_inside_an_application_leaves_the_collector_alone() -> None:
    probe = Probe()
    asyncio.run(probe.serve())
    assert probe.opened
    assert probe.frozen_while_serving == 0
