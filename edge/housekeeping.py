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
            degraded = "; DEGRADED: " + "; ".join(snap["degraded"]) if snap["degraded"] else ""
            daemon.notifier.status(
                f"model {snap['model_version']}, {snap['fps']} fps, spool {snap['spool_depth']}"
                + degraded
            )
            if time.monotonic() >= next_stats:
                next_stats = time.monotonic() + status.stats_seconds
                daemon.telemetry.stats(snap, snap["spool_depth"])
        except Exception:
            logger.exception("status update failed")


def status_snapshot(daemon: "EdgeDaemon") -> dict[str, Any]:
    """Everything status.json, the live view and the stats report, in one dict."""
    items, size = daemon.spool.usage()
    up, spool = daemon.uploader, daemon.spool
    return daemon.state.snapshot(
        degraded=degraded(daemon),
        camera=daemon.watch.status(),
        spool_writable=spool.problem is None,
        spool_error=spool.problem,
        spool_local_error=up.local_error,
        spool_uploaded_not_deleted=len(spool.uploaded_left),
        spool_held=sorted(spool.held),
        store_missing=up.store_missing,
        spool_depth=items,
        spool_bytes=size,
        spool_auto_depth=spool.usage(auto=True)[0],
        capture=daemon.capturer.status(),
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
        camera_errors=daemon.watch.failures,
        live_view=daemon.live.url if daemon.live else None,
    )


def degraded(daemon: "EdgeDaemon") -> list[str]:
    """Why the bin is not fully working, one short reason each (status, systemd STATUS)."""
    reasons = []
    if daemon.watch.down:
        reasons.append(f"camera down: {daemon.watch.reason}")
    if daemon.spool.problem:
        reasons.append(f"gathers refused: {daemon.spool.problem}")
    if daemon.uploader.store_missing:
        reasons.append(f"uploads paused: {daemon.uploader.store_missing}")
    return reasons


def overlay_state(daemon: "EdgeDaemon") -> tuple[dict[str, Any] | None, bool, str | None]:
    """(current prediction, flash on, note) for the live view and the preview."""
    with daemon.state.lock:
        note = "SPOOL FULL" if daemon.state.spool_full else None
        if daemon.spool.problem:
            note = "SPOOL NOT WRITABLE"
        if daemon.state.model_version is None:
            note = note or "no model yet"
        return daemon.state.current, time.monotonic() < daemon.state.flash_until, note
