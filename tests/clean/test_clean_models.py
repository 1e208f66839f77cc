"""The models view on a real SeaweedFS store: two published versions with their blessing
records and a channel history written by the real publisher code (``cloud.channels``),
through the API (behind the same access rules as the review) and in Chromium."""

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from clean_helpers import request, seed_simple

from recyclops.cloud import channels
from recyclops.cloud.stats import wilson
from recyclops.console import ReviewSession
from recyclops.console.models import wilson as console_wilson
from recyclops.console.server import CleanServer, serve
from recyclops.shared import layout
from recyclops.shared.channels_read import channel_names, history, model_versions
from recyclops.shared.config.categories import default_categories
from recyclops.shared.manifest import (
    Blessing,
    ClassMetrics,
    FileEntry,
    InputSpec,
    Metrics,
    ModelManifest,
)
from recyclops.shared.store import ObjectStore

TOKEN = "t0ken-for-the-tests-0123456789"
CATS = ["glass", "metal", "paper"]
V1_SUMMARY = (
    "BLESSED: fit to replace the model serving (v1)\n"
    "  int8 80.0% on 200 test images (95% interval 73.9%–85.0%); floor 66.7%"
)
V2_SUMMARY = (
    "NOT BLESSED (v2)\n"
    "  int8 87.5% on 400 test images (95% interval 83.9%–90.4%); floor 66.7%\n"
    "  vs champion v1 on 180 shared test images: 86.1% vs 80.0%, 14 gained, 3 lost "
    "(worse p = 0.998, better p = 0.00636)\n"
    "  refused: floor: class paper is right on 3 of 40 test images"
)


def _manifest(
    version: str, day: int, int8: float, n: int, per_class: dict[str, tuple[float, int]], **b: Any
) -> ModelManifest:
    body = f"model {version}".encode()
    return ModelManifest(
        version=version,
        created=datetime(2026, 11, day, 9, 0, tzinfo=UTC),
        categories=CATS,
        input=InputSpec(height=96, width=96),
        metrics=Metrics(
            int8_accuracy=int8,
            float_accuracy=int8 + 0.01,
            test_images=n,
            per_class={
                c: ClassMetrics(int8_accuracy=a, float_accuracy=a, support=s)
                for c, (a, s) in per_class.items()
            },
        ),
        files=[
            FileEntry(name="model.tflite", size=len(body), sha256=hashlib.sha256(body).hexdigest())
        ],
        blessing=Blessing(**b),
    )


def seed_models(store: ObjectStore) -> None:
    """v1 (blessed, first of its channel) and v2 (not blessed, forced), then a rollback."""
    v1 = _manifest(
        "v1",
        1,
        0.8,
        200,
        {"glass": (0.85, 80), "metal": (0.8, 70), "paper": (0.72, 50)},
        blessed=True,
        summary=V1_SUMMARY,
    )
    v2 = _manifest(
        "v2",
        2,
        0.875,
        400,
        {"glass": (0.9, 200), "metal": (0.95, 160), "paper": (0.075, 40)},
        blessed=False,
        champion_version="v1",
        summary=V2_SUMMARY,
        forced="the paper bin is being rebuilt",
    )
    for m in (v1, v2):
        store.put(layout.manifest_key(m.version), m.to_json())
        store.put(layout.model_file_key(m.version, "model.tflite"), f"model {m.version}".encode())
    sha = {m.version: hashlib.sha256(m.to_json()).hexdigest() for m in (v1, v2)}
    channels.advance(store, "stable", version="v1", manifest_sha256=sha["v1"])
    channels.advance(store, "stable", version="v2", manifest_sha256=sha["v2"], note="forced")
    channels.advance(
        store,
        "stable",
        version="v1",
        manifest_sha256=sha["v1"],
        action="rollback",
        note="paper bin",
    )
    channels.advance(store, "canary", version="v2", manifest_sha256=sha["v2"])
    store.put("models/broken/manifest.json", b"{not json")


def _serve(store: ObjectStore, **kwargs: Any) -> Iterator[tuple[CleanServer, str]]:
    seed_simple(store, 2)
    session = ReviewSession(store, default_categories(), reviewer="models", start_flusher=False)
    host = kwargs.pop("host", "127.0.0.1")
    server = serve(session, host, 0, **kwargs).start()
    try:
        yield server, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.stop()
        session.close()


def test_the_reader_in_shared_matches_the_writer_in_cloud(s3_store: ObjectStore) -> None:
    seed_models(s3_store)
    assert sorted(model_versions(s3_store)) == ["broken", "v1", "v2"]
    assert channel_names(s3_store) == ["canary", "stable"]
    assert history(s3_store, "stable") == channels.history(s3_store, "stable")
    for k, n in ((160, 200), (350, 400), (0, 10), (10, 10), (0, 0)):
        assert console_wilson(k, n) == pytest.approx(wilson(k, n), abs=1e-12)


def test_models_api(s3_store: ObjectStore) -> None:
    seed_models(s3_store)
    for _, base in _serve(s3_store):
        status, data, headers = request(base, "GET", "/api/models")
        assert status == 200 and headers["cache-control"] == "no-store"
        assert "default-src 'self'" in headers["content-security-policy"]
        assert [m["version"] for m in data["models"]] == ["v2", "v1"]  # newest first
        v2, v1 = data["models"]
        assert v2["int8_accuracy"] == 0.875 and v2["test_images"] == 400
        assert v2["int8_interval"] == pytest.approx(list(wilson(350, 400)))
        assert v1["int8_interval"] == pytest.approx(list(wilson(160, 200)))
        assert v2["per_class"][2] == {
            "name": "paper",
            "support": 40,
            "int8_accuracy": 0.075,
            "float_accuracy": 0.075,
        }
        assert v2["blessing"]["blessed"] is False
        assert v2["blessing"]["forced"] == "the paper bin is being rebuilt"
        assert v2["blessing"]["champion_version"] == "v1"
        assert v2["blessing"]["champion_lines"][0].startswith("vs champion v1 on 180")
        assert v2["champion"] == {"version": "v1", "int8_accuracy": 0.8}
        assert v1["blessing"]["blessed"] is True and v1["champion"] is None
        assert v1["serving"] == ["stable"] and v2["serving"] == ["canary"]
        stable = next(c for c in data["channels"] if c["name"] == "stable")
        assert stable["current"]["generation"] == 3 and stable["current"]["version"] == "v1"
        assert [(g["generation"], g["version"], g["action"]) for g in stable["history"]] == [
            (3, "v1", "rollback"),
            (2, "v2", "publish"),
            (1, "v1", "publish"),
        ]
        assert stable["history"][0]["note"] == "paper bin"
        assert [c["name"] for c in data["channels"]] == ["canary", "stable"]
        assert data["problems"][0]["version"] == "broken"
        assert "not JSON" in data["problems"][0]["error"]
        # the same rules as the rest: no DNS rebinding, and the page is a fixed file
        status, answer, _ = request(base, "GET", "/api/models", headers={"Host": "evil.example"})
        assert status == 403 and "loopback" in answer["error"]
        status, page, headers = request(base, "GET", "/models")
        assert status == 200 and b"Recyclops models" in page
        assert headers["content-type"].startswith("text/html")
        assert request(base, "POST", "/api/models", {})[0] == 404  # read-only: no action


def test_models_need_the_token_like_the_rest(s3_store: ObjectStore) -> None:
    seed_models(s3_store)
    for _, base in _serve(s3_store, host="0.0.0.0", token=TOKEN):
        status, answer, _ = request(base, "GET", "/api/models")
        assert status == 401 and "token" in answer["error"]
        wrong = {"X-Recyclops-Token": "wrong-token-wrong-token"}
        assert request(base, "GET", "/api/models", headers=wrong)[0] == 401
        status, page, _ = request(base, "GET", "/models")
        assert status == 401 and b"review token" in page and b"v2" not in page  # the form
        assert request(base, "GET", "/static/models.js")[0] == 401
        right = {"X-Recyclops-Token": TOKEN}
        status, data, _ = request(base, "GET", "/api/models", headers=right)
        assert status == 200 and len(data["models"]) == 2
        status, _, headers = request(base, "POST", "/api/login", {"token": TOKEN})
        cookie = {"Cookie": headers["set-cookie"].split(";")[0]}
        assert request(base, "GET", "/models", headers=cookie)[0] == 200
        assert request(base, "GET", "/api/models", headers=cookie)[0] == 200


def test_models_page_in_chromium(s3_store: ObjectStore, browser: Any, artifacts_dir: Path) -> None:
    expect = pytest.importorskip("playwright.sync_api").expect
    seed_models(s3_store)
    errors: list[str] = []
    for server, _ in _serve(s3_store):
        page = browser.new_page(viewport={"width": 1200, "height": 1400})
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(server.url)
        page.get_by_test_id("models-link").click()  # linked from the review page
        expect(page).to_have_url(f"{server.url}models")
        expect(page.get_by_test_id("models-status")).to_have_text("2 models · 2 channels")
        v2 = page.locator("[data-testid=model][data-version=v2]")
        v1 = page.locator("[data-testid=model][data-version=v1]")
        expect(v2.get_by_test_id("verdict")).to_have_text(
            "not blessed, published anyway: the paper bin is being rebuilt"
        )
        expect(v1.get_by_test_id("verdict")).to_have_text("blessed")
        expect(v2.get_by_test_id("int8-accuracy")).to_have_text(
            "87.5% (95% interval 83.9%–90.4%) on 400 test images"
        )
        expect(v1.get_by_test_id("int8-accuracy")).to_have_text(
            "80.0% (95% interval 73.9%–85.0%) on 200 test images"
        )
        expect(v2.get_by_test_id("champion")).to_have_text("v1 (its own int8 accuracy 80.0%)")
        expect(v2.get_by_test_id("champion-comparison")).to_contain_text(
            "vs champion v1 on 180 shared test images: 86.1% vs 80.0%"
        )
        paper = v2.locator("[data-testid=class-row][data-class=paper] td")
        expect(paper).to_have_text(["paper", "40", "7.5%", "7.5%"])
        expect(v1.locator("[data-testid=class-row]")).to_have_count(3)
        stable = page.locator("[data-testid=channel][data-channel=stable]")
        gens = stable.locator("[data-testid=generation]")
        expect(gens).to_have_count(3)
        expect(gens.nth(0).locator("td").nth(0)).to_have_text("3")
        expect(gens.nth(0).locator("td").nth(2)).to_have_text("rollback")
        expect(gens.nth(0).locator("td").nth(4)).to_have_text("paper bin")
        expect(gens.nth(1).locator("td").nth(1)).to_have_text("v2")
        expect(gens.nth(2).locator("td").nth(1)).to_have_text("v1")
        expect(gens.nth(0)).to_have_class("current")
        expect(stable.locator("h3")).to_contain_text("serves v1 (generation 3)")
        expect(page.get_by_test_id("models")).to_contain_text("broken")  # shown, not hidden
        page.screenshot(path=str(artifacts_dir / "clean-models.png"), full_page=True)
        assert not errors, errors


def test_login_form_returns_to_the_models_page(s3_store: ObjectStore, browser: Any) -> None:
    expect = pytest.importorskip("playwright.sync_api").expect
    seed_models(s3_store)
    for _, base in _serve(s3_store, token=TOKEN):
        page = browser.new_page()
        page.goto(f"{base}/models")
        expect(page.get_by_test_id("login")).to_be_visible()
        page.fill("#token", TOKEN)
        page.keyboard.press("Enter")
        expect(page.get_by_test_id("models-status")).to_have_text("2 models · 2 channels")
        expect(page).to_have_url(f"{base}/models")
        page.get_by_test_id("review-link").click()
        expect(page.get_by_test_id("progress")).to_contain_text("left")
