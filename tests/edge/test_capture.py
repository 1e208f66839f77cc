"""Automatic capture of uncertain frames: the decision, its rate limits, its own spool share,
and a running bin on a replay camera that captures within its limits into a real store
(SeaweedFS) without ever taking the room an operator's key press needs."""

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from edge_helpers import (
    RED,
    Events,
    install_fixture,
    start,
    status,
    wait_for,
    write_frames,
)
from support import devservers

from recyclops.edge.capture import Capturer, ClassQuota, TokenBucket, uncertainty
from recyclops.edge.daemon import EdgeDaemon
from recyclops.edge.spool import Spool, SpoolFullError
from recyclops.shared.config import RecyclopsConfig
from recyclops.shared.config.edge import CaptureConfig
from recyclops.shared.records import GatheredRecord
from recyclops.shared.store import S3Store

pytestmark = pytest.mark.edge_numpy1

CATS = ["cardboard", "glass", "metal"]
# The fixture model answers by colour: these sit between two colours (top-1 0.55, margin
# 0.145: "small_margin"), each leaning to another class.
LEAN_CARDBOARD, LEAN_GLASS, LEAN_METAL = (205, 195, 20), (195, 205, 20), (20, 195, 205)
LEAN_CARDBOARD_2 = (205, 20, 195)
GREEN, BLUE = (20, 220, 20), (20, 20, 220)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_uncertainty_reasons() -> None:
    config = CaptureConfig()
    sure = np.array([0.9, 0.05, 0.05])
    assert uncertainty(sure, [0, 0, 0], config, 3)[0] == []
    reasons, top1, margin = uncertainty(np.array([0.45, 0.40, 0.15]), [0], config, 3)
    assert reasons == ["low_score", "small_margin"] and top1 == 0.45
    assert margin == pytest.approx(0.05)
    assert uncertainty(sure, [0, 1, 2], config, 3)[0] == ["window_disagrees"]
    assert uncertainty(sure, [0, 1], config, 3)[0] == []  # the window is not full yet
    assert uncertainty(np.array([np.nan, 0.5, 0.5]), [0, 1, 2], config, 3)[0] == []


def test_token_bucket_and_class_quota_on_a_clock() -> None:
    clock = Clock()
    bucket = TokenBucket(rate_per_hour=60, size=2, clock=clock)
    assert bucket.take() and bucket.take() and not bucket.take()
    clock.now += 59
    assert not bucket.take()
    clock.now += 2  # one minute: one token (60 an hour)
    assert bucket.take() and not bucket.take()
    clock.now += 3600
    assert bucket.level() == 2  # never more than the bucket holds
    quota = ClassQuota(2, clock)
    for _ in range(2):
        assert quota.allows("glass")
        quota.use("glass")
    assert not quota.allows("glass") and quota.allows("metal")
    clock.now += 3600
    assert quota.allows("glass")


def frame_of(colour: tuple[int, int, int]) -> np.ndarray:
    return np.full((48, 64, 3), colour, np.uint8)


def test_one_capture_per_item_limits_and_own_share(tmp_path: Path) -> None:
    clock = Clock()
    spool = Spool(tmp_path / "spool", 10**8, 2, auto_max_bytes=10**8, auto_max_items=2)
    config = CaptureConfig(per_hour=3600, burst=10, per_class_per_hour=10)
    cap = Capturer(config, spool, "bin-9", 3, 90, clock=clock)
    cap.start()
    unsure = np.array([0.45, 0.4, 0.15])
    try:
        for colour in [(10, 10, 10)] * 5 + [(200, 200, 200)] * 5 + [(90, 90, 90)] * 5:
            cap.observe(frame_of(colour), frame_of(colour), unsure, CATS, "v1")
            wait_for(lambda: cap._queue.empty())
            clock.now += 1
        wait_for(lambda: sum(cap.status()["skipped"].values()) + cap.captured >= 15)
    finally:
        cap.stop()
    st = cap.status()
    # three items, twelve more frames of the same items; the share holds two captures
    assert st["captured"] == 2 and st["skipped"]["same_item"] == 12
    assert st["skipped"]["share_full"] == 1
    assert len(spool.pending()) == 2 and all(n.startswith("auto-") for n in spool.pending())
    # the operator's share is untouched: two gathers fit, then (only then) it is full
    body = json.loads((spool.folder / f"{spool.pending()[0]}.json").read_text())
    record = GatheredRecord.model_validate(body["record"])
    assert record.capture is not None and record.capture.reasons == ["low_score", "small_margin"]
    assert record.label == record.prediction == "cardboard" and record.model_version == "v1"
    operator = record.model_copy(update={"capture": None})
    first = spool.add_gather(b"x" * 100, operator)
    spool.add_gather(b"y" * 100, operator)
    with pytest.raises(SpoolFullError):
        spool.add_gather(b"z" * 100, operator)
    assert spool.pending()[0] == first  # operator entries upload first


def test_busy_capture_thread_drops_the_frame_not_the_loop(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", 10**8, 10, 10**8, 10)
    cap = Capturer(CaptureConfig(burst=5, per_class_per_hour=50), spool, "b", 3, 90)
    cap.thread = object()  # "started", but nothing drains the queue
    unsure = np.array([0.45, 0.4, 0.15])
    for i, colour in enumerate([(0, 0, 0), (120, 120, 120), (250, 250, 250)]):
        reasons = cap.observe(frame_of(colour), frame_of(colour), unsure, CATS, "v1", i)
        assert bool(reasons) == (i == 0)
    assert cap.skipped["busy"] == 2 and cap.bucket.level() == pytest.approx(4, abs=0.01)


def test_running_bin_captures_uncertain_frames_within_limits_on_s3(
    tmp_path: Path,
    make_config: Callable[..., RecyclopsConfig],
    s3_server: devservers.S3Server,
    s3_url: str,
) -> None:
    """Uploads held back (the store unreachable through a proxy) so the spool fills: two
    captures (the bucket holds two, one per class), then the operator's two presses are still
    kept, the third refused as a full operator share; then everything lands once in S3."""
    frames = write_frames(
        tmp_path / "uncertain",
        [RED] * 4
        + [LEAN_CARDBOARD] * 4
        + [GREEN] * 4
        + [LEAN_GLASS] * 4
        + [BLUE] * 4
        + [LEAN_METAL] * 4
        + [LEAN_CARDBOARD_2] * 4,
    )
    config = make_config(
        camera={"source": str(frames), "fps": 30, "at_end": "loop"},
        spool={"max_items": 2},
        capture={"per_hour": 0, "burst": 2, "per_class_per_hour": 1, "max_items": 5},
    )
    install_fixture(Path(config.edge.model_dir))
    proxy = devservers.TcpProxy(int(s3_server.endpoint_url.rsplit(":", 1)[1]))
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
    events = Events()
    daemon = EdgeDaemon(config, store=store, events=events)
    thread = start(daemon)
    try:
        wait_for(lambda: status(config).get("capture", {}).get("captured") == 2, 30)
        # two full replay loops more: every later uncertain item is refused by a limit
        seen = status(config)["frames"]
        wait_for(lambda: status(config).get("frames", 0) > seen + 60, 30)
        snap = status(config)
        assert snap["capture"]["captured"] == 2 and snap["spool_auto_depth"] == 2
        assert snap["capture"]["skipped"].get("rate", 0) >= 1
        assert snap["capture"]["skipped"].get("class_quota", 0) >= 1
        assert snap["capture"]["skipped"].get("same_item", 0) >= 1
        assert snap["fps"] > 10  # the frame loop kept its pace
        for _ in range(3):
            daemon.on_key("3")  # metal
        assert len(events.of("gathered")) == 2
        assert [e["reason"] for e in events.of("gather_refused")] == ["spool_full"]
        proxy.start()
        wait_for(lambda: status(config).get("spool_depth") == 0, 30)
    finally:
        daemon.stop.set()
        thread.join(30)
        proxy.stop()
    assert not thread.is_alive()
    direct = S3Store(bucket, prefix, endpoint_url=s3_server.endpoint_url, region="us-east-1")
    records = [GatheredRecord.model_validate_json(direct.get(k)) for k in direct.list("gathered/")]
    auto = [r for r in records if r.auto]
    pressed = [r for r in records if not r.auto]
    assert len(auto) == 2 and len(pressed) == 2
    # the leaning-glass frames look like the leaning-cardboard ones just captured (mean
    # change under scene_change): the same item, not captured; metal's are a new item
    assert {r.label for r in auto} == {"cardboard", "metal"}
    for r in auto:
        assert r.capture is not None and "small_margin" in r.capture.reasons
        assert r.prediction == r.label and r.model_version == "fixture-1"
        assert r.capture.margin < 0.15 and set(r.capture.scores) >= set(CATS)
        assert direct.exists(f"images/{r.sha256}.jpg")
    assert all(r.label == "metal" and r.capture is None for r in pressed)
    captured_events = events.of("auto_captured")
    assert sorted(e["sha256"] for e in captured_events) == sorted(r.sha256 for r in auto)
