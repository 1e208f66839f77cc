"""The two training pipelines. Both train the same model (``Parts``) in the same two stages:
the head alone on the frozen base, then (optionally) the base's top layers at a lower rate.

``cached``: the frozen lower network runs once per fixed augmented view of each image; the
head (and the unfrozen top) trains on those activations, a random view per image per epoch.
``pixels``: a tf.data pipeline with live augmentation through the whole model.
"""

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..shared.config import TrainConfig
from .augment import augmenter, fixed_view, mixup
from .callbacks import stage_callbacks
from .model import Parts, calibrate_batchnorm, make_optimizer, schedule, set_upper_trainable

logger = logging.getLogger(__name__)
PREDICT_BATCH = 64


@dataclass
class SplitArrays:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    num_classes: int
    # training targets other than the one-hot labels (N x classes, rows summing to 1): a
    # distilled student's mix of labels and its teachers' probabilities; None: the labels
    t_train: np.ndarray | None = None

    def merged(self) -> "SplitArrays":
        """Training plus validation images as one training set (a refit); the validation
        arrays stay only so that curves are still logged."""
        t_train = None
        if self.t_train is not None:  # validation images train on their labels
            t_train = np.concatenate([self.t_train, _onehot(self.y_val, self.num_classes)])
        return SplitArrays(
            np.concatenate([self.x_train, self.x_val]),
            np.concatenate([self.y_train, self.y_val]),
            self.x_val,
            self.y_val,
            self.num_classes,
            t_train,
        )

    def targets(self) -> np.ndarray:
        """What the training images are trained towards: ``t_train``, else one-hot labels."""
        if self.t_train is None:
            return _onehot(self.y_train, self.num_classes)
        if self.t_train.shape != (len(self.y_train), self.num_classes):
            raise ValueError(
                f"training targets {self.t_train.shape} do not match "
                f"{len(self.y_train)} images x {self.num_classes} classes"
            )
        return self.t_train.astype(np.float32)

    def sample_weights(self, enabled: bool) -> np.ndarray:
        """Inverse class frequency, mean 1 over the training set (or all ones)."""
        if not enabled:
            return np.ones(len(self.y_train), np.float32)
        counts = np.bincount(self.y_train, minlength=self.num_classes).astype(np.float64)
        per_class = np.where(
            counts > 0, len(self.y_train) / (self.num_classes * np.maximum(counts, 1)), 0
        )
        return per_class[self.y_train].astype(np.float32)


def _compile(model: Any, config: TrainConfig, lr: float, steps: int, warmup: int = 0) -> None:
    import keras

    model.compile(
        optimizer=make_optimizer(config.optimizer, schedule(config, lr, steps, warmup)),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=["accuracy"],
    )


def _onehot(y: np.ndarray, n: int) -> np.ndarray:
    return np.eye(n, dtype=np.float32)[y]


def predict(model: Any, x: np.ndarray, pixels: bool = False, dtype: Any = np.float32) -> np.ndarray:
    """``model`` over ``x`` in batches into one preallocated array (``pixels``: x is uint8
    pixels, normalised batch by batch so no float copy of every image is ever made)."""
    out: np.ndarray | None = None
    for i in range(0, len(x), PREDICT_BATCH):
        chunk = x[i : i + PREDICT_BATCH]
        chunk = _norm(chunk) if pixels else chunk.astype(np.float32)
        y = np.asarray(model(chunk, training=False))
        if out is None:
            out = np.empty((len(x), *y.shape[1:]), dtype)
        out[i : i + len(y)] = y
    return out if out is not None else np.zeros((0,), dtype)


def _view_dataset(
    feats: np.ndarray,
    targets: np.ndarray,
    w: np.ndarray,
    batch: int,
    seed: int,
    mix: float = 0.0,
) -> Any:
    """A random one of the V views of every image, each epoch reshuffled (``mix``: mixup's
    alpha, 0 off)."""
    import tensorflow as tf

    views = feats.shape[0]
    table = tf.constant(feats)
    n = len(targets)
    labels = tf.data.Dataset.from_tensor_slices((np.arange(n), targets, w))
    labels = labels.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    rand = tf.data.Dataset.random(seed=seed)
    pairs = tf.data.Dataset.zip((labels, rand))

    @tf.autograph.experimental.do_not_convert
    def pick(item: Any, r: Any) -> Any:
        i, onehot, weight = item
        v = tf.cast(r % views, tf.int32)
        return tf.cast(table[v, tf.cast(i, tf.int32)], tf.float32), onehot, weight

    batches = pairs.map(pick, num_parallel_calls=tf.data.AUTOTUNE).batch(batch)
    return mixup(batches, mix, seed + 7).prefetch(tf.data.AUTOTUNE)


def _fit(
    model: Any,
    train: Any,
    val: tuple[np.ndarray, np.ndarray],
    epochs: int,
    initial: int,
    cbs: list[Any],
    verbose: int,
) -> dict[str, list[float]]:
    if epochs <= initial:
        return {}
    hist = model.fit(
        train,
        validation_data=val,
        epochs=epochs,
        initial_epoch=initial,
        callbacks=cbs,
        verbose=verbose,
        shuffle=False,  # the tf.data pipeline shuffles
    )
    return {k: [float(v) for v in vals] for k, vals in hist.history.items()}


@dataclass
class CachedFeatures:
    """Base activations computed once: cut-layer ones (for fine-tuning) and pooled ones."""

    cut_train: np.ndarray | None  # V x N x h x w x c (float16), None when not fine-tuning
    cut_val: np.ndarray | None
    pooled_train: np.ndarray  # V x N x C
    pooled_val: np.ndarray


def compute_features(
    parts: Parts, config: TrainConfig, data: SplitArrays, need_cut: bool
) -> CachedFeatures:
    """Run the frozen network once per fixed view of every training image (and once per
    validation image). Augmentation is therefore limited to ``augment_views`` fixed views."""
    import keras

    prepare_base(parts, config, data)
    views = config.augment_views if config.augment else 1
    pool = keras.layers.GlobalAveragePooling2D()
    pooled_model = keras.Sequential([parts.upper, pool])
    cut_val = predict(parts.lower, data.x_val, pixels=True)
    cut_train: np.ndarray | None = None  # filled in place: no second copy of every view
    pooled: list[np.ndarray] = []
    for v in range(views):
        cut = predict(parts.lower, fixed_view(data.x_train, config, v), pixels=True)
        pooled.append(predict(pooled_model, cut))
        if need_cut:
            if cut_train is None:
                cut_train = np.empty((views, *cut.shape), np.float16)
            cut_train[v] = cut
        del cut  # before the next view's activations are allocated
    return CachedFeatures(
        cut_train, cut_val if need_cut else None, np.stack(pooled), predict(pooled_model, cut_val)
    )


def fit_cached(
    parts: Parts,
    config: TrainConfig,
    data: SplitArrays,
    run_dir: Path | None = None,
    callbacks: list[Any] | None = None,
    verbose: int = 0,
    features: CachedFeatures | None = None,
    select: bool = True,
) -> dict[str, Any]:
    """Head on pooled features of fixed views, then the top layers on cut activations.

    ``select=False`` (a refit): train exactly the configured epochs, keep the last weights."""
    import keras

    n, seed = data.num_classes, config.seed
    tune = config.fine_tune and config.fine_tune_epochs > 0
    if features is None:
        features = compute_features(parts, config, data, need_cut=tune)
    pooled_train, pooled_val = features.pooled_train, features.pooled_val
    w = data.sample_weights(config.class_weights)
    history: dict[str, Any] = {"stages": []}
    targets = data.targets()
    train = _view_dataset(pooled_train, targets, w, config.batch_size, seed, config.mixup)
    steps = -(-len(data.y_train) // config.batch_size)
    _compile(parts.pooled_head, config, config.learning_rate, steps * config.epochs)
    val = (pooled_val, _onehot(data.y_val, n))
    cbs, best = stage_callbacks(config, run_dir, callbacks or [], select, val)
    h = _fit(parts.pooled_head, train, val, config.epochs, 0, cbs, verbose)
    history["stages"].append(_stage("head", h, best))
    done = len(h.get("loss", []))
    if tune:
        cut_train, cut_val = features.cut_train, features.cut_val
        if cut_train is None or cut_val is None:
            raise ValueError(
                "fine-tuning needs cut-layer features (compute_features(need_cut=True))"
            )
        set_upper_trainable(parts, True)
        inp = keras.Input(cut_train.shape[2:])
        tuned = keras.Model(inp, parts.head(parts.upper(inp, training=parts.upper_training)))
        train = _view_dataset(cut_train, targets, w, config.batch_size, seed + 1, config.mixup)
        _compile(tuned, config, config.fine_tune_lr, steps * config.fine_tune_epochs, warmup=steps)
        val = (cut_val, _onehot(data.y_val, n))
        cbs, best2 = stage_callbacks(
            config, run_dir, callbacks or [], select, val, fine_tune_watch_from(config, done)
        )
        if select:
            best2.best = best.best  # only keep fine-tuned weights that beat the head alone
            best2.weights = [v.copy() for v in tuned.get_weights()]
        h = _fit(tuned, train, val, done + config.fine_tune_epochs, done, cbs, verbose)
        history["stages"].append(_stage("fine_tune", h, best2, first=done))
        set_upper_trainable(parts, False)
    return history


def fine_tune_watch_from(config: TrainConfig, done: int) -> int:
    """The first fine-tuning epoch early stopping may judge: half way through its cosine
    schedule. Unfreezing knocks validation accuracy down in the first epoch (TrashNet,
    block 4: 81% -> 41-55%) and it climbs back as the rate decays, best in the last third;
    judged with the rate still high, one cross-validation fold stopped at epoch 7 below the
    head and the refit then trained the head alone (docs/training.md)."""
    return done + config.fine_tune_epochs // 2


def refit_config(config: TrainConfig, history: dict[str, Any]) -> TrainConfig:
    """The recipe of a refit on training + validation images: each stage for the epochs
    validation chose (a fine-tuning stage that never beat the head alone is left out), so
    the refit keeps the stopping point and gains the validation images."""
    stages = {s["stage"]: s for s in history["stages"]}
    head = max(1, int(stages["head"]["best_epochs"]))
    tune = int(stages.get("fine_tune", {}).get("best_epochs", 0))
    return config.model_copy(
        update={
            "epochs": head,
            "fine_tune_epochs": tune,
            "fine_tune": config.fine_tune and tune > 0,
        }
    )


def _stage(name: str, h: dict[str, Any], best: Any, first: int = 0) -> dict[str, Any]:
    """One stage's record in the run history: its epochs, best validation accuracy and how
    many of the stage's epochs led to it (0: the stage never beat what came before), curves."""
    return {
        "stage": name,
        "epochs": len(h.get("loss", [])),
        "best_val_accuracy": best.best,
        "best_epochs": max(0, best.best_epoch + 1 - first),
        **h,
    }


def prepare_base(parts: Parts, config: TrainConfig, data: SplitArrays) -> None:
    if config.weights == "none":
        rng = np.random.default_rng(config.seed)
        sample = data.x_train[rng.permutation(len(data.x_train))[:256]]
        calibrate_batchnorm(parts.base, _norm(sample))


def _norm(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32) / 127.5 - 1.0


def pixel_dataset(
    x: np.ndarray,
    targets: np.ndarray,
    w: np.ndarray,
    batch: int,
    seed: int,
    aug: Any | None,
    mix: float = 0.0,
) -> Any:
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, targets, w))
    ds = ds.shuffle(len(targets), seed=seed, reshuffle_each_iteration=True).batch(batch)

    def prep(xb: Any, yb: Any, wb: Any) -> Any:
        xb = tf.cast(xb, tf.float32)
        if aug is not None:
            xb = aug(xb, training=True)
        return xb, yb, wb

    ds = mixup(ds.map(prep, num_parallel_calls=tf.data.AUTOTUNE), mix, seed + 7)
    return ds.prefetch(tf.data.AUTOTUNE)


def fit_pixels(
    parts: Parts,
    config: TrainConfig,
    data: SplitArrays,
    run_dir: Path | None = None,
    callbacks: list[Any] | None = None,
    verbose: int = 0,
    select: bool = True,
) -> dict[str, Any]:
    """The whole model from pixels, live augmentation in the tf.data pipeline."""
    n = data.num_classes
    prepare_base(parts, config, data)
    model = parts.full(fine_tuning=config.fine_tune)
    w = data.sample_weights(config.class_weights)
    train = pixel_dataset(
        data.x_train,
        data.targets(),
        w,
        config.batch_size,
        config.seed,
        augmenter(config),
        config.mixup,
    )
    val = (data.x_val.astype(np.float32), _onehot(data.y_val, n))
    steps = -(-len(data.y_train) // config.batch_size)
    _compile(model, config, config.learning_rate, steps * config.epochs)
    cbs, best = stage_callbacks(config, run_dir, callbacks or [], select, val)
    h = _fit(model, train, val, config.epochs, 0, cbs, verbose)
    history: dict[str, Any] = {"stages": [_stage("head", h, best)]}
    done = len(h.get("loss", []))
    if config.fine_tune and config.fine_tune_epochs > 0:
        set_upper_trainable(parts, True)
        _compile(model, config, config.fine_tune_lr, steps * config.fine_tune_epochs, warmup=steps)
        cbs, best2 = stage_callbacks(
            config, run_dir, callbacks or [], select, val, fine_tune_watch_from(config, done)
        )
        if select:
            best2.best = best.best
            best2.weights = [v.copy() for v in model.get_weights()]
        h = _fit(model, train, val, done + config.fine_tune_epochs, done, cbs, verbose)
        history["stages"].append(_stage("fine_tune", h, best2, first=done))
        set_upper_trainable(parts, False)
    return history
