"""The daemon on a real broker (retained status, last will, stats, events) and ``edge classify``."""

import json
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from edge_helpers import BLUE, DATA, GREEN, RED, install_fixture
from PIL import Image
from support.waiting import wait_until

from recyclops.edge.daemon import EdgeDaemon
from recyclops.shared import messages
from recyclops.shared.config import MqttConfig, RecyclopsConfig
from recyclops.shared.mqtt import MqttClient


def test_status_stats_and_events_over_mqtt(
    make_config: Callable[..., RecyclopsConfig], mqtt_config: MqttConfig, tmp_path: Path
) -> None:
    config = make_config(outputs={"background_category": None, "stable_frames": 2})
    config.mqtt = mqtt_config
    install_fixture(Path(config.edge.model_dir))
    got: dict[str, list[dict[str, Any]]] = {"status": [], "stats": [], "events": []}
    listener = MqttClient(mqtt_config)
    listener.subscribe(
        f"recyclops/{mqtt_config.fleet}/devices/+/+",
        lambda topic, payload: got[topic.rsplit("/", 1)[1]].append(json.loads(payload)),
    )
    assert listener.start(wait=5)
    daemon = EdgeDaemon(config)
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: got["stats"] and got["events"], 15, "stats and events")
        daemon.on_key("1")
        wait_until(lambda: any(e["kind"] == "gathered" for e in got["events"]), 10, "gathered")
    finally:
        daemon.stop.set()
        thread.join(20)
        try:
            wait_until(lambda: got["status"][-1:] and got["status"][-1]["state"] == "offline")
        finally:
            listener.stop()
    status = [messages.DeviceStatus.model_validate(s) for s in got["status"]]
    assert status[0].state == "online" and status[-1].state == "offline"
    assert any(s.model_version == "fixture-1" for s in status)
    stats = messages.DeviceStats.model_validate(got["stats"][-1])
    assert stats.fps > 0 and stats.model_version == "fixture-1" and stats.counts
    kinds = {messages.DeviceEvent.model_validate(e).kind for e in got["events"]}
    assert {"model_accepted", "classification", "gathered"} <= kinds


@pytest.mark.edge_numpy1
def test_edge_classify_prints_answers(tmp_path: Path) -> None:
    paths = []
    for name, colour in (("red", RED), ("green", GREEN), ("blue", BLUE)):
        path = tmp_path / f"{name}.jpg"
        Image.fromarray(np.full((60, 80, 3), colour, np.uint8)).save(path)
        paths.append(str(path))
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    cmd = [sys.executable, "-m", "recyclops.app.cli", "edge", "classify", "--model", str(DATA)]
    out = subprocess.run([*cmd, "--json", *paths], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    answers = [json.loads(line) for line in out.stdout.splitlines()]
    assert [a["label"] for a in answers] == ["cardboard", "glass", "metal"]
    assert answers[0]["model_version"] == "fixture-1" and len(answers[0]["probabilities"]) == 6
    bad = subprocess.run(
        [*cmd, str(tmp_path / "broken.jpg")], capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 1 and "cannot decode" in bad.stderr
    none = subprocess.run(
        [*cmd[:-2], "--model", str(tmp_path), paths[0]], capture_output=True, text=True, timeout=60
    )
    assert none.returncode == 1 and "no model" in none.stderr
