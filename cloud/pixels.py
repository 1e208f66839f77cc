"""Decode every image once, through the shared preprocessing, into a cached uint8 array.

Decoding runs in a thread pool (PIL releases the GIL); the result is cached beside the data
set keyed by size, resize method and the exact list of hashes, so a second run starts at once.
"""

import hashlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..shared import layout
from ..shared.config import TrainConfig
from ..shared.errors import ImageError
from ..shared.manifest import InputSpec
from ..shared.preprocess import (
    DECODE_VERSION,
    NEW_MODEL_RESIZE,
    check_method,
    load_rgb,
    new_model_input,
    preprocess_for,
)
from .dataset import Dataset

logger = logging.getLogger(__name__)

CACHE_DIR = ".cache"


@dataclass
class Pixels:
    shas: list[str]
    images: np.ndarray  # N x H x W x 3 uint8
    problems: list[str] = field(default_factory=list)


def model_input(config: TrainConfig) -> InputSpec:
    """The input a model trained with ``config`` gets (its size and resize)."""
    height, width = config.input_hw
    return new_model_input(height, width, config.resize)


def spec_pixels(ds: Dataset, shas: list[str], spec: InputSpec, cache: bool = True) -> Pixels:
    """:func:`load_pixels` for a model's input spec."""
    return load_pixels(ds, shas, spec.height, spec.resize, cache=cache, width=spec.width)


def _load(sha: str, path: Path, spec: InputSpec) -> np.ndarray | str:
    """Pixels, or the problem naming the image's store key (never raises for one image: a
    single bad upload must not stop a training run)."""
    try:
        return preprocess_for(load_rgb(path), spec, str(path))
    except ImageError as exc:
        return f"{layout.image_key(sha)}: {exc}"
    except Exception as exc:  # MemoryError on a huge frame, a decoder bug
        return f"{layout.image_key(sha)}: {path}: cannot load ({type(exc).__name__}: {exc})"


def load_pixels(
    ds: Dataset,
    shas: list[str],
    size: int,
    method: str = NEW_MODEL_RESIZE,
    workers: int | None = None,
    cache: bool = True,
    width: int | None = None,
) -> Pixels:
    """Images for ``shas`` in order; an undecodable one is dropped and reported, not fatal.

    ``method`` must be the resize the model's manifest will name (``InputSpec.resize``), or
    the model is trained on other pixels than it is served. An unknown or unusable method (no
    OpenCV for ``area_linear``) is one ImageError here, before any image is read, not every
    image silently dropped as a per-image problem. The pixels are ``preprocess_for``'s for
    that spec: the same function the edge calls on every frame.
    """
    check_method(method)
    width = width or size
    want = InputSpec.model_validate({"height": size, "width": width, "resize": method})
    # DECODE_VERSION: a decoding fix must not be hidden by pixels cached before it
    dims = str(size) if width == size else f"{size}x{width}"
    spec = f"d{DECODE_VERSION}:{dims}:{method}:{','.join(shas)}"
    key = hashlib.sha256(spec.encode()).hexdigest()[:16]
    cache_file = (ds.cache_dir or ds.root / CACHE_DIR) / f"pixels-{dims}-{key}.npz"
    if cache and cache_file.is_file():
        try:
            with np.load(cache_file) as data:
                return Pixels(list(data["shas"]), data["images"], list(data["problems"]))
        except (OSError, ValueError, KeyError) as exc:
            logger.warning("ignoring unreadable cache %s: %s", cache_file, exc)
    workers = workers or min(8, (os.cpu_count() or 2) * 2)
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(lambda s: _load(s, ds.path(s), want), shas))
    kept = [s for s, r in zip(shas, results, strict=True) if not isinstance(r, str)]
    problems = [r for r in results if isinstance(r, str)]
    for problem in problems:
        logger.warning("skipping image: %s", problem)
    arrays = [r for r in results if not isinstance(r, str)]
    images = np.stack(arrays) if arrays else np.zeros((0, size, width, 3), np.uint8)
    out = Pixels(kept, images, problems)
    if cache:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_name(cache_file.name + ".tmp.npz")
        np.savez(
            tmp,
            shas=np.array(kept, dtype=str),
            images=images,
            problems=np.array(problems, dtype=str),
        )
        os.replace(tmp, cache_file)
    return out
