"""One cross-validation fold: train the recipe on the fold's training images (the cached
pipeline on its share of the cached activations, ``pixels`` on the images themselves),
optionally refit on training + inner images, convert to int8 and score the held-out fold on
LiteRT (``cloud/crossval.py`` deals the folds and aggregates them)."""

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
    each training), the cached activations (None for ``pipeline = "pixels"``) and the pixels
    and labels of every image. A distilled student's fold adds its training ``targets`` (one
    row per image); a teacher run keeps the trained float model's probabilities
    (``keep_soft``, returned as the result's ``soft``)."""

    ds: Dataset
    parts: Any
    features: Any
    images: np.ndarray
    y: np.ndarray
    targets: np.ndarray | None = None
    keep_soft: bool = False


@dataclass(frozen=True)
class Prepared:
    """Everything the folds of one run share: the inputs, each image's row, and ``restore``,
    which puts the model back to its starting weights before each training."""

    inputs: FoldInputs
    shas: list[str]
    row: dict[str, int]
    restore: Any
    tune: bool
    seconds: float

    def indices(self, **groups: list[str]) -> dict[str, np.ndarray]:
        """Rows of these images, group by group (``train``, ``val``, ``held``)."""
        return {
            name: np.array([self.row[s] for s in shas if s in self.row], np.int64)
            for name, shas in groups.items()
        }


def prepare(config: TrainConfig, ds: Dataset, shas: list[str], keep_soft: bool) -> Prepared:
    """The pixels of ``shas`` as ``recyclops train`` would feed them, and (cached pipeline)
    every image's fixed views through the frozen lower network, once for all folds."""
    import keras

    from .fit import SplitArrays, compute_features
    from .model import build_parts, snapshot
    from .pixels import model_input, spec_pixels

    keras.utils.set_random_seed(config.seed)
    t0 = time.monotonic()
    px = spec_pixels(ds, shas, model_input(config))
    index = {c: i for i, c in enumerate(ds.categories)}
    y = np.array([index[ds.labels[s]] for s in px.shas], np.int64)
    parts = build_parts(config, len(ds.categories))
    tune = config.fine_tune and config.fine_tune_epochs > 0
    # With weights="none" the BatchNorm statistics are estimated here from all the images
    # (pixels only, never labels).
    everything = SplitArrays(px.images, y, px.images[:0], y[:0], len(ds.categories))
    features = (
        compute_features(parts, config, everything, need_cut=tune)
        if config.pipeline == "cached"
        else None  # pixels: every fold runs the whole network, live augmentation
    )
    restore = snapshot(parts)  # every fold and refit starts from here, whatever ran before
    inputs = FoldInputs(ds, parts, features, px.images, y, keep_soft=keep_soft)
    row = {s: i for i, s in enumerate(px.shas)}
    return Prepared(inputs, list(px.shas), row, restore, tune, time.monotonic() - t0)


def fit_fold(
    config: TrainConfig,
    prep: Prepared,
    inputs: FoldInputs,
    ix: dict[str, np.ndarray],
    seed: int,
    verbose: int,
) -> dict[str, Any]:
    """One fold from the starting weights: the selection run, then (``refit``) the refit,
    whose scores become the fold's and the selected model's are kept as ``selected``."""
    import keras

    prep.restore()
    keras.utils.set_random_seed(seed)
    result = train_fold(config, inputs, ix, prep.tune, verbose)
    if config.refit:
        prep.restore()
        keras.utils.set_random_seed(seed)
        refit = refit_fold(config, inputs, ix, result, verbose)
        keep = ("int8", "float", "int8_predicted", "int8_probs")
        selected = {k_: result.pop(k_) for k_ in keep}
        result = {**result, **refit, "selected": selected}
    return result


def train_fold(
    config: TrainConfig,
    inputs: FoldInputs,
    ix: dict[str, np.ndarray],
    tune: bool,
    verbose: int,
) -> dict[str, Any]:
    """Train the recipe on this fold's training images, convert, score."""
    t0 = time.monotonic()
    tr, val = ix["train"], ix["val"]
    history = _fit(config, inputs, tr, val, verbose, select=True)
    t_fit = time.monotonic() - t0
    soft = view_probs(inputs, tune) if inputs.keep_soft and not config.refit else None
    # with a refit, this model only chooses epochs: the refit is the one made for int8
    result = _score(config, inputs, ix, tune, qat=not config.refit)
    result["images"] = {"training": len(tr), "inner_val": len(val), "held_out": len(ix["held"])}
    if soft is not None:
        result["soft"] = soft
    # with the validation curve: where a stage collapses or peaks shows in the fold file
    result["stages"] = [
        {k: s[k] for k in ("stage", "epochs", "best_val_accuracy", "best_epochs")}
        | {"val_accuracy": [round(v, 4) for v in s.get("val_accuracy", [])]}
        for s in history["stages"]
    ]
    convert = result.pop("convert_seconds")
    t_fit += result.get("qat", {}).get("seconds", 0.0)  # quantisation-aware epochs are fitting
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
    from .fit import refit_config

    t0 = time.monotonic()
    cfg = refit_config(config, selected)
    both = np.concatenate([ix["train"], ix["val"]])
    _fit(cfg, inputs, both, ix["val"], verbose, select=False)
    t_fit = time.monotonic() - t0
    tune = cfg.fine_tune and cfg.fine_tune_epochs > 0
    # the teacher is the float refit, before its quantisation-aware epochs change it
    soft = view_probs(inputs, tune) if inputs.keep_soft else None
    result = _score(cfg, inputs, {**ix, "train": both}, tune, qat=True)
    if soft is not None:
        result["soft"] = soft
    convert = result.pop("convert_seconds")
    seconds = dict(selected["seconds"])
    seconds["refit"] = round(t_fit + result.get("qat", {}).get("seconds", 0.0), 1)
    seconds["convert"] = round(seconds["convert"] + convert, 1)
    seconds["total"] = round(seconds["total"] + time.monotonic() - t0, 1)
    result["seconds"] = seconds
    result["refit"] = {"images": len(both), "epochs": [cfg.epochs, cfg.fine_tune_epochs]}
    return result


def _fit(
    config: TrainConfig,
    inputs: FoldInputs,
    tr: np.ndarray,
    val: np.ndarray,
    verbose: int,
    select: bool,
) -> dict[str, Any]:
    """The recipe's own pipeline: the cached one on this fold's share of the activations,
    or ``pixels`` (live augmentation through the whole model) on the fold's images."""
    from .fit import SplitArrays, fit_cached, fit_pixels

    targets = None if inputs.targets is None else inputs.targets[tr]
    if inputs.features is None:  # pipeline = "pixels"
        images, y, n = inputs.images, inputs.y, len(inputs.ds.categories)
        data = SplitArrays(images[tr], y[tr], images[val], y[val], n, targets)
        return fit_pixels(inputs.parts, config, data, verbose=verbose, select=select)
    return fit_cached(
        inputs.parts,
        config,
        _labels(inputs, tr, val, targets),
        verbose=verbose,
        features=_features(inputs.features, tr, val),
        select=select,
    )


def _labels(inputs: FoldInputs, tr: np.ndarray, val: np.ndarray, targets: np.ndarray | None) -> Any:
    """Labels only: fit_cached trains on the activations given, never on these pixels."""
    from .fit import SplitArrays

    none, n = inputs.images[:0], len(inputs.ds.categories)
    return SplitArrays(none, inputs.y[tr], none, inputs.y[val], n, targets)


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
    qat: bool,
) -> dict[str, Any]:
    """The float model and its int8 conversion (calibrated on training images) on the
    held-out fold. If ``qat`` and the recipe asks, the model is scored before its
    quantisation-aware epochs too (``before_qat``: a paired comparison on the same model)."""
    from .convert import representative
    from .fit import SplitArrays
    from .qat import quantisation_aware

    images, y = inputs.images, inputs.y
    calibration = representative(images[ix["train"]], config.representative_images, config.seed)
    if not (qat and config.qat_epochs > 0):
        return _evaluate(inputs, ix, tune, calibration)
    before = _evaluate(inputs, ix, tune, calibration)
    tr = ix["train"]
    data = SplitArrays(images[tr], y[tr], images[:0], y[:0], len(inputs.ds.categories))
    record = quantisation_aware(inputs.parts, config, data, calibration)
    after = _evaluate(inputs, ix, tune, calibration)
    after["convert_seconds"] += before.pop("convert_seconds")
    return {**after, "qat": record, "before_qat": before}


def _evaluate(
    inputs: FoldInputs, ix: dict[str, np.ndarray], tune: bool, calibration: np.ndarray
) -> dict[str, Any]:
    from .convert import export_int8
    from .fit import predict

    held, images, y, categories = ix["held"], inputs.images, inputs.y, inputs.ds.categories
    if inputs.features is None:  # pixels: the float model itself on the held-out pixels
        # raw 0..255 pixels: the exported model normalises them itself
        float_probs = predict(inputs.parts.full(), images[held])
    else:
        cut, pooled = inputs.features.cut_train, inputs.features.pooled_train
        # untuned (no fine-tuning, or a refit that skips it): the pooled ImageNet top holds
        float_probs = _float_probs(inputs.parts, cut[0, held] if tune else pooled[0, held], tune)
    exported = export_int8(inputs.parts.full(), calibration, images[held])
    int8_probs = exported.scores
    return {
        "int8": asdict(Scores.of(int8_probs, y[held], categories)),
        "float": asdict(Scores.of(float_probs, y[held], categories)),
        "convert_seconds": exported.convert_seconds,
        "int8_predicted": [categories[int(p)] for p in int8_probs.argmax(axis=1)],
        "int8_probs": np.round(int8_probs.astype(np.float64), 4).tolist(),
    }


def view_probs(inputs: FoldInputs, tune: bool) -> np.ndarray:
    """The trained float model's probabilities on every image, averaged over its fixed views
    (a teacher's test-time augmentation; the cached pipeline only)."""
    features = inputs.features
    if features is None:
        raise ValueError("teacher probabilities need the cached pipeline")
    acts = features.cut_train if tune else features.pooled_train
    total = np.zeros((acts.shape[1], len(inputs.ds.categories)), np.float64)
    for v in range(len(acts)):
        total += _float_probs(inputs.parts, acts[v], tune)
    return (total / len(acts)).astype(np.float32)


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
