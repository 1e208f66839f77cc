"""The review queue: what was gathered, what others already decided, and in which order to look.

Read-only over the store: ``gathered/`` records (minus undo tombstones) and every session's
journal under ``labels/``. Nothing here writes.
"""

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import ValidationError

from recyclops.shared import layout
from recyclops.shared.errors import StoreError
from recyclops.shared.records import (
    Decision,
    GatheredRecord,
    Resolution,
    parse_journal,
    resolve_labels,
)
from recyclops.shared.store import ObjectStore

logger = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class QueueItem:
    """One image to review, with every standing gathered record for it."""

    sha256: str
    records: list[GatheredRecord]
    prior: Resolution | None = None  # decisions of other sessions
    #: why the image cannot be used (missing, corrupt, undecodable); None: fine or not checked
    image_problem: str | None = None

    @property
    def latest(self) -> GatheredRecord:
        return max(self.records, key=lambda r: (r.captured_at, r.device))

    @property
    def gathered_label(self) -> str:
        return self.latest.label

    @property
    def gathered_labels(self) -> list[str]:
        return sorted({r.label for r in self.records})

    @property
    def devices(self) -> list[str]:
        return sorted({r.device for r in self.records})

    @property
    def label_disagreement(self) -> bool:
        """Byte-identical images gathered under different labels (one sha, several labels)."""
        return len(self.gathered_labels) > 1

    @property
    def predicted(self) -> GatheredRecord | None:
        with_pred = [r for r in self.records if r.prediction is not None]
        return max(with_pred, key=lambda r: (r.captured_at, r.device)) if with_pred else None

    @property
    def likely_mistake(self) -> bool:
        pred = self.predicted
        return pred is not None and pred.prediction != pred.label

    @property
    def decided_elsewhere(self) -> bool:
        return self.prior is not None and self.prior.label is not None

    def priority(self) -> tuple[Any, ...]:
        """Smaller first: undecided, then flagged duplicates, model disagreements (most
        confident first), low-confidence agreements, and items without a prediction."""
        pred = self.predicted
        score = pred.score if pred is not None and pred.score is not None else None
        if self.label_disagreement:
            group, rank = 0, 0.0
        elif self.likely_mistake:
            group, rank = 1, -(score if score is not None else 0.0)
        elif score is not None:
            group, rank = 2, score
        else:
            group, rank = 3, 0.0
        return (self.decided_elsewhere, group, rank, self.latest.captured_at, self.sha256)

    def to_json(self) -> dict[str, Any]:
        pred = self.predicted
        prior = self.prior
        return {
            "sha256": self.sha256,
            "gathered_label": self.gathered_label,
            "gathered_labels": self.gathered_labels,
            "devices": self.devices,
            "captured_at": self.latest.captured_at.isoformat(),
            "records": len(self.records),
            "prediction": pred.prediction if pred else None,
            "score": pred.score if pred else None,
            "model_version": pred.model_version if pred else None,
            "likely_mistake": self.likely_mistake,
            "label_disagreement": self.label_disagreement,
            "image_problem": self.image_problem,
            "prior": None
            if prior is None
            else {
                "label": prior.label,
                "session": prior.session,
                "votes": dict(prior.votes),
                "conflict": prior.conflict,
            },
        }


@dataclass
class QueueFilter:
    """Which items a session reviews. Empty tuples mean "all"."""

    labels: Sequence[str] = ()
    devices: Sequence[str] = ()
    include_decided: bool = False

    def accepts(self, item: QueueItem) -> bool:
        if self.labels and not set(self.labels) & set(item.gathered_labels):
            return False
        if self.devices and not set(self.devices) & set(item.devices):
            return False
        return self.include_decided or not item.decided_elsewhere


@dataclass
class LoadedQueue:
    items: dict[str, QueueItem]  # every gathered image, filtered or not
    order: list[str]  # the filtered shas, in review order
    problems: list[str] = field(default_factory=list)


def _parallel(
    fn: Callable[[str], T], keys: Iterable[str], workers: int
) -> list[tuple[str, T | Exception]]:
    def safe(key: str) -> tuple[str, T | Exception]:
        try:
            return key, fn(key)
        except StoreError as exc:
            return key, exc

    keys = list(keys)
    if workers <= 1 or len(keys) < 2:
        return [safe(k) for k in keys]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(safe, keys))


def load_gathered(
    store: ObjectStore, workers: int = 16
) -> tuple[dict[str, list[GatheredRecord]], list[str]]:
    """Standing gathered records by sha; a record with an undo tombstone beside it is dropped.
    Unreadable records are reported (and left in the store), never fatal."""
    records: dict[str, layout.GatheredKey] = {}
    undone: set[layout.GatheredKey] = set()
    for key in store.list(layout.GATHERED):
        parsed = layout.parse_gathered_key(key)
        if parsed is None:
            continue
        if parsed.undo:
            undone.add(parsed._replace(undo=False))
        else:
            records[key] = parsed
    problems: list[str] = []
    by_sha: dict[str, list[GatheredRecord]] = defaultdict(list)
    wanted = [key for key, parsed in records.items() if parsed not in undone]
    for key, result in _parallel(store.get, wanted, workers):
        if isinstance(result, Exception):
            problems.append(f"{key}: {result}")
            continue
        try:
            record = GatheredRecord.model_validate_json(result)
        except ValidationError as exc:
            problems.append(f"{key}: not a gathered record: {exc.errors()[0]['msg']}")
            continue
        device, sha = records[key].device, records[key].sha256
        if record.sha256 != sha or record.device != device:
            problems.append(
                f"{key}: record names sha {record.sha256[:12]}… / device "
                f"{record.device!r}, not its key's"
            )
            continue
        by_sha[sha].append(record)
    return dict(by_sha), problems


def load_decisions(
    store: ObjectStore, exclude: str | None = None, workers: int = 16
) -> tuple[list[Decision], list[str]]:
    """Every journal under ``labels/`` except ``exclude`` (a session's own key)."""
    keys = [k for k in store.list(layout.LABELS) if k.endswith(".jsonl") and k != exclude]
    decisions: list[Decision] = []
    problems: list[str] = []
    for key, result in _parallel(store.get, keys, workers):
        if isinstance(result, Exception):
            problems.append(f"{key}: {result}")
            continue
        found, bad = parse_journal(result.decode("utf-8", "replace"), key)
        decisions += found
        problems += bad
    return decisions, problems


def load_queue(
    store: ObjectStore,
    qfilter: QueueFilter | None = None,
    *,
    exclude_journal: str | None = None,
    workers: int = 16,
) -> LoadedQueue:
    """Build the queue: gathered images, other sessions' resolutions, filter, order."""
    qfilter = qfilter or QueueFilter()
    gathered, problems = load_gathered(store, workers)
    decisions, more = load_decisions(store, exclude_journal, workers)
    problems += more
    resolved = resolve_labels(decisions)
    items = {sha: QueueItem(sha, recs, resolved.get(sha)) for sha, recs in gathered.items()}
    chosen = sorted((i for i in items.values() if qfilter.accepts(i)), key=QueueItem.priority)
    for problem in problems:
        logger.warning("queue: %s", problem)
    return LoadedQueue(items, [i.sha256 for i in chosen], problems)
