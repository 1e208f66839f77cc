"""The edge daemon: one frame loop and a few helper threads, one stop event.

Threads: keypad (gathers), uploader (drains the spool), updater (fetches models), live view,
housekeeping (status file, stats, systemd STATUS). The frame loop owns the classifier and
switches to a new one between two frames. SIGTERM/SIGINT set the stop event; everything is
shut down in ``finally`` with bounded joins.
"""

import logging
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from ..shared.config import RecyclopsConfig
from ..shared.errors import ConfigError
from ..shared.manifest import ModelRef
from ..shared.mqtt import dumps_json
from ..shared.records import GatheredRecord
from ..shared.store import ObjectStore, open_store
from .cameras import Camera, EndOfStream, Frame, open_camera
from .camerawatch import EXIT_CAMERA_DOWN, CameraWatch
from .capture import Capturer
from .classifier import Classifier
from .gathering import Gatherer
from .guard import RuntimeGuard
from .housekeeping import housekeeping_loop, overlay_state, status_snapshot
from .keypad import Keypad
from .keys import handle_key
from .lifecycle import shutdown_daemon, start_daemon
from .liveview import LiveFrames, LiveServer
from .models import ModelRepo
from .notify import SystemdNotifier
from .outputs import Confirm, Sorter
from .smoothing import ItemGate, Smoother
from .spool import Spool
from .state import EdgeState
from .telemetry import Telemetry
from .updater import Updater
from .uploader import Uploader

logger = logging.getLogger(__name__)


class EdgeDaemon:
    def __init__(
        self,
        config: RecyclopsConfig,
        *,
        store: ObjectStore | None = None,
        camera: Camera | None = None,
        events: TextIO | None = None,
        max_frames: int | None = None,
        pin_factory: Any = None,
        notifier: SystemdNotifier | None = None,
    ) -> None:
        self.config = config
        edge = config.edge
        if problems := config.key_map_problems():  # unpressable categories: say so, now
            raise ConfigError("\n".join(problems))
        self.stop = threading.Event()
        self.keys_stop = threading.Event()  # set first at the end: no gather after the drain
        self.store = store or open_store(config.store)
        self.camera = camera or open_camera(edge.camera)
        self.events = events
        self._events_lock = threading.Lock()
        self.max_frames = max_frames
        self.pin_factory = pin_factory
        self.notifier = notifier or SystemdNotifier()
        self.state = EdgeState(edge.device_id, edge.status.last_predictions)
        self.state_dir = Path(edge.state_dir)
        self.spool = Spool(
            edge.spool_dir,
            int(edge.spool.max_mb * 1e6),
            edge.spool.max_items,
            int(edge.capture.max_mb * 1e6),
            edge.capture.max_items,
        )
        self.gatherer = Gatherer(config, self.spool)
        self.capturer = Capturer(
            edge.capture,
            self.spool,
            edge.device_id,
            edge.classifier.window,
            edge.spool.jpeg_quality,
            on_captured=self._captured,
        )
        self.repo = ModelRepo(edge.model_dir, config.category_names, edge.classifier, edge.updates)
        self.smoother = Smoother(
            config.category_names,
            edge.classifier.smoothing,
            edge.classifier.window,
            edge.classifier.threshold,
        )
        self.gate = ItemGate(
            edge.outputs.stable_frames, edge.outputs.background_category, edge.outputs.scene_change
        )
        self.telemetry = Telemetry(config)
        # The uploader outlives the frame loop: the spool drains before it is told to stop.
        self.upload_stop = threading.Event()
        self.uploader = Uploader(
            self.spool,
            self.store,
            self.upload_stop,
            retry_min=edge.spool.retry_min,
            retry_max=edge.spool.retry_max,
        )
        self.updater = Updater(
            self.repo,
            self.store,
            edge.channel,
            self.stop,
            poll_seconds=edge.updates.poll_seconds,
            poll_seconds_connected=edge.updates.poll_seconds_connected,
            current=self._serving_version,
            on_ready=self._model_ready,
            on_rejected=self._model_rejected,
            mqtt_connected=lambda: self.telemetry.connected,
            on_withdrawn=lambda classifier: self._model_ready(classifier, "rollback"),
            on_stale=self._notice_stale,
        )
        self.guard = RuntimeGuard(edge.updates.guard_frames)
        self.classifier: Classifier | None = None
        self._pending: tuple[Classifier | None, str] | None = None
        self._pending_lock = threading.Lock()
        self._latest: Frame | None = None
        self._latest_lock = threading.Lock()
        self.keypad: Keypad | None = None
        self.sorter: Sorter | None = None
        self.confirm: Confirm | None = None
        self.live: LiveServer | None = None
        self.frames_view: LiveFrames | None = None
        self.camera_ended = False
        self.watch = CameraWatch(self.camera, edge.camera, self.stop, self._camera_changed)
        self.exit_code = 0
        self._housekeeper: threading.Thread | None = None

    # ---- events: one JSON object per line, for scripts and the demo
    def emit(self, event: str, **fields: Any) -> None:
        if self.events is None:
            return
        line = dumps_json({"event": event, "time": time.time(), **fields})
        with self._events_lock:
            try:
                self.events.write(line + "\n")
                self.events.flush()
            except (OSError, ValueError):
                self.events = None

    # ---- models
    def _serving_version(self) -> str | None:
        with self._pending_lock:
            if self._pending is not None:
                return self._pending[0].version if self._pending[0] else None
        return self.classifier.version if self.classifier else None  # a broken install is refetched

    def _model_ready(self, classifier: Classifier | None, via: str) -> None:
        with self._pending_lock:
            self._pending = (classifier, via)

    def _model_rejected(self, version: str, reason: str) -> None:
        with self.state.lock:
            self.state.last_update_error = f"{version}: {reason}"
        self.emit("model_rejected", version=version, reason=reason)
        self.telemetry.event("model_rejected", model_version=version, detail=reason)
        self.telemetry.status(
            "online", self.state.model_version, detail=f"rejected {version}: {reason}"
        )

    def _notice_stale(self, notice: ModelRef, via: str, served: int) -> None:
        self.emit(
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

    def _switch(self, classifier: Classifier | None, via: str) -> None:
        previous = self.classifier.version if self.classifier else None
        self.classifier = classifier
        self.guard.reset()
        version, backend = (classifier.version, classifier.backend) if classifier else (None, None)
        if classifier is not None:
            self.smoother.reset(classifier.categories)
        self.capturer.reset()
        with self.state.lock:
            self.state.model_version, self.state.model_backend = version, backend
            self.state.model_switches.append(
                {"version": version, "via": via, "time": datetime.now(UTC).isoformat()}
            )
        logger.info("serving model %s (was %s, via %s, %s)", version, previous, via, backend)
        self.emit("model", version=version, previous=previous, via=via, backend=backend)
        if classifier is not None:
            self.telemetry.event("model_accepted", model_version=version, detail=f"via {via}")
        why = self.state.last_update_error if via == "rollback" else None  # keep saying why
        self.telemetry.status("online", version, why)

    def _camera_changed(self, state: str, reason: str | None) -> None:
        self.emit("camera_down" if state == "down" else "camera_up", reason=reason)
        detail = f"camera down: {reason}" if reason else None
        self.telemetry.status("online", self.state.model_version, detail)

    def _captured(self, record: GatheredRecord, frame: int, source: str | None) -> None:
        assert record.capture is not None
        self.emit(
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

    # ---- keys
    def on_key(self, key: str) -> None:
        handle_key(self, key)

    def latest_frame(self) -> Frame | None:
        with self._latest_lock:
            return self._latest

    # ---- the frame loop
    def _classify(self, frame: Frame) -> None:
        assert self.classifier is not None
        start = time.perf_counter()
        pred = self.classifier.classify(frame.for_inference)
        if reason := self.guard.observe(pred.probs, self.classifier.version):
            self.updater.withdraw(self.classifier.version, reason)
        smoothed = self.smoother.add(pred.probs)
        path_ms = (time.perf_counter() - start) * 1000
        record = {
            "frame": frame.index,
            "source": frame.source,
            "label": smoothed.label,
            "score": round(smoothed.score, 4),
            "raw_label": pred.label,
            "raw_score": round(pred.score, 4),
            "model_version": self.classifier.version,
            "inference_ms": round(pred.inference_ms, 3),
            "path_ms": round(path_ms, 3),
        }
        self.state.classified(record, pred.inference_ms, path_ms)
        self.emit("classification", **record)
        self.capturer.observe(  # cheap; the capture itself happens on its own thread
            frame.full,
            frame.for_inference,
            pred.probs,
            self.classifier.categories,
            self.classifier.version,
            frame.index,
            frame.source,
        )
        item = self.gate.update(smoothed.label, frame.for_inference)
        if item is not None:
            with self.state.lock:
                self.state.items[item] += 1
            if self.sorter:
                self.sorter.fire(item)
            if self.config.edge.status.publish_classifications:
                self.telemetry.event(
                    "classification",
                    label=item,
                    score=smoothed.score,
                    model_version=self.classifier.version,
                )

    def _step(self) -> bool:
        """One frame; False when the loop should end."""
        with self._pending_lock:
            pending, self._pending = self._pending, None
        if pending is not None:
            self._switch(*pending)
        if self.camera_ended:
            return not self.stop.wait(0.2)
        try:
            frame = self.watch.read()  # never raises but EndOfStream; backs off when down
        except EndOfStream:
            logger.info("camera stream ended (%s)", self.config.edge.camera.at_end)
            self.emit("camera_end")
            self.camera_ended = True
            return self.config.edge.camera.at_end == "hold"
        if frame is None:
            return not self.watch.down or self._degraded()
        self.notifier.frame_arrived()
        self.state.frame()
        with self._latest_lock:
            self._latest = frame
        if self.classifier is not None:
            try:
                self._classify(frame)
            except Exception:
                logger.exception("classification of frame %d failed", frame.index)
        if self.frames_view is not None:
            self.frames_view.push(frame.full)
        return not (self.max_frames and self.state.frames >= self.max_frames)

    def _degraded(self) -> bool:
        """Camera down: this loop is alive (it keeps retrying), so it feeds the watchdog,
        until the camera has been down too long and the spool has nothing left to upload
        (or cannot upload): then exit non-zero for systemd to restart a fresh process."""
        self.notifier.alive()
        failing = self.uploader.last_error is not None or self.uploader.store_missing is not None
        why = self.watch.give_up(self.spool.depth(), failing)
        if why is None:
            return True
        logger.error("%s: exiting %d so systemd restarts the daemon", why, EXIT_CAMERA_DOWN)
        self.emit("camera_gave_up", reason=why)
        self.exit_code = EXIT_CAMERA_DOWN
        return False

    # ---- housekeeping
    def status_snapshot(self) -> dict[str, Any]:
        return status_snapshot(self)

    def _housekeeping(self) -> None:
        housekeeping_loop(self)

    def _overlay(self) -> tuple[dict[str, Any] | None, bool, str | None]:
        return overlay_state(self)

    # ---- start and stop
    def _start(self) -> None:
        start_daemon(self)

    def install_signal_handlers(self) -> None:
        def handler(signum: int, _frame: Any) -> None:
            logger.info("signal %s: stopping", signal.Signals(signum).name)
            self.stop.set()

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, handler)
            signal.signal(signal.SIGINT, handler)

    def wait_for_model(self, seconds: float) -> bool:
        """Hold the camera until a model serves (demos: classify every replayed frame)."""
        deadline = time.monotonic() + seconds
        while not self.stop.is_set() and time.monotonic() < deadline:
            with self._pending_lock:
                pending, self._pending = self._pending, None
            if pending is not None:
                self._switch(*pending)
            if self.classifier is not None:
                return True
            self.stop.wait(0.05)
        logger.warning("no model after %.0fs; running without one", seconds)
        return False

    def run(self, drain_seconds: float = 5.0, wait_model: float | None = None) -> int:
        self.install_signal_handlers()
        try:
            self._start()
            if wait_model:
                self.wait_for_model(wait_model)
            while not self.stop.is_set() and self._step():
                pass
            self.keys_stop.set()
            if self.keypad:
                self.keypad.thread.join(2)
            self._drain(drain_seconds)
            return self.exit_code
        finally:
            self.shutdown()

    def _drain(self, seconds: float) -> None:
        """Give the uploader a moment to finish before exiting; what is left stays spooled."""
        deadline = time.monotonic() + seconds
        while (
            self.spool.depth() and time.monotonic() < deadline and self.uploader.thread.is_alive()
        ):
            time.sleep(0.1)

    def shutdown(self) -> None:
        shutdown_daemon(self)


def stdout_events() -> TextIO:
    return sys.stdout
