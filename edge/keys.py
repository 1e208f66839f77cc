"""What a key press does: gather the current frame under a label, or undo the last gather,
and tell the operator (LED/buzzer, live view flash, events, MQTT).

A press is either confirmed (one short blink/beep) or refused (three long ones), never
neither: a full or unwritable spool, no frame yet, or a frame older than
``keypad.max_frame_age`` (a stalled camera must not have its last picture labelled).
"""

import logging
import time
from typing import TYPE_CHECKING

from .spool import SpoolRefusedError

if TYPE_CHECKING:
    from .daemon import EdgeDaemon

logger = logging.getLogger(__name__)

FLASH_SECONDS = 0.6


def refuse(daemon: "EdgeDaemon", label: str | None, reason: str, detail: str) -> None:
    """The operator's refusal signal, an event and a count: the press was not kept."""
    logger.warning("key press (%s) refused: %s", label or "undo", detail)
    with daemon.state.lock:
        daemon.state.refused += 1
        daemon.state.refusals[reason] += 1
        daemon.state.last_refusal = {"label": label, "reason": reason, "detail": detail}
        if reason == "spool_full":
            daemon.state.spool_full = True
    if daemon.confirm:
        daemon.confirm.signal(False)
    daemon.emit("gather_refused", label=label, reason=reason, detail=detail)
    daemon.telemetry.event("gather_refused", label=label, detail=f"{reason}: {detail}")
    if reason == "spool_full":  # the event and MQTT kind from before refusals had reasons
        daemon.emit("spool_full", label=label)
        daemon.telemetry.event("spool_full", label=label, detail=detail)


def _undo(daemon: "EdgeDaemon") -> None:
    try:
        item = daemon.gatherer.undo()
    except SpoolRefusedError as exc:
        refuse(daemon, None, exc.reason, str(exc))
        return
    if item:
        with daemon.state.lock:
            daemon.state.undone += 1
        daemon.emit("undo", sha256=item.sha256, label=item.label)
        daemon.telemetry.event("undo", label=item.label, detail=item.sha256)


def handle_key(daemon: "EdgeDaemon", key: str) -> None:
    if key.strip().lower() == daemon.gatherer.undo_key:
        _undo(daemon)
        return
    label = daemon.gatherer.category(key)
    if label is None:
        logger.warning("key %r is not mapped to a category", key)
        daemon.emit("unknown_key", key=key)
        return
    frame = daemon.latest_frame()
    if frame is None:
        refuse(daemon, label, "no_frame", "no frame has arrived yet; nothing gathered")
        return
    age = time.monotonic() - frame.mono
    bound = daemon.config.edge.keypad.max_frame_age
    if age > bound:
        detail = f"the latest frame is {age:.1f}s old (bound {bound:g}s): is the camera down?"
        refuse(daemon, label, "stale_frame", detail)
        return
    current = daemon.state.current
    prediction = current.get("label") if current else None
    score = current.get("score") if current else None
    try:
        item = daemon.gatherer.gather(
            frame.full, label, prediction, score, daemon.state.model_version
        )
    except SpoolRefusedError as exc:
        refuse(daemon, label, exc.reason, str(exc))
        return
    with daemon.state.lock:
        daemon.state.gathered += 1
        daemon.state.spool_full = False
        daemon.state.flash_until = time.monotonic() + FLASH_SECONDS
        daemon.state.last_gather = {
            "sha256": item.sha256,
            "label": label,
            "frame": frame.index,
            "source": frame.source,
        }
    if daemon.confirm:
        daemon.confirm.signal(True)
    daemon.emit(
        "gathered",
        sha256=item.sha256,
        label=label,
        frame=frame.index,
        source=frame.source,
        prediction=prediction,
        score=score,
    )
    daemon.telemetry.event(
        "gathered",
        label=label,
        score=score,
        model_version=daemon.state.model_version,
        detail=item.sha256,
    )
