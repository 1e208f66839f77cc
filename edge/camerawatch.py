"""Keep the camera going without taking the daemon down: open it, reopen it after a failure
with capped exponential backoff, call a silent camera down, and log once per change of
state, never once per attempt.

A dead camera is a degraded state the daemon runs through (no frames, the spool keeps
draining, the status says why), not a crash: under systemd's restart loop a crash at start
would never let pending gathers drain.
"""

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ..shared.config.edge import CameraConfig
from ..shared.errors import RecyclopsError
from .cameras import Camera, EndOfStream, Frame

logger = logging.getLogger(__name__)

#: ``recyclops edge run`` exits with this after the camera was down too long (the spool
#: drained, or not draining): systemd's Restart=on-failure starts a fresh process.
EXIT_CAMERA_DOWN = 3


def _describe(exc: BaseException) -> str:
    text = str(exc) if isinstance(exc, RecyclopsError) else f"{type(exc).__name__}: {exc}"
    return text[:300]


class CameraWatch:
    def __init__(
        self,
        camera: Camera,
        config: CameraConfig,
        stop: threading.Event,
        on_change: Callable[[str, str | None], None] | None = None,
    ) -> None:
        self.camera = camera
        self.config = config
        self.stop = stop
        self.on_change = on_change
        self.state = "starting"  # "ok" once a frame came, "down" while it cannot give any
        self.reason: str | None = None
        self.failures = 0  # every failed open or read, since start
        self.attempts = 0  # failed opens/reads in the current outage
        self._open = False
        self._down_since: float | None = None
        self._since_wall: str | None = None
        self._delay = config.retry_min
        self._next_try = 0.0
        self._last_frame = time.monotonic()

    @property
    def down(self) -> bool:
        return self.state == "down"

    def down_for(self) -> float:
        return 0.0 if self._down_since is None else time.monotonic() - self._down_since

    def open(self) -> bool:
        """Start the camera; a failure is the down state, not an exception."""
        try:
            self.camera.start()
        except Exception as exc:
            self._failed(exc)
            return False
        self._open = True
        self._last_frame = time.monotonic()
        return True

    def read(self) -> Frame | None:
        """The next frame, or None (a timeout, or the camera down: then this waits at most
        a fraction of a second, so the loop stays responsive). EndOfStream passes through."""
        now = time.monotonic()
        if not self._open:
            if now < self._next_try:
                self.stop.wait(min(0.2, self._next_try - now))
                return None
            if not self.open():
                return None
        try:
            frame = self.camera.read()
        except EndOfStream:
            raise
        except Exception as exc:
            self._failed(exc)
            return None
        if frame is None:
            silent = time.monotonic() - self._last_frame
            if silent > self.config.stall_seconds:
                self._failed(RecyclopsError(f"camera gave no frame for {silent:.0f}s"))
            return None
        self._last_frame = time.monotonic()
        if self.state != "ok":
            self._up()
        return frame

    def _failed(self, exc: BaseException) -> None:
        reason = _describe(exc)
        with contextlib.suppress(Exception):
            self.camera.close()
        self._open = False
        self.failures += 1
        self.attempts += 1
        now = time.monotonic()
        wait = self._delay * random.uniform(0.8, 1.2)
        self._next_try = now + wait
        self._delay = min(self.config.retry_max, self._delay * 2)
        changed = self.state != "down" or reason != self.reason
        if self._down_since is None:
            self._down_since = now
            self._since_wall = datetime.now(UTC).isoformat()
        self.state, self.reason = "down", reason
        if changed:
            logger.error(
                "camera down (%s): running degraded (no frames, the spool keeps draining); "
                "reopening with backoff up to %.1fs",
                reason,
                self.config.retry_max,
            )
            if self.on_change:
                self.on_change("down", reason)
        else:
            logger.debug("camera still down (%s); next try in %.1fs", reason, wait)

    def _up(self) -> None:
        if self.state == "down":
            logger.warning(
                "camera back after %.0fs and %d failed attempts", self.down_for(), self.attempts
            )
            if self.on_change:
                self.on_change("ok", None)
        self.state, self.reason = "ok", None
        self._down_since = self._since_wall = None
        self.attempts = 0
        self._delay = self.config.retry_min

    def give_up(self, spool_pending: int, store_failing: bool) -> str | None:
        """Why the daemon should now exit non-zero (systemd restarts it), or None: only when
        the camera has been down ``down_exit_seconds`` and uploads have nothing left to do
        or cannot make progress anyway, so a dead camera never holds the spool back."""
        bound = self.config.down_exit_seconds
        if not self.down or not bound or self.down_for() < bound:
            return None
        if spool_pending and not store_failing:
            return None
        left = "the spool is drained" if not spool_pending else "the store is failing"
        return f"camera down for {self.down_for():.0f}s ({self.reason}); {left}"

    def status(self) -> dict[str, Any]:
        retry = max(0.0, self._next_try - time.monotonic()) if self.down else None
        return {
            "state": self.state,
            "reason": self.reason,
            "down_since": self._since_wall,
            "attempts": self.attempts,
            "failures": self.failures,
            "next_retry_s": None if retry is None else round(retry, 2),
        }
