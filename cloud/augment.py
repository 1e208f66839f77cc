"""Augmentation (flips, rotation, zoom, brightness and contrast) for training batches only,
never validation or test."""

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
    if config.vertical_flip:  # a layer of its own: Keras's "horizontal_and_vertical" flips
        # both axes on one coin, which is only a half turn, never one axis alone
        layers.append(keras.layers.RandomFlip("vertical", seed=seed + 5))
    if config.rotation > 0:
        layers.append(
            keras.layers.RandomRotation(config.rotation, fill_mode="reflect", seed=seed + 1)
        )
    if config.zoom > 0:
        layers.append(
            keras.layers.RandomZoom((-config.zoom, 0.0), fill_mode="reflect", seed=seed + 2)
        )
    if config.color > 0:
        layers.append(keras.layers.RandomBrightness(config.color, seed=seed + 3))
        layers.append(keras.layers.RandomContrast(config.color, seed=seed + 4))
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


def mixup(ds: Any, alpha: float, seed: int) -> Any:
    """Mixup on a batched ``(x, onehot, weight)`` dataset: every example is blended with the
    batch's reversed order (the batches are shuffled, so that pairing is random) by a
    Beta(alpha, alpha) weight of its own, and so are its label and sample weight. On cached
    activations this is the one augmentation that is not limited to the fixed views.
    ``alpha`` 0: the dataset unchanged."""
    if alpha <= 0:
        return ds
    import tensorflow as tf

    @tf.autograph.experimental.do_not_convert
    def blend(batch: Any, r: Any) -> Any:
        x, y, w = batch
        b = tf.shape(y)[0]
        g = tf.random.stateless_gamma([2, b], seed=tf.stack([r, r // 7 + 1]), alpha=alpha)
        lam = tf.math.divide_no_nan(g[0], g[0] + g[1])
        lx = tf.reshape(lam, tf.concat([[b], tf.ones([tf.rank(x) - 1], tf.int32)], 0))
        ly = lam[:, None]
        return (
            lx * x + (1 - lx) * tf.reverse(x, [0]),
            ly * y + (1 - ly) * tf.reverse(y, [0]),
            lam * w + (1 - lam) * tf.reverse(w, [0]),
        )

    pairs = tf.data.Dataset.zip((ds, tf.data.Dataset.random(seed=seed)))
    return pairs.map(blend, num_parallel_calls=tf.data.AUTOTUNE)
