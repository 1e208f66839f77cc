"""Quantisation-aware fine-tuning: the simulated rounding is the converter's, and the epochs
train only what fine-tuning trains, in place."""

from typing import Any

import numpy as np
import pytest
from support.synthetic import shapes

from recyclops.cloud.convert import export_int8, representative
from recyclops.cloud.fit import SplitArrays, fit_cached
from recyclops.cloud.model import Parts, build_parts
from recyclops.cloud.qat import QatError, QatGraph, quantisation_aware
from recyclops.shared.config import TrainConfig
from recyclops.shared.preprocess import preprocess

CATS = ["red", "green", "blue"]
SIZE = 48


def _data(per_class: int, seed: int) -> SplitArrays:
    images, labels = [], []
    for i, jpegs in enumerate(shapes(CATS, per_class, seed=seed, size=64).values()):
        images += [preprocess(j, SIZE, SIZE) for j in jpegs]
        labels += [i] * len(jpegs)
    x, y = np.stack(images), np.array(labels)
    order = np.random.default_rng(seed).permutation(len(y))
    cut = int(0.75 * len(y))
    return SplitArrays(x[order[:cut]], y[order[:cut]], x[order[cut:]], y[order[cut:]], 3)


def _trained(**changes: Any) -> tuple[Parts, TrainConfig, SplitArrays]:
    """A small model that has learnt something (a random model's outputs are near-uniform,
    and int8 rounding of them says nothing)."""
    recipe: dict[str, Any] = {
        "image_size": SIZE,
        "weights": "none",
        "alpha": 0.35,
        "epochs": 4,
        "fine_tune_epochs": 2,
        "fine_tune_layers": 30,
        "augment_views": 1,
        "batch_size": 16,
        "learning_rate": 0.01,
        "representative_images": 32,
        **changes,
    }
    config = TrainConfig(**recipe)
    data = _data(20, seed=3)
    import keras  # the cloud extra; the edge-only venv collects this file too

    keras.utils.set_random_seed(config.seed)  # the same model whatever tests ran before
    parts = build_parts(config, 3)
    fit_cached(parts, config, data)
    return parts, config, data


@pytest.fixture(scope="module")
def trained() -> tuple[Parts, TrainConfig, SplitArrays]:
    """ImageNet weights (shipped): a random base's rounding is chaos, not a contract."""
    return _trained(weights="imagenet", alpha=1.0)


def test_the_simulated_rounding_is_the_converters(
    trained: tuple[Parts, TrainConfig, SplitArrays],
) -> None:
    """Without rounding the interpreter is the Keras model; with it, it lands where the int8
    TFLite model lands, far closer than the float model does."""
    parts, config, data = trained
    model = parts.full()
    x = np.concatenate([data.x_val, data.x_train[:16]]).astype(np.float32)
    calibration = representative(data.x_train, config.representative_images, config.seed)
    graph = QatGraph(model)
    graph.observe(iter([calibration]))
    assert len(graph.ranges) > 20  # input, every ReLU6, projection, sum, pooling, logits
    assert all(lo <= 0.0 <= hi for lo, hi in graph.ranges.values())

    keras_probs = np.asarray(model(x, training=False))
    np.testing.assert_allclose(np.asarray(graph(x, quantise=False)), keras_probs, atol=1e-4)
    int8 = export_int8(model, calibration, x.astype(np.uint8)).scores
    simulated = np.asarray(graph(x))
    float_gap = np.abs(keras_probs - int8).mean()
    simulated_gap = np.abs(simulated - int8).mean()
    assert float_gap > 1e-2, "the float and int8 models agree: nothing to simulate"
    assert simulated_gap < float_gap / 2, (simulated_gap, float_gap)  # measured: 1/3
    agree = (simulated.argmax(1) == int8.argmax(1)).mean()
    assert agree > (keras_probs.argmax(1) == int8.argmax(1)).mean(), agree


def test_quantisation_aware_epochs_change_only_what_fine_tuning_trains() -> None:
    parts, config, data = _trained(qat_epochs=2, qat_learning_rate=1e-3)
    tuned = [
        w
        for layer in parts.upper.layers
        for w in layer.weights
        if w.path.endswith("kernel")  # convolutions (BatchNorm is folded into them)
    ] + list(parts.head.weights)
    frozen = list(parts.lower.weights) + [
        w
        for w in parts.upper.weights
        if "moving_" in w.path  # statistics: folded constants
    ]
    before_tuned = [w.numpy() for w in tuned]
    before_frozen = [w.numpy() for w in frozen]
    calibration = representative(data.x_train, config.representative_images, config.seed)

    record = quantisation_aware(parts, config, data, calibration)

    assert record["epochs"] == 2 and len(record["loss"]) == 2
    assert record["images"] == len(data.y_train)
    assert all(np.isfinite(record["loss"]))
    moved = [not np.array_equal(b, w.numpy()) for b, w in zip(before_tuned, tuned, strict=True)]
    assert len(tuned) > 5 and all(moved), f"{moved.count(False)} of {len(tuned)} did not move"
    for b, w in zip(before_frozen, frozen, strict=True):
        np.testing.assert_array_equal(b, w.numpy(), err_msg=w.path)
    assert not parts.upper.trainable_weights  # frozen again for conversion and scoring


def test_a_layer_it_cannot_simulate_is_named() -> None:
    import keras

    inp = keras.Input((8, 8, 3))
    out = keras.layers.Dense(2)(keras.layers.LayerNormalization(name="odd_norm")(inp))
    graph = QatGraph(keras.Model(inp, out))
    with pytest.raises(QatError, match="odd_norm: LayerNormalization"):
        graph.observe(iter([np.zeros((1, 8, 8, 3), np.float32)]))


def test_a_loss_that_is_not_finite_stops_the_epochs_and_puts_the_weights_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import keras

    parts, config, data = _trained(qat_epochs=3)
    before = [w.numpy() for w in parts.full().weights]
    calibration = representative(data.x_train, config.representative_images, config.seed)

    class Diverged(keras.losses.CategoricalCrossentropy):  # what a diverging run reports
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return super().__call__(*args, **kwargs) * float("nan")

    monkeypatch.setattr(keras.losses, "CategoricalCrossentropy", Diverged)
    with pytest.raises(QatError, match=r"epoch 1: the loss is nan.*qat_learning_rate"):
        quantisation_aware(parts, config, data, calibration)
    for b, w in zip(before, parts.full().weights, strict=True):
        np.testing.assert_array_equal(b, w.numpy(), err_msg=w.path)
    assert not parts.upper.trainable_weights
