"""Teachers for out-of-sample distillation: ``recyclops evaluate --cv K --teach-pairs``.

A per-fold teacher's probabilities on its student's training images are in sample (it
trained on them) and are nearly their labels. For every pair of folds (j, k) this trains the
recipe on the other K - 2 folds only, so that its probabilities on fold j's images can teach
fold k's student and those on fold k's images fold j's student: out of sample for the image,
and blind to the student's held-out fold. ``--folds`` limits the run to the pairs those
students need (K - 1 each; all K(K - 1)/2 for every fold).

Each pair saves ``folds/pair-<j>-<k>.soft.npz`` (``cv_distill``) and ``pair-<j>-<k>.json``
(its scores on the two folds it did not see); ``pairs.json`` sums the run up. A rerun with
the same recipe and data skips the pairs saved.
"""

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

from ..shared.atomic import atomic_write_text
from ..shared.config import TrainConfig
from .crossval import FOLDS_DIR, CrossValError, assign_folds, recipe_key
from .cv_distill import pair_file, pairs_for, save_soft, soft_key
from .dataset import Dataset
from .stats import wilson

logger = logging.getLogger(__name__)

PAIRS_FILE = "pairs.json"


def _pair_json(out: Path, a: int, b: int) -> Path:
    return out / FOLDS_DIR / f"pair-{a}-{b}.json"


def _saved(out: Path, a: int, b: int, key: str) -> dict[str, Any] | None:
    """A pair counts as done only with both its summary and its probabilities of this key."""
    try:
        data: dict[str, Any] = json.loads(_pair_json(out, a, b).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if data.get("key") != key or soft_key(pair_file(out, a, b)) != key:
        return None
    return data


def run_pair_teachers(
    config: TrainConfig,
    ds: Dataset,
    out_dir: str | Path,
    k: int = 5,
    *,
    inner_fraction: float | None = None,
    only: list[int] | None = None,
    verbose: int = 0,
) -> dict[str, Any]:
    """Train the pair teachers that the students of ``only`` (default: every fold) need and
    are not saved yet; write and return the summary of every pair saved for them."""
    t0 = time.monotonic()
    out = Path(out_dir)
    if k < 3:
        raise CrossValError(
            f"--teach-pairs with --cv {k}: a pair's teacher trains on the other K - 2 folds, "
            "so K must be at least 3"
        )
    if config.pipeline != "cached":
        raise CrossValError("distillation is measured on the cached pipeline only")
    inner_fraction = config.validation_split if inner_fraction is None else inner_fraction
    folds = assign_folds(ds, config, k, inner_fraction)
    base = recipe_key(config, folds, inner_fraction)
    key = hashlib.sha256(f"{base}:pairs".encode()).hexdigest()[:16]
    wanted = sorted(set(range(k) if only is None else only))
    if any(f not in range(k) for f in wanted):
        raise CrossValError(f"folds {wanted}: each must be in 0..{k - 1}")
    needed = pairs_for(wanted, k)
    done = {p: r for p in needed if (r := _saved(out, *p, key)) is not None}
    todo = [p for p in needed if p not in done]
    features_seconds = 0.0
    if todo:
        logger.info("pair teachers %s: %s to train, %d saved", key, todo, len(done))
        features_seconds = _train_pairs(config, ds, folds, key, todo, out, done, verbose)
    pairs = [done[p] for p in needed]
    result = {
        "schema_version": 1,
        "key": key,
        "k": k,
        "teach_pairs": True,
        "students": wanted,
        "config": config.model_dump(exclude={"channel"}),
        "inner_fraction": inner_fraction,
        "pairs": pairs,
        # what the students are taught with: each image's probabilities from the teachers
        # that did not see it, scored against its label (float, mean over the fixed views)
        "taught": _taught(pairs),
        "cost": {
            "this_run_minutes": round((time.monotonic() - t0) / 60, 2),
            "features_seconds_this_run": round(features_seconds, 1),
            "pair_minutes_total": round(sum(p["seconds"]["total"] for p in pairs) / 60, 2),
        },
    }
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / PAIRS_FILE, json.dumps(result, indent=1) + "\n")
    return result


def _taught(pairs: list[dict[str, Any]]) -> dict[str, Any]:
    right = sum(p["views_mean"]["right"] for p in pairs)
    n = sum(p["views_mean"]["images"] for p in pairs)
    low, high = wilson(right, n)
    return {"accuracy": right / n if n else None, "ci95": [low, high], "images": n}


def _train_pairs(
    config: TrainConfig,
    ds: Dataset,
    folds: Any,
    key: str,
    todo: list[tuple[int, int]],
    out: Path,
    done: dict[tuple[int, int], dict[str, Any]],
    verbose: int,
) -> float:
    from .cv_fold import fit_fold, prepare

    prep = prepare(config, ds, sorted(folds.labels), keep_soft=True)
    logger.info("base activations for %d images: %.0f s", len(prep.shas), prep.seconds)
    for a, b in todo:
        train = [s for s in folds.training(a) if folds.fold[s] != b]
        val = [s for s in folds.inner(a) if folds.fold[s] != b]
        held = folds.held_out(a) + folds.held_out(b)
        ix = prep.indices(train=train, val=val, held=held)
        seed = config.seed + 1000 + a * folds.k + b  # distinct from every fold's seed
        result = fit_fold(config, prep, prep.inputs, ix, seed, verbose)
        soft = result.pop("soft")
        trained = train + val if config.refit else train  # what the scored teacher saw
        y = prep.inputs.y
        right = int((soft[ix["held"]].argmax(axis=1) == y[ix["held"]]).sum())
        summary = {
            "pair": [a, b],
            "key": key,
            "images": {"trained": len(trained), "taught": len(held)},
            "int8": result["int8"]["accuracy"],
            "float": result["float"]["accuracy"],
            "views_mean": {"right": right, "images": len(held), "accuracy": right / len(held)},
            "seconds": result["seconds"],
        }
        save_soft(pair_file(out, a, b), key, prep.shas, trained, ds.categories, soft)
        atomic_write_text(_pair_json(out, a, b), json.dumps(summary, indent=1) + "\n")
        done[(a, b)] = summary
        logger.info(
            "pair %d-%d: trained on %d images; on the %d it did not see: int8 %.1f%%, "
            "views mean %.1f%% (%.0f s)",
            a,
            b,
            len(trained),
            len(held),
            100 * summary["int8"],
            100 * right / len(held),
            result["seconds"]["total"],
        )
    return prep.seconds


def format_pairs(result: dict[str, Any]) -> str:
    """The pair teachers as a table: what each saw, how it scores where it did not look."""
    lines = [
        f"pair teachers for the students of folds {result['students']} (--cv {result['k']})",
        f"{'pair':>6} {'trained':>8} {'taught':>7} {'int8':>6} {'float':>6} {'views':>6}"
        f" {'min':>5}",
    ]
    for p in result["pairs"]:
        a, b = p["pair"]
        lines.append(
            f"{a:>3}-{b:<2} {p['images']['trained']:>8} {p['images']['taught']:>7}"
            f" {100 * p['int8']:>5.1f}% {100 * p['float']:>5.1f}%"
            f" {100 * p['views_mean']['accuracy']:>5.1f}% {p['seconds']['total'] / 60:>5.1f}"
        )
    t = result["taught"]
    if t["accuracy"] is not None:
        lo, hi = t["ci95"]
        lines.append(
            f"what the students are taught: {100 * t['accuracy']:.1f}% right "
            f"({100 * lo:.1f}–{100 * hi:.1f}) over {t['images']} image-pairs, out of sample"
        )
    lines.append(f"cost: {result['cost']['this_run_minutes']:.1f} min this run")
    return "\n".join(lines)
