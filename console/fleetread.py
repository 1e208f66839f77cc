"""Reading the fleet's telemetry for ``fleet``: bounded and cached.

Bounded: the bins are the folders one level under ``telemetry/`` (a delimiter listing, not
every key), and a bin's records are listed by day prefix for the window's days only, never
its whole history. Cached: a record is written once and never changed (put-if-absent,
docs/store-layout.md), so a record read for one page load is kept for the next one and only
new keys are fetched; keys that leave the window are forgotten. At 60 s periods a bin writes
1440 records a day, so without roll-ups the first load of a 9-day window is ~13 000 small
GETs per bin; with them (``recyclops compact``, ``shared/telemetry_index.py``) a closed day
is one GET, and the figures are the same. Later loads list and fetch only what is new.
"""

import logging
from datetime import UTC, datetime
from typing import Any

from recyclops.shared.messages import DeviceQuality
from recyclops.shared.store import ObjectStore
from recyclops.shared.telemetry_index import TelemetryLoader

from .fleet import FleetRules, fleet_view, window_days

logger = logging.getLogger(__name__)


class TelemetryReader:
    """The window's records of every bin, remembered between page loads (thread-safe)."""

    def __init__(self, store: ObjectStore, workers: int = 8, *, use_index: bool = True) -> None:
        self.store = store
        self.loader = TelemetryLoader(store, workers=workers, use_index=use_index)

    @property
    def fetched(self) -> int:
        """Period objects read from the store (for tests and the log)."""
        return self.loader.fetched

    def load(self, now: datetime, rules: FleetRules) -> dict[str, list[DeviceQuality]]:
        """Every bin under ``telemetry/`` with its records of the window, in period order."""
        return self.loader.load(*window_days(now, rules))

    def fleet_json(
        self, now: datetime | None = None, rules: FleetRules | None = None
    ) -> dict[str, Any]:
        """``GET /api/fleet``: read what is new, compute the page (``fleet.fleet_view``)."""
        now = now or datetime.now(UTC)
        rules = rules or FleetRules()
        return fleet_view(self.load(now, rules), now, rules)
