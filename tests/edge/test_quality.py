"""Quality telemetry: the counter's figures on a known sequence, the period clock, a running
bin's reports over MQTT (they add up to what its event log says), and every period reaching
the store exactly once through a store outage (the spool keeps them)."""

import itertools
import math
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from edge_helpers import Events, install_fixture, start, status, wait_for
from support import devservers

from recyclops.edge.daemon import EdgeDaemon
from recyclops.edge.quality import QualityCounter, histogram_bin
from recyclops.edge.qualityreport import next_boundary
from recyclops.shared import layout, messages
from recyclops.shared.config import MqttConfig, RecyclopsConfig
from recyclops.shared.messages import DeviceQuality, parse_message
from recyclops.shared.mqtt import MqttClient
from recyclops.shared.quality import load_quality, summarise
from recyclops.shared.store import S3Store, open_store

pytestmark = pytest.mark.edge_numpy1

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
T1 = datetime(2026, 11, 28, 12, 1, tzinfo=UTC)
T2 = datetime(2026, 11, 28, 12, 2, tzinfo=UTC)


def test_counter_figures_on_a_known_sequence() -> None:
    q = QualityCounter("bin-q", "run1", threshold=0.5)
    q.observe("model", {"version": "v1", "via": "installed"})
    frames = [
        ("glass", 0.95),
        ("glass", 0.55),
        ("metal", 0.45),
        ("cardboard", 0.05),
        ("glass", 1.0),
        ("metal", 0.5),  # exactly the threshold: not low
        ("glass", math.nan),  # a broken answer: counted apart, in no bin
        ("glass", None),  # NaN as the event log writes it (null)
    ]
    for label, score in frames:
        q.observe("classification", {"raw_label": label, "raw_score": score, "label": "x"})
    q.observe("gathered", {"label": "glass", "prediction": "glass"})  # agreed
    q.observe("gathered", {"label": "metal", "prediction": "glass"})  # a correction
    q.observe("gathered", {"label": "paper", "prediction": "unsure"})  # no answer to correct
    q.observe("gathered", {"label": "paper", "prediction": None})  # no model
    q.observe("undo", {"sha256": "a", "label": "paper"})
    q.observe("auto_captured", {"reasons": ["low_score", "small_margin"]})
    q.observe("auto_captured", {"reasons": ["small_margin"]})
    q.observe("gather_refused", {"reason": "spool_full"})
    q.observe("model_rejected", {"version": "v9", "reason": "golden"})
    q.observe("camera_down", {"reason": "unplugged"})
    q.observe("classification_failed", {"frame": 3, "error": "boom"})
    q.observe("notice_ignored", {"version": "v0"})  # not a fault
    q.observe("model", {"version": "v2", "via": "poll"})

    r = q.flush(
        T0,
        T1,
        60.0,
        items={"glass": 2},
        errors={"upload_failed": 3, "capture_failed": 0},
        model_generation=7,
        uptime=90.0,
        spool_depth=4,
    )
    assert (r.device, r.run, r.period_start, r.period_end) == ("bin-q", "run1", T0, T1)
    assert r.frames == 8 and r.nonfinite == 2
    assert r.frames_by_class == {"glass": 5, "metal": 2, "cardboard": 1}
    # bins of 0.1: 0.05 → 0, 0.45 → 4, 0.5 and 0.55 → 5, 0.95 and 1.0 → 9
    assert r.top1_histogram == [1, 0, 0, 0, 1, 2, 0, 0, 0, 2]
    assert r.low_confidence == 2 and r.low_confidence_rate == pytest.approx(2 / 8)
    assert r.low_confidence_threshold == 0.5
    assert (r.presses, r.presses_agreed, r.presses_disagreed, r.presses_unpredicted) == (
        4,
        1,
        1,
        2,
    )
    assert r.correction_rate == pytest.approx(0.5) and r.undos == 1
    assert r.captures == 2 and r.capture_reasons == {"low_score": 1, "small_margin": 2}
    assert r.errors == {
        "refused_spool_full": 1,
        "model_rejected": 1,
        "camera_down": 1,
        "classification_failed": 1,
        "upload_failed": 3,
    }
    assert r.items == {"glass": 2}
    assert r.model_version == "v2" and r.model_versions == ["v1", "v2"]
    assert r.model_generation == 7 and r.uptime_seconds == 90.0 and r.spool_depth == 4
    # the record is a valid MQTT message, and the store's JSON is the same object
    assert parse_message(DeviceQuality, r.model_dump_json(), "quality") == r

    # the next period starts from zero; running totals count only what is new
    r2 = q.flush(
        T1,
        T2,
        60.0,
        items={"glass": 3, "metal": 1},
        errors={"upload_failed": 3, "capture_failed": 1},
        model_generation=7,
        uptime=150.0,
        spool_depth=0,
    )
    assert r2.frames == 0 and r2.presses == 0 and r2.top1_histogram == [0] * 10
    assert r2.low_confidence_rate is None and r2.correction_rate is None
    assert r2.items == {"glass": 1, "metal": 1} and r2.errors == {"capture_failed": 1}
    assert r2.model_version == "v2" and r2.model_versions == ["v2"]  # still serving

    day = summarise([r, r2])  # a reader sums a day
    assert day.periods == 2 and day.frames == 8 and day.items == {"glass": 3, "metal": 1}
    assert day.correction_rate == pytest.approx(0.5) and day.low_confidence_rate == 0.25
    assert day.errors["upload_failed"] == 3 and day.errors["capture_failed"] == 1
    assert day.first_start == T0 and day.last_end == T2 and day.spool_depth == 0


def test_histogram_bins_and_period_boundaries() -> None:
    assert [histogram_bin(s) for s in (0.0, 0.0999, 0.1, 0.5, 0.9999, 1.0)] == [0, 0, 1, 5, 9, 9]
    noon = T0.timestamp()
    assert next_boundary(noon, 60) == noon + 60  # on a boundary: the next one
    assert next_boundary(noon + 0.2, 60) == noon + 60
    assert next_boundary(noon + 59.9, 60) == noon + 60
    midnight = datetime(2026, 11, 29, tzinfo=UTC).timestamp()
    # 7 s does not divide a day: the last period of the day ends at midnight, the next
    # day's periods start from midnight again
    assert next_boundary(midnight - 1, 7) == midnight
    assert next_boundary(midnight, 7) == midnight + 7
    assert next_boundary(midnight - 0.5, 3600) == midnight


class Listener:
    """Every quality message on the bin's topic, parsed strictly."""

    def __init__(self, config: MqttConfig, device: str) -> None:
        self.reports: list[DeviceQuality] = []
        self.lock = threading.Lock()
        self.client = MqttClient(config)
        topic = messages.quality_topic(config.fleet, device)
        self.client.subscribe(topic, self._on)
        assert self.client.start(wait=10)

    def _on(self, topic: str, payload: bytes) -> None:
        report = parse_message(DeviceQuality, payload, topic)
        with self.lock:
            self.reports.append(report)

    def got(self) -> list[DeviceQuality]:
        with self.lock:
            return list(self.reports)


def test_running_bin_reports_quality_on_mqtt_that_adds_up_to_its_events(
    make_config: Callable[..., RecyclopsConfig], mqtt_config: MqttConfig
) -> None:
    data = make_config(telemetry={"period_seconds": 1}).model_dump()
    data["mqtt"] = mqtt_config.model_dump()
    config = RecyclopsConfig.model_validate(data)
    install_fixture(Path(config.edge.model_dir))
    listener = Listener(mqtt_config, config.edge.device_id)
    events = Events()
    daemon = EdgeDaemon(config, events=events)
    thread = start(daemon)
    try:
        wait_for(lambda: len(events.of("classification")) > 10)
        for key in ("1", "2", "3"):  # cardboard, glass, metal: red, green, blue frames
            daemon.on_key(key)
        wait_for(lambda: len(events.of("gathered")) == 3)
        # a period with frames ends and reaches a dashboard
        wait_for(lambda: any(r.frames and r.presses for r in listener.got()), 10)
    finally:
        daemon.stop.set()
        thread.join(20)
    assert not thread.is_alive()
    final = status(config)
    # the last (partial) period is published at the stop: wait for the one that ends last
    wait_for(lambda: sum(r.frames for r in listener.got()) == final["frames_classified"], 10)
    reports = sorted(listener.got(), key=lambda r: r.period_start)
    assert len({r.period_start for r in reports}) == len(reports)
    for a, b in itertools.pairwise(reports):  # periods follow each other
        assert a.period_end == b.period_start
    assert all(r.device == "bin-01" and r.model_version == "fixture-1" for r in reports)
    assert all(r.period_seconds <= 1.5 for r in reports)
    day = summarise(reports)
    frames = events.of("classification")
    assert day.frames == len(frames) == final["frames_classified"]
    assert day.frames_by_class == Counter(e["raw_label"] for e in frames)
    assert day.low_confidence == sum(e["raw_score"] < 0.5 for e in frames)
    assert sum(day.top1_histogram) + day.nonfinite == day.frames
    gathered = events.of("gathered")
    agreed = sum(e["prediction"] == e["label"] for e in gathered)
    unpredicted = sum(e["prediction"] in (None, "unsure") for e in gathered)
    assert day.presses == 3 and day.presses_agreed == agreed
    assert day.presses_unpredicted == unpredicted
    assert day.presses_disagreed == 3 - agreed - unpredicted
    assert day.items == final["items"]
    assert day.captures == len(events.of("auto_captured"))
    # the same records reached the store (a folder here) through the spool, once each
    store = open_store(config.store)
    stored = load_quality(store, "bin-01", reports[0].period_start.date(), datetime.now(UTC).date())
    assert stored == reports
    assert {r.channel for r in reports} == {config.edge.channel}  # the bin's config channel
    assert final["telemetry"]["spooled"] == len(reports) and final["spool_telemetry_depth"] == 0


def test_telemetry_reaches_the_store_exactly_once_through_a_store_outage(
    make_config: Callable[..., RecyclopsConfig],
    s3_server: devservers.S3Server,
    s3_url: str,
) -> None:
    config = make_config(telemetry={"period_seconds": 1})
    install_fixture(Path(config.edge.model_dir))
    port = int(s3_server.endpoint_url.rsplit(":", 1)[1])
    proxy = devservers.TcpProxy(port).start()
    bucket, _, prefix = s3_url.removeprefix("s3://").partition("/")
    store = S3Store(
        bucket,
        prefix,
        endpoint_url=proxy.url,
        region="us-east-1",
        max_attempts=1,
        connect_timeout=1,
        read_timeout=5,
    )
    direct = S3Store(bucket, prefix, endpoint_url=s3_server.endpoint_url, region="us-east-1")

    def stored() -> list[str]:
        return list(direct.list(layout.TELEMETRY))

    daemon = EdgeDaemon(config, store=store)
    thread = start(daemon)
    try:
        wait_for(lambda: stored(), 20)  # the path works: a first period arrived
        proxy.stop()  # the store goes away
        spooled = daemon.quality.spooled if daemon.quality else 0
        # at least three periods end while it is away; they wait in the spool. (The depth
        # alone can count the first period again: its put may land on the server while the
        # proxy's stop cuts the reply, so it stays spooled and is sent again, same key.)
        quality = daemon.quality
        assert quality is not None
        wait_for(
            lambda: (
                quality.spooled >= spooled + 3
                and status(config).get("spool_telemetry_depth", 0) >= 3
            ),
            20,
        )
        assert status(config)["upload_error"]  # the outage is seen
        proxy.start()  # the store is back
        wait_for(lambda: status(config).get("spool_telemetry_depth") == 0, 30)
    finally:
        daemon.stop.set()
        thread.join(30)
        proxy.stop()
    assert not thread.is_alive()
    final = status(config)
    assert final["spool_telemetry_depth"] == 0 and final["spool_depth"] == 0
    keys = stored()
    assert len(keys) == final["telemetry"]["spooled"] == daemon.quality.spooled
    assert final["telemetry"]["dropped"] == 0
    parsed = [layout.parse_telemetry_key(k) for k in keys]
    assert all(p is not None and p.device == "bin-01" for p in parsed)
    first = min(p.start for p in parsed if p is not None)
    reports = load_quality(direct, "bin-01", first.date(), datetime.now(UTC).date())
    assert len(reports) == len(keys)
    # every period once: distinct, each starting where the previous one ended, no gap
    assert len({r.period_start for r in reports}) == len(reports)
    for a, b in itertools.pairwise(reports):
        assert a.period_end == b.period_start
    assert reports[-1].period_end <= datetime.now(UTC)
    assert summarise(reports).frames == final["frames_classified"]
    errors: Any = summarise(reports).errors
    assert errors["upload_failed"] >= 1  # the outage is in the telemetry too


def test_telemetry_has_its_own_share_of_the_spool_and_a_full_share_is_counted(
    tmp_path: Path, local_store: Any
) -> None:
    from recyclops.edge.gathering import encode_jpeg
    from recyclops.edge.qualityreport import Gauges, QualityReporter
    from recyclops.edge.spool import Spool
    from recyclops.edge.telemetry import Telemetry
    from recyclops.edge.uploader import Uploader
    from recyclops.shared.config.edge import TelemetryConfig
    from recyclops.shared.hashing import sha256_bytes
    from recyclops.shared.records import GatheredRecord

    spool = Spool(tmp_path / "spool", 10**8, 1, 10**8, 1, telemetry_max_items=2)
    reporter = QualityReporter(
        QualityCounter("bin-01", "r1", 0.5),
        TelemetryConfig(period_seconds=60),
        spool,
        Telemetry(RecyclopsConfig()),  # no broker: MQTT is a no-op
        lambda: Gauges(spool_depth=spool.usage("gathers")[0]),
        started=T0.timestamp(),
    )
    for minute in range(3):  # the share holds two: the third period is dropped, counted
        start = T0.timestamp() + 60 * minute
        assert reporter.flush(start, start + 60, 60.0) is not None
    assert (reporter.spooled, reporter.dropped, reporter.dropped_total) == (2, 1, 1)
    # telemetry never takes the operator's room: one gather still fits its bound of one
    jpeg = encode_jpeg(np.zeros((8, 8, 3), np.uint8), 90)
    record = GatheredRecord(
        sha256=sha256_bytes(jpeg), label="glass", device="bin-01", captured_at=T0
    )
    spool.add_gather(jpeg, record)
    assert spool.usage("operator")[0] == 1 and spool.usage("telemetry")[0] == 2
    assert spool.pending()[0].startswith("0")  # the operator's entry uploads first
    uploader = Uploader(spool, local_store)
    assert uploader.drain_once() == 3
    assert (uploader.uploaded, uploader.telemetry_uploaded) == (1, 2)
    # the next record says one period before it was lost
    reporter.flush(T0.timestamp() + 180, T0.timestamp() + 240, 60.0)
    assert reporter.last is not None and reporter.last.records_dropped == 1
    assert reporter.dropped == 0 and spool.usage("telemetry")[0] == 1
    assert uploader.drain_once() == 1
    stored = load_quality(local_store, "bin-01", T0.date())
    assert [r.period_start for r in stored] == [
        datetime.fromtimestamp(T0.timestamp() + 60 * m, UTC) for m in (0, 1, 3)
    ]


def test_a_classifier_that_raises_is_counted_as_an_error(
    make_config: Callable[..., RecyclopsConfig],
) -> None:
    config = make_config(telemetry={"period_seconds": 1})
    install_fixture(Path(config.edge.model_dir))
    events = Events()
    daemon = EdgeDaemon(config, events=events)
    thread = start(daemon)
    try:
        wait_for(lambda: events.of("classification"))

        def broken(_frame: Any) -> Any:
            raise RuntimeError("interpreter fell over")

        assert daemon.loop.classifier is not None
        daemon.loop.classifier.classify = broken  # type: ignore[method-assign]
        failed = wait_for(lambda: events.of("classification_failed"))
        assert failed[0]["error"] == "interpreter fell over"
        last = wait_for(
            lambda: (
                ((status(config).get("telemetry") or {}).get("last") or {})
                .get("errors", {})
                .get("classification_failed")
            )
        )
        assert last >= 1
    finally:
        daemon.stop.set()
        thread.join(20)
    assert not thread.is_alive()


def test_the_reporter_names_the_bins_channel_and_older_records_still_parse(
    tmp_path: Path,
) -> None:
    from recyclops.edge.qualityreport import Gauges, QualityReporter
    from recyclops.edge.spool import Spool
    from recyclops.edge.telemetry import Telemetry
    from recyclops.shared.config.edge import TelemetryConfig

    spool = Spool(tmp_path / "spool", 10**8, 1, 10**8, 1)
    reporter = QualityReporter(
        QualityCounter("bin-01", "r1", 0.5),
        TelemetryConfig(period_seconds=60),
        spool,
        Telemetry(RecyclopsConfig()),
        lambda: Gauges(),
        started=T0.timestamp(),
        channel="canary",
    )
    report = reporter.flush(T0.timestamp(), T0.timestamp() + 60, 60.0)
    assert report is not None and report.channel == "canary"
    assert DeviceQuality.model_validate_json(report.model_dump_json()).channel == "canary"
    older = report.model_dump(mode="json")
    del older["channel"]  # a record written before the field existed
    assert DeviceQuality.model_validate(older).channel is None
