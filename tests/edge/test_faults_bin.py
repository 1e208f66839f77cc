"""Faults a bin meets (issue 13, items 7-11 and follow-ups): a read-only spool, a camera that
cannot open or whose replay folder vanishes, a key press on a stale frame, a key map the
keypad cannot press, a missing bucket, a bad image in ``edge classify``. Real SeaweedFS,
mock GPIO pins, the replay camera; every wait is for a positive signal with a timeout."""

import contextlib
import itertools
import logging
import shutil
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from edge_helpers import (
    DATA,
    RED,
    Events,
    long_pulse,
    read_only,
    status,
    wait_for,
    writable,
    write_frames,
)
from PIL import Image

from recyclops.edge.camerawatch import EXIT_CAMERA_DOWN
from recyclops.edge.daemon import EdgeDaemon
from recyclops.edge.gathering import Gatherer
from recyclops.edge.notify import SystemdNotifier
from recyclops.edge.spool import Spool
from recyclops.shared.config import RecyclopsConfig
from recyclops.shared.errors import ConfigError
from recyclops.shared.store import S3Store

CLI = [sys.executable, "-m", "recyclops.app.cli"]


def run_daemon(daemon: EdgeDaemon) -> tuple[threading.Thread, dict[str, Any]]:
    """The daemon in a thread, keeping run()'s exit code."""
    result: dict[str, Any] = {}
    thread = threading.Thread(
        target=lambda: result.update(code=daemon.run(drain_seconds=5)), daemon=True
    )
    thread.start()
    return thread, result


def pre_gather(config: RecyclopsConfig, count: int) -> None:
    """Entries left in the spool by an earlier run (nothing else writes them now)."""
    spool = Spool(config.edge.spool_dir, 10**9, 1000)
    gatherer = Gatherer(config, spool)
    rng = np.random.default_rng(count)
    for _ in range(count):
        frame = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        gatherer.gather(frame, "glass", None, None, None)


def records(store: S3Store) -> list[str]:
    return list(store.list("gathered/"))


# ---- 7: a read-only spool -------------------------------------------------------------


def test_read_only_spool_refuses_gathers_and_the_uploader_tells_local_from_remote(
    make_config: Callable[..., RecyclopsConfig],
    s3_store: S3Store,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from gpiozero.pins.mock import MockFactory

    caplog.set_level(logging.INFO)
    config = make_config(keypad={"led_pin": 21})
    pre_gather(config, 2)
    spool_dir = Path(config.edge.spool_dir)
    factory = MockFactory()
    events = Events()
    with read_only(spool_dir):
        daemon = EdgeDaemon(config, store=s3_store, events=events, pin_factory=factory)
        tidies = []
        tidy = daemon.spool.tidy
        daemon.spool.tidy = lambda: (tidies.append(1), tidy())[1]  # type: ignore[method-assign]
        thread, _ = run_daemon(daemon)
        try:
            assert wait_for(lambda: events.of("spool_unwritable"))[0]["reason"]
            wait_for(lambda: len(records(s3_store)) == 2)  # uploads go on: the store is fine
            # The status file is written on the housekeeper's clock: wait for the one that
            # counts both uploads, not the first that shows the local error.
            snap = wait_for(
                lambda: (
                    (s := status(config)).get("spool_local_error")
                    and s.get("spool_uploaded_not_deleted") == 2
                    and s
                )
            )
            assert snap["upload_error"] is None and not snap["spool_writable"]
            assert snap["spool_depth"] == 0
            assert any("gathers refused" in r for r in snap["degraded"])
            wait_for(lambda: status(config).get("frames", 0) > 2)
            daemon.on_key("1")
            refused = wait_for(lambda: events.of("gather_refused"))
            assert refused[0]["reason"] == "spool_unwritable" and refused[0]["label"] == "cardboard"
            wait_for(lambda: long_pulse(factory.pin(21)), timeout=5)
            snap = wait_for(lambda: (s := status(config)).get("refused") == 1 and s)
            assert snap["refusals"] == {"spool_unwritable": 1} and snap["gathered"] == 0
            assert daemon.status.overlay()[2] == "SPOOL NOT WRITABLE"
            seen = len(tidies)
            wait_for(lambda: len(tidies) >= seen + 3)  # the uploader went round three times
            assert daemon.uploader.uploaded == 2  # ...and uploaded nothing twice
            messages = [r.getMessage() for r in caplog.records]
            assert not any("upload to the store failed" in m for m in messages)
            assert sum("gathers are refused until" in m for m in messages) == 1
            writable(spool_dir)  # the card is writable again: leftovers go, presses are kept
            wait_for(lambda: not list(spool_dir.glob("*.json")))
            daemon.on_key("2")
            wait_for(lambda: events.of("gathered"))
            wait_for(lambda: len(records(s3_store)) == 3)
            wait_for(lambda: (s := status(config))["spool_writable"] and not s["degraded"])
        finally:
            daemon.stop.set()
            thread.join(20)
    assert not thread.is_alive()


# ---- 8: a camera that cannot open ----------------------------------------------------


def test_dead_camera_runs_degraded_drains_the_spool_feeds_the_watchdog_then_exits(
    make_config: Callable[..., RecyclopsConfig], s3_store: S3Store, tmp_path: Path
) -> None:
    sock_path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    sock.settimeout(0.2)
    notifier = SystemdNotifier({"NOTIFY_SOCKET": sock_path, "WATCHDOG_USEC": "200000"})
    config = make_config(
        camera={
            "source": str(tmp_path / "no-such-camera"),
            "retry_min": 0.05,
            "retry_max": 0.3,
            "down_exit_seconds": 2.0,
        }
    )
    pre_gather(config, 2)
    events = Events()
    daemon = EdgeDaemon(config, store=s3_store, events=events, notifier=notifier)
    thread, result = run_daemon(daemon)
    received: list[str] = []
    try:
        assert wait_for(lambda: events.of("ready"))[0]["camera"] == "down"
        assert "does not exist" in events.of("camera_down")[0]["reason"]
        wait_for(lambda: len(records(s3_store)) == 2)  # the spool drains without a camera
        snap = wait_for(
            lambda: (s := status(config)).get("camera", {}).get("state") == "down" and s
        )
        assert snap["state"] == "running" and "does not exist" in snap["camera"]["reason"]
        assert any(r.startswith("camera down") for r in snap["degraded"])

        def pings() -> int:
            with contextlib.suppress(TimeoutError):
                received.append(sock.recv(4096).decode())
            return sum(m == "WATCHDOG=1" for m in received)

        wait_for(lambda: pings() >= 3)  # the loop is alive and says so while degraded
        daemon.on_key("1")  # no frame: refused, not silently dropped
        assert wait_for(lambda: events.of("gather_refused"))[0]["reason"] == "no_frame"
        thread.join(20)  # down for 2 s with the spool drained: exits for systemd to restart
        assert not thread.is_alive()
    finally:
        daemon.stop.set()
        thread.join(20)
        sock.close()
    assert result["code"] == EXIT_CAMERA_DOWN
    assert "spool is drained" in events.of("camera_gave_up")[0]["reason"]
    assert any(m.startswith("STATUS=") and "DEGRADED: camera down" in m for m in received)


# ---- 9: a key press on a stale frame ------------------------------------------------


def test_key_press_on_a_stale_frame_is_refused_with_the_signal(
    make_config: Callable[..., RecyclopsConfig],
) -> None:
    import time

    from gpiozero.pins.mock import MockFactory

    config = make_config(
        camera={"fps": 30, "at_end": "hold"}, keypad={"led_pin": 21, "max_frame_age": 0.3}
    )
    factory = MockFactory()
    events = Events()
    daemon = EdgeDaemon(config, events=events, pin_factory=factory)
    thread, _ = run_daemon(daemon)
    try:
        wait_for(lambda: events.of("camera_end"))  # frames stopped: the camera holds
        wait_for(lambda: time.monotonic() - daemon.latest_frame().mono > 0.5)  # type: ignore[union-attr]
        daemon.on_key("2")
        refused = wait_for(lambda: events.of("gather_refused"))
        assert refused[0]["reason"] == "stale_frame" and "old (bound 0.3s)" in refused[0]["detail"]
        wait_for(lambda: long_pulse(factory.pin(21)), timeout=5)
        snap = wait_for(lambda: (s := status(config)).get("refused") == 1 and s)
        assert snap["gathered"] == 0 and snap["spool_depth"] == 0
        assert snap["last_refusal"]["reason"] == "stale_frame"
    finally:
        daemon.stop.set()
        thread.join(20)
    assert not events.of("gathered")


# ---- 10: a replay folder deleted while running --------------------------------------


def test_deleted_replay_folder_backs_off_and_logs_once_per_state_change(
    make_config: Callable[..., RecyclopsConfig],
    frames_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import time

    caplog.set_level(logging.INFO)
    config = make_config(camera={"retry_min": 0.05, "retry_max": 0.4})
    events = Events()
    daemon = EdgeDaemon(config, events=events)
    opens: list[float] = []
    start = daemon.camera.start

    def timed_start() -> None:
        opens.append(time.monotonic())
        start()

    daemon.camera.start = timed_start  # type: ignore[method-assign]
    thread, _ = run_daemon(daemon)
    try:
        wait_for(lambda: status(config).get("frames", 0) > 3)
        shutil.rmtree(frames_dir)
        wait_for(lambda: status(config).get("camera", {}).get("state") == "down")
        wait_for(lambda: len(opens) >= 8, timeout=20)  # reopened again and again...
        gaps = [b - a for a, b in itertools.pairwise(opens[1:])]  # opens[0]: at start
        assert gaps[-1] > 3 * gaps[0] and max(gaps) < 0.4 * 1.2 + 0.3  # ...doubling, capped
        frames = status(config)["frames"]
        write_frames(frames_dir, [RED] * 4)  # the folder is back
        wait_for(lambda: events.of("camera_up"))
        wait_for(lambda: status(config)["frames"] > frames + 3)
        assert status(config)["camera"]["state"] == "ok"
    finally:
        daemon.stop.set()
        thread.join(20)
    camera_logs = [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and "camera" in r.name
    ]
    assert sum("camera down" in m for m in camera_logs) == 1, camera_logs
    assert sum("camera back" in m for m in camera_logs) == 1, camera_logs
    assert len(camera_logs) == 2, camera_logs
    assert len(events.of("camera_down")) == 1


# ---- 11: the key map against the keypad ---------------------------------------------

GPIO_17 = """
categories = [{cats}]

[edge.keypad]
kind = "gpio"
row_pins = [5, 6, 13, 19]
col_pins = [12, 16, 20, 21]
{extra}
"""


@pytest.mark.edge_numpy1
def test_key_map_is_checked_against_the_keypad(tmp_path: Path) -> None:
    cats = ", ".join(f'"c{i:02d}"' for i in range(17))
    bad = tmp_path / "bad.toml"
    bad.write_text(GPIO_17.format(cats=cats, extra=""))
    out = subprocess.run([*CLI, "config", "check", str(bad)], capture_output=True, text=True)
    assert out.returncode == 1, out.stderr
    assert "3 categories cannot be pressed" in out.stderr
    assert "c14 (key 'e'), c15 (key 'f'), c16 (key 'g')" in out.stderr
    assert "undo_key: 'u' is not on the gpio keypad" in out.stderr
    from recyclops.shared.config import load

    with pytest.raises(ConfigError, match="c16"):
        EdgeDaemon(load(bad, env={}))
    cats16 = ", ".join(f'"c{i:02d}"' for i in range(14))
    good = tmp_path / "good.toml"
    good.write_text(GPIO_17.format(cats=cats16, extra='undo_key = "#"\nkeys = {"*" = "c13"}'))
    ok = subprocess.run([*CLI, "config", "check", str(good)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr


# ---- follow-up a: a missing bucket ----------------------------------------------------


def test_missing_bucket_pauses_uploads_keeps_spooling_and_resumes_when_created(
    make_config: Callable[..., RecyclopsConfig], s3_server: Any
) -> None:
    bucket = f"missing-{uuid.uuid4().hex[:10]}"
    store = S3Store(bucket, "p", endpoint_url=s3_server.endpoint_url, region="us-east-1")
    config = make_config()
    pre_gather(config, 1)
    events = Events()
    daemon = EdgeDaemon(config, store=store, events=events)
    thread, _ = run_daemon(daemon)
    try:
        snap = wait_for(lambda: (s := status(config)).get("store_missing") and s)
        assert bucket in snap["store_missing"] and "does not exist" in snap["store_missing"]
        assert any(r.startswith("uploads paused") for r in snap["degraded"])
        wait_for(lambda: status(config).get("frames", 0) > 2)
        daemon.on_key("1")  # gathers still land in the spool
        wait_for(lambda: events.of("gathered"))
        checks = daemon.uploader.store_checks
        wait_for(lambda: daemon.uploader.store_checks >= checks + 2)  # looked again, twice
        assert status(config)["spool_depth"] == 2 and daemon.uploader.uploaded == 0
        store.client.create_bucket(Bucket=bucket)  # someone fixes it: uploads resume
        wait_for(lambda: len(list(store.list("gathered/"))) == 2)
        wait_for(lambda: status(config).get("store_missing", "x") is None)
    finally:
        daemon.stop.set()
        thread.join(20)


# ---- follow-up b: edge classify and a bad image ----------------------------------------


@pytest.mark.edge_numpy1
def test_classify_reports_a_bad_image_by_name_and_goes_on(tmp_path: Path) -> None:
    import io

    good = []
    for name in ("a", "c"):
        path = tmp_path / f"{name}.jpg"
        Image.fromarray(np.full((60, 80, 3), RED, np.uint8)).save(path)
        good.append(str(path))
    bomb = tmp_path / "b-bomb.png"
    buf = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buf, "PNG")
    bomb.write_bytes(buf.getvalue())
    paths = [good[0], str(bomb), good[1]]
    cmd = [*CLI, "edge", "classify", "--model", str(DATA), "--json", *paths]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert f"{bomb}: refused as a decompression bomb" in out.stderr
    assert "1 of 3 images failed" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stdout.splitlines()) == 2 and good[1] in out.stdout.splitlines()[1]
