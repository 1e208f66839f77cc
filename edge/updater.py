"""Follow a model channel: the retained MQTT notice when a broker is up, the store's channel
pointer by polling when it is not. The new model is prepared here, off the frame loop, and
handed over; the frame loop switches between two frames.
"""

import logging
import queue
import threading
import time
from collections.abc import Callable

from ..shared import layout, messages
from ..shared.errors import ManifestError, MessageError, ObjectNotFoundError, RecyclopsError
from ..shared.manifest import parse_pointer
from ..shared.messages import ModelNotice
from ..shared.store import ObjectStore
from .classifier import Classifier
from .models import ModelRepo, UpdateRejected

logger = logging.getLogger(__name__)


class Updater:
    def __init__(
        self,
        repo: ModelRepo,
        store: ObjectStore,
        channel: str,
        stop: threading.Event,
        *,
        poll_seconds: float,
        poll_seconds_connected: float,
        current: Callable[[], str | None],
        on_ready: Callable[[Classifier, str], None],
        on_rejected: Callable[[str, str], None],
        mqtt_connected: Callable[[], bool] = lambda: False,
    ) -> None:
        self.repo = repo
        self.store = store
        self.channel = channel
        self.stop = stop
        self.poll_seconds = poll_seconds
        self.poll_seconds_connected = poll_seconds_connected
        self.current = current
        self.on_ready = on_ready
        self.on_rejected = on_rejected
        self.mqtt_connected = mqtt_connected
        self.notices: queue.Queue[tuple[ModelNotice, str]] = queue.Queue()
        self.ignored = 0
        self.last_check: float | None = None
        self.last_result: str | None = None
        self._last_wanted: str | None = None
        self.thread = threading.Thread(target=self._loop, name="updater", daemon=True)

    def start(self) -> None:
        self.thread.start()

    # ---- MQTT: validate everything, trust nothing
    def on_mqtt(self, topic: str, payload: bytes) -> None:
        if not payload:
            return  # a cleared retained message
        try:
            notice = messages.parse_message(ModelNotice, payload, topic)
            if notice.channel != self.channel:
                raise MessageError(
                    f"{topic}: notice for channel {notice.channel!r}, following {self.channel!r}"
                )
            if notice.manifest_key != layout.manifest_key(notice.version):
                raise MessageError(
                    f"{topic}: manifest key {notice.manifest_key!r} does not belong to "
                    f"version {notice.version!r}"
                )
        except MessageError as exc:
            self.ignored += 1
            logger.warning("ignored model notice: %s", exc)
            return
        self.notices.put((notice, "mqtt"))

    # ---- polling
    def poll_pointer(self) -> ModelNotice | None:
        key = layout.channel_key(self.channel)
        try:
            pointer = parse_pointer(self.store.get(key), key)
        except ObjectNotFoundError:
            return None
        if pointer.channel != self.channel:
            raise ManifestError(f"{key}: names channel {pointer.channel!r}")
        return ModelNotice(
            channel=pointer.channel,
            version=pointer.version,
            manifest_key=pointer.manifest_key,
            manifest_sha256=pointer.manifest_sha256,
            published_at=pointer.published_at,
        )

    def handle(self, notice: ModelNotice, via: str) -> bool:
        """Install if new; True when a new model was handed over."""
        if not self.repo.wanted(notice, self.current()):
            return False
        started = time.monotonic()
        logger.info("model %s announced (%s): fetching", notice.version, via)
        try:
            classifier = self.repo.install(notice, self.store)
        except UpdateRejected as exc:
            self.last_result = f"rejected {notice.version}: {exc}"
            logger.error(
                "model %s rejected, the current model keeps serving: %s", notice.version, exc
            )
            self.on_rejected(notice.version, str(exc))
            return False
        self.last_result = (
            f"installed {notice.version} in {time.monotonic() - started:.2f}s via {via}"
        )
        self._last_wanted = None  # whatever was owed is superseded by what now serves
        self.on_ready(classifier, via)
        return True

    def _poll(self) -> bool:
        """One look at the channel pointer; True while a fetch is still owed (retry soon)."""
        self.last_check = time.time()
        try:
            notice = self.poll_pointer()
            if notice is not None:
                self.handle(notice, "poll")
            return False
        except RecyclopsError as exc:  # store down or a bad pointer: try again later
            self.last_result = f"poll failed: {exc}"
            logger.warning("model poll failed: %s", exc)
        except Exception:
            logger.exception("model poll crashed; retrying later")
        return True

    def _loop(self) -> None:
        next_poll = 0.0
        owed = False  # a notice could not be fetched: poll at the short interval until done
        while not self.stop.is_set():
            if time.monotonic() >= next_poll:
                failed = self._poll()
                owed = failed or (owed and self._last_wanted not in (None, self.current()))
                fast = owed or not self.mqtt_connected()
                interval = self.poll_seconds if fast else self.poll_seconds_connected
                next_poll = time.monotonic() + interval
            try:
                notice, via = self.notices.get(
                    timeout=min(0.5, max(0.05, next_poll - time.monotonic()))
                )
            except queue.Empty:
                if not self.mqtt_connected():
                    next_poll = min(next_poll, time.monotonic() + self.poll_seconds)
                continue
            try:
                self.handle(notice, via)
            except RecyclopsError as exc:
                self.last_result = f"fetch failed: {exc}"
                logger.warning(
                    "model %s fetch failed (%s); will retry by polling", notice.version, exc
                )
                # A retained notice is not sent again: poll soon, even while MQTT is up.
                owed = True
                self._last_wanted = notice.version
                next_poll = min(next_poll, time.monotonic() + self.poll_seconds)
            except Exception:
                logger.exception("model update crashed; the current model keeps serving")
