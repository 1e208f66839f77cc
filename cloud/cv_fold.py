"""One cross-validation fold: train the recipe's top on the fold's share of the cached
activations, optionally refit on training + inner images, convert to int8 and score the
held-out fold on LiteRT (``cloud/crossval.py`` deals the folds and aggregates them)."""

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..shared.config import TrainConfig
from .dataset import Dataset
from .evaluate import Scores


@dataclass(frozen=True)
class FoldInputs:
    """What every fold indexes: the data set, the model (reset to its starting weights before
    each training), the cached activations and the pixels and labels of every image."""

    ds: Dataset
    parts: Any
    features: Any
    images: np.ndarray
    y: np.ndarray


def train_fold(
    config: TrainConfig,
    inputs: FoldInputs,
    ix: dict[str, np.ndarray],
    tune: bool,
    verbose: int,
) -> dict[str, Any]:
    """Train the top on this fold's share of the cached activations, convert, score."""
    from .fit import fit_cached

    t0 = time.monotonic()
    tr, val = ix["train"], ix["val"]
    history = fit_cached(
        inputs.parts,
        config,
        _labels(inputs, tr, val),
        verbose=verbose,
        features=_features(inputs.features, tr, val),
    )
    t_fit = time.monotonic() - t0
    result = _score(config, inputs, ix, tune)
    result["images"] = {"training": len(tr), "inner_val": len(val), "held_out": len(ix["held"])}
    result["stages"] = [
        {k: s[k] for k in ("stage", "epochs", "best_val_accuracy", "best_epochs")}
        for s in history["stages"]
    ]
    convert = result.pop("convert_seconds")
    result["seconds"] = {
        "fit": round(t_fit, 1),
        "convert": round(convert, 1),
        "score": round(time.monotonic() - t0 - t_fit - convert, 1),
        "total": round(time.monotonic() - t0, 1),
    }
    return result


def refit_fold(
    config: TrainConfig,
    inputs: FoldInputs,
    ix: dict[str, np.ndarray],
    selected: dict[str, Any],
    verbose: int,
) -> dict[str, Any]:
    """The fold as ``train --refit`` ships it: the same starting weights trained on training
    + inner images for the epochs the inner slice chose, scored on the held-out fold."""
    from .fit import fit_cached, refit_config

    t0 = time.monotonic()
    cfg = refit_config(config, selected)
    both = np.concatenate([ix["train"], ix["val"]])
    fit_cached(
        inputs.parts,
        cfg,
        _labels(inputs, both, ix["val"]),
        verbose=verbose,
        features=_features(inputs.features, both, ix["val"]),
        select=False,
    )
    t_fit = time.monotonic() - t0
    tune = cfg.fine_tune and cfg.fine_tune_epochs > 0
    result = _score(cfg, inputs, {**ix, "train": both}, tune)
    convert = result.pop("convert_seconds")
    seconds = dict(selected["seconds"])
    seconds["refit"] = round(t_fit, 1)
    seconds["convert"] = round(seconds["convert"] + convert, 1)
    seconds["total"] = round(seconds["total"] + time.monotonic() - t0, 1)
    result["seconds"] = seconds
    result["refit"] = {"images": len(both), "epochs": [cfg.epochs, cfg.fine_tune_epochs]}
    return result


def _labels(inputs: FoldInputs, tr: np.ndarray, val: np.ndarray) -> Any:
    """Labels only: fit_cached trains on the activations given, never on these pixels."""
    from .fit import SplitArrays

    none = inputs.images[:0]
    return SplitArrays(none, inputs.y[tr], none, inputs.y[val], len(inputs.ds.categories))


def _features(features: Any, tr: np.ndarray, val: np.ndarray) -> Any:
    """This fold's share of the cached activations (view 0 for the validation images)."""
    from .fit import CachedFeatures

    cut, pooled = features.cut_train, features.pooled_train  # V x N x ..., cut None untuned
    return CachedFeatures(
        cut[:, tr] if cut is not None else None,
        cut[0, val].astype(np.float32) if cut is not None else None,
        pooled[:, tr],
        pooled[0, val],
    )


def _score(
    config: TrainConfig,
    inputs: FoldInputs,
    ix: dict[str, np.ndarray],
    tune: bool,
) -> dict[str, Any]:
    """The float model and its int8 conversion (calibrated on training images) on the
    held-out fold."""
    from .convert import export_int8, representative

    held, cut, pooled = ix["held"], inputs.features.cut_train, inputs.features.pooled_train
    images, y, categories = inputs.images, inputs.y, inputs.ds.categories
    # untuned (no fine-tuning, or a refit that skips it): the pooled ImageNet top still holds
    float_probs = _float_probs(inputs.parts, cut[0, held] if tune else pooled[0, held], tune)
    calibration = representative(images[ix["train"]], config.representative_images, config.seed)
    exported = export_int8(inputs.parts.full(), calibration, images[held])
    int8_probs = exported.scores
    return {
        "int8": asdict(Scores.of(int8_probs, y[held], categories)),
        "float": asdict(Scores.of(float_probs, y[held], categories)),
        "convert_seconds": exported.convert_seconds,
        "int8_predicted": [categories[int(p)] for p in int8_probs.argmax(axis=1)],
    }


def _float_probs(parts: Any, acts: np.ndarray, tune: bool, batch: int = 64) -> np.ndarray:
    """The float model on the held-out view-0 activations (same maths as the full model on
    pixels, without running the frozen network again)."""
    import keras

    if tune:
        inp = keras.Input(acts.shape[1:])
        model = keras.Model(inp, parts.head(parts.upper(inp, training=False), training=False))
    else:
        model = parts.pooled_head
    outs = [
        np.asarray(model(acts[i : i + batch].astype(np.float32), training=False))
        for i in range(0, len(acts), batch)
    ]
    return np.concatenate(outs)
