"""Reading the fleet's quality telemetry at a cost that grows with the window, not per period.

A bin writes one object per period (``shared/quality.py``): at 60 s periods a bin-week is
~10,000 GETs. ``recyclops compact`` (``shared/telemetry_compact.py``) rolls each bin's
closed UTC days into one object, ``index/telemetry/<device>/<day>/<count>.<digest>.jsonl.gz``,
holding every period object of that day byte for byte (one line each, key and body), so
every reader's figures stay exact: the fleet page's 24 h window and trend (which cut at
``now``, not at midnight), the drift alarm's class mix and histogram, ``promote``'s tallies
per served version.

The raw listing of each day stays the truth: a reader lists every day of its window (a
LIST page per 1,000 periods) and takes each listed key's body from a roll-up that holds
it, reading raw only the keys no roll-up holds (today, a day not rolled yet, a period
uploaded late after its day was rolled). A period is therefore never lost (a late one is
read raw until the next compaction folds it in) and never counted twice (one body per
listed key). ``use_index=False`` reads every period raw, as readers did before.
"""

import gzip
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

from pydantic import ValidationError

from . import layout
from .errors import ObjectNotFoundError, StoreError
from .gathered_index import parallel
from .messages import DeviceQuality
from .primitives import is_safe_segment
from .store import ObjectStore

logger = logging.getLogger(__name__)

ROLLUP_FORMAT = 1
#: A period as held: its record, or None for an object that does not parse (skipped).
Held = DeviceQuality | None


def parse_record(key: str, body: bytes, *, quiet: bool = False) -> Held:
    """One period object's record; None (logged) when it does not parse, as raw readers do."""
    try:
        return DeviceQuality.model_validate_json(body)
    except ValidationError as exc:
        (logger.debug if quiet else logger.warning)(
            "telemetry %s does not parse, skipped: %s", key, exc
        )
        return None


def rollup_bytes(device: str, day: date, bodies: dict[str, bytes]) -> bytes:
    """A header line, then ``<key>\\t<body>`` per period object in key order (gzip). A body
    that is not one line of JSON is kept as ``null`` (it parses as no record either way)."""
    head = f'{{"rollup":{ROLLUP_FORMAT},"device":"{device}","day":"{day.isoformat()}"}}'
    lines = [head.encode()]
    for key in sorted(bodies):
        body = bodies[key].strip()
        if b"\n" in body or b"\r" in body or not body:
            body = b"null"
        lines.append(key.encode() + b"\t" + body)
    return gzip.compress(b"\n".join(lines) + b"\n", compresslevel=6, mtime=0)


def rollup_bodies(data: bytes) -> dict[str, bytes]:
    """The period objects a roll-up holds, key to body."""
    out: dict[str, bytes] = {}
    for line in gzip.decompress(data).split(b"\n")[1:]:
        key, tab, body = line.partition(b"\t")
        if tab:
            out[key.decode()] = body
    return out


def current_rollups(keys: Iterable[str]) -> tuple[dict[str, str], list[str]]:
    """Of each day, the greatest roll-up (day to key), and every other (superseded) one."""
    best: dict[str, tuple[tuple[int, str], str]] = {}
    superseded: list[str] = []
    for key in keys:
        parsed = layout.parse_rollup_key(key)
        if parsed is None:
            continue
        rank = (parsed.periods, parsed.digest)
        held = best.get(parsed.day)
        if held is None or rank > held[0]:
            if held is not None:
                superseded.append(held[1])
            best[parsed.day] = (rank, key)
        else:
            superseded.append(key)
    return {day: key for day, (_, key) in best.items()}, superseded


def telemetry_devices(store: ObjectStore) -> list[str]:
    """The bins: the folders one level under ``telemetry/`` (one delimiter listing)."""
    return [d for d in store.list_folders(layout.TELEMETRY) if is_safe_segment(d)]


def day_keys(store: ObjectStore, device: str, day: date) -> list[str]:
    """The period objects of one bin's day (listing order is key order)."""
    prefix = layout.telemetry_day_prefix(device, day)
    return [k for k in store.list(prefix) if layout.parse_telemetry_key(k) is not None]


class TelemetryLoader:
    """Every bin's periods of a span of UTC days, from roll-ups where they hold them.

    Objects never change (put-if-absent), so what one ``load`` read is kept for the next and
    only new keys are read; what leaves the span is forgotten. Thread-safe."""

    def __init__(self, store: ObjectStore, *, workers: int = 16, use_index: bool = True) -> None:
        self.store = store
        self.workers = workers
        self.use_index = use_index
        self._raw: dict[str, Held] = {}
        self._rollups: dict[str, dict[str, Held]] = {}
        self._lock = threading.Lock()
        self.fetched = 0  # raw period objects read (for tests and the log)
        self.rollups_read = 0  # roll-up objects read

    def _list(self, device: str, days: Sequence[date]) -> tuple[list[list[str]], dict[str, str]]:
        """The device's listed keys per day, and its current roll-up per day of the span."""
        rollups: dict[str, str] = {}
        if self.use_index:
            prefix = layout.telemetry_rollup_prefix(device)
            before = (days[0] - timedelta(days=1)).isoformat()
            # "<day>~" sorts after every key of that day: the span's roll-ups on, one page
            current, _ = current_rollups(self.store.list_after(prefix, f"{prefix}{before}~"))
            last = days[-1].isoformat()
            rollups = {d: k for d, k in current.items() if d <= last}
        return [day_keys(self.store, device, day) for day in days], rollups

    def _read_rollup(self, key: str) -> dict[str, Held] | None:
        """The roll-up's records; None (its days read raw) for one that cannot be read."""
        try:
            bodies = rollup_bodies(self.store.get(key))
        except (OSError, EOFError, UnicodeDecodeError) as exc:  # gzip: OSError, EOFError
            logger.warning("telemetry roll-up %s is unreadable, its day is read raw: %s", key, exc)
            return None
        return {k: parse_record(k, b, quiet=True) for k, b in bodies.items()}

    def _read_raw(self, key: str) -> Held:
        try:
            return parse_record(key, self.store.get(key))
        except ObjectNotFoundError:
            return None

    def load(
        self, first: date, last: date, devices: Sequence[str] | None = None
    ) -> dict[str, list[DeviceQuality]]:
        """Each bin (default: every folder under ``telemetry/``) with its periods that started
        on the days ``first`` to ``last`` (inclusive), in period order."""
        days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        names = list(devices) if devices is not None else telemetry_devices(self.store)
        if not days:
            return {d: [] for d in names}
        with ThreadPoolExecutor(max(1, min(self.workers, len(names) or 1))) as pool:
            listed = dict(zip(names, pool.map(lambda d: self._list(d, days), names), strict=True))
        # a roll-up is read only for a day with a listed key it holds and nothing cached does
        with self._lock:
            cached = set(self._raw)
            held_rollups = dict(self._rollups)
        wanted_rollups: set[str] = set()
        for per_day, rollups in listed.values():
            for day, keys in zip(days, per_day, strict=True):
                rollup = rollups.get(day.isoformat())
                if rollup is not None and keys and not set(keys) <= cached:
                    wanted_rollups.add(rollup)
        fresh: dict[str, dict[str, Held]] = {}
        new = sorted(wanted_rollups - held_rollups.keys())
        for key, result in parallel(self._read_rollup, new, self.workers):
            if isinstance(result, ObjectNotFoundError):
                logger.info("telemetry roll-up %s superseded while reading: raw instead", key)
            elif isinstance(result, StoreError):
                raise result
            elif result is not None:
                fresh[key] = result
        rollups_now = {k: v for k, v in held_rollups.items() if k in wanted_rollups} | fresh
        bodies: dict[str, Held] = {}
        for held in rollups_now.values():
            bodies.update(held)
        all_keys = [k for per_day, _ in listed.values() for keys in per_day for k in keys]
        missing = [k for k in all_keys if k not in bodies and k not in cached]
        got = dict(pool_map(self._read_raw, missing, self.workers))
        with self._lock:
            self._rollups = rollups_now
            listed_keys = set(all_keys)
            self._raw = {k: v for k, v in self._raw.items() if k in listed_keys} | got
            self.fetched += len(got)
            self.rollups_read += len(fresh)
            raw = dict(self._raw)
        if got or fresh:
            logger.info(
                "telemetry: read %d roll-up(s) and %d period object(s)", len(fresh), len(got)
            )
        out: dict[str, list[DeviceQuality]] = {}
        for device, (per_day, _) in listed.items():
            records = [
                r
                for keys in per_day
                for k in keys
                if (r := bodies[k] if k in bodies else raw.get(k)) is not None
            ]
            out[device] = sorted(records, key=lambda r: (r.period_start, r.run))
        return out


def pool_map(fn: Callable[[str], Held], keys: list[str], workers: int) -> list[tuple[str, Held]]:
    """``fn`` over ``keys`` in parallel; a StoreError other than a vanished object is raised."""
    out = []
    for key, result in parallel(fn, keys, workers):
        if isinstance(result, StoreError):
            raise result
        out.append((key, result))
    return out


def load_telemetry(
    store: ObjectStore,
    first: date,
    last: date,
    *,
    devices: Sequence[str] | None = None,
    workers: int = 16,
    use_index: bool = True,
) -> dict[str, list[DeviceQuality]]:
    """Every bin's periods of the days ``first`` to ``last``, read once (no cache kept)."""
    return TelemetryLoader(store, workers=workers, use_index=use_index).load(first, last, devices)
