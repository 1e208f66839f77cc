"""The queue ordered by information, on SeaweedFS: automatic captures, bin-vs-operator
disagreements, the audit's likely label errors and near-duplicate conflicts, and import
conflicts come first, each with its ``reasons`` in the API and on the page (Chromium)."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from clean_helpers import T0, gather, jpeg, request
from support.browser import playwright_api
from support.waiting import wait_until

from recyclops.console import ReviewSession
from recyclops.console.server import serve
from recyclops.shared import layout
from recyclops.shared.config.categories import default_categories
from recyclops.shared.hashing import sha256_bytes
from recyclops.shared.journals import Decision, parse_journal
from recyclops.shared.records import AutoCapture, GatheredRecord
from recyclops.shared.store import ObjectStore


def auto_capture(store: ObjectStore, data: bytes, prediction: str, top1: float) -> str:
    """A frame a bin kept by itself (no key press): the model was unsure."""
    sha = sha256_bytes(data)
    store.put(layout.image_key(sha), data, if_absent=True)
    record = GatheredRecord(
        sha256=sha,
        label=prediction,
        device="bin-3",
        captured_at=T0,
        model_version="v7",
        prediction=prediction,
        score=top1,
        capture=AutoCapture(
            reasons=["low_score", "small_margin"],
            scores={"glass": top1, "plastic": top1 - 0.05},
            top1=top1,
            margin=0.05,
            window=["glass", "plastic", "glass"],
        ),
    )
    store.put(layout.gathered_key("bin-3", T0.date(), sha), record.model_dump_json().encode())
    return sha


def label(store: ObjectStore, session: str, decisions: dict[str, str]) -> None:
    """An earlier session's journal (an import, say) deciding these images."""
    lines = [
        Decision(sha256=sha, session=session, seq=i, time=T0, label=lab, reviewer="import")
        for i, (sha, lab) in enumerate(decisions.items())
    ]
    body = "".join(d.model_dump_json() + "\n" for d in lines).encode()
    store.put(layout.labels_key(session), body)


def seed(store: ObjectStore) -> dict[str, str]:
    s: dict[str, str] = {}
    s["plain"] = gather(store, jpeg(1), "glass", prediction="glass", score=0.99)
    s["auto_sure"] = auto_capture(store, jpeg(2), "glass", 0.45)
    s["auto_unsure"] = auto_capture(store, jpeg(3), "glass", 0.30)
    s["disagree"] = gather(store, jpeg(4), "paper", prediction="metal", score=0.9)
    s["mislabelled"] = gather(store, jpeg(5), "metal", device="import")
    s["dup_a"] = gather(store, jpeg(6), "plastic", device="import")
    s["dup_b"] = gather(store, jpeg(7), "glass", device="import")
    s["fine_import"] = gather(store, jpeg(8), "paper", device="import")
    s["conflict"] = gather(store, jpeg(9), "glass", device="import")
    gather(store, jpeg(9), "metal", device="import-2")  # a second claim of the same bytes
    imported = {
        "mislabelled": "metal",
        "dup_a": "plastic",
        "dup_b": "glass",
        "fine_import": "paper",
    }
    label(store, "import-ann-20261101T120000Z-0000abcd", {s[k]: v for k, v in imported.items()})
    report = {
        "conflicts": [
            {
                "sha256": s["conflict"],
                "kind": "import",
                "labels": {"glass": ["glass/g9.jpg"], "metal": ["metal/m9.jpg"]},
                "store_label": None,
                "store_session": None,
            }
        ]
    }
    store.put(
        "labels/import-ann-20261101T120000Z-0000abcd.import.json", json.dumps(report).encode()
    )
    audit = {
        "schema_version": 1,
        "run_id": "audit-test",
        "created": (T0 + timedelta(days=1)).isoformat(),
        "label_issues": [
            {
                "sha256": s["mislabelled"],
                "label": "metal",
                "suggested": "glass",
                "p_suggested": 0.97,
                "p_label": 0.01,
                "rank": 1,
            }
        ],
        "near_duplicates": {
            "groups": [
                {
                    "kind": "near",
                    "members": [
                        {"sha256": s["dup_a"], "label": "plastic"},
                        {"sha256": s["dup_b"], "label": "glass"},
                    ],
                }
            ]
        },
    }
    store.put(layout.AUDIT_LATEST, json.dumps(audit).encode())
    return s


def kinds(item: dict[str, Any]) -> list[str]:
    return [r["kind"] for r in item["reasons"]]


def test_queue_api_orders_by_information_with_reasons(s3_store: ObjectStore) -> None:
    s = seed(s3_store)
    session = ReviewSession(s3_store, default_categories(), reviewer="r", start_flusher=False)
    server = serve(session, "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    seen: list[dict[str, Any]] = []
    try:
        while True:  # skip through the whole queue once, as the page would show it
            status, state, _ = request(base, "GET", "/api/state")
            assert status == 200
            current = state["current"]
            if current is None or current["sha256"] in {i["sha256"] for i in seen}:
                break
            seen.append(current)
            request(base, "POST", "/api/skip", {"sha256": current["sha256"]})
        status, conflicts, _ = request(base, "GET", "/api/conflicts")
    finally:
        server.stop()
        session.close()
    order = [i["sha256"] for i in seen]
    by_sha = {i["sha256"]: i for i in seen}
    # imported images nobody flagged stay decided elsewhere (not queued); flagged ones return
    assert s["fine_import"] not in order
    assert order[:3] == sorted([s["conflict"], s["dup_a"], s["dup_b"]], key=order.index)
    assert set(order[:3]) == {s["conflict"], s["dup_a"], s["dup_b"]}
    assert order[3:] == [
        s["mislabelled"],
        s["auto_unsure"],  # least sure capture first
        s["auto_sure"],
        s["disagree"],
        s["plain"],
    ]
    assert kinds(by_sha[s["conflict"]])[:2] == ["import_conflict", "label_disagreement"]
    assert kinds(by_sha[s["dup_a"]]) == ["near_duplicate_conflict"]
    assert "labelled glass" in by_sha[s["dup_a"]]["reasons"][0]["text"]
    issue = by_sha[s["mislabelled"]]["reasons"][0]
    assert issue["kind"] == "likely_label_error"
    assert "the model says glass with p = 0.97" in issue["text"]
    auto = by_sha[s["auto_unsure"]]
    assert kinds(auto) == ["auto_capture"] and auto["auto_capture"]["device"] == "bin-3"
    assert auto["auto_capture"]["reasons"] == ["low_score", "small_margin"]
    assert "captured automatically" in auto["reasons"][0]["text"]
    assert not auto["likely_mistake"]
    assert kinds(by_sha[s["disagree"]]) == ["bin_disagrees"]
    assert kinds(by_sha[s["plain"]]) == []
    assert status == 200
    imported = [c for c in conflicts["conflicts"] if c["kind"] == "import"]
    assert [(c["sha256"], sorted(c["labels"])) for c in imported] == [
        (s["conflict"], ["glass", "metal"])
    ]


def test_a_decision_after_the_audit_ends_its_second_look(s3_store: ObjectStore) -> None:
    s = seed(s3_store)
    later = datetime.now(UTC)
    d = Decision(
        sha256=s["mislabelled"], session="rev-1", seq=0, time=later, label="metal", reviewer="b"
    )
    s3_store.put(layout.labels_key("rev-1"), (d.model_dump_json() + "\n").encode())
    with ReviewSession(s3_store, default_categories(), start_flusher=False) as session:
        assert s["mislabelled"] not in session._remaining  # confirmed after the audit
        assert session.item(s["mislabelled"]).reasons == []


def test_reasons_on_the_page_auto_capture_and_label_error(
    s3_store: ObjectStore, browser: object, artifacts_dir: Path
) -> None:
    expect = playwright_api().expect
    s = seed(s3_store)
    session = ReviewSession(
        s3_store,
        default_categories(),
        reviewer="chromium",
        flush_seconds=0.5,
        flush_min_seconds=0.05,
    )
    keys = {c.name: c.key for c in session.categories}
    server = serve(session, "127.0.0.1", 0).start()
    try:
        page = browser.new_page(viewport={"width": 1200, "height": 800})  # type: ignore[attr-defined]
        page.goto(f"http://127.0.0.1:{server.server_address[1]}/")
        reasons = page.get_by_test_id("reasons")
        for _ in range(3):  # the three conflicts first: skip them
            expect(reasons.locator("li").first).to_be_visible()
            sha = page.get_by_test_id("sha").inner_text()
            page.keyboard.press("s")
            expect(page.get_by_test_id("sha")).not_to_have_text(sha)
        expect(page.get_by_test_id("sha")).to_have_text(s["mislabelled"][:12] + "…")
        error = reasons.locator('li[data-kind="likely_label_error"]')
        expect(error).to_contain_text("likely label error: labelled metal")
        expect(error).to_contain_text("the model says glass with p = 0.97")
        page.screenshot(path=str(artifacts_dir / "clean-reasons-label-error.png"))
        page.keyboard.press(keys["glass"])  # the reviewer agrees with the audit
        expect(page.get_by_test_id("sha")).to_have_text(s["auto_unsure"][:12] + "…")
        auto = reasons.locator('li[data-kind="auto_capture"]')
        expect(auto).to_contain_text("captured automatically by bin-3")
        expect(auto).to_contain_text("low score, small margin")
        expect(page.get_by_test_id("gathered-label")).to_contain_text("captured automatically")
        page.screenshot(path=str(artifacts_dir / "clean-reasons-auto-capture.png"))
        page.keyboard.press(keys["plastic"])  # what it really was
        expect(page.get_by_test_id("sha")).to_have_text(s["auto_sure"][:12] + "…")
        page.get_by_role("button", name="conflicts").click()
        expect(page.locator('#conflict-list li[data-kind="import"]')).to_contain_text(
            "glass (glass/g9.jpg); metal (metal/m9.jpg)"
        )
        wait_until(lambda: not session.saving()["unsaved"], 10, "every decision saved")
    finally:
        server.stop()
        session.close()
    found, _ = parse_journal(s3_store.get(session.journal_key).decode())
    assert [(d.sha256, d.label) for d in found] == [
        (s["mislabelled"], "glass"),
        (s["auto_unsure"], "plastic"),
    ]
