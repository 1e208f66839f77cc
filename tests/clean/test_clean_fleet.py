"""The fleet page: its figures and drift rule as pure functions of DeviceQuality records
(``console.fleet``), the bounded reads (day prefixes of the window only), the API behind the
same access rules as the rest, and the page in Chromium over a real SeaweedFS store seeded
with two bins' telemetry (one drifting, one offline)."""

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from clean_helpers import request, seed_simple

from recyclops.console import ReviewSession
from recyclops.console.fleet import (
    FleetRules,
    bin_view,
    drift_check,
    fleet_view,
    total_variation,
)
from recyclops.console.fleetread import TelemetryReader
from recyclops.console.server import CleanServer, serve
from recyclops.shared.config.categories import default_categories
from recyclops.shared.messages import DeviceQuality
from recyclops.shared.quality import store_quality
from recyclops.shared.store import LocalStore, ObjectStore

NOW = datetime(2026, 11, 28, 12, 0, 30, tzinfo=UTC)
RULES = FleetRules()
TOKEN = "t0ken-for-the-tests-0123456789"
STEADY = {"glass": 3, "metal": 2, "paper": 1}
SHIFTED = {"metal": 1, "paper": 5}
SURE = [0, 0, 0, 0, 0, 10, 20, 30, 60, 80]  # 200 frames, mostly confident
UNSURE = [0, 10, 30, 60, 50, 30, 10, 5, 3, 2]  # 200 frames, mostly not


def record(
    device: str,
    end: datetime,
    items: dict[str, int] | None = None,
    histogram: list[int] | None = None,
    *,
    agreed: int = 3,
    disagreed: int = 1,
    low: int = 10,
    channel: str | None = "stable",
    generation: int = 4,
) -> DeviceQuality:
    histogram = histogram or SURE
    return DeviceQuality(
        device=device,
        run="r1",
        period_start=end - timedelta(seconds=60),
        period_end=end,
        period_seconds=60.0,
        uptime_seconds=3600.0,
        model_version="v2",
        model_generation=generation,
        model_versions=["v2"],
        channel=channel,
        frames=sum(histogram),
        top1_histogram=histogram,
        low_confidence=low,
        low_confidence_threshold=0.5,
        items=STEADY if items is None else items,
        presses=agreed + disagreed,
        presses_agreed=agreed,
        presses_disagreed=disagreed,
    )


def history(
    device: str,
    now: datetime,
    *,
    recent_items: dict[str, int] | None = None,
    recent_histogram: list[int] | None = None,
    recent_every: int = 2,
    last_ago: timedelta = timedelta(seconds=30),
    disagreed_recent: int = 1,
) -> list[DeviceQuality]:
    """A steady record every 2 hours from 8 days to 24 h before (the baseline), then the
    last 24 h as given (one record every ``recent_every`` hours); all ``last_ago`` earlier."""
    out = []
    for hours in range(8 * 24, 23, -2):
        end = now - last_ago - timedelta(hours=hours)
        out.append(record(device, end))
    for hours in range(24 - recent_every, -1, -recent_every):
        end = now - last_ago - timedelta(hours=hours)
        out.append(record(device, end, recent_items, recent_histogram, disagreed=disagreed_recent))
    return sorted(out, key=lambda r: r.period_start)


def test_total_variation() -> None:
    assert total_variation({"a": 5, "b": 5}, {"a": 1, "b": 1}) == 0.0
    assert total_variation({"a": 1}, {"b": 7}) == 1.0
    assert total_variation({"a": 3, "b": 1}, {"a": 1, "b": 1}) == pytest.approx(0.25)
    assert total_variation({}, {"a": 1}) == 0.0


def test_a_bin_whose_class_mix_shifts_fires_and_a_stable_one_does_not() -> None:
    drifting = bin_view("bin-a", history("bin-a", NOW, recent_items=SHIFTED), NOW, RULES)
    stable = bin_view("bin-b", history("bin-b", NOW), NOW, RULES)
    mix, confidence = drifting["drift"]
    assert drifting["alarm"] is True and mix["fired"] is True and mix["state"] == "drift"
    # baseline: glass 1/2, metal 1/3, paper 1/6; recent: metal 1/6, paper 5/6
    assert mix["distance"] == pytest.approx(2 / 3, abs=1e-4)
    assert (mix["recent_count"], mix["baseline_count"]) == (72, 84 * 6)
    assert mix["largest"]["name"] == "paper"
    assert mix["text"].startswith("class mix moved: total variation 0.67 ≥ 0.25 (72 items")
    assert "paper 17% → 83%" in mix["text"]
    assert confidence["state"] == "stable" and confidence["distance"] == 0.0
    assert stable["alarm"] is False
    assert [d["state"] for d in stable["drift"]] == ["stable", "stable"]
    assert stable["drift"][0]["text"].startswith("class mix stable: total variation 0.00 < 0.25")


def test_a_confidence_shift_fires_on_the_histogram() -> None:
    view = bin_view("bin-c", history("bin-c", NOW, recent_histogram=UNSURE), NOW, RULES)
    mix, confidence = view["drift"]
    assert mix["state"] == "stable" and confidence["fired"] is True and view["alarm"]
    assert confidence["distance"] == pytest.approx(total_variation(_h(UNSURE), _h(SURE)))
    assert confidence["recent_count"] == 12 * 200


def _h(histogram: list[int]) -> dict[str, int]:
    return {str(i): n for i, n in enumerate(histogram)}


def test_below_the_minimum_count_it_never_fires() -> None:
    # the same total shift, but only 2 records (12 items) in the last 24 h
    few = history("bin-d", NOW, recent_items=SHIFTED, recent_every=12)
    view = bin_view("bin-d", few, NOW, RULES)
    mix = view["drift"][0]
    assert mix["state"] == "too_few" and mix["fired"] is False and view["alarm"] is False
    assert mix["distance"] is None
    assert "12 items in the last 24 h" in mix["text"] and "at least 50 each" in mix["text"]
    # a tiny baseline is not judged either, whatever the recent window does
    check = drift_check(
        "class mix", "items", Counter(paper=500), Counter(glass=49), bound=0.25, minimum=50
    )
    assert check["state"] == "too_few" and not check["fired"]
    # at the minimum it is judged
    check = drift_check(
        "class mix", "items", Counter(paper=50), Counter(glass=50), bound=0.25, minimum=50
    )
    assert check["fired"] and check["distance"] == 1.0


def test_figures_online_state_and_trend() -> None:
    on = bin_view("bin-a", history("bin-a", NOW, disagreed_recent=3), NOW, RULES)
    r = on["last_24h"]
    assert on["online"] is True and on["seconds_since"] == 30.0
    assert on["online_bound_seconds"] == 180.0  # 3 periods of 60 s
    assert on["last_seen"] == (NOW - timedelta(seconds=30)).isoformat()
    assert (on["model_version"], on["model_generation"], on["channel"]) == ("v2", 4, "stable")
    assert (r["periods"], r["corrections"], r["predicted_presses"]) == (12, 36, 72)
    assert r["correction_rate"] == pytest.approx(0.5)
    assert r["low_confidence_rate"] == pytest.approx(10 / 200)
    assert len(on["trend"]) == 7
    assert on["trend"][-1] == {"end": NOW.isoformat(), **r}  # the last point is the 24 h
    assert on["trend"][0]["correction_rate"] == pytest.approx(0.25)  # steady days: 1 of 4
    # 4 minutes since the last period: offline (the bound is 3 periods)
    off = bin_view("bin-b", history("bin-b", NOW, last_ago=timedelta(minutes=4)), NOW, RULES)
    assert off["online"] is False and off["seconds_since"] == 240.0
    # an older record without a channel still reads; no record at all is an offline bin
    old = bin_view("bin-e", [record("bin-e", NOW, channel=None)], NOW, RULES)
    assert old["channel"] is None and old["online"] is True
    empty = bin_view("bin-f", [], NOW, RULES)
    assert empty["online"] is False and empty["last_seen"] is None
    assert empty["last_24h"]["correction_rate"] is None and not empty["alarm"]
    view = fleet_view({"b": [], "a": [record("a", NOW)]}, NOW, RULES)
    assert [b["device"] for b in view["bins"]] == ["a", "b"]
    assert (view["online"], view["alarms"]) == (1, 0) and view["rules"]["drift_bound"] == 0.25


class _CountingStore(LocalStore):
    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.listed: list[str] = []
        self.got: list[str] = []

    def list(self, prefix: str = "") -> Iterator[str]:
        self.listed.append(prefix)
        return super().list(prefix)

    def get(self, key: str) -> bytes:
        self.got.append(key)
        return super().get(key)


def test_reads_are_bounded_to_the_windows_days_and_kept(tmp_path: Path) -> None:
    store = _CountingStore(tmp_path / "store")
    for r in history("bin-a", NOW, recent_every=6):
        store_quality(store, r)
    store_quality(store, record("bin-a", NOW - timedelta(days=40)))  # outside the window
    store_quality(store, record("bin-b", NOW - timedelta(days=1)))
    store.put("telemetry/bin-b/2026-11-27/notes.txt", b"not a record")
    reader = TelemetryReader(store)
    records = reader.load(NOW, RULES)
    assert sorted(records) == ["bin-a", "bin-b"]
    assert len(records["bin-a"]) == 85 + 4  # the window's, not the 40-day-old one
    assert [r.period_start for r in records["bin-a"]] == sorted(
        r.period_start for r in records["bin-a"]
    )
    days = {p.split("/")[2] for p in store.listed}
    assert all(p.startswith(("telemetry/bin-a/", "telemetry/bin-b/")) for p in store.listed)
    assert min(days) == "2026-11-20" and max(days) == "2026-11-28" and len(store.listed) == 18
    assert len(store.got) == reader.fetched == 85 + 4 + 1
    # records never change: the next load fetches only the new one
    store.got.clear()
    newer = record("bin-b", NOW + timedelta(minutes=1))
    store_quality(store, newer)
    again = reader.load(NOW + timedelta(minutes=2), RULES)
    assert store.got == [f"telemetry/bin-b/2026-11-28/{newer.period_start:%Y%m%dT%H%M%SZ}-r1.json"]
    assert again["bin-b"][-1] == newer and again["bin-a"] == records["bin-a"]


# -- over a real store: the API and the page ---------------------------------------------------
def seed_fleet(store: ObjectStore, now: datetime) -> None:
    """bin-01: online, its class mix moved today, shadowing c3 over the last 24 h (9 of 10
    frames agreed, 1 low-confidence, per record); bin-02: steady, last seen 90 min ago."""
    shadow = {"shadow_version": "c3", "shadow_frames": 10, "shadow_agreed": 9}
    for r in history("bin-01", now, recent_items=SHIFTED, disagreed_recent=3):
        if r.period_end > now - timedelta(days=1):
            r = r.model_copy(update={**shadow, "shadow_low_confidence": 1})
        store_quality(store, r)
    for r in history("bin-02", now, last_ago=timedelta(minutes=90)):
        store_quality(store, r.model_copy(update={"channel": "canary", "model_generation": 2}))


def _serve(store: ObjectStore, **kwargs: Any) -> Iterator[tuple[CleanServer, str]]:
    seed_simple(store, 2)
    session = ReviewSession(store, default_categories(), reviewer="fleet", start_flusher=False)
    host = kwargs.pop("host", "127.0.0.1")
    server = serve(session, host, 0, **kwargs).start()
    try:
        yield server, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.stop()
        session.close()


def test_fleet_api(s3_store: ObjectStore) -> None:
    seed_fleet(s3_store, datetime.now(UTC))
    for _, base in _serve(s3_store):
        status, data, headers = request(base, "GET", "/api/fleet")
        assert status == 200 and headers["cache-control"] == "no-store"
        assert [b["device"] for b in data["bins"]] == ["bin-01", "bin-02"]
        one, two = data["bins"]
        assert (one["online"], two["online"]) == (True, False)
        assert (one["alarm"], two["alarm"]) == (True, False)
        assert one["drift"][0]["state"] == "drift" and two["drift"][0]["state"] == "stable"
        assert (one["channel"], two["channel"]) == ("stable", "canary")
        assert (one["model_generation"], two["model_generation"]) == (4, 2)
        assert one["last_24h"]["correction_rate"] == pytest.approx(36 / 72)
        assert two["last_24h"]["correction_rate"] == pytest.approx(12 / 48)
        assert (data["online"], data["alarms"]) == (1, 1)
        assert one["shadow"] == {
            "version": "c3",
            "frames": 120,
            "agreed": 108,
            "agreement": pytest.approx(0.9),
            "low_confidence_rate": pytest.approx(0.1),
            "skipped": 0,
        }
        assert two["shadow"] is None  # not shadowing anything: no shadow figures
        status, answer, _ = request(base, "GET", "/api/fleet", headers={"Host": "evil.example"})
        assert status == 403 and "loopback" in answer["error"]
        status, page, headers = request(base, "GET", "/fleet")
        assert status == 200 and b"Recyclops fleet" in page
        assert request(base, "POST", "/api/fleet", {})[0] == 404  # read-only


def test_fleet_needs_the_token_like_the_rest(s3_store: ObjectStore) -> None:
    seed_fleet(s3_store, datetime.now(UTC))
    for _, base in _serve(s3_store, host="0.0.0.0", token=TOKEN):
        status, answer, _ = request(base, "GET", "/api/fleet")
        assert status == 401 and "token" in answer["error"]
        status, page, _ = request(base, "GET", "/fleet")
        assert status == 401 and b"review token" in page and b"bin-01" not in page
        assert request(base, "GET", "/static/fleet.js")[0] == 401
        status, data, _ = request(base, "GET", "/api/fleet", headers={"X-Recyclops-Token": TOKEN})
        assert status == 200 and len(data["bins"]) == 2


def test_fleet_page_in_chromium(s3_store: ObjectStore, browser: Any, artifacts_dir: Path) -> None:
    expect = pytest.importorskip("playwright.sync_api").expect
    seed_fleet(s3_store, datetime.now(UTC))
    errors: list[str] = []
    for server, _ in _serve(s3_store):
        page = browser.new_page(viewport={"width": 1200, "height": 1400})
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(server.url)
        page.get_by_test_id("fleet-link").click()  # linked from the review page
        expect(page).to_have_url(f"{server.url}fleet")
        expect(page.get_by_test_id("fleet-status")).to_have_text(
            "2 bins · 1 online · 1 drift alarms"
        )
        one = page.locator("[data-testid=bin][data-device=bin-01]")
        two = page.locator("[data-testid=bin][data-device=bin-02]")
        expect(one.get_by_test_id("online")).to_have_text("online")
        expect(two.get_by_test_id("online")).to_have_text("offline")
        expect(two.get_by_test_id("last-seen")).to_contain_text("(90 min ago)")
        expect(one.get_by_test_id("model")).to_have_text("v2 (generation 4)")
        expect(two.get_by_test_id("channel")).to_have_text("canary")
        expect(one.get_by_test_id("correction-rate")).to_have_text("50.0% (36 of 72 presses)")
        expect(two.get_by_test_id("correction-rate")).to_have_text("25.0% (12 of 48 presses)")
        expect(one.get_by_test_id("low-confidence-rate")).to_have_text("5.0% (120 of 2400 frames)")
        expect(one.get_by_test_id("shadow")).to_have_text(
            "agreement 90.0% over 120 frames, low confidence 10.0%"
        )
        expect(two.get_by_test_id("shadow")).to_have_count(0)
        expect(one.get_by_test_id("alarm")).to_have_text("drift alarm")
        expect(two.get_by_test_id("alarm")).to_have_text("no drift alarm")
        why = one.locator("[data-testid=drift] li[data-state=drift]")
        expect(why).to_have_count(1)
        expect(why).to_contain_text("class mix moved: total variation 0.67 ≥ 0.25")
        expect(why).to_contain_text("paper 17% → 83%")
        expect(two.locator("[data-testid=drift] li[data-state=drift]")).to_have_count(0)
        # the trend: 7 daily points per series, drawn as inline SVG
        expect(one.locator("svg[data-testid=trend] circle.corr")).to_have_count(7)
        expect(one.locator("svg[data-testid=trend] path.low")).to_have_count(1)
        page.screenshot(path=str(artifacts_dir / "clean-fleet.png"), full_page=True)
        page.get_by_test_id("models-link").click()
        expect(page.get_by_test_id("models-status")).to_contain_text("models")
        assert not errors, errors
