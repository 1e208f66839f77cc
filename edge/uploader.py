"""Drain the spool to the store, in order, with retries and backoff; never drop anything.

Puts are "only if absent" at content-addressed keys, so an upload repeated after a crash or
a lost reply lands on the same key and is never duplicated.
"""

import logging
import random
import threading
from collections.abc import Callable

from ..shared.gathered import store_gathered, store_undo
from ..shared.records import GatheredRecord
from ..shared.store import ObjectStore
from .spool import Entry, Spool

logger = logging.getLogger(__name__)


class Uploader:
    def __init__(
        self,
        spool: Spool,
        store: ObjectStore,
        stop: threading.Event,
        *,
        retry_min: float = 0.5,
        retry_max: float = 60.0,
        on_uploaded: Callable[[Entry], None] | None = None,
    ) -> None:
        self.spool = spool
        self.store = store
        self.stop = stop
        self.retry_min = retry_min
        self.retry_max = retry_max
        self.on_uploaded = on_uploaded
        self.uploaded = 0
        self.failures = 0
        self.last_error: str | None = None
        self.thread = threading.Thread(target=self._loop, name="uploader", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def upload(self, entry: Entry) -> None:
        """Image then record (or the undo tombstone); retries land on the same keys."""
        record = entry.record
        if isinstance(record, GatheredRecord):
            assert entry.image is not None
            store_gathered(self.store, record, entry.image.read_bytes())
        else:
            store_undo(self.store, record)

    def drain_once(self) -> int:
        """Upload every pending entry in order; stop at the first failure (raised)."""
        count = 0
        for name in self.spool.pending():
            if self.stop.is_set():
                break
            entry = self.spool.claim(name)
            if entry is None:
                continue
            done = False
            try:
                self.upload(entry)
                done = True
            finally:
                self.spool.release(name, done)
            count += 1
            self.uploaded += 1
            logger.info("uploaded %s %s", entry.kind, entry.record.sha256[:12])
            if self.on_uploaded:
                self.on_uploaded(entry)
        return count

    def _loop(self) -> None:
        delay = self.retry_min
        while not self.stop.is_set():
            self.spool.changed.clear()
            try:
                self.drain_once()
                delay = self.retry_min
                self.last_error = None
                self.spool.changed.wait(5.0)
            except Exception as exc:  # the store is down: keep everything, retry later
                self.failures += 1
                self.last_error = str(exc)[:300]
                logger.warning(
                    "upload failed (%s); retrying in %.1fs, spool keeps everything",
                    self.last_error,
                    delay,
                )
                self.stop.wait(delay * random.uniform(0.8, 1.2))
                delay = min(self.retry_max, delay * 2)
