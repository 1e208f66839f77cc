"""The local data set folder: ``<category>/<sha256>.jpg`` plus ``dataset.json``, and its split.

The split is a pure function of the image hash: an image never changes split as the data
grows, and byte-identical images (same hash) can never sit on both sides.
"""

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..shared.atomic import atomic_write_text
from ..shared.errors import RecyclopsError

logger = logging.getLogger(__name__)

DATASET_FILE = "dataset.json"
SPLIT_SALT = "recyclops-split-v1"
SPLITS = ("train", "val", "test")


class DatasetError(RecyclopsError):
    """The data set folder is missing, empty or inconsistent."""


class IncompleteDatasetError(DatasetError):
    """The last sync did not fetch everything (store unreachable, interrupted): training on
    it would silently learn from a fraction of the data."""


def _unit(sha256: str) -> float:
    """The image's fixed place in [0, 1): its split follows from it alone."""
    digest = hashlib.sha256(f"{SPLIT_SALT}:{sha256}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_of(sha256: str, val_fraction: float, test_fraction: float) -> str:
    """'train', 'val' or 'test' for an image, from its hash alone.

    Applied within each class, so every class gets the same expected proportions
    (stratified in expectation) while no image ever moves when others are added.
    """
    u = _unit(sha256)
    if u < test_fraction:
        return "test"
    if u < test_fraction + val_fraction:
        return "val"
    return "train"


def fingerprint(entries: dict[str, str]) -> str:
    """The data set's identity: sha256 over sorted ``sha label`` lines."""
    lines = "".join(f"{sha} {label}\n" for sha, label in sorted(entries.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


@dataclass
class Dataset:
    """What ``recyclops setup`` wrote: images by hash with their category."""

    root: Path
    categories: list[str]
    labels: dict[str, str]  # sha256 -> category
    problems: list[str] = field(default_factory=list)
    #: where decoded-pixel caches go (default ``root/.cache``; TrashNet's folder is read-only)
    cache_dir: Path | None = None
    #: False when the sync that wrote this did not get every image it should have
    complete: bool = True
    #: why it is incomplete (empty when complete)
    incomplete_reason: str = ""

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.labels)

    def path(self, sha: str) -> Path:
        return self.root / self.labels[sha] / f"{sha}.jpg"

    def per_class(self) -> dict[str, int]:
        counts = dict.fromkeys(self.categories, 0)
        for label in self.labels.values():
            counts[label] += 1
        return counts

    def split(self, val_fraction: float, test_fraction: float) -> dict[str, list[str]]:
        """Hashes per split, sorted (so every consumer sees the same order)."""
        return self.split_moves(val_fraction, test_fraction)[0]

    def split_moves(
        self,
        val_fraction: float,
        test_fraction: float,
        groups: Sequence[Sequence[str]] | None = None,
    ) -> tuple[dict[str, list[str]], dict[str, str]]:
        """The split and the images it moved off their hash split (sha -> split): with both,
        a later run can tell exactly which images this one trained on.

        ``groups`` (near-duplicates, say) are kept on one side: every member goes where the
        group's first member by hash goes, and each member moved is in ``moves`` (a copy of
        an image on both sides of the test boundary would flatter the test score)."""
        moves: dict[str, str] = {}
        out: dict[str, list[str]] = {s: [] for s in SPLITS}
        place = {sha: split_of(sha, val_fraction, test_fraction) for sha in self.labels}
        grouped: set[str] = set()
        for group in groups or ():
            members = sorted(m for m in set(group) if m in place)
            if len(members) < 2:
                continue
            side = place[members[0]]
            for member in members[1:]:
                if place[member] != side:
                    place[member] = side
                    moves[member] = side
            grouped.update(members)
        for sha in sorted(self.labels):
            out[place[sha]].append(sha)
        # A small class can draw no train, test or validation image by chance, and a class
        # with no test image goes unjudged by the gate. Every class with three or more images
        # gets one in each split, lent (the same image every time) by its fullest split.
        for category in self.categories:
            for need in ("train", "test", "val"):
                mine = {k: [s for s in v if self.labels[s] == category] for k, v in out.items()}
                donor = max(SPLITS, key=lambda k: (len(mine[k]), k))
                if mine[need] or len(mine[donor]) < 2:
                    continue
                free = [s for s in mine[donor] if s not in grouped]  # groups stay whole
                moved = min(free or mine[donor], key=_unit)
                out[donor].remove(moved)
                out[need] = sorted([*out[need], moved])
                moves[moved] = need
        return out, moves

    def subset(self, shas: list[str]) -> "Dataset":
        """The same data set restricted to ``shas`` (benchmarks, quick runs)."""
        import copy

        sub = copy.copy(self)
        sub.labels = {s: self.labels[s] for s in shas}
        return sub

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": 1,
            "categories": self.categories,
            "fingerprint": self.fingerprint,
            "images": len(self.labels),
            "per_class": self.per_class(),
            "labels": dict(sorted(self.labels.items())),
            "problems": self.problems,
            "complete": self.complete,
            "incomplete_reason": self.incomplete_reason,
        }

    def save(self) -> None:
        atomic_write_text(self.root / DATASET_FILE, json.dumps(self.to_json(), indent=1) + "\n")


def load_dataset(root: str | Path, *, allow_incomplete: bool = False) -> Dataset:
    """Read ``dataset.json``; a missing file or an image that is not on disk is an error, and
    so is an incomplete sync (IncompleteDatasetError) unless ``allow_incomplete``."""
    root = Path(root)
    path = root / DATASET_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"{path}: no data set here; run 'recyclops setup' first") from None
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: unreadable: {exc}") from None
    try:
        ds = Dataset(
            root,
            list(data["categories"]),
            dict(data["labels"]),
            list(data.get("problems", [])),
            # files written before completeness was recorded count as complete
            complete=bool(data.get("complete", True)),
            incomplete_reason=str(data.get("incomplete_reason") or ""),
        )
    except (KeyError, TypeError) as exc:
        raise DatasetError(f"{path}: malformed ({exc})") from None
    if not ds.complete:
        if not allow_incomplete:
            raise IncompleteDatasetError(
                f"{root}: the last sync is incomplete ({ds.incomplete_reason or 'no reason'}); "
                "re-run 'recyclops setup', or allow an incomplete data set explicitly"
            )
        logger.warning("%s: using an incomplete data set: %s", root, ds.incomplete_reason)
    unknown = sorted({v for v in ds.labels.values() if v not in ds.categories})
    if unknown:
        raise DatasetError(f"{path}: labels not among the categories: {', '.join(unknown)}")
    missing = [sha for sha in ds.labels if not ds.path(sha).is_file()]
    if missing:
        raise DatasetError(
            f"{root}: {len(missing)} images listed in {DATASET_FILE} are missing "
            f"(first: {ds.path(missing[0])}); re-run 'recyclops setup'"
        )
    return ds


def dataset_from_folders(
    root: str | Path, categories: list[str] | None = None, cache_dir: Path | None = None
) -> Dataset:
    """A data set from a plain ``<category>/*.jpg`` tree (TrashNet, benchmarks): images are
    addressed by their content hash, duplicates collapse to one."""
    from ..shared.hashing import sha256_file

    root = Path(root)
    if categories is None:
        categories = sorted(
            p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
        )
    labels: dict[str, str] = {}
    paths: dict[str, Path] = {}
    for cat in categories:
        for file in sorted((root / cat).glob("*")):
            if file.suffix.lower() in (".jpg", ".jpeg", ".png"):
                sha = sha256_file(file)
                labels[sha] = cat
                paths[sha] = file
    ds = _PathDataset(root, categories, labels, cache_dir=cache_dir)
    ds.paths = paths
    return ds


class _PathDataset(Dataset):
    paths: dict[str, Path]

    def path(self, sha: str) -> Path:
        return self.paths[sha]
