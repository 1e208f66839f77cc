"""Search cost: a trial on cached base features against the same trial from pixels, in one
run, and the default grid's total (96 frozen + 96 fine-tuning trials) estimated from them.

TrashNet subset from ../shared (synthetic images otherwise). ``--quick``: 160 px, fewer images.
"""

import argparse
import logging
import sys
import time
from pathlib import Path

from recyclops.cloud.dataset import dataset_from_folders
from recyclops.shared.config import SearchConfig, TrainConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the test support package
from support.benchutil import BENCH_DIR, emit, find_trashnet, table


def timed(fn, *args, **kwargs) -> float:  # type: ignore[no-untyped-def]
    t0 = time.monotonic()
    fn(*args, **kwargs)
    return time.monotonic() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", dest="json_out")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import keras

    from recyclops.cloud.fit import compute_features, fit_cached, fit_pixels
    from recyclops.cloud.model import build_parts
    from recyclops.cloud.train import prepare_arrays

    root = find_trashnet()
    work = BENCH_DIR / "search"
    work.mkdir(parents=True, exist_ok=True)
    if root is None:
        print("TrashNet not found; nothing to measure")
        emit(
            {
                "title": "Search cost",
                "tables": [],
                "figures": {},
                "notes": ["TrashNet missing: skipped"],
                "plots": [],
            },
            args.json_out,
        )
        return 0
    size, count = (160, 400) if args.quick else (224, 600)
    grid = SearchConfig()
    base = TrainConfig(
        image_size=size,
        augment_views=3,
        epochs=grid.epochs,
        fine_tune_epochs=grid.fine_tune_epochs,
        early_stopping_patience=1000,
        learning_rate=1e-4,
        batch_size=32,
    )
    full = dataset_from_folders(root, cache_dir=work / "cache")
    ds = full.subset(sorted(full.labels)[:count])
    data = prepare_arrays(base, ds).data
    n = len(data.y_train)
    parts = build_parts(base, len(ds.categories))
    t0 = time.monotonic()
    feats = compute_features(parts, base, data, need_cut=True)
    t_feat = time.monotonic() - t0
    rows, t = [], {}
    for bs in grid.batch_size:
        keras.backend.clear_session()
        cfg = base.model_copy(update={"fine_tune": False, "batch_size": bs})
        p = build_parts(cfg, len(ds.categories))
        t[("cached", False, bs)] = timed(fit_cached, p, cfg, data, features=feats)
    for bs in (8, 32):
        keras.backend.clear_session()
        cfg = base.model_copy(update={"fine_tune": True, "batch_size": bs})
        p = build_parts(cfg, len(ds.categories))
        t[("cached", True, bs)] = timed(fit_cached, p, cfg, data, features=feats)
    # from pixels, batch 32: one epoch of each stage timed, scaled to the trial's epochs
    keras.backend.clear_session()
    one = base.model_copy(update={"fine_tune": False, "epochs": 1})
    p = build_parts(one, len(ds.categories))
    t_px_epoch = timed(fit_pixels, p, one, data)
    t[("pixels", False, 32)] = t_px_epoch * grid.epochs
    keras.backend.clear_session()
    one_ft = base.model_copy(update={"fine_tune": True, "epochs": 1, "fine_tune_epochs": 1})
    p = build_parts(one_ft, len(ds.categories))
    t_px_ft_epoch = timed(fit_pixels, p, one_ft, data) - t_px_epoch
    t[("pixels", True, 32)] = t[("pixels", False, 32)] + t_px_ft_epoch * grid.fine_tune_epochs

    frozen_px, ft_px = t[("pixels", False, 32)], t[("pixels", True, 32)]
    rows.append(
        [
            "frozen (head only), batch 32",
            f"{t[('cached', False, 32)]:.1f}",
            f"{frozen_px:.1f}",
            f"{frozen_px / t[('cached', False, 32)]:.0f}x",
        ]
    )
    rows.append(
        [
            "fine-tune block 13+, batch 32",
            f"{t[('cached', True, 32)]:.1f}",
            f"{ft_px:.1f}",
            f"{ft_px / t[('cached', True, 32)]:.1f}x",
        ]
    )
    # fine-tune cost per batch size: a + b / batch through the two measured points
    b = (t[("cached", True, 8)] - t[("cached", True, 32)]) / (1 / 8 - 1 / 32)
    a = t[("cached", True, 32)] - b / 32
    per_bs = {bs: (t[("cached", False, bs)], a + b / bs) for bs in grid.batch_size}
    others = grid.size // (len(grid.batch_size) * 2)  # trials per (batch size, fine-tune) cell
    cached_total = t_feat + sum(others * (f + ft) for f, ft in per_bs.values())
    pixel_total = grid.size // 2 * (frozen_px + ft_px)
    grid_rows = [
        ["cached features (features once + every trial)", f"{cached_total / 60:.1f}"],
        ["from pixels (every trial through MobileNetV2)", f"{pixel_total / 60:.1f}"],
        ["ratio", f"{pixel_total / cached_total:.1f}x"],
    ]
    bs_rows = [[bs, f"{f:.1f}", f"{ft:.1f}"] for bs, (f, ft) in per_bs.items()]
    result = {
        "title": "Search: cached base features against training from pixels",
        "tables": [
            table(
                f"One trial, {n} training images at {size} px, {grid.epochs} head epochs "
                f"(+{grid.fine_tune_epochs} fine-tune); seconds",
                ["trial", "cached features", "from pixels", "speed-up"],
                rows,
            ),
            table(
                "Cached trial seconds by batch size "
                "(frozen measured; fine-tune fitted a + b/batch from 8 and 32)",
                ["batch size", "frozen", "fine-tune"],
                bs_rows,
            ),
            table(
                f"Default grid ({grid.size} trials) total on this data, minutes",
                ["approach", "minutes"],
                grid_rows,
            ),
        ],
        "figures": {
            "feature_seconds": round(t_feat, 1),
            "frozen_trial_speedup": round(frozen_px / t[("cached", False, 32)], 1),
            "grid_minutes_cached": round(cached_total / 60, 1),
            "grid_minutes_pixels": round(pixel_total / 60, 1),
        },
        "notes": [
            f"features: {base.augment_views} fixed augmented views per training image "
            "computed once "
            f"({t_feat:.0f} s, included in the grid total); trials train on those views only, "
            "so augmentation is limited to them (the honest cost of caching)",
            "from-pixel trial times are one timed epoch per stage scaled to the trial's epochs, at "
            "batch 32 for every batch size "
            "(smaller batches are slower still: the estimate favours pixels)",
        ],
        "plots": [],
    }
    emit(result, args.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
