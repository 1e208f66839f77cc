"""Drive the real edge daemon as a subprocess: watch its JSON lines, press a key, stop it."""

import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from recyclops.shared.errors import RecyclopsError

logger = logging.getLogger(__name__)


class EdgeProcess:
    """``recyclops edge run … --jsonl`` with the terminal keypad on a pipe."""

    def __init__(self, args: list[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self._log = open(log_path, "wb")  # noqa: SIM115 (closed in stop)
        cmd = [sys.executable, "-m", "recyclops.app.cli", "edge", "run", "--jsonl", *args]
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, name="edge-stdout", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            try:
                event = json.loads(raw)
            except ValueError:
                continue
            if isinstance(event, dict):
                self.events.put(event)

    def wait_for(
        self, match: Callable[[dict[str, Any]], bool], timeout: float, what: str
    ) -> dict[str, Any]:
        """Every event read is kept in ``seen``; return the first that matches."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RecyclopsError(f"edge daemon: no {what} within {timeout:.0f} s")
            if self.proc.poll() is not None and self.events.empty():
                raise RecyclopsError(f"edge daemon exited ({self.proc.returncode}) before {what}")
            try:
                event = self.events.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            self.seen.append(event)
            if match(event):
                return event

    def press(self, key: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{key}\n".encode())
        self.proc.stdin.flush()

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, then SIGKILL if it does not stop: the demo leaves nothing running."""
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(timeout)
        finally:
            self._reader.join(5)
            self._log.close()
        return int(self.proc.returncode)
