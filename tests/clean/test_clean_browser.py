"""End to end in a real browser: Chromium presses keys, the journal in S3 has every decision."""

from pathlib import Path
from typing import Any

import pytest
from clean_helpers import gather, jpeg
from support.browser import playwright_api
from support.waiting import wait_until

from recyclops.console import ReviewSession
from recyclops.console.server import serve
from recyclops.shared.config import Category
from recyclops.shared.config.categories import auto_keys
from recyclops.shared.journals import parse_journal
from recyclops.shared.store import ObjectStore

expect: Any = None  # playwright.sync_api.expect, imported by the fixture
NAMES = [
    "cardboard",
    "glass",
    "metal",
    "paper",
    "plastic",
    "trash",
    "cans",
    "cartons",
    "film",
    "textiles",
    "batteries",
    "e-waste",
    "wood",
    "ceramics",
    "organic",
    "polystyrene",
]  # 16 categories: keys 1-9, 0, a-f (the original crashed at ten)


@pytest.fixture(autouse=True)
def _expect() -> None:
    global expect
    expect = playwright_api().expect


def test_keys_in_the_browser_reach_the_journal(
    s3_store: ObjectStore, browser: object, artifacts_dir: Path
) -> None:
    cats = [Category(name=n, key=k) for n, k in zip(NAMES, auto_keys(16), strict=True)]
    key_of = {c.name: c.key for c in cats}
    # Six images, queue order a..f (rising model confidence, all agreeing with the label).
    shas = [
        gather(s3_store, jpeg(i, size=320), label, prediction=label, score=0.3 + 0.1 * i, minutes=i)
        for i, label in enumerate(["glass", "paper", "metal", "polystyrene", "cans", "trash"])
    ]
    a, b, c, d, e, f = shas
    session = ReviewSession(
        s3_store, cats, reviewer="browser", flush_seconds=1.0, flush_min_seconds=0.1
    )
    server = serve(session, "127.0.0.1", 0).start()
    try:
        page = browser.new_page(viewport={"width": 1200, "height": 800})  # type: ignore[attr-defined]
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(server.url)
        expect(page.locator("#image")).to_have_attribute("data-sha", a)
        loaded = "() => document.getElementById('image').naturalWidth > 0"
        wait_until(lambda: page.evaluate(loaded), 10, "the image loaded")  # CSP forbids eval
        legend = page.locator("#legend li")
        assert legend.count() == 16 + 3  # every category, invalid, skip, back
        assert page.get_by_test_id("gathered-label").inner_text() == "glass"
        assert "30%" in page.get_by_test_id("prediction").inner_text()
        page.screenshot(path=str(artifacts_dir / "clean-review.png"))

        # Typed without waiting: the page runs actions in order against fresh state.
        for key in [
            key_of["glass"],
            "x",
            "s",
            key_of["paper"],
            "w",
            key_of["polystyrene"],
            key_of["cans"],
            key_of["trash"],
            key_of["metal"],
        ]:
            page.keyboard.press(key)
        page.get_by_test_id("done").wait_for(state="visible", timeout=15000)
        expect(page.get_by_test_id("saving")).to_have_text("all 8 saved", timeout=15000)
        assert page.get_by_test_id("progress").inner_text().startswith("6 done · 0 left")
        page.screenshot(path=str(artifacts_dir / "clean-review-done.png"))
        assert not errors, errors
    finally:
        server.stop()
        session.close()
    decisions, problems = parse_journal(s3_store.get(session.journal_key).decode())
    assert not problems
    assert [(x.sha256, x.action, x.label) for x in decisions] == [
        (a, "label", "glass"),
        (b, "label", "invalid"),
        # c skipped: no decision, shown again at the end
        (d, "label", "paper"),
        (d, "withdraw", None),  # w went back to d and withdrew it
        (d, "label", "polystyrene"),  # key "f": the 16th category
        (e, "label", "cans"),
        (f, "label", "trash"),
        (c, "label", "metal"),
    ]
    assert [x.seq for x in decisions] == list(range(8))
    assert {x.reviewer for x in decisions} == {"browser"}


def test_filter_in_the_page_then_keys_still_review(
    s3_store: ObjectStore, browser: object, artifacts_dir: Path
) -> None:
    cats = [Category(name=n, key=k) for n, k in zip(NAMES[:6], auto_keys(6), strict=True)]
    a = gather(s3_store, jpeg(1, 200), "glass", device="bin-1", prediction="glass", score=0.5)
    b = gather(s3_store, jpeg(2, 200), "paper", device="bin-2", prediction="glass", score=0.9)
    session = ReviewSession(s3_store, cats, flush_seconds=1.0, flush_min_seconds=0.1)
    server = serve(session, "127.0.0.1", 0).start()
    try:
        page = browser.new_page()  # type: ignore[attr-defined]
        page.goto(server.url)
        expect(page.locator("#image")).to_have_attribute("data-sha", b)  # the likely mistake first
        expect(page.get_by_test_id("flags")).to_contain_text("model disagrees")
        page.select_option("#filter-device", "bin-1")
        expect(page.locator("#image")).to_have_attribute("data-sha", a)
        page.keyboard.press("3")  # metal: the select gave the keys back
        expect(page.get_by_test_id("done")).to_be_visible()
        expect(page.get_by_test_id("saving")).to_have_text("all 1 saved", timeout=15000)
    finally:
        server.stop()
        session.close()
    decisions, _ = parse_journal(s3_store.get(session.journal_key).decode())
    assert [(d.sha256, d.label) for d in decisions] == [(a, "metal")]
