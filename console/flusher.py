"""A background thread that saves a review journal soon after every change.

A change wakes it at once; it then writes at most every ``min_gap`` seconds (so fast typing
costs few store writes) and at least every ``interval`` seconds while anything is unsaved
(so a failed write is retried). A crash loses at most the last moments of work.
"""

import logging
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)


class Flusher:
    def __init__(
        self,
        flush: Callable[[], object],
        is_dirty: Callable[[], bool],
        interval: float,
        min_gap: float = 0.5,
        name: str = "journal-flusher",
    ) -> None:
        self._flush = flush
        self._is_dirty = is_dirty
        self.interval = interval
        self.min_gap = min(min_gap, interval)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.name = name
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the thread (the owner does its own last flush afterwards)."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            if self._is_dirty():
                try:
                    self._flush()
                except Exception as exc:  # the next round retries; the owner reports it
                    logger.warning("%s failed (%s); again in %.1f s", self.name, exc, self.interval)
            self._stop.wait(self.min_gap)
