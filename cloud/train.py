"""``recyclops train``: data set folder in, a run folder out, with a judged int8 model.

Run folder: ``config.json`` (resolved), ``history.csv``, ``tensorboard/``, ``metrics.json``,
``gate.json`` (the blessing, ``blessing.py``) and ``model/`` (model.tflite = int8,
model_float.tflite, model.keras, golden.npz, MODEL_CARD.md, confusion_matrix.png,
manifest.json): ``model/`` is what gets published. ``train`` returns it as a ``TrainResult``.
"""

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..shared import layout
from ..shared.atomic import atomic_write_bytes, atomic_write_text
from ..shared.config import TrainConfig
from ..shared.hashing import sha256_bytes
from ..shared.manifest import (
    Blessing,
    ClassMetrics,
    DatasetInfo,
    GoldenSpec,
    InputSpec,
    Metrics,
    ModelManifest,
    SplitInfo,
    file_entry,
)
from ..shared.preprocess import min_edge_for
from ..shared.store import ObjectStore
from .blessing import Verdict, bless, summarise
from .dataset import SPLIT_SALT, Dataset, DatasetError, load_dataset
from .evaluate import Scores
from .pixels import model_input, spec_pixels

logger = logging.getLogger(__name__)
MODEL_DIR = "model"
FLOAT_FILE = "model_float.tflite"
CONFUSION_FILE = "confusion_matrix.png"


def seed_everything(seed: int) -> None:
    import keras

    keras.utils.set_random_seed(seed)


def run_id_for(config: TrainConfig, ds: Dataset) -> str:
    digest = hashlib.sha256((config.model_dump_json() + ds.fingerprint).encode()).hexdigest()[:8]
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{digest}"


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced: callers need not read gate.json or find the manifest."""

    run_dir: Path
    manifest_path: Path
    manifest: ModelManifest
    #: the int8 model (``model/model.tflite``)
    model_path: Path
    #: the blessing, as saved in the run's gate.json
    verdict: Verdict

    @property
    def model_dir(self) -> Path:
        return self.manifest_path.parent

    @property
    def blessed(self) -> bool:
        return self.verdict.blessed


@dataclass
class Prepared:
    data: Any  # fit.SplitArrays
    x_test: np.ndarray
    y_test: np.ndarray
    test_shas: list[str]
    split: SplitInfo
    problems: list[str]
    spec: InputSpec  # the pixels every split was made with (quantisation not yet known)


def prepare_arrays(
    config: TrainConfig, ds: Dataset, groups: list[list[str]] | None = None
) -> Prepared:
    """The splits' pixels through the shared preprocessing, and how the split was made
    (``groups``: near-duplicates the split keeps on one side, from ``recyclops audit``)."""
    from .fit import SplitArrays

    splits, moved = ds.split_moves(config.validation_split, config.test_split, groups=groups)
    index = {c: i for i, c in enumerate(ds.categories)}
    arrays, problems, kept = {}, [], {}
    spec = model_input(config)
    for name, shas in splits.items():
        px = spec_pixels(ds, shas, spec)
        problems += px.problems
        kept[name] = list(px.shas)
        arrays[name] = (px.images, np.array([index[ds.labels[s]] for s in px.shas], np.int64))
    for name, (x, _) in arrays.items():
        if len(x) == 0:
            raise DatasetError(
                f"the {name} split is empty ({len(ds.labels)} images in the data set): add images "
                "or raise validation_split/test_split"
            )
    split = SplitInfo(
        salt=SPLIT_SALT,
        val_fraction=config.validation_split,
        test_fraction=config.test_split,
        moved=moved,
    )
    data = SplitArrays(*arrays["train"], *arrays["val"], len(ds.categories))
    return Prepared(data, *arrays["test"], kept["test"], split, problems, spec)


def _refit(
    config: TrainConfig, data: Any, history: dict[str, Any], classes: int, verbose: int
) -> tuple[Any, dict[str, Any]]:
    """A fresh model trained on training + validation images for the epochs validation chose
    (a stage that never beat the one before is skipped): more data, the same stopping point."""
    from .fit import fit_cached, fit_pixels, refit_config
    from .model import build_parts

    cfg = refit_config(config, history)
    head, tune = cfg.epochs, cfg.fine_tune_epochs
    seed_everything(config.seed)
    parts = build_parts(cfg, classes)
    merged = data.merged()
    fit = fit_cached if config.pipeline == "cached" else fit_pixels
    refit = fit(parts, cfg, merged, None, verbose=verbose, select=False)
    logger.info(
        "refit on %d images: %d head epochs, %d fine-tuning epochs", len(merged.y_train), head, tune
    )
    return parts, {
        "images": len(merged.y_train),
        "head_epochs": head,
        "fine_tune_epochs": tune,
        **refit,
    }


def _predict_keras(model: Any, x: np.ndarray) -> np.ndarray:
    return np.concatenate(
        [
            np.asarray(model(x[i : i + 64].astype("float32"), training=False))
            for i in range(0, len(x), 64)
        ]
    )


def train(
    config: TrainConfig,
    data_dir: str | Path | Dataset,
    runs_dir: str | Path,
    *,
    run_id: str | None = None,
    verbose: int = 0,
    store: ObjectStore | None = None,
    allow_incomplete: bool = False,
) -> TrainResult:
    """Train, convert, judge and package; returns the run with its manifest and verdict
    (also written to ``gate.json``; ``publish`` refuses a run not blessed).

    ``store``: where the channel's champion is fetched from, to judge against it. Without
    one the verdict records that no champion was looked up, and publish refuses the run
    for a channel that already serves a model.
    """
    from .audit import load_groups
    from .champion import score_champion
    from .convert import export_int8, representative, to_float_tflite
    from .fit import fit_cached, fit_pixels
    from .golden_set import build as build_golden
    from .model import build_parts
    from .qat import quantisation_aware

    t0 = time.monotonic()
    ds = (
        data_dir
        if isinstance(data_dir, Dataset)
        else load_dataset(data_dir, allow_incomplete=allow_incomplete)
    )
    run_dir = Path(runs_dir) / (run_id or run_id_for(config, ds))
    model_dir = run_dir / MODEL_DIR
    model_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.json", config.model_dump_json(indent=1) + "\n")
    seed_everything(config.seed)
    audit_id, groups = load_groups(store) if store is not None else (None, [])
    prep = prepare_arrays(config, ds, groups)
    data, x_test, y_test = prep.data, prep.x_test, prep.y_test
    logger.info(
        "split: %d train, %d validation, %d test", len(data.y_train), len(data.y_val), len(y_test)
    )
    parts = build_parts(config, len(ds.categories))
    fit = fit_cached if config.pipeline == "cached" else fit_pixels
    history = fit(parts, config, data, run_dir, verbose=verbose)
    if config.refit:
        parts, history["refit"] = _refit(config, data, history, len(ds.categories), verbose)
    calibration = representative(data.x_train, config.representative_images, config.seed)
    if config.qat_epochs > 0:
        trained_on = data.merged() if config.refit else data
        history["qat"] = quantisation_aware(parts, config, trained_on, calibration, verbose)
    t_fit = time.monotonic() - t0
    model = parts.full()
    model.save(model_dir / layout.KERAS_FILE)
    atomic_write_bytes(model_dir / FLOAT_FILE, to_float_tflite(model))
    exported = export_int8(model, calibration, x_test, path=model_dir / layout.MODEL_FILE)
    int8, int8_bytes, int8_probs = exported.model, exported.data, exported.scores
    keras_probs = _predict_keras(model, x_test)
    fl = Scores.of(keras_probs, y_test, ds.categories)
    q = Scores.of(int8_probs, y_test, ds.categories)
    scale, zero = int8.input_quant
    # every split's pixels were made for exactly this spec; conversion adds the quantisation
    quant = {"dtype": int8.input_dtype, "scale": scale, "zero_point": zero}
    spec = InputSpec.model_validate({**prep.spec.model_dump(), **quant})
    champion = (
        score_champion(store, config.channel, ds, prep.test_shas, x_test, spec, prep.split)
        if store is not None
        else None
    )
    verdict = bless(
        config,
        ds.categories,
        y_test,
        int8_probs,
        keras_probs,
        champion,
        version=run_dir.name,
        model_sha256=sha256_bytes(int8_bytes),
    )
    verdict.record["channel"] = config.channel
    verdict.record["champion_looked_up"] = store is not None
    if groups:
        verdict.record["notes"].append(
            f"{len(groups)} near-duplicate groups from audit {audit_id} kept on one side of "
            f"the split ({len(prep.split.moved)} images off their hash split in all)"
        )
    if not ds.complete:
        verdict.record["notes"].append(
            f"trained on an incomplete sync ({ds.incomplete_reason}), allowed explicitly"
        )
    if store is None:
        verdict.record["notes"].append(
            "no store given: the channel's champion was not looked up (publish checks it)"
        )
    golden = build_golden(ds, prep.test_shas, y_test, int8_probs, spec, int8, config.golden_images)
    if golden is None:
        verdict.record["notes"].append(
            "no test image gave a finite output: no golden set, so publish and the bins refuse it"
        )
    else:
        atomic_write_bytes(model_dir / layout.GOLDEN_FILE, golden.to_bytes())
    verdict.summary = summarise(verdict.blessed, verdict.record, verdict.reasons)
    elapsed = time.monotonic() - t0
    manifest = _package(
        run_dir,
        config,
        ds,
        spec,
        fl,
        q,
        verdict,
        history,
        prep,
        None
        if golden is None
        else GoldenSpec(
            file=layout.GOLDEN_FILE, count=len(golden), tolerance=config.golden_tolerance
        ),
        {
            "fit_seconds": round(t_fit, 1),
            "total_seconds": round(elapsed, 1),
            "cut_layer": parts.cut,
            "trainable_top_layers": parts.trainable_layers,
        },
    )
    verdict.save(run_dir)  # last: a run with gate.json is a finished run (recyclops-job)
    logger.info("%s", verdict.summary)
    logger.info("run written to %s (%.0f s)", run_dir, elapsed)
    return TrainResult(
        run_dir=run_dir,
        manifest_path=model_dir / layout.MANIFEST_FILE,
        manifest=manifest,
        model_path=model_dir / layout.MODEL_FILE,
        verdict=verdict,
    )


def _package(
    run_dir: Path,
    config: TrainConfig,
    ds: Dataset,
    spec: InputSpec,
    fl: Scores,
    q: Scores,
    verdict: Verdict,
    history: dict[str, Any],
    prep: Prepared,
    golden: GoldenSpec | None,
    timing: dict[str, Any],
) -> ModelManifest:
    from .card import confusion_png, model_card
    from .tblog import log_hparams

    model_dir = run_dir / MODEL_DIR
    png = confusion_png(q.confusion, ds.categories, f"{run_dir.name} int8 (test)")

    atomic_write_bytes(model_dir / CONFUSION_FILE, png)
    metrics = Metrics(
        float_accuracy=fl.accuracy,
        int8_accuracy=q.accuracy,
        test_images=sum(fl.support.values()),
        per_class={
            c: ClassMetrics(
                float_accuracy=fl.per_class[c], int8_accuracy=q.per_class[c], support=fl.support[c]
            )
            for c in ds.categories
        },
    )
    hp = {**config.model_dump(exclude={"channel"}), **timing}
    created = datetime.now(UTC)
    files = [layout.MODEL_FILE, FLOAT_FILE, layout.KERAS_FILE, CONFUSION_FILE]
    if golden is not None:
        files.insert(3, golden.file)
    champion = verdict.record.get("champion") or {}
    blessing = Blessing(
        blessed=verdict.blessed,
        champion_version=champion.get("version"),
        summary=verdict.summary[:4000],
    )

    def build(entries: list[str]) -> ModelManifest:
        return ModelManifest(
            version=run_dir.name,
            created=created,
            categories=ds.categories,
            input=spec,
            metrics=metrics,
            hyperparameters=hp,
            dataset=DatasetInfo(
                fingerprint=ds.fingerprint,
                images=len(ds.labels),
                per_class=ds.per_class(),
                split=prep.split,
            ),
            files=[file_entry(model_dir / f) for f in entries],
            min_edge_version=min_edge_for(spec),
            golden=golden,
            blessing=blessing,
        )

    draft = build(files)
    atomic_write_text(
        model_dir / layout.CARD_FILE, model_card(draft, fl, q, verdict, history, CONFUSION_FILE)
    )
    manifest = build([*files, layout.CARD_FILE])
    atomic_write_text(model_dir / layout.MANIFEST_FILE, manifest.to_json().decode())
    atomic_write_text(
        run_dir / "metrics.json",
        json.dumps(
            {
                "float": asdict(fl),
                "int8": asdict(q),
                "blessed": verdict.blessed,
                "history": history,
                "problems": prep.problems,
                "dataset_complete": ds.complete,
                "dataset_incomplete_reason": ds.incomplete_reason,
                **timing,
            },
            indent=1,
        )
        + "\n",
    )
    log_hparams(
        run_dir / "tensorboard" / "hparams",
        {k: v for k, v in hp.items() if v is not None},
        {"test_accuracy_float": fl.accuracy, "test_accuracy_int8": q.accuracy},
        png,
    )
    return manifest
