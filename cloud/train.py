"""``recyclops train``: data set folder in, a run folder out, with a gated int8 model.

Run folder: ``config.json`` (resolved), ``history.csv``, ``tensorboard/``, ``metrics.json``,
``gate.json`` and ``model/`` (model.tflite = int8, model_float.tflite, model.keras,
MODEL_CARD.md, confusion_matrix.png, manifest.json): ``model/`` is what gets published.
"""

import hashlib
import json
import logging
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..shared import layout
from ..shared.atomic import atomic_write_bytes, atomic_write_text
from ..shared.config import TrainConfig
from ..shared.manifest import (
    ClassMetrics,
    DatasetInfo,
    InputSpec,
    Metrics,
    ModelManifest,
    file_entry,
)
from .dataset import Dataset, DatasetError, load_dataset
from .evaluate import GateResult, Scores, quality_gate
from .pixels import load_pixels

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


def prepare_arrays(
    config: TrainConfig, ds: Dataset
) -> tuple[Any, np.ndarray, np.ndarray, list[str]]:
    """(SplitArrays, x_test, y_test, problems) through the shared preprocessing."""
    from .fit import SplitArrays

    splits = ds.split(config.validation_split, config.test_split)
    index = {c: i for i, c in enumerate(ds.categories)}
    arrays, problems = {}, []
    for name, shas in splits.items():
        px = load_pixels(ds, shas, config.image_size)
        problems += px.problems
        arrays[name] = (px.images, np.array([index[ds.labels[s]] for s in px.shas], np.int64))
    for name, (x, _) in arrays.items():
        if len(x) == 0:
            raise DatasetError(
                f"the {name} split is empty ({len(ds.labels)} images in the data set): add images "
                "or raise validation_split/test_split"
            )
    data = SplitArrays(*arrays["train"], *arrays["val"], len(ds.categories))
    return data, arrays["test"][0], arrays["test"][1], problems


def train(
    config: TrainConfig,
    data_dir: str | Path | Dataset,
    runs_dir: str | Path,
    *,
    run_id: str | None = None,
    verbose: int = 0,
) -> Path:
    """Train, convert, evaluate, gate and package; returns the run folder (gate result
    in ``gate.json``; check it with ``GateResult`` or let ``publish`` refuse)."""
    from .convert import TfliteModel, check_int8_io, representative, to_float_tflite, to_int8_tflite
    from .fit import fit_cached, fit_pixels
    from .model import build_parts

    t0 = time.monotonic()
    ds = data_dir if isinstance(data_dir, Dataset) else load_dataset(data_dir)
    run_dir = Path(runs_dir) / (run_id or run_id_for(config, ds))
    model_dir = run_dir / MODEL_DIR
    model_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.json", config.model_dump_json(indent=1) + "\n")
    seed_everything(config.seed)
    data, x_test, y_test, problems = prepare_arrays(config, ds)
    logger.info(
        "split: %d train, %d validation, %d test", len(data.y_train), len(data.y_val), len(y_test)
    )
    parts = build_parts(config, len(ds.categories))
    fit = fit_cached if config.pipeline == "cached" else fit_pixels
    history = fit(parts, config, data, run_dir, verbose=verbose)
    t_fit = time.monotonic() - t0
    model = parts.full()
    model.save(model_dir / layout.KERAS_FILE)
    float_bytes = to_float_tflite(model)
    int8_bytes = to_int8_tflite(
        model, representative(data.x_train, config.representative_images, config.seed)
    )

    atomic_write_bytes(model_dir / FLOAT_FILE, float_bytes)
    atomic_write_bytes(model_dir / layout.MODEL_FILE, int8_bytes)
    int8 = TfliteModel(int8_bytes)
    check_int8_io(int8)
    keras_probs = np.concatenate(
        [
            np.asarray(model(x_test[i : i + 64].astype("float32"), training=False))
            for i in range(0, len(x_test), 64)
        ]
    )
    fl = Scores.of(keras_probs, y_test, ds.categories)
    q = Scores.of(int8.predict(x_test), y_test, ds.categories)
    gate = quality_gate(fl, q, config.gate_margin, config.gate_class_margin)
    gate.save(run_dir)
    scale, zero = int8.input_quant
    spec = InputSpec(
        height=config.image_size,
        width=config.image_size,
        dtype=int8.input_dtype,
        scale=scale,
        zero_point=zero,
    )
    elapsed = time.monotonic() - t0
    _package(
        run_dir,
        config,
        ds,
        spec,
        fl,
        q,
        gate,
        history,
        problems,
        {
            "fit_seconds": round(t_fit, 1),
            "total_seconds": round(elapsed, 1),
            "cut_layer": parts.cut,
            "trainable_top_layers": parts.trainable_layers,
        },
    )
    logger.info("%s", gate.summary())
    logger.info("run written to %s (%.0f s)", run_dir, elapsed)
    return run_dir


def _package(
    run_dir: Path,
    config: TrainConfig,
    ds: Dataset,
    spec: InputSpec,
    fl: Scores,
    q: Scores,
    gate: GateResult,
    history: dict[str, Any],
    problems: list[str],
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

    def build(entries: list[str]) -> ModelManifest:
        return ModelManifest(
            version=run_dir.name,
            created=created,
            categories=ds.categories,
            input=spec,
            metrics=metrics,
            hyperparameters=hp,
            dataset=DatasetInfo(
                fingerprint=ds.fingerprint, images=len(ds.labels), per_class=ds.per_class()
            ),
            files=[file_entry(model_dir / f) for f in entries],
        )

    draft = build(files)
    atomic_write_text(
        model_dir / layout.CARD_FILE, model_card(draft, fl, q, gate, history, CONFUSION_FILE)
    )
    manifest = build([*files, layout.CARD_FILE])
    atomic_write_text(model_dir / layout.MANIFEST_FILE, manifest.to_json().decode())
    atomic_write_text(
        run_dir / "metrics.json",
        json.dumps(
            {
                "float": asdict(fl),
                "int8": asdict(q),
                "gate": asdict(gate),
                "history": history,
                "problems": problems,
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
