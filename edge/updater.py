"""Follow a model channel: the retained MQTT notice when a broker is up, the store's channel
pointer by polling when it is not. The new model is prepared here, off the frame loop, and
handed over (``on_ready``: the daemon's model slot); the frame loop switches between two
frames. The updater is a worker: its own thread and stop event.

Generations: a notice or pointer older than the generation this bin serves is a replay (or
a stale pointer) and is ignored, logged and counted; rolling back is a higher generation
naming an older version, installed like any other. The runtime guard's withdrawals run here
too, so only this thread ever changes the installed models.
"""

import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..shared import layout, messages
from ..shared.channels_read import read_pointer  # the shadow worker follows its channel too
from ..shared.errors import MessageError, RecyclopsError
from ..shared.manifest import ModelRef
from ..shared.store import ObjectStore
from .classifier import Classifier
from .models import ModelRepo, UpdateRejected
from .worker import Worker

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Withdrawal:
    """The frame loop's request: ``version`` misbehaved on live frames; roll back off it."""

    version: str
    reason: str


class Updater(Worker):
    def __init__(
        self,
        repo: ModelRepo,
        store: ObjectStore,
        channel: str,
        stop: threading.Event | None = None,
        *,
        poll_seconds: float,
        poll_seconds_connected: float,
        current: Callable[[], str | None],
        on_ready: Callable[[Classifier, str], None],
        on_rejected: Callable[[str, str], None],
        mqtt_connected: Callable[[], bool] = lambda: False,
        on_withdrawn: Callable[[Classifier | None], None] = lambda c: None,
        on_stale: Callable[[ModelRef, str, int], None] = lambda n, via, g: None,
        jitter_seconds: float = 0.0,
    ) -> None:
        super().__init__("updater", stop)
        self.repo = repo
        self.store = store
        self.channel = channel
        self.poll_seconds = poll_seconds
        self.poll_seconds_connected = poll_seconds_connected
        self.current = current
        self.on_ready = on_ready
        self.on_rejected = on_rejected
        self.mqtt_connected = mqtt_connected
        self.on_withdrawn = on_withdrawn
        self.on_stale = on_stale
        self.jitter_seconds = jitter_seconds
        self.jitter = random.Random()  # spreads load; not a secret
        self.last_jitter: float | None = None  # the last delay drawn (status, tests)
        self.notices: queue.Queue[tuple[ModelRef | Withdrawal, str]] = queue.Queue()
        self.ignored = 0
        self.stale = 0  # notices/pointers older than the served generation
        self._stale_seen: set[tuple[int, str, str]] = set()
        self.last_check: float | None = None
        self.last_result: str | None = None
        self._last_wanted: str | None = None

    # ---- MQTT: validate everything, trust nothing
    def on_mqtt(self, topic: str, payload: bytes) -> None:
        if not payload:
            return  # a cleared retained message
        try:
            notice = messages.parse_message(ModelRef, payload, topic)
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
    def poll_pointer(self) -> ModelRef | None:
        return read_pointer(self.store, self.channel)

    def withdraw(self, version: str, reason: str) -> None:
        """From the frame loop: roll back off ``version`` (done on this updater's thread)."""
        self.notices.put((Withdrawal(version, reason), "guard"))

    def _withdraw(self, request: Withdrawal) -> None:
        serving = self.current() == request.version
        logger.error("model %s withdrawn: %s", request.version, request.reason)
        classifier = self.repo.withdraw(request.version, request.reason)
        self.last_result = f"withdrew {request.version}: {request.reason}"
        self.on_rejected(request.version, request.reason)
        if serving:  # else a newer model already replaced it: nothing to switch
            self.on_withdrawn(classifier)

    def _is_stale(self, notice: ModelRef, via: str) -> bool:
        """Older than the generation served (a replayed notice, a stale pointer), or a second
        version claiming the served generation: log and count it once, never install it."""
        served = self.repo.generation()
        if notice.generation > served or (notice.generation == served == 0):
            return False
        if notice.generation == served and notice.version == self.current():
            return False
        key = (notice.generation, notice.version, notice.manifest_sha256)
        if key not in self._stale_seen:
            if len(self._stale_seen) >= 1000:  # a flood of forged notices cannot grow memory
                self._stale_seen.clear()
            self._stale_seen.add(key)
            self.stale += 1
            logger.warning(
                "ignored model notice (%s): %s at generation %d, this bin serves generation %d",
                via,
                notice.version,
                notice.generation,
                served,
            )
            self.on_stale(notice, via, served)
        return True

    def handle(self, notice: ModelRef, via: str) -> bool:
        """Install if new; True when a new model was handed over."""
        if notice.version != self.current() and notice.manifest_sha256 in self.repo.rejected():
            return False  # refused once, logged then: silence, whatever its generation
        if self._is_stale(notice, via):
            return False
        if notice.version == self.current():
            if notice.generation > self.repo.generation():  # re-announced (or rolled back to)
                self.repo.set_generation(notice.generation, notice.version)
            return False
        if via == "mqtt" and not self._jitter_wait(notice):
            return False  # stopped while waiting
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

    def _jitter_wait(self, notice: ModelRef) -> bool:
        """A notice reaches the whole fleet at once; each bin waits a uniform random delay in
        [0, jitter_seconds] before fetching, so the store sees a spread, not a spike. Polled
        pointers need none (each bin polls on its own phase). False when stopped meanwhile."""
        if self.jitter_seconds <= 0:
            return True
        delay = self.jitter.uniform(0.0, self.jitter_seconds)
        self.last_jitter = delay
        logger.info("model %s announced: fetching in %.2fs (jitter)", notice.version, delay)
        return not self.stop_event.wait(delay)

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

    def loop(self) -> None:
        next_poll = 0.0
        owed = False  # a notice could not be fetched: poll at the short interval until done
        while not self.stopping:
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
                if isinstance(notice, Withdrawal):
                    self._withdraw(notice)
                    continue
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
