"""The one int8 export: converted, reloaded on LiteRT, checked against the production contract
(uint8 raw pixels in, float32 probabilities out), and scored on exactly the bytes returned."""

from pathlib import Path

import numpy as np
import pytest

from recyclops.cloud.convert import ConversionError, TfliteModel, export_int8, representative

SIZE, CLASSES = 16, 3


def tiny_model():  # type: ignore[no-untyped-def]
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(4, 3)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(CLASSES, activation="softmax")(x))


def test_export_checks_the_contract_and_scores_the_bytes_it_returns(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (12, SIZE, SIZE, 3), dtype=np.uint8)
    path = tmp_path / "out" / "model.tflite"
    exported = export_int8(tiny_model(), representative(images, 8, 0), images[:5], path=path)
    assert path.read_bytes() == exported.data
    assert exported.scores.shape == (5, CLASSES) and np.allclose(
        exported.scores.sum(1), 1, atol=0.02
    )
    again = TfliteModel(path)  # what a bin or publish loads
    assert again.input_dtype == "uint8" and again.input_quant == (1.0, 0)
    assert np.array_equal(again.predict(images[:5]), exported.scores)


def test_a_calibration_without_black_and_white_is_refused() -> None:
    """Mid-grey calibration leaves the input scale off 1: the edge would feed raw pixels into a
    model expecting rescaled ones, so the export refuses instead of shipping it."""
    rng = np.random.default_rng(1)
    grey = rng.integers(100, 140, (8, SIZE, SIZE, 3), dtype=np.uint8)
    with pytest.raises(ConversionError, match=r"input quantisation .* expected \(1.0, 0\)"):
        export_int8(tiny_model(), grey)
