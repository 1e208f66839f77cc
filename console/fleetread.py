"""Reading the fleet's telemetry for ``fleet``: bounded and cached.

Bounded: the bins are the folders one level under ``telemetry/`` (a delimiter listing, not
every key), and a bin's records are listed by day prefix for the window's days only, never
its whole history. Cached: a record is written once and never changed (put-if-absent,
docs/store-layout.md), so a record read for one page load is kept for the next one and only
new keys are fetched; keys that leave the window are forgotten. At 60 s periods a bin writes
1440 records a day, so the first load of a 9-day window is ~13 000 small GETs per bin
(fetched ``workers`` at a time); later loads list and fetch only what is new.
"""

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from recyclops.shared import layout
from recyclops.shared.errors import ObjectNotFoundError
from recyclops.shared.messages import DeviceQuality
from recyclops.shared.primitives import is_safe_segment
from recyclops.shared.store import ObjectStore

from .fleet import FleetRules, fleet_view, window_days

logger = logging.getLogger(__name__)


class TelemetryReader:
    """The window's records of every bin, remembered between page loads (thread-safe)."""

    def __init__(self, store: ObjectStore, workers: int = 8) -> None:
        self.store = store
        self.workers = workers
        self._records: dict[str, DeviceQuality | None] = {}  # None: a record that does not parse
        self._lock = threading.Lock()
        self.fetched = 0  # objects read from the store (for tests and the log)

    def _get(self, key: str) -> tuple[str, DeviceQuality | None]:
        try:
            return key, DeviceQuality.model_validate_json(self.store.get(key))
        except ObjectNotFoundError:
            return key, None
        except ValidationError as exc:
            logger.warning("telemetry %s does not parse, skipped: %s", key, exc)
            return key, None

    def load(self, now: datetime, rules: FleetRules) -> dict[str, list[DeviceQuality]]:
        """Every bin under ``telemetry/`` with its records of the window, in period order."""
        first, last = window_days(now, rules)
        days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        devices = [d for d in self.store.list_folders(layout.TELEMETRY) if is_safe_segment(d)]
        keys: dict[str, list[str]] = {}
        for device in devices:
            keys[device] = [
                key
                for day in days
                for key in self.store.list(layout.telemetry_day_prefix(device, day))
                if layout.parse_telemetry_key(key) is not None
            ]
        wanted = {k for ks in keys.values() for k in ks}
        with self._lock:
            self._records = {k: v for k, v in self._records.items() if k in wanted}
            new = sorted(wanted - self._records.keys())
        if new:
            with ThreadPoolExecutor(self.workers, thread_name_prefix="fleet-read") as pool:
                fetched = dict(pool.map(self._get, new))
            with self._lock:
                self._records.update(fetched)
                self.fetched += len(new)
            logger.info("fleet: read %d new telemetry records", len(new))
        with self._lock:
            records = {
                d: [r for k in ks if (r := self._records.get(k)) is not None]
                for d, ks in keys.items()
            }
        return {d: sorted(rs, key=lambda r: (r.period_start, r.run)) for d, rs in records.items()}

    def fleet_json(
        self, now: datetime | None = None, rules: FleetRules | None = None
    ) -> dict[str, Any]:
        """``GET /api/fleet``: read what is new, compute the page (``fleet.fleet_view``)."""
        now = now or datetime.now(UTC)
        rules = rules or FleetRules()
        return fleet_view(self.load(now, rules), now, rules)
