"""Augmentation (flip, rotation, zoom) for training batches only, never validation or test."""

from typing import Any

import numpy as np

from ..shared.config import TrainConfig


def augmenter(config: TrainConfig, seed: int | None = None) -> Any | None:
    """A Keras layer stack on float pixels (0..255), or None when augmentation is off."""
    import keras

    if not config.augment:
        return None
    seed = config.seed if seed is None else seed
    layers: list[Any] = []
    if config.flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if config.rotation > 0:
        layers.append(
            keras.layers.RandomRotation(config.rotation, fill_mode="reflect", seed=seed + 1)
        )
    if config.zoom > 0:
        layers.append(
            keras.layers.RandomZoom((-config.zoom, 0.0), fill_mode="reflect", seed=seed + 2)
        )
    return keras.Sequential(layers, name="augment") if layers else None


def fixed_view(images: np.ndarray, config: TrainConfig, view: int, batch: int = 64) -> np.ndarray:
    """One fixed version of every image (N x H x W x 3 uint8): view 0 is the image itself, the
    others augmented with a seed of their own (the cached pipeline's honest stand-in for live
    augmentation). One view at a time, so memory holds one copy of the images, not V."""
    if view == 0:
        return images
    out = np.empty_like(images, np.uint8)
    aug = augmenter(config, seed=config.seed + 101 * view)
    for i in range(0, len(images), batch):
        chunk = images[i : i + batch].astype("float32")
        done = chunk if aug is None else np.asarray(aug(chunk, training=True))
        out[i : i + batch] = np.clip(np.rint(done), 0, 255).astype(np.uint8)
    return out
