"""The image preprocessing contract: training, the converter's representative set,
evaluation and the edge all call these functions, so a model sees the same pixels everywhere.

Output is always uint8 RGB, HWC. Normalisation lives inside the model. OpenCV hands out BGR:
call ``from_bgr`` at the camera, never anywhere else (the original swapped red and blue).

Resize methods (the manifest's ``InputSpec.resize`` names one; a model is always fed with the
method it was trained with):

- ``bilinear`` / ``bicubic`` / ``nearest``: Pillow's resampling (antialiased when shrinking).
  Every model trained before ``area_linear`` existed says ``bilinear`` and keeps exactly these
  pixels on every path.
- ``area_linear`` (:data:`DEFAULT_RESIZE` where OpenCV is installed; not for new models,
  see :data:`NEW_MODEL_RESIZE`): an exact
  integer box average (OpenCV ``INTER_AREA`` at an integer factor per axis, the largest that
  keeps the image at least the target size), then OpenCV's bit-exact bilinear
  (``INTER_LINEAR_EXACT``) for the remaining factor below 2. Both steps are integer
  arithmetic, so the cloud and a Pi give the same pixels; from a 640x480 frame it is several
  times faster than Pillow's antialiased bilinear, which cost more than int8 inference. A
  640x480 frame and its exact 2x2 box average (a 320x240 low-res stream) give the same input.
  Its linear step is not antialiased: from TrashNet's 384x288 the box factor is 1 and the
  whole 1.71x downscale skips part of the pixels.
- ``area_antialiased`` (edge 0.3.0; :data:`NEW_MODEL_RESIZE`): the same exact integer box
  step, then Pillow's antialiased bilinear (fixed-point integer arithmetic, like
  ``bilinear``) for the rest. When the box factor is 1 (TrashNet's 384x288 to 224x224, the
  Pi's 320x240 stream to 224x224) it *is* ``bilinear``, pixel for pixel; from 640x480 it
  costs about half of Pillow's full resize, and to an exact factor (640x480 to 240x320) only
  the box step runs. A frame and its 2x2 box average still give the same input. A new name,
  not a change to ``area_linear``: manifests that record ``area_linear`` keep its pixels.
"""

import importlib.util
import io
import logging
from pathlib import Path
from types import ModuleType
from typing import Final, Literal, get_args

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageError
from .manifest import InputSpec
from .version import parse_version

logger = logging.getLogger(__name__)

ResizeMethod = Literal["bilinear", "nearest", "bicubic", "area_linear", "area_antialiased"]
_RESAMPLE = {
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
    "bicubic": Image.Resampling.BICUBIC,
}
_OPENCV_METHODS = frozenset({"area_linear", "area_antialiased"})
METHODS: Final[tuple[str, ...]] = get_args(ResizeMethod)
#: Found without importing it: the clean tool and the CLI must not pay for OpenCV at import.
OPENCV_AVAILABLE: Final[bool] = importlib.util.find_spec("cv2") is not None
#: The fast method where OpenCV is installed (Pillow's bilinear otherwise): what a model
#: trained with ``area_linear`` gets, and what benchmarks and tests of that path use.
DEFAULT_RESIZE: Final[ResizeMethod] = "area_linear" if OPENCV_AVAILABLE else "bilinear"
#: The resize a NEW model is trained with (and its manifest records): ``area_antialiased``.
#: Where no integer box step applies (TrashNet's 384×288, the demo's 256×192, anything under
#: twice the input) it is Pillow's antialiased ``bilinear`` pixel for pixel, so every
#: cross-validated figure of ``bilinear`` holds for it; from a 640×480 frame it halves the
#: edge's preprocessing (docs/benchmarks.md). Not ``area_linear``: its int8 model lost more
#: against its float twin (5-fold CV on TrashNet: 1.3 points, against 0.1 with bilinear),
#: because its linear step is not antialiased. Such a model needs edge 0.3.0 (METHOD_MIN_EDGE).
NEW_MODEL_RESIZE: Final[ResizeMethod] = "area_antialiased"
#: The first edge version able to feed a model with this resize. Methods not listed work on
#: every edge. A manifest naming one declares it as ``min_edge_version`` (``min_edge_for``),
#: so an older bin refuses the model by version instead of feeding it wrong pixels.
METHOD_MIN_EDGE: Final[dict[str, str]] = {"area_linear": "0.2.0", "area_antialiased": "0.3.0"}
_cv2: ModuleType | None = None
MAX_PIXELS = 64_000_000
#: Bumped whenever decoding changes what pixels an image gives (caches of decoded pixels
#: key on it, so a fix reaches training without a stale cache hiding it).
DECODE_VERSION = 2
#: Modes that convert to RGB losslessly in meaning (8 bits per channel, or a palette).
_EIGHT_BIT = {
    "RGB",
    "RGBA",
    "RGBX",
    "RGBa",
    "L",
    "LA",
    "La",
    "1",
    "P",
    "PA",
    "CMYK",
    "YCbCr",
    "LAB",
    "HSV",
}
_ALPHA = {"RGBA", "RGBa", "LA", "La", "PA"}


def _to_rgb(img: Image.Image, source: str) -> np.ndarray:
    """Any Pillow mode to HxWx3 uint8, or ImageError. High bit depths are scaled, not clipped
    (Pillow's ``convert("RGB")`` clips a 16-bit gray image to solid white)."""
    mode = img.mode
    if mode == "P" and "transparency" in img.info:
        img, mode = img.convert("RGBA"), "RGBA"
    if mode in _ALPHA:
        # Transparent areas become white: a fixed choice (the review page shows these pixels).
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"), dtype=np.uint8)
    if mode in _EIGHT_BIT:
        return np.asarray(img.convert("RGB"), dtype=np.uint8)
    if mode.startswith("I;16") or mode == "I":
        raw = np.asarray(img)
        if raw.size and (int(raw.min()) < 0 or int(raw.max()) > 65535):
            raise ImageError(
                f"{source}: {mode} image with values outside 0..65535 cannot be mapped to 8 bits"
            )
        gray = (raw.astype(np.uint32) * 255 + 32767) // 65535  # 16-bit full scale -> 8-bit
    elif mode == "F":
        raw = np.asarray(img, dtype=np.float64)
        if raw.size and (not np.isfinite(raw).all() or raw.min() < 0.0 or raw.max() > 1.0):
            raise ImageError(f"{source}: floating-point image outside 0..1 is not supported")
        gray = np.rint(raw * 255.0)
    else:
        raise ImageError(f"{source}: unsupported image mode {mode!r}")
    g8 = gray.astype(np.uint8)
    return np.repeat(g8[:, :, None], 3, axis=2)


def decode_rgb(data: bytes, source: str = "image") -> np.ndarray:
    """Decode JPEG/PNG/… bytes into HxWx3 uint8 RGB, honouring EXIF orientation.

    The one decoder for training, setup, the edge and the review page, so every path sees the
    same pixels. Every failure (corrupt, truncated, too large, a decompression bomb, an
    unsupported mode) is an ImageError naming ``source``: callers skip one image, not a batch.
    """
    if not data:
        raise ImageError(f"{source}: empty file")
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > MAX_PIXELS:
                raise ImageError(
                    f"{source}: {img.width}x{img.height} is too large (over {MAX_PIXELS} pixels)"
                )
            img.load()
            upright = ImageOps.exif_transpose(img) or img
            return _to_rgb(upright, source)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{source}: refused as a decompression bomb: {exc}") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, MemoryError) as exc:
        raise ImageError(f"{source}: cannot decode image: {exc}") from None
    except Exception as exc:  # a decoder plugin bug must not take a whole batch down
        logger.debug("decode failure", exc_info=True)
        raise ImageError(f"{source}: cannot decode image ({type(exc).__name__}: {exc})") from None


def load_rgb(path: str | Path) -> np.ndarray:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ImageError(f"{path}: cannot read: {exc}") from None
    return decode_rgb(data, str(path))


def from_bgr(frame: np.ndarray) -> np.ndarray:
    """OpenCV BGR (or BGRA) to RGB; the only place a channel swap belongs."""
    if frame.ndim != 3 or frame.shape[2] not in (3, 4):
        raise ImageError(f"expected an HxWx3 BGR frame, got shape {frame.shape}")
    return np.ascontiguousarray(frame[:, :, 2::-1])


def ensure_rgb(image: np.ndarray) -> np.ndarray:
    """Accept gray (HxW), RGB, or RGBA; return HxWx3 uint8."""
    if image.dtype != np.uint8:
        raise ImageError(f"expected uint8 pixels, got {image.dtype}")
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    if image.ndim == 3 and image.shape[2] == 4:
        return np.ascontiguousarray(image[:, :, :3])
    raise ImageError(f"expected an HxW, HxWx3 or HxWx4 image, got shape {image.shape}")


def _opencv() -> ModuleType:
    """OpenCV, imported on first use; an ImageError (not an ImportError deep in a batch)
    saying what to install when it is missing."""
    global _cv2
    if _cv2 is None:
        try:
            import cv2
        except ImportError as exc:
            raise ImageError(
                f"resize method needs OpenCV, which is not importable here ({exc}); install "
                "opencv-python-headless (it comes with recyclops[edge])"
            ) from None
        _cv2 = cv2
    return _cv2


def check_method(method: str) -> None:
    """Raise ImageError unless ``method`` is known and usable on this machine. Call it once
    before a batch or at model load, so a missing OpenCV is one clear error, not one per image."""
    if method not in METHODS:
        raise ImageError(f"unknown resize method {method!r}; expected one of {list(METHODS)}")
    if method in _OPENCV_METHODS:
        _opencv()


def _box_step(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """The exact integer box average of the ``area_*`` methods: per axis the largest integer
    factor that keeps the image at least the target size (1: nothing to do)."""
    cv2 = _opencv()
    h, w = image.shape[:2]
    fy, fx = max(1, h // height), max(1, w // width)
    if fx == 1 and fy == 1:
        return image
    # Drop the few pixels (< the factor) that keep the factor from being exact: OpenCV's
    # integer-factor area path is fast and exact; a fractional one is neither.
    dy, dx = h % fy, w % fx
    if dy or dx:
        image = image[dy // 2 : h - (dy - dy // 2), dx // 2 : w - (dx - dx // 2)]
        h, w = image.shape[:2]
    out = cv2.resize(np.ascontiguousarray(image), (w // fx, h // fy), interpolation=cv2.INTER_AREA)
    return np.asarray(out, dtype=np.uint8)


def _area_linear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Integer box average, then bit-exact bilinear for the rest (< 2x); see the module doc."""
    cv2 = _opencv()
    image = _box_step(image, height, width)
    if image.shape[:2] == (height, width):
        return np.ascontiguousarray(image)
    out = cv2.resize(
        np.ascontiguousarray(image), (width, height), interpolation=cv2.INTER_LINEAR_EXACT
    )
    return np.asarray(out, dtype=np.uint8)


def _area_antialiased(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Integer box average, then Pillow's antialiased bilinear for the rest (< 2x): the box
    step does the bulk cheaply, the antialiased step keeps a residual of up to 2x from
    skipping pixels (``area_linear``'s weakness). See the module doc."""
    image = _box_step(image, height, width)
    if image.shape[:2] == (height, width):
        return np.ascontiguousarray(image)
    return _pillow(image, height, width, "bilinear")


def _pillow(image: np.ndarray, height: int, width: int, method: str) -> np.ndarray:
    pil = Image.fromarray(np.ascontiguousarray(image), "RGB")
    return np.asarray(pil.resize((width, height), _RESAMPLE[method]), dtype=np.uint8)


def resize_rgb(
    image: np.ndarray, height: int, width: int, method: str = "bilinear", fit: str = "stretch"
) -> np.ndarray:
    """Resize RGB to (height, width); ``center_crop`` first crops to the target aspect."""
    image = ensure_rgb(image)
    if method not in _RESAMPLE and method not in _OPENCV_METHODS:
        raise ImageError(f"unknown resize method {method!r}; expected one of {list(METHODS)}")
    h, w = image.shape[:2]
    if fit == "center_crop":
        target = width / height
        if w / h > target:
            new_w = max(1, round(h * target))
            x0 = (w - new_w) // 2
            image = image[:, x0 : x0 + new_w]
        else:
            new_h = max(1, round(w / target))
            y0 = (h - new_h) // 2
            image = image[y0 : y0 + new_h]
    elif fit != "stretch":
        raise ImageError(f"unknown fit {fit!r}; expected 'stretch' or 'center_crop'")
    if image.shape[:2] == (height, width):
        return np.ascontiguousarray(image)
    if method == "area_linear":
        return _area_linear(image, height, width)
    if method == "area_antialiased":
        return _area_antialiased(image, height, width)
    return _pillow(image, height, width, method)


def preprocess(
    image: bytes | np.ndarray,
    height: int,
    width: int,
    method: str = "bilinear",
    fit: str = "stretch",
    source: str = "image",
) -> np.ndarray:
    """Bytes or an RGB array in, model-ready uint8 HxWx3 RGB out."""
    rgb = decode_rgb(image, source) if isinstance(image, bytes | bytearray) else image
    return resize_rgb(rgb, height, width, method, fit)


def preprocess_for(image: bytes | np.ndarray, spec: InputSpec, source: str = "image") -> np.ndarray:
    """THE contract: an image as the model described by ``spec`` must see it. Training's pixel
    cache, calibration, evaluation, the champion's scoring, the golden set and the edge all
    call this with the model's own InputSpec."""
    return preprocess(image, spec.height, spec.width, spec.resize, spec.fit, source)


def new_model_input(height: int, width: int | None = None, resize: str | None = None) -> InputSpec:
    """The input a NEW model is trained with (its manifest's InputSpec before conversion
    fills in dtype, scale and zero point): ``resize`` or :data:`NEW_MODEL_RESIZE`, stretched.
    Old models keep the spec their manifest records."""
    return InputSpec.model_validate(
        {
            "height": height,
            "width": height if width is None else width,
            "resize": resize or NEW_MODEL_RESIZE,
        }
    )


def min_edge_for(spec: InputSpec, base: str = "0.1.0") -> str:
    """The oldest edge version that can feed ``spec`` (``base`` when every edge can)."""
    need = METHOD_MIN_EDGE.get(spec.resize, base)
    return max(need, base, key=parse_version)
