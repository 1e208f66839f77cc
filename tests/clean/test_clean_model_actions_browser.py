"""The models page's promote and rollback in Chromium, on a real SeaweedFS store (and a
real broker for the notice): the confirmation shows what will happen, a refusal shows
exactly what is missing and moves nothing, a success shows the new generation."""

import threading
from pathlib import Path
from typing import Any

import pytest
from rollout_helpers import OPERATOR, console, evidence_for_v2, seed_fleet, too_little_for_v2

from recyclops.shared import messages
from recyclops.shared.config import MqttConfig
from recyclops.shared.manifest import ModelRef
from recyclops.shared.mqtt import MqttClient
from recyclops.shared.rollout.channels import history, latest
from recyclops.shared.store import ObjectStore


def channel(page: Any, name: str) -> Any:
    return page.locator(f"[data-testid=channel][data-channel={name}]")


def test_a_refused_promotion_shows_what_is_missing(
    s3_store: ObjectStore, browser: Any, artifacts_dir: Path
) -> None:
    expect = pytest.importorskip("playwright.sync_api").expect
    seed_fleet(s3_store)
    too_little_for_v2(s3_store)
    errors: list[str] = []
    with console(s3_store) as (server, _):
        page = browser.new_page(viewport={"width": 1200, "height": 1400})
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{server.url}models")
        stable = channel(page, "stable")
        expect(stable.get_by_test_id("promote")).to_have_text("Promote canary → stable")
        stable.get_by_test_id("promote").click()
        panel = stable.get_by_test_id("action-panel")
        expect(panel.get_by_test_id("headline")).to_have_text("not promoting v2 to 'stable':")
        expect(panel.get_by_test_id("missing").locator("li")).to_have_text(
            ["canary (v2): 812 of 2,000 frames"]
        )
        expect(panel.get_by_test_id("evidence")).to_contain_text("canary: v2 on 1 bin(s), 812")
        expect(panel.get_by_test_id("confirm")).to_have_count(0)  # nothing to confirm
        page.screenshot(path=str(artifacts_dir / "clean-promote-refused.png"), full_page=True)
        panel.get_by_test_id("cancel").click()
        expect(panel).to_be_hidden()
    assert [(p.generation, p.version) for p in history(s3_store, "stable")] == [(1, "v1")]
    assert not errors, errors


def test_a_promotion_on_evidence_moves_stable_and_tells_the_bins(
    s3_store: ObjectStore, browser: Any, mqtt_config: MqttConfig, artifacts_dir: Path
) -> None:
    expect = pytest.importorskip("playwright.sync_api").expect
    seed_fleet(s3_store)
    evidence_for_v2(s3_store)
    got = threading.Event()
    notices: list[ModelRef] = []

    def on_notice(topic: str, payload: bytes) -> None:
        notices.append(messages.parse_message(ModelRef, payload, topic))
        if notices[-1].version == "v2":
            got.set()

    listener = MqttClient(mqtt_config)
    listener.subscribe(messages.model_topic(mqtt_config.fleet, "stable"), on_notice)
    try:
        assert listener.start(wait=10)
        with console(s3_store, mqtt=mqtt_config) as (server, _):
            page = browser.new_page(viewport={"width": 1200, "height": 1400})
            page.goto(f"{server.url}models")
            stable = channel(page, "stable")
            stable.get_by_test_id("promote").click()
            panel = stable.get_by_test_id("action-panel")
            expect(panel.get_by_test_id("headline")).to_have_text(
                "the evidence holds: v2 may be promoted to 'stable'"
            )
            expect(panel.get_by_test_id("plan")).to_contain_text(
                "channel 'stable': v1 (generation 1) → v2 (generation 2), promoted from 'canary'"
            )
            expect(panel.get_by_test_id("plan")).to_contain_text("retained MQTT notice")
            panel.get_by_test_id("confirm").click()
            result = channel(page, "stable").get_by_test_id("result")
            expect(result).to_have_text(
                "channel 'stable' now serves v2 (generation 2, promoted from 'canary')"
            )
            expect(channel(page, "stable").locator("h3")).to_contain_text(
                "serves v2 (generation 2)"
            )
            expect(channel(page, "stable").get_by_test_id("action-panel")).to_contain_text(
                f"MQTT notice retained on {messages.model_topic(mqtt_config.fleet, 'stable')}"
            )
            page.screenshot(path=str(artifacts_dir / "clean-promoted.png"), full_page=True)
        assert got.wait(15)
    finally:
        listener.stop()
    assert notices[-1].generation == 2
    pointer = latest(s3_store, "stable")
    assert pointer is not None and pointer.note is not None
    assert pointer.note.startswith(f"promoted from canary by {OPERATOR} (console)")


def test_a_rollback_goes_back_with_a_new_generation(s3_store: ObjectStore, browser: Any) -> None:
    expect = pytest.importorskip("playwright.sync_api").expect
    seed_fleet(s3_store)
    with console(s3_store) as (server, _):
        page = browser.new_page(viewport={"width": 1200, "height": 1400})
        page.goto(f"{server.url}models")
        canary = channel(page, "canary")
        expect(canary.get_by_test_id("rollback-to").locator("option")).to_have_text(["v1"])
        canary.get_by_test_id("rollback").click()
        panel = canary.get_by_test_id("action-panel")
        expect(panel.get_by_test_id("plan")).to_contain_text(
            "channel 'canary': v2 (generation 2) → v1 (generation 3, a rollback)"
        )
        expect(panel.get_by_test_id("plan")).to_contain_text("bins pick the change up by polling")
        panel.get_by_test_id("rollback-note").fill("v2 misreads glass")
        panel.get_by_test_id("confirm").click()
        canary = channel(page, "canary")
        expect(canary.get_by_test_id("result")).to_have_text(
            "channel 'canary' now serves v1 again (generation 3)"
        )
        gens = canary.locator("[data-testid=generation]")
        expect(gens).to_have_count(3)
        expect(gens.nth(0).locator("td").nth(2)).to_have_text("rollback")
        expect(gens.nth(0).locator("td").nth(4)).to_have_text(
            f"rolled back by {OPERATOR} (console): v2 misreads glass"
        )
    pointer = latest(s3_store, "canary")
    assert pointer is not None and (pointer.generation, pointer.version) == (3, "v1")
