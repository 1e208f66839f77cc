"""The callbacks a training stage runs with: best-epoch selection, early stopping, logs and,
when ``ema`` is set, weight averaging.

Weight averaging keeps an exponential moving average (EMA) of the trainable weights. Averaging
the weights along the end of a run lands between the minima single steps jump around, which
usually generalises a little better than any one step's weights (Polyak averaging; SWA and
the EMA of many ImageNet recipes). Here the average is what validation sees and what is kept:
at every epoch's end the averaged weights are put in place and scored on the validation
images, and that score is ``val_accuracy`` for the best-epoch choice and early stopping (the
raw weights' score stays in the logs as ``val_accuracy_raw``); the raw weights come back when
the next epoch starts, so training itself is unchanged. A refit keeps the average of its
last epoch. BatchNorm statistics are not averaged: with ImageNet weights they are frozen,
and without them they follow the raw weights.
"""

from pathlib import Path
from typing import Any

import numpy as np

from ..shared.config import TrainConfig

__all__ = ["BestWeights", "WeightAverage", "stage_callbacks"]


class BestWeights:
    """Keeps the weights of the epoch with the best validation accuracy; restores them
    (``restore=False``: only records which epoch that was)."""

    def __new__(cls, restore: bool = True) -> Any:
        import keras

        class _Best(keras.callbacks.Callback):
            def __init__(self) -> None:
                super().__init__()
                self.best = -1.0
                self.weights: list[Any] | None = None
                self.best_epoch = -1
                self.restore = restore

            def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
                acc = float((logs or {}).get("val_accuracy", -1.0))
                if acc > self.best:
                    self.best, self.best_epoch = acc, epoch
                    self.weights = [w.copy() for w in self.model.get_weights()]

            def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
                if self.weights is not None and self.restore:
                    self.model.set_weights(self.weights)

        return _Best()


def stage_callbacks(
    config: TrainConfig,
    run_dir: Path | None,
    extra: list[Any],
    select: bool,
    val: tuple[np.ndarray, np.ndarray] | None,
    watch_from: int = 0,
) -> tuple[list[Any], Any]:
    """Weight averaging (``ema``; first, so the rest see the average's score), best-epoch
    selection and early stopping on validation (``select``), logs. Early stopping watches
    from epoch ``watch_from`` on (best-epoch selection watches every epoch)."""
    import keras

    best = BestWeights(restore=select)
    cbs: list[Any] = []
    if config.ema > 0:
        cbs.append(WeightAverage(config.ema, val if select else None, config.batch_size))
    cbs.append(best)
    if select:
        cbs.append(
            keras.callbacks.EarlyStopping(
                monitor="val_accuracy",
                patience=config.early_stopping_patience,
                mode="max",
                start_from_epoch=watch_from,
            )
        )
    if run_dir is not None:
        cbs.append(keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True))
        cbs.append(
            keras.callbacks.TensorBoard(
                str(run_dir / "tensorboard"), write_graph=False, profile_batch=0
            )
        )
    return cbs + extra, best


class WeightAverage:
    """A Keras callback keeping an EMA of the trainable weights (``momentum`` per step,
    warmed up as ``min(momentum, (1 + t) / (10 + t))`` so early steps are not swamped by the
    starting weights); ``val`` is the validation data the average is scored on, or None."""

    def __new__(
        cls, momentum: float, val: tuple[np.ndarray, np.ndarray] | None, batch_size: int
    ) -> Any:
        import keras

        class _Average(keras.callbacks.Callback):
            def __init__(self) -> None:
                super().__init__()
                self.avg: list[np.ndarray] = []
                self.raw: list[np.ndarray] | None = None
                self.steps = 0

            def _variables(self) -> list[Any]:
                return list(self.model.trainable_variables)

            def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
                self.avg = [np.array(v.numpy(), copy=True) for v in self._variables()]
                self.raw, self.steps = None, 0

            def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
                if self.raw is not None:  # the average was in place for validation
                    for v, r in zip(self._variables(), self.raw, strict=True):
                        v.assign(r)
                    self.raw = None

            def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
                self.steps += 1
                m = min(momentum, (1 + self.steps) / (10 + self.steps))
                for a, v in zip(self.avg, self._variables(), strict=True):
                    a *= m
                    a += (1 - m) * v.numpy()

            def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
                variables = self._variables()
                self.raw = [np.array(v.numpy(), copy=True) for v in variables]
                for v, a in zip(variables, self.avg, strict=True):
                    v.assign(a)
                if val is None or logs is None or "val_accuracy" not in logs:
                    return
                scores = self.model.evaluate(
                    val[0], val[1], batch_size=batch_size, verbose=0, return_dict=True
                )
                logs["val_accuracy_raw"] = logs["val_accuracy"]
                logs["val_loss_raw"] = logs.get("val_loss")
                logs["val_accuracy"] = float(scores["accuracy"])
                logs["val_loss"] = float(scores["loss"])

        return _Average()
