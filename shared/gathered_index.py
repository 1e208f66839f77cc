"""Reading every standing gathered record at a cost that grows with new work, not history.

``recyclops compact`` (``recyclops.shared.compact``) seals each device's finished days into
one segment per month under ``index/gathered/``. A reader takes the current segment of every
(device, month), then lists only the raw ``gathered/<device>/`` days from ``LOOKBACK_DAYS``
before the device's newest sealed day on, and reads only the raw objects no segment holds.
A record uploaded late into a sealed day is therefore seen at once if it is within the
look-back, and by every reader after the next compaction otherwise (compaction lists the raw
days again and seals a grown day anew). See docs/store-layout.md.
"""

import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, TypeVar

from pydantic import ValidationError

from . import layout
from .errors import ObjectNotFoundError, StoreError
from .primitives import is_safe_segment
from .records import GatheredRecord
from .store import ObjectStore

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: Readers also list this many raw days before a device's newest sealed day: a late upload
#: (a bin back from a short outage, an undo just after midnight) is seen before the next
#: compaction. At 100 gathers a day this is still one LIST page per device.
LOOKBACK_DAYS = 7
SEGMENT_FORMAT = 1
#: A segment that vanishes while it is read was superseded by a compaction: read again.
READ_ATTEMPTS = 3

#: One gathered object as a segment line: ``{"key"}`` for a tombstone, ``{"key", "record"}``
#: for a record (``{"key", "body"}`` if its body was not a JSON object).
Entry = dict[str, Any]


def parallel(
    fn: Callable[[str], T], keys: Iterable[str], workers: int
) -> list[tuple[str, T | StoreError]]:
    """``fn`` over ``keys`` on ``workers`` threads, in order; StoreErrors are returned."""

    def safe(key: str) -> tuple[str, T | StoreError]:
        try:
            return key, fn(key)
        except StoreError as exc:
            return key, exc

    keys = list(keys)
    if workers <= 1 or len(keys) < 2:
        return [safe(k) for k in keys]
    with ThreadPoolExecutor(max_workers=min(workers, len(keys))) as pool:
        return list(pool.map(safe, keys))


def keys_digest(keys: Iterable[str]) -> str:
    """Names a segment by what it holds: the same raw listing gives the same segment key."""
    return hashlib.sha256("\n".join(sorted(keys)).encode("utf-8")).hexdigest()[:16]


def entry_for(key: str, body: bytes | None) -> Entry:
    """The segment line of a raw object (``body`` None for a tombstone: only its key counts)."""
    if body is None:
        return {"key": key}
    try:
        value = json.loads(body)
    except ValueError:
        value = None
    if isinstance(value, dict):
        return {"key": key, "record": value}
    return {"key": key, "body": body.decode("utf-8", "replace")}


def segment_bytes(device: str, through: date, entries: list[Entry]) -> bytes:
    """A header line, then one line per object in key order: the same objects, the same bytes."""
    head = {"segment": SEGMENT_FORMAT, "device": device, "through": through.isoformat()}
    lines = [json.dumps(head, separators=(",", ":"))]
    lines += [
        json.dumps(e, separators=(",", ":"), sort_keys=True)
        for e in sorted(entries, key=lambda e: str(e["key"]))
    ]
    return ("\n".join(lines) + "\n").encode("utf-8")


def parse_segment(data: bytes, where: str, problems: list[str]) -> dict[str, Entry]:
    """The entries of a segment by key; a malformed line is a problem, not fatal."""
    out: dict[str, Entry] = {}
    for n, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            problems.append(f"{where}: line {n} is not JSON")
            continue
        if not isinstance(entry, dict):
            problems.append(f"{where}: line {n} is not an object")
        elif isinstance(entry.get("key"), str):
            out[entry["key"]] = entry
        elif entry.get("segment") != SEGMENT_FORMAT:
            problems.append(f"{where}: line {n}: unknown segment format")
    return out


def current_segments(keys: Iterable[str]) -> tuple[dict[tuple[str, str], str], list[str]]:
    """The greatest segment of each (device, month), and every other (superseded) one."""
    best: dict[tuple[str, str], tuple[layout.SegmentKey, str]] = {}
    superseded: list[str] = []
    for key in keys:
        seg = layout.parse_segment_key(key)
        if seg is None:
            continue
        slot = (seg.device, seg.month)
        held = best.get(slot)
        if held is None or seg[:3] > held[0][:3]:
            if held is not None:
                superseded.append(held[1])
            best[slot] = (seg, key)
        else:
            superseded.append(key)
    return {slot: key for slot, (_, key) in best.items()}, superseded


@dataclass
class GatheredRead:
    """Standing records (key order) and what it cost: ``segments`` and ``raw_reads`` GETs."""

    records: list[tuple[str, GatheredRecord]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    segments: int = 0
    raw_reads: int = 0
    #: the newest sealed day of each device that has segments
    sealed_through: dict[str, date] = field(default_factory=dict)


class _Vanished(StoreError):
    """A segment was deleted (superseded) between the listing and the read."""


def read_gathered(
    store: ObjectStore,
    *,
    workers: int = 16,
    use_index: bool = True,
    lookback_days: int = LOOKBACK_DAYS,
) -> GatheredRead:
    """Every gathered record without an undo tombstone; unreadable ones are problems.
    ``use_index=False`` reads every raw object (what readers did before the index)."""
    for _ in range(READ_ATTEMPTS):
        try:
            return _read(store, workers, use_index, lookback_days)
        except _Vanished as exc:
            logger.info("%s; reading the index again", exc)
    raise StoreError(f"the gathered index kept changing while read ({READ_ATTEMPTS} attempts)")


def _load_segments(store: ObjectStore, workers: int, out: GatheredRead) -> dict[str, Entry]:
    current, _ = current_segments(store.list(layout.INDEX_GATHERED))
    for (device, _), key in current.items():
        seg = layout.parse_segment_key(key)
        assert seg is not None
        through = date.fromisoformat(seg.through)
        out.sealed_through[device] = max(out.sealed_through.get(device, through), through)
    entries: dict[str, Entry] = {}
    for key, result in parallel(store.get, sorted(current.values()), workers):
        if isinstance(result, ObjectNotFoundError):
            raise _Vanished(f"{key}: superseded while reading")
        if isinstance(result, StoreError):
            out.problems.append(f"{key}: {result}")
            continue
        out.segments += 1
        entries.update(parse_segment(result, key, out.problems))
    return entries


def device_ids(store: ObjectStore) -> list[str]:
    """The device folders under ``gathered/``; a folder no device could have is skipped (no
    record in it could name its device)."""
    return [d for d in store.list_folders(layout.GATHERED) if is_safe_segment(d)]


def _raw_keys(store: ObjectStore, device: str, sealed: date | None, lookback: int) -> list[str]:
    prefix = f"{layout.GATHERED}{device}/"
    if sealed is None:
        return list(store.list(prefix))
    before = sealed - timedelta(days=lookback + 1)
    # "<day>~" sorts after every key of that day and before the next day's ('~' > '/'); it
    # names no folder (SeaweedFS skips a folder named by StartAfter)
    return list(store.list_after(prefix, f"{prefix}{before.isoformat()}~"))


def _read(store: ObjectStore, workers: int, use_index: bool, lookback: int) -> GatheredRead:
    out = GatheredRead()
    entries = _load_segments(store, workers, out) if use_index else {}
    devices = sorted(set(device_ids(store)) | set(out.sealed_through))
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(devices) or 1))) as pool:
        listings = list(
            pool.map(lambda d: _raw_keys(store, d, out.sealed_through.get(d), lookback), devices)
        )
    found: dict[str, layout.GatheredKey] = {}
    for keys in listings:
        for key in keys:
            parsed = layout.parse_gathered_key(key)
            if parsed is not None and key not in entries:
                found[key] = parsed
    undone = {p._replace(undo=False) for p in found.values() if p.undo}
    undone |= {p._replace(undo=False) for k in entries if (p := _undo_of(k)) is not None}
    fetch: list[str] = []
    for key, parsed in found.items():
        if parsed.undo:
            entries[key] = entry_for(key, None)
        elif parsed not in undone:  # an undone record is not read (as before the index)
            fetch.append(key)
    for key, result in parallel(store.get, fetch, workers):
        if isinstance(result, StoreError):
            out.problems.append(f"{key}: {result}")
            continue
        out.raw_reads += 1
        entries[key] = entry_for(key, result)
    out.records = _standing(entries, out.problems)
    return out


def _undo_of(key: str) -> layout.GatheredKey | None:
    if not key.endswith(".undo.json"):
        return None
    parsed = layout.parse_gathered_key(key)
    return parsed if parsed is not None and parsed.undo else None


def _record(entry: Entry) -> GatheredRecord:
    if "record" in entry:
        return GatheredRecord.model_validate(entry["record"])
    return GatheredRecord.model_validate_json(entry.get("body", ""))


def _standing(entries: dict[str, Entry], problems: list[str]) -> list[tuple[str, GatheredRecord]]:
    """Records without a tombstone beside them, each checked against its key."""
    parsed = {key: layout.parse_gathered_key(key) for key in entries}
    undone = {p._replace(undo=False) for p in parsed.values() if p is not None and p.undo}
    out: list[tuple[str, GatheredRecord]] = []
    for key in sorted(entries):
        p = parsed[key]
        if p is None or p.undo or p in undone:
            continue
        try:
            record = _record(entries[key])
        except ValidationError as exc:
            problems.append(f"{key}: not a gathered record: {exc.errors()[0]['msg']}")
            continue
        if record.sha256 != p.sha256 or record.device != p.device:
            problems.append(
                f"{key}: record names sha {record.sha256[:12]}… / device "
                f"{record.device!r}, not its key's"
            )
            continue
        out.append((key, record))
    return out
