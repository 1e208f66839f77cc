"""Model updates: verified, self-tested, switched atomically; bad models and hostile notices
are refused while the old model keeps serving; polling takes over when the broker is gone."""

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from edge_helpers import (
    CATS,
    DATA,
    Harness,
    fixture_manifest,
    honest_manifest,
    notify,
    publish_model,
)
from support.waiting import wait_until

from recyclops.edge.classifier import Classifier
from recyclops.edge.telemetry import Telemetry
from recyclops.shared import messages
from recyclops.shared.config import RecyclopsConfig
from recyclops.shared.mqtt import MqttClient
from recyclops.shared.store import LocalStore


@pytest.fixture
def harness(tmp_path: Path, local_store: LocalStore) -> Harness:
    h = Harness(tmp_path, local_store)
    assert h.updater.handle(publish_model(local_store, "v1"), "test")
    assert h.serving is not None and h.serving.version == "v1"
    return h


@pytest.mark.edge_numpy1
def test_install_switches_current_and_keeps_versions(
    harness: Harness, local_store: LocalStore
) -> None:
    repo = harness.repo
    assert repo.current_version() == "v1"
    assert harness.updater.handle(publish_model(local_store, "v2"), "test")
    assert repo.current_version() == "v2" and harness.serving.version == "v2"  # type: ignore[union-attr]
    assert harness.updater.handle(publish_model(local_store, "v3"), "test")
    assert sorted(p.name for p in repo.versions.iterdir()) == ["v2", "v3"]  # keep_versions=2
    assert not harness.updater.handle(publish_model(local_store, "v3"), "test")  # already serving
    assert repo.rollback() == "v2" and repo.current_version() == "v2"
    assert repo.load_current().version == "v2"  # type: ignore[union-attr]
    assert not list(repo.folder.glob(".incoming-*"))


def _bad_cases(store: LocalStore) -> dict[str, Any]:
    good = (DATA / "model.tflite").read_bytes()
    truncated = good[: len(good) // 2]
    wrong_hash = json.loads(fixture_manifest("bad-hash"))
    wrong_hash["files"][0]["sha256"] = "0" * 64
    return {
        "wrong file hash": dict(version="bad-hash", manifest=json.dumps(wrong_hash).encode()),
        "wrong input shape": dict(
            version="bad-shape",
            manifest=honest_manifest("bad-shape", good, **{"input.height": 64, "input.width": 64}),
        ),
        "truncated, manifest of the whole": dict(
            version="bad-trunc", model_bytes=truncated, manifest=fixture_manifest("bad-trunc")
        ),
        "truncated, honest manifest": dict(
            version="bad-trunc2",
            model_bytes=truncated,
            manifest=honest_manifest("bad-trunc2", truncated),
        ),
        "categories mismatch": dict(
            version="bad-cats",
            manifest=honest_manifest("bad-cats", good, categories=["a", "b", "c", "d", "e", "f"]),
        ),
        "reordered categories": dict(
            version="bad-order", manifest=honest_manifest("bad-order", good, categories=CATS[::-1])
        ),
        "manifest hash differs from notice": dict(version="bad-notice", notice_sha="1" * 64),
        "newer edge needed": dict(
            version="bad-edge", manifest=honest_manifest("bad-edge", good, min_edge_version="99.0")
        ),
    }


@pytest.mark.edge_numpy1
@pytest.mark.parametrize(
    "case",
    [
        "wrong file hash",
        "wrong input shape",
        "truncated, manifest of the whole",
        "truncated, honest manifest",
        "categories mismatch",
        "reordered categories",
        "manifest hash differs from notice",
        "newer edge needed",
    ],
)
def test_bad_model_is_rejected_and_old_keeps_serving(
    harness: Harness, local_store: LocalStore, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    spec = _bad_cases(local_store)[case]
    version = spec.pop("version")
    notice = publish_model(local_store, version, **spec)
    before = harness.serving
    with caplog.at_level(logging.ERROR):
        assert not harness.updater.handle(notice, "test")
    assert harness.serving is before and harness.repo.current_version() == "v1"
    assert harness.rejected and harness.rejected[-1][0] == version
    assert f"model {version} rejected" in caplog.text
    assert not (harness.repo.versions / version).exists()
    assert not list(harness.repo.folder.glob(".incoming-*"))
    assert not harness.repo.wanted(notice, "v1")  # remembered: polling will not retry it
    assert (
        before is not None and before.classify(__import__("numpy").zeros((8, 8, 3), "uint8")).label
    )


@pytest.mark.edge_numpy1
@pytest.mark.parametrize(
    "payload",
    [
        b"{not json",
        b"[]",
        b"x" * 70000,
        b'{"channel":"stable","version":"v9","manifest_key":"models/../etc/manifest.json",'
        b'"manifest_sha256":"' + b"a" * 64 + b'","published_at":"2026-01-01T00:00:00Z"}',
        b'{"channel":"stable","version":"v9","manifest_key":"models/v8/manifest.json",'
        b'"manifest_sha256":"' + b"a" * 64 + b'","published_at":"2026-01-01T00:00:00Z"}',
        b'{"channel":"beta","version":"v9","manifest_key":"models/v9/manifest.json",'
        b'"manifest_sha256":"' + b"a" * 64 + b'","published_at":"2026-01-01T00:00:00Z"}',
    ],
    ids=["bad-json", "not-object", "huge", "dotdot-key", "key-of-other-version", "other-channel"],
)
def test_hostile_notice_is_ignored_and_logged(
    tmp_path: Path, local_store: LocalStore, payload: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    h = Harness(tmp_path, local_store)
    with caplog.at_level(logging.WARNING):
        h.updater.on_mqtt("recyclops/f/models/stable", payload)
    assert h.updater.ignored == 1 and h.updater.notices.empty()
    assert "ignored model notice" in caplog.text


def test_update_arrives_by_mqtt_then_by_polling_when_the_broker_stops(
    tmp_path: Path, local_store: LocalStore, private_broker: Any
) -> None:
    config = RecyclopsConfig.model_validate(
        {
            "mqtt": {
                "host": private_broker.host,
                "port": private_broker.port,
                "fleet": "ftest",
                "connect_timeout": 5,
            },
            "edge": {"device_id": "bin-9"},
        }
    )
    h = Harness(tmp_path, local_store, poll=0.3)
    telemetry = Telemetry(config)
    telemetry.start(h.updater.on_mqtt)
    assert telemetry.connected
    h.connected = lambda: telemetry.connected
    h.updater.poll_seconds_connected = 3600  # while connected, only MQTT brings news
    publisher = MqttClient(config.mqtt)
    assert publisher.start(wait=5)
    h.updater.start()
    try:
        wait_until(lambda: h.updater.last_check, 10, "the updater's first poll")
        publisher.publish(
            messages.model_topic("ftest", "stable"), b"{hostile", retain=False, wait=5
        )
        notify(publisher, "ftest", publish_model(local_store, "m1", pointer=False))
        assert h.wait_version("m1") and h.via == "mqtt"
        publisher.stop()
        private_broker.stop()
        wait_until(lambda: not telemetry.connected, 10, "telemetry noticing the broker gone")
        publish_model(local_store, "m2")  # pointer only: no broker to announce it
        assert h.wait_version("m2", timeout=10) and h.via == "poll"
        assert h.updater.ignored == 1
    finally:
        h.stop.set()
        h.updater.thread.join(10)
        telemetry.client.stop()


@pytest.mark.edge_numpy1
def test_notice_that_arrives_before_its_files_is_retried_by_polling(
    tmp_path: Path, local_store: LocalStore
) -> None:
    h = Harness(tmp_path, local_store, poll=0.3)
    h.connected = lambda: True  # as if MQTT were up: normally no polling for 10 minutes
    notice = publish_model(local_store, "early", pointer=False)
    local_store.delete("models/early/model.tflite")  # the notice outran the upload
    h.updater.start()
    try:
        wait_until(lambda: h.updater.last_check, 10, "the updater's first poll")
        h.updater.on_mqtt("recyclops/f/models/stable", notice.model_dump_json().encode())
        wait_until(lambda: "fetch failed" in (h.updater.last_result or ""), 10, "fetch failed")
        assert h.serving is None
        publish_model(local_store, "early")  # the upload completes, pointer written last
        assert h.wait_version("early", timeout=5)
    finally:
        h.stop.set()
        h.updater.thread.join(10)


@pytest.mark.edge_numpy1
def test_a_model_that_crashes_its_interpreter_is_rejected_once(
    harness: Harness, local_store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Interpreter errors are RuntimeError/ValueError, not ours: still a rejection, remembered,
    so polling does not fetch the same broken model again and again."""

    def crash(self: Classifier, images: list[Any]) -> None:
        raise RuntimeError("tflite: Invoke failed (op not supported)")

    monkeypatch.setattr(Classifier, "self_test", crash)
    notice = publish_model(local_store, "v2")
    assert not harness.updater.handle(notice, "test")
    assert harness.rejected[-1][0] == "v2" and "Invoke failed" in harness.rejected[-1][1]
    assert harness.repo.current_version() == "v1" and harness.serving.version == "v1"  # type: ignore[union-attr]
    assert not harness.repo.wanted(notice, "v1")


@pytest.mark.edge_numpy1
def test_reinstalling_a_version_never_leaves_current_dangling(
    harness: Harness, local_store: LocalStore
) -> None:
    assert harness.updater.handle(publish_model(local_store, "v2"), "test")
    assert harness.repo.rollback() == "v1"
    harness.serving = harness.repo.load_current()
    assert harness.updater.handle(publish_model(local_store, "v2"), "test")  # v2 again
    assert harness.repo.current_version() == "v2"
    assert (harness.repo.folder / "current" / "model.tflite").is_file()
    assert not list(harness.repo.versions.glob(".old-*"))


@pytest.mark.edge_numpy1
def test_a_broken_installed_model_rolls_back_to_the_previous_one(
    harness: Harness, local_store: LocalStore
) -> None:
    assert harness.updater.handle(publish_model(local_store, "v2"), "test")
    model = harness.repo.versions / "v2" / "model.tflite"
    model.write_bytes(model.read_bytes()[:100])  # the SD card lost the end of the file
    loaded = harness.repo.load_current()
    assert loaded is not None and loaded.version == "v1"
    assert harness.repo.current_version() == "v1"


@pytest.mark.edge_numpy1
def test_an_upgraded_edge_looks_again_at_a_model_it_refused(
    harness: Harness, local_store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import recyclops.edge.models as models

    notice = publish_model(local_store, "v2")
    monkeypatch.setattr(models, "__version__", "0.0.1")  # too old for this model
    assert not harness.updater.handle(notice, "test")
    assert not harness.repo.wanted(notice, "v1")  # remembered while the edge is the same
    monkeypatch.setattr(models, "__version__", "0.1.0")  # the Pi was upgraded
    assert harness.repo.wanted(notice, "v1")
    assert harness.updater.handle(notice, "test")
