"""The image preprocessing contract: training, the converter's representative set,
evaluation and the edge all call these functions, so a model sees the same pixels everywhere.

Output is always uint8 RGB, HWC. Normalisation lives inside the model. OpenCV hands out BGR:
call ``from_bgr`` at the camera, never anywhere else (the original swapped red and blue).
"""

import io
import logging
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageError
from .manifest import InputSpec

logger = logging.getLogger(__name__)

_RESAMPLE = {
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
    "bicubic": Image.Resampling.BICUBIC,
}
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


def resize_rgb(
    image: np.ndarray, height: int, width: int, method: str = "bilinear", fit: str = "stretch"
) -> np.ndarray:
    """Resize RGB to (height, width); ``center_crop`` first crops to the target aspect."""
    image = ensure_rgb(image)
    if method not in _RESAMPLE:
        raise ImageError(f"unknown resize method {method!r}; expected one of {sorted(_RESAMPLE)}")
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
    pil = Image.fromarray(np.ascontiguousarray(image), "RGB")
    return np.asarray(pil.resize((width, height), _RESAMPLE[method]), dtype=np.uint8)


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
    """Preprocess according to a manifest's InputSpec."""
    return preprocess(image, spec.height, spec.width, spec.resize, spec.fit, source)
