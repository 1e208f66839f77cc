"""Keypads: a GPIO matrix (gpiozero), a USB keypad (evdev), and the terminal (stdin).

Each is a worker (its own thread and stop event) and hands key names (strings) to one
callback. gpiozero and
evdev are imported only inside their adapters.
"""

import logging
import os
import select
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from ..shared.config.edge import KeypadConfig
from ..shared.errors import RecyclopsError
from .worker import Worker

logger = logging.getLogger(__name__)

KeyHandler = Callable[[str], None]


class KeypadError(RecyclopsError):
    """The keypad cannot be opened."""


class Keypad(Worker):
    """A worker that hands each key press to ``on_key``; a failing handler is logged and
    the keypad goes on."""

    def __init__(self, on_key: KeyHandler, stop: threading.Event | None = None) -> None:
        super().__init__(type(self).__name__, stop)
        self.on_key = on_key

    def emit(self, key: str) -> None:
        try:
            self.on_key(key)
        except Exception:
            logger.exception("key %r handler failed", key)


class TerminalKeypad(Keypad):
    """One key per line on stdin (a pipe or a TTY): ``1`` then Enter. EOF ends the keypad,
    not the daemon. Words work too (``glass``), so scripts can be explicit."""

    def __init__(
        self, on_key: KeyHandler, stop: threading.Event | None = None, stream: TextIO | None = None
    ) -> None:
        super().__init__(on_key, stop)
        self.stream = stream or sys.stdin

    def loop(self) -> None:
        try:
            fd: int | None = self.stream.fileno()
        except (AttributeError, OSError, ValueError):
            fd = None
        buffer = b""
        while not self.stopping:
            if fd is None:
                line = self.stream.readline()
                if not line:
                    return
                self._line(line)
                continue
            ready, _, _ = select.select([fd], [], [], 0.2)
            if not ready:
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                if buffer:
                    self._line(buffer.decode("utf-8", "replace"))
                logger.info("terminal keypad: end of input")
                return
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                self._line(line.decode("utf-8", "replace"))

    def _line(self, line: str) -> None:
        key = line.strip()
        if key:
            self.emit(key)


class MatrixKeypad(Keypad):
    """A row/column matrix: drive one row low at a time, read the pulled-up columns."""

    def __init__(
        self,
        on_key: KeyHandler,
        stop: threading.Event | None,
        config: KeypadConfig,
        pin_factory: Any = None,
    ) -> None:
        super().__init__(on_key, stop)
        from gpiozero import DigitalInputDevice, DigitalOutputDevice

        self.config = config
        self.rows = [
            DigitalOutputDevice(p, initial_value=True, pin_factory=pin_factory)
            for p in config.row_pins
        ]
        self.cols = [
            DigitalInputDevice(p, pull_up=True, pin_factory=pin_factory) for p in config.col_pins
        ]
        self._down: dict[str, float] = {}

    def scan(self) -> set[str]:
        """Keys down right now."""
        down: set[str] = set()
        for r, row in enumerate(self.rows):
            row.off()  # active row low
            for c, col in enumerate(self.cols):
                if col.is_active:  # pulled up: pressed reads low, i.e. active
                    down.add(self.config.layout[r][c])
            row.on()
        return down

    def loop(self) -> None:
        period = 1.0 / self.config.scan_hz
        debounce = self.config.debounce_ms / 1000
        pressed: set[str] = set()
        while not self.stop_event.wait(period):
            now = time.monotonic()
            down = self.scan()
            for key in down:
                self._down.setdefault(key, now)
                if key not in pressed and now - self._down[key] >= debounce:
                    pressed.add(key)
                    self.emit(key)
            for key in list(self._down):
                if key not in down:
                    del self._down[key]
                    pressed.discard(key)

    def close(self) -> None:
        for dev in (*self.rows, *self.cols):
            dev.close()


#: evdev key codes → key names (digits from both rows, keypad keys, letters).
def _evdev_name(code: str) -> str | None:
    name = code.removeprefix("KEY_")
    if name.startswith("KP") and len(name) == 3 and name[2].isdigit():
        return name[2]
    if len(name) == 1:
        return name.lower()
    return {
        "KPENTER": "enter",
        "ENTER": "enter",
        "BACKSPACE": "u",
        "KPMINUS": "-",
        "KPPLUS": "+",
        "KPASTERISK": "*",
        "KPSLASH": "/",
        "KPDOT": ".",
    }.get(name)


class EvdevKeypad(Keypad):
    """A USB number pad: key-down events from /dev/input (grabbed, so no console sees them)."""

    def __init__(
        self, on_key: KeyHandler, stop: threading.Event | None, config: KeypadConfig
    ) -> None:
        super().__init__(on_key, stop)
        try:
            import evdev
        except ImportError as exc:
            raise KeypadError(f"evdev keypad needs the evdev package: {exc}") from None
        path = config.evdev_device
        if path is None:
            for candidate in evdev.list_devices():
                dev = evdev.InputDevice(candidate)
                if evdev.ecodes.EV_KEY in dev.capabilities():
                    path = candidate
                    break
        if path is None:
            raise KeypadError("no evdev keyboard found; set edge.keypad.evdev_device")
        self.device = evdev.InputDevice(path)
        self._ecodes = evdev.ecodes
        logger.info("evdev keypad: %s (%s)", self.device.name, path)

    def loop(self) -> None:
        self.device.grab()
        try:
            while not self.stopping:
                ready, _, _ = select.select([self.device.fd], [], [], 0.2)
                if not ready:
                    continue
                for event in self.device.read():
                    if event.type == self._ecodes.EV_KEY and event.value == 1:
                        code = self._ecodes.KEY.get(event.code)
                        code = code[0] if isinstance(code, list) else code
                        key = _evdev_name(str(code)) if code else None
                        if key:
                            self.emit(key)
        finally:
            self.device.ungrab()

    def close(self) -> None:
        self.device.close()


def open_keypad(config: KeypadConfig, on_key: KeyHandler, pin_factory: Any = None) -> Keypad | None:
    """The configured keypad (not started), or None; ``pin_factory`` reaches the GPIO
    matrix like every other gpiozero device of the daemon."""
    if config.kind == "terminal":
        return TerminalKeypad(on_key)
    if config.kind == "gpio":
        return MatrixKeypad(on_key, None, config, pin_factory)
    if config.kind == "evdev":
        return EvdevKeypad(on_key, None, config)
    return None
