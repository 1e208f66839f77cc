"""The daemon as users run it: ``recyclops edge run`` in a subprocess, keys on its stdin,
events on its stdout; SIGTERM stops it cleanly, SIGKILL mid-upload loses and doubles nothing."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from edge_helpers import BLUE, GREEN, RED, install_fixture, publish_model, write_frames
from support.devservers import TcpProxy
from support.waiting import wait_until

from recyclops.shared.store import LocalStore, S3Store


def recyclops() -> list[str]:
    return [sys.executable, "-m", "recyclops.app.cli"]


class Daemon:
    """A running ``recyclops edge run``; stdout JSON events collected by a thread."""

    def __init__(self, config: Path, env: dict[str, str] | None = None, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [
                *recyclops(),
                "edge",
                "run",
                "--config",
                str(config),
                "--jsonl",
                "--keypad",
                "terminal",
                *extra,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.events: list[dict[str, Any]] = []
        self.stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=lambda: self.stderr.extend(self.proc.stderr), daemon=True).start()  # type: ignore[arg-type]

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.events.append(json.loads(line))

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in list(self.events) if e["event"] == kind]

    def wait_event(self, kind: str, count: int = 1, timeout: float = 20) -> list[dict[str, Any]]:
        def seen() -> list[dict[str, Any]]:
            if len(self.of(kind)) < count and self.proc.poll() is not None:
                raise AssertionError(f"the daemon exited ({self.proc.returncode})")
            return self.of(kind) if len(self.of(kind)) >= count else []

        try:
            return wait_until(seen, timeout, f"{count} {kind} event(s)")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; stderr:\n{''.join(self.stderr)[-3000:]}") from None

    def key(self, key: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(key + "\n")
        self.proc.stdin.flush()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


def write_config(path: Path, tmp: Path, store: dict[str, Any], frames: Path, **edge: Any) -> Path:
    data = {
        "store": store,
        "edge": {
            "device_id": "bin-p",
            "model_dir": str(tmp / "models"),
            "spool_dir": str(tmp / "spool"),
            "state_dir": str(tmp / "state"),
            "camera": {"kind": "replay", "source": str(frames), "fps": 10, "at_end": "loop"},
            "classifier": {"threads": 1},
            "spool": {"retry_min": 0.2, "retry_max": 1.0},
            "updates": {"poll_seconds": 0.5},
            "live_view": {"enabled": False},
            "status": {"file_seconds": 0.3},
            **edge,
        },
    }
    path.write_text(tomli_w.dumps(data))
    return path


@pytest.mark.edge_numpy1
def test_run_with_terminal_keys_and_sigterm(tmp_path: Path) -> None:
    frames = write_frames(tmp_path / "frames", [RED] * 3 + [GREEN] * 3 + [BLUE] * 3)
    store = LocalStore(tmp_path / "store")
    publish_model(store, "v1")
    config = write_config(tmp_path / "edge.toml", tmp_path, {"url": store.url}, frames)
    daemon = Daemon(config)
    try:
        daemon.wait_event("ready")
        assert daemon.wait_event("model")[0]["version"] == "v1"
        daemon.wait_event("classification", 5)
        daemon.key("3")  # metal
        gathered = daemon.wait_event("gathered")[0]
        assert gathered["label"] == "metal"
        wait_until(lambda: list(store.list("gathered/")), 10, "the gather uploaded")
        daemon.proc.send_signal(signal.SIGTERM)
        assert daemon.proc.wait(15) == 0
    finally:
        daemon.kill()
    assert daemon.of("stopped")
    status = json.loads((tmp_path / "state" / "status.json").read_text())
    assert (
        status["state"] == "stopped" and status["gathered"] == 1 and status["model_version"] == "v1"
    )
    keys = list(store.list("gathered/"))
    assert len(keys) == 1 and gathered["sha256"] in keys[0]


def test_sigkill_mid_upload_then_restart_loses_and_doubles_nothing(
    tmp_path: Path, s3_server: Any, s3_url: str
) -> None:
    port = int(s3_server.endpoint_url.rsplit(":", 1)[1])
    proxy = TcpProxy(port, delay=0.4).start()  # every upload is slow: the kill lands mid-upload
    colours = [(i * 9 % 256, 255 - i * 7 % 256, i * 13 % 256) for i in range(30)]
    frames = write_frames(tmp_path / "frames", colours)
    install_fixture(tmp_path / "models")
    store_cfg = {
        "url": s3_url,
        "endpoint_url": proxy.url,
        "region": "us-east-1",
        "max_attempts": 1,
        "connect_timeout": 2,
        "read_timeout": 5,
    }
    config = write_config(
        tmp_path / "edge.toml",
        tmp_path,
        store_cfg,
        frames,
        camera={"kind": "replay", "source": str(frames), "fps": 20, "at_end": "loop"},
        # operator gathers only: automatic captures of the same frames are their own records
        capture={"enabled": False},
    )
    bucket, _, prefix = s3_url.removeprefix("s3://").partition("/")
    direct = S3Store(bucket, prefix, endpoint_url=s3_server.endpoint_url, region="us-east-1")
    first = Daemon(config)
    try:
        first.wait_event("classification")  # frames are flowing
        for i in range(6):
            first.key(str(1 + i % 6))
            first.wait_event("gathered", i + 1)
            seen = len(first.of("classification"))  # a new frame for each press:
            wait_until(lambda n=seen: len(first.of("classification")) > n, 10, "a new frame")
        gathered = first.wait_event("gathered", 6)
        wait_until(lambda: list(direct.list("images/")), 20, "an upload started (an image in S3)")
    finally:
        first.kill()  # SIGKILL
    pending = sorted(p.name for p in (tmp_path / "spool").glob("*.json"))
    assert pending, "everything was uploaded before the kill; the test proves nothing"
    proxy.delay = 0.0
    second = Daemon(config)
    try:
        second.wait_event("ready")
        wait_until(lambda: not list((tmp_path / "spool").glob("*.json")), 30, "the spool drained")
        second.proc.send_signal(signal.SIGTERM)
        assert second.proc.wait(15) == 0
    finally:
        second.kill()
        proxy.stop()
    pressed = {e["sha256"] for e in gathered}
    records = {json.loads(direct.get(k))["sha256"] for k in direct.list("gathered/")}
    assert len(list(direct.list("gathered/"))) == len(pressed)  # nothing doubled
    assert records == pressed  # nothing lost
    assert {k.split("/")[-1].removesuffix(".jpg") for k in direct.list("images/")} == pressed


@pytest.mark.edge_numpy1
def test_demo_mode_classifies_every_replayed_frame_then_exits(tmp_path: Path) -> None:
    """What ``make demo`` runs: replay once (stop at the end), wait for the published model,
    a key on stdin, no MQTT, a file:// store; the daemon exits 0 by itself."""
    frames = write_frames(tmp_path / "frames", [RED] * 4 + [GREEN] * 4 + [BLUE] * 4)
    store = LocalStore(tmp_path / "store")
    publish_model(store, "demo-1")
    config = write_config(tmp_path / "edge.toml", tmp_path, {"url": store.url}, frames)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    sock.settimeout(10)
    daemon = Daemon(
        config,
        {"NOTIFY_SOCKET": str(tmp_path / "notify.sock")},
        "--camera-folder",
        str(frames),
        "--fps",
        "8",
        "--at-end",
        "stop",
        "--wait-model",
        "30",
        "--no-live-view",
    )
    try:
        assert sock.recv(4096).startswith(b"READY=1")  # systemd's notify protocol
        daemon.wait_event("classification")
        daemon.key("1")
        assert daemon.proc.wait(60) == 0
    finally:
        daemon.kill()
        sock.close()
    classified = daemon.of("classification")
    assert len(classified) == 12 and len({e["source"] for e in classified}) == 12
    assert all(e["model_version"] == "demo-1" for e in classified)
    truth = ["cardboard"] * 4 + ["glass"] * 4 + ["metal"] * 4
    assert [e["raw_label"] for e in sorted(classified, key=lambda e: e["frame"])] == truth
    assert daemon.of("camera_end") and daemon.of("gathered")[0]["label"] == "cardboard"
    assert len(list(store.list("gathered/"))) == 1
    status = json.loads((tmp_path / "state" / "status.json").read_text())
    assert status["state"] == "stopped" and status["frames_classified"] == 12
