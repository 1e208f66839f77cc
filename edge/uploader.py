"""Drain the spool to the store, in order, with retries and backoff; never drop anything.

Puts are "only if absent" at content-addressed keys, so an upload repeated after a crash or
a lost reply lands on the same key and is never duplicated.

Two kinds of failure are kept apart. A remote one (the store is down or refuses) stops the
drain and retries with backoff, order kept. A local one (an entry that cannot be read, or
an uploaded one that cannot be deleted from a read-only spool) concerns that entry only: it
is logged once, the entry is skipped (an uploaded one is never uploaded again by this
process) and the rest of the queue goes on. Logs change only when the state changes.
"""

import logging
import random
import threading
from collections.abc import Callable

from ..shared.errors import StoreError, StoreNotFoundError
from ..shared.gathered import store_gathered, store_undo
from ..shared.messages import DeviceQuality
from ..shared.quality import store_quality
from ..shared.records import GatheredRecord
from ..shared.store import ObjectStore
from .spool import Entry, Spool, SpoolUnwritableError
from .worker import Worker

logger = logging.getLogger(__name__)


class Uploader(Worker):
    def __init__(
        self,
        spool: Spool,
        store: ObjectStore,
        stop: threading.Event | None = None,
        *,
        retry_min: float = 0.5,
        retry_max: float = 60.0,
        on_uploaded: Callable[[Entry], None] | None = None,
    ) -> None:
        super().__init__("uploader", stop)
        self.spool = spool
        self.store = store
        self.retry_min = retry_min
        self.retry_max = retry_max
        self.on_uploaded = on_uploaded
        self.uploaded = 0  # gathers, captures, undos
        self.telemetry_uploaded = 0  # quality records, counted apart
        self.failures = 0
        self.last_error: str | None = None  # remote: the store
        self.local_error: str | None = None  # local: the spool folder
        #: Why uploads are paused: the store itself is missing (a mistyped bucket or folder).
        self.store_missing: str | None = None
        self.store_checks = 0

    def stop(self) -> None:
        super().stop()
        self.spool.changed.set()  # wakes the loop from its idle wait

    def upload(self, entry: Entry, image: bytes | None = None) -> None:
        """Image then record (or the undo tombstone, or a telemetry record); retries land on
        the same keys."""
        record = entry.record
        if isinstance(record, DeviceQuality):
            store_quality(self.store, record)
        elif isinstance(record, GatheredRecord):
            if image is None:
                image = self.spool.read_image(entry)
            store_gathered(self.store, record, image)
        else:
            store_undo(self.store, record)

    def drain_once(self) -> int:
        """Upload every pending entry in order; stop at the first remote failure (raised).
        Local failures skip their entry (see the module docstring)."""
        count = 0
        for name in self.spool.pending():
            if self.stopping:
                break
            entry = self.spool.claim(name)
            if entry is None:
                continue
            try:
                image = self.spool.read_image(entry)  # local: held aside on failure
            except SpoolUnwritableError as exc:
                self.local_error = str(exc)
                continue
            try:
                self.upload(entry, image)
            except BaseException:
                self.spool.release(name, False)
                raise
            count += 1
            if isinstance(entry.record, DeviceQuality):
                self.telemetry_uploaded += 1
                logger.debug("uploaded telemetry of %s", entry.record.period_start)
            else:
                self.uploaded += 1
                logger.info("uploaded %s %s", entry.kind, entry.record.sha256[:12])
            try:
                self.spool.release(name, True)
            except SpoolUnwritableError as exc:  # uploaded; remembered, never uploaded again
                if self.local_error is None:
                    logger.error("%s; the spool folder is not writable", exc)
                self.local_error = str(exc)
            if self.on_uploaded:
                self.on_uploaded(entry)
        return count

    def check_store(self) -> bool:
        """At start: a missing store (bucket or folder) pauses uploads, everything stays
        spooled; an unreachable one is normal offline life and uploads go on retrying."""
        self.store_checks += 1
        try:
            self.store.check_ready()
        except StoreNotFoundError as exc:
            if self.store_missing is None:
                logger.error("uploads paused, gathers stay in the spool: %s", exc)
            self.store_missing = str(exc)[:300]
            return False
        except StoreError as exc:
            logger.info("store not reachable at start (%s); uploads will retry", exc)
        except Exception as exc:  # a store that cannot say: try uploading anyway
            logger.info("store check failed (%s); uploads will retry", exc)
        if self.store_missing is not None:
            logger.warning("store found; uploads resume")
            self.store_missing = None
        return True

    def loop(self) -> None:
        delay = self.retry_min
        while not self.check_store():  # rechecked with backoff: someone may create it
            if self.stop_event.wait(delay * random.uniform(0.8, 1.2)):
                return
            delay = min(self.retry_max, delay * 2)
        delay = self.retry_min
        while not self.stopping:
            self.spool.changed.clear()
            local_work = bool(self.spool.uploaded_left or self.spool.held or self.spool.problem)
            if local_work:
                self.spool.tidy()
                if not (self.spool.uploaded_left or self.spool.held or self.spool.problem):
                    self.local_error = None
            try:
                self.drain_once()
            except Exception as exc:  # the store is down: keep everything, retry later
                self._remote_failed(exc, delay)
                self.stop_event.wait(delay * random.uniform(0.8, 1.2))
                delay = min(self.retry_max, delay * 2)
                continue
            if self.last_error is not None:
                logger.warning("uploads resumed after %d failed attempts", self.failures)
            delay = self.retry_min
            self.last_error = None
            self.spool.changed.wait(self.retry_max if local_work else 5.0)

    def _remote_failed(self, exc: Exception, delay: float) -> None:
        """Logged when the failure starts or changes, not on every retry."""
        self.failures += 1
        error = str(exc)[:300]
        if error != self.last_error:
            logger.warning(
                "upload to the store failed (%s); retrying with backoff, the spool keeps "
                "everything",
                error,
            )
        else:
            logger.debug("upload retry failed (%s); next in %.1fs", error, delay)
        self.last_error = error
