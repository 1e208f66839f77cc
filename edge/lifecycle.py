"""Starting and stopping the daemon's parts, in an order that keeps the spool draining:
the uploader first (nothing else may hold it back: not a dead camera, not a read-only
spool, not a missing bucket), the camera through its watch (a failure to open is a degraded
state, not an exit), and every part shut down with bounded joins."""

import logging
import os
import threading
from typing import TYPE_CHECKING, Any

from .gathering import legend
from .keypad import open_keypad
from .liveview import LiveFrames, LiveServer
from .outputs import Confirm, Sorter
from .state import write_status

if TYPE_CHECKING:
    from .daemon import EdgeDaemon

logger = logging.getLogger(__name__)


def start_daemon(daemon: "EdgeDaemon") -> None:
    edge = daemon.config.edge
    daemon.state_dir.mkdir(parents=True, exist_ok=True)
    daemon.uploader.start()  # before the camera: a dead camera must not hold the spool back
    if problem := daemon.spool.probe():  # logged by the spool; gathers will be refused
        daemon.emit("spool_unwritable", reason=problem)
    daemon.capturer.start()
    daemon.watch.open()  # a camera that cannot open: degraded, reopened with backoff
    daemon.telemetry.start(daemon.updater.on_mqtt)
    installed = daemon.repo.load_current()
    if installed is not None:
        daemon._switch(installed, "installed")  # also publishes the status, with the model
    else:
        daemon.telemetry.status("online", None)
    daemon.updater.start()
    if edge.outputs.enabled and edge.outputs.pins:
        daemon.sorter = Sorter(edge.outputs, daemon.pin_factory)
    daemon.confirm = Confirm(edge.keypad, daemon.pin_factory)
    if edge.live_view.enabled:
        daemon.frames_view = LiveFrames(edge.live_view, legend(daemon.config), daemon._overlay)
        daemon.live = LiveServer(edge.live_view, daemon.frames_view, daemon.status_snapshot)
        daemon.live.start()
    daemon.keypad = open_keypad(edge.keypad, daemon.on_key, daemon.keys_stop)
    if daemon.keypad:
        daemon.keypad.start()
    with daemon.state.lock:
        daemon.state.state = "running"
    write_status(daemon.state_dir, daemon.status_snapshot())
    daemon.emit(
        "ready",
        device=edge.device_id,
        model_version=daemon.state.model_version,
        live_view=daemon.live.url if daemon.live else None,
        pid=os.getpid(),
        camera=daemon.watch.state,
    )
    daemon.notifier.ready(f"serving model {daemon.state.model_version}")
    daemon._housekeeper = threading.Thread(
        target=daemon._housekeeping, name="housekeeping", daemon=True
    )
    daemon._housekeeper.start()


def shutdown_daemon(daemon: "EdgeDaemon") -> None:
    daemon.keys_stop.set()
    daemon.stop.set()
    daemon.upload_stop.set()
    daemon.spool.changed.set()  # wakes the uploader from its idle wait
    daemon.notifier.stopping()
    steps: list[tuple[str, Any]] = [
        ("camera", daemon.camera.close),
        ("capture", daemon.capturer.stop),
    ]
    keypad = daemon.keypad
    if keypad:
        steps += [("keypad", lambda: keypad.thread.join(2)), ("keypad", keypad.close)]
    for name, thread in (
        ("uploader", daemon.uploader.thread),
        ("updater", daemon.updater.thread),
        ("housekeeping", daemon._housekeeper),
    ):
        if thread is not None and thread.is_alive():
            steps.append((name, lambda t=thread: t.join(10)))
    if daemon.live:
        steps.append(("live view", daemon.live.stop))
    if daemon.sorter:
        steps.append(("sorter", daemon.sorter.close))
    if daemon.confirm:
        steps.append(("confirm", daemon.confirm.close))
    steps.append(("mqtt", lambda: daemon.telemetry.stop(daemon.state.model_version)))
    for name, action in steps:
        try:
            action()
        except Exception:
            logger.exception("shutdown: %s failed", name)
    with daemon.state.lock:
        daemon.state.state = "stopped"
    try:
        write_status(daemon.state_dir, daemon.status_snapshot())
    except OSError:
        logger.exception("final status write failed")
    daemon.emit("stopped", frames=daemon.state.frames)
    daemon.notifier.close()
    logger.info("stopped after %d frames", daemon.state.frames)
