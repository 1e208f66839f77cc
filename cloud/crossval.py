"""K-fold cross-validated int8 accuracy over the non-test images: the figure that chooses
recipes (one 283-image test split is ±3.5 points at 95%, too noisy to rank recipes).

* Only images outside the hash split's test set take part (``Dataset.split_moves``, so an
  image lent to the test split stays out); the test split is left for the blessing.
* Folds come from the image hash with their own salt (``floor(u·K)``): an image never changes
  fold as the data grows. Each class is dealt by the same rule, so folds are stratified in
  expectation; a class with K or more images gets at least one in every fold (lent by its
  fullest fold, always its lowest-hash image), as the split does for small classes.
* Inside the K−1 training folds an inner validation slice (``frac(u·K) < inner_fraction``,
  default the recipe's ``validation_split``) drives the recipe's own early stopping and
  best-epoch choice; the held-out fold never influences training, stopping or calibration.
* The frozen lower network runs once per fixed view of every image (``fit.compute_features``)
  and every fold indexes those activations; only the head and the unfrozen top train per fold,
  from the same starting weights. Each fold's model goes through the real int8 converter and
  is scored on LiteRT, because int8 is what ships. With ``pipeline = "pixels"`` nothing is
  cached: every fold trains the whole network with live augmentation, as ``train`` would
  (affordable on a GPU instance, not on 2 cores).

* With ``refit`` (as ``recyclops train`` would ship) each fold trains twice: once with the
  inner slice choosing each stage's epochs, then a fresh model on training + inner images for
  exactly those epochs. Both are scored on the held-out fold; the refit is the fold's figure and
  the selected model is kept as ``selected`` (a paired comparison of the two in one run).

One fold's training, refit and scoring is ``cloud/cv_fold.py``.

``out_dir/folds/fold-<k>.json`` is written as each fold ends (a rerun with the same recipe and
data skips it); ``out_dir/crossval.json`` holds every fold, the aggregate and the
out-of-fold predictions (for paired comparisons of two recipes).
"""

import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..shared.atomic import atomic_write_text
from ..shared.config import TrainConfig
from ..shared.errors import RecyclopsError
from .cv_distill import save_soft, soft_file, student_targets, teacher_identity
from .dataset import Dataset
from .pixels import model_input
from .stats import wilson

logger = logging.getLogger(__name__)

CV_SALT = "recyclops-cv-v1"
RESULT_FILE = "crossval.json"
FOLDS_DIR = "folds"
KINDS = ("int8", "float")


@dataclass(frozen=True)
class Distill:
    """A teacher run keeps every fold's float probabilities (``save_soft``); a student run
    trains each fold towards ``alpha`` x its ``teachers``' mean + (1 - alpha) x the labels."""

    teachers: tuple[Path, ...] = ()
    alpha: float = 0.5
    save_soft: bool = False
    temperature: float = 1.0


class CrossValError(RecyclopsError):
    """The data set cannot be split into the requested folds."""


def cv_unit(sha256: str) -> float:
    """The image's fixed place in [0, 1) for fold assignment (independent of the split's)."""
    digest = hashlib.sha256(f"{CV_SALT}:{sha256}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True)
class Folds:
    """Which fold every non-test image is in, and which of them are inner validation."""

    k: int
    labels: dict[str, str]  # non-test sha -> category
    fold: dict[str, int]
    inner_val: frozenset[str]
    test: tuple[str, ...]

    def held_out(self, k: int) -> list[str]:
        return sorted(s for s, f in self.fold.items() if f == k)

    def training(self, k: int) -> list[str]:
        return sorted(s for s, f in self.fold.items() if f != k and s not in self.inner_val)

    def inner(self, k: int) -> list[str]:
        return sorted(s for s, f in self.fold.items() if f != k and s in self.inner_val)

    def per_class(self, categories: list[str]) -> list[dict[str, int]]:
        """Held-out images per class, per fold."""
        out = [dict.fromkeys(categories, 0) for _ in range(self.k)]
        for sha, f in self.fold.items():
            out[f][self.labels[sha]] += 1
        return out


def assign_folds(ds: Dataset, config: TrainConfig, k: int, inner_fraction: float) -> Folds:
    """K stratified, hash-stable folds over the images the split does not put in test."""
    if k < 2:
        raise CrossValError(f"--cv {k}: cross-validation needs at least 2 folds")
    if not 0.0 < inner_fraction < 1.0:
        raise CrossValError(f"inner validation fraction {inner_fraction} is not in (0, 1)")
    splits, _ = ds.split_moves(config.validation_split, config.test_split)
    pool = sorted(splits["train"] + splits["val"])
    if len(pool) < 2 * k:
        raise CrossValError(f"{len(pool)} non-test images cannot make {k} folds")
    fold = {s: min(k - 1, int(cv_unit(s) * k)) for s in pool}
    for category in ds.categories:
        mine = [s for s in pool if ds.labels[s] == category]
        if len(mine) < k:
            continue
        for need in range(k):
            members = [[s for s in mine if fold[s] == f] for f in range(k)]
            donor = max(range(k), key=lambda f: (len(members[f]), f))
            if not members[need] and len(members[donor]) >= 2:
                fold[min(members[donor], key=cv_unit)] = need
    inner = frozenset(s for s in pool if math.modf(cv_unit(s) * k)[0] < inner_fraction)
    folds = Folds(k, {s: ds.labels[s] for s in pool}, fold, inner, tuple(splits["test"]))
    for f in range(k):
        if not folds.training(f) or not folds.inner(f) or not folds.held_out(f):
            raise CrossValError(f"fold {f} has no training, inner validation or held-out image")
    return folds


def recipe_key(config: TrainConfig, folds: Folds, inner_fraction: float) -> str:
    """Identifies recipe + data + folding: a saved fold result is reused only on a match."""
    text = config.model_dump_json(exclude={"channel"}) + CV_SALT + f"{folds.k}:{inner_fraction}"
    # the pixels a new model is trained with: a fold measured with another resize is not reused
    text += model_input(config).model_dump_json()
    text += "".join(f"{s} {folds.labels[s]}\n" for s in sorted(folds.labels))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (ddof 1; 0 for a single value)."""
    if not values:
        return None, None
    arr = np.asarray(values, np.float64)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


def aggregate(folds: list[dict[str, Any]], categories: list[str], kind: str = "int8") -> dict:
    """Mean ± std over folds (overall and per class) and the pooled out-of-fold accuracy with
    its Wilson 95% interval (every held-out image once)."""
    mean, std = _mean_std([f[kind]["accuracy"] for f in folds])
    conf = np.zeros((len(categories), len(categories)), np.int64)
    for f in folds:
        conf += np.asarray(f[kind]["confusion"], np.int64)
    correct, n = int(np.trace(conf)), int(conf.sum())
    low, high = wilson(correct, n)
    per_class: dict[str, dict[str, Any]] = {}
    for i, c in enumerate(categories):
        vals = [f[kind]["per_class"][c] for f in folds if f[kind]["per_class"][c] is not None]
        m, s = _mean_std(vals)
        row = int(conf[i].sum())
        lo, hi = wilson(int(conf[i, i]), row)
        per_class[c] = {
            "mean": m,
            "std": s,
            "folds": len(vals),
            "pooled": conf[i, i] / row if row else None,
            "pooled_ci95": [lo, hi],
            "images": row,
        }
    return {
        "mean": mean,
        "std": std,
        "folds": len(folds),
        "pooled": correct / n if n else None,
        "pooled_ci95": [low, high],
        "images": n,
        "per_class": per_class,
        "confusion": conf.tolist(),
    }


def run_crossval(
    config: TrainConfig,
    ds: Dataset,
    out_dir: str | Path,
    k: int = 5,
    *,
    inner_fraction: float | None = None,
    only: list[int] | None = None,
    verbose: int = 0,
    distill: Distill | None = None,
) -> dict[str, Any]:
    """Run the folds not already saved (``only``: just these), then write and return the
    aggregate over every fold saved for this recipe and data. ``distill``: this run is a
    teacher (keeps its probabilities) or a student (trains towards its teachers')."""
    t0 = time.monotonic()
    out = Path(out_dir)
    distill = distill or Distill()
    inner_fraction = config.validation_split if inner_fraction is None else inner_fraction
    folds = assign_folds(ds, config, k, inner_fraction)
    key = recipe_key(config, folds, inner_fraction)
    wanted = sorted(set(range(k) if only is None else only))
    if any(f not in range(k) for f in wanted):
        raise CrossValError(f"folds {wanted}: each must be in 0..{k - 1}")
    if (distill.teachers or distill.save_soft) and config.pipeline != "cached":
        raise CrossValError("distillation is measured on the cached pipeline only")
    if distill.teachers:  # a student's folds also depend on what taught them
        teachers = teacher_identity(distill.teachers, wanted, distill.alpha, distill.temperature, k)
        key = hashlib.sha256(f"{key}:{teachers}".encode()).hexdigest()[:16]
    results = {f: r for f in range(k) if (r := _load_fold(out, f, key)) is not None}
    if distill.save_soft:  # a teacher fold saved without its probabilities runs again
        results = {f: r for f, r in results.items() if soft_file(out, f).is_file()}
    todo = [f for f in wanted if f not in results]
    features_seconds = 0.0
    if todo:
        logger.info("cross-validation %s: folds %s to run, %s saved", key, todo, sorted(results))
        features_seconds = _run_folds(config, ds, folds, key, todo, out, results, verbose, distill)
    done = [results[f] for f in sorted(results)]
    result = {
        "schema_version": 1,
        "key": key,
        "k": k,
        "complete": len(done) == k,
        "categories": ds.categories,
        "config": config.model_dump(exclude={"channel"}),
        "inner_fraction": inner_fraction,
        "input": model_input(config).model_dump(),
        "distill": (
            {
                "teachers": [str(t) for t in distill.teachers],
                "alpha": distill.alpha,
                "temperature": distill.temperature,
            }
            if distill.teachers
            else None
        ),
        "images": {"cross_validated": len(folds.labels), "test_untouched": len(folds.test)},
        "fold_sizes": [
            {
                "held_out": len(folds.held_out(f)),
                "training": len(folds.training(f)),
                "inner_val": len(folds.inner(f)),
            }
            for f in range(k)
        ],
        "held_out_per_class": folds.per_class(ds.categories),
        "int8": aggregate(done, ds.categories, "int8"),
        "float": aggregate(done, ds.categories, "float"),
        # with refit: the same folds' models before the refit (stopping chosen on inner val)
        "selected": (
            {k_: aggregate([r["selected"] for r in done], ds.categories, k_) for k_ in KINDS}
            if done and all("selected" in r for r in done)
            else None
        ),
        # with qat_epochs: the same models before their quantisation-aware epochs
        "before_qat": (
            {k_: aggregate([r["before_qat"] for r in done], ds.categories, k_) for k_ in KINDS}
            if done and all("before_qat" in r for r in done)
            else None
        ),
        "cost": {
            "this_run_minutes": round((time.monotonic() - t0) / 60, 2),
            "features_seconds_this_run": round(features_seconds, 1),
            "fold_minutes_total": round(sum(r["seconds"]["total"] for r in done) / 60, 2),
        },
        "folds": [{k_: v for k_, v in r.items() if k_ != "predictions"} for r in done],
        "predictions": [p for r in done for p in r["predictions"]],
    }
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / RESULT_FILE, json.dumps(result, indent=1) + "\n")
    return result


def _fold_file(out: Path, f: int) -> Path:
    return out / FOLDS_DIR / f"fold-{f}.json"


def _load_fold(out: Path, f: int, key: str) -> dict[str, Any] | None:
    path = _fold_file(out, f)
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        logger.warning("%s: unreadable, fold %d runs again: %s", path, f, exc)
        return None
    return data if data.get("key") == key else None


def _run_folds(
    config: TrainConfig,
    ds: Dataset,
    folds: Folds,
    key: str,
    todo: list[int],
    out: Path,
    results: dict[int, dict[str, Any]],
    verbose: int,
    distill: Distill,
) -> float:
    """Pixels and base activations once, then each fold's training, conversion and scoring."""
    from .cv_fold import fit_fold, prepare

    prep = prepare(config, ds, sorted(folds.labels), keep_soft=distill.save_soft)
    logger.info("base activations for %d images: %.0f s", len(prep.shas), prep.seconds)
    y = prep.inputs.y
    for f in todo:
        trained = folds.training(f) + folds.inner(f)  # all a fold's models may learn from
        inputs = prep.inputs
        if distill.teachers:
            targets = student_targets(
                distill.teachers,
                f,
                prep.shas,
                y,
                ds.categories,
                trained,
                distill.alpha,
                distill.temperature,
                folds.fold,
            )
            inputs = replace(inputs, targets=targets)
        ix = prep.indices(train=folds.training(f), val=folds.inner(f), held=folds.held_out(f))
        result = fit_fold(config, prep, inputs, ix, config.seed + f, verbose)
        result.update(fold=f, key=key)
        soft = result.pop("soft", None)
        if soft is not None:  # before the fold file: a fold file means the fold is complete
            if not config.refit:  # then the selected model, trained without the inner slice
                trained = folds.training(f)
            save_soft(soft_file(out, f), key, prep.shas, trained, ds.categories, soft)
        # the scored model's int8 probabilities too: ensembles of runs and per-class
        # thresholds can then be measured on saved folds, without training again
        result["predictions"] = [
            {"sha256": prep.shas[i], "fold": f, "label": ds.categories[y[i]], "int8": p, "probs": q}
            for i, p, q in zip(
                ix["held"], result.pop("int8_predicted"), result.pop("int8_probs"), strict=True
            )
        ]
        for model, column in (("selected", "int8_selected"), ("before_qat", "int8_before_qat")):
            result.get(model, {}).pop("int8_probs", None)
            other = result.get(model, {}).pop("int8_predicted", None)
            if other is not None:
                for p, c in zip(result["predictions"], other, strict=True):
                    p[column] = c
        atomic_write_text(_fold_file(out, f), json.dumps(result, indent=1) + "\n")
        results[f] = result
        logger.info(
            "fold %d: int8 %.1f%%, float %.1f%% on %d held-out images (%.0f s)",
            f,
            100 * result["int8"]["accuracy"],
            100 * result["float"]["accuracy"],
            len(ix["held"]),
            result["seconds"]["total"],
        )
    return prep.seconds
