"""Quality telemetry in the store: the key layout, put-if-absent (a retry never doubles a
period), and the shared reader that loads and sums a bin's days (folder and SeaweedFS)."""

import json
from datetime import UTC, date, datetime, timedelta

import pytest

from recyclops.shared import layout
from recyclops.shared.errors import InvalidKeyError, MessageError
from recyclops.shared.messages import DeviceQuality, parse_message
from recyclops.shared.quality import load_quality, quality_key, store_quality, summarise
from recyclops.shared.store import ObjectStore


def report(
    start: datetime, run: str = "r1", device: str = "bin-01", **fields: object
) -> DeviceQuality:
    return DeviceQuality(
        device=device,
        run=run,
        period_start=start,
        period_end=start + timedelta(minutes=1),
        period_seconds=60,
        uptime_seconds=600,
        low_confidence_threshold=0.5,
        **fields,  # type: ignore[arg-type]
    )


def test_telemetry_keys() -> None:
    start = datetime(2026, 11, 28, 23, 59, tzinfo=UTC)
    key = layout.telemetry_key("bin-01", start, "ab12cd34")
    assert key == "telemetry/bin-01/2026-11-28/20261128T235900Z-ab12cd34.json"
    parsed = layout.parse_telemetry_key(key)
    assert parsed == layout.TelemetryKey("bin-01", "2026-11-28", start, "ab12cd34")
    assert layout.parse_telemetry_key("telemetry/bin-01/2026-11-28/x.json") is None
    assert layout.parse_telemetry_key("gathered/bin-01/2026-11-28/x.json") is None
    with pytest.raises(InvalidKeyError):
        layout.telemetry_key("../x", start, "r")
    with pytest.raises(InvalidKeyError):
        layout.telemetry_key("bin-01", start, "a/b")


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest) -> ObjectStore:
    return request.getfixturevalue("local_store" if request.param == "local" else "s3_store")


def test_a_retried_period_is_stored_once_and_days_are_read_and_summed(store: ObjectStore) -> None:
    late = datetime(2026, 11, 28, 23, 59, tzinfo=UTC)
    first = report(
        late - timedelta(minutes=1),
        frames=10,
        presses=2,
        presses_disagreed=1,
        presses_agreed=1,
        low_confidence=5,
        items={"glass": 3},
    )
    second = report(late, frames=30, low_confidence=1, items={"glass": 1, "metal": 2})
    next_day = report(late + timedelta(minutes=1), run="r2", frames=7, errors={"camera_down": 1})
    other_bin = report(late, device="bin-02", frames=99)
    for r in (first, second, next_day, other_bin):
        store_quality(store, r)
    assert store_quality(store, second) == quality_key(second)  # a retried upload: a no-op
    assert len(list(store.list(layout.TELEMETRY))) == 4
    store.put("telemetry/bin-01/2026-11-28/20261128T000000Z-bad.json", b"{not json")

    day = load_quality(store, "bin-01", date(2026, 11, 28))
    assert day == [first, second]  # in period order; the unreadable record is skipped
    total = summarise(day)
    assert (total.periods, total.frames, total.presses) == (2, 40, 2)
    assert total.items == {"glass": 4, "metal": 2} and total.low_confidence_rate == 6 / 40
    assert total.correction_rate == 0.5 and total.seconds == 120

    both = load_quality(store, "bin-01", date(2026, 11, 28), date(2026, 11, 29))
    assert both == [first, second, next_day]
    assert summarise(both).runs == ["r1", "r2"] and summarise(both).errors == {"camera_down": 1}
    assert load_quality(store, "bin-01", date(2026, 11, 30)) == []


def test_quality_messages_are_validated() -> None:
    good = report(datetime(2026, 11, 28, tzinfo=UTC))
    assert parse_message(DeviceQuality, good.model_dump_json()) == good
    data = good.model_dump(mode="json")
    for bad in (
        {**data, "top1_histogram": [0] * 9},  # fixed bins
        {**data, "frames": -1},
        {**data, "surprise": 1},
        {**data, "device": "a/b"},
    ):
        with pytest.raises(MessageError):
            parse_message(DeviceQuality, json.dumps(bad), "quality")
