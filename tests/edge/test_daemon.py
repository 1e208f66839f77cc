"""The daemon in-process: replay camera, LocalStore, polling updates, key presses, status file,
sd_notify (a real datagram socket) and the live view (a real HTTP client reading MJPEG)."""

import contextlib
import http.client
import io
import itertools
import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from edge_helpers import Events, publish_model, start, status, wait_for
from PIL import Image

from recyclops.edge.daemon import EdgeDaemon
from recyclops.edge.notify import SystemdNotifier
from recyclops.shared.config import RecyclopsConfig
from recyclops.shared.records import GatheredRecord
from recyclops.shared.store import open_store

pytestmark = pytest.mark.edge_numpy1


def test_daemon_updates_by_polling_classifies_and_gathers_once(
    make_config: Callable[..., RecyclopsConfig],
) -> None:
    config = make_config()
    store = open_store(config.store)
    events = Events()
    daemon = EdgeDaemon(config, events=events)
    thread = start(daemon)
    try:
        wait_for(lambda: status(config).get("frames", 0) > 3)
        assert status(config)["model_version"] is None  # runs, and gathers, without a model
        publish_model(store, "v1")
        wait_for(lambda: status(config).get("frames_classified", 0) >= 20)
        snap = status(config)
        assert snap["model_version"] == "v1" and snap["model_backend"]
        assert {"cardboard", "glass", "metal"} <= set(snap["counts"])
        preds = snap["last_predictions"]
        assert preds and all(p["model_version"] == "v1" for p in preds)
        for p in preds:  # the replayed colour decides the answer (raw, before smoothing)
            index = int(Path(p["source"]).stem.split("-")[1])
            assert p["raw_label"] == ["cardboard", "glass", "metal"][index // 6]
        daemon.on_key("2")  # glass
        # on_key gathered synchronously: once the uploader has uploaded one entry and the
        # spool is empty, the store holds everything there will be
        wait_for(lambda: daemon.uploader.uploaded and not daemon.spool.depth(), what="upload done")
        keys = list(store.list("gathered/"))
        assert len(keys) == 1 and len(list(store.list("images/"))) == 1
        record = GatheredRecord.model_validate_json(store.get(keys[0]))
        assert (
            record.label == "glass" and record.model_version == "v1" and record.device == "bin-01"
        )
        assert record.prediction in ("cardboard", "glass", "metal", "unsure")
        daemon.on_key("nonsense")
    finally:
        daemon.stop.set()
        thread.join(20)
    assert not thread.is_alive()
    kinds = {e["event"] for e in events.lines()}
    assert {"ready", "model", "classification", "gathered", "unknown_key", "stopped"} <= kinds
    assert events.of("model")[0]["version"] == "v1" and events.of("model")[0]["via"] == "poll"
    assert status(config)["state"] == "stopped" and status(config)["spool_depth"] == 0


def test_watchdog_is_fed_only_while_frames_arrive(
    make_config: Callable[..., RecyclopsConfig], tmp_path: Path
) -> None:
    sock_path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    sock.settimeout(0.2)
    notifier = SystemdNotifier({"NOTIFY_SOCKET": sock_path, "WATCHDOG_USEC": "100000"})
    config = make_config(camera={"fps": 20, "at_end": "hold"})  # 18 frames, then the camera stalls
    daemon = EdgeDaemon(config, notifier=notifier)
    thread = start(daemon)
    received: list[tuple[float, str]] = []

    def status_goes_on_unpinged() -> bool:
        """Ten STATUS updates (0.2 s apart) since the last watchdog ping, frames over."""
        with contextlib.suppress(TimeoutError):
            received.append((time.monotonic(), sock.recv(4096).decode()))
        after = list(itertools.takewhile(lambda r: r[1] != "WATCHDOG=1", reversed(received)))
        return daemon.camera_ended and sum(m.startswith("STATUS=") for _, m in after) >= 10

    try:
        wait_for(status_goes_on_unpinged, 20)
    finally:
        daemon.stop.set()
        thread.join(20)
        sock.close()
    messages = [m for _, m in received]
    assert any(m.startswith("READY=1") for m in messages)
    assert any(m.startswith("STATUS=") for m in messages)
    pings = [t for t, m in received if m == "WATCHDOG=1"]
    assert len(pings) >= 5, messages
    assert daemon.camera_ended
    last_ping = max(i for i, (_, m) in enumerate(received) if m == "WATCHDOG=1")
    quiet = [m for _, m in received[last_ping + 1 :]]  # no ping after the frames stopped,
    assert sum(m.startswith("STATUS=") for m in quiet) >= 10  # yet status went on (>= 1.8 s)


def read_mjpeg_parts(port: int, count: int) -> list[bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/stream.mjpg")
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.getheader("Content-Type").startswith("multipart/x-mixed-replace; boundary=")
    parts: list[bytes] = []
    while len(parts) < count:
        line = resp.fp.readline()
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
            resp.fp.readline()
            parts.append(resp.fp.read(length))
    conn.close()
    return parts


def test_live_view_streams_mjpeg_with_overlay_and_flash(
    make_config: Callable[..., RecyclopsConfig],
) -> None:
    config = make_config(live_view={"enabled": True, "port": 0, "fps": 20, "width": 320})
    publish_model(open_store(config.store), "v1")
    daemon = EdgeDaemon(config)
    thread = start(daemon)
    try:
        wait_for(lambda: status(config).get("frames_classified", 0) > 5)
        port = daemon.live.server_address[1]  # type: ignore[union-attr]
        parts = read_mjpeg_parts(port, 3)
        images = [np.asarray(Image.open(io.BytesIO(p)).convert("RGB")) for p in parts]
        assert all(img.shape[1] == 320 for img in images)
        corner = images[-1][3, 3]
        assert corner.max() < 60  # the dark prediction banner, no flash
        daemon.on_key("1")
        flashed = np.asarray(Image.open(io.BytesIO(read_mjpeg_parts(port, 2)[-1])).convert("RGB"))
        assert flashed[3, 3].min() > 200  # white border: a frame was gathered
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/")
        page = conn.getresponse().read().decode()
        assert "/stream.mjpg" in page
        conn.request("GET", "/status.json")
        live_status = json.loads(conn.getresponse().read())
        assert live_status["model_version"] == "v1" and live_status["gathered"] == 1
        conn.request("GET", "/nope")
        assert conn.getresponse().status == 404
        conn.close()
        assert daemon.live.server_address[0] == "127.0.0.1"  # type: ignore[union-attr]
    finally:
        daemon.stop.set()
        thread.join(20)


def test_preview_overlay_is_transparent_except_the_drawing() -> None:
    from recyclops.edge.liveview import preview_overlay

    layer = preview_overlay(
        (320, 240), ["1:glass  u:undo"], {"label": "glass", "score": 0.9}, flash=False
    )
    assert layer.shape == (240, 320, 4)
    assert layer[120, 160, 3] == 0  # the middle of the picture is see-through
    assert layer[..., 3].max() == 255  # text and banner are opaque


def test_spool_full_refuses_and_signals_the_operator(
    make_config: Callable[..., RecyclopsConfig],
) -> None:
    from gpiozero.pins.mock import MockFactory
    from support.devservers import free_port

    from recyclops.shared.store import S3Store

    config = make_config(
        spool={"max_items": 1}, keypad={"led_pin": 21}, live_view={"enabled": True, "port": 0}
    )
    offline = S3Store(
        "bucket",
        "p",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        region="us-east-1",
        max_attempts=1,
        connect_timeout=0.5,
    )
    factory = MockFactory()
    events = Events()
    daemon = EdgeDaemon(config, store=offline, events=events, pin_factory=factory)
    thread = start(daemon)
    try:
        wait_for(lambda: status(config).get("frames", 0) > 2)
        daemon.on_key("1")
        time.sleep(0.1)
        daemon.on_key("2")  # the spool holds one item: refused
        snap = wait_for(lambda: (s := status(config)).get("refused") == 1 and s)
        led = factory.pin(21)

        def long_pulse() -> bool:  # a refusal blinks 0.3 s, a kept gather 0.1 s
            # mock pin states hold the time since the previous change: b.timestamp is a's length
            states = list(led.states)
            return any(
                a.state and not b.state and b.timestamp > 0.25
                for a, b in itertools.pairwise(states)
            )

        wait_for(long_pulse, timeout=5)
        assert snap["spool_full"] and snap["gathered"] == 1 and snap["spool_depth"] == 1
        assert snap["upload_error"]  # the store is unreachable and that is visible
        assert daemon.status.overlay()[2] == "SPOOL FULL"
        assert [e["label"] for e in events.of("spool_full")] == ["glass"]
    finally:
        daemon.stop.set()
        thread.join(20)
    # the gather is kept for later (beside the last telemetry period, which is spooled too)
    assert len(list(Path(config.edge.spool_dir).glob("[0-9]*.json"))) == 1


def test_bad_update_is_rejected_while_the_old_model_keeps_classifying(
    make_config: Callable[..., RecyclopsConfig],
) -> None:
    from edge_helpers import DATA, honest_manifest

    config = make_config()
    store = open_store(config.store)
    publish_model(store, "v1")
    events = Events()
    daemon = EdgeDaemon(config, events=events)
    thread = start(daemon)
    try:
        wait_for(lambda: status(config).get("model_version") == "v1")
        model = (DATA / "model.tflite").read_bytes()
        publish_model(
            store, "v2-bad", manifest=honest_manifest("v2-bad", model, categories=list("abcdef"))
        )
        rejected = wait_for(lambda: events.of("model_rejected"))
        assert rejected[0]["version"] == "v2-bad" and "categories" in rejected[0]["reason"]
        before = status(config)["frames_classified"]
        wait_for(lambda: status(config)["frames_classified"] > before + 10)  # still classifying
        snap = status(config)
        assert snap["model_version"] == "v1" and "v2-bad" in snap["last_update_error"]
        assert all(p["model_version"] == "v1" for p in snap["last_predictions"])
        assert [e["version"] for e in events.of("model")] == ["v1"]
    finally:
        daemon.stop.set()
        thread.join(20)


def test_stop_drains_the_spool_before_the_uploader_stops(
    make_config: Callable[..., RecyclopsConfig],
) -> None:
    """SIGTERM right after a key press: the gather is uploaded during the drain, not left
    for the next start (the uploader has its own stop, set only after the drain)."""
    config = make_config()
    store = open_store(config.store)
    daemon = EdgeDaemon(config, events=Events())
    slow_put = daemon.store.put

    def put(key: str, data: Any, **kw: Any) -> bool:
        time.sleep(0.4)  # a slow uplink: the upload is still running when the stop comes
        return slow_put(key, data, **kw)

    daemon.uploader.store = type("Slow", (), {"put": staticmethod(put), "get": daemon.store.get})()
    thread = start(daemon)
    try:
        wait_for(lambda: status(config).get("frames", 0) > 3)
        daemon.on_key("1")
        daemon.stop.set()  # what the SIGTERM handler does
        thread.join(20)
    finally:
        daemon.stop.set()
        thread.join(20)
    assert len([k for k in store.list("gathered/")]) == 1
    assert status(config)["spool_depth"] == 0
