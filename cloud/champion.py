"""Fetch the model serving a channel and score it on this run's test images.

Which test images may judge both models? The split is a pure function of the image hash
and the split fractions (``cloud/dataset.py``), and each manifest records its fractions and
the few images moved off their hash split. So the champion's own split of every current
test image is known exactly, and only images that were test images for both models are
used: neither model trained or stopped early on them.
"""

import logging
from pathlib import Path

import numpy as np

from ..shared import layout
from ..shared.errors import ManifestError, StoreError
from ..shared.hashing import sha256_bytes
from ..shared.manifest import InputSpec, ModelManifest, SplitInfo, parse_manifest
from ..shared.preprocess import load_rgb, preprocess_for
from ..shared.store import ObjectStore
from .blessing import Champion
from .channels import latest
from .convert import TfliteModel
from .dataset import SPLIT_SALT, Dataset, split_of

logger = logging.getLogger(__name__)


class ChampionError(ManifestError):
    """The champion named by the channel cannot be fetched or does not verify."""


def split_for(sha: str, split: SplitInfo) -> str:
    """The split an image had in the run that recorded ``split``."""
    if sha in split.moved:
        return split.moved[sha]
    if split.salt != SPLIT_SALT:
        return "unknown"
    return split_of(sha, split.val_fraction, split.test_fraction)


def pixels_for(ds: Dataset, shas: list[str], spec: InputSpec) -> np.ndarray:
    """Test images prepared for a model's own input spec (it may differ from this run's)."""
    return np.stack([preprocess_for(load_rgb(Path(ds.path(s))), spec) for s in shas])


def fetch(store: ObjectStore, channel: str) -> tuple[ModelManifest, bytes] | None:
    """The champion's verified manifest and model bytes, None for an empty channel."""
    pointer = latest(store, channel)
    if pointer is None:
        return None
    try:
        raw = store.get(pointer.manifest_key)
        if sha256_bytes(raw) != pointer.manifest_sha256:
            raise ChampionError(f"{pointer.manifest_key}: sha256 does not match the pointer")
        manifest = parse_manifest(raw, pointer.manifest_key)
        model = store.get(layout.model_file_key(manifest.version, manifest.model_file))
    except StoreError as exc:
        raise ChampionError(f"champion {pointer.version} of {channel!r}: {exc}") from exc
    if sha256_bytes(model) != manifest.file(manifest.model_file).sha256:
        raise ChampionError(f"champion {manifest.version}: model file does not match its manifest")
    return manifest, model


def score_champion(
    store: ObjectStore,
    channel: str,
    ds: Dataset,
    test_shas: list[str],
    x_test: np.ndarray,
    x_spec: InputSpec,
    fallback_split: SplitInfo,
) -> Champion | None:
    """The champion scored on the shared test images (``x_test``, prepared for ``x_spec``,
    reused when the champion wants the same pixels); None for the first model."""
    found = fetch(store, channel)
    if found is None:
        return None
    manifest, model = found
    if manifest.categories != ds.categories:
        return Champion(
            manifest.version,
            manifest.categories,
            np.zeros(0, int),
            None,
            f"the categories changed (champion {manifest.version}: "
            f"{', '.join(manifest.categories)}; now: {', '.join(ds.categories)}): the champion "
            "cannot be scored on the same labels, so the floor alone decides",
        )
    split = manifest.dataset.split
    note = ""
    if split is None:
        split = fallback_split
        note = (
            f"champion {manifest.version} records no split; assumed this run's fractions "
            "and the hash split"
        )
    index = np.array([i for i, sha in enumerate(test_shas) if split_for(sha, split) == "test"], int)
    excluded = len(test_shas) - len(index)
    if excluded:
        note = (note + "; " if note else "") + (
            f"{excluded} test images were not test images for the champion and are left out "
            "of the comparison"
        )
    spec = manifest.input
    same = ("height", "width", "resize", "fit")
    if all(getattr(spec, k) == getattr(x_spec, k) for k in same):
        pixels = x_test[index]
    else:
        pixels = pixels_for(ds, [test_shas[i] for i in index], spec)
    probs = TfliteModel(model).predict(pixels) if len(index) else np.zeros((0, len(ds.categories)))
    logger.info("champion %s scored on %d shared test images", manifest.version, len(index))
    return Champion(manifest.version, manifest.categories, index, probs, note)
