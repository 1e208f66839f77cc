"""A TFLite model on the LiteRT interpreter, fed uint8 pixels the way the edge feeds them.

Here, not in the cloud, because checking a stored model the way a bin will (``artefact``)
is needed by every room that moves a channel: ``recyclops publish`` and ``promote`` in the
cloud, and the console's promote and rollback actions. LiteRT (``ai-edge-litert``) is
imported only when a model is loaded, so importing this costs nothing; an install without
any interpreter gets a ``NoInterpreterError`` that says what to install, never a skipped
check.
"""

import os
from pathlib import Path
from typing import Any

import numpy as np

from .errors import RecyclopsError


class NoInterpreterError(RecyclopsError):
    """Neither LiteRT nor TensorFlow is installed: no model can be loaded here."""


def interpreter_class() -> Any:
    """LiteRT's interpreter, else TensorFlow's (the cloud install has both)."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter
    except ImportError as litert_missing:
        try:
            import tensorflow as tf
        except ImportError:
            raise NoInterpreterError(
                f"no TFLite interpreter is installed here ({litert_missing}): a model cannot be "
                "checked the way a bin will check it before a channel moves; install it with "
                "'pip install ai-edge-litert' (or run the action from the cloud install)"
            ) from None
        return tf.lite.Interpreter


class TfliteModel:
    """A TFLite model on the LiteRT interpreter: feeds uint8 pixels the way the edge does."""

    def __init__(self, model: bytes | str | Path, threads: int | None = None) -> None:
        cls = interpreter_class()
        content = model if isinstance(model, bytes) else Path(model).read_bytes()
        self.interpreter = cls(model_content=content, num_threads=threads or os.cpu_count() or 1)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]

    @property
    def input_dtype(self) -> str:
        return str(np.dtype(self.input["dtype"]).name)

    @property
    def input_quant(self) -> tuple[float | None, int | None]:
        scale, zero = self.input.get("quantization", (0.0, 0))
        return (float(scale), int(zero)) if scale else (None, None)

    def _feed(self, image: np.ndarray) -> np.ndarray:
        dtype = np.dtype(self.input["dtype"])
        if dtype == np.float32:
            return image[None].astype(np.float32)
        scale, zero = self.input_quant
        if scale is None or zero is None:
            return image[None].astype(dtype)
        info = np.iinfo(dtype)
        q = np.rint(image.astype(np.float32) / scale + zero)
        return np.clip(q, info.min, info.max).astype(dtype)[None]

    def predict(self, images: np.ndarray) -> np.ndarray:
        out = []
        for image in images:
            self.interpreter.set_tensor(self.input["index"], self._feed(image))
            self.interpreter.invoke()
            raw = self.interpreter.get_tensor(self.output["index"])[0]
            scale, zero = self.output.get("quantization", (0.0, 0))
            out.append((raw.astype(np.float32) - zero) * scale if scale else raw.astype(np.float32))
        return np.stack(out) if out else np.zeros((0, 0), np.float32)
