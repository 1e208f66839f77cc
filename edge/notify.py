"""systemd's notify protocol, without a dependency: one datagram to $NOTIFY_SOCKET.

READY=1 once serving, WATCHDOG=1 from the frame loop: while frames really arrive, and
while the camera is down and the loop keeps reopening it (degraded; the daemon exits
non-zero itself after ``camera.down_exit_seconds``). A loop stuck inside a camera call, or
a camera held at its end, starves it. STATUS=… for ``systemctl status``.
"""

import logging
import os
import socket
import time

logger = logging.getLogger(__name__)


class SystemdNotifier:
    def __init__(self, env: dict[str, str] | None = None) -> None:
        env = dict(os.environ) if env is None else env
        self.address = env.get("NOTIFY_SOCKET") or None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        mine = not pid or pid == str(os.getpid())
        #: seconds between pings (half of WatchdogSec); None when no watchdog is asked for
        self.watchdog_interval = int(usec) / 2e6 if usec.isdigit() and mine else None
        self._last_ping = 0.0
        self._sock: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *lines: str) -> bool:
        if not self.address:
            return False
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._sock.setblocking(False)  # a full receiver never blocks the frame loop
            self._sock.sendto("\n".join(lines).encode("utf-8"), target)
            return True
        except OSError as exc:
            logger.debug("sd_notify to %s failed: %s", self.address, exc)
            return False

    def ready(self, status: str = "") -> None:
        self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> None:
        self.send(f"STATUS={text}")

    def frame_arrived(self) -> None:
        """Call on every real frame; pings at most every half watchdog period (or 1 s)."""
        self.alive()

    def alive(self) -> None:
        """The frame loop is alive without frames: the camera is down and being reopened
        (degraded mode, bounded by ``camera.down_exit_seconds``). Same rate limit."""
        now = time.monotonic()
        if now - self._last_ping >= (self.watchdog_interval or 1.0):
            self._last_ping = now
            self.send("WATCHDOG=1")

    def stopping(self) -> None:
        self.send("STOPPING=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
