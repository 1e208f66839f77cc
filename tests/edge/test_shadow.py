"""Shadow evaluation: the CPU budget on a fake clock, the counter's shadow figures, and a
running bin that shadows the canary's model on live frames (fetched and verified like an
update, never served) and reports the agreement in its quality telemetry."""

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from edge_helpers import Events, publish_model, start, status, wait_for

from recyclops.edge.daemon import EdgeDaemon
from recyclops.edge.quality import QualityCounter
from recyclops.edge.shadow import CpuBudget, Sampler
from recyclops.shared.config import RecyclopsConfig
from recyclops.shared.messages import DeviceQuality
from recyclops.shared.quality import load_quality
from recyclops.shared.store import open_store

pytestmark = pytest.mark.edge_numpy1

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
T1 = datetime(2026, 11, 28, 12, 1, tzinfo=UTC)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_sampler_keeps_the_candidate_within_its_share_of_wall_time() -> None:
    clock = FakeClock()
    budget = CpuBudget(0.2, burst=0.5, clock=clock)
    sampler = Sampler(2, budget)
    ran = skipped = offered = 0
    for _ in range(6000):  # 10 min at 10 fps; the candidate takes 60 ms a frame
        clock.now += 0.1
        decision = sampler.admit()
        if decision is None:
            continue
        offered += 1
        if decision == "run":
            ran += 1
            budget.spend(0.06)
        else:
            skipped += 1
    assert offered == 3000  # every 2nd frame sampled
    used = budget.used()
    assert used is not None and 0.19 <= used <= 0.2 + 0.5 / 600  # the share, and it is used
    assert ran == pytest.approx(0.2 * 600 / 0.06, abs=10) and ran + skipped == offered
    # within any stretch: at most share * T + burst + one run
    clock2 = FakeClock()
    budget2 = CpuBudget(0.2, burst=0.5, clock=clock2)
    clock2.now += 3600  # an idle hour buys no more than the burst
    runs = 0
    while budget2.allow():
        budget2.spend(0.06)
        runs += 1
    assert runs * 0.06 <= 0.5 + 0.06
    # a candidate slower than the budget: each run waits for its credit to be earned back
    clock3 = FakeClock()
    budget3 = CpuBudget(0.1, burst=0.5, clock=clock3)
    sampler3 = Sampler(1, budget3)
    runs3 = 0
    for _ in range(1000):
        clock3.now += 0.1
        if sampler3.admit() == "run":
            budget3.spend(1.0)  # one second a frame
            runs3 += 1
    assert runs3 <= (0.1 * 100 + 0.5) / 1.0 + 1


def test_the_counter_reports_shadow_agreement_and_old_records_still_parse() -> None:
    q = QualityCounter("bin-s", "run1", threshold=0.5)
    q.shadow_frame("c1", True, 0.95)
    q.shadow_frame("c1", False, 0.3)
    q.shadow_frame("c1", True, 1.0)
    q.shadow_frame("c1", False, float("nan"))
    q.shadow_skipped()
    r = q.flush(T0, T1, 60, items={}, errors={}, model_generation=0, uptime=60, spool_depth=0)
    assert (r.shadow_version, r.shadow_frames, r.shadow_agreed) == ("c1", 4, 2)
    assert r.shadow_skipped == 1 and r.shadow_low_confidence == 1
    assert r.shadow_top1_histogram == [0, 0, 0, 1, 0, 0, 0, 0, 0, 2]
    assert r.frames == 0  # the serving model's figures are untouched
    again = q.flush(T1, T1, 0, items={}, errors={}, model_generation=0, uptime=60, spool_depth=0)
    assert again.shadow_frames == 0 and again.shadow_version is None
    older = r.model_dump(mode="json")
    for key in [k for k in older if k.startswith("shadow_")]:
        del older[key]  # a record written before shadow evaluation
    parsed = DeviceQuality.model_validate(older)
    assert parsed.shadow_frames == 0 and parsed.shadow_version is None


def test_a_running_bin_shadows_the_canary_without_ever_serving_it(
    make_config: Callable[..., RecyclopsConfig],
) -> None:
    config = make_config(
        telemetry={"period_seconds": 1},
        shadow={"channel": "canary", "sample_every": 2, "max_cpu_share": 0.5},
    )
    store = open_store(config.store)
    publish_model(store, "v1", generation=1)  # stable: what the bin serves
    publish_model(store, "c1", channel="canary", generation=1)  # the candidate
    events = Events()
    daemon = EdgeDaemon(config, events=events)
    thread = start(daemon)
    model_dir = Path(config.edge.model_dir)

    def shadowed(version: str) -> list[DeviceQuality]:
        today = datetime.now(UTC).date()
        return [
            r
            for r in load_quality(store, "bin-01", today)
            if r.shadow_version == version and r.shadow_frames
        ]

    try:
        wait_for(lambda: shadowed("c1"), 30, "a stored period with frames shadowed by c1")
        # the canary moves: the bin follows it, still without serving it
        publish_model(store, "c2", channel="canary", generation=2)
        wait_for(lambda: shadowed("c2"), 30, "a stored period with frames shadowed by c2")
        live = status(config)
    finally:
        daemon.stop.set()
        thread.join(20)
    assert not thread.is_alive()
    # the same model bytes under another name: every shadowed frame agrees
    for version in ("c1", "c2"):
        reports = shadowed(version)
        frames = sum(r.shadow_frames for r in reports)
        assert frames > 0 and sum(r.shadow_agreed for r in reports) == frames
        assert sum(sum(r.shadow_top1_histogram) for r in reports) == frames
        assert all(r.model_version == "v1" for r in reports)
        for r in reports:  # at most every 2nd classified frame
            assert r.shadow_frames + r.shadow_skipped <= r.frames // 2 + 3  # + the queue
    # the serving model never changed: one switch, to v1; current and generation untouched
    assert [(e["version"], e["via"]) for e in events.of("model")] == [("v1", "poll")]
    assert all(e["model_version"] == "v1" for e in events.of("classification"))
    assert [e["version"] for e in events.of("shadow_model")] == ["c1", "c2"]
    assert (model_dir / "current").resolve().name == "v1"
    assert daemon.repo.generation() == 1
    assert not (model_dir / "versions" / "c1").exists()
    assert sorted(p.name for p in (model_dir / "shadow" / "versions").iterdir()) == ["c2"]
    assert live["shadow"]["version"] == "c2" and live["shadow"]["frames"] > 0
    assert live["shadow"]["cpu_share"] <= 0.5 + 0.1
    assert live["model_version"] == "v1"


def test_a_candidate_failing_its_checks_is_rejected_and_the_bin_serves_on(
    make_config: Callable[..., RecyclopsConfig],
) -> None:
    config = make_config(shadow={"channel": "canary", "sample_every": 1})
    store = open_store(config.store)
    publish_model(store, "v1", generation=1)
    bad = np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    publish_model(store, "c-bad", channel="canary", model_bytes=bad)  # hashes do not match
    events = Events()
    daemon = EdgeDaemon(config, events=events)
    thread = start(daemon)
    try:
        wait_for(lambda: events.of("shadow_rejected"), 30, "the candidate rejected")
        wait_for(lambda: len(events.of("classification")) > 5)
    finally:
        daemon.stop.set()
        thread.join(20)
    assert events.of("shadow_rejected")[0]["version"] == "c-bad"
    assert [e["version"] for e in events.of("model")] == ["v1"]
    assert not events.of("model_rejected")  # the serving side never saw it
    assert daemon.shadow is not None and daemon.shadow.frames == 0
