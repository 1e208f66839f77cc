"""Build the tiny models the edge tests use (run once with TensorFlow; the results are committed).

The fixture model answers by colour so tests can predict it: mostly-red frames are the first
category, green the second, blue the third (the others share what is left). It follows the
production contract of ``cloud/convert.py``'s ``export_int8``: uint8 RGB in (scale 1, zero
point 0: raw pixels, Rescaling inside), int8 inside, float32 probabilities out. It travels
with a golden set (``golden.npz``): a few real TrashNet photos from ``app/demo/sample`` and
the probabilities this model gives them, as a published model does.

Two float32 models misbehave on purpose, for the update checks and the runtime guard. Both
answer like the fixture on flat colours and noise (the synthetic self-test passes):

- ``nan_on_photos.tflite``: NaN on real-photo statistics (a per-channel spread above 15 with
  neighbouring pixels close: a photo; flat colours have no spread, noise no smoothness);
- ``nan_on_green.tflite``: NaN on green-dominated frames (mean G - R - B above 100), finite
  on real photos, so it passes the golden check and turns bad only on a green live scene.

    .venv/bin/python tests/edge/make_fixture_model.py
"""

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent / "fixture"
SAMPLES = Path(__file__).resolve().parents[2] / "app" / "demo" / "sample"
SIZE = 32
CATEGORIES = ["cardboard", "glass", "metal", "paper", "plastic", "trash"]
GOLDEN_PER_CLASS = 2


def _colour_model(nan_when: str | None = None) -> Any:
    """The colour classifier (Keras). ``nan_when``: "photo" or "green" adds a term that is
    0 normally and NaN for those inputs (sqrt of a negative number)."""
    import keras
    import tensorflow as tf

    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1.0 / 255)(inputs)
    x = keras.layers.Conv2D(3, 1, use_bias=False, name="mix")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    logits = keras.layers.Dense(len(CATEGORIES), name="head")(x)
    if nan_when is not None:

        def trigger(pixels: Any) -> Any:
            if nan_when == "photo":
                spread = tf.math.reduce_mean(tf.math.reduce_std(pixels, axis=[1, 2]), axis=-1)
                step = tf.math.reduce_mean(
                    tf.abs(pixels[:, :, 1:, :] - pixels[:, :, :-1, :]), axis=[1, 2, 3]
                )
                slack = tf.maximum(15.0 - spread, step - 30.0)  # < 0 only for a photo
            else:
                mean = tf.math.reduce_mean(pixels, axis=[1, 2])
                slack = 100.0 - (mean[:, 1] - mean[:, 0] - mean[:, 2])  # < 0: green dominates
            return tf.sqrt(slack)[:, None] * 0.0

        logits = keras.layers.Add()([logits, keras.layers.Lambda(trigger)(inputs)])
    outputs = keras.layers.Softmax()(logits)
    model = keras.Model(inputs, outputs)
    model.get_layer("mix").set_weights([np.eye(3, dtype=np.float32).reshape(1, 1, 3, 3)])
    w = np.zeros((3, len(CATEGORIES)), np.float32)
    w[0, 0] = w[1, 1] = w[2, 2] = 8.0
    w[:, 3:] = 2.0
    b = np.array([-2, -2, -2, 0, 0, 0], np.float32) - np.array([0, 0, 0, 2.5, 2.6, 2.7], np.float32)
    model.get_layer("head").set_weights([w, b])
    return model


def build_int8() -> bytes:
    """uint8 in, float32 out, int8 inside: made, reloaded and checked by cloud/convert.py's
    ``export_int8``, as a trained model is."""
    from recyclops.cloud.convert import export_int8, representative

    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (64, SIZE, SIZE, 3), dtype=np.uint8)
    return export_int8(_colour_model(), representative(noise, 66, 0)).data


def build_float(nan_when: str) -> bytes:
    from recyclops.cloud.convert import to_float_tflite

    return to_float_tflite(_colour_model(nan_when))


def golden_candidates() -> list[tuple[int, bytes]]:
    """(true class, JPEG bytes) for the committed TrashNet samples, in a fixed order."""
    out = []
    for label, name in enumerate(CATEGORIES):
        for path in sorted((SAMPLES / name).glob("*.jpg"))[:24]:
            out.append((label, path.read_bytes()))
    return out


def make_golden(folder: Path, candidates: list[tuple[int, bytes]], per_class: int) -> bytes:
    """Run candidates through the edge's own Classifier; keep images with a clear top-1
    (margin over the runner-up ≥ 0.1, so a rounding difference cannot flip it)."""
    from recyclops.edge.classifier import Classifier
    from recyclops.shared.golden import GoldenSet
    from recyclops.shared.hashing import sha256_bytes
    from recyclops.shared.preprocess import decode_rgb

    clf = Classifier(folder, threads=1)
    kept: dict[int, list[tuple[int, bytes, np.ndarray]]] = {}
    for label, jpeg in candidates:
        probs = clf.classify(decode_rgb(jpeg)).probs
        top = np.sort(probs)[::-1]
        if np.all(np.isfinite(probs)) and top[0] - top[1] >= 0.1:
            kept.setdefault(label, []).append((label, jpeg, probs))
    chosen = [item for label in sorted(kept) for item in kept[label][:per_class]]
    golden = GoldenSet(
        jpegs=[j for _, j, _ in chosen],
        probs=np.stack([p for _, _, p in chosen]).astype(np.float32),
        labels=np.array([lab for lab, _, _ in chosen]),
        shas=[sha256_bytes(j) for _, j, _ in chosen],
    )
    return golden.to_bytes()


def write_manifest(folder: Path, model: str, dtype: str, golden: str | None) -> dict[str, Any]:
    from ai_edge_litert.interpreter import Interpreter

    from recyclops.shared.golden import GoldenSet
    from recyclops.shared.manifest import GoldenSpec, InputSpec, ModelManifest, file_entry

    interp = Interpreter(model_path=str(folder / model))
    scale, zero = interp.get_input_details()[0]["quantization"]
    files = [file_entry(folder / model)]
    spec = None
    if golden is not None:
        files.append(file_entry(folder / golden))
        count = len(GoldenSet.load(folder / golden))
        spec = GoldenSpec(file=golden, count=count, tolerance=0.05)
    manifest = ModelManifest(
        version="fixture-1",
        created=datetime(2026, 1, 1, tzinfo=UTC),
        categories=CATEGORIES,
        input=InputSpec(
            height=SIZE,
            width=SIZE,
            dtype=dtype,  # type: ignore[arg-type]
            scale=float(scale) if scale else None,
            zero_point=int(zero) if scale else None,
        ),
        model_file=model,
        files=files,
        hyperparameters={"fixture": True},
        golden=spec,
    )
    return json.loads(manifest.to_json())


def main() -> int:
    import tempfile

    HERE.mkdir(parents=True, exist_ok=True)
    (HERE / "model.tflite").write_bytes(build_int8())
    # the golden set is computed by the model itself, in a folder with a manifest saying so
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "model.tflite").write_bytes((HERE / "model.tflite").read_bytes())
        data = write_manifest(HERE, "model.tflite", "uint8", None)
        (work / "manifest.json").write_text(json.dumps(data))
        (HERE / "golden.npz").write_bytes(make_golden(work, golden_candidates(), GOLDEN_PER_CLASS))
    data = write_manifest(HERE, "model.tflite", "uint8", "golden.npz")
    (HERE / "manifest.json").write_text(json.dumps(data, indent=2) + "\n")
    for name, when in (("nan_on_photos", "photo"), ("nan_on_green", "green")):
        (HERE / f"{name}.tflite").write_bytes(build_float(when))
    size = (HERE / "golden.npz").stat().st_size
    print(f"wrote {HERE}: model {(HERE / 'model.tflite').stat().st_size} bytes, golden {size}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
