"""What the page shows of an image: the pixels training will see, or why there are none.

Why: the browser decodes a 16-bit PNG, a CMYK JPEG or an image with transparency its own way,
so a reviewer could label a picture that training sees differently or cannot decode at all.
Every image goes through ``decode_rgb`` (the one decoder of setup, training and the edge);
a plain 8-bit JPEG is served as stored, anything else as a PNG of exactly those pixels, and
an image that is missing, corrupt or undecodable carries the reason ``setup`` will give.
"""

import io
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass

from PIL import Image

from recyclops.shared import layout
from recyclops.shared.errors import ImageError, ObjectNotFoundError
from recyclops.shared.hashing import sha256_bytes
from recyclops.shared.preprocess import decode_rgb
from recyclops.shared.store import ObjectStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageView:
    """``problem`` is None for a usable image; then ``body`` is what the browser gets."""

    sha256: str
    problem: str | None
    body: bytes = b""
    content_type: str = "image/jpeg"
    as_stored: bool = True  # the stored bytes are shown unchanged (a presigned URL is fine)


def _plain_jpeg(data: bytes) -> bool:
    """An 8-bit RGB or gray JPEG without a rotation: every browser shows decode_rgb's pixels."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            orientation = img.getexif().get(0x0112, 1)
            return img.format == "JPEG" and img.mode in ("RGB", "L") and orientation == 1
    except Exception:
        return False


def view_image(store: ObjectStore, sha: str) -> ImageView:
    """Read, verify and decode one image. A store failure raises StoreError (not the image's
    fault, so not a flag); everything that setup would drop is a ``problem``."""
    key = layout.image_key(sha)
    try:
        data = store.get(key)
    except ObjectNotFoundError:
        return ImageView(sha, f"{key} is missing from the store")
    if sha256_bytes(data) != sha:
        return ImageView(sha, f"{key}: content does not match its hash (corrupt upload)")
    try:
        rgb = decode_rgb(data, key)
    except ImageError as exc:
        return ImageView(sha, str(exc))
    if _plain_jpeg(data):
        return ImageView(sha, None, data)
    buf = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buf, "PNG", compress_level=1)
    return ImageView(sha, None, buf.getvalue(), "image/png", as_stored=False)


class ImageViews:
    """A small cache: the state (for the flag) and the image request read each image once."""

    def __init__(self, store: ObjectStore, size: int = 16) -> None:
        self.store = store
        self.size = size
        self._cache: OrderedDict[str, ImageView] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, sha: str) -> ImageView:
        with self._lock:
            if sha in self._cache:
                self._cache.move_to_end(sha)
                return self._cache[sha]
        view = view_image(self.store, sha)
        if view.problem:
            logger.warning("image %s cannot be shown: %s", sha[:12], view.problem)
        with self._lock:
            self._cache[sha] = view
            while len(self._cache) > self.size:
                self._cache.popitem(last=False)
        return view
