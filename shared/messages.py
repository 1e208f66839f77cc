"""MQTT topics and payloads, as pydantic models both sides validate.

Topics: ``recyclops/<fleet>/models/<channel>`` (retained model notice: a ``ModelRef`` from
``shared/manifest.py``, the same object as the channel pointer, sent as ``notice_payload()``),
``recyclops/<fleet>/devices/<id>/status`` (retained; last will "offline"),
``recyclops/<fleet>/devices/<id>/stats``, ``…/events`` and ``…/quality`` (not retained).
"""

import json
from datetime import datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field, ValidationError

from .config.base import StrictModel
from .errors import MessageError
from .primitives import SafeName, is_safe_segment

MAX_PAYLOAD = 64 * 1024
T = TypeVar("T", bound=BaseModel)


def _topic(*parts: str) -> str:
    for part in parts:
        if not is_safe_segment(part):
            raise MessageError(f"topic part {part!r} is not a safe name")
    return "recyclops/" + "/".join(parts)


def model_topic(fleet: str, channel: str) -> str:
    return _topic(fleet, "models", channel)


def status_topic(fleet: str, device: str) -> str:
    return _topic(fleet, "devices", device, "status")


def stats_topic(fleet: str, device: str) -> str:
    return _topic(fleet, "devices", device, "stats")


def events_topic(fleet: str, device: str) -> str:
    return _topic(fleet, "devices", device, "events")


def quality_topic(fleet: str, device: str) -> str:
    return _topic(fleet, "devices", device, "quality")


class DeviceStatus(StrictModel):
    schema_version: Literal[1] = 1
    device: SafeName
    state: Literal["online", "offline"]
    time: datetime | None = None
    software_version: str | None = None
    model_version: str | None = None
    detail: str | None = Field(None, max_length=1024, title="Last update error, if any")


class DeviceStats(StrictModel):
    schema_version: Literal[1] = 1
    device: SafeName
    time: datetime
    fps: float = Field(ge=0)
    inference_ms: float = Field(ge=0)
    counts: dict[str, int] = Field(default_factory=dict)
    spool_depth: int = Field(0, ge=0)
    model_version: str | None = None
    rss_mb: float | None = None


class DeviceEvent(StrictModel):
    """A classification, a gather (pressed, refused or captured automatically), or a model
    update accepted, rejected or ignored as older than what the bin serves."""

    schema_version: Literal[1] = 1
    device: SafeName
    time: datetime
    kind: Literal[
        "classification",
        "gathered",
        "undo",
        "model_accepted",
        "model_rejected",
        "spool_full",
        "gather_refused",
        "notice_ignored",
        "auto_captured",
    ]
    label: str | None = None
    score: float | None = None
    model_version: str | None = None
    detail: str | None = Field(None, max_length=1024)


#: Bins of the top-1 score histogram: ``HISTOGRAM_BINS`` equal bins over [0, 1] (the last
#: one includes 1.0).
HISTOGRAM_BINS = 10


class DeviceQuality(StrictModel):
    """One period of a bin's quality telemetry: on MQTT (``…/quality``) at the end of each
    period, and in the store as ``telemetry/<device>/<day>/<start>-<run>.json``.

    Counts are for the period only, so a reader sums a day's records (``shared.quality``);
    ``spool_depth``, ``uptime_seconds`` and the model are as at the period's end."""

    schema_version: Literal[1] = 1
    device: SafeName
    run: SafeName = Field(title="This daemon process (keys never collide across restarts)")
    software_version: str | None = None
    period_start: datetime
    period_end: datetime
    period_seconds: float = Field(ge=0, title="Length of the period (monotonic clock)")
    uptime_seconds: float = Field(ge=0)
    model_version: str | None = Field(None, title="Serving at the period's end")
    model_generation: int | None = Field(None, ge=0, title="The channel generation served")
    channel: SafeName | None = Field(None, title="The model channel the bin follows")
    model_versions: list[str] = Field(
        default_factory=list, max_length=32, title="Every version served during the period"
    )
    frames: int = Field(0, ge=0, title="Frames classified")
    frames_by_class: dict[str, int] = Field(default_factory=dict, title="Frames per raw top-1")
    items: dict[str, int] = Field(default_factory=dict, title="Items per class (sorter counts)")
    top1_histogram: list[int] = Field(
        default_factory=lambda: [0] * HISTOGRAM_BINS,
        min_length=HISTOGRAM_BINS,
        max_length=HISTOGRAM_BINS,
        title="Frames per top-1 score bin (10 equal bins over [0, 1])",
    )
    nonfinite: int = Field(0, ge=0, title="Frames whose top-1 was not a number")
    low_confidence: int = Field(0, ge=0, title="Frames whose top-1 was below the threshold")
    low_confidence_threshold: float = Field(ge=0, le=1)
    low_confidence_rate: float | None = Field(None, ge=0, le=1)
    captures: int = Field(0, ge=0, title="Automatic captures")
    capture_reasons: dict[str, int] = Field(default_factory=dict)
    presses: int = Field(0, ge=0, title="Operator key presses kept")
    presses_agreed: int = Field(0, ge=0, title="Pressed the label the model predicted")
    presses_disagreed: int = Field(0, ge=0, title="Pressed another label: a correction")
    presses_unpredicted: int = Field(0, ge=0, title="Pressed while no model or 'unsure'")
    correction_rate: float | None = Field(None, ge=0, le=1, title="Disagreed / predicted")
    undos: int = Field(0, ge=0)
    errors: dict[str, int] = Field(default_factory=dict, title="Count per kind of fault")
    spool_depth: int = Field(0, ge=0, title="Entries waiting for upload")
    records_dropped: int = Field(
        0, ge=0, title="Earlier periods this process could not spool (telemetry share full)"
    )
    # shadow evaluation (``edge.shadow``): absent in records from before it, zero when off
    shadow_version: str | None = Field(None, title="The candidate model shadowed")
    shadow_frames: int = Field(0, ge=0, title="Frames the candidate also classified")
    shadow_agreed: int = Field(0, ge=0, title="Of those, the same top-1 as the serving model")
    shadow_skipped: int = Field(
        0, ge=0, title="Sampled frames skipped (CPU budget spent or the queue full)"
    )
    shadow_low_confidence: int = Field(
        0, ge=0, title="Candidate frames whose top-1 was below the threshold"
    )
    shadow_top1_histogram: list[int] = Field(
        default_factory=lambda: [0] * HISTOGRAM_BINS,
        min_length=HISTOGRAM_BINS,
        max_length=HISTOGRAM_BINS,
        title="Candidate frames per top-1 score bin",
    )


def parse_message(model: type[T], payload: bytes | str, topic: str = "message") -> T:
    """Validate a payload; MessageError says what is wrong, never a raw traceback."""
    if len(payload) > MAX_PAYLOAD:
        raise MessageError(f"{topic}: payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    try:
        data: Any = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MessageError(f"{topic}: not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MessageError(f"{topic}: expected a JSON object, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        detail = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()
        )
        raise MessageError(f"{topic}: {detail}") from None
