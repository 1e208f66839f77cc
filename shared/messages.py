"""MQTT topics and payloads, as pydantic models both sides validate.

Topics: ``recyclops/<fleet>/models/<channel>`` (retained model notice: a ``ModelRef`` from
``shared/manifest.py``, the same object as the channel pointer, sent as ``notice_payload()``),
``recyclops/<fleet>/devices/<id>/status`` (retained; last will "offline"),
``recyclops/<fleet>/devices/<id>/stats`` and ``…/events`` (not retained).
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
