"""What a key press does: gather the current frame under a label, or undo the last gather,
and tell the operator (LED/buzzer, live view flash, events, MQTT).

A press is either confirmed (one short blink/beep) or refused (three long ones), never
neither: a full or unwritable spool, no frame yet, or a frame older than
``keypad.max_frame_age`` (a stalled camera must not have its last picture labelled).
"""

import logging
import time
from collections.abc import Callable

from .cameras import Frame
from .events import Emit
from .gathering import Gatherer
from .outputs import Confirm
from .spool import SpoolRefusedError
from .state import EdgeState
from .telemetry import Telemetry

logger = logging.getLogger(__name__)

FLASH_SECONDS = 0.6


class KeyHandler:
    """Called by the keypad's thread with each key name."""

    def __init__(
        self,
        gatherer: Gatherer,
        state: EdgeState,
        events: Emit,
        telemetry: Telemetry,
        latest_frame: Callable[[], Frame | None],
        max_frame_age: float,
        confirm: Confirm | None = None,
    ) -> None:
        self.gatherer = gatherer
        self.state = state
        self.events = events
        self.telemetry = telemetry
        self.latest_frame = latest_frame
        self.max_frame_age = max_frame_age
        self.confirm = confirm

    def __call__(self, key: str) -> None:
        if key.strip().lower() == self.gatherer.undo_key:
            self._undo()
            return
        label = self.gatherer.category(key)
        if label is None:
            logger.warning("key %r is not mapped to a category", key)
            self.events.emit("unknown_key", key=key)
            return
        frame = self.latest_frame()
        if frame is None:
            self.refuse(label, "no_frame", "no frame has arrived yet; nothing gathered")
            return
        age = time.monotonic() - frame.mono
        bound = self.max_frame_age
        if age > bound:
            detail = f"the latest frame is {age:.1f}s old (bound {bound:g}s): is the camera down?"
            self.refuse(label, "stale_frame", detail)
            return
        prediction, score, model_version = self.state.gather_context()
        try:
            item = self.gatherer.gather(frame.full, label, prediction, score, model_version)
        except SpoolRefusedError as exc:
            self.refuse(label, exc.reason, str(exc))
            return
        self.state.gathered(
            {"sha256": item.sha256, "label": label, "frame": frame.index, "source": frame.source},
            FLASH_SECONDS,
        )
        if self.confirm:
            self.confirm.signal(True)
        self.events.emit(
            "gathered",
            sha256=item.sha256,
            label=label,
            frame=frame.index,
            source=frame.source,
            prediction=prediction,
            score=score,
        )
        self.telemetry.event(
            "gathered",
            label=label,
            score=score,
            model_version=model_version,
            detail=item.sha256,
        )

    def refuse(self, label: str | None, reason: str, detail: str) -> None:
        """The operator's refusal signal, an event and a count: the press was not kept."""
        logger.warning("key press (%s) refused: %s", label or "undo", detail)
        self.state.refusal(label, reason, detail)
        if self.confirm:
            self.confirm.signal(False)
        self.events.emit("gather_refused", label=label, reason=reason, detail=detail)
        self.telemetry.event("gather_refused", label=label, detail=f"{reason}: {detail}")
        if reason == "spool_full":  # the event and MQTT kind from before refusals had reasons
            self.events.emit("spool_full", label=label)
            self.telemetry.event("spool_full", label=label, detail=detail)

    def _undo(self) -> None:
        try:
            item = self.gatherer.undo()
        except SpoolRefusedError as exc:
            self.refuse(None, exc.reason, str(exc))
            return
        if item:
            self.state.undone()
            self.events.emit("undo", sha256=item.sha256, label=item.label)
            self.telemetry.event("undo", label=item.label, detail=item.sha256)
