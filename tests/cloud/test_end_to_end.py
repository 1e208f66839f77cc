"""setup -> train -> convert -> bless -> publish against SeaweedFS and mosquitto (tiny config)."""

import json
import threading
import tomllib

import numpy as np
import pytest

from recyclops.cloud.convert import TfliteModel
from recyclops.cloud.evaluate import GateError
from recyclops.cloud.publish import publish
from recyclops.cloud.setup import download_model, sync_dataset
from recyclops.cloud.train import train
from recyclops.shared import layout, messages
from recyclops.shared.config import TrainConfig
from recyclops.shared.hashing import sha256_bytes
from recyclops.shared.journals import dump_journal
from recyclops.shared.manifest import ModelRef, parse_manifest, parse_pointer
from recyclops.shared.mqtt import MqttClient
from recyclops.shared.preprocess import NEW_MODEL_RESIZE, min_edge_for

from .helpers import TINY_TOML, decision, seed_images

CATS = ["red", "green", "blue"]


@pytest.mark.slow
def test_setup_train_bless_publish(s3_store, mqtt_config, tmp_path):
    labels = seed_images(s3_store, CATS, per_class=24)
    # The awkward cases a real store has: a corrupt upload, a reviewed image whose object is
    # missing, an image marked invalid, and one whose only label was withdrawn.
    corrupt = b"\xff\xd8 not really a jpeg"
    corrupt_sha = sha256_bytes(corrupt)
    s3_store.put(layout.image_key(corrupt_sha), corrupt)
    missing_sha = "ab" * 32
    shas = sorted(labels)
    extra = [
        decision(corrupt_sha, "red", "review-2"),
        decision(missing_sha, "blue", "review-2"),
        decision(shas[0], "invalid", "review-2", minutes=5),
        decision(shas[1], "green", "review-2", seq=100),
        decision(shas[1], None, "review-2", action="withdraw", seq=101),
    ]
    s3_store.put(layout.labels_key("review-2"), dump_journal(extra))

    data = tmp_path / "data"
    summary = sync_dataset(s3_store, data, CATS, workers=4, progress=False)
    assert summary.images == len(labels) - 1  # shas[0] is now invalid
    assert summary.excluded_invalid == 1
    assert any("missing" in p and missing_sha in p for p in summary.problems)
    assert any(corrupt_sha in p for p in summary.problems)
    again = sync_dataset(s3_store, data, CATS, workers=4, progress=False)
    assert again.downloaded == 0 and again.skipped == summary.images  # resumable
    assert again.fingerprint == summary.fingerprint

    config = TrainConfig(**tomllib.loads(TINY_TOML.read_text())["train"])
    result = train(config, data, tmp_path / "runs", store=s3_store)
    run_dir, model_dir = result.run_dir, result.model_dir
    manifest = parse_manifest(result.manifest_path.read_bytes())
    assert manifest == result.manifest and result.model_path == model_dir / "model.tflite"
    manifest.verify_folder(model_dir)
    assert manifest.categories == CATS
    assert {"model.tflite", "model_float.tflite", "model.keras", "MODEL_CARD.md", "golden.npz"} <= {
        f.name for f in manifest.files
    }
    verdict = json.loads((run_dir / "gate.json").read_text())
    assert verdict == json.loads(json.dumps(result.verdict.gate()))
    assert result.blessed == verdict["blessed"]
    assert verdict["model_sha256"] == sha256_bytes((model_dir / "model.tflite").read_bytes())
    assert verdict["champion"] is None and "first model of this channel" in verdict["summary"]
    assert manifest.golden is not None and manifest.blessing is not None
    assert manifest.blessing.blessed == verdict["blessed"]
    # The tiny random-init model is judged like any other: publish it only if blessed, and
    # otherwise see publish refuse it before a human forces it through with a reason.
    force = None
    if not verdict["blessed"]:
        with pytest.raises(GateError, match="not blessed"):
            publish(run_dir, s3_store, None, "canary")
        force = "end-to-end test: the tiny model is a plumbing check"
    assert (manifest.input.dtype, manifest.input.scale, manifest.input.zero_point) == (
        "uint8",
        1.0,
        0,
    )
    assert manifest.input.height == 48 and manifest.dataset.fingerprint == summary.fingerprint
    assert manifest.input.resize == NEW_MODEL_RESIZE
    assert manifest.min_edge_version == min_edge_for(manifest.input)
    assert manifest.metrics.test_images > 0 and manifest.metrics.int8_accuracy is not None
    assert (run_dir / "history.csv").read_text().count("\n") >= 2
    assert any((run_dir / "tensorboard").rglob("events.out.tfevents.*"))
    int8 = TfliteModel(model_dir / "model.tflite")
    assert int8.input_dtype == "uint8" and int8.input_quant == (1.0, 0)

    received: list[ModelRef] = []
    got = threading.Event()
    listener = MqttClient(mqtt_config)

    def on_notice(topic: str, payload: bytes) -> None:
        received.append(messages.parse_message(ModelRef, payload, topic))
        got.set()

    listener.subscribe(messages.model_topic(mqtt_config.fleet, "canary"), on_notice)
    try:
        assert listener.start(wait=10)
        published = publish(run_dir, s3_store, mqtt_config, "canary", force=force)
        assert got.wait(15)
    finally:
        listener.stop()
    assert received[-1].version == published.version == manifest.version
    pointer = parse_pointer(s3_store.get(layout.channel_key("canary")))
    assert pointer.version == manifest.version
    assert (
        sha256_bytes(s3_store.get(pointer.manifest_key))
        == pointer.manifest_sha256
        == received[-1].manifest_sha256
    )
    for entry in manifest.files:
        assert (
            sha256_bytes(s3_store.get(layout.model_file_key(manifest.version, entry.name)))
            == entry.sha256
        )
    publish(run_dir, s3_store, None, "canary", force=force)  # twice is harmless
    fetched, folder = download_model(s3_store, "canary", tmp_path / "models")
    assert fetched.version == manifest.version and (folder / "model.tflite").is_file()

    assert received[-1].generation == 1

    # A degraded int8 model (the same network with its classifier forced onto the class the
    # float model was worst at, converted for real) is refused by the blessing: by the floor
    # and against the champion that now serves the channel.
    import keras

    from recyclops.cloud.blessing import Champion, bless
    from recyclops.cloud.convert import export_int8, representative
    from recyclops.cloud.dataset import load_dataset
    from recyclops.cloud.train import prepare_arrays

    per_class = {c: m.float_accuracy or 0.0 for c, m in manifest.metrics.per_class.items()}
    worst = min(CATS, key=lambda c: per_class[c])
    model = keras.models.load_model(model_dir / "model.keras")
    dense = model.get_layer("head").get_layer("classifier")
    kernel, bias = dense.get_weights()
    forced = np.full_like(bias, -10.0)
    forced[CATS.index(worst)] = 10.0
    dense.set_weights([np.zeros_like(kernel), forced])
    prep = prepare_arrays(config, load_dataset(data))
    bad = export_int8(model, representative(prep.data.x_train, 16, 0), prep.x_test).scores
    good = int8.predict(prep.x_test)
    champ = Champion(manifest.version, CATS, np.arange(len(prep.y_test)), good)
    refused = bless(
        config, CATS, prep.y_test, bad, bad, champ, version="degraded", model_sha256="0" * 64
    )
    assert not refused.blessed
    assert any(r.startswith("floor:") for r in refused.reasons)
    if verdict["blessed"]:
        assert any("against champion" in r for r in refused.reasons), refused.reasons
    assert parse_pointer(s3_store.get(layout.channel_key("canary"))).version == manifest.version
