"""The durable gather spool: every pressed frame is on disk before the press is confirmed.

An entry is ``<seq>-<sha>.jpg`` (the image) plus ``<seq>-<sha>.json`` (what to upload),
each written temporary → fsync → rename, the image first: the ``.json`` is the commit mark.
An undo after upload is an entry too (a ``GatheredUndo`` tombstone; the edge never deletes
from the store). At the bound, new gathers are refused; nothing un-uploaded is ever deleted.
"""

import contextlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..shared.atomic import atomic_write_bytes, fsync_dir
from ..shared.errors import RecyclopsError
from ..shared.records import GatheredRecord, GatheredUndo

logger = logging.getLogger(__name__)


class SpoolFullError(RecyclopsError):
    """The spool is at its bound: the operator must know the press was not kept."""


@dataclass(frozen=True)
class Entry:
    name: str  # "<seq>-<sha>"
    kind: str  # "gather" or "undo"
    record: GatheredRecord | GatheredUndo
    image: Path | None


class Spool:
    def __init__(self, folder: str | Path, max_bytes: int, max_items: int) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.max_items = max_items
        self.lock = threading.Lock()
        self.in_flight: set[str] = set()
        self.changed = threading.Event()
        self._seq = time.time_ns()
        self._recover()

    def _recover(self) -> None:
        """After a crash: an image without its record was never confirmed; temporaries go."""
        records = {p.stem for p in self.folder.glob("*.json")}
        for path in self.folder.iterdir():
            if path.name.startswith(".") and path.name.endswith(".tmp"):
                path.unlink(missing_ok=True)
            elif path.suffix == ".jpg" and path.stem not in records:
                logger.warning("spool: removing %s (its record was never written)", path.name)
                path.unlink(missing_ok=True)

    def _next_name(self, sha: str) -> str:
        self._seq = max(self._seq + 1, time.time_ns())
        return f"{self._seq:020d}-{sha}"

    def usage(self) -> tuple[int, int]:
        """(entries, bytes) waiting for upload."""
        items = 0
        size = 0
        for path in self.folder.iterdir():
            if path.name.startswith("."):
                continue
            with contextlib.suppress(FileNotFoundError):
                size += path.stat().st_size
            items += path.suffix == ".json"
        return items, size

    def depth(self) -> int:
        return self.usage()[0]

    def add_gather(self, jpeg: bytes, record: GatheredRecord) -> str:
        """Write image then record, durably; SpoolFullError at the bound."""
        with self.lock:
            items, size = self.usage()
            if items + 1 > self.max_items or size + len(jpeg) > self.max_bytes:
                raise SpoolFullError(
                    f"spool full ({items} items, {size / 1e6:.1f} MB): gather refused, "
                    "nothing deleted; check the network or the store"
                )
            name = self._next_name(record.sha256)
            atomic_write_bytes(self.folder / f"{name}.jpg", jpeg)
            body = {"kind": "gather", "record": json.loads(record.model_dump_json())}
            atomic_write_bytes(self.folder / f"{name}.json", json.dumps(body).encode())
        self.changed.set()
        return name

    def add_undo(self, undo: GatheredUndo) -> str:
        """Tombstones are tiny and always accepted, even at the bound."""
        with self.lock:
            name = self._next_name(undo.sha256)
            body = {"kind": "undo", "record": json.loads(undo.model_dump_json())}
            atomic_write_bytes(self.folder / f"{name}.json", json.dumps(body).encode())
        self.changed.set()
        return name

    def withdraw(self, name: str) -> bool:
        """Drop a gather not yet uploaded (undo); False if it is uploading or gone."""
        with self.lock:
            if name in self.in_flight:
                return False
            record = self.folder / f"{name}.json"
            if not record.exists():
                return False
            record.unlink()
            (self.folder / f"{name}.jpg").unlink(missing_ok=True)
            fsync_dir(self.folder)
            return True

    def pending(self) -> list[str]:
        return sorted(p.stem for p in self.folder.glob("*.json") if not p.name.startswith("."))

    def claim(self, name: str) -> Entry | None:
        """Mark an entry as uploading (undo then spools a tombstone instead of deleting)."""
        with self.lock:
            path = self.folder / f"{name}.json"
            try:
                body = json.loads(path.read_bytes())
                entry = self._entry(name, body)
                if entry.image is not None and not entry.image.is_file():
                    raise ValueError(f"its frame {entry.image.name} is missing")
            except FileNotFoundError:
                return None
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                # Never blocks the queue, never deleted: kept aside for a human to look at.
                bad = path.with_name(f"{name}.corrupt")
                logger.error(
                    "spool: %s is unreadable (%s); moved aside to %s", path.name, exc, bad.name
                )
                os.replace(path, bad)
                return None
            self.in_flight.add(name)
        return entry

    def _entry(self, name: str, body: dict[str, Any]) -> Entry:
        if body.get("kind") == "undo":
            return Entry(name, "undo", GatheredUndo.model_validate(body["record"]), None)
        record = GatheredRecord.model_validate(body["record"])
        return Entry(name, "gather", record, self.folder / f"{name}.jpg")

    def release(self, name: str, done: bool) -> None:
        """Upload finished (remove the entry: record first, then image) or failed (keep it)."""
        with self.lock:
            self.in_flight.discard(name)
            if done:
                (self.folder / f"{name}.json").unlink(missing_ok=True)
                (self.folder / f"{name}.jpg").unlink(missing_ok=True)
                fsync_dir(self.folder)
