"""Weight averaging (``ema``): the EMA of the trainable weights is what validation scores and
what training keeps; training itself steps from the raw weights."""

from typing import Any

import numpy as np

from recyclops.cloud.callbacks import WeightAverage

from .tiny_fit import fit_tiny_cached


def _linear(seed: int = 0) -> tuple[Any, np.ndarray, np.ndarray]:
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(
        optimizer=keras.optimizers.SGD(0.5), loss="categorical_crossentropy", metrics=["accuracy"]
    )
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 64)]
    return model, x, y


def test_the_kept_weights_are_the_ema_of_the_raw_steps() -> None:
    import keras

    model, x, y = _linear()
    momentum = 0.9
    raw: list[list[np.ndarray]] = [[w.copy() for w in model.get_weights()]]

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            raw.append([w.copy() for w in self.model.get_weights()])

    average = WeightAverage(momentum, None, 16)
    model.fit(x, y, batch_size=16, epochs=3, callbacks=[average, Record()], verbose=0)
    assert len(raw) == 1 + 3 * 4
    expected = [w.copy() for w in raw[0]]
    for t, step in enumerate(raw[1:], 1):
        m = min(momentum, (1 + t) / (10 + t))
        expected = [m * e + (1 - m) * s for e, s in zip(expected, step, strict=True)]
    kept = model.get_weights()
    for k, e, last in zip(kept, expected, raw[-1], strict=True):
        np.testing.assert_allclose(k, e, rtol=1e-5, atol=1e-6)
        assert not np.allclose(k, last)  # the average, not the last step


def test_training_steps_from_the_raw_weights_not_the_average() -> None:
    """The average is in place only between an epoch's end and the next one's start."""
    import keras

    model, x, y = _linear(1)
    starts: list[list[np.ndarray]] = []
    ends: list[list[np.ndarray]] = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
            if batch == 0:
                starts.append([w.copy() for w in self.model.get_weights()])

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            if batch == 3:
                ends.append([w.copy() for w in self.model.get_weights()])

    average = WeightAverage(0.9, None, 16)
    model.fit(x, y, batch_size=16, epochs=2, callbacks=[average, Record()], verbose=0)
    for s, e in zip(starts[1], ends[0], strict=True):  # epoch 2 starts where epoch 1 ended
        np.testing.assert_array_equal(s, e)


def test_validation_scores_the_average_in_both_cached_stages() -> None:
    history = fit_tiny_cached(ema=0.9)
    stages = history["stages"]
    assert [s["stage"] for s in stages] == ["head", "fine_tune"]
    for s in stages:
        assert len(s["val_accuracy_raw"]) == len(s["val_accuracy"]) == s["epochs"] > 0
        assert s["best_val_accuracy"] == max(
            [*s["val_accuracy"], *([stages[0]["best_val_accuracy"]] if s is stages[1] else [])]
        )
    off = fit_tiny_cached(ema=0.0)
    assert all("val_accuracy_raw" not in s for s in off["stages"])
