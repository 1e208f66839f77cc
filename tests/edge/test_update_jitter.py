"""Update jitter: after an MQTT notice a bin waits a random delay in [0, jitter_seconds]
before fetching, so a fleet does not hit the store at one instant; stopping the updater cuts
the wait short (and nothing is fetched); a polled pointer is not delayed."""

import random
import time
from pathlib import Path

import pytest
from edge_helpers import Harness, publish_model
from support.counting import CountingStore
from support.waiting import wait_until

from recyclops.shared import layout
from recyclops.shared.store import LocalStore

SEED = 0  # random.Random(0).uniform(0, 1) = 0.84: a delay well inside the bound
TOPIC = "recyclops/f/models/stable"


def _harness(tmp_path: Path, store: CountingStore, jitter: float) -> Harness:
    """An updater serving v1 that hears only MQTT (connected: no polling meanwhile)."""
    h = Harness(tmp_path, store)
    assert h.updater.handle(publish_model(store, "v1"), "test")
    h.connected = lambda: True
    h.updater.jitter_seconds = jitter
    h.updater.jitter = random.Random(SEED)
    return h


@pytest.mark.edge_numpy1
def test_the_fetch_waits_the_drawn_delay_within_the_bound(
    tmp_path: Path, local_store: LocalStore
) -> None:
    fetched: dict[str, float] = {}
    store = CountingStore(local_store, lambda key: fetched.setdefault(key, time.monotonic()))
    jitter = 1.5
    expected = random.Random(SEED).uniform(0.0, jitter)
    assert jitter / 2 < expected <= jitter  # the seed's draw: a delay worth measuring
    h = _harness(tmp_path, store, jitter)
    notice = publish_model(store, "v2", pointer=False)
    h.updater.start()
    try:
        wait_until(lambda: h.updater.last_check, 10, "the updater's first poll")
        sent = time.monotonic()
        h.updater.on_mqtt(TOPIC, notice.notice_payload())
        assert h.wait_version("v2") and h.via == "mqtt"
    finally:
        h.stop.set()
        h.updater.thread.join(10)
    assert h.updater.last_jitter == expected
    assert fetched[layout.manifest_key("v2")] - sent >= expected


@pytest.mark.edge_numpy1
def test_stop_cuts_the_wait_short_and_nothing_is_fetched(
    tmp_path: Path, local_store: LocalStore
) -> None:
    store = CountingStore(local_store)
    h = _harness(tmp_path, store, jitter=600.0)  # a draw of 0.84 × 600 s: about 8 minutes
    notice = publish_model(store, "v2", pointer=False)
    h.updater.start()
    wait_until(lambda: h.updater.last_check, 10, "the updater's first poll")
    gets = store.counts["GET"]
    h.updater.on_mqtt(TOPIC, notice.notice_payload())
    wait_until(lambda: h.updater.last_jitter, 10, "the updater waiting its jitter")
    stopped = time.monotonic()
    h.stop.set()
    h.updater.thread.join(10)
    assert not h.updater.thread.is_alive() and time.monotonic() - stopped < 5
    assert store.counts["GET"] == gets  # neither manifest nor model was fetched
    assert h.serving is not None and h.serving.version == "v1"
    assert h.repo.current_version() == "v1"


@pytest.mark.edge_numpy1
def test_a_polled_pointer_is_fetched_at_once(tmp_path: Path, local_store: LocalStore) -> None:
    h = _harness(tmp_path, CountingStore(local_store), jitter=600.0)
    started = time.monotonic()
    assert h.updater.handle(publish_model(local_store, "v2"), "poll")
    assert time.monotonic() - started < 60 and h.updater.last_jitter is None
    assert h.serving is not None and h.serving.version == "v2"
