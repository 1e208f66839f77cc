"""The daemon half of tests/benchmarks/bench_edge.py: memory of a running daemon and model
update latency (publish → serving) by MQTT and by polling, on a real mosquitto."""

import json
import shutil
import signal
import statistics
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


class DaemonProc:
    def __init__(self, python: str, config: Path) -> None:
        self.log = open(config.parent / "daemon.log", "w")  # noqa: SIM115
        cmd = [
            python,
            "-m",
            "recyclops.app.cli",
            "edge",
            "run",
            "--config",
            str(config),
            "--jsonl",
            "-q",
        ]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=self.log, stdin=subprocess.DEVNULL, text=True
        )
        self.events: list[tuple[float, dict[str, Any]]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.events.append((time.time(), json.loads(line)))

    def wait(self, kind: str, timeout: float, **match: Any) -> float | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for t, e in list(self.events):
                if e["event"] == kind and all(e.get(k) == v for k, v in match.items()):
                    return t
            time.sleep(0.01)
        return None

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def daemon_config(work: Path, store_url: str, mqtt: dict[str, Any] | None, poll: float) -> Path:
    import tomli_w
    from edge_helpers import write_frames

    frames = write_frames(
        work / "frames", [(200, 40, 40), (40, 200, 40), (40, 40, 200)] * 4, size=(640, 480)
    )
    data: dict[str, Any] = {
        "store": {"url": store_url},
        "edge": {
            "model_dir": str(work / "models"),
            "spool_dir": str(work / "spool"),
            "state_dir": str(work / "state"),
            "camera": {"kind": "replay", "source": str(frames), "fps": 15, "at_end": "loop"},
            # the benchmark's models (tests/benchmarks/bench_edge.py) carry no golden set yet
            "updates": {
                "poll_seconds": poll,
                "poll_seconds_connected": 3600,
                "jitter_seconds": 0,  # the update path itself, not the fleet's spread
                "require_golden": False,
            },
            "live_view": {"enabled": True, "port": 0},
        },
    }
    if mqtt:
        data["mqtt"] = mqtt
    path = work / "edge.toml"
    path.write_text(tomli_w.dumps(data))
    return path


def publish(store: Any, version: str, src: Path, client: Any = None, fleet: str = "bench") -> float:
    """As the cloud does: files, pointer last, then the retained notice. Returns publish time."""
    from recyclops.shared import layout, messages
    from recyclops.shared.hashing import sha256_bytes
    from recyclops.shared.manifest import ModelRef, parse_manifest

    manifest = json.loads((src / "manifest.json").read_text())
    manifest["version"] = version
    raw = json.dumps(manifest).encode()
    parse_manifest(raw)
    started = time.time()
    store.put(layout.model_file_key(version, "model.tflite"), src / "model.tflite")
    store.put(layout.manifest_key(version), raw)
    notice = ModelRef(
        channel="stable",
        version=version,
        manifest_key=layout.manifest_key(version),
        manifest_sha256=sha256_bytes(raw),
        published_at=datetime.now(UTC),
    )
    store.put(
        layout.channel_key("stable"),
        notice.pointer_json(),
    )
    if client is not None:
        client.publish(
            messages.model_topic(fleet, "stable"), notice.notice_payload(), retain=True, wait=5
        )
    return started


def bench_daemon(python: str, model_dir: Path, work: Path, quick: bool) -> dict[str, Any]:
    from support import devservers

    from recyclops.shared.config import MqttConfig
    from recyclops.shared.mqtt import MqttClient
    from recyclops.shared.store import LocalStore

    for old in ("d-mqtt", "d-poll", "store-mqtt", "store-poll", "mosquitto"):
        shutil.rmtree(work / old, ignore_errors=True)
    results: dict[str, Any] = {"mqtt": [], "poll": []}
    rounds = 2 if quick else 4
    with devservers.mosquitto(work / "mosquitto") as broker:
        mqtt = {"host": broker.host, "port": broker.port, "fleet": "bench"}
        store = LocalStore(work / "store-mqtt")
        publish(store, "v0", model_dir)
        daemon = DaemonProc(python, daemon_config(work / "d-mqtt", store.url, mqtt, poll=3600))
        client = MqttClient(MqttConfig(**mqtt))
        client.start(wait=5)
        try:
            assert daemon.wait("model", 120, version="v0"), "daemon never served v0"
            time.sleep(5 if quick else 15)  # warm, running, classifying
            results["rss_mb"] = daemon.rss_mb()
            for i in range(1, rounds + 1):
                t0 = publish(store, f"m{i}", model_dir, client)
                t1 = daemon.wait("model", 60, version=f"m{i}")
                results["mqtt"].append(t1 - t0 if t1 else float("nan"))
            results["rss_mb_after_updates"] = daemon.rss_mb()
        finally:
            client.stop()
            daemon.stop()
    poll = 2.0
    store = LocalStore(work / "store-poll")
    publish(store, "v0", model_dir)
    daemon = DaemonProc(python, daemon_config(work / "d-poll", store.url, None, poll=poll))
    try:
        assert daemon.wait("model", 120, version="v0"), "daemon never served v0"
        for i in range(1, rounds + 1):
            time.sleep(0.7 * i % poll)  # land at different points of the poll cycle
            t0 = publish(store, f"p{i}", model_dir)
            t1 = daemon.wait("model", 60, version=f"p{i}")
            results["poll"].append(t1 - t0 if t1 else float("nan"))
    finally:
        daemon.stop()
    results["poll_seconds"] = poll
    return results


def daemon_report(
    daemon: dict[str, Any], python: str
) -> tuple[dict[str, Any], dict[str, float], str]:
    """bench_daemon's results as bench_edge.py's table, figures and a note (kept beside what
    measures them, so bench_edge.py stays under 400 lines)."""
    figures = {
        "daemon_rss_mb": round(daemon["rss_mb"], 1),
        "daemon_rss_mb_after_updates": round(daemon["rss_mb_after_updates"], 1),
        "update_latency_mqtt_s_median": round(statistics.median(daemon["mqtt"]), 2),
        "update_latency_poll_s_median": round(statistics.median(daemon["poll"]), 2),
    }
    poll = f"update publish→serving, polling every {daemon['poll_seconds']:.0f} s (s, median)"
    table = {
        "caption": "Daemon (recyclops edge run, replay camera 15 fps, live view on, "
        "int8 MobileNetV2)",
        "headers": ["measure", "value", "target"],
        "rows": [
            ["RSS while running (MB)", figures["daemon_rss_mb"], "< 150"],
            ["RSS after updates (MB)", figures["daemon_rss_mb_after_updates"], "< 150"],
            [
                "update publish→serving, MQTT (s, median)",
                figures["update_latency_mqtt_s_median"],
                "< 5",
            ],
            [poll, figures["update_latency_poll_s_median"], "≤ poll interval + install"],
        ],
    }
    note = (
        f"update rounds (s): MQTT {[round(x, 2) for x in daemon['mqtt']]}, "
        f"polling {[round(x, 2) for x in daemon['poll']]}; daemon interpreter {python}"
    )
    return table, figures, note
