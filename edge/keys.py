"""What a key press does: gather the current frame under a label, or undo the last gather,
and tell the operator (LED/buzzer, live view flash, events, MQTT)."""

import logging
import time
from typing import TYPE_CHECKING

from .spool import SpoolFullError

if TYPE_CHECKING:
    from .daemon import EdgeDaemon

logger = logging.getLogger(__name__)

FLASH_SECONDS = 0.6


def handle_key(daemon: "EdgeDaemon", key: str) -> None:
    if key.strip().lower() == daemon.gatherer.undo_key:
        item = daemon.gatherer.undo()
        if item:
            with daemon.state.lock:
                daemon.state.undone += 1
            daemon.emit("undo", sha256=item.sha256, label=item.label)
            daemon.telemetry.event("undo", label=item.label, detail=item.sha256)
        return
    label = daemon.gatherer.category(key)
    if label is None:
        logger.warning("key %r is not mapped to a category", key)
        daemon.emit("unknown_key", key=key)
        return
    frame = daemon.latest_frame()
    if frame is None:
        logger.warning("key %r pressed before the first frame; nothing gathered", key)
        return
    current = daemon.state.current
    prediction = current.get("label") if current else None
    score = current.get("score") if current else None
    try:
        item = daemon.gatherer.gather(
            frame.full, label, prediction, score, daemon.state.model_version
        )
    except SpoolFullError as exc:
        logger.error("%s", exc)
        with daemon.state.lock:
            daemon.state.refused += 1
            daemon.state.spool_full = True
        if daemon.confirm:
            daemon.confirm.signal(False)
        daemon.emit("spool_full", label=label)
        daemon.telemetry.event("spool_full", label=label, detail=str(exc))
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
