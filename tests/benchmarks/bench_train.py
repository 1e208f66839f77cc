"""Training on TrashNet (../shared): float and int8 test accuracy per class, the confusion
matrix, and training throughput of the cached pipeline against the original's approach (a
plain Keras ``fit`` over an ImageDataGenerator-style loader that decodes JPEGs every epoch),
same model, same machine, one run.

``--quick``: 160 px, fewer views and epochs (minutes on 2 cores); the default is 224 px.
"""

import argparse
import logging
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from recyclops.cloud.dataset import dataset_from_folders
from recyclops.shared.config import TrainConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the test support package
from support.benchutil import BENCH_DIR, emit, find_trashnet, table


def accuracy_run(
    root: Path, quick: bool, work: Path, pipeline: str = "cached"
) -> tuple[dict, Path]:
    from recyclops.cloud.train import train

    config = TrainConfig(
        image_size=160 if quick else 224,
        augment_views=2 if quick else 3,
        epochs=10,
        fine_tune_epochs=4 if quick else 12,
        batch_size=32,
        learning_rate=3e-3,
        label_smoothing=0.1,
        weights="imagenet",
        pipeline=pipeline,
    )
    ds = dataset_from_folders(root, cache_dir=work / "cache")
    t0 = time.monotonic()
    run_dir = train(
        config, ds, work / "runs", run_id=f"trashnet-{pipeline}{'-quick' if quick else ''}"
    ).run_dir
    import json

    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics["wall_seconds"] = time.monotonic() - t0
    metrics["config"] = config.model_dump()
    metrics["per_class_images"] = ds.per_class()
    return metrics, run_dir


class DirectoryLoader:
    """The original's loader, ImageDataGenerator-style: decode + resize every JPEG on every
    epoch with PIL, random flips in numpy, batches handed to ``fit``."""

    def __new__(cls, paths: list[Path], labels: np.ndarray, size: int, batch: int, n: int):  # type: ignore[no-untyped-def]
        import keras
        from PIL import Image

        class _Loader(keras.utils.PyDataset):
            def __len__(self) -> int:
                return -(-len(paths) // batch)

            def __getitem__(self, i: int):  # type: ignore[no-untyped-def]
                idx = range(i * batch, min(len(paths), (i + 1) * batch))
                xs = []
                for j in idx:
                    with Image.open(paths[j]) as img:
                        arr = np.asarray(img.convert("RGB").resize((size, size)), np.float32)
                    xs.append(arr[:, ::-1] if np.random.rand() < 0.5 else arr)
                return np.stack(xs), np.eye(n, dtype=np.float32)[labels[list(idx)]]

        return _Loader()


def throughput(root: Path, quick: bool) -> list[list]:
    """Head training (frozen base, the original's setting), images/s over a 10-epoch run.
    The per-epoch pipelines are timed for 2 epochs and scaled to 10 (their cost is linear
    in epochs); the cached pipeline is timed for all 10, feature extraction included."""
    import keras

    from recyclops.cloud.fit import SplitArrays, fit_cached, pixel_dataset
    from recyclops.cloud.model import build_parts
    from recyclops.cloud.pixels import load_pixels

    size = 160 if quick else 224
    ds = dataset_from_folders(root)
    shas = sorted(ds.labels)[: 320 if quick else 480]
    cats = ds.categories
    y = np.array([cats.index(ds.labels[s]) for s in shas])
    paths = [ds.path(s) for s in shas]
    config = TrainConfig(
        image_size=size,
        fine_tune=False,
        epochs=10,
        batch_size=32,
        augment_views=3,
        early_stopping_patience=100,
    )
    n, timed, total = len(shas), 2, 10
    rows = []

    def row(name: str, seconds_10: float, base: float | None) -> list:
        return [
            name,
            n * total,
            f"{seconds_10:.1f}",
            f"{n * total / seconds_10:.1f}",
            f"{(base or seconds_10) / seconds_10:.1f}x",
        ]

    parts = build_parts(config, len(cats))
    model = parts.full()
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    loader = DirectoryLoader(paths, y, size, 32, len(cats))
    t0 = time.monotonic()
    model.fit(loader, epochs=timed, verbose=0)
    t_orig = (time.monotonic() - t0) / timed * total
    rows.append(
        row("original: Keras fit over a JPEG directory loader (decode every epoch)", t_orig, None)
    )

    keras.backend.clear_session()
    t0 = time.monotonic()
    px = load_pixels(ds, shas, size, cache=False)
    t_decode = time.monotonic() - t0
    parts = build_parts(config, len(cats))
    model = parts.full()
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    onehot = np.eye(len(cats), dtype=np.float32)[y]
    data = pixel_dataset(px.images, onehot, np.ones(len(y), np.float32), 32, 0, None)
    t0 = time.monotonic()
    model.fit(data, epochs=timed, verbose=0)
    t_px = (time.monotonic() - t0) / timed * total + t_decode
    rows.append(row("recyclops pixels: decode once, tf.data over the uint8 cache", t_px, t_orig))

    keras.backend.clear_session()
    parts = build_parts(config, len(cats))
    split = SplitArrays(px.images, y, px.images[:64], y[:64], len(cats))
    t0 = time.monotonic()
    fit_cached(parts, config, split)
    t_cached = time.monotonic() - t0 + t_decode
    rows.append(
        row(
            f"recyclops cached: base features once for {config.augment_views} fixed views",
            t_cached,
            t_orig,
        )
    )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", dest="json_out")
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--from-run", help="report the accuracy of an existing run folder")
    parser.add_argument(
        "--pipeline",
        choices=["cached", "pixels"],
        default="cached",
        help="training pipeline for the accuracy run (pixels: live augmentation)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    root = find_trashnet()
    result: dict = {
        "title": "Training (TrashNet)",
        "tables": [],
        "figures": {},
        "notes": [],
        "plots": [],
    }
    if root is None:
        result["notes"].append("../shared/datasets/trashnet not found: skipped")
        emit(result, args.json_out)
        return 0
    work = BENCH_DIR / "train"
    work.mkdir(parents=True, exist_ok=True)
    if not args.skip_accuracy:
        if args.from_run:
            import json

            run_dir = Path(args.from_run)
            m = json.loads((run_dir / "metrics.json").read_text())
            m["config"] = json.loads((run_dir / "config.json").read_text())
            m["wall_seconds"] = m["total_seconds"]
        else:
            m, run_dir = accuracy_run(root, args.quick, work, args.pipeline)
        fl, q = m["float"], m["int8"]
        rows = [
            [c, fl["support"][c], f"{fl['per_class'][c]:.1%}", f"{q['per_class'][c]:.1%}"]
            for c in fl["per_class"]
        ]
        rows.append(
            [
                "**all**",
                sum(fl["support"].values()),
                f"**{fl['accuracy']:.1%}**",
                f"**{q['accuracy']:.1%}**",
            ]
        )
        result["tables"].append(
            table(
                "Test accuracy (hash split, never trained on)",
                ["class", "test images", "float", "int8"],
                rows,
            )
        )
        cats = list(fl["per_class"])
        result["tables"].append(
            table(
                "Confusion matrix, int8 (rows true, columns predicted)",
                ["true \\ predicted", *cats],
                [[c, *row] for c, row in zip(cats, q["confusion"], strict=True)],
            )
        )
        png = run_dir / "model" / "confusion_matrix.png"
        dest = BENCH_DIR / "train_confusion_matrix.png"
        shutil.copy(png, dest)
        result["plots"].append(str(dest))
        result["figures"].update(
            {
                "float_accuracy": round(fl["accuracy"], 4),
                "int8_accuracy": round(q["accuracy"], 4),
                "int8_drop_points": round((fl["accuracy"] - q["accuracy"]) * 100, 2),
                "gate_passed": m["gate"]["passed"],
                "train_wall_seconds": round(m["wall_seconds"], 1),
                "target_int8_93": q["accuracy"] >= 0.93,
            }
        )
        c = m["config"]
        result["notes"].append(
            f"{c['image_size']} px, ImageNet MobileNetV2, head {c['epochs']} epochs "
            f"at {c['learning_rate']:g}, then block 13+ ({m['trainable_top_layers']} layers, "
            f"BatchNorm frozen) {c['fine_tune_epochs']} epochs "
            f"at {c['fine_tune_learning_rate'] or c['learning_rate'] / 10:g}, cosine, "
            f"label smoothing {c['label_smoothing']}, "
            + (
                f"{c['augment_views']} fixed views per training image (cached pipeline); "
                if c["pipeline"] == "cached"
                else "live augmentation (pixels pipeline); "
            )
            + f"run folder {run_dir}"
        )
    if not args.skip_throughput:
        rows = throughput(root, args.quick)
        result["tables"].append(
            table(
                "Head-training throughput, frozen base, same model, 10 epochs",
                ["pipeline", "images trained", "seconds", "images/s", "speed-up"],
                rows,
            )
        )
        result["notes"].append(
            "cached and pixels times include decoding the JPEGs once; cached includes "
            "computing base features for every view"
        )
    emit(result, args.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
