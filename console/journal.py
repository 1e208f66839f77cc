"""One session's journal: its decisions in order, and saving them to ``labels/<id>.jsonl``.

Only this session ever writes the object. Each flush rewrites it with the whole journal
(an S3 put is atomic: readers see the old or the new journal, never half of one); the first
write is "only if absent", so a session id already in use is refused, never overwritten.

With a local folder, every decision is also appended and fsynced to
``<folder>/<session>.jsonl`` the moment it is made (a write-ahead log): a crash while the
store is unreachable loses nothing, and the next session started with the same folder
uploads what the store is missing (``recover_journals``).
"""

import contextlib
import logging
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from recyclops.shared import layout
from recyclops.shared.atomic import atomic_write_bytes
from recyclops.shared.errors import StoreError
from recyclops.shared.journals import Decision, dump_journal, parse_journal, utcnow
from recyclops.shared.store import ObjectStore

logger = logging.getLogger(__name__)


class Journal:
    def __init__(
        self, store: ObjectStore, session_id: str, reviewer: str = "", wal_dir: Path | None = None
    ) -> None:
        self.store = store
        self.wal = wal_dir / f"{session_id}.jsonl" if wal_dir else None
        self.session_id = session_id
        self.reviewer = reviewer[:64]
        self.key = layout.labels_key(session_id)
        self._decisions: list[Decision] = []
        self._saved = 0  # how many decisions are known to be in the store
        self._claimed = False
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self.last_flush: datetime | None = None
        self.last_error: str | None = None

    def append(
        self, sha256: str, action: Literal["label", "withdraw"], label: str | None
    ) -> Decision:
        with self._lock:
            decision = Decision(
                sha256=sha256,
                session=self.session_id,
                seq=len(self._decisions),
                time=utcnow(),
                action=action,
                label=label,
                reviewer=self.reviewer,
            )
            if self.wal is not None:
                self._log(decision)
            self._decisions.append(decision)
            return decision

    def _log(self, decision: Decision) -> None:
        assert self.wal is not None
        try:
            self.wal.parent.mkdir(parents=True, exist_ok=True)
            with open(self.wal, "ab") as fh:
                fh.write(dump_journal([decision]))
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:  # a read-only home must not stop the review; the store remains
            logger.warning(
                "local decision log %s unusable (%s); relying on the store", self.wal, exc
            )
            self.wal = None

    def discard_wal(self) -> None:
        """Everything is in the store: the local log has done its job."""
        if self.wal is not None and not self.dirty:
            with contextlib.suppress(FileNotFoundError):
                self.wal.unlink()

    def decisions(self) -> list[Decision]:
        with self._lock:
            return list(self._decisions)

    @property
    def dirty(self) -> bool:
        with self._lock:
            return self._saved < len(self._decisions)

    def flush(self) -> bool:
        """Write the whole journal if anything is unsaved; True if written."""
        with self._flush_lock:
            with self._lock:
                count = len(self._decisions)
                if count == self._saved:
                    return False
                data = dump_journal(self._decisions[:count])
            try:
                self._put(data)
            except StoreError as exc:
                self.last_error = str(exc)
                raise
            with self._lock:
                self._saved = max(self._saved, count)
                self.last_flush = datetime.now(UTC)
                self.last_error = None
            logger.debug("%s: %d decisions saved", self.key, count)
            return True

    def _put(self, data: bytes) -> None:
        if self._claimed:
            self.store.put(self.key, data)
            return
        if not self.store.put(self.key, data, if_absent=True):
            # A retried first put that landed reads back as ours; anything else is not.
            existing = self.store.get(self.key)
            if not existing or not data.startswith(existing):
                raise StoreError(f"{self.key} already belongs to another session")
            self.store.put(self.key, data)
        self._claimed = True

    def rescue(self, folder: Path) -> Path:  # the WAL already holds it; this makes it whole
        """Keep the journal in a local file when the store cannot take it."""
        path = folder / f"{self.session_id}.jsonl"
        atomic_write_bytes(path, dump_journal(self.decisions()))
        logger.error("store unreachable: journal kept in %s; upload it to %s", path, self.key)
        return path

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {
                "journal": self.key,
                "decisions": len(self._decisions),
                "unsaved": len(self._decisions) - self._saved,
                "last_flush": self.last_flush.isoformat() if self.last_flush else None,
                "error": self.last_error,
            }


def recover_journals(store: ObjectStore, folder: Path) -> list[str]:
    """Upload local logs of sessions that ended without saving (a crash, the store down).

    A log goes up when the store has no journal of that session, or only an older prefix of
    it; then the local file is removed. Returns the keys written."""
    written: list[str] = []
    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
        local = path.read_bytes()
        decisions, problems = parse_journal(local.decode("utf-8", "replace"), str(path))
        if not decisions or problems:
            logger.warning("not recovering %s: %s", path, "; ".join(problems) or "empty")
            continue
        key = layout.labels_key(decisions[0].session)
        data = dump_journal(decisions)
        try:
            if not store.put(key, data, if_absent=True):
                existing = store.get(key)
                if len(existing) >= len(data) or not data.startswith(existing):
                    path.unlink()  # the store already has all of it (or a session's own newer)
                    continue
                store.put(key, data)
        except StoreError as exc:
            logger.warning("cannot recover %s yet: %s", path, exc)
            continue
        path.unlink()
        written.append(key)
        logger.warning("recovered %d unsaved decisions from %s into %s", len(decisions), path, key)
    return written
