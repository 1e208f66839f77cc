"""The one shape of every helper thread of the daemon (uploader, updater, keypad,
housekeeper, live view): a named daemon thread that runs ``loop`` until its stop event is
set, logs an exception instead of dying silently, and joins with a timeout.

Each worker has its own stop event, so the daemon can stop them in its order (the keypad
before the spool drain, the uploader after it) on its one stop event.
"""

import logging
import threading

logger = logging.getLogger(__name__)


class Worker:
    """Subclasses implement ``loop`` (return when ``stop_event`` is set); ``stop`` may be
    extended to wake a loop blocked on something else, ``close`` releases devices."""

    def __init__(self, name: str, stop: threading.Event | None = None) -> None:
        self.name = name
        self.stop_event = stop if stop is not None else threading.Event()
        self.thread = threading.Thread(target=self._main, name=name, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _main(self) -> None:
        try:
            self.loop()
        except Exception:
            logger.exception("%s stopped", self.name)

    def loop(self) -> None:
        raise NotImplementedError

    @property
    def stopping(self) -> bool:
        return self.stop_event.is_set()

    def stop(self) -> None:
        """Ask the loop to end (does not wait: see ``join``)."""
        self.stop_event.set()

    def join(self, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds; True when the thread has ended (or never ran)."""
        if self.thread.ident is not None:
            self.thread.join(timeout)
        alive = self.thread.is_alive()
        if alive:
            logger.warning("%s did not stop within %.0fs", self.name, timeout)
        return not alive

    def close(self) -> None:
        """Release devices (after ``join``)."""
