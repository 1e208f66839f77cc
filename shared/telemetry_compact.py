"""Rolling each bin's closed UTC days of quality telemetry into one object per day.

A day is closed ``CLOSE_MARGIN`` after its midnight (UTC). A roll-up is immutable, written
"only if absent" under a key named by the period objects it holds
(``layout.telemetry_rollup_key``): two compactors that list the same day write the same key.
Each run rolls every closed day that has no roll-up yet, and lists again the days of the last
``RECHECK_DAYS`` that have one: a day that grew (a bin back from an outage uploads late) is
rolled anew from its held roll-up plus the new objects, and the older roll-up is deleted.
A period uploaded later than that is still read raw by every reader (they list each day of
their window), so nothing is lost; it just costs a GET each time until a day is re-rolled
(``recheck_days``). A run costs, per bin, two LISTs plus ``RECHECK_DAYS`` day listings, and
a GET for each period object not rolled yet: it grows with new work, not with history.
"""

import logging
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from . import layout
from .compact import CompactSummary, delete_superseded, per_device, read_objects
from .errors import ObjectNotFoundError, StoreError
from .gathered_index import keys_digest
from .store import ObjectStore
from .telemetry_index import (
    current_rollups,
    day_keys,
    rollup_bodies,
    rollup_bytes,
    telemetry_devices,
)

logger = logging.getLogger(__name__)

#: How long after midnight (UTC) a day counts as closed: a bin's last periods of the day
#: reach the store through its spool, usually within minutes.
CLOSE_MARGIN = timedelta(hours=2)
#: Days (before today) listed again each run, so a late upload is folded into its day.
RECHECK_DAYS = 7


class RollupSummary(CompactSummary):
    """What a telemetry compaction did (the gathered index's counts, per day roll-up); a day
    it could not read stays raw (a failure)."""

    def lines(self) -> list[str]:
        out = [
            f"{self.devices} bins' telemetry: {len(self.written)} day roll-ups written, "
            f"{self.unchanged} checked unchanged, {self.raw_reads} period objects read, "
            f"{self.deleted} superseded roll-ups deleted"
        ]
        out += [f"  failed: {f}" for f in self.failures]
        return out


def closed_before(now: datetime, margin: timedelta = CLOSE_MARGIN) -> date:
    """The first day not closed at ``now``: every earlier day may be rolled up."""
    return (now.astimezone(UTC) - margin).date()


def compact_telemetry(
    store: ObjectStore,
    *,
    now: datetime | None = None,
    devices: Sequence[str] | None = None,
    workers: int = 16,
    margin: timedelta = CLOSE_MARGIN,
    recheck_days: int = RECHECK_DAYS,
) -> RollupSummary:
    """Roll every bin's closed days (see the module). Idempotent: a second run with nothing
    new writes nothing and reads no period object."""
    before = closed_before(now or datetime.now(UTC), margin)
    names = list(devices) if devices is not None else telemetry_devices(store)
    recheck_from = before - timedelta(days=recheck_days)
    return per_device(
        names,
        workers,
        lambda d, each: _compact_device(store, d, before, recheck_from, each),
        RollupSummary(),
    )


def _days(store: ObjectStore, device: str) -> list[date]:
    out = []
    for name in store.list_folders(f"{layout.TELEMETRY}{device}/"):
        try:
            out.append(date.fromisoformat(name))
        except ValueError:
            continue
    return out


def _compact_device(
    store: ObjectStore, device: str, before: date, recheck_from: date, workers: int
) -> RollupSummary:
    summary = RollupSummary(devices=1)
    current, superseded = current_rollups(store.list(layout.telemetry_rollup_prefix(device)))
    for day in _days(store, device):
        held = current.get(day.isoformat())
        if day >= before or (held is not None and day < recheck_from):
            continue
        try:
            keys = day_keys(store, device, day)
            parsed = layout.parse_rollup_key(held) if held else None
            if not keys or (parsed is not None and (parsed.periods, parsed.digest) == _name(keys)):
                summary.unchanged += held is not None
                continue
            written = _roll(store, device, day, keys, held, workers, summary)
        except StoreError as exc:
            summary.failures.append(f"{device} {day}: {exc}")
            continue
        summary.written.append(written)
        if held is not None and held != written:
            superseded.append(held)
    delete_superseded(store, superseded, summary)
    return summary


def _name(keys: list[str]) -> tuple[int, str]:
    return len(keys), keys_digest(keys)


def _roll(
    store: ObjectStore,
    device: str,
    day: date,
    keys: list[str],
    held: str | None,
    workers: int,
    summary: RollupSummary,
) -> str:
    """Write the day's roll-up of ``keys``: bodies from the held roll-up, the rest read raw."""
    have: dict[str, bytes] = {}
    if held is not None:
        try:
            have = rollup_bodies(store.get(held))
        except ObjectNotFoundError:
            have = {}  # a racing compactor superseded it: read the day's objects instead
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            logger.warning("compact: %s is unreadable, rolling its day from raw: %s", held, exc)
            have = {}
    bodies = {k: have[k] for k in keys if k in have}
    # one deleted since the listing is not rolled
    bodies.update(read_objects(store, [k for k in keys if k not in have], workers, summary))
    count, digest = _name(sorted(bodies))
    key = layout.telemetry_rollup_key(device, day, count, digest)
    if store.put(key, rollup_bytes(device, day, bodies), if_absent=True):
        logger.info("compact: rolled %s", key)
    return key
