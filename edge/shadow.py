"""Shadow evaluation: a candidate model (the ``edge.shadow.channel``, e.g. canary) runs beside
the serving one on a sample of live frames, and the quality telemetry says how often the two
agree and how sure the candidate is, before anyone promotes it.

The candidate is fetched and verified exactly like an update (``ModelRepo.candidate``, in its
own folder ``<model_dir>/shadow``), but never served: the serving model, ``current`` and the
served generation are the updater's alone. The frame loop only ``offer``s frames (a counter,
a budget check and a non-blocking put); the candidate runs on this worker's thread, on one
interpreter thread, within a measured share of wall time (``CpuBudget``). A sampled frame
that does not fit (budget spent, queue full) is skipped and counted, never waited for.
"""

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from ..shared.channels_read import read_pointer
from ..shared.config.edge import ShadowConfig
from ..shared.errors import RecyclopsError
from ..shared.store import ObjectStore
from .classifier import Classifier
from .events import Emit
from .models import ModelRepo, UpdateRejected
from .worker import Worker

logger = logging.getLogger(__name__)

Clock = Callable[[], float]


class CpuBudget:
    """The candidate's measured inference time may use at most ``share`` of wall time.

    Credit accrues at ``share`` seconds per second of wall time, capped at ``burst`` seconds
    (an idle hour does not buy a minute of full CPU later); each run spends the time it
    measured, and a frame is admitted only while the credit is positive. Over any stretch
    of T seconds the candidate uses at most ``share * T + burst`` plus one run."""

    def __init__(self, share: float, burst: float = 0.5, clock: Clock = time.monotonic) -> None:
        self.share = share
        self.burst = burst
        self.clock = clock
        self._lock = threading.Lock()
        self._credit = 0.0
        self._last = self.started = clock()
        self.spent = 0.0

    def _accrue(self) -> None:
        now = self.clock()
        self._credit = min(self.burst, self._credit + max(0.0, now - self._last) * self.share)
        self._last = now

    def allow(self) -> bool:
        """May the candidate run on one more frame now?"""
        with self._lock:
            self._accrue()
            return self._credit > 0

    def spend(self, seconds: float) -> None:
        """A run took ``seconds`` (measured)."""
        with self._lock:
            self._accrue()
            self._credit -= seconds
            self.spent += seconds

    def used(self) -> float | None:
        """The share of wall time spent so far (None before any time has passed)."""
        with self._lock:
            elapsed = self.clock() - self.started
            return self.spent / elapsed if elapsed > 0 else None


class ShadowSink(Protocol):
    """Where the results go: the quality counter."""

    def shadow_frame(self, version: str, agreed: bool, score: float) -> None: ...

    def shadow_skipped(self) -> None: ...


class Sampler:
    """The frame loop's side: every ``every``-th frame offered, if the budget allows."""

    def __init__(self, every: int, budget: CpuBudget) -> None:
        self.every = every
        self.budget = budget
        self._seen = 0

    def admit(self) -> str | None:
        """None: not sampled; ``run``: sampled and within budget; ``cpu_budget``: skip."""
        self._seen += 1
        if (self._seen - 1) % self.every:
            return None
        return "run" if self.budget.allow() else "cpu_budget"


class Shadow(Worker):
    def __init__(
        self,
        repo: ModelRepo,
        store: ObjectStore,
        config: ShadowConfig,
        events: Emit,
        *,
        poll_seconds: float,
        sink: ShadowSink | None = None,
        queue_size: int = 2,
        stop: threading.Event | None = None,
    ) -> None:
        super().__init__("shadow", stop)
        self.repo = repo
        self.store = store
        self.channel = config.channel
        self.events = events
        self.poll_seconds = poll_seconds
        self.sink = sink
        self.budget = CpuBudget(config.max_cpu_share)
        self.sampler = Sampler(config.sample_every, self.budget)
        self.queue: queue.Queue[tuple[np.ndarray, str]] = queue.Queue(maxsize=queue_size)
        self.candidate: Classifier | None = None
        self.frames = 0
        self.agreed = 0
        self.skipped: Counter[str] = Counter()
        self.last_result: str | None = None

    # ---- the frame loop's side: never blocks
    def offer(self, rgb: np.ndarray, label: str, serving: str | None) -> None:
        """A classified frame and the serving model's top-1."""
        candidate = self.candidate
        if candidate is None or candidate.version == serving:
            return  # nothing to shadow, or the candidate already serves
        decision = self.sampler.admit()
        if decision is None:
            return
        if decision == "run":
            try:
                self.queue.put_nowait((rgb, label))
                return
            except queue.Full:
                decision = "queue_full"
        self.skipped[decision] += 1
        if self.sink is not None:
            self.sink.shadow_skipped()

    # ---- the worker's side
    def loop(self) -> None:
        next_poll = 0.0
        while not self.stopping:
            if time.monotonic() >= next_poll:
                self.refresh()
                next_poll = time.monotonic() + self.poll_seconds
            try:
                rgb, label = self.queue.get(
                    timeout=max(0.05, min(0.5, next_poll - time.monotonic()))
                )
            except queue.Empty:
                continue
            self.run_one(rgb, label)

    def run_one(self, rgb: np.ndarray, label: str) -> None:
        candidate = self.candidate
        if candidate is None:
            return
        start = time.perf_counter()
        try:
            pred = candidate.classify(rgb)
        except Exception:
            logger.exception("shadow model %s failed on a frame", candidate.version)
            return
        finally:
            self.budget.spend(time.perf_counter() - start)
        self.frames += 1
        self.agreed += pred.label == label
        if self.sink is not None:
            self.sink.shadow_frame(candidate.version, pred.label == label, pred.score)

    def refresh(self) -> None:
        """Follow the candidate channel's pointer; fetch and verify a new candidate."""
        try:
            pointer = read_pointer(self.store, self.channel)
        except RecyclopsError as exc:
            self.last_result = f"poll failed: {exc}"
            logger.warning("shadow: channel %s poll failed: %s", self.channel, exc)
            return
        current = self.candidate
        if pointer is None or (current is not None and current.version == pointer.version):
            return
        if pointer.manifest_sha256 in self.repo.rejected():
            return  # refused once, logged then
        try:
            candidate = self.repo.candidate(pointer, self.store)
        except UpdateRejected as exc:
            self.last_result = f"rejected {pointer.version}: {exc}"
            logger.error("shadow candidate %s rejected: %s", pointer.version, exc)
            self.events.emit("shadow_rejected", version=pointer.version, reason=str(exc))
            return
        except RecyclopsError as exc:  # the store away: the next poll tries again
            self.last_result = f"fetch failed: {exc}"
            logger.warning("shadow candidate %s fetch failed: %s", pointer.version, exc)
            return
        self.candidate = candidate
        self.last_result = f"shadowing {candidate.version}"
        logger.info("shadowing candidate %s from channel %s", candidate.version, self.channel)
        self.events.emit(
            "shadow_model",
            version=candidate.version,
            previous=current.version if current else None,
            channel=self.channel,
        )

    def status(self) -> dict[str, Any]:
        used = self.budget.used()
        return {
            "channel": self.channel,
            "version": self.candidate.version if self.candidate else None,
            "frames": self.frames,
            "agreed": self.agreed,
            "skipped": dict(self.skipped),
            "cpu_share": round(used, 4) if used is not None else None,
            "max_cpu_share": self.budget.share,
            "last_result": self.last_result,
        }
