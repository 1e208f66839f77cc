"""``recyclops setup``: resolve the reviewed labels and mirror the verified images locally.

Resumable and safe to interrupt: every file lands atomically under its content hash, so a
file that is present and hashes right is skipped, and a half download never exists. The
folder is marked as a data set (an incomplete one) before its first write, so a sync killed
at any point is resumed, not refused, by the next run.

Two kinds of failure: a bad image (missing, corrupt, undecodable) is a per-image problem and
the sync is still complete; a transport failure (the store unreachable, an error reading a
journal) makes the sync incomplete: ``dataset.json`` says so, ``train`` refuses it unless told
otherwise, and the command exits non-zero.
"""

import logging
import os
import re
import shutil
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ..shared import layout
from ..shared.atomic import atomic_write_bytes
from ..shared.errors import ImageError, ObjectNotFoundError, RecyclopsError, StoreError
from ..shared.hashing import sha256_bytes, sha256_file
from ..shared.journals import read_journals, resolve_labels
from ..shared.manifest import ModelManifest, parse_manifest, parse_pointer
from ..shared.preprocess import decode_rgb
from ..shared.primitives import is_sha256
from ..shared.store import ObjectStore
from .dataset import Dataset

logger = logging.getLogger(__name__)


class SetupError(RecyclopsError):
    """The sync cannot start (an unsafe output folder) or cannot write locally."""


#: After this many transport failures in a row the store is taken to be down: the rest of the
#: downloads are not attempted (each would wait through its retries) and the sync is incomplete.
ABORT_AFTER = 16
_TEMP = re.compile(r"^\.[0-9a-f]{64}\.jpg\..*\.tmp$")


@dataclass
class SyncSummary:
    """What a sync did; every problem is listed here instead of raised."""

    out_dir: Path
    per_class: dict[str, int] = field(default_factory=dict)
    downloaded: int = 0
    skipped: int = 0
    moved: int = 0
    removed: int = 0
    bytes: int = 0
    excluded_invalid: int = 0
    unlabelled: int = 0
    conflicts: int = 0
    problems: list[str] = field(default_factory=list)
    #: store errors (not bad images): any of them makes the sync incomplete
    transport_failures: list[str] = field(default_factory=list)
    not_attempted: int = 0
    fingerprint: str = ""

    @property
    def images(self) -> int:
        return sum(self.per_class.values())

    @property
    def complete(self) -> bool:
        return not self.transport_failures and not self.not_attempted

    @property
    def incomplete_reason(self) -> str:
        if self.complete:
            return ""
        first = self.transport_failures[0] if self.transport_failures else "none"
        return (
            f"{len(self.transport_failures)} store reads failed and {self.not_attempted} "
            f"downloads were not attempted (first failure: {first})"
        )

    def lines(self) -> list[str]:
        out = [
            f"data set: {self.out_dir} ({self.images} images, fingerprint {self.fingerprint[:12]})"
        ]
        for name, count in self.per_class.items():
            note = "  <- no verified images yet" if count == 0 else ""
            out.append(f"  {name:<16} {count:6d}{note}")
        out.append(
            f"downloaded {self.downloaded} ({self.bytes / 1e6:.1f} MB), "
            f"already present {self.skipped}, "
            f"moved {self.moved}, removed {self.removed}, invalid {self.excluded_invalid}, "
            f"withdrawn/unlabelled {self.unlabelled}, with conflicting reviews {self.conflicts}"
        )
        if not self.complete:
            out.append(f"INCOMPLETE: {self.incomplete_reason}")
            out += [f"  - {p}" for p in self.transport_failures[:10]]
        if self.problems:
            out.append(f"{len(self.problems)} problems:")
            out += [f"  - {p}" for p in self.problems[:50]]
            if len(self.problems) > 50:
                out.append(f"  … and {len(self.problems) - 50} more (see dataset.json)")
        return out


def _fetch(store: ObjectStore, sha: str, dest: Path) -> tuple[str, str, int]:
    """Download, check hash and decode: ('ok', '', bytes), ('problem', why, 0) for a bad image
    or ('transport', why, 0) for a store failure. Only a local write failure raises."""
    key = layout.image_key(sha)
    try:
        data = store.get(key)
    except ObjectNotFoundError:
        return "problem", f"{key}: reviewed but missing from the store", 0
    except StoreError as exc:
        return "transport", f"{key}: download failed: {exc}", 0
    if sha256_bytes(data) != sha:
        return "problem", f"{key}: content does not match its hash (corrupt upload?)", 0
    try:
        decode_rgb(data, key)
    except ImageError as exc:
        return "problem", str(exc), 0
    try:
        atomic_write_bytes(dest, data)
    except OSError as exc:
        raise SetupError(f"cannot write {dest}: {exc}") from exc
    return "ok", "", len(data)


def _present(path: Path, sha: str) -> bool:
    return path.is_file() and sha256_file(path) == sha


def _existing_files(out_dir: Path) -> dict[str, Path]:
    """Files this sync may own: ``<category-like folder>/<sha256>.jpg``. Anything else in the
    folder (a user's own photos) is never moved or deleted."""
    found: dict[str, Path] = {}
    if out_dir.is_dir():
        for path in out_dir.glob("*/*.jpg"):
            if is_sha256(path.stem):
                found.setdefault(path.stem, path)
    return found


def _check_out_dir(out: Path) -> None:
    """Refuse a folder that is not empty and was never a data set: a typo in --out must not
    turn someone's pictures folder into a mirror."""
    if not out.is_dir() or (out / "dataset.json").exists():
        return
    if any(p for p in out.iterdir() if not p.name.startswith(".")):
        raise SetupError(
            f"{out} is not empty and holds no dataset.json: choose an empty folder or an "
            "earlier 'recyclops setup' output"
        )


def _mark_started(out: Path, cats: list[str]) -> None:
    """Before the first write: the folder is a data set, an incomplete one, until the sync ends.
    A kill at any later point leaves a folder the next run resumes (and train refuses)."""
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    reason = f"a sync started at {started} has not finished (interrupted?)"
    Dataset(out, cats, {}, complete=False, incomplete_reason=reason).save()
    for leftover in out.glob("*/.*.tmp"):  # temporary files of a killed run's writes
        if _TEMP.match(leftover.name):
            leftover.unlink(missing_ok=True)


def sync_dataset(
    store: ObjectStore,
    out_dir: str | Path,
    categories: Iterable[str],
    *,
    workers: int = 8,
    progress: bool = True,
) -> SyncSummary:
    """Mirror every image whose current label is a category into ``out_dir/<category>/``.

    Files whose label changed are moved, files no longer in the data set are removed (they
    are copies; the store keeps the originals). Writes ``dataset.json`` first (incomplete)
    and last (complete, or incomplete with the reason). StoreNotFoundError for a missing
    bucket, before the folder is touched.
    """
    out = Path(out_dir)
    store.check_ready()
    _check_out_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    cats = list(categories)
    _mark_started(out, cats)
    summary = SyncSummary(out, per_class=dict.fromkeys(cats, 0))
    journals = read_journals(store, workers=workers)
    summary.problems += journals.problems
    summary.transport_failures += journals.failures
    resolved = resolve_labels(journals.decisions)
    wanted: dict[str, str] = {}
    for sha, res in sorted(resolved.items()):
        summary.conflicts += res.conflict
        if res.label is None:
            summary.unlabelled += 1
        elif not res.usable:
            summary.excluded_invalid += 1
        elif res.label not in cats:
            summary.problems.append(
                f"image {sha[:12]}: label {res.label!r} is not a configured category"
            )
        else:
            wanted[sha] = res.label
    existing = _existing_files(out)
    todo: dict[str, Path] = {}
    for sha, label in wanted.items():
        dest = out / label / f"{sha}.jpg"
        have = existing.get(sha)
        if have is not None and have != dest and _present(have, sha):
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(have, dest)
            summary.moved += 1
            summary.skipped += 1
        elif _present(dest, sha):
            summary.skipped += 1
        else:
            todo[sha] = dest
    ok: set[str] = set(wanted) - set(todo)
    if todo:
        ok |= _download_all(store, todo, summary, workers, progress)
    for sha, path in existing.items():
        # with a journal unread, "no longer wanted" is not known: keep the copies
        if sha not in wanted and path.exists() and summary.complete:
            path.unlink()
            summary.removed += 1
    labels = {sha: wanted[sha] for sha in ok}
    for label in labels.values():
        summary.per_class[label] += 1
    ds = Dataset(
        out,
        cats,
        labels,
        summary.problems + summary.transport_failures,
        complete=summary.complete,
        incomplete_reason=summary.incomplete_reason,
    )
    ds.save()
    if not summary.complete:
        logger.error("sync incomplete: %s", summary.incomplete_reason)
    summary.fingerprint = ds.fingerprint
    return summary


def _download_all(
    store: ObjectStore, todo: dict[str, Path], summary: SyncSummary, workers: int, progress: bool
) -> set[str]:
    """Download in parallel. ABORT_AFTER transport failures in a row stop the rest."""
    from tqdm import tqdm

    done: set[str] = set()
    in_a_row = 0
    bar = tqdm(total=len(todo), unit="img", desc="setup", disable=not progress, leave=False)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures: dict[Future[tuple[str, str, int]], str] = {
            pool.submit(_fetch, store, sha, dest): sha for sha, dest in todo.items()
        }
        try:
            for future in as_completed(futures):
                if future.cancelled():
                    continue
                sha = futures[future]
                kind, why, size = future.result()
                if kind == "ok":
                    done.add(sha)
                    summary.downloaded += 1
                    summary.bytes += size
                    in_a_row = 0
                elif kind == "transport":
                    summary.transport_failures.append(why)
                    in_a_row += 1
                    if in_a_row == ABORT_AFTER:
                        stopped = sum(f.cancel() for f in futures)
                        summary.not_attempted += stopped
                        logger.error(
                            "%d downloads failed in a row, the store looks unreachable: %d "
                            "more not attempted",
                            in_a_row,
                            stopped,
                        )
                else:
                    summary.problems.append(why)
                    in_a_row = 0
                bar.update(1)
        except BaseException:
            for future in futures:
                future.cancel()
            raise
        finally:
            bar.close()
    return done


def download_model(
    store: ObjectStore, channel: str, out_dir: str | Path
) -> tuple[ModelManifest, Path]:
    """Fetch the channel's current model into ``out_dir/<version>/`` and verify every file."""
    pointer = parse_pointer(store.get(layout.channel_key(channel)), layout.channel_key(channel))
    raw = store.get(pointer.manifest_key)
    if sha256_bytes(raw) != pointer.manifest_sha256:
        raise StoreError(f"{pointer.manifest_key}: does not match the channel pointer's sha256")
    manifest = parse_manifest(raw, pointer.manifest_key)
    folder = Path(out_dir) / manifest.version
    tmp = folder.with_name(f".{manifest.version}.partial")
    tmp.mkdir(parents=True, exist_ok=True)
    for entry in manifest.files:
        dest = tmp / entry.name
        if not _present(dest, entry.sha256):
            store.get_file(layout.model_file_key(manifest.version, entry.name), dest)
    atomic_write_bytes(tmp / layout.MANIFEST_FILE, raw)
    manifest.verify_folder(tmp)
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)
    return manifest, folder
