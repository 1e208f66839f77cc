"""``recyclops audit``: which labels are probably wrong, and which images are (near) copies.

* Out-of-sample class probabilities for every labelled image: the frozen base runs once per
  image (pooled MobileNetV2 features, cached by image list and recipe), then a K-fold
  logistic-regression head: each image is scored by a head that never saw its label.
* Likely label errors by confident learning (cleanlab's ``find_label_issues`` when installed,
  else the confident-joint rule below), ranked by self-confidence (lowest p of the given label
  first).
* Near-duplicates: cosine similarity of the pooled features plus a 64-bit difference hash of
  the pixels; pairs joined into groups (union-find). A group across the train/test boundary is
  leakage; ``Dataset.split_moves(groups=…)`` keeps it on one side, and the report says how
  many groups that moved.

The report goes to ``audit/<run-id>.json`` and ``audit/latest.json`` (the review page reads
the latter).
"""

import hashlib
import json
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..shared import layout
from ..shared.atomic import atomic_write_bytes
from ..shared.config import TrainConfig
from ..shared.errors import RecyclopsError
from ..shared.store import ObjectStore
from .dataset import Dataset, split_of

logger = logging.getLogger(__name__)

FEATURES_VERSION = 1


class AuditError(RecyclopsError):
    """The data set cannot be audited (too few images per class for the folds)."""


@dataclass
class Features:
    shas: list[str]
    pooled: np.ndarray  # N x C float32, L2-normalised
    dhash: np.ndarray  # N x 64 bool
    problems: list[str]


def dhash_bits(rgb: np.ndarray) -> np.ndarray:
    """The difference hash (as imagehash.dhash): 9x8 grey, is each pixel brighter than its
    left neighbour. Survives re-encoding and small resizes; a different photo rarely matches."""
    grey = Image.fromarray(rgb).convert("L").resize((9, 8), Image.Resampling.LANCZOS)
    px = np.asarray(grey, np.int16)
    return (px[:, 1:] > px[:, :-1]).reshape(-1)


def _feature_key(shas: Sequence[str], config: TrainConfig) -> str:
    spec = f"v{FEATURES_VERSION}:{config.input_hw}:{config.resize}:{config.alpha}:{config.weights}:"
    return hashlib.sha256((spec + ",".join(shas)).encode()).hexdigest()[:16]


def compute_features(
    ds: Dataset, config: TrainConfig, cache_dir: Path | None, batch: int = 32
) -> Features:
    """Pooled base features and dHashes for every image of ``ds``, cached in ``cache_dir``."""
    shas = sorted(ds.labels)
    cache = cache_dir / f"audit-features-{_feature_key(shas, config)}.npz" if cache_dir else None
    if cache is not None and cache.is_file():
        with np.load(cache) as data:
            logger.info("features from %s", cache)
            return Features(
                list(data["shas"]), data["pooled"], data["dhash"], list(data["problems"])
            )
    import keras

    from .model import build_base
    from .pixels import model_input, spec_pixels

    px = spec_pixels(ds, shas, model_input(config), cache=False)
    base = build_base(config)
    pooled_model = keras.Sequential([base, keras.layers.GlobalAveragePooling2D()])
    outs = []
    for start in range(0, len(px.shas), batch):
        x = px.images[start : start + batch].astype(np.float32) / 127.5 - 1.0
        outs.append(np.asarray(pooled_model(x, training=False), np.float32))
    pooled = np.concatenate(outs) if outs else np.zeros((0, 1), np.float32)
    pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    hashes = (
        np.stack([dhash_bits(img) for img in px.images])
        if len(px.shas)
        else np.zeros((0, 64), bool)
    )
    out = Features(px.shas, pooled, hashes, px.problems)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(cache.name + ".tmp.npz")
        np.savez(
            tmp,
            shas=np.array(out.shas),
            pooled=pooled,
            dhash=hashes,
            problems=np.array(out.problems, dtype=str),
        )
        tmp.replace(cache)
    return out


def out_of_sample_probs(x: np.ndarray, y: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Each row's class probabilities from a logistic-regression head trained on the other
    K-1 folds (stratified). Classes absent from a fold's training part get probability 0."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    n_classes = int(y.max()) + 1 if len(y) else 0
    counts = np.bincount(y, minlength=n_classes)
    if len(y) < 2 * k or counts[counts > 0].min() < 2:
        raise AuditError(f"{len(y)} images ({counts.tolist()} per class) cannot make {k} folds")
    folds = StratifiedKFold(
        n_splits=min(k, int(counts[counts > 0].min())), shuffle=True, random_state=seed
    )
    probs = np.zeros((len(y), n_classes), np.float64)
    for train, held in folds.split(x, y):
        head = LogisticRegression(C=1.0, max_iter=2000)
        head.fit(x[train], y[train])
        probs[np.ix_(held, head.classes_)] = head.predict_proba(x[held])
    return probs


def confident_joint_issues(y: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Confident learning without cleanlab: a class's threshold is the mean probability the
    images labelled with it give it; an image is a likely error when another class clears
    its own threshold with more probability than the given label does. Ranked by
    self-confidence (lowest p of the given label first)."""
    n_classes = probs.shape[1]
    thresholds = np.array(
        [probs[y == j, j].mean() if np.any(y == j) else 1.0 for j in range(n_classes)]
    )
    above = probs >= thresholds[None, :]
    issues = []
    for i in range(len(y)):
        others = [j for j in np.flatnonzero(above[i]) if j != y[i]]
        if others and max(probs[i, j] for j in others) > probs[i, y[i]]:
            issues.append(i)
    idx = np.array(issues, np.int64)
    return idx[np.argsort(probs[idx, y[idx]], kind="stable")]


def find_label_issues(y: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, str]:
    """Indices of likely label errors, most likely first, and the method used."""
    try:
        from cleanlab.filter import find_label_issues as cl_find
    except ImportError:
        return confident_joint_issues(y, probs), "confident-joint"
    ranked = cl_find(labels=y, pred_probs=probs, return_indices_ranked_by="self_confidence")
    return np.asarray(ranked, np.int64), "cleanlab"


class _Union:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def join(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def near_duplicate_pairs(
    feats: Features, cosine: float, hamming: int, cosine_alone: float
) -> list[tuple[int, int, float, int]]:
    """(i, j, cosine, hash distance) for pairs similar in both ways (cosine ≥ ``cosine`` and
    dHash distance ≤ ``hamming``), or nearly identical in features (≥ ``cosine_alone``)."""
    sims = feats.pooled @ feats.pooled.T
    bits = feats.dhash.astype(np.int16)
    dist = bits @ (1 - bits).T + (1 - bits) @ bits.T  # Hamming distance, all pairs
    ii, jj = np.nonzero(np.triu(((sims >= cosine) & (dist <= hamming)) | (sims >= cosine_alone), 1))
    return [
        (int(i), int(j), float(sims[i, j]), int(dist[i, j])) for i, j in zip(ii, jj, strict=True)
    ]


def group_pairs(n: int, pairs: Sequence[tuple[int, int, float, int]]) -> list[list[int]]:
    """Connected components of the pairs (each sorted, groups by their first member)."""
    union = _Union(n)
    for i, j, *_ in pairs:
        union.join(i, j)
    groups: dict[int, list[int]] = {}
    for i in {x for p in pairs for x in p[:2]}:
        groups.setdefault(union.find(i), []).append(i)
    return sorted((sorted(g) for g in groups.values()), key=lambda g: g[0])


def split_effect(ds: Dataset, groups: list[list[str]], val: float, test: float) -> dict[str, Any]:
    """How keeping each group on one side changes the split: groups that straddled the
    train/test boundary, groups moved, and the images moved (sha -> split)."""
    _, plain_moves = ds.split_moves(val, test)
    split, moves = ds.split_moves(val, test, groups=groups)
    side = {sha: name for name, shas in split.items() for sha in shas}
    hash_side = {sha: split_of(sha, val, test) for sha in ds.labels}
    straddling = sum(
        1
        for g in groups
        if "test" in {hash_side[s] for s in g} and len({hash_side[s] for s in g}) > 1
    )
    moved = {s: t for s, t in moves.items() if plain_moves.get(s) != t}
    moved_groups = sum(1 for g in groups if any(s in moved for s in g))
    assert all(len({side[s] for s in g}) == 1 for g in groups)
    return {
        "groups": len(groups),
        "straddled_test_boundary": straddling,
        "groups_moved": moved_groups,
        "images_moved": dict(sorted(moved.items())),
    }


def new_run_id(now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"audit-{stamp}-{secrets.token_hex(3)}"


def write_report(store: ObjectStore, report: dict[str, Any]) -> str:
    """``audit/<run-id>.json``, then ``audit/latest.json`` (each put is atomic)."""
    body = json.dumps(report, indent=1).encode()
    key = layout.audit_key(report["run_id"])
    store.put(key, body)
    store.put(layout.AUDIT_LATEST, body)
    return key


def save_local(path: Path, report: dict[str, Any]) -> None:
    atomic_write_bytes(path, json.dumps(report, indent=1).encode())


@dataclass(frozen=True)
class AuditOptions:
    k: int = 5
    seed: int = 0
    cosine: float = 0.95  # with a dHash distance ≤ hamming
    hamming: int = 10
    cosine_alone: float = 0.985  # near-identical features whatever the hash


def identical_files(root: Path, categories: Sequence[str]) -> list[dict[str, Any]]:
    """Byte-identical files in a ``<category>/`` tree (one sha, several files): a data set
    built from it keeps one, so the audit lists them here."""
    from ..shared.hashing import sha256_file

    files: dict[str, list[tuple[str, str]]] = {}
    for cat in categories:
        for file in sorted((root / cat).rglob("*")):
            if file.is_file() and file.suffix.lower() in (".jpg", ".jpeg", ".png"):
                files.setdefault(sha256_file(file), []).append((cat, str(file.relative_to(root))))
    return [
        {"sha256": sha, "files": [{"label": c, "file": f} for c, f in found]}
        for sha, found in sorted(files.items())
        if len(found) > 1
    ]


def run_audit(
    ds: Dataset,
    config: TrainConfig,
    cache_dir: Path | None,
    options: AuditOptions = AuditOptions(),
    identical: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Out-of-sample probabilities, likely label errors, near-duplicate groups and their
    effect on the split, as one JSON-ready report."""
    feats = compute_features(ds, config, cache_dir)
    cats = ds.categories
    y = np.array([cats.index(ds.labels[s]) for s in feats.shas], np.int64)
    probs = out_of_sample_probs(feats.pooled, y, options.k, options.seed)
    ranked, method = find_label_issues(y, probs)
    issues = []
    for rank, i in enumerate(ranked, 1):
        order = np.argsort(probs[i])[::-1]
        suggested = int(order[0] if order[0] != y[i] else order[1])
        issues.append(
            {
                "sha256": feats.shas[i],
                "label": cats[y[i]],
                "suggested": cats[suggested],
                "p_suggested": round(float(probs[i, suggested]), 4),
                "p_label": round(float(probs[i, y[i]]), 4),
                "rank": rank,
            }
        )
    pairs = near_duplicate_pairs(feats, options.cosine, options.hamming, options.cosine_alone)
    index_groups = group_pairs(len(feats.shas), pairs)
    sha_groups = [[feats.shas[i] for i in g] for g in index_groups]
    groups: list[dict[str, Any]] = []
    for n, members in enumerate(index_groups):
        labels = sorted({cats[y[i]] for i in members})
        inside = [p for p in pairs if p[0] in members]
        groups.append(
            {
                "id": f"near-{n}",
                "kind": "near",
                "members": [{"sha256": feats.shas[i], "label": cats[y[i]]} for i in members],
                "labels": labels,
                "cross_class": len(labels) > 1,
                "min_cosine": round(min(p[2] for p in inside), 4),
                "max_hash_distance": max(p[3] for p in inside),
            }
        )
    for n, same in enumerate(identical or []):
        labels = sorted({f["label"] for f in same["files"]})
        groups.append(
            {
                "id": f"identical-{n}",
                "kind": "identical",
                "members": [{"sha256": same["sha256"], **f} for f in same["files"]],
                "labels": labels,
                "cross_class": len(labels) > 1,
            }
        )
    split = split_effect(ds, sha_groups, config.validation_split, config.test_split)
    logger.info(
        "audit: %d images, %d likely label errors (%s), %d near-duplicate groups, %d moved",
        len(feats.shas),
        len(issues),
        method,
        len(index_groups),
        split["groups_moved"],
    )
    return {
        "schema_version": 1,
        "run_id": new_run_id(),
        "created": datetime.now(UTC).isoformat(),
        "categories": cats,
        "dataset": {"fingerprint": ds.fingerprint, "images": len(ds.labels)},
        "method": {
            "features": f"MobileNetV2 {config.image_size}px {config.weights}, pooled",
            "head": f"logistic regression, {options.k}-fold out-of-sample",
            "label_issues": method,
            "near_duplicates": {
                "cosine": options.cosine,
                "hash_distance": options.hamming,
                "cosine_alone": options.cosine_alone,
                "hash": "dHash 64 bits",
            },
        },
        "problems": feats.problems,
        "label_issues": issues,
        "near_duplicates": {
            "groups": groups,
            "count": len(groups),
            "cross_class": sum(g["cross_class"] for g in groups),
        },
        "split": split,
        "probabilities": {
            sha: {"label": cats[y[i]], "probs": [round(float(p), 4) for p in probs[i]]}
            for i, sha in enumerate(feats.shas)
        },
    }


def load_groups(store: ObjectStore) -> tuple[str | None, list[list[str]]]:
    """The near-duplicate groups of the newest audit (its run id and the groups' hashes), for
    the split to keep each group on one side; (None, []) when no audit was run."""
    from ..shared.errors import ObjectNotFoundError

    try:
        report = json.loads(store.get(layout.AUDIT_LATEST))
    except ObjectNotFoundError:
        return None, []
    except ValueError as exc:
        logger.warning(
            "%s is unreadable (%s); splitting without its groups", layout.AUDIT_LATEST, exc
        )
        return None, []
    groups = [
        [m["sha256"] for m in g.get("members", []) if isinstance(m, dict) and "sha256" in m]
        for g in report.get("near_duplicates", {}).get("groups", [])
        if g.get("kind") == "near"
    ]
    return str(report.get("run_id")), [g for g in groups if len(g) > 1]
