"""The daemon's seams on their own: the worker base (named thread, stop, logged crash,
bounded join) and the model slot (each offer taken once, the newest one wins)."""

import logging
import threading
from types import SimpleNamespace

import pytest

from recyclops.edge.modelslot import ModelSlot
from recyclops.edge.worker import Worker

pytestmark = pytest.mark.edge_numpy1


class Ticker(Worker):
    def __init__(self) -> None:
        super().__init__("ticker")
        self.ticks = 0
        self.ticked = threading.Event()

    def loop(self) -> None:
        while not self.stop_event.wait(0.01):
            self.ticks += 1
            self.ticked.set()


class Crasher(Worker):
    def loop(self) -> None:
        raise RuntimeError("boom")


def test_worker_runs_named_until_stopped() -> None:
    worker = Ticker()
    assert worker.join(0.1)  # never started: nothing to wait for
    worker.start()
    assert worker.ticked.wait(5)
    assert worker.thread.name == "ticker" and worker.thread.daemon
    worker.stop()
    assert worker.join(5) and worker.stopping and not worker.thread.is_alive()


def test_worker_crash_is_logged_not_silent(caplog: pytest.LogCaptureFixture) -> None:
    worker = Crasher("crasher")
    with caplog.at_level(logging.ERROR, logger="recyclops.edge.worker"):
        worker.start()
        assert worker.join(5)
    assert any(
        r.getMessage() == "crasher stopped" and r.exc_info and "boom" in str(r.exc_info[1])
        for r in caplog.records
    )


def test_model_slot_hands_each_offer_over_once() -> None:
    slot = ModelSlot()
    v1, v2 = SimpleNamespace(version="v1"), SimpleNamespace(version="v2")
    assert slot.take() is None and slot.version() is None
    slot.offer(v1, "installed")  # type: ignore[arg-type]
    assert slot.version() == "v1"  # offered: already what the updater compares against
    slot.offer(v2, "poll")  # type: ignore[arg-type]
    assert slot.take() == (v2, "poll")  # the newest offer replaces one not yet taken
    assert slot.take() is None and slot.version() == "v2"
    slot.offer(None, "rollback")  # nothing left to roll back to: no model serves
    assert slot.version() is None
    assert slot.take() == (None, "rollback") and slot.version() is None
