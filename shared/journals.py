"""Review decisions: the journal lines a review session writes, reading every journal in the
store, and how an image's current label is resolved from them.

Each review session owns one append-only JSONL journal under ``labels/`` (see
docs/store-layout.md). The data set sync, the review tool's queue and the importer all read
every journal the same way, here.
"""

import re
import secrets
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from pydantic import Field, ValidationError, field_validator

from . import layout
from .config.base import StrictModel
from .errors import ObjectNotFoundError, RecyclopsError, StoreError
from .primitives import SafeName, Sha256Hex, is_safe_segment
from .store import ObjectStore

INVALID = "invalid"
JOURNAL_SUFFIX = ".jsonl"


def utcnow() -> datetime:
    return datetime.now(UTC)


class Decision(StrictModel):
    """One line of a review journal: a label given, or the session's own earlier one withdrawn."""

    sha256: Sha256Hex = Field(title="Image sha256")
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


def new_session_id(
    who: str = "", *, kind: str = "", anonymous: str = "reviewer", now: datetime | None = None
) -> str:
    """``[<kind>-]<who>-<utc time>-<random>``: unique, sortable by start, says who wrote the
    journal, safe as a key segment (``who`` is cut to 24 safe characters, else ``anonymous``)."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", who)[:24].strip("_-") or anonymous
    stamp = (now or utcnow()).strftime("%Y%m%dT%H%M%SZ")
    session = f"{kind}-{name}" if kind else name
    session = f"{session}-{stamp}-{secrets.token_hex(4)}"
    assert is_safe_segment(session)
    return session


class UnknownLabelError(RecyclopsError):
    """A decision names a category that is not configured."""


def _lines(text: str | bytes, source: str, problems: list[str]) -> list[tuple[int, str]]:
    if isinstance(text, str):
        return list(enumerate(text.splitlines(), 1))
    out = []
    for number, raw in enumerate(text.split(b"\n"), 1):
        try:
            out.append((number, raw.decode("utf-8")))
        except UnicodeDecodeError as exc:
            problems.append(f"{source}:{number}: not UTF-8: {exc.reason}")
    return out


def parse_journal(text: str | bytes, source: str = "journal") -> tuple[list[Decision], list[str]]:
    """Decisions in a session's JSONL; bad lines (not UTF-8, not a decision) are reported,
    not fatal: one damaged line costs that line, not the session's other decisions."""
    out: list[Decision] = []
    problems: list[str] = []
    for number, line in _lines(text, source, problems):
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
class Journals:
    """Every decision in the store's journals, and what could not be read."""

    decisions: list[Decision] = field(default_factory=list)
    #: damaged lines and journals deleted since the listing
    problems: list[str] = field(default_factory=list)
    #: journals the store failed to hand over: the labels are not fully known
    failures: list[str] = field(default_factory=list)


def read_journals(store: ObjectStore, *, exclude: str | None = None, workers: int = 16) -> Journals:
    """Read every journal under ``labels/`` (but ``exclude``, a session's own key) in parallel."""
    keys = [k for k in store.list(layout.LABELS) if k.endswith(JOURNAL_SUFFIX) and k != exclude]

    def get(key: str) -> tuple[str, bytes | Exception]:
        try:
            return key, store.get(key)
        except StoreError as exc:  # ObjectNotFoundError included
            return key, exc

    if workers <= 1 or len(keys) < 2:
        bodies = [get(k) for k in keys]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            bodies = list(pool.map(get, keys))
    out = Journals()
    for key, body in bodies:
        if isinstance(body, ObjectNotFoundError):
            out.problems.append(f"{key}: cannot read journal: {body}")
        elif isinstance(body, Exception):
            out.failures.append(f"{key}: cannot read journal: {body}")
        else:
            found, bad = parse_journal(body, key)
            out.decisions += found
            out.problems += bad
    return out


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
