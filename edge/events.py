"""What the daemon tells the outside: the event log (``--jsonl``: one JSON object per line,
for scripts and the demo) and the reports that go both there and to MQTT.

The log is written from several threads (frame loop, keypad, updater, capture), one whole
line at a time; a closed or broken stream ends the log, never the daemon. Listeners (the
quality counter) see every event, with or without a stream.
"""

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TextIO

from ..shared.manifest import ModelRef
from ..shared.mqtt import dumps_json
from ..shared.records import GatheredRecord
from .state import EdgeState
from .telemetry import Telemetry

logger = logging.getLogger(__name__)


class Emit(Protocol):
    """What a part needs to put an event in the log."""

    def emit(self, event: str, **fields: Any) -> None: ...


Listener = Callable[[str, Mapping[str, Any]], None]


class EventLog:
    def __init__(self, stream: TextIO | None) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []

    def listen(self, listener: Listener) -> None:
        """Call ``listener(event, fields)`` for every event (on the emitting thread: it must
        be quick, and whatever it raises is logged, never passed to the emitter)."""
        self._listeners.append(listener)

    def emit(self, event: str, **fields: Any) -> None:
        for listener in self._listeners:
            try:
                listener(event, fields)
            except Exception:
                logger.exception("event listener failed on %s", event)
        if self._stream is None:
            return
        line = dumps_json({"event": event, "time": time.time(), **fields})
        with self._lock:
            if self._stream is None:
                return
            try:
                self._stream.write(line + "\n")
                self._stream.flush()
            except (OSError, ValueError):
                self._stream = None


class Reports:
    """The callbacks of the updater, the camera watch and the capturer: each happening goes
    to the event log and to MQTT (with the state they need to say where the bin is)."""

    def __init__(self, events: Emit, telemetry: Telemetry, state: EdgeState) -> None:
        self.events = events
        self.telemetry = telemetry
        self.state = state

    def model_rejected(self, version: str, reason: str) -> None:
        self.state.update_failed(f"{version}: {reason}")
        self.events.emit("model_rejected", version=version, reason=reason)
        self.telemetry.event("model_rejected", model_version=version, detail=reason)
        self.telemetry.status(
            "online", self.state.model_version, detail=f"rejected {version}: {reason}"
        )

    def notice_stale(self, notice: ModelRef, via: str, served: int) -> None:
        self.events.emit(
            "notice_ignored",
            version=notice.version,
            generation=notice.generation,
            served_generation=served,
            via=via,
        )
        self.telemetry.event(
            "notice_ignored",
            model_version=notice.version,
            detail=f"generation {notice.generation} < served {served} (via {via})",
        )

    def camera_changed(self, state: str, reason: str | None) -> None:
        self.events.emit("camera_down" if state == "down" else "camera_up", reason=reason)
        detail = f"camera down: {reason}" if reason else None
        self.telemetry.status("online", self.state.model_version, detail)

    def captured(self, record: GatheredRecord, frame: int, source: str | None) -> None:
        assert record.capture is not None
        self.events.emit(
            "auto_captured",
            sha256=record.sha256,
            prediction=record.prediction,
            score=record.score,
            reasons=record.capture.reasons,
            frame=frame,
            source=source,
        )
        self.telemetry.event(
            "auto_captured",
            label=record.prediction,
            score=record.score,
            model_version=record.model_version,
            detail=", ".join(record.capture.reasons),
        )
