"""The network: MobileNetV2 base (frozen, BatchNorm in inference mode) and a small head.

The model takes raw RGB pixels (0..255, float32 so the int8 converter can give it a uint8
input with scale 1 and zero point 0) and normalises to [-1, 1] itself, so the edge feeds
exactly what the shared preprocessing returns.

For fine-tuning the base is split at a clean cut: ``lower`` (always frozen) and ``upper``
(its top layers, trainable except BatchNorm). The cached pipeline runs ``lower`` once per
image view and trains ``upper`` + head on those activations.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..shared.config import TrainConfig
from ..shared.errors import RecyclopsError
from . import weights

logger = logging.getLogger(__name__)

WEIGHTS_HINT = (
    "MobileNetV2 ImageNet weights (alpha {alpha}) are neither in {cache} nor shipped with "
    "recyclops, and Keras could not download them: put {name} there, "
    "pass --weights PATH, or --weights none"
)


class ModelBuildError(RecyclopsError):
    """The base network or its weights cannot be built."""


@dataclass
class Parts:
    """The pieces one model is assembled from (they share weights)."""

    base: Any
    lower: Any  # pixels in [-1,1] -> cut activations
    upper: Any  # cut activations -> base output (7x7xC)
    head: Any  # base output -> probabilities
    pooled_head: Any  # pooled features -> probabilities (same Dropout/Dense as head)
    cut: str
    trainable_layers: int
    #: BatchNorm keeps ImageNet statistics; False only for --weights none (nothing to keep)
    bn_frozen: bool = True

    @property
    def upper_training(self) -> bool | None:
        """The ``training`` argument for ``upper`` while fine-tuning."""
        return False if self.bn_frozen else None

    def full(self, fine_tuning: bool = False) -> Any:
        """uint8-valued float pixels in, probabilities out: the exported model."""
        import keras

        size = self.base.input.shape[1:]
        pixels = keras.Input(size, dtype="float32", name="pixels")
        x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="normalise")(pixels)
        x = self.lower(x, training=False)
        x = self.upper(x, training=self.upper_training if fine_tuning else False)
        return keras.Model(pixels, self.head(x), name="recyclops")


def build_base(config: TrainConfig) -> Any:
    """MobileNetV2 without its top. ``imagenet`` loads a verified local file (the Keras cache,
    else the one shipped in the package) and lets Keras download only when there is none."""
    import keras

    shape = (*config.input_hw, 3)
    choice = config.weights
    try:
        base = keras.applications.MobileNetV2(
            input_shape=shape, include_top=False, weights=None, alpha=config.alpha
        )
        if choice == "imagenet":
            found = weights.locate(config.alpha, config.image_size)
            if found is None:
                return _download(config, shape)
            weights.load_into(base, found.path)
            logger.info("ImageNet weights from %s: %s", found.origin, found.path)
        elif choice != "none":
            path = Path(choice)
            if not path.is_file():
                raise ModelBuildError(
                    f"--weights {choice}: no such file (imagenet, none or a path)"
                )
            weights.load_into(base, path)
        return base
    except weights.WeightsError as exc:
        raise ModelBuildError(f"MobileNetV2 weights: {exc}") from None
    except ValueError as exc:
        raise ModelBuildError(f"cannot build MobileNetV2: {exc}") from None


def _download(config: TrainConfig, shape: tuple[int, int, int]) -> Any:
    """Keras's own download into $KERAS_HOME/models (online machines, other widths)."""
    import keras

    size = config.image_size if config.image_size in weights.SIZES else weights.SHIPPED_SIZE
    try:
        return keras.applications.MobileNetV2(
            input_shape=shape, include_top=False, weights="imagenet", alpha=config.alpha
        )
    except Exception as exc:  # urllib errors, ValueError for odd sizes
        hint = WEIGHTS_HINT.format(
            alpha=float(config.alpha),
            cache=weights.cache_dir(),
            name=weights.file_name(config.alpha, size),
        )
        raise ModelBuildError(f"{hint} ({exc})") from None


def clean_cuts(base: Any) -> list[int]:
    """Indices i where exactly one tensor (layer i-1's output) crosses between layers[:i]
    and layers[i:]: the places a model can be cut in two."""
    index = {layer.name: i for i, layer in enumerate(base.layers)}
    cuts = []
    for i in range(2, len(base.layers)):
        crossing = set()
        for layer in base.layers[i:]:
            for node in layer._inbound_nodes:
                for parent in node.parent_nodes:
                    j = index.get(parent.operation.name)
                    if j is not None and j < i:
                        crossing.add(j)
        if crossing == {i - 1}:
            cuts.append(i)
    return cuts


def _replay_above(base: Any, cut: int) -> Any:
    """``base.layers[cut:]`` re-applied to a fresh input (same layer objects, same weights).

    ``keras.Model(intermediate_tensor, output)`` would build, but hides the real layers
    (its ``layers`` and ``trainable_weights`` miss them), so fine-tuning would silently
    train nothing."""
    import keras

    start = base.layers[cut - 1]._inbound_nodes[0].output_tensors[0]
    inp = keras.Input(start.shape[1:], name="cut")
    mapping = {id(start): inp}
    for layer in base.layers[cut:]:
        node = layer._inbound_nodes[0]
        args = [mapping[id(t)] for t in node.input_tensors]
        out = layer(args if len(args) > 1 else args[0])
        mapping[id(node.output_tensors[0])] = out
    return keras.Model(inp, mapping[id(base.output)], name="upper")


def build_parts(config: TrainConfig, num_classes: int) -> Parts:
    """Base split at the clean cut at or below ``fine_tune_layers`` from the top."""
    import keras

    base = build_base(config)
    base.trainable = False
    if config.weights == "none":  # from scratch: BatchNorm statistics must follow quickly
        for layer in base.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = 0.8
    layers = base.layers
    wanted = max(1, len(layers) - config.fine_tune_layers)
    cuts = [c for c in clean_cuts(base) if c <= wanted]
    cut = cuts[-1] if cuts else 1
    cut_layer = layers[cut - 1]
    lower = keras.Model(base.input, cut_layer.output, name="lower")
    upper = _replay_above(base, cut)
    channels = base.output.shape[-1]
    pool = keras.layers.GlobalAveragePooling2D(name="pool")
    drop = keras.layers.Dropout(config.dropout, seed=config.seed, name="dropout")
    dense = keras.layers.Dense(num_classes, activation="softmax", name="classifier")
    feat = keras.Input(base.output.shape[1:], name="base_out")
    head = keras.Model(feat, dense(drop(pool(feat))), name="head")
    pooled = keras.Input((channels,), name="pooled")
    pooled_head = keras.Model(pooled, dense(drop(pooled)), name="pooled_head")
    logger.info(
        "base split at %s: %d layers below, %d above", cut_layer.name, cut, len(layers) - cut
    )
    return Parts(
        base,
        lower,
        upper,
        head,
        pooled_head,
        cut_layer.name,
        len(layers) - cut,
        bn_frozen=config.weights != "none",
    )


def snapshot(parts: Parts) -> Callable[[], None]:
    """A function that puts ``parts`` back as they are now: weights and the random seed
    generators' states (Dropout's). Keras keeps those states across fits and ``get_weights``
    leaves them out, so without them a cross-validation fold's dropout masks would depend on
    which folds ran before it in the process, and a resumed run would not repeat itself."""
    weights_now = (parts.base.get_weights(), parts.head.get_weights())
    seen: dict[int, Any] = {}
    for model in (parts.base, parts.head):
        for v in model.variables:
            if v.path.endswith("seed_generator_state"):
                seen[id(v)] = v
    states = [(v, np.array(v.numpy())) for v in seen.values()]

    def restore() -> None:
        parts.base.set_weights(weights_now[0])
        parts.head.set_weights(weights_now[1])
        for v, value in states:
            v.assign(value)

    return restore


def set_upper_trainable(parts: Parts, trainable: bool) -> None:
    """Unfreeze the upper base except BatchNorm (its statistics stay ImageNet's). With no
    pretrained weights there are no statistics to protect, so BatchNorm trains too."""
    import keras

    parts.upper.trainable = trainable
    for layer in parts.upper.layers:
        frozen_bn = isinstance(layer, keras.layers.BatchNormalization) and parts.bn_frozen
        layer.trainable = trainable and not frozen_bn


def make_optimizer(name: str, learning_rate: Any) -> Any:
    import keras

    if name == "adam":
        return keras.optimizers.Adam(learning_rate)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate)
    return keras.optimizers.SGD(learning_rate, momentum=0.9)


def schedule(config: TrainConfig, learning_rate: float, steps: int, warmup: int = 0) -> Any:
    """Cosine decay (optionally after a linear warm-up) or a constant rate. Fine-tuning warms
    up over its first epoch: full-rate Adam steps on pretrained convolutions at once wreck
    them (accuracy fell from 90% to 46% in the first fine-tuning epoch without it)."""
    import keras

    if config.lr_schedule == "cosine" and steps > 1:
        if warmup > 0:
            return keras.optimizers.schedules.CosineDecay(
                0.0,
                decay_steps=max(1, steps - warmup),
                alpha=0.05,
                warmup_target=learning_rate,
                warmup_steps=warmup,
            )
        return keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps, alpha=0.05)
    return learning_rate


def calibrate_batchnorm(base: Any, images: np.ndarray) -> None:
    """For ``--weights none``: set every BatchNorm's statistics from training images, layer
    by layer in inference mode. A randomly initialised base with BatchNorm at its initial
    statistics outputs ~0 everywhere; with data-derived statistics it gives usable features.
    After training from scratch it is run again: running averages lag behind moving weights."""
    import keras

    x = images.astype("float32")
    for layer in base.layers:
        if not isinstance(layer, keras.layers.BatchNormalization):
            continue
        probe = keras.Model(base.input, layer.input)
        acts = np.concatenate(
            [np.asarray(probe(x[i : i + 128], training=False)) for i in range(0, len(x), 128)]
        )
        layer.moving_mean.assign(acts.mean(axis=(0, 1, 2)))
        layer.moving_variance.assign(acts.var(axis=(0, 1, 2)))
