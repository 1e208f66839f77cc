"""One model, one interpreter: frame in (uint8 RGB), probabilities per category out.

The interpreter is created once per model (never per frame). Quantisation of the input is
a 256-entry lookup table built from the manifest's scale and zero point, checked against
what the model itself declares, so a model whose manifest lies is refused, not mis-fed.
"""

import functools
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..shared.errors import ImageError, ManifestError, RecyclopsError
from ..shared.layout import MANIFEST_FILE
from ..shared.manifest import InputSpec, ModelManifest, parse_manifest
from ..shared.preprocess import check_method, preprocess_for
from .interpreter import make_interpreter

logger = logging.getLogger(__name__)

_DTYPES = {"uint8": np.uint8, "int8": np.int8, "float32": np.float32}


class ModelError(RecyclopsError):
    """A model does not match its manifest or gives unusable answers."""


@dataclass(frozen=True)
class Prediction:
    label: str
    score: float
    probs: np.ndarray
    inference_ms: float


def input_table(spec: InputSpec) -> np.ndarray | None:
    """Pixel value → model input value, or None when raw pixels go in as they are."""
    if spec.dtype == "float32":
        return np.arange(256, dtype=np.float32)
    if spec.scale is None or spec.zero_point is None:
        if spec.dtype == "uint8":
            return None
        raise ModelError("an int8 input needs the manifest's scale and zero_point")
    info = np.iinfo(np.int8 if spec.dtype == "int8" else np.uint8)
    values = np.round(np.arange(256, dtype=np.float64) / spec.scale + spec.zero_point)
    return np.clip(values, info.min, info.max).astype(_DTYPES[spec.dtype])


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 + 1e-4 * abs(b)


class Classifier:
    """A loaded model: ``classify(rgb)`` preprocesses, quantises, runs, dequantises."""

    def __init__(
        self,
        folder: str | Path,
        manifest: ModelManifest | None = None,
        *,
        threads: int = 2,
        backend: str = "auto",
        categories: list[str] | None = None,
    ) -> None:
        self.folder = Path(folder)
        if manifest is None:
            path = self.folder / MANIFEST_FILE
            try:
                manifest = parse_manifest(path.read_bytes(), str(path))
            except OSError as exc:
                raise ManifestError(f"{path}: cannot read: {exc}") from None
        self.manifest = manifest
        self.version = manifest.version
        try:  # refuse at load a model this bin cannot feed, not on every frame
            check_method(manifest.input.resize)
        except ImageError as exc:
            raise ModelError(f"model {self.version}: {exc}") from None
        self.categories = list(manifest.categories)
        if categories is not None and categories != self.categories:
            raise ModelError(
                f"model {self.version}: categories {self.categories} do not match the "
                f"configured {categories}"
            )
        self.backend, self._interp = make_interpreter(
            str(self.folder / manifest.model_file), threads, backend
        )
        self._lock = threading.Lock()
        self._check_io()
        self._table = input_table(manifest.input)
        if (
            self._table is not None
            and self._table.dtype == np.uint8
            and np.array_equal(self._table, np.arange(256))
        ):
            self._table = None  # uint8, scale 1, zero point 0 (production): pixels as they are
        # The usual int8 input (scale 1, zero point -128) is p - 128: one XOR, no table lookup.
        self._xor = self._table is not None and np.array_equal(
            self._table.astype(np.int16), np.arange(256, dtype=np.int16) - 128
        )

    def _check_io(self) -> None:
        spec = self.manifest.input
        inputs = self._interp.get_input_details()
        outputs = self._interp.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelError(f"model {self.version}: expected one input and one output tensor")
        self._in, self._out = inputs[0], outputs[0]
        shape = tuple(int(s) for s in self._in["shape"])
        if shape != (1, *spec.shape):
            raise ModelError(
                f"model {self.version}: input shape {shape} does not match the manifest's "
                f"{(1, *spec.shape)}"
            )
        if np.dtype(self._in["dtype"]) != np.dtype(_DTYPES[spec.dtype]):
            raise ModelError(
                f"model {self.version}: input dtype {np.dtype(self._in['dtype'])} does not match "
                f"the manifest's {spec.dtype}"
            )
        scale, zero = self._in.get("quantization", (0.0, 0))
        wanted = spec.scale if spec.dtype != "float32" else None
        if (
            wanted is not None
            and scale
            and (not _close(float(scale), wanted) or int(zero) != spec.zero_point)
        ):
            raise ModelError(
                f"model {self.version}: input quantisation ({scale}, {zero}) does not match "
                f"the manifest's ({spec.scale}, {spec.zero_point})"
            )
        out_shape = tuple(int(s) for s in self._out["shape"])
        if out_shape not in ((1, len(self.categories)), (len(self.categories),)):
            raise ModelError(
                f"model {self.version}: output shape {out_shape} does not fit "
                f"{len(self.categories)} categories"
            )

    def prepare(self, rgb: np.ndarray) -> np.ndarray:
        """Frame → the model's input tensor (1, H, W, 3) of the model's dtype."""
        pixels = preprocess_for(rgb, self.manifest.input)
        if self._xor:
            return (pixels ^ np.uint8(128)).view(np.int8)[np.newaxis]
        if self._table is not None:
            return np.take(self._table, pixels)[np.newaxis]
        return pixels[np.newaxis]

    def run(self, tensor: np.ndarray) -> np.ndarray:
        """Run one prepared tensor; probabilities as float32 (dequantised, softmaxed if logits)."""
        with self._lock:
            self._interp.set_tensor(self._in["index"], tensor)
            self._interp.invoke()
            raw = self._interp.get_tensor(self._out["index"]).reshape(-1)
        scale, zero = self._out.get("quantization", (0.0, 0))
        out = (raw.astype(np.float32) - zero) * scale if scale else raw.astype(np.float32)
        if out.min() < -1e-3 or abs(float(out.sum()) - 1.0) > 0.05:
            shifted = np.exp(out - out.max())
            out = shifted / shifted.sum()
        return out

    def classify(self, rgb: np.ndarray) -> Prediction:
        tensor = self.prepare(rgb)
        start = time.perf_counter()
        probs = self.run(tensor)
        elapsed = (time.perf_counter() - start) * 1000
        best = int(np.argmax(probs))
        return Prediction(self.categories[best], float(probs[best]), probs, elapsed)

    def self_test(self, images: list[np.ndarray]) -> None:
        """Load is done; check every answer has the right shape and is finite."""
        for number, image in enumerate(images):
            probs = self.run(self.prepare(image))
            if probs.shape != (len(self.categories),):
                raise ModelError(f"model {self.version}: output shape {probs.shape} on self-test")
            if not np.all(np.isfinite(probs)):
                raise ModelError(
                    f"model {self.version}: non-finite output on self-test image {number}"
                )


def synthetic_images() -> list[np.ndarray]:
    """Self-test frames when no folder of real ones is configured: flat colours and noise."""
    return list(_synthetic())


@functools.cache
def _synthetic() -> tuple[np.ndarray, ...]:
    """Made once per process (every install self-tests on them), read-only so no caller can
    change what the next install is tested on."""
    rng = np.random.default_rng(7)
    flat = [
        np.full((120, 160, 3), c, np.uint8) for c in ((0, 0, 0), (255, 255, 255), (200, 30, 30))
    ]
    images = (*flat, rng.integers(0, 256, (240, 320, 3), dtype=np.uint8))
    for image in images:
        image.flags.writeable = False
    return images
