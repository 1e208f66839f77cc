"""The CPU job image trains the tiny configuration against S3 and MQTT on the host.

`recyclops-job all` (what `make train` runs) inside the container: setup pulls the reviewed
images from SeaweedFS, train fits and converts the tiny model, publish uploads it, moves the
channel pointer and sends the retained MQTT notice. The test then reads the store and the
broker from the host. `make container-test` only; minutes.
"""

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from recyclops.cloud.synthetic import shapes
from recyclops.shared import layout
from recyclops.shared.config import MqttConfig, load
from recyclops.shared.devservers import S3Server
from recyclops.shared.hashing import sha256_bytes
from recyclops.shared.manifest import parse_manifest, parse_pointer
from recyclops.shared.messages import ModelNotice, model_topic, parse_message
from recyclops.shared.records import Decision, GatheredRecord, dump_journal
from recyclops.shared.store import ObjectStore

from .engine import ROOT, Engine
from .test_images import s3_env

pytestmark = [pytest.mark.container, pytest.mark.slow]

WEIGHTS = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"


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


def retained(config: MqttConfig, topic: str, timeout: float = 10) -> bytes | None:
    got: list[bytes] = []
    done = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"ct-{uuid.uuid4().hex[:8]}")

    def on_message(c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
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


def test_the_job_image_trains_and_publishes_the_tiny_model(
    engine: Engine,
    cloud_image: str,
    s3_server: S3Server,
    s3_url: str,
    s3_store: ObjectStore,
    mqtt_config: MqttConfig,
    artifacts_dir: Path,
    tmp_path: Path,
) -> None:
    # The tiny configuration with three colour categories the synthetic images can teach.
    configs = tmp_path / "config"
    configs.mkdir()
    tiny = (ROOT / "cloud" / "configs" / "tiny.toml").read_text()
    (configs / "ct.toml").write_text('categories = ["red", "green", "blue"]\n' + tiny)
    config = load(configs / "ct.toml")
    seeded = seed_reviewed(s3_store, config.category_names, per_class=40)
    env = {
        **s3_env(s3_server, s3_url),
        "RECYCLOPS_CONFIG": "/config/ct.toml",
        "RECYCLOPS_MQTT__HOST": str(mqtt_config.host),
        "RECYCLOPS_MQTT__PORT": str(mqtt_config.port),
        "RECYCLOPS_MQTT__FLEET": mqtt_config.fleet,
        "RECYCLOPS_CHANNEL": "stable",
    }
    configs.chmod(0o755)
    (configs / "ct.toml").chmod(0o644)
    start = time.monotonic()
    # Named volumes for /data and /runs, as compose.yaml gives the jobs: the non-root user
    # must be able to write them.
    volumes = {"/data": engine.volume(), "/runs": engine.volume()}
    mounts = tuple(a for path, vol in volumes.items() for a in ("-v", f"{vol}:{path}"))
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
    print(f"recyclops-job all in the container: {took:.0f} s for {seeded} images")

    # The channel pointer names a complete, verified version.
    pointer = parse_pointer(s3_store.get(layout.channel_key("stable")))
    manifest_bytes = s3_store.get(pointer.manifest_key)
    assert sha256_bytes(manifest_bytes) == pointer.manifest_sha256
    manifest = parse_manifest(manifest_bytes)
    assert manifest.categories == config.category_names
    assert manifest.metrics.test_images > 0 and manifest.metrics.int8_accuracy is not None
    for entry in manifest.files:
        data = s3_store.get(layout.model_file_key(pointer.version, entry.name))
        assert sha256_bytes(data) == entry.sha256, entry.name

    # The run stays in the runs volume (TensorBoard's logdir), the data set in the data one.
    listing = engine.run(
        cloud_image,
        "-c",
        "find /runs /data -maxdepth 3 | sort",
        options=("--entrypoint", "sh", *mounts),
        network="none",
    ).stdout.split()
    run = f"/runs/{pointer.version}"
    assert {f"{run}/gate.json", f"{run}/history.csv", f"{run}/tensorboard"} <= set(listing)
    assert "/data/dataset/dataset.json" in listing

    # The fleet heard about it: the retained notice on the channel's topic.
    notice = retained(mqtt_config, model_topic(mqtt_config.fleet, "stable"))
    assert notice is not None, "no retained model notice"
    message = parse_message(ModelNotice, notice)
    assert (message.version, message.manifest_sha256) == (pointer.version, pointer.manifest_sha256)


def test_the_job_image_runs_as_non_root_with_weights_cached(
    engine: Engine, cloud_image: str
) -> None:
    script = (
        "import os, pathlib; print(os.getuid()); "
        f"p = pathlib.Path.home() / '.keras' / 'models' / '{WEIGHTS}'; print(p.is_file())"
    )
    out = engine.run(
        cloud_image,
        "-c",
        script,
        options=(
            "--entrypoint",
            "python3",
        ),
        network="none",
    )
    assert out.returncode == 0, out.stderr[-2000:]
    uid, cached = out.stdout.split()[-2:]
    assert uid == "10001"
    shared = (ROOT / "docker" / "weights" / WEIGHTS).is_file()
    assert cached == str(shared)  # weights baked in exactly when the build had them
