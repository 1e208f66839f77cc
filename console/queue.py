"""The review queue: what was gathered, what others already decided, and in which order to look.

Read-only over the store: ``gathered/`` records (minus undo tombstones) and every session's
journal under ``labels/``. Nothing here writes.
"""

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from recyclops.shared.gathered_index import read_gathered
from recyclops.shared.journals import Resolution, read_journals, resolve_labels
from recyclops.shared.records import GatheredRecord
from recyclops.shared.store import ObjectStore

from .insights import Insights, load_insights

logger = logging.getLogger(__name__)
T = TypeVar("T")


def _pct(p: float | None) -> str:
    return "?" if p is None else f"{p:.2f}"


@dataclass
class QueueItem:
    """One image to review, with every standing gathered record for it."""

    sha256: str
    records: list[GatheredRecord]
    prior: Resolution | None = None  # decisions of other sessions
    #: why the image cannot be used (missing, corrupt, undecodable); None: fine or not checked
    image_problem: str | None = None
    #: audit and import evidence about this image (shared by every item)
    insights: Insights | None = None

    @property
    def operator_records(self) -> list[GatheredRecord]:
        """Key presses; automatic captures are the model's word, not an operator's."""
        return [r for r in self.records if not r.auto] or self.records

    @property
    def latest(self) -> GatheredRecord:
        return max(self.operator_records, key=lambda r: (r.captured_at, r.device))

    @property
    def gathered_label(self) -> str:
        return self.latest.label

    @property
    def gathered_labels(self) -> list[str]:
        return sorted({r.label for r in self.operator_records})

    @property
    def devices(self) -> list[str]:
        return sorted({r.device for r in self.records})

    @property
    def auto_captured(self) -> GatheredRecord | None:
        """The newest automatic capture, when no operator ever pressed a key for it."""
        autos = [r for r in self.records if r.auto]
        if not autos or len(autos) != len(self.records):
            return None
        return max(autos, key=lambda r: (r.captured_at, r.device))

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
        return pred is not None and not pred.auto and pred.prediction != pred.label

    @property
    def decided_elsewhere(self) -> bool:
        return self.prior is not None and self.prior.label is not None

    @property
    def current_label(self) -> str:
        """The label the image has now: a standing decision, else what was gathered."""
        if self.prior is not None and self.prior.label is not None:
            return self.prior.label
        return self.gathered_label

    def _audit_applies(self) -> bool:
        """An audit judged the labels as they were; a decision made after it was a look."""
        ins = self.insights
        if ins is None or ins.audit_run is None:
            return False
        decided = self.prior.decided_at if self.prior is not None else None
        return decided is None or ins.audit_created is None or decided < ins.audit_created

    @property
    def label_issue(self) -> dict[str, Any] | None:
        ins = self.insights
        issue = ins.label_issues.get(self.sha256) if ins is not None else None
        if issue is None or not self._audit_applies() or issue["label"] != self.current_label:
            return None
        return issue

    @property
    def near_duplicates(self) -> list[dict[str, Any]]:
        ins = self.insights
        if ins is None or not self._audit_applies():
            return []
        return ins.near_duplicates.get(self.sha256, [])

    @property
    def import_conflicts(self) -> list[dict[str, Any]]:
        ins = self.insights
        return ins.import_conflicts.get(self.sha256, []) if ins is not None else []

    @property
    def reasons(self) -> list[dict[str, str]]:
        """Why this image is worth a look, most informative first (the page shows them)."""
        out: list[dict[str, str]] = []
        for c in self.import_conflicts:
            claims = "; ".join(
                f"{label} ({', '.join(files[:2])})" for label, files in c["labels"].items()
            )
            out.append(
                {"kind": "import_conflict", "text": f"imported under several labels: {claims}"}
            )
        if self.label_disagreement:
            text = f"identical image gathered as: {', '.join(self.gathered_labels)}"
            out.append({"kind": "label_disagreement", "text": text})
        mine = self.current_label
        for dup in self.near_duplicates:
            if dup.get("label") and dup["label"] != mine:
                text = f"near-duplicate of {dup['sha256'][:12]}… labelled {dup['label']}"
                out.append({"kind": "near_duplicate_conflict", "text": text})
        if (issue := self.label_issue) is not None:
            text = (
                f"likely label error: labelled {issue['label']}, the model says "
                f"{issue['suggested']} with p = {_pct(issue.get('p_suggested'))}"
            )
            out.append({"kind": "likely_label_error", "text": text})
        if (auto := self.auto_captured) is not None and auto.capture is not None:
            why = ", ".join(r.replace("_", " ") for r in auto.capture.reasons)
            text = (
                f"captured automatically by {auto.device}: the model was unsure ({why}; "
                f"{auto.prediction} p = {_pct(auto.score)}, margin {_pct(auto.capture.margin)})"
            )
            out.append({"kind": "auto_capture", "text": text})
        pred = self.predicted
        if self.likely_mistake and pred is not None:
            text = (
                f"the model disagrees with the gathered label: it said {pred.prediction} "
                f"(p = {_pct(pred.score)}), the operator pressed {pred.label}"
            )
            out.append({"kind": "bin_disagrees", "text": text})
        for dup in self.near_duplicates:
            if dup.get("label") == mine:
                text = f"near-duplicate of {dup['sha256'][:12]}… (same label)"
                out.append({"kind": "near_duplicate", "text": text})
        return out

    @property
    def second_look(self) -> bool:
        """Evidence that a decided label may be wrong: queued even when decided elsewhere."""
        return any(
            r["kind"] in ("import_conflict", "near_duplicate_conflict", "likely_label_error")
            for r in self.reasons
        )

    def priority(self) -> tuple[Any, ...]:
        """Smaller first: undecided (or worth a second look), then conflicts (import, gathered,
        near-duplicates), likely label errors (in the audit's order), automatic captures
        (least sure first), model disagreements (most confident first), low-confidence
        agreements, and items without a prediction."""
        pred = self.predicted
        score = pred.score if pred is not None and pred.score is not None else None
        kinds = {r["kind"] for r in self.reasons}
        issue = self.label_issue
        auto = self.auto_captured
        if kinds & {"import_conflict", "label_disagreement", "near_duplicate_conflict"}:
            group, rank = 0, 0.0
        elif issue is not None:
            group, rank = 1, float(issue.get("rank") or 0)  # the audit's own ranking
        elif auto is not None:
            group, rank = 2, auto.score if auto.score is not None else 0.0
        elif self.likely_mistake:
            group, rank = 3, -(score if score is not None else 0.0)
        elif score is not None:
            group, rank = 4, score
        else:
            group, rank = 5, 0.0
        held_back = self.decided_elsewhere and not self.second_look
        return (held_back, group, rank, self.latest.captured_at, self.sha256)

    def to_json(self) -> dict[str, Any]:
        pred = self.predicted
        prior = self.prior
        auto = self.auto_captured
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
            "auto_capture": None
            if auto is None or auto.capture is None
            else {"device": auto.device, **auto.capture.model_dump()},
            "label_issue": self.label_issue,
            "near_duplicates": self.near_duplicates,
            "reasons": self.reasons,
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
        return self.include_decided or not item.decided_elsewhere or item.second_look


@dataclass
class LoadedQueue:
    items: dict[str, QueueItem]  # every gathered image, filtered or not
    order: list[str]  # the filtered shas, in review order
    problems: list[str] = field(default_factory=list)
    insights: Insights = field(default_factory=Insights)


def load_gathered(
    store: ObjectStore, workers: int = 16, *, use_index: bool = True
) -> tuple[dict[str, list[GatheredRecord]], list[str]]:
    """Standing gathered records by sha; a record with an undo tombstone beside it is dropped.
    Unreadable records are reported (and left in the store), never fatal. Sealed days come
    from the compacted index (``recyclops compact``), newer ones from the raw objects."""
    read = read_gathered(store, workers=workers, use_index=use_index)
    by_sha: dict[str, list[GatheredRecord]] = defaultdict(list)
    for _, record in read.records:
        by_sha[record.sha256].append(record)
    return dict(by_sha), read.problems


def load_queue(
    store: ObjectStore,
    qfilter: QueueFilter | None = None,
    *,
    exclude_journal: str | None = None,
    workers: int = 16,
    use_index: bool = True,
) -> LoadedQueue:
    """Build the queue: gathered images, other sessions' resolutions, filter, order."""
    qfilter = qfilter or QueueFilter()
    gathered, problems = load_gathered(store, workers, use_index=use_index)
    journals = read_journals(store, exclude=exclude_journal, workers=workers)
    problems += journals.problems + journals.failures
    resolved = resolve_labels(journals.decisions)
    insights, more = load_insights(store)
    problems += more
    items = {
        sha: QueueItem(sha, recs, resolved.get(sha), insights=insights)
        for sha, recs in gathered.items()
    }
    chosen = sorted((i for i in items.values() if qfilter.accepts(i)), key=QueueItem.priority)
    for problem in problems:
        logger.warning("queue: %s", problem)
    return LoadedQueue(items, [i.sha256 for i in chosen], problems, insights)
