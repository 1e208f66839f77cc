"""Publish checks the artefact, not just the paperwork; channels move by generations only.

One real run (the tiny config on synthetic shapes, trained once for the module) is copied
and tampered with: each bad model gets a manifest and a verdict that describe its bytes
honestly, so only the artefact checks (LiteRT load, contract, golden outputs) can catch it.
"""

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from recyclops.app.cli import main
from recyclops.cloud.channels import ChannelError, advance, history, read_pointer
from recyclops.cloud.evaluate import GateError
from recyclops.cloud.publish import PublishError, publish, rollback
from recyclops.shared import layout, messages
from recyclops.shared.config import TrainConfig
from recyclops.shared.hashing import sha256_bytes
from recyclops.shared.manifest import ModelRef, parse_manifest
from recyclops.shared.mqtt import MqttClient
from recyclops.shared.store import LocalStore

pytestmark = pytest.mark.slow
CATS = ["cardboard", "glass", "metal", "paper", "plastic", "trash"]


def quick_config(**changes) -> TrainConfig:
    """ImageNet features at 96 px, frozen: seconds on 2 cores, and reliably good on shapes."""
    base = dict(
        image_size=96,
        weights="imagenet",
        fine_tune=False,
        epochs=40,
        early_stopping_patience=10,
        batch_size=16,
        learning_rate=3e-3,
        label_smoothing=0.0,
        augment_views=1,
        validation_split=0.2,
        test_split=0.25,
    )
    return TrainConfig(**{**base, **changes})


SAMPLE = Path(__file__).resolve().parents[2] / "app" / "demo" / "sample"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A real blessed run: train() on 40 TrashNet photos per class, the channel's first model.

    Real photos, because synthetic colour shapes lose several images under int8 (flat colour
    is what full-integer quantisation keeps worst), and the blessing rightly refuses that.
    """
    from recyclops.cloud.dataset import dataset_from_folders
    from recyclops.cloud.train import train

    work = tmp_path_factory.mktemp("trained")
    photos = work / "photos"
    for folder in sorted(p for p in SAMPLE.iterdir() if p.is_dir()):
        (photos / folder.name).mkdir(parents=True)
        for jpg in sorted(
            folder.glob("*.jpg"), key=lambda p: int("".join(filter(str.isdigit, p.stem)) or 0)
        )[:40]:
            shutil.copy(jpg, photos / folder.name / jpg.name)
    ds = dataset_from_folders(photos, cache_dir=work / "cache")
    # these tests are about publish, not the floors: a modest model on 240 photos at 96 px.
    # On 57 test images one image is 1.75 points, so the int8-against-float limit flips with
    # the seed or the resize (2 net images: seeds 1-3 refused bilinear and blessed
    # area_antialiased, seed 1337 the reverse).
    config = quick_config(min_accuracy=0.4, min_class_accuracy=0.2, int8_max_drop=10.0)
    result = train(config, ds, work / "runs", run_id="v1", store=LocalStore(work / "store"))
    assert result.blessed, result.verdict.summary
    return result.run_dir


def clone(run: Path, tmp_path: Path, version: str, champion: str | None = None) -> Path:
    """The same model under another version name, judged against ``champion``."""
    new = tmp_path / version
    shutil.copytree(run, new)
    manifest = json.loads((new / "model" / "manifest.json").read_text())
    manifest["version"] = version
    (new / "model" / "manifest.json").write_text(json.dumps(manifest))
    gate = json.loads((new / "gate.json").read_text())
    gate["version"] = version
    gate["champion"] = {"version": champion, "compared": True} if champion else None
    (new / "gate.json").write_text(json.dumps(gate))
    return new


def tamper(run: Path, model: bytes, **input_changes) -> None:
    """Swap model.tflite for ``model`` and make the manifest and the verdict agree with it."""
    folder = run / "model"
    (folder / "model.tflite").write_bytes(model)
    manifest = json.loads((folder / "manifest.json").read_text())
    for entry in manifest["files"]:
        if entry["name"] == "model.tflite":
            entry.update(size=len(model), sha256=sha256_bytes(model))
    manifest["input"].update(input_changes)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    gate = json.loads((run / "gate.json").read_text())
    gate["model_sha256"] = sha256_bytes(model)
    (run / "gate.json").write_text(json.dumps(gate))


def keras_tflite(size: int, classes: int, nan_on_photos: bool = False) -> bytes:
    """A small real model: int8 (uint8 in, float32 out) or, with ``nan_on_photos``, a float
    model that is finite on flat frames and NaN on anything with texture."""
    import keras
    import tensorflow as tf

    from recyclops.cloud.convert import export_int8, representative, to_float_tflite

    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(4, 3)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(classes, activation="softmax")(x)
    if nan_on_photos:
        spread = keras.layers.Lambda(
            lambda t: tf.sqrt(0.05 - tf.math.reduce_std(t, axis=[1, 2, 3], keepdims=False))
        )(inputs / 255.0)
        x = keras.layers.Lambda(lambda ts: ts[0] * tf.expand_dims(ts[1], -1))([x, spread])
        return to_float_tflite(keras.Model(inputs, x))
    model = keras.Model(inputs, x)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (16, size, size, 3), dtype=np.uint8)
    return export_int8(model, representative(images, 8, 0)).data


def test_a_blessed_run_publishes_with_its_golden_set_and_generation_1(trained, tmp_path):
    store = LocalStore(tmp_path / "store")
    manifest = publish(trained, store, None, "stable")
    assert manifest.golden is not None and manifest.golden.count >= 8
    assert manifest.blessing is not None and manifest.blessing.blessed
    assert manifest.dataset.split is not None
    pointer = read_pointer(store, "stable")
    assert pointer is not None and (pointer.version, pointer.generation) == ("v1", 1)
    assert store.exists(layout.channel_generation_key("stable", 1))


@pytest.mark.parametrize(
    "case",
    ["truncated", "random", "float_declared_int8", "wrong_input", "wrong_output", "nan"],
)
def test_publish_refuses_models_that_do_not_do_what_the_manifest_says(trained, tmp_path, case):
    run = clone(trained, tmp_path, "bad")
    good = (trained / "model" / "model.tflite").read_bytes()
    changes: dict = {}
    if case == "truncated":
        bad, why = good[: len(good) // 2], "does not load"
    elif case == "random":
        bad, why = np.random.default_rng(1).bytes(len(good)), "does not load"
    elif case == "float_declared_int8":
        bad, why = (trained / "model" / "model_float.tflite").read_bytes(), "input is float32"
    elif case == "wrong_input":
        bad, why = keras_tflite(32, 6), "input shape"
    elif case == "wrong_output":
        bad, why = keras_tflite(96, 7), "output shape"
    else:
        bad, why = keras_tflite(96, 6, nan_on_photos=True), "golden images differ"
        changes = {"dtype": "float32", "scale": None, "zero_point": None}
    tamper(run, bad, **changes)
    store = LocalStore(tmp_path / "store")
    with pytest.raises(PublishError, match=why):
        publish(run, store, None, "stable")
    assert read_pointer(store, "stable") is None
    assert not store.exists(layout.manifest_key("bad"))


def test_a_verdict_written_for_other_bytes_is_refused(trained, tmp_path):
    run = clone(trained, tmp_path, "v2")
    gate = json.loads((run / "gate.json").read_text())
    gate["model_sha256"] = "1" * 64
    (run / "gate.json").write_text(json.dumps(gate))
    with pytest.raises(GateError, match="not about this model"):
        publish(run, LocalStore(tmp_path / "store"), None, "stable")


def test_an_unblessed_run_needs_a_reason_to_force_and_the_reason_is_recorded(trained, tmp_path):
    run = clone(trained, tmp_path, "v2")
    gate = json.loads((run / "gate.json").read_text())
    gate.update(blessed=False, reasons=["floor: int8 accuracy 20.0% is below the floor"])
    (run / "gate.json").write_text(json.dumps(gate))
    store = LocalStore(tmp_path / "store")
    with pytest.raises(GateError, match=r"not blessed.*floor"):
        publish(run, store, None, "stable")
    with pytest.raises(PublishError, match="needs a reason"):
        publish(run, store, None, "stable", force="  ")
    manifest = publish(run, store, None, "stable", force="field trial, approved by Ana")
    assert manifest.blessing is not None and manifest.blessing.forced == (
        "field trial, approved by Ana"
    )
    stored = parse_manifest(store.get(layout.manifest_key("v2")))
    assert stored.blessing is not None and stored.blessing.forced == manifest.blessing.forced
    assert read_pointer(store, "stable").note == "forced: field trial, approved by Ana"


def test_a_run_judged_against_another_champion_is_refused(trained, tmp_path):
    store = LocalStore(tmp_path / "store")
    publish(trained, store, None, "stable")  # the channel now serves v1
    stale = clone(trained, tmp_path, "v2", champion=None)  # judged against an empty channel
    with pytest.raises(ChannelError, match="judge it again"):
        publish(stale, store, None, "stable")
    fresh = clone(trained, tmp_path / "fresh", "v2", champion="v1")
    publish(fresh, store, None, "stable")
    assert read_pointer(store, "stable").generation == 2


def test_two_publishers_cannot_both_win(trained, tmp_path, s3_store, monkeypatch):
    publish(trained, s3_store, None, "stable")
    a = clone(trained, tmp_path / "a", "v2a", champion="v1")
    b = clone(trained, tmp_path / "b", "v2b", champion="v1")
    publish(a, s3_store, None, "stable")
    with pytest.raises(ChannelError, match="now serves v2a"):
        publish(b, s3_store, None, "stable")
    # the race itself: a rival claims generation 3 between our read and our claim
    from recyclops.cloud import channels

    seen = channels.latest(s3_store, "stable")
    rival = seen.model_copy(update={"version": "v1", "generation": 3})
    s3_store.put(layout.channel_generation_key("stable", 3), rival.model_dump_json().encode())
    monkeypatch.setattr(channels, "latest", lambda store, channel: seen)
    with pytest.raises(ChannelError, match="claimed generation 3 first"):
        advance(s3_store, "stable", version="v2b", manifest_sha256="0" * 64)
    monkeypatch.undo()
    assert read_pointer(s3_store, "stable").version == "v2a"  # the loser changed nothing


def test_rollback_is_a_new_generation_and_announced(trained, tmp_path, s3_store, mqtt_config):
    publish(trained, s3_store, None, "stable")
    publish(clone(trained, tmp_path, "v2", champion="v1"), s3_store, None, "stable")
    with pytest.raises(ChannelError, match="never served"):
        rollback(s3_store, "stable", "v9")
    got = threading.Event()
    notices: list[ModelRef] = []

    def on_notice(topic: str, payload: bytes) -> None:
        notices.append(messages.parse_message(ModelRef, payload, topic))
        if notices[-1].version == "v1":
            got.set()

    listener = MqttClient(mqtt_config)
    listener.subscribe(messages.model_topic(mqtt_config.fleet, "stable"), on_notice)
    try:
        assert listener.start(wait=10)
        pointer = rollback(s3_store, "stable", "v1", mqtt_config, note="v2 misreads glass")
        assert got.wait(15)
    finally:
        listener.stop()
    assert (pointer.version, pointer.generation, pointer.action) == ("v1", 3, "rollback")
    assert notices[-1].generation == 3
    assert [(p.generation, p.version, p.action) for p in history(s3_store, "stable")] == [
        (1, "v1", "publish"),
        (2, "v2", "publish"),
        (3, "v1", "rollback"),
    ]
    assert history(s3_store, "stable")[-1].note == "v2 misreads glass"


def test_rollback_command(trained, tmp_path, capsys):
    store_dir = tmp_path / "store"
    store = LocalStore(store_dir)
    publish(trained, store, None, "stable")
    publish(clone(trained, tmp_path, "v2", champion="v1"), store, None, "stable")
    url = store_dir.as_uri()
    rc = main(["rollback", "--store", url, "--channel", "stable", "--to", "v1", "--list"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "generation 2: v2" in out and "now serves v1 again (generation 3)" in out
    assert main(["rollback", "--store", url, "--channel", "stable", "--to", "v1"]) == 1
    assert "already serves v1" in capsys.readouterr().err


def test_republish_is_harmless_and_versions_are_immutable(trained, tmp_path):
    store = LocalStore(tmp_path / "store")
    publish(trained, store, None, "stable")
    publish(trained, store, None, "stable")  # the same version again: nothing moves
    assert [p.generation for p in history(store, "stable")] == [1]
    clash = clone(trained, tmp_path / "clash", "v1")
    card = b"# another card for the same version"
    (clash / "model" / "MODEL_CARD.md").write_bytes(card)
    manifest = json.loads((clash / "model" / "manifest.json").read_text())
    for entry in manifest["files"]:
        if entry["name"] == "MODEL_CARD.md":
            entry.update(size=len(card), sha256=sha256_bytes(card))
    (clash / "model" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PublishError, match="never overwritten"):
        publish(clash, store, None, "beta")
    assert read_pointer(store, "beta") is None


def test_a_tampered_folder_or_a_missing_verdict_is_refused_before_upload(trained, tmp_path):
    store = LocalStore(tmp_path / "store")
    run = clone(trained, tmp_path, "v2")
    (run / "model" / "model.tflite").write_bytes(b"tflitX")
    with pytest.raises(Exception, match=r"sha256|bytes"):
        publish(run, store, None, "stable")
    unjudged = clone(trained, tmp_path / "u", "v3")
    (unjudged / "gate.json").unlink()
    with pytest.raises(GateError, match="was not evaluated"):
        publish(unjudged / "model", store, None, "stable")  # pointed one level down, too
    assert list(store.list("models/")) == []
