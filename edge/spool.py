"""The durable gather spool: every pressed frame is on disk before the press is confirmed.

An entry is ``<seq>-<sha>.jpg`` (the image) plus ``<seq>-<sha>.json`` (what to upload),
each written temporary → fsync → rename, the image first: the ``.json`` is the commit mark.
An undo after upload is an entry too (a ``GatheredUndo`` tombstone; the edge never deletes
from the store). At the bound, new gathers are refused; nothing un-uploaded is ever deleted.

Automatic captures (frames the model was unsure of, no key press) are ``auto-<seq>-<sha>``
entries with a share of their own: they never count against the operator's bound, so they
can never make a key press be refused, and they sort after every operator entry, so the
uploader always sends what an operator pressed first.

Quality telemetry records (one per period, no image) are ``telemetry-<seq>-period``
entries with a share of their own too (counted in items only), uploaded after the rest.
"""

import contextlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..shared.atomic import atomic_write_bytes, fsync_dir
from ..shared.errors import RecyclopsError
from ..shared.messages import DeviceQuality
from ..shared.records import GatheredRecord, GatheredUndo

logger = logging.getLogger(__name__)


class SpoolRefusedError(RecyclopsError):
    """A gather (or undo) the spool cannot keep: the operator must be told it was refused."""

    reason = "refused"


class SpoolFullError(SpoolRefusedError):
    """The spool is at its bound: the operator must know the press was not kept."""

    reason = "spool_full"


class SpoolUnwritableError(SpoolRefusedError):
    """The spool folder cannot be written (read-only file system, permissions, disk full).
    A local failure: it is never reported as an upload (store) failure."""

    reason = "spool_unwritable"


@dataclass(frozen=True)
class Entry:
    name: str  # "<seq>-<sha>"
    kind: str  # "gather", "undo" or "telemetry"
    record: GatheredRecord | GatheredUndo | DeviceQuality
    image: Path | None


AUTO_PREFIX = "auto-"
TELEMETRY_PREFIX = "telemetry-"
#: whose entries: the operator's (gathers, undos), automatic captures, telemetry; "gathers"
#: is the first two, "all" every entry
Share = Literal["all", "gathers", "operator", "auto", "telemetry"]


def share_of(name: str) -> Share:
    if name.startswith(AUTO_PREFIX):
        return "auto"
    if name.startswith(TELEMETRY_PREFIX):
        return "telemetry"
    return "operator"


def _in_share(name: str, share: Share) -> bool:
    if share == "all":
        return True
    if share == "gathers":
        return share_of(name) != "telemetry"
    return share_of(name) == share


class Spool:
    def __init__(
        self,
        folder: str | Path,
        max_bytes: int,
        max_items: int,
        auto_max_bytes: int = 0,
        auto_max_items: int = 0,
        telemetry_max_items: int = 0,
    ) -> None:
        self.folder = Path(folder)
        self.max_bytes = max_bytes
        self.max_items = max_items
        self.auto_max_bytes = auto_max_bytes
        self.auto_max_items = auto_max_items
        self.telemetry_max_items = telemetry_max_items
        self.lock = threading.Lock()
        self.in_flight: set[str] = set()
        self.changed = threading.Event()
        self._seq = time.time_ns()
        #: Why the folder cannot be written right now (None: it can). Gathers are refused.
        self.problem: str | None = None
        #: Uploaded but not deletable (read-only folder): never uploaded again by this process.
        self.uploaded_left: set[str] = set()
        #: Entries that cannot be read or moved aside: skipped, so they never block the queue.
        self.held: dict[str, str] = {}
        self.local_failures = 0
        self._told: dict[str, str] = {}
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._recover()
        except OSError as exc:  # the daemon still runs: it drains what it can, refuses gathers
            self._failed(self._unwritable(exc))

    def _recover(self) -> None:
        """After a crash: an image without its record was never confirmed; temporaries go."""
        records = {p.stem for p in self.folder.glob("*.json")}
        for path in self.folder.iterdir():
            if path.name.startswith(".") and path.name.endswith(".tmp"):
                path.unlink(missing_ok=True)
            elif path.suffix == ".jpg" and path.stem not in records:
                logger.warning("spool: removing %s (its record was never written)", path.name)
                path.unlink(missing_ok=True)

    def _failed(self, problem: str) -> None:
        """Record a local failure; logged once per change of state, not per attempt."""
        self.local_failures += 1
        if problem != self.problem:
            logger.error("spool: %s; gathers are refused until it is writable again", problem)
        self.problem = problem

    def _unwritable(self, exc: OSError) -> str:
        return f"spool folder {self.folder} is not writable ({exc.strerror or exc})"

    def probe(self) -> str | None:
        """Write, fsync and remove a small file: is the folder writable right now? Sets (or
        clears, logging the recovery) ``problem``; returns it."""
        path = self.folder / f".probe-{os.getpid()}.tmp"
        try:
            with open(path, "wb") as fh:
                fh.write(b"probe")
                fh.flush()
                os.fsync(fh.fileno())
            path.unlink()
        except OSError as exc:
            with contextlib.suppress(OSError):
                path.unlink()
            self._failed(self._unwritable(exc))
            return self.problem
        if self.problem is not None:
            logger.warning("spool: %s is writable again; gathers are accepted", self.folder)
            self.problem = None
        return None

    def _writable(self) -> None:
        """Refuse at once while the folder is known to be unwritable (probing again first)."""
        if self.problem is not None and self.probe() is not None:
            raise SpoolUnwritableError(f"gather refused: {self.problem}")

    def _write_failed(self, exc: OSError, *leftovers: Path) -> SpoolUnwritableError:
        for path in leftovers:  # a half-written entry (disk full mid-way) is not kept
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
        self._failed(self._unwritable(exc))
        return SpoolUnwritableError(f"gather refused: {self.problem}")

    def _next_name(self, sha: str) -> str:
        self._seq = max(self._seq + 1, time.time_ns())
        return f"{self._seq:020d}-{sha}"

    def usage(self, share: Share = "all") -> tuple[int, int]:
        """(entries, bytes) waiting for upload (uploaded leftovers are not waiting): every
        entry, or only one share's (``operator``, ``auto``, ``telemetry``)."""
        items = 0
        size = 0
        try:
            paths = list(self.folder.iterdir())
        except OSError:
            return 0, 0
        for path in paths:
            if path.name.startswith(".") or not _in_share(path.name, share):
                continue
            with contextlib.suppress(OSError):
                size += path.stat().st_size
            items += path.suffix == ".json" and path.stem not in self.uploaded_left
        return items, size

    def depth(self) -> int:
        return self.usage()[0]

    def add_gather(self, jpeg: bytes, record: GatheredRecord) -> str:
        """Write image then record, durably; SpoolFullError at the bound."""
        with self.lock:
            self._writable()
            items, size = self.usage("operator")  # captures, telemetry never count here
            if items + 1 > self.max_items or size + len(jpeg) > self.max_bytes:
                raise SpoolFullError(
                    f"spool full ({items} items, {size / 1e6:.1f} MB): gather refused, "
                    "nothing deleted; check the network or the store"
                )
            name = self._write_entry(self._next_name(record.sha256), jpeg, record)
        self.changed.set()
        return name

    def add_capture(self, jpeg: bytes, record: GatheredRecord) -> str:
        """An automatic capture, in its own share; SpoolFullError when that share is full
        (the operator's share is never touched)."""
        with self.lock:
            if self.problem is not None:
                raise SpoolUnwritableError(f"capture refused: {self.problem}")
            items, size = self.usage("auto")
            if items + 1 > self.auto_max_items or size + len(jpeg) > self.auto_max_bytes:
                raise SpoolFullError(f"capture share full ({items} items, {size / 1e6:.1f} MB)")
            name = self._write_entry(AUTO_PREFIX + self._next_name(record.sha256), jpeg, record)
        self.changed.set()
        return name

    def _write_entry(self, name: str, jpeg: bytes, record: GatheredRecord) -> str:
        """Image then record (the commit mark), each durably; called with the lock held."""
        image, meta = self.folder / f"{name}.jpg", self.folder / f"{name}.json"
        body = {"kind": "gather", "record": json.loads(record.model_dump_json())}
        try:
            atomic_write_bytes(image, jpeg)
            atomic_write_bytes(meta, json.dumps(body).encode())
        except OSError as exc:
            raise self._write_failed(exc, meta, image) from None
        return name

    def add_telemetry(self, report: DeviceQuality) -> str:
        """One period's quality record, in its own share; SpoolFullError when that is full."""
        with self.lock:
            if self.problem is not None:
                raise SpoolUnwritableError(f"telemetry refused: {self.problem}")
            items = self.usage("telemetry")[0]
            if items + 1 > self.telemetry_max_items:
                raise SpoolFullError(f"telemetry share full ({items} records)")
            name = TELEMETRY_PREFIX + self._next_name("period")
            body = {"kind": "telemetry", "record": json.loads(report.model_dump_json())}
            try:
                atomic_write_bytes(self.folder / f"{name}.json", json.dumps(body).encode())
            except OSError as exc:
                raise self._write_failed(exc) from None
        self.changed.set()
        return name

    def add_undo(self, undo: GatheredUndo) -> str:
        """Tombstones are tiny and always accepted at the bound (not on an unwritable spool)."""
        with self.lock:
            self._writable()
            name = self._next_name(undo.sha256)
            body = {"kind": "undo", "record": json.loads(undo.model_dump_json())}
            try:
                atomic_write_bytes(self.folder / f"{name}.json", json.dumps(body).encode())
            except OSError as exc:
                raise self._write_failed(exc) from None
        self.changed.set()
        return name

    def withdraw(self, name: str) -> bool:
        """Drop a gather not yet uploaded (undo); False if it is uploading or gone."""
        with self.lock:
            if name in self.in_flight or name in self.uploaded_left:
                return False
            record = self.folder / f"{name}.json"
            if not record.exists():
                return False
            try:
                record.unlink()
                (self.folder / f"{name}.jpg").unlink(missing_ok=True)
                fsync_dir(self.folder)
            except OSError as exc:
                raise self._write_failed(exc) from None
            return True

    def pending(self) -> list[str]:
        """Entries to upload, in order (operator entries first: ``auto-`` sorts after the
        digits, ``telemetry-`` after that); never one already uploaded or held aside."""
        try:
            names = [p.stem for p in self.folder.glob("*.json") if not p.name.startswith(".")]
        except OSError:
            return []
        return sorted(n for n in names if n not in self.uploaded_left and n not in self.held)

    def _hold(self, name: str, why: str) -> None:
        """Skip an entry this process cannot handle locally; logged once, never blocking."""
        if self._told.get(name) != why:
            logger.error("spool: %s %s; skipped, the rest of the queue goes on", name, why)
            self._told[name] = why
        self.local_failures += 1
        self.held[name] = why

    def tidy(self) -> None:
        """Retry local work left undone: delete uploaded entries, look at held ones again."""
        for name in sorted(self.uploaded_left):
            try:
                self._remove(name)
            except OSError:
                return  # still unwritable: try again later
            self.uploaded_left.discard(name)
            logger.info("spool: removed %s (uploaded earlier, not deletable then)", name)
        self.held.clear()
        if self.problem is not None:
            self.probe()  # says when the folder is writable again

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
            except OSError as exc:
                self._hold(name, f"cannot be read ({exc.strerror or exc})")
                return None
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                # Never blocks the queue, never deleted: kept aside for a human to look at.
                bad = path.with_name(f"{name}.corrupt")
                try:
                    os.replace(path, bad)
                except OSError as move:
                    self._hold(name, f"is unreadable ({exc}) and cannot be moved aside ({move})")
                    return None
                logger.error(
                    "spool: %s is unreadable (%s); moved aside to %s", path.name, exc, bad.name
                )
                return None
            self.in_flight.add(name)
        return entry

    def read_image(self, entry: Entry) -> bytes | None:
        """The entry's frame; None (the entry held aside, logged once) if it cannot be read."""
        if entry.image is None:
            return None
        try:
            return entry.image.read_bytes()
        except OSError as exc:
            with self.lock:
                self.in_flight.discard(entry.name)
                self._hold(entry.name, f"frame cannot be read ({exc.strerror or exc})")
            raise SpoolUnwritableError(f"spool entry {entry.name}: {exc}") from None

    def _entry(self, name: str, body: dict[str, Any]) -> Entry:
        if body.get("kind") == "undo":
            return Entry(name, "undo", GatheredUndo.model_validate(body["record"]), None)
        if body.get("kind") == "telemetry":
            return Entry(name, "telemetry", DeviceQuality.model_validate(body["record"]), None)
        record = GatheredRecord.model_validate(body["record"])
        return Entry(name, "gather", record, self.folder / f"{name}.jpg")

    def _remove(self, name: str) -> None:
        (self.folder / f"{name}.json").unlink(missing_ok=True)
        (self.folder / f"{name}.jpg").unlink(missing_ok=True)
        fsync_dir(self.folder)

    def release(self, name: str, done: bool) -> None:
        """Upload finished (remove the entry: record first, then image) or failed (keep it).
        An uploaded entry that cannot be removed is remembered, so it is not uploaded again,
        and SpoolUnwritableError says so (a local failure, not an upload failure)."""
        with self.lock:
            self.in_flight.discard(name)
            if not done:
                return
            try:
                self._remove(name)
            except OSError as exc:
                self.uploaded_left.add(name)
                self._failed(self._unwritable(exc))
                raise SpoolUnwritableError(f"uploaded {name} but cannot delete it: {exc}") from None
