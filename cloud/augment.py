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


def fixed_views(images: np.ndarray, config: TrainConfig, views: int, batch: int = 64) -> np.ndarray:
    """``views`` versions of every image: view 0 is the image itself, the rest augmented
    with fixed seeds (the cached pipeline's honest stand-in for live augmentation).
    Returns V x N x H x W x 3 uint8."""
    out = np.empty((views, *images.shape), np.uint8)
    out[0] = images
    for v in range(1, views):
        aug = augmenter(config, seed=config.seed + 101 * v)
        for i in range(0, len(images), batch):
            chunk = images[i : i + batch].astype("float32")
            done = chunk if aug is None else np.asarray(aug(chunk, training=True))
            out[v, i : i + batch] = np.clip(np.rint(done), 0, 255).astype(np.uint8)
    return out
