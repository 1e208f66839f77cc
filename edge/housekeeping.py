"""The daemon's slow clock: status file, systemd STATUS, MQTT stats, preview overlay."""

import logging
import time
from typing import TYPE_CHECKING, Any

from .gathering import legend
from .liveview import preview_overlay
from .state import write_status

if TYPE_CHECKING:
    from .daemon import EdgeDaemon

logger = logging.getLogger(__name__)


def housekeeping_loop(daemon: "EdgeDaemon") -> None:
    """Status file, systemd STATUS, MQTT stats and the preview overlay, on their own clock
    (they keep going when the camera stalls, unlike the watchdog)."""
    status = daemon.config.edge.status
    next_stats = time.monotonic() + status.stats_seconds
    while not daemon.stop.wait(status.file_seconds):
        try:
            snap = daemon.status_snapshot()
            write_status(daemon.state_dir, snap)
            if daemon.config.edge.camera.preview:
                daemon.camera.set_overlay(
                    preview_overlay((640, 480), legend(daemon.config), *overlay_state(daemon))
                )
            daemon.notifier.status(
                f"model {snap['model_version']}, {snap['fps']} fps, spool {snap['spool_depth']}"
            )
            if time.monotonic() >= next_stats:
                next_stats = time.monotonic() + status.stats_seconds
                daemon.telemetry.stats(snap, snap["spool_depth"])
        except Exception:
            logger.exception("status update failed")


def status_snapshot(daemon: "EdgeDaemon") -> dict[str, Any]:
    """Everything status.json, the live view and the stats report, in one dict."""
    items, size = daemon.spool.usage()
    return daemon.state.snapshot(
        spool_depth=items,
        spool_bytes=size,
        uploaded=daemon.uploader.uploaded,
        upload_error=daemon.uploader.last_error,
        mqtt_connected=daemon.telemetry.connected,
        update_last_check=daemon.updater.last_check,
        update_last_result=daemon.updater.last_result,
        notices_ignored=daemon.updater.ignored,
        notices_stale=daemon.updater.stale,
        served_generation=daemon.repo.generation(),
        runtime_guard=daemon.guard.status(),
        camera_ended=daemon.camera_ended,
        camera_errors=daemon.camera_errors,
        live_view=daemon.live.url if daemon.live else None,
    )


def overlay_state(daemon: "EdgeDaemon") -> tuple[dict[str, Any] | None, bool, str | None]:
    """(current prediction, flash on, note) for the live view and the preview."""
    with daemon.state.lock:
        note = "SPOOL FULL" if daemon.state.spool_full else None
        if daemon.state.model_version is None:
            note = note or "no model yet"
        return daemon.state.current, time.monotonic() < daemon.state.flash_until, note
