"""Where everything lives in the store: the one contract every part uses.

See docs/store-layout.md for the reasoning. In short: images are content-addressed (a
retried upload is the same key), gathered records are one object per key press, review
journals are one object per session (only their owner writes them), model versions are
immutable folders and a channel pointer, written last, says which one is current.
"""

import re
from datetime import UTC, date, datetime
from typing import NamedTuple

from .errors import InvalidKeyError
from .primitives import is_safe_segment, is_sha256

IMAGES = "images/"
GATHERED = "gathered/"
LABELS = "labels/"
MODELS = "models/"
CHANNELS = "models/channels/"
RUNS = "runs/"
TELEMETRY = "telemetry/"

MODEL_FILE = "model.tflite"
KERAS_FILE = "model.keras"
MANIFEST_FILE = "manifest.json"
CARD_FILE = "MODEL_CARD.md"

_GATHERED_RE = re.compile(
    r"^gathered/(?P<device>[^/]+)/(?P<day>\d{4}-\d{2}-\d{2})/(?P<sha>[0-9a-f]{64})"
    r"(?:\.(?P<seq>[2-9]|[1-9][0-9]+))?(?P<undo>\.undo)?\.json$"
)


class GatheredKey(NamedTuple):
    device: str
    day: str
    sha256: str
    seq: int  # 1 for the first gather of these bytes that day, 2, 3… for later ones
    undo: bool


def _segment(kind: str, value: str) -> str:
    if not is_safe_segment(value):
        raise InvalidKeyError(f"{kind} {value!r} is not a safe name (letters, digits, . _ -)")
    return value


def _sha(value: str) -> str:
    if not is_sha256(value):
        raise InvalidKeyError(f"{value!r} is not a lowercase sha256 hex digest")
    return value


def image_key(sha256: str) -> str:
    return f"{IMAGES}{_sha(sha256)}.jpg"


def _gathered(device: str, day: date, sha256: str, seq: int, suffix: str) -> str:
    if seq < 1:
        raise InvalidKeyError(f"gather sequence {seq} must be 1 or more")
    tail = "" if seq == 1 else f".{seq}"
    return f"{GATHERED}{_segment('device', device)}/{day.isoformat()}/{_sha(sha256)}{tail}{suffix}"


def gathered_key(device: str, day: date, sha256: str, seq: int = 1) -> str:
    """The record of a key press. The same bytes gathered again the same day (a held frame,
    an undo then the right key) take ``seq`` 2, 3…: nothing pressed overwrites another."""
    return _gathered(device, day, sha256, seq, ".json")


def gathered_undo_key(device: str, day: date, sha256: str, seq: int = 1) -> str:
    """A tombstone beside the record it undoes (the edge never deletes)."""
    return _gathered(device, day, sha256, seq, ".undo.json")


def parse_gathered_key(key: str) -> GatheredKey | None:
    """The parts of a gathered key, None for anything else."""
    match = _GATHERED_RE.match(key)
    if not match:
        return None
    return GatheredKey(
        match["device"], match["day"], match["sha"], int(match["seq"] or 1), bool(match["undo"])
    )


def labels_key(session_id: str) -> str:
    return f"{LABELS}{_segment('session id', session_id)}.jsonl"


def model_prefix(version: str) -> str:
    return f"{MODELS}{_segment('model version', version)}/"


def model_file_key(version: str, name: str) -> str:
    return model_prefix(version) + _segment("model file", name)


def manifest_key(version: str) -> str:
    return model_file_key(version, MANIFEST_FILE)


def channel_key(channel: str) -> str:
    return f"{CHANNELS}{_segment('channel', channel)}.json"


GOLDEN_FILE = "golden.npz"


def channel_history_prefix(channel: str) -> str:
    """Every generation a channel ever had, one object each, claimed with put-if-absent."""
    return f"{CHANNELS}{_segment('channel', channel)}/"


def channel_generation_key(channel: str, generation: int) -> str:
    if generation < 1:
        raise InvalidKeyError(f"generation {generation} must be 1 or more")
    return f"{channel_history_prefix(channel)}{generation:010d}.json"


def parse_generation_key(key: str) -> int | None:
    """The generation of a history key, None for anything else."""
    tail = key.rsplit("/", 1)[-1]
    if not tail.endswith(".json") or not tail[:-5].isdigit():
        return None
    return int(tail[:-5])


def run_prefix(kind: str, run_id: str) -> str:
    return f"{RUNS}{_segment('run kind', kind)}/{_segment('run id', run_id)}/"


AUDIT = "audit/"
AUDIT_LATEST = "audit/latest.json"


def audit_key(run_id: str) -> str:
    """One ``recyclops audit`` run's report (``audit/latest.json`` is a copy of the newest)."""
    return f"{AUDIT}{_segment('audit run id', run_id)}.json"


_TELEMETRY_RE = re.compile(
    r"^telemetry/(?P<device>[^/]+)/(?P<day>\d{4}-\d{2}-\d{2})/"
    r"(?P<start>\d{8}T\d{6}Z)-(?P<run>[^/]+)\.json$"
)


class TelemetryKey(NamedTuple):
    device: str
    day: str
    start: datetime  # the period's start, to the second (UTC)
    run: str


def telemetry_day_prefix(device: str, day: date) -> str:
    """Every telemetry record of one bin for one UTC day."""
    return f"{TELEMETRY}{_segment('device', device)}/{day.isoformat()}/"


def telemetry_key(device: str, period_start: datetime, run: str) -> str:
    """One period's quality record, under the UTC day of its start. ``run`` (one daemon
    process) keeps two processes' periods apart even if the clock jumps back."""
    start = period_start.astimezone(UTC)
    stamp = start.strftime("%Y%m%dT%H%M%SZ")
    return f"{telemetry_day_prefix(device, start.date())}{stamp}-{_segment('run', run)}.json"


def parse_telemetry_key(key: str) -> TelemetryKey | None:
    """The parts of a telemetry key, None for anything else."""
    match = _TELEMETRY_RE.match(key)
    if not match or not is_safe_segment(match["run"]):
        return None
    start = datetime.strptime(match["start"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return TelemetryKey(match["device"], match["day"], start, match["run"])


INDEX_GATHERED = "index/gathered/"

_SEGMENT_RE = re.compile(
    r"^index/gathered/(?P<device>[^/]+)/(?P<month>\d{4}-\d{2})/"
    r"(?P<through>\d{4}-\d{2}-\d{2})\.(?P<count>\d+)\.(?P<digest>[0-9a-f]{16})\.jsonl$"
)


class SegmentKey(NamedTuple):
    """A compacted month of one device's gathered objects (``recyclops.shared.compact``).
    Ordered by (through, count, digest): the greatest one of a month is the current one."""

    through: str  # the last day it covers (YYYY-MM-DD)
    objects: int  # how many gathered objects (records and tombstones) it holds
    digest: str  # of the sorted keys it holds
    device: str
    month: str  # YYYY-MM


def gathered_segment_key(device: str, through: date, count: int, digest: str) -> str:
    """``index/gathered/<device>/<YYYY-MM>/<through>.<count>.<digest>.jsonl``: immutable,
    written "only if absent"; a month sealed again (a later day, a late record) is a new key."""
    if count < 0 or not re.fullmatch(r"[0-9a-f]{16}", digest):
        raise InvalidKeyError(f"segment count {count} / digest {digest!r} is malformed")
    month = through.isoformat()[:7]
    return (
        f"{INDEX_GATHERED}{_segment('device', device)}/{month}/"
        f"{through.isoformat()}.{count}.{digest}.jsonl"
    )


def parse_segment_key(key: str) -> SegmentKey | None:
    """The parts of a segment key, None for anything else."""
    match = _SEGMENT_RE.match(key)
    if not match or not match["through"].startswith(match["month"]):
        return None
    return SegmentKey(
        match["through"], int(match["count"]), match["digest"], match["device"], match["month"]
    )


INDEX_TELEMETRY = "index/telemetry/"

_ROLLUP_RE = re.compile(
    r"^index/telemetry/(?P<device>[^/]+)/(?P<day>\d{4}-\d{2}-\d{2})/"
    r"(?P<count>\d+)\.(?P<digest>[0-9a-f]{16})\.jsonl\.gz$"
)


class RollupKey(NamedTuple):
    """One bin's telemetry of one closed UTC day, rolled into one object
    (``recyclops.shared.telemetry_index``). Of a day's roll-ups the greatest (count, digest)
    is the current one: a re-roll after a late period only ever adds keys."""

    device: str
    day: str  # YYYY-MM-DD
    periods: int  # how many period objects it covers
    digest: str  # of the sorted keys it covers


def telemetry_rollup_prefix(device: str) -> str:
    return f"{INDEX_TELEMETRY}{_segment('device', device)}/"


def telemetry_rollup_key(device: str, day: date, count: int, digest: str) -> str:
    """``index/telemetry/<device>/<day>/<count>.<digest>.jsonl.gz``: immutable, written
    "only if absent"; a day rolled again (a late period) is a new key."""
    if count < 0 or not re.fullmatch(r"[0-9a-f]{16}", digest):
        raise InvalidKeyError(f"roll-up count {count} / digest {digest!r} is malformed")
    return f"{telemetry_rollup_prefix(device)}{day.isoformat()}/{count}.{digest}.jsonl.gz"


def parse_rollup_key(key: str) -> RollupKey | None:
    """The parts of a roll-up key, None for anything else."""
    match = _ROLLUP_RE.match(key)
    if not match:
        return None
    return RollupKey(match["device"], match["day"], int(match["count"]), match["digest"])
