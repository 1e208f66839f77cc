"""The quality reporter: a worker that ends a telemetry period on the UTC clock, puts its
record in the spool (the uploader takes it to the store, however long the store is away)
and publishes it on MQTT for live dashboards.

Periods are aligned (with 60 s: every minute on the minute) and end at midnight UTC, so a
day's records cover exactly that day; the first period starts with the daemon and the last
one ends when it stops (flushed before the spool drain, so a clean stop uploads it too).
"""

import logging
import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..shared.config.edge import TelemetryConfig
from ..shared.messages import DeviceQuality
from .capture import Capturer
from .models import ModelRepo
from .quality import QualityCounter
from .spool import Spool, SpoolRefusedError
from .state import EdgeState
from .telemetry import Telemetry
from .uploader import Uploader
from .worker import Worker

logger = logging.getLogger(__name__)

DAY = 86400.0


@dataclass
class Gauges:
    """What the reporter reads from the other parts at a period's end."""

    items: dict[str, int] = field(default_factory=dict)  # running totals per class
    errors: dict[str, int] = field(default_factory=dict)  # running totals per fault kind
    generation: int | None = None
    spool_depth: int = 0


def gauges_of(
    state: EdgeState, uploader: Uploader, capturer: Capturer, spool: Spool, repo: ModelRepo
) -> Callable[[], Gauges]:
    """The daemon's parts, read at a period's end."""

    def read() -> Gauges:
        return Gauges(
            items=state.snapshot()["items"],
            errors={
                "upload_failed": uploader.failures,
                "capture_failed": capturer.skipped.get("error", 0),
                "spool_local": spool.local_failures,
            },
            generation=repo.generation(),
            spool_depth=spool.usage("gathers")[0],
        )

    return read


def next_boundary(t: float, period: float) -> float:
    """The first period boundary after ``t`` (epoch seconds): multiples of ``period`` from
    UTC midnight, and midnight itself (no period spans two days)."""
    day_start = math.floor(t / DAY) * DAY
    k = math.floor((t - day_start) / period) + 1
    return min(day_start + k * period, day_start + DAY)


def new_run_id() -> str:
    return secrets.token_hex(4)


class QualityReporter(Worker):
    def __init__(
        self,
        counter: QualityCounter,
        config: TelemetryConfig,
        spool: Spool,
        telemetry: Telemetry,
        gauges: Callable[[], Gauges],
        started: float,
        stop: threading.Event | None = None,
        *,
        channel: str | None = None,
    ) -> None:
        super().__init__("quality", stop)
        self.counter = counter
        self.period = config.period_seconds
        self.spool = spool
        self.telemetry = telemetry
        self.gauges = gauges
        self.started = started  # the daemon's start (epoch seconds): uptime
        self.channel = channel  # the config's model channel, named in every record
        self.spooled = 0
        self.dropped = 0  # since the last record spooled (the next record says so)
        self.dropped_total = 0
        self.last: DeviceQuality | None = None

    def loop(self) -> None:
        start, mono = time.time(), time.monotonic()
        while True:
            boundary = next_boundary(start, self.period)
            stopped = self.stop_event.wait(max(0.0, boundary - start - (time.monotonic() - mono)))
            now, now_mono = time.time(), time.monotonic()
            # on time: the nominal boundary (clean keys); stopped or the clock jumped: now
            end = boundary if not stopped and abs(now - boundary) < 1.0 else now
            self.flush(start, end, now_mono - mono)
            if stopped:
                return
            start, mono = end, now_mono

    def flush(self, start: float, end: float, seconds: float) -> DeviceQuality | None:
        """End the period: its record to the spool and MQTT. Never raises."""
        try:
            gauges = self.gauges()
            report = self.counter.flush(
                datetime.fromtimestamp(start, UTC),
                datetime.fromtimestamp(max(start, end), UTC),
                seconds,
                items=gauges.items,
                errors=gauges.errors,
                model_generation=gauges.generation,
                uptime=time.time() - self.started,
                spool_depth=gauges.spool_depth,
                dropped=self.dropped,
            )
            if self.channel is not None:
                report = report.model_copy(update={"channel": self.channel})
        except Exception:
            logger.exception("quality telemetry: the period could not be summed")
            return None
        self.last = report
        try:
            self.spool.add_telemetry(report)
            self.spooled += 1
            self.dropped = 0
        except SpoolRefusedError as exc:
            if not self.dropped:
                logger.warning("quality telemetry not spooled (%s): counted as dropped", exc)
            self.dropped += 1
            self.dropped_total += 1
        try:
            self.telemetry.quality(report)
        except Exception:
            logger.exception("quality telemetry: MQTT publish failed")
        return report

    def status(self) -> dict[str, Any]:
        last = self.last
        return {
            "period_seconds": self.period,
            "run": self.counter.run,
            "spooled": self.spooled,
            "dropped": self.dropped_total,
            "last": None
            if last is None
            else {
                "period_start": last.period_start.isoformat(),
                "period_end": last.period_end.isoformat(),
                "frames": last.frames,
                "low_confidence_rate": last.low_confidence_rate,
                "presses": last.presses,
                "correction_rate": last.correction_rate,
                "captures": last.captures,
                "errors": last.errors,
            },
        }
