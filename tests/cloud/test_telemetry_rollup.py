"""Telemetry roll-ups on a real S3 store: ``recyclops compact`` rolls each bin's closed UTC
days into one object, and the fleet page, ``promote`` and ``watch`` give the same figures
with and without them, also when a period arrives late after its day was rolled."""

import random
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta

import pytest

from recyclops.app.cli import main
from recyclops.cloud.promote import Telemetry, gather
from recyclops.console.fleet import FleetRules, fleet_view, window_days
from recyclops.console.fleetread import TelemetryReader
from recyclops.shared import layout
from recyclops.shared.messages import HISTOGRAM_BINS, DeviceQuality
from recyclops.shared.quality import quality_key, store_quality
from recyclops.shared.store import ObjectStore, S3Store
from recyclops.shared.telemetry_compact import compact_telemetry
from recyclops.shared.telemetry_index import TelemetryLoader, load_telemetry, rollup_bodies

NOW = datetime(2026, 11, 28, 12, 0, 30, tzinfo=UTC)
RULES = FleetRules()
CLASSES = ["glass", "metal", "paper", "plastic"]
PERIOD = timedelta(hours=1)
PER_DAY = 24
#: bin-c served v1, then v2 from three days ago (its switch period served both)
SWITCH = NOW - timedelta(days=3)


def period(device: str, start: datetime, rng: random.Random, **update: object) -> DeviceQuality:
    served = ["v1"] if device != "bin-c" or start + PERIOD <= SWITCH else ["v2"]
    if device == "bin-c" and start < SWITCH < start + PERIOD:
        served = ["v1", "v2"]
    hist = [rng.randrange(0, 8) for _ in range(HISTOGRAM_BINS)]
    agreed, disagreed = rng.randrange(0, 5), rng.randrange(0, 2)
    fields: dict[str, object] = dict(
        device=device,
        run="r1",
        period_start=start,
        period_end=start + PERIOD,
        period_seconds=PERIOD.total_seconds(),
        uptime_seconds=3600.0,
        model_version=served[-1],
        model_generation=len(served),
        channel="canary" if device == "bin-c" else "stable",
        model_versions=served,
        frames=sum(hist),
        frames_by_class={c: rng.randrange(0, 9) for c in CLASSES},
        items={c: rng.randrange(0, 4) for c in CLASSES},
        top1_histogram=hist,
        low_confidence=sum(hist[:5]),
        low_confidence_threshold=0.5,
        presses=agreed + disagreed,
        presses_agreed=agreed,
        presses_disagreed=disagreed,
    )
    if device == "bin-a" and start > NOW - timedelta(days=1):
        fields.update(shadow_version="v2", shadow_frames=5, shadow_agreed=rng.randrange(0, 6))
    fields.update(update)
    return DeviceQuality.model_validate(fields)


def seed(
    store: ObjectStore,
    devices: Collection[str] = ("bin-a", "bin-b", "bin-c"),
    skip: Collection[str] = (),
) -> list[DeviceQuality]:
    """Bins with a period an hour for ten days up to NOW; ``skip``: keys left out."""
    rng = random.Random(7)
    start = datetime(2026, 11, 18, tzinfo=UTC)
    reports = []
    while start + PERIOD <= NOW:
        reports += [period(d, start, rng) for d in devices]
        start += PERIOD
    with ThreadPoolExecutor(16) as pool:
        list(
            pool.map(
                lambda r: store_quality(store, r),
                [r for r in reports if quality_key(r) not in skip],
            )
        )
    return reports


def fleet_page(store: ObjectStore, *, use_index: bool = True) -> dict[str, object]:
    return fleet_view(TelemetryReader(store, use_index=use_index).load(NOW, RULES), NOW, RULES)


def week(store: ObjectStore) -> Telemetry:
    return gather(store, NOW - timedelta(days=7), NOW)


@pytest.fixture
def store(s3_store: S3Store) -> S3Store:
    return s3_store


def test_readers_give_the_same_figures_before_and_after_the_roll_up(store: S3Store) -> None:
    late = period("bin-b", datetime(2026, 11, 25, 9, 0, tzinfo=UTC), random.Random(1))
    reports = seed(store, skip={quality_key(late)})  # its 09:00 comes late, amid its day
    page, evidence = fleet_page(store, use_index=False), week(store)
    bins: list[dict[str, object]] = page["bins"]  # type: ignore[assignment]
    assert [b["device"] for b in bins] == ["bin-a", "bin-b", "bin-c"] and bins[0]["shadow"]
    assert evidence.mixed_periods == 1  # bin-c's switch
    assert evidence.by_version["v2"].bins == {"bin-c"} and evidence.shadow

    summary = compact_telemetry(store, now=NOW)
    # the 18th to the 27th are closed, today is not: 10 days x 3 bins, every period read once
    assert len(summary.written) == 30 and not summary.failures
    assert summary.raw_reads == len([r for r in reports if r.period_start.date() < NOW.date()]) - 1
    assert all(layout.parse_rollup_key(k) for k in summary.written)

    reader = TelemetryReader(store)
    assert fleet_view(reader.load(NOW, RULES), NOW, RULES) == page
    today = [r for r in reports if r.period_start.date() == NOW.date()]
    assert reader.fetched == len(today)  # only today's periods read raw
    assert window_days(NOW, RULES)[0] == date(2026, 11, 20)
    assert reader.loader.rollups_read == 3 * 8  # the 20th to the 27th of each bin
    assert week(store) == evidence

    # a period of the (rolled) 25th arrives late: every reader counts it once, at once
    store_quality(store, late)
    page_late, evidence_late = fleet_page(store, use_index=False), week(store)
    assert page_late != page and evidence_late.by_version["v1"].periods == (
        evidence.by_version["v1"].periods + 1
    )
    assert fleet_view(reader.load(NOW, RULES), NOW, RULES) == page_late  # the cached reader too
    assert reader.fetched == len(today) + 1
    assert fleet_page(store) == page_late and week(store) == evidence_late

    # the next compaction re-rolls that day (and only it); the figures stay the same
    again = compact_telemetry(store, now=NOW)
    assert [layout.parse_rollup_key(k).day for k in again.written] == ["2026-11-25"]  # type: ignore[union-attr]
    assert again.deleted == 1 and again.raw_reads == 1
    assert layout.parse_rollup_key(again.written[0]).periods == PER_DAY  # type: ignore[union-attr]
    fresh = TelemetryReader(store)
    assert fleet_view(fresh.load(NOW, RULES), NOW, RULES) == page_late
    assert fresh.fetched == len(today) and week(store) == evidence_late


def test_compaction_is_idempotent_and_leaves_open_days_raw(store: S3Store) -> None:
    seed(store, ["bin-a"])
    just_after_midnight = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)  # the 27th is not closed yet
    first = compact_telemetry(store, now=just_after_midnight, devices=["bin-a"])
    days = sorted(layout.parse_rollup_key(k).day for k in first.written)  # type: ignore[union-attr]
    assert days[0] == "2026-11-18" and days[-1] == "2026-11-26" and len(days) == 9
    second = compact_telemetry(store, now=just_after_midnight, devices=["bin-a"])
    assert not second.written and second.raw_reads == 0 and second.unchanged == 7  # recheck
    # the roll-up holds each period object byte for byte
    held = rollup_bodies(store.get(first.written[0]))
    assert len(held) == PER_DAY and all(store.get(k) == v for k, v in list(held.items())[:3])


def test_a_late_period_older_than_the_recheck_is_read_raw_and_never_lost(store: S3Store) -> None:
    seed(store, ["bin-a"])
    compact_telemetry(store, now=NOW)
    late = period("bin-a", datetime(2026, 11, 18, 0, 10, tzinfo=UTC), random.Random(2))
    store_quality(store, late)
    assert not compact_telemetry(store, now=NOW).written  # the 18th is past the recheck window
    first, last = date(2026, 11, 18), NOW.date()
    with_index = load_telemetry(store, first, last)
    assert with_index == load_telemetry(store, first, last, use_index=False)
    assert late in with_index["bin-a"]


def test_a_superseded_or_broken_roll_up_falls_back_to_raw(store: S3Store) -> None:
    seed(store, ["bin-b"])
    summary = compact_telemetry(store, now=NOW, devices=["bin-b"])
    raw = load_telemetry(store, date(2026, 11, 20), NOW.date(), devices=["bin-b"], use_index=False)
    gone, broken = sorted(summary.written)[2:4]
    store.delete(gone)  # as if a compactor superseded it between the listing and the read
    store.put(broken, b"not gzip")
    loader = TelemetryLoader(store)
    assert loader.load(date(2026, 11, 20), NOW.date(), ["bin-b"]) == raw
    assert loader.fetched == PER_DAY * 2 + 12  # those two days and today read raw


def test_objects_that_do_not_parse_are_skipped_both_ways(store: S3Store) -> None:
    seed(store, ["bin-a"])
    bad = "telemetry/bin-a/2026-11-20/20261120T000500Z-r9.json"
    store.put(bad, b'{"not": "a record"}')
    store.put("telemetry/bin-a/2026-11-20/notes.txt", b"kept by someone")
    compact_telemetry(store, now=NOW)
    span = (date(2026, 11, 20), date(2026, 11, 20))
    assert load_telemetry(store, *span) == load_telemetry(store, *span, use_index=False)
    assert len(load_telemetry(store, *span)["bin-a"]) == PER_DAY


def test_the_compact_command_rolls_telemetry(
    store: S3Store, s3_server, monkeypatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("RECYCLOPS_STORE__ENDPOINT_URL", s3_server.endpoint_url)
    monkeypatch.delenv("RECYCLOPS_CONFIG", raising=False)
    store_quality(store, period("bin-a", datetime(2026, 11, 1, tzinfo=UTC), random.Random(3)))
    assert main(["compact", "--store", store.url]) == 0
    assert "1 bins' telemetry: 1 day roll-ups written" in capsys.readouterr().out
    assert [k for k in store.list(layout.INDEX_TELEMETRY)]
