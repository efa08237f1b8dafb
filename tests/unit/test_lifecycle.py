"""The lifecycle's own-process mode: once started, start-up's objects leave the collector's
work (``gc.freeze``) and the collector waits for more new objects before it runs; a service
served inside someone else's process leaves the collector alone."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from contextlib import AsyncExitStack

import pytest

from jararaca.lifecycle import YOUNG_COLLECTION_THRESHOLD, Service


class Probe(Service):
    """Records how many objects were frozen while it served."""

    def __init__(self) -> None:
        super().__init__(graceful_shutdown_seconds=1)
        self.frozen_while_serving = -1
        self.threshold_while_serving = (-1, -1, -1)
        self.opened = False

    async def _open(self, stack: AsyncExitStack) -> None:
        self.opened = True

    async def _serve(self, stop: asyncio.Event) -> None:
        self.frozen_while_serving = gc.get_freeze_count()
        self.threshold_while_serving = gc.get_threshold()


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()  # what a test froze goes back to the collector
    gc.set_threshold(*threshold)


def test_a_service_in_its_own_process_freezes_what_start_up_left() -> None:
    probe = Probe()
    asyncio.run(probe.serve(own_process=True))
    assert probe.opened
    assert probe.frozen_while_serving > 0
    assert probe.threshold_while_serving[0] == YOUNG_COLLECTION_THRESHOLD


def test_a_service_served_inside_an_application_leaves_the_collector_alone() -> None:
    threshold = gc.get_threshold()
    probe = Probe()
    asyncio.run(probe.serve())
    assert probe.opened
    assert probe.frozen_while_serving == 0
    assert probe.threshold_while_serving == threshold
