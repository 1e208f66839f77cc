"""TFLite conversion (float and full-integer int8) and the interpreter that evaluates it.

int8 model I/O: uint8 input with scale 1.0 and zero point 0 (the calibration set includes an
all-black and an all-white image, so the input range is exactly 0..255 and raw pixels from
the shared preprocessing feed in unchanged: no rescaling on the Pi), float32 output
(probabilities: nothing to dequantise at the edge). Every op inside is int8.

``export_int8`` is the one way to make such a model (training, cross-validation, the edge
fixture and the benchmarks): it converts, reloads the bytes on LiteRT, checks that contract
and scores the given images on exactly the bytes it returns.
"""

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..shared.errors import RecyclopsError
from ..shared.tflite import TfliteModel

logger = logging.getLogger(__name__)


class ConversionError(RecyclopsError):
    """The TFLite converter failed or produced an unusable model."""


def _converter(model: Any) -> Any:
    """A converter over a frozen graph of the model (batch 1, float pixels in)."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    shape = [1, *model.input.shape[1:]]
    fn = tf.function(lambda x: model(x, training=False))
    frozen = convert_variables_to_constants_v2(
        fn.get_concrete_function(tf.TensorSpec(shape, tf.float32, name="pixels"))
    )
    return tf.lite.TFLiteConverter.from_concrete_functions([frozen])


def to_float_tflite(model: Any) -> bytes:
    """The float reference model (same frozen graph as the int8 one, float in and out)."""
    converter = _converter(model)
    try:
        return bytes(converter.convert())
    except Exception as exc:
        raise ConversionError(f"float TFLite conversion failed: {exc}") from None


def representative(images: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Up to ``count`` training images plus a black and a white one (pin the input range)."""
    rng = np.random.default_rng(seed)
    pick = images[rng.permutation(len(images))[: max(0, count - 2)]]
    extremes = np.stack(
        [np.zeros(images.shape[1:], np.uint8), np.full(images.shape[1:], 255, np.uint8)]
    )
    return np.concatenate([extremes, pick])


def _to_int8_tflite(model: Any, calibration: np.ndarray) -> bytes:
    """Bare conversion; callers use ``export_int8``, which also checks what came out."""
    import tensorflow as tf

    def gen() -> Iterator[list[np.ndarray]]:
        for img in calibration:
            yield [img[None].astype(np.float32)]

    converter = _converter(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = gen
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.float32
    try:
        return bytes(converter.convert())
    except Exception as exc:
        raise ConversionError(f"int8 TFLite conversion failed: {exc}") from None


def write_tflite(data: bytes, path: Path) -> Path:
    from ..shared.atomic import atomic_write_bytes

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)
    return path


def check_int8_io(model: TfliteModel, input_shape: tuple[int, ...]) -> None:
    """The production contract, read back from the converted model: one uint8 input of
    ``input_shape`` (batch 1) taking raw pixels (scale 1, zero point 0), one float32 output
    of shape (1, classes) with no quantisation to undo."""
    details = model.interpreter.get_input_details()
    outputs = model.interpreter.get_output_details()
    if len(details) != 1 or len(outputs) != 1:
        raise ConversionError(
            f"int8 model has {len(details)} inputs and {len(outputs)} outputs, expected one each"
        )
    shape = tuple(int(s) for s in model.input["shape"])
    if shape != (1, *input_shape):
        raise ConversionError(f"int8 model input shape {shape}, expected {(1, *input_shape)}")
    if model.input_dtype != "uint8":
        raise ConversionError(f"int8 model has {model.input_dtype} input, expected uint8")
    scale, zero = model.input_quant
    if scale is None or abs(scale - 1.0) > 1e-6 or zero != 0:
        raise ConversionError(
            f"int8 model input quantisation ({scale}, {zero}), expected (1.0, 0): raw pixels "
            "(was the calibration set missing its black and white images?)"
        )
    out_dtype = np.dtype(model.output["dtype"]).name
    out_shape = tuple(int(s) for s in model.output["shape"])
    if out_dtype != "float32" or len(out_shape) != 2 or out_shape[0] != 1:
        raise ConversionError(
            f"int8 model output is {out_dtype} {out_shape}, expected float32 (1, classes)"
        )
    if model.output.get("quantization", (0.0, 0))[0]:
        raise ConversionError("int8 model output is quantised, expected plain float32")


@dataclass(frozen=True)
class Int8Export:
    """A converted model, reloaded on LiteRT and checked: what every int8 caller gets."""

    data: bytes
    model: TfliteModel
    #: probabilities on the images given to ``export_int8`` (N x classes)
    scores: np.ndarray
    convert_seconds: float
    score_seconds: float

    @property
    def input_quant(self) -> tuple[float | None, int | None]:
        return self.model.input_quant


def export_int8(
    model: Any,
    calibration: np.ndarray,
    images: np.ndarray | None = None,
    *,
    path: Path | None = None,
    threads: int | None = None,
) -> Int8Export:
    """Convert ``model`` (Keras, float pixels in) to full-integer TFLite, reload it with the
    edge runtime, check the I/O contract and score ``images`` on it (uint8 pixels; none: no
    scores). ``calibration``: uint8 images from ``representative`` (its black and white
    images pin the input to raw pixels). ``path``: also write the file there.

    Paired so that no caller ships a model the edge would read differently from what was
    checked: the bytes returned are the bytes scored."""
    t0 = time.monotonic()
    data = _to_int8_tflite(model, calibration)
    try:
        loaded = TfliteModel(data, threads=threads)
    except (ValueError, RuntimeError) as exc:
        raise ConversionError(f"int8 model does not load with LiteRT: {exc}") from None
    check_int8_io(loaded, tuple(int(s) for s in model.input.shape[1:]))
    if path is not None:
        write_tflite(data, path)
    t1 = time.monotonic()
    scores = loaded.predict(images) if images is not None else np.zeros((0, 0), np.float32)
    return Int8Export(data, loaded, scores, t1 - t0, time.monotonic() - t1)


__all__ = [
    "ConversionError",
    "Int8Export",
    "TfliteModel",
    "export_int8",
    "representative",
    "to_float_tflite",
    "write_tflite",
]
