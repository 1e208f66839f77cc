"""Gathered records and review decisions, and how an image's current label is resolved."""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import (
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
)

from .config.base import SafeName, Sha256Hex, StrictModel
from .errors import RecyclopsError

INVALID = "invalid"


def utcnow() -> datetime:
    return datetime.now(UTC)


class _ShaModel(StrictModel):
    sha256: Sha256Hex = Field(title="Image sha256")


#: Why a bin captured a frame by itself.
CaptureReason = Literal["low_score", "small_margin", "window_disagrees"]


class AutoCapture(StrictModel):
    """Why a bin kept a frame nobody pressed a key for: the model was unsure of it."""

    reasons: list[CaptureReason] = Field(min_length=1)
    scores: dict[str, float] = Field(title="The frame's class probabilities")
    top1: float = Field(ge=0.0, le=1.0)
    margin: float = Field(ge=0.0, le=1.0, title="Top-1 minus top-2 probability")
    window: list[str] = Field(default_factory=list, title="Per-frame labels of the window")


class GatheredRecord(_ShaModel):
    """One key press on a bin (or, with ``capture``, a frame the bin kept by itself because the
    model was unsure: ``label`` is then the model's own top-1, not an operator's)."""

    schema_version: Literal[1] = 1
    label: str = Field(title="Label pressed")
    device: SafeName
    captured_at: datetime
    model_version: str | None = None
    prediction: str | None = None
    score: float | None = Field(None, ge=0.0, le=1.0)
    width: int | None = Field(None, ge=1)
    height: int | None = Field(None, ge=1)
    capture: AutoCapture | None = Field(None, title="Set on automatic captures only")

    @property
    def auto(self) -> bool:
        return self.capture is not None

    @model_serializer(mode="wrap")
    def _compact(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        """Operator records stay byte-identical to the format before automatic captures."""
        data = handler(self)
        if isinstance(data, dict) and data.get("capture") is None:
            data.pop("capture", None)
        return data


class GatheredUndo(_ShaModel):
    """Withdraws the record of ``device`` with this sha and ``captured_at`` (which names it)."""

    schema_version: Literal[1] = 1
    device: SafeName
    captured_at: datetime = Field(title="Capture time of the gather undone")
    undone_at: datetime


class Decision(_ShaModel):
    """One line of a review journal: a label given, or the session's own earlier one withdrawn."""

    schema_version: Literal[1] = 1
    session: SafeName
    seq: int = Field(ge=0, title="Order within the session")
    time: datetime
    action: Literal["label", "withdraw"] = "label"
    label: str | None = Field(None, title="Category name, or 'invalid'")
    reviewer: str = Field("", max_length=64)

    @field_validator("label")
    @classmethod
    def _label(cls, value: str | None) -> str | None:
        if value is not None and not value:
            raise ValueError("label must not be empty")
        return value


def parse_journal(text: str, source: str = "journal") -> tuple[list[Decision], list[str]]:
    """Decisions in a session's JSONL; bad lines are reported, not fatal."""
    out: list[Decision] = []
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(Decision.model_validate_json(line))
        except ValidationError as exc:
            problems.append(f"{source}:{number}: {exc.errors()[0]['msg']}")
    return out, problems


def dump_journal(decisions: Iterable[Decision]) -> bytes:
    return "".join(d.model_dump_json() + "\n" for d in decisions).encode("utf-8")


@dataclass
class Resolution:
    """An image's current label and the evidence behind it."""

    sha256: str
    label: str | None
    decided_at: datetime | None
    session: str | None
    votes: dict[str, str] = field(default_factory=dict)  # session -> that session's label

    @property
    def conflict(self) -> bool:
        return len(set(self.votes.values())) > 1

    @property
    def usable(self) -> bool:
        return self.label is not None and self.label != INVALID


def resolve_labels(decisions: Iterable[Decision]) -> dict[str, Resolution]:
    """The rule: within a session, decisions replay in ``seq`` order and a withdraw clears
    that session's label. Across sessions the latest standing decision wins, ties broken by
    session id then seq, so every reader gets the same answer. Disagreement stays visible in
    ``votes``. "invalid" is a label that keeps the image out of the data set."""
    by_image: dict[str, dict[str, list[Decision]]] = defaultdict(lambda: defaultdict(list))
    for d in decisions:
        by_image[d.sha256][d.session].append(d)
    out: dict[str, Resolution] = {}
    for sha, sessions in by_image.items():
        standing: list[Decision] = []
        votes: dict[str, str] = {}
        for session, items in sessions.items():
            current: Decision | None = None
            for d in sorted(items, key=lambda d: d.seq):
                current = d if d.action == "label" else None
            if current is not None and current.label is not None:
                standing.append(current)
                votes[session] = current.label
        if not standing:
            out[sha] = Resolution(sha, None, None, None, votes)
            continue
        win = max(standing, key=lambda d: (d.time, d.session, d.seq))
        out[sha] = Resolution(sha, win.label, win.time, win.session, votes)
    return out


class UnknownLabelError(RecyclopsError):
    """A decision names a category that is not configured."""
