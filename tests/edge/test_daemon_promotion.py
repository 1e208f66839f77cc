"""The running daemon and promotion: it ignores a replayed older notice, follows a rollback
(a higher generation), withdraws a model that turns bad on live frames, and never writes a
bare NaN into any JSON (status file, --jsonl, live view, MQTT, ``edge classify --json``)."""

import http.client
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from edge_helpers import (
    DATA,
    GREEN,
    Events,
    float_manifest,
    golden_of,
    notify,
    on_s3_and_mqtt,
    publish_model,
    start,
    status,
    strict_json,
    wait_for,
    write_frames,
)

from recyclops.edge.daemon import EdgeDaemon
from recyclops.edge.telemetry import Telemetry
from recyclops.shared import messages
from recyclops.shared.config import MqttConfig, RecyclopsConfig
from recyclops.shared.messages import DeviceEvent
from recyclops.shared.mqtt import MqttClient
from recyclops.shared.store import ObjectStore, S3Store, open_store

CLI = [sys.executable, "-m", "recyclops.app.cli"]


def publish_green_nan(store: ObjectStore, version: str, work: Path) -> Any:
    """A float32 model that passes the self-test and its golden set (real photos) but gives
    NaN on a green scene; its golden outputs recorded as the cloud would."""
    model = (DATA / "nan_on_green.tflite").read_bytes()
    golden = golden_of(model, float_manifest(version, model), work)
    manifest = float_manifest(version, model, golden)
    return publish_model(store, version, model_bytes=model, manifest=manifest, golden=golden)


def test_running_bin_ignores_a_replayed_older_notice_and_follows_a_rollback(
    make_config: Callable[..., RecyclopsConfig],
    s3_server: Any,
    s3_url: str,
    s3_store: S3Store,
    mqtt_config: MqttConfig,
) -> None:
    config = on_s3_and_mqtt(
        make_config(updates={"poll_seconds_connected": 600}), s3_server, s3_url, mqtt_config
    )
    fleet = mqtt_config.fleet
    publisher = MqttClient(mqtt_config)
    assert publisher.start(wait=5)
    v1 = publish_model(s3_store, "v1", generation=1)
    notify(publisher, fleet, v1)
    events = Events()
    daemon = EdgeDaemon(config, events=events)
    thread = start(daemon)
    try:
        wait_for(lambda: status(config).get("model_version") == "v1")
        notify(publisher, fleet, publish_model(s3_store, "v2", generation=2))
        wait_for(lambda: (s := status(config)).get("model_version") == "v2" and s)
        assert events.of("model")[-1]["via"] == "mqtt"
        assert wait_for(lambda: status(config).get("served_generation") == 2)

        notify(publisher, fleet, v1)  # a replay: genuine hashes, older generation
        ignored = wait_for(lambda: events.of("notice_ignored"))[0]
        assert ignored == {**ignored, "version": "v1", "generation": 1, "served_generation": 2}
        assert ignored["via"] == "mqtt"
        after = status(config)["frames_classified"]
        snap = wait_for(lambda: (s := status(config))["frames_classified"] > after + 25 and s)
        assert snap["model_version"] == "v2" and snap["notices_stale"] == 1
        assert all(p["model_version"] == "v2" for p in snap["last_predictions"])
        assert [e["version"] for e in events.of("model")] == ["v1", "v2"]

        back = publish_model(s3_store, "v1", generation=3)  # what `recyclops rollback` writes
        notify(publisher, fleet, back)
        wait_for(lambda: [e["version"] for e in events.of("model")] == ["v1", "v2", "v1"])
        # the repo records the generation when it installs, the frame loop serves the model at
        # its next frame, and status.json is rewritten on the housekeeper's clock: wait for a
        # status written after the switch
        snap = wait_for(
            lambda: (
                (s := status(config)).get("served_generation") == 3
                and s.get("model_version") == "v1"
                and s
            )
        )
        assert daemon.repo.current_version() == "v1"
    finally:
        daemon.stop.set()
        thread.join(20)
        publisher.stop()
    assert not thread.is_alive()


@pytest.mark.edge_numpy1
def test_runtime_guard_rolls_back_a_model_that_turns_bad_on_live_frames(
    make_config: Callable[..., RecyclopsConfig], tmp_path: Path
) -> None:
    frames = write_frames(tmp_path / "green", [GREEN] * 8)  # the scene that breaks v2
    config = make_config(camera={"source": str(frames)}, updates={"guard_frames": 5})
    store = open_store(config.store)
    publish_model(store, "v1")
    events = Events()  # every line parsed strictly: NaN outputs must not leak into it
    daemon = EdgeDaemon(config, events=events)
    thread = start(daemon)
    try:
        wait_for(lambda: status(config).get("model_version") == "v1")
        bad = publish_green_nan(store, "v2-green", tmp_path / "cloud")
        rejected = wait_for(lambda: events.of("model_rejected"))[0]
        assert rejected["version"] == "v2-green"
        assert "runtime guard: 5 live frames in a row gave non-finite" in rejected["reason"]
        wait_for(lambda: [e["version"] for e in events.of("model")] == ["v1", "v2-green", "v1"])
        assert events.of("model")[-1]["via"] == "rollback"
        snap = wait_for(lambda: (s := status(config)).get("model_version") == "v1" and s)
        assert "runtime guard" in snap["last_update_error"]
        guard = snap["runtime_guard"]
        assert guard["trips"] == 1 and "v2-green" in guard["last_trip"]
        assert bad.manifest_sha256 in daemon.repo.rejected()
        assert daemon.repo.current_version() == "v1"
        assert not (daemon.repo.versions / "v2-green").exists()
        nan_frames = [e for e in events.of("classification") if e["model_version"] == "v2-green"]
        assert nan_frames and all(e["raw_score"] is None for e in nan_frames)
        # the pointer still names v2-green: later polls must not fetch it again
        checked = status(config)["update_last_check"]
        wait_for(lambda: status(config)["update_last_check"] > checked + 0.5)
        wait_for(lambda: any(e["model_version"] == "v1" for e in events.of("classification")[-3:]))
        assert [e["version"] for e in events.of("model")] == ["v1", "v2-green", "v1"]
        last = events.of("classification")[-1]
        assert last["model_version"] == "v1" and last["raw_label"] == "glass"
    finally:
        daemon.stop.set()
        thread.join(20)
    assert not thread.is_alive()


@pytest.mark.edge_numpy1
def test_nan_outputs_never_reach_json_status_events_or_live_view(
    make_config: Callable[..., RecyclopsConfig], tmp_path: Path
) -> None:
    """Guard off, a model that gives NaN on the scene: every JSON stays strict JSON."""
    frames = write_frames(tmp_path / "green", [GREEN] * 8)
    config = make_config(
        camera={"source": str(frames)},
        updates={"guard_frames": 0},
        live_view={"enabled": True, "port": 0},
    )
    store = open_store(config.store)
    publish_green_nan(store, "v-nan", tmp_path / "cloud")
    events = Events()
    daemon = EdgeDaemon(config, events=events)
    thread = start(daemon)
    try:
        wait_for(lambda: status(config).get("frames_classified", 0) >= 5)
        path = Path(config.edge.state_dir) / "status.json"
        wait_for(lambda: (strict_json(path.read_text()).get("current") or {}).get("raw_label"))
        text = path.read_text()
        assert "NaN" not in text and "Infinity" not in text
        snap = strict_json(text)
        assert snap["model_version"] == "v-nan"
        assert snap["current"]["score"] is None and snap["current"]["raw_score"] is None
        classified = events.of("classification")  # strict parse of every line
        assert classified and all(e["score"] is None for e in classified)
        port = daemon.live.server_address[1]  # type: ignore[union-attr]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/status.json")
        body = conn.getresponse().read()
        conn.close()
        assert b"NaN" not in body and strict_json(body)["current"]["score"] is None
    finally:
        daemon.stop.set()
        thread.join(20)


def test_mqtt_payloads_carry_null_for_nan(mqtt_config: MqttConfig) -> None:
    config = RecyclopsConfig.model_validate(
        {"mqtt": mqtt_config.model_dump(), "edge": {"device_id": "bin-n"}}
    )
    topic = messages.events_topic(mqtt_config.fleet, "bin-n")
    received: list[bytes] = []
    listener = MqttClient(mqtt_config)
    listener.subscribe(topic, lambda t, p: received.append(p))
    assert listener.start(wait=5)
    telemetry = Telemetry(config)
    telemetry.start(lambda t, p: None)

    def subscribed() -> bool:  # a probe comes back: the subscription is live
        listener.publish(topic, b"probe")
        return b"probe" in received

    try:
        assert telemetry.connected
        wait_for(subscribed)
        telemetry.event("classification", label="glass", score=float("nan"))
        telemetry.event("classification", label="glass", score=float("inf"))
        wait_for(lambda: len([p for p in received if p != b"probe"]) >= 2)
    finally:
        telemetry.stop(None)
        listener.stop()
    for payload in [p for p in received if p != b"probe"]:
        assert b"NaN" not in payload and b"Infinity" not in payload
        assert strict_json(payload)["score"] is None
        assert messages.parse_message(DeviceEvent, payload).score is None


@pytest.mark.edge_numpy1
def test_classify_json_writes_null_for_nan(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    model = (DATA / "nan_on_green.tflite").read_bytes()
    folder.mkdir()
    (folder / "model.tflite").write_bytes(model)
    (folder / "manifest.json").write_bytes(float_manifest("v-nan", model))
    image = write_frames(tmp_path / "img", [GREEN]) / "frame-0000.png"
    out = subprocess.run(
        [*CLI, "edge", "classify", "--model", str(folder), "--json", str(image)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    answer = strict_json(out.stdout)
    assert answer["score"] is None and set(answer["probabilities"].values()) == {None}
