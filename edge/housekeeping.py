"""The daemon's slow clock: status file, systemd STATUS, MQTT stats, preview overlay.

``Status`` assembles the one status dict (status.json, the live view, the stats) from the
parts that know each piece; ``Housekeeper`` is the worker that writes and sends it.
"""

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..shared.config.edge import StatusConfig
from .camerawatch import CameraWatch
from .capture import Capturer
from .guard import RuntimeGuard
from .liveview import preview_overlay
from .models import ModelRepo
from .notify import SystemdNotifier
from .qualityreport import QualityReporter
from .shadow import Shadow
from .spool import Spool
from .state import EdgeState, write_status
from .telemetry import Telemetry
from .updater import Updater
from .uploader import Uploader
from .worker import Worker

logger = logging.getLogger(__name__)

Overlay = tuple[dict[str, Any] | None, bool, str | None]


class Status:
    """Everything status.json, the live view and the stats report, in one dict."""

    def __init__(
        self,
        state: EdgeState,
        spool: Spool,
        uploader: Uploader,
        watch: CameraWatch,
        capturer: Capturer,
        telemetry: Telemetry,
        updater: Updater,
        repo: ModelRepo,
        guard: RuntimeGuard,
        live_url: str | None,
        quality: QualityReporter | None = None,
        shadow: Shadow | None = None,
    ) -> None:
        self.quality = quality
        self.shadow = shadow
        self.state = state
        self.spool = spool
        self.uploader = uploader
        self.watch = watch
        self.capturer = capturer
        self.telemetry = telemetry
        self.updater = updater
        self.repo = repo
        self.guard = guard
        self.live_url = live_url

    def snapshot(self) -> dict[str, Any]:
        items, size = self.spool.usage("gathers")
        up, spool = self.uploader, self.spool
        return self.state.snapshot(
            degraded=self.degraded(),
            camera=self.watch.status(),
            spool_writable=spool.problem is None,
            spool_error=spool.problem,
            spool_local_error=up.local_error,
            spool_uploaded_not_deleted=len(spool.uploaded_left),
            spool_held=sorted(spool.held),
            store_missing=up.store_missing,
            spool_depth=items,
            spool_bytes=size,
            spool_auto_depth=spool.usage("auto")[0],
            spool_telemetry_depth=spool.usage("telemetry")[0],
            telemetry=(
                {**self.quality.status(), "uploaded": up.telemetry_uploaded}
                if self.quality
                else None
            ),
            capture=self.capturer.status(),
            shadow=self.shadow.status() if self.shadow else None,
            uploaded=up.uploaded,
            upload_error=up.last_error,
            mqtt_connected=self.telemetry.connected,
            update_last_check=self.updater.last_check,
            update_last_result=self.updater.last_result,
            notices_ignored=self.updater.ignored,
            notices_stale=self.updater.stale,
            served_generation=self.repo.generation(),
            runtime_guard=self.guard.status(),
            camera_errors=self.watch.failures,
            live_view=self.live_url,
        )

    def degraded(self) -> list[str]:
        """Why the bin is not fully working, one short reason each (status, systemd STATUS)."""
        reasons = []
        if self.watch.down:
            reasons.append(f"camera down: {self.watch.reason}")
        if self.spool.problem:
            reasons.append(f"gathers refused: {self.spool.problem}")
        if self.uploader.store_missing:
            reasons.append(f"uploads paused: {self.uploader.store_missing}")
        return reasons

    def overlay(self) -> Overlay:
        """(current prediction, flash on, note) for the live view and the preview."""
        return self.state.overlay(self.spool.problem)

    def write(self, state_dir: Path) -> dict[str, Any]:
        snap = self.snapshot()
        write_status(state_dir, snap)
        return snap


class Housekeeper(Worker):
    """Status file, systemd STATUS, MQTT stats and the preview overlay, on their own clock
    (they keep going when the camera stalls, unlike the watchdog)."""

    def __init__(
        self,
        status: Status,
        config: StatusConfig,
        state_dir: Path,
        notifier: SystemdNotifier,
        telemetry: Telemetry,
        legend: list[str],
        preview: Callable[[np.ndarray | None], None] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        super().__init__("housekeeping", stop)
        self.status = status
        self.config = config
        self.state_dir = state_dir
        self.notifier = notifier
        self.telemetry = telemetry
        self.legend = legend
        self.preview = preview

    def loop(self) -> None:
        next_stats = time.monotonic() + self.config.stats_seconds
        while not self.stop_event.wait(self.config.file_seconds):
            try:
                snap = self.status.write(self.state_dir)
                if self.preview is not None:
                    self.preview(preview_overlay((640, 480), self.legend, *self.status.overlay()))
                degraded = "; DEGRADED: " + "; ".join(snap["degraded"]) if snap["degraded"] else ""
                self.notifier.status(
                    f"model {snap['model_version']}, {snap['fps']} fps, "
                    f"spool {snap['spool_depth']}" + degraded
                )
                if time.monotonic() >= next_stats:
                    next_stats = time.monotonic() + self.config.stats_seconds
                    self.telemetry.stats(snap, snap["spool_depth"])
            except Exception:
                logger.exception("status update failed")
