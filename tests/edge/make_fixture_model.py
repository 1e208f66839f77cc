"""Build the tiny int8 model the edge tests use (run once with TensorFlow; the result is committed).

The model answers by colour so tests can predict it: mostly-red frames are the first
category, green the second, blue the third (the others share what is left). It has the
same shape of contract as a real model: uint8 RGB in, Rescaling inside, int8 quantised
input with the manifest's scale and zero point, softmax out.

    .venv/bin/python tests/edge/make_fixture_model.py
"""

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent / "fixture"
SIZE = 32
CATEGORIES = ["cardboard", "glass", "metal", "paper", "plastic", "trash"]


def build() -> bytes:
    import keras
    import tensorflow as tf

    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1.0 / 255)(inputs)
    x = keras.layers.Conv2D(3, 1, use_bias=False, name="mix")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(len(CATEGORIES), activation="softmax", name="head")(x)
    model = keras.Model(inputs, outputs)
    model.get_layer("mix").set_weights([np.eye(3, dtype=np.float32).reshape(1, 1, 3, 3)])
    w = np.zeros((3, len(CATEGORIES)), np.float32)
    w[0, 0] = w[1, 1] = w[2, 2] = 8.0
    w[:, 3:] = 2.0
    b = np.array([-2, -2, -2, 0, 0, 0], np.float32) - np.array([0, 0, 0, 2.5, 2.6, 2.7], np.float32)
    model.get_layer("head").set_weights([w, b])

    rng = np.random.default_rng(0)

    def representative():  # type: ignore[no-untyped-def]
        for _ in range(64):
            yield [rng.integers(0, 256, (1, SIZE, SIZE, 3)).astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return bytes(converter.convert())


def main() -> int:
    from recyclops.shared.manifest import InputSpec, ModelManifest, file_entry

    HERE.mkdir(parents=True, exist_ok=True)
    path = HERE / "model.tflite"
    path.write_bytes(build())
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    detail = interp.get_input_details()[0]
    scale, zero = detail["quantization"]
    manifest = ModelManifest(
        version="fixture-1",
        created=datetime(2026, 1, 1, tzinfo=UTC),
        categories=CATEGORIES,
        input=InputSpec(
            height=SIZE, width=SIZE, dtype="int8", scale=float(scale), zero_point=int(zero)
        ),
        files=[file_entry(path)],
        hyperparameters={"fixture": True},
    )
    (HERE / "manifest.json").write_text(json.dumps(json.loads(manifest.to_json()), indent=2) + "\n")
    print(f"wrote {path} ({path.stat().st_size} bytes), input scale {scale} zero point {zero}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
