"""Where the MobileNetV2 ImageNet weights come from, and whether a file really is them.

The 1.0/224 no-top file ships inside the package (``cloud/pretrained/``), so
``weights = "imagenet"`` works on a machine that has never been online. A file in the Keras
cache (``$KERAS_HOME/models``, default ``~/.keras/models``) wins over the shipped one, and
with neither Keras downloads the official file as usual.

Two legitimate files exist and they are not byte-identical: the official Keras download
(9,406,464 bytes) and the shipped one, assembled from the same TF-slim checkpoint. So the
check is by content, not by hash: a file is accepted when every layer of
``MobileNetV2(include_top=False, alpha=…)`` finds weights of exactly its shapes in it, in
order, and every value is finite. That is what loading needs and both files have it.
"""

import hashlib
import logging
import os
import shutil
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..shared.errors import RecyclopsError

logger = logging.getLogger(__name__)

#: The sizes Keras publishes ImageNet weights for (convolutions do not depend on the size).
SIZES = (96, 128, 160, 192, 224)
SHIPPED_ALPHA = 1.0
SHIPPED_SIZE = 224
#: Hashes of files whose origin is known; anything else must pass the content check alone.
KNOWN_SHA256 = {
    "71e4c4ec4aa24c9c951b9265d6de42e1336dcf614c2214fa6a989208615e232c": (
        "the file recyclops ships, assembled from the TF-slim mobilenet_v2_1.0_224 checkpoint"
    ),
}
DOWNLOAD_URL = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/"


class WeightsError(RecyclopsError):
    """A weights file is missing or is not MobileNetV2 ImageNet weights."""


@dataclass(frozen=True)
class Found:
    """A weights file and where it was found (printed so a user knows which one trained)."""

    path: Path
    origin: str


def file_name(alpha: float = SHIPPED_ALPHA, size: int = SHIPPED_SIZE) -> str:
    """The name Keras downloads and caches the no-top file under."""
    return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_{size}_no_top.h5"


def keras_home() -> Path:
    """``$KERAS_HOME``, else ``~/.keras`` (``/tmp/.keras`` when home is read-only), as Keras."""
    if "KERAS_HOME" in os.environ:
        return Path(os.environ["KERAS_HOME"])
    home = Path.home()
    return (home if os.access(home, os.W_OK) else Path("/tmp")) / ".keras"


def cache_dir() -> Path:
    return keras_home() / "models"


def shipped() -> Path | None:
    """The file inside the installed package, if this installation has it."""
    path = Path(str(resources.files("recyclops.cloud") / "pretrained" / file_name()))
    return path if path.is_file() else None


def locate(alpha: float = SHIPPED_ALPHA, size: int = SHIPPED_SIZE) -> Found | None:
    """The Keras cache first (exact size, then 224), then the shipped file; None: download."""
    cache = cache_dir()
    names = [file_name(alpha, size)] if size in SIZES and size != SHIPPED_SIZE else []
    names.append(file_name(alpha, SHIPPED_SIZE))
    for name in names:
        if (cache / name).is_file():
            return Found(cache / name, f"the Keras cache ({cache})")
    package = shipped()
    if package is not None and float(alpha) == SHIPPED_ALPHA:
        return Found(package, "shipped with recyclops")
    return None


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def file_shapes(path: Path) -> list[tuple[str, list[tuple[int, ...]]]]:
    """(layer, weight shapes) for every layer with weights, in the file's order.

    Non-finite values count as damage: a file truncated or overwritten in place still has
    its shapes, but not its numbers."""
    import h5py

    out = []
    try:
        with h5py.File(path, "r") as f:
            weights = f.get("model_weights", f)
            for layer in (_text(n) for n in weights.attrs["layer_names"]):
                group = weights[layer]
                names = [_text(n) for n in group.attrs.get("weight_names", [])]
                if not names:
                    continue
                arrays = [np.asarray(group[n]) for n in names]
                if not all(np.isfinite(a).all() for a in arrays):
                    raise WeightsError(f"{path}: layer {layer!r} has non-finite weights")
                out.append((layer, [tuple(a.shape) for a in arrays]))
    except WeightsError:
        raise
    except (OSError, KeyError, ValueError) as exc:
        raise WeightsError(f"{path}: not a Keras HDF5 weights file ({exc})") from None
    return out


def check_against(base: Any, path: Path) -> None:
    """Raise WeightsError unless ``path`` has exactly ``base``'s weight shapes, layer by layer."""
    expected = [
        (layer.name, [tuple(w.shape) for w in layer.weights])
        for layer in base.layers
        if layer.weights
    ]
    got = file_shapes(path)
    if len(got) != len(expected):
        raise WeightsError(
            f"{path}: {len(got)} layers with weights, {base.name} has {len(expected)} "
            "(a different network or width multiplier)"
        )
    for (name, want), (file_layer, have) in zip(expected, got, strict=True):
        if want != have:
            raise WeightsError(
                f"{path}: layer {name!r} (file: {file_layer!r}) expects shapes {want}, "
                f"the file has {have}"
            )


def load_into(base: Any, path: Path) -> None:
    """Verify by content, then load; every failure names the file and says what it is."""
    check_against(base, path)
    try:
        base.load_weights(str(path))
    except (OSError, ValueError) as exc:
        raise WeightsError(f"{path}: cannot load into {base.name}: {exc}") from None


def describe(path: Path) -> str:
    """A line for logs and the demo: which file, which origin when known."""
    digest = sha256(path)
    origin = KNOWN_SHA256.get(digest, "content-verified")
    return f"{path.name} ({path.stat().st_size:,} bytes, sha256 {digest[:12]}…, {origin})"


def verify_file(path: Path, alpha: float = SHIPPED_ALPHA) -> str:
    """Build a weightless MobileNetV2 and check ``path`` against it (imports Keras)."""
    import keras

    base = keras.applications.MobileNetV2(
        input_shape=(SHIPPED_SIZE, SHIPPED_SIZE, 3), include_top=False, weights=None, alpha=alpha
    )
    check_against(base, path)
    return describe(path)


def install(source: Path, keras_home_dir: Path | None = None) -> Path:
    """Verify ``source`` and copy it into the Keras cache atomically (plain Keras finds it)."""
    verify_file(source)
    target = (keras_home_dir or keras_home()) / "models" / file_name()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def main(argv: list[str]) -> int:
    """``python -m recyclops.cloud.weights [FILE …]``: verify files (default: what training
    would use) and print what they are. Exit 1 when one is not MobileNetV2 weights."""
    paths = [Path(a) for a in argv]
    if not paths:
        found = locate()
        if found is None:
            print(f"no {file_name()} in {cache_dir()} or the package: Keras would download it")
            return 1
        print(f"training would use {found.path} ({found.origin})")
        paths = [found.path]
    code = 0
    for path in paths:
        try:
            print(f"ok: {verify_file(path)}")
        except WeightsError as exc:
            print(f"NOT MobileNetV2 weights: {exc}", file=sys.stderr)
            code = 1
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
