"""One review session: the queue, the reviewer's moves, and the journal that records them.

The HTTP handlers and the demo's scripted review both drive this class, so they share one
code path. Every decision goes into this session's own journal object
``labels/<session-id>.jsonl``; only this session ever writes it, rewriting the whole journal
on each flush (an S3 put is atomic), so nobody overwrites anybody.
"""

import logging
import threading
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from recyclops.shared.config import Category
from recyclops.shared.errors import RecyclopsError, StoreError
from recyclops.shared.journals import (
    INVALID,
    Decision,
    UnknownLabelError,
    new_session_id,
    read_journals,
    resolve_labels,
)
from recyclops.shared.primitives import is_sha256
from recyclops.shared.store import ObjectStore

from .flusher import Flusher
from .images import ImageView, ImageViews
from .insights import load_insights
from .journal import Journal, recover_journals
from .queue import QueueFilter, QueueItem, load_queue

logger = logging.getLogger(__name__)

SKIP_KEY, BACK_KEY, INVALID_KEY = "s", "w", "x"


class UnknownImageError(RecyclopsError):
    """The image id is not a gathered image of this store."""


class NothingToUndoError(RecyclopsError):
    """``back`` with nothing decided or skipped yet in this session."""


class ReviewSession:
    """Load the queue, then decide / skip / back; ``flush`` and ``close`` save the journal.

    Thread-safe: the HTTP server calls it from several threads, the flusher from its own.
    """

    def __init__(
        self,
        store: ObjectStore,
        categories: Sequence[Category],
        *,
        reviewer: str = "",
        session_id: str | None = None,
        qfilter: QueueFilter | None = None,
        flush_seconds: float = 2.0,
        flush_min_seconds: float = 0.5,
        workers: int = 16,
        rescue_dir: str | Path | None = None,
        start_flusher: bool = True,
        refresh_seconds: float = 0.0,
    ) -> None:
        self.store = store
        self.categories = list(categories)
        self.labels = [c.name for c in self.categories] + [INVALID]
        self.reviewer = reviewer[:64]
        self.session_id = session_id or new_session_id(reviewer)
        self.rescue_dir = Path(rescue_dir) if rescue_dir else None
        self.recovered = recover_journals(store, self.rescue_dir) if self.rescue_dir else []
        self.journal = Journal(store, self.session_id, self.reviewer, self.rescue_dir)
        self.journal_key = self.journal.key
        self.images = ImageViews(store)
        self.qfilter = qfilter or QueueFilter()
        loaded = load_queue(store, self.qfilter, exclude_journal=self.journal_key, workers=workers)
        self.items: dict[str, QueueItem] = loaded.items
        self.problems = loaded.problems
        self.queued = len(loaded.order)
        self._remaining: list[str] = list(loaded.order)
        self._skipped: set[str] = set()
        self._history: list[tuple[str, Literal["label", "skip"]]] = []
        self._standing: dict[str, str] = {}
        self._facets: dict[str, list[str]] | None = None
        self._lock = threading.RLock()
        self.closed = False
        self._flusher = Flusher(self.flush, lambda: self.dirty, flush_seconds, flush_min_seconds)
        # Other reviewers' new decisions are read every refresh_seconds (0: only at start).
        self._refresher = Flusher(
            self.refresh, lambda: True, refresh_seconds or 1.0, 0.0, "queue-refresh"
        )
        if start_flusher:
            self._flusher.start()
            if refresh_seconds > 0:
                self._refresher.start()
        logger.info(
            "session %s: %d images queued of %d gathered",
            self.session_id,
            self.queued,
            len(self.items),
        )

    # -- what the reviewer sees -------------------------------------------------------------
    def current(self) -> QueueItem | None:
        with self._lock:
            return self.items[self._remaining[0]] if self._remaining else None

    def upcoming(self, count: int = 3) -> list[str]:
        with self._lock:
            return list(self._remaining[1 : 1 + count])

    def image(self, sha256: str) -> ImageView:
        """What the page shows for a gathered image; records the item's ``image_problem`` (a
        reviewer should mark it invalid: setup will drop it anyway). StoreError if the store
        fails."""
        item = self.item(sha256)
        view = self.images.get(item.sha256)
        item.image_problem = view.problem
        return view

    def item(self, sha256: str) -> QueueItem:
        """A gathered image by id; UnknownImageError for anything else."""
        if not isinstance(sha256, str) or not is_sha256(sha256):
            raise UnknownImageError(f"{str(sha256)[:80]!r} is not an image id (a sha256)")
        found = self.items.get(sha256)
        if found is None:
            raise UnknownImageError(f"image {sha256} was not gathered in this store")
        return found

    def label_for_key(self, key: str) -> str | None:
        """The label a key assigns (category keys, x for invalid), None for other keys."""
        key = key.lower()
        if key == INVALID_KEY:
            return INVALID
        return next((c.name for c in self.categories if c.key.lower() == key), None)

    def decision_of(self, sha256: str) -> str | None:
        with self._lock:
            return self._standing.get(sha256)

    def decisions(self) -> list[Decision]:
        return self.journal.decisions()

    def facets(self) -> dict[str, list[str]]:
        """What the filters can choose from: every gathered label and device."""
        if self._facets is None:
            labels = {label for i in self.items.values() for label in i.gathered_labels}
            devices = {device for i in self.items.values() for device in i.devices}
            self._facets = {"labels": sorted(labels), "devices": sorted(devices)}
        return self._facets

    def set_filter(self, qfilter: QueueFilter) -> None:
        """Rebuild the queue under another filter; images this session decided stay done."""
        with self._lock:
            self._check_open()
            chosen = [i for i in self.items.values() if qfilter.accepts(i)]
            chosen.sort(key=QueueItem.priority)
            self.qfilter = qfilter
            self._remaining = [i.sha256 for i in chosen if i.sha256 not in self._standing]
            self._skipped.clear()
            self.queued = len(chosen)

    # -- what the reviewer does -------------------------------------------------------------
    def decide(self, sha256: str, label: str) -> Decision:
        """Label an image (a category name or "invalid") and move on."""
        if label not in self.labels:
            raise UnknownLabelError(
                f"label {str(label)[:40]!r} is not a configured category "
                f"(expected one of {', '.join(self.labels)})"
            )
        self.item(sha256)
        with self._lock:
            self._check_open()
            decision = self.journal.append(sha256, "label", label)
            self._standing[sha256] = label
            self._drop(sha256)
            self._history.append((sha256, "label"))
        self._flusher.wake()
        return decision

    def skip(self, sha256: str | None = None) -> QueueItem | None:
        """Put the image (default: the current one) at the end of the queue; no decision."""
        with self._lock:
            self._check_open()
            sha = sha256 or (self._remaining[0] if self._remaining else None)
            if sha is None:
                return None
            self.item(sha)
            if sha not in self._remaining:
                raise UnknownImageError(f"image {sha} is not waiting in this session's queue")
            self._drop(sha)
            self._remaining.append(sha)
            self._skipped.add(sha)
            self._history.append((sha, "skip"))
            return self.current()

    def back(self) -> QueueItem:
        """Return to the previous image; if it was decided, withdraw that decision, so it
        must be classified again."""
        with self._lock:
            self._check_open()
            if not self._history:
                raise NothingToUndoError("nothing to go back to in this session")
            sha, kind = self._history.pop()
            if kind == "label" and sha in self._standing:
                self._withdraw_locked(sha)
            self._drop(sha)
            self._remaining.insert(0, sha)
            self._skipped.discard(sha)
        self._flusher.wake()
        return self.items[sha]

    def withdraw(self, sha256: str) -> Decision:
        """Withdraw this session's decision on an image and queue it again at the front."""
        self.item(sha256)
        with self._lock:
            self._check_open()
            if sha256 not in self._standing:
                raise NothingToUndoError(f"this session has no decision on {sha256} to withdraw")
            decision = self._withdraw_locked(sha256)
            self._history = [h for h in self._history if h[0] != sha256]
            self._drop(sha256)
            self._remaining.insert(0, sha256)
        self._flusher.wake()
        return decision

    def _withdraw_locked(self, sha: str) -> Decision:
        decision = self.journal.append(sha, "withdraw", None)
        del self._standing[sha]
        return decision

    def _drop(self, sha: str) -> None:
        if sha in self._remaining:
            self._remaining.remove(sha)

    def _check_open(self) -> None:
        if self.closed:
            raise RecyclopsError(f"session {self.session_id} is closed")

    # -- saving -----------------------------------------------------------------------------
    @property
    def dirty(self) -> bool:
        return self.journal.dirty

    def flush(self) -> bool:
        """Write the whole journal to the store if anything is unsaved; True if written."""
        return self.journal.flush()

    def close(self) -> None:
        """Stop the flusher and save what is left. If the store refuses, the journal is
        written to ``rescue_dir`` (when given) and the error is raised: nothing is lost."""
        if self.closed:
            return
        self._refresher.stop()
        self._flusher.stop()
        with self._lock:
            self.closed = True
        try:
            self.flush()
        except StoreError:
            if self.rescue_dir is not None:
                self.journal.rescue(self.rescue_dir)
            raise
        self.journal.discard_wal()
        logger.info(
            "session %s closed: %d decisions in %s",
            self.session_id,
            len(self.decisions()),
            self.journal_key,
        )

    def __enter__(self) -> "ReviewSession":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- reporting --------------------------------------------------------------------------
    def progress(self) -> dict[str, Any]:
        with self._lock:
            decided = Counter(self._standing.values())
            left = Counter(self.items[s].gathered_label for s in self._remaining)
            return {
                "queued": self.queued,
                "done": len(self._standing),
                "left": len(self._remaining),
                "skipped": len(self._skipped & set(self._remaining)),
                "flagged": sum(self.items[s].label_disagreement for s in self._remaining),
                "per_category": {
                    name: {"decided": decided.get(name, 0), "left": left.get(name, 0)}
                    for name in self.labels
                },
                "can_go_back": bool(self._history),
            }

    def saving(self) -> dict[str, Any]:
        return self.journal.status()

    def refresh(self) -> int:
        """Read the other sessions' journals again: update every image's votes and, unless
        decided images are wanted, take newly decided ones out of the queue (never the one
        on screen). Returns how many left the queue."""
        others = read_journals(self.store, exclude=self.journal_key).decisions
        resolved = resolve_labels(others)
        with self._lock:
            for sha, item in self.items.items():
                item.prior = resolved.get(sha)
            if self.qfilter.include_decided or not self._remaining:
                return 0
            before = len(self._remaining)
            rest = [
                s
                for s in self._remaining[1:]
                if not self.items[s].decided_elsewhere or self.items[s].second_look
            ]
            self._remaining = self._remaining[:1] + rest
            return before - len(self._remaining)

    def conflicts(self) -> list[dict[str, Any]]:
        """Images on which sessions (this one included) disagree (``kind: "review"``), and
        the import reports' conflicts (``kind: "import"``: the same bytes claimed under
        several labels, or relabelled by a later import), read fresh from the store."""
        others = read_journals(self.store, exclude=self.journal_key).decisions
        resolved = resolve_labels([*others, *self.decisions()])
        out: list[dict[str, Any]] = []
        for sha, res in sorted(resolved.items()):
            if res.conflict and sha in self.items:
                out.append(
                    {
                        "kind": "review",
                        "sha256": sha,
                        "label": res.label,
                        "session": res.session,
                        "votes": dict(res.votes),
                    }
                )
        insights, _ = load_insights(self.store)
        for c in insights.conflicts():
            now = resolved.get(c["sha256"])
            out.append(
                {
                    "kind": "import",
                    "import_kind": c.get("kind"),
                    "sha256": c["sha256"],
                    "label": now.label if now is not None else None,
                    "session": c["session"],
                    "report": c["report"],
                    "labels": c.get("labels", {}),
                    "votes": dict(now.votes) if now is not None else {},
                }
            )
        return out
