"""The image preprocessing contract: training, the converter's representative set,
evaluation and the edge all call these functions, so a model sees the same pixels everywhere.

Output is always uint8 RGB, HWC. Normalisation lives inside the model. OpenCV hands out BGR:
call ``from_bgr`` at the camera, never anywhere else (the original swapped red and blue).
"""

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageError
from .manifest import InputSpec

_RESAMPLE = {
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
    "bicubic": Image.Resampling.BICUBIC,
}
MAX_PIXELS = 64_000_000


def decode_rgb(data: bytes, source: str = "image") -> np.ndarray:
    """Decode JPEG/PNG/… bytes into HxWx3 uint8 RGB, honouring EXIF orientation."""
    if not data:
        raise ImageError(f"{source}: empty file")
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > MAX_PIXELS:
                raise ImageError(f"{source}: {img.width}x{img.height} is too large")
            img.load()
            upright = ImageOps.exif_transpose(img) or img
            return np.asarray(upright.convert("RGB"), dtype=np.uint8)
    except ImageError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ImageError(f"{source}: cannot decode image: {exc}") from None


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
