"""Sealing finished days of gathered objects into one segment per device and month.

Every segment is immutable and written "only if absent" under a key named by what it holds
(``layout.gathered_segment_key``): two compactors that see the same raw listing write the
same key, and a month sealed again (a new day, a late upload) gets a new, greater key. The
greatest segment of a month is the current one; older ones are deleted after a newer one is
written (a reader that meets a deleted one reads the index again). Compaction lists every raw
day of a device each run, LIST requests only, so a record uploaded late into a sealed day is
sealed by the next run; it reads only the objects its current segment lacks.
"""

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TypeVar

from . import layout
from .errors import ObjectNotFoundError, StoreError
from .gathered_index import (
    Entry,
    current_segments,
    device_ids,
    entry_for,
    keys_digest,
    parallel,
    parse_segment,
    segment_bytes,
)
from .store import ObjectStore

logger = logging.getLogger(__name__)

#: Devices compacted at once (sharing ``workers`` threads for their reads).
DEVICE_WORKERS = 4


@dataclass
class CompactSummary:
    """What a compaction did; a month it could not read is a failure and stays raw."""

    devices: int = 0
    written: list[str] = field(default_factory=list)
    unchanged: int = 0
    raw_reads: int = 0
    deleted: int = 0
    failures: list[str] = field(default_factory=list)

    def merge(self, other: "CompactSummary") -> None:
        self.devices += other.devices
        self.written += other.written
        self.unchanged += other.unchanged
        self.raw_reads += other.raw_reads
        self.deleted += other.deleted
        self.failures += other.failures

    def lines(self) -> list[str]:
        out = [
            f"{self.devices} devices: {len(self.written)} month segments written, "
            f"{self.unchanged} unchanged, {self.raw_reads} raw objects read, "
            f"{self.deleted} superseded segments deleted"
        ]
        out += [f"  failed: {f}" for f in self.failures]
        return out


def _month_end(month: str) -> date:
    first = date.fromisoformat(f"{month}-01")
    return (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def compact_gathered(
    store: ObjectStore,
    *,
    today: date | None = None,
    devices: Sequence[str] | None = None,
    workers: int = 16,
) -> CompactSummary:
    """Seal every device's UTC days before ``today`` (default: now). Idempotent: a second run
    with nothing new writes nothing and reads no record."""
    day = today or datetime.now(UTC).date()
    names = list(devices) if devices is not None else device_ids(store)
    return per_device(
        names, workers, lambda d, each: _compact_device(store, d, day, each), CompactSummary()
    )


Summary = TypeVar("Summary", bound=CompactSummary)


def per_device(
    names: Sequence[str],
    workers: int,
    compact_one: Callable[[str, int], Summary],
    summary: Summary,
) -> Summary:
    """``compact_one(device, threads)`` for every device, ``DEVICE_WORKERS`` at once sharing
    about ``workers`` requests in flight, merged into ``summary``; failures are logged."""
    at_once = max(1, min(DEVICE_WORKERS, len(names) or 1))
    each = max(1, workers // at_once)
    with ThreadPoolExecutor(max_workers=at_once) as pool:
        for part in pool.map(lambda d: compact_one(d, each), names):
            summary.merge(part)
    for failure in summary.failures:
        logger.error("compact: %s", failure)
    return summary


def delete_superseded(store: ObjectStore, keys: list[str], summary: CompactSummary) -> None:
    """Delete index objects a newer one replaces (one left behind only costs a listing)."""
    for key in keys:
        try:
            store.delete(key)
            summary.deleted += 1
        except StoreError as exc:
            logger.warning("compact: cannot delete superseded %s: %s", key, exc)


def read_objects(
    store: ObjectStore, keys: list[str], workers: int, summary: CompactSummary
) -> dict[str, bytes]:
    """GET ``keys`` in parallel; one deleted since the listing is left out, any other store
    error is raised (the caller leaves that day or month raw)."""
    got: dict[str, bytes] = {}
    for key, result in parallel(store.get, keys, workers):
        if isinstance(result, ObjectNotFoundError):
            continue
        if isinstance(result, StoreError):
            raise result
        got[key] = result
    summary.raw_reads += len(got)
    return got


def _compact_device(store: ObjectStore, device: str, today: date, workers: int) -> CompactSummary:
    summary = CompactSummary(devices=1)
    current, superseded = current_segments(store.list(f"{layout.INDEX_GATHERED}{device}/"))
    by_month: dict[str, list[str]] = defaultdict(list)
    for key in store.list(f"{layout.GATHERED}{device}/"):
        parsed = layout.parse_gathered_key(key)
        if parsed is not None and parsed.day < today.isoformat():
            by_month[parsed.day[:7]].append(key)
    yesterday = today - timedelta(days=1)
    for month in sorted(by_month):
        keys = sorted(by_month[month])
        through = min(_month_end(month), yesterday)
        held = current.get((device, month))
        seg = layout.parse_segment_key(held) if held else None
        if seg is not None and seg[:3] == (through.isoformat(), len(keys), keys_digest(keys)):
            summary.unchanged += 1
            continue
        try:
            written = _seal(store, device, through, keys, held, workers, summary)
        except StoreError as exc:
            # later months stay raw too, so no reader's watermark passes an unsealed month
            summary.failures.append(f"{device} {month}: {exc}")
            break
        summary.written.append(written)
        if held is not None and held != written:
            superseded.append(held)
    delete_superseded(store, superseded, summary)
    return summary


def _seal(
    store: ObjectStore,
    device: str,
    through: date,
    keys: list[str],
    held: str | None,
    workers: int,
    summary: CompactSummary,
) -> str:
    """Write the month's segment: the held segment's entries plus the objects it lacks."""
    have: dict[str, Entry] = {}
    if held is not None:
        try:
            have = parse_segment(store.get(held), held, [])
        except ObjectNotFoundError:
            have = {}  # a racing compactor superseded it: read the month's objects instead
    tombstones = {k for k in keys if k.endswith(".undo.json")}
    records = [k for k in keys if k not in have and k not in tombstones]
    got = read_objects(store, records, workers, summary)  # one deleted since: not sealed
    entries: list[Entry] = []
    for key in keys:
        if key in have:
            entries.append(have[key])
        elif key in got:
            entries.append(entry_for(key, got[key]))
        elif key in tombstones:
            entries.append(entry_for(key, None))  # a tombstone: its key is all it says
    sealed = [str(e["key"]) for e in entries]
    key = layout.gathered_segment_key(device, through, len(sealed), keys_digest(sealed))
    if store.put(key, segment_bytes(device, through, entries), if_absent=True):
        logger.info("compact: sealed %s", key)
    return key
