"""One session's journal: its decisions in order, and saving them to ``labels/<id>.jsonl``.

Only this session ever writes the object. Each flush rewrites it with the whole journal
(an S3 put is atomic: readers see the old or the new journal, never half of one); the first
write is "only if absent", so a session id already in use is refused, never overwritten.
"""

import logging
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from recyclops.shared import layout
from recyclops.shared.atomic import atomic_write_bytes
from recyclops.shared.errors import StoreError
from recyclops.shared.records import Decision, dump_journal, utcnow
from recyclops.shared.store import ObjectStore

logger = logging.getLogger(__name__)


class Journal:
    def __init__(self, store: ObjectStore, session_id: str, reviewer: str = "") -> None:
        self.store = store
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
            self._decisions.append(decision)
            return decision

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

    def rescue(self, folder: Path) -> Path:
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
