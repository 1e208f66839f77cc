"""The CPU job image trains the tiny configuration against S3 and MQTT on the host.

`recyclops-job all` (what `make train` runs) inside the container: setup pulls the reviewed
images from SeaweedFS, train fits and converts the tiny model, publish uploads it, moves the
channel pointer and sends the retained MQTT notice. The test then reads the store and the
broker from the host. `make container-test` only; minutes.
"""

import json
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from support.devservers import MqttBroker, S3Server, free_port
from support.synthetic import shapes
from support.waiting import wait_until

from recyclops.shared import layout
from recyclops.shared.config import MqttConfig, RecyclopsConfig, StoreConfig, load
from recyclops.shared.hashing import sha256_bytes
from recyclops.shared.journals import Decision, dump_journal
from recyclops.shared.manifest import ModelRef, parse_manifest, parse_pointer
from recyclops.shared.messages import (
    DeviceStatus,
    model_topic,
    parse_message,
    status_topic,
)
from recyclops.shared.records import GatheredRecord
from recyclops.shared.store import ObjectStore, open_store

from .engine import ROOT, Engine
from .test_images import s3_env

pytestmark = [pytest.mark.container, pytest.mark.slow]


def seed_reviewed(store: ObjectStore, categories: list[str], per_class: int) -> int:
    """Gathered records for synthetic images and one review session labelling them all."""
    now = datetime.now(UTC)
    decisions = []
    images = shapes(categories, per_class, seed=7)
    for name, jpegs in images.items():
        for jpeg in jpegs:
            sha = sha256_bytes(jpeg)
            store.put(layout.image_key(sha), jpeg, if_absent=True)
            record = GatheredRecord(sha256=sha, label=name, device="bin-ct", captured_at=now)
            key = layout.gathered_key("bin-ct", now.date(), sha)
            store.put(key, record.model_dump_json().encode(), if_absent=True)
            decisions.append(
                Decision(
                    sha256=sha,
                    session="ct-review",
                    seq=len(decisions),
                    label=name,
                    time=now + timedelta(seconds=len(decisions)),
                    reviewer="container-test",
                )
            )
    store.put(layout.labels_key("ct-review"), dump_journal(decisions))
    return len(decisions)


def wait_message(
    config: MqttConfig, topic: str, accept: Callable[[bytes], bool], timeout: float = 10
) -> bytes | None:
    """The first payload on ``topic`` (retained ones included) that ``accept`` takes."""
    got: list[bytes] = []
    done = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"ct-{uuid.uuid4().hex[:8]}")

    def on_message(c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        if accept(msg.payload):
            got.append(msg.payload)
            done.set()

    client.on_message = on_message
    client.on_connect = lambda c, *a: c.subscribe(topic, qos=1)
    assert config.host is not None
    client.connect(config.host, config.port)
    client.loop_start()
    try:
        done.wait(timeout)
    finally:
        client.loop_stop()
        client.disconnect()
    return got[0] if got else None


@dataclass
class Published:
    store: ObjectStore
    env: dict[str, str]
    configs: Path
    config: RecyclopsConfig
    mqtt: MqttConfig
    mounts: tuple[str, ...]
    seeded: int
    took: float


@pytest.fixture(scope="module")
def published(
    engine: Engine,
    cloud_image: str,
    s3_server: S3Server,
    mqtt_broker: MqttBroker,
    artifacts_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Published:
    """Seed the store, then run `recyclops-job all` (what `make train` runs) in the image."""
    url = f"s3://{s3_server.bucket}/ct-{uuid.uuid4().hex[:10]}"
    store = open_store(StoreConfig(url=url, endpoint_url=s3_server.endpoint_url))
    mqtt_config = MqttConfig(
        host=mqtt_broker.host, port=mqtt_broker.port, fleet=f"ct{uuid.uuid4().hex[:8]}"
    )
    # The tiny configuration with three colour categories the synthetic images can teach.
    configs = tmp_path_factory.mktemp("config")
    configs.chmod(0o755)  # read by the containers' non-root user
    tiny = (ROOT / "cloud" / "configs" / "tiny.toml").read_text()
    (configs / "ct.toml").write_text('categories = ["red", "green", "blue"]\n' + tiny)
    (configs / "ct.toml").chmod(0o644)
    config = load(configs / "ct.toml")
    seeded = seed_reviewed(store, config.category_names, per_class=40)
    env = {
        **s3_env(s3_server, url),
        "RECYCLOPS_CONFIG": "/config/ct.toml",
        "RECYCLOPS_MQTT__HOST": str(mqtt_config.host),
        "RECYCLOPS_MQTT__PORT": str(mqtt_config.port),
        "RECYCLOPS_MQTT__FLEET": mqtt_config.fleet,
        "RECYCLOPS_CHANNEL": "stable",
    }
    # Named volumes for /data and /runs, as compose.yaml gives the jobs: the non-root user
    # must be able to write them.
    volumes = {"/data": engine.volume(), "/runs": engine.volume()}
    mounts = tuple(a for path, vol in volumes.items() for a in ("-v", f"{vol}:{path}"))
    start = time.monotonic()
    out = engine.run(
        cloud_image,
        "all",
        env=env,
        timeout=1500,
        options=("-v", f"{configs}:/config:ro", *mounts),
    )
    took = time.monotonic() - start
    (artifacts_dir / "containers" / "job-all.log").write_text(out.stdout + out.stderr)
    assert out.returncode == 0, (out.stdout + out.stderr)[-5000:]
    return Published(store, env, configs, config, mqtt_config, mounts, seeded, took)


def test_the_job_image_trains_and_publishes_the_tiny_model(
    engine: Engine, cloud_image: str, published: Published
) -> None:
    store, config, mqtt_config = published.store, published.config, published.mqtt
    print(f"recyclops-job all in the container: {published.took:.0f} s, {published.seeded} images")

    # The channel pointer names a complete, verified version.
    pointer = parse_pointer(store.get(layout.channel_key("stable")))
    manifest_bytes = store.get(pointer.manifest_key)
    assert sha256_bytes(manifest_bytes) == pointer.manifest_sha256
    manifest = parse_manifest(manifest_bytes)
    assert manifest.categories == config.category_names
    assert manifest.metrics.test_images > 0 and manifest.metrics.int8_accuracy is not None
    for entry in manifest.files:
        data = store.get(layout.model_file_key(pointer.version, entry.name))
        assert sha256_bytes(data) == entry.sha256, entry.name

    # The run stays in the runs volume (TensorBoard's logdir), the data set in the data one.
    listing = engine.run(
        cloud_image,
        "-c",
        "find /runs /data -maxdepth 3 | sort",
        options=("--entrypoint", "sh", *published.mounts),
        network="none",
    ).stdout.split()
    run = f"/runs/{pointer.version}"
    assert {f"{run}/gate.json", f"{run}/history.csv", f"{run}/tensorboard"} <= set(listing)
    assert "/data/dataset/dataset.json" in listing

    # The fleet heard about it: the retained notice on the channel's topic.
    notice = wait_message(mqtt_config, model_topic(mqtt_config.fleet, "stable"), lambda p: True)
    assert notice is not None, "no retained model notice"
    message = parse_message(ModelRef, notice)
    assert (message.version, message.manifest_sha256) == (pointer.version, pointer.manifest_sha256)


def test_the_edge_container_installs_the_published_model(
    engine: Engine, edge_image: str, published: Published, tmp_path: Path
) -> None:
    """The simulated bin (compose's `edge`): replays a folder, follows the channel."""
    version = parse_pointer(published.store.get(layout.channel_key("stable"))).version
    replay = tmp_path / "replay"
    replay.mkdir()
    for name, jpegs in shapes(published.config.category_names, 3, seed=99).items():
        for i, jpeg in enumerate(jpegs):
            (replay / f"{name}-{i}.jpg").write_bytes(jpeg)
    for path in (tmp_path, replay, *replay.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)
    env = {
        **published.env,
        "RECYCLOPS_EDGE__DEVICE_ID": "ct-edge",
        "RECYCLOPS_EDGE__CAMERA__KIND": "replay",
        "RECYCLOPS_EDGE__CAMERA__SOURCE": "/replay",
        "RECYCLOPS_EDGE__CAMERA__FPS": "5",
        "RECYCLOPS_EDGE__LIVE_VIEW__ENABLED": "false",
    }
    cid = engine.start(
        edge_image,
        env=env,
        options=(
            "-v",
            f"{published.configs}:/config:ro",
            "-v",
            f"{replay}:/replay:ro",
            "-v",
            f"{engine.volume()}:/var/lib/recyclops",
        ),
    )
    mqtt_config = published.mqtt

    def installed(payload: bytes) -> bool:
        status = parse_message(DeviceStatus, payload)
        return status.state == "online" and status.model_version == version

    topic = status_topic(mqtt_config.fleet, "ct-edge")
    status = wait_message(mqtt_config, topic, installed, timeout=120)
    assert status is not None, f"edge never reported {version}:\n{engine.logs_of(cid)[-4000:]}"


def test_the_job_image_runs_as_non_root_with_verified_weights_offline(
    engine: Engine, cloud_image: str
) -> None:
    """No network in the container: the weights training uses are in the image and load."""
    script = (
        "import os; print(os.getuid()); "
        "from recyclops.cloud import weights; f = weights.locate(); "
        "print(weights.verify_file(f.path) if f else 'none')"
    )
    out = engine.run(
        cloud_image,
        "-c",
        script,
        env={"TF_CPP_MIN_LOG_LEVEL": "3"},
        options=("--entrypoint", "python3"),
        network="none",
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    assert lines[-2] == "10001"
    assert "no_top.h5" in lines[-1] and "ships" in lines[-1]


def test_tensorboard_in_the_job_image_serves_the_runs_volume(
    engine: Engine, cloud_image: str, published: Published
) -> None:
    """compose's `tensorboard` service (make tensorboard): the same image, the runs volume."""
    version = parse_pointer(published.store.get(layout.channel_key("stable"))).version
    port = free_port()
    cid = engine.start(
        cloud_image,
        "--logdir",
        "/runs",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        options=("--entrypoint", "tensorboard", *published.mounts),
    )

    def listed() -> list[str] | None:  # TensorBoard's run list, once it holds the version
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/data/runs", timeout=5) as resp:
                runs: list[str] = json.loads(resp.read())
        except OSError:
            return None
        return runs if any(r.startswith(version) for r in runs) else None

    try:
        wait_until(listed, 90, f"TensorBoard listing {version}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{engine.logs_of(cid)[-3000:]}") from None
