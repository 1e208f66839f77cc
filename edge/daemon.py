"""The edge daemon: wires the parts, starts the workers, runs the frame loop on this thread,
and stops everything in order on its one stop event (set by SIGTERM/SIGINT, or by the frame
loop's own end).

Workers (each its own thread and stop event, see ``worker.py``): uploader, quality
reporter, updater, shadow (a candidate model, when ``edge.shadow.channel`` is set), keypad,
housekeeper, live view. Start order keeps the spool draining:
the uploader first (a dead camera, a read-only spool or a missing bucket must not hold it
back), then the camera through its watch (a failure to open is a degraded state, not an
exit). Stop order: the keypad (no gather after the drain), the last telemetry period, the
spool drain, then the rest, every join bounded.
"""

import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from ..shared.config import RecyclopsConfig
from ..shared.errors import ConfigError
from ..shared.store import ObjectStore, open_store
from .cameras import Camera, Frame, open_camera
from .camerawatch import CameraWatch
from .capture import Capturer
from .events import EventLog, Reports
from .frameloop import FrameLoop
from .gathering import Gatherer, legend
from .guard import RuntimeGuard
from .housekeeping import Housekeeper, Status
from .keypad import Keypad, open_keypad
from .keys import KeyHandler
from .liveview import LiveFrames, LiveView
from .models import ModelRepo
from .modelslot import ModelSlot
from .notify import SystemdNotifier
from .outputs import Confirm, Sorter
from .quality import QualityCounter
from .qualityreport import QualityReporter, gauges_of, new_run_id
from .shadow import Shadow
from .smoothing import ItemGate, Smoother
from .spool import Spool
from .state import EdgeState
from .telemetry import Telemetry
from .updater import Updater
from .uploader import Uploader
from .worker import Worker

logger = logging.getLogger(__name__)


class EdgeDaemon:
    """The app object: ``__init__`` wires (and claims the GPIO pins and the live view port),
    ``run`` starts, loops and stops. ``pin_factory`` reaches every gpiozero device."""

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
        self.stop = threading.Event()  # the one stop: signals, tests, the frame loop's end
        self.store = store or open_store(config.store)
        self.camera = camera or open_camera(edge.camera)
        self.events = EventLog(events)
        self.notifier = notifier or SystemdNotifier()
        self.state = EdgeState(edge.device_id, edge.status.last_predictions)
        self.state_dir = Path(edge.state_dir)
        self.telemetry = Telemetry(config)
        reports = Reports(self.events, self.telemetry, self.state)
        self.spool = Spool(
            edge.spool_dir,
            int(edge.spool.max_mb * 1e6),
            edge.spool.max_items,
            int(edge.capture.max_mb * 1e6),
            edge.capture.max_items,
            edge.telemetry.max_items,
        )
        self.gatherer = Gatherer(config, self.spool)
        self.capturer = Capturer(
            edge.capture,
            self.spool,
            edge.device_id,
            edge.classifier.window,
            edge.spool.jpeg_quality,
            on_captured=reports.captured,
        )
        self.repo = ModelRepo(edge.model_dir, config.category_names, edge.classifier, edge.updates)
        self.slot = ModelSlot()
        self.uploader = Uploader(
            self.spool, self.store, retry_min=edge.spool.retry_min, retry_max=edge.spool.retry_max
        )
        self.updater = Updater(
            self.repo,
            self.store,
            edge.channel,
            poll_seconds=edge.updates.poll_seconds,
            poll_seconds_connected=edge.updates.poll_seconds_connected,
            current=self.slot.version,
            on_ready=self.slot.offer,
            on_rejected=reports.model_rejected,
            mqtt_connected=lambda: self.telemetry.connected,
            on_withdrawn=lambda classifier: self.slot.offer(classifier, "rollback"),
            on_stale=reports.notice_stale,
            jitter_seconds=edge.updates.jitter_seconds,
        )
        self.guard = RuntimeGuard(edge.updates.guard_frames)
        self.watch = CameraWatch(self.camera, edge.camera, self.stop, reports.camera_changed)
        # the GPIO outputs, the live view and the keypad: one pin factory for every device
        self.sorter = (
            Sorter(edge.outputs, pin_factory)
            if edge.outputs.enabled and edge.outputs.pins
            else None
        )
        self.confirm = Confirm(edge.keypad, pin_factory)
        self.quality: QualityReporter | None = None
        if edge.telemetry.enabled:  # counts every event the parts emit, reports per period
            counter = QualityCounter(edge.device_id, new_run_id(), edge.classifier.threshold)
            self.events.listen(counter.observe)
            gauges = gauges_of(self.state, self.uploader, self.capturer, self.spool, self.repo)
            self.quality = QualityReporter(
                counter,
                edge.telemetry,
                self.spool,
                self.telemetry,
                gauges,
                self.state.started,
                channel=edge.channel,
            )
        self.shadow: Shadow | None = None
        if edge.shadow.channel:  # a candidate beside the serving model, never served
            self.shadow = Shadow(
                ModelRepo(
                    Path(edge.model_dir) / "shadow",
                    config.category_names,
                    edge.classifier.model_copy(update={"threads": 1}),  # measured time = CPU
                    edge.updates.model_copy(update={"keep_versions": 1}),
                ),
                self.store,
                edge.shadow,
                self.events,
                poll_seconds=edge.updates.poll_seconds,
                sink=self.quality.counter if self.quality else None,
            )
        self.live: LiveView | None = None
        live_frames: LiveFrames | None = None
        if edge.live_view.enabled:
            live_frames = LiveFrames(edge.live_view, legend(config), self._overlay)
            self.live = LiveView(edge.live_view, live_frames, self._snapshot)
        self.status = Status(
            self.state,
            self.spool,
            self.uploader,
            self.watch,
            self.capturer,
            self.telemetry,
            self.updater,
            self.repo,
            self.guard,
            self.live.url if self.live else None,
            self.quality,
            self.shadow,
        )
        self.loop = FrameLoop(
            stop=self.stop,
            watch=self.watch,
            camera=edge.camera,
            slot=self.slot,
            state=self.state,
            events=self.events,
            telemetry=self.telemetry,
            notifier=self.notifier,
            smoother=Smoother(
                config.category_names,
                edge.classifier.smoothing,
                edge.classifier.window,
                edge.classifier.threshold,
            ),
            gate=ItemGate(
                edge.outputs.stable_frames,
                edge.outputs.background_category,
                edge.outputs.scene_change,
            ),
            guard=self.guard,
            capturer=self.capturer,
            withdraw=self.updater.withdraw,
            uploads_stuck=self._uploads_stuck,
            sorter=self.sorter,
            live_frames=live_frames,
            shadow=self.shadow,
            publish_classifications=edge.status.publish_classifications,
            max_frames=max_frames,
        )
        self.keys = KeyHandler(
            self.gatherer,
            self.state,
            self.events,
            self.telemetry,
            self.loop.latest_frame,
            edge.keypad.max_frame_age,
            self.confirm,
        )
        self.keypad: Keypad | None = open_keypad(edge.keypad, self.keys, pin_factory)
        self.housekeeper = Housekeeper(
            self.status,
            edge.status,
            self.state_dir,
            self.notifier,
            self.telemetry,
            legend(config),
            self.camera.set_overlay if edge.camera.preview else None,
        )

    # ---- what the workers and tests look at
    def on_key(self, key: str) -> None:
        """A key press, as from the keypad (scripts and tests press keys here)."""
        self.keys(key)

    @property
    def camera_ended(self) -> bool:
        return self.state.camera_ended

    def latest_frame(self) -> Frame | None:
        return self.loop.latest_frame()

    def _snapshot(self) -> dict[str, Any]:
        return self.status.snapshot()  # late-bound: the live view exists before the status

    def _overlay(self) -> tuple[dict[str, Any] | None, bool, str | None]:
        return self.status.overlay()

    def _uploads_stuck(self) -> tuple[int, bool]:
        failing = self.uploader.last_error is not None or self.uploader.store_missing is not None
        return self.spool.depth(), failing

    # ---- start, run, stop
    def install_signal_handlers(self) -> None:
        def handler(signum: int, _frame: Any) -> None:
            logger.info("signal %s: stopping", signal.Signals(signum).name)
            self.stop.set()

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, handler)
            signal.signal(signal.SIGINT, handler)

    def start(self) -> None:
        edge = self.config.edge
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.uploader.start()  # before the camera: a dead camera must not hold the spool back
        if self.quality:
            self.quality.start()
        if problem := self.spool.probe():  # logged by the spool; gathers will be refused
            self.events.emit("spool_unwritable", reason=problem)
        self.capturer.start()
        self.watch.open()  # a camera that cannot open: degraded, reopened with backoff
        self.telemetry.start(self.updater.on_mqtt)
        installed = self.repo.load_current()
        if installed is not None:
            self.slot.offer(installed, "installed")
            self.loop.take_model()  # serves it now; also publishes the status, with the model
        else:
            self.telemetry.status("online", None)
        self.updater.start()
        if self.shadow:
            self.shadow.start()
        if self.live:
            self.live.start()
        if self.keypad:
            self.keypad.start()
        self.state.set_state("running")
        self.status.write(self.state_dir)
        model_version = self.state.model_version
        self.events.emit(
            "ready",
            device=edge.device_id,
            model_version=model_version,
            live_view=self.live.url if self.live else None,
            pid=os.getpid(),
            camera=self.watch.state,
        )
        self.notifier.ready(f"serving model {model_version}")
        self.housekeeper.start()

    def run(self, drain_seconds: float = 5.0, wait_model: float | None = None) -> int:
        self.install_signal_handlers()
        try:
            self.start()
            if wait_model:
                self.loop.wait_for_model(wait_model)
            code = self.loop.run()
            self.stop.set()
            self.updater.stop()  # no model fetch competes with the drain
            if self.shadow:
                self.shadow.stop()
            if self.keypad:  # no gather after the drain
                self.keypad.stop()
                self.keypad.join(2)
            if self.quality:  # the last (partial) period goes into the spool before the drain
                self.quality.stop()
                self.quality.join(2)
            self._drain(drain_seconds)
            return code
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
        """Stop every part, in order, each join bounded; a failing step never skips the rest."""
        self.stop.set()
        workers: list[tuple[Worker, float]] = [
            (w, t)
            for w, t in (
                (self.keypad, 2),
                (self.uploader, 10),
                (self.quality, 2),
                (self.updater, 10),
                (self.shadow, 10),
                (self.housekeeper, 10),
                (self.live, 5),
            )
            if w is not None
        ]
        for worker, _ in workers:
            worker.stop()
        self.notifier.stopping()
        steps: list[tuple[str, Any]] = [
            ("camera", self.camera.close),
            ("capture", self.capturer.stop),
        ]
        for worker, timeout in workers:
            steps += [
                (worker.name, lambda w=worker, t=timeout: w.join(t)),
                (worker.name, worker.close),
            ]
        if self.sorter:
            steps.append(("sorter", self.sorter.close))
        steps.append(("confirm", self.confirm.close))
        steps.append(("mqtt", lambda: self.telemetry.stop(self.state.model_version)))
        for name, action in steps:
            try:
                action()
            except Exception:
                logger.exception("shutdown: %s failed", name)
        self.state.set_state("stopped")
        try:
            self.status.write(self.state_dir)
        except OSError:
            logger.exception("final status write failed")
        frames = self.state.frames
        self.events.emit("stopped", frames=frames)
        self.notifier.close()
        logger.info("stopped after %d frames", frames)


def stdout_events() -> TextIO:
    return sys.stdout
