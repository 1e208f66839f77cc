"""The frame loop, on the daemon's main thread: read a frame, classify it, smooth it, fire
the sorter, offer it to auto-capture and the live view, and feed the systemd watchdog.

It alone holds the classifier: a new one comes only through the model slot, taken between
two frames. It ends on the daemon's stop event, at ``max_frames``, at the end of a replay
(``camera.at_end = stop``), or when the camera has been down too long (exit code 3).
"""

import logging
import threading
import time
from collections.abc import Callable

from ..shared.config.edge import CameraConfig
from .cameras import EndOfStream, Frame
from .camerawatch import EXIT_CAMERA_DOWN, CameraWatch
from .capture import Capturer
from .classifier import Classifier
from .events import Emit
from .guard import RuntimeGuard
from .liveview import LiveFrames
from .modelslot import ModelSlot
from .notify import SystemdNotifier
from .outputs import Sorter
from .shadow import Shadow
from .smoothing import ItemGate, Smoother
from .state import EdgeState
from .telemetry import Telemetry

logger = logging.getLogger(__name__)


class FrameLoop:
    def __init__(
        self,
        *,
        stop: threading.Event,
        watch: CameraWatch,
        camera: CameraConfig,
        slot: ModelSlot,
        state: EdgeState,
        events: Emit,
        telemetry: Telemetry,
        notifier: SystemdNotifier,
        smoother: Smoother,
        gate: ItemGate,
        guard: RuntimeGuard,
        capturer: Capturer,
        withdraw: Callable[[str, str], None],
        uploads_stuck: Callable[[], tuple[int, bool]],
        sorter: Sorter | None = None,
        live_frames: LiveFrames | None = None,
        shadow: Shadow | None = None,
        publish_classifications: bool = True,
        max_frames: int | None = None,
    ) -> None:
        self.stop = stop
        self.watch = watch
        self.camera = camera
        self.slot = slot
        self.state = state
        self.events = events
        self.telemetry = telemetry
        self.notifier = notifier
        self.smoother = smoother
        self.gate = gate
        self.guard = guard
        self.capturer = capturer
        self.withdraw = withdraw  # the updater's: a guard trip rolls back on its thread
        self.uploads_stuck = uploads_stuck  # (spool depth, uploads failing)
        self.sorter = sorter
        self.live_frames = live_frames
        self.shadow = shadow  # offered a frame after classifying it; never waits
        self.publish_classifications = publish_classifications
        self.max_frames = max_frames
        self.classifier: Classifier | None = None
        self.exit_code = 0
        self._latest: Frame | None = None
        self._latest_lock = threading.Lock()

    def latest_frame(self) -> Frame | None:
        """The newest frame (for key presses, on the keypad's thread)."""
        with self._latest_lock:
            return self._latest

    # ---- models
    def take_model(self) -> bool:
        """Serve what the slot holds, if anything; the only place the classifier changes."""
        offer = self.slot.take()
        if offer is None:
            return False
        classifier, via = offer
        previous = self.classifier.version if self.classifier else None
        self.classifier = classifier
        self.guard.reset()
        version, backend = (classifier.version, classifier.backend) if classifier else (None, None)
        if classifier is not None:
            self.smoother.reset(classifier.categories)
        self.capturer.reset()
        self.state.switched(version, backend, via)
        logger.info("serving model %s (was %s, via %s, %s)", version, previous, via, backend)
        self.events.emit("model", version=version, previous=previous, via=via, backend=backend)
        if classifier is not None:
            self.telemetry.event("model_accepted", model_version=version, detail=f"via {via}")
        why = self.state.last_update_error if via == "rollback" else None  # keep saying why
        self.telemetry.status("online", version, why)
        return True

    def wait_for_model(self, seconds: float) -> bool:
        """Hold the camera until a model serves (demos: classify every replayed frame)."""
        deadline = time.monotonic() + seconds
        while not self.stop.is_set() and time.monotonic() < deadline:
            self.take_model()
            if self.classifier is not None:
                return True
            self.stop.wait(0.05)
        logger.warning("no model after %.0fs; running without one", seconds)
        return False

    # ---- the loop
    def run(self) -> int:
        """Until the stop event or the loop's own end; the exit code."""
        while not self.stop.is_set() and self.step():
            pass
        return self.exit_code

    def step(self) -> bool:
        """One frame; False when the loop should end."""
        self.take_model()
        if self.state.camera_ended:
            return not self.stop.wait(0.2)
        try:
            frame = self.watch.read()  # never raises but EndOfStream; backs off when down
        except EndOfStream:
            logger.info("camera stream ended (%s)", self.camera.at_end)
            self.events.emit("camera_end")
            self.state.camera_end()
            return self.camera.at_end == "hold"
        if frame is None:
            return not self.watch.down or self._degraded()
        self.notifier.frame_arrived()
        frames = self.state.frame()
        with self._latest_lock:
            self._latest = frame
        if self.classifier is not None:
            try:
                self._classify(self.classifier, frame)
            except Exception as exc:
                logger.exception("classification of frame %d failed", frame.index)
                self.events.emit("classification_failed", frame=frame.index, error=str(exc)[:300])
        if self.live_frames is not None:
            self.live_frames.push(frame.full)
        return not (self.max_frames and frames >= self.max_frames)

    def _classify(self, classifier: Classifier, frame: Frame) -> None:
        start = time.perf_counter()
        pred = classifier.classify(frame.for_inference)
        if reason := self.guard.observe(pred.probs, classifier.version):
            self.withdraw(classifier.version, reason)
        smoothed = self.smoother.add(pred.probs)
        path_ms = (time.perf_counter() - start) * 1000
        record = {
            "frame": frame.index,
            "source": frame.source,
            "label": smoothed.label,
            "score": round(smoothed.score, 4),
            "raw_label": pred.label,
            "raw_score": round(pred.score, 4),
            "model_version": classifier.version,
            "inference_ms": round(pred.inference_ms, 3),
            "path_ms": round(path_ms, 3),
        }
        self.state.classified(record, pred.inference_ms, path_ms)
        self.events.emit("classification", **record)
        self.capturer.observe(  # cheap; the capture itself happens on its own thread
            frame.full,
            frame.for_inference,
            pred.probs,
            classifier.categories,
            classifier.version,
            frame.index,
            frame.source,
        )
        if self.shadow is not None:
            self.shadow.offer(frame.for_inference, pred.label, classifier.version)
        item = self.gate.update(smoothed.label, frame.for_inference)
        if item is not None:
            self.state.item(item)
            if self.sorter:
                self.sorter.fire(item)
            if self.publish_classifications:
                self.telemetry.event(
                    "classification",
                    label=item,
                    score=smoothed.score,
                    model_version=classifier.version,
                )

    def _degraded(self) -> bool:
        """Camera down: this loop is alive (it keeps retrying), so it feeds the watchdog,
        until the camera has been down too long and the spool has nothing left to upload
        (or cannot upload): then exit non-zero for systemd to restart a fresh process."""
        self.notifier.alive()
        depth, failing = self.uploads_stuck()
        why = self.watch.give_up(depth, failing)
        if why is None:
            return True
        logger.error("%s: exiting %d so systemd restarts the daemon", why, EXIT_CAMERA_DOWN)
        self.events.emit("camera_gave_up", reason=why)
        self.exit_code = EXIT_CAMERA_DOWN
        return False
