"""Why an image is worth a reviewer's look: the evidence the queue orders by and the page shows.

Read-only, from the store: the newest ``recyclops audit`` report (``audit/latest.json``:
likely label errors from out-of-sample probabilities, near-duplicate groups) and every import
report (``labels/<session>.import.json``: the same bytes claimed under two labels). A missing
or unreadable report is a problem to log, never a reason to refuse the review.
"""

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from recyclops.shared import layout
from recyclops.shared.errors import ObjectNotFoundError, StoreError
from recyclops.shared.store import ObjectStore

logger = logging.getLogger(__name__)

IMPORT_REPORT_SUFFIX = ".import.json"


@dataclass
class Insights:
    """Per image: the audit's label issue, its near-duplicates, import conflicts."""

    label_issues: dict[str, dict[str, Any]] = field(default_factory=dict)
    near_duplicates: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    import_conflicts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    audit_run: str | None = None
    audit_created: datetime | None = None

    def conflicts(self) -> list[dict[str, Any]]:
        """Every import conflict, for the page's conflicts list."""
        return [c for entries in self.import_conflicts.values() for c in entries]


def _audit(store: ObjectStore, out: Insights, problems: list[str]) -> None:
    try:
        report = json.loads(store.get(layout.AUDIT_LATEST))
        out.audit_run = str(report.get("run_id"))
        if created := report.get("created"):
            out.audit_created = datetime.fromisoformat(created)
        for issue in report.get("label_issues", []):
            out.label_issues[str(issue["sha256"])] = issue
        for group in report.get("near_duplicates", {}).get("groups", []):
            members = [m for m in group["members"] if m.get("sha256")]
            for member in members:
                others = [
                    {**o, "kind": group.get("kind", "near")}
                    for o in members
                    if o["sha256"] != member["sha256"]
                ]
                if others:
                    out.near_duplicates.setdefault(member["sha256"], []).extend(others)
    except ObjectNotFoundError:
        return
    except (StoreError, ValueError, KeyError, TypeError) as exc:
        problems.append(f"{layout.AUDIT_LATEST}: unreadable audit report: {exc}")


def _imports(store: ObjectStore, out: Insights, problems: list[str]) -> None:
    for key in store.list(layout.LABELS):
        if not key.endswith(IMPORT_REPORT_SUFFIX):
            continue
        try:
            report = json.loads(store.get(key))
            session = key[len(layout.LABELS) : -len(IMPORT_REPORT_SUFFIX)]
            for conflict in report.get("conflicts", []):
                entry = {**conflict, "report": key, "session": session}
                out.import_conflicts.setdefault(str(conflict["sha256"]), []).append(entry)
        except (StoreError, ValueError, KeyError, TypeError) as exc:
            problems.append(f"{key}: unreadable import report: {exc}")


def load_insights(store: ObjectStore) -> tuple[Insights, list[str]]:
    """The audit and import evidence in the store (empty when there is none)."""
    out = Insights()
    problems: list[str] = []
    _audit(store, out, problems)
    try:
        _imports(store, out, problems)
    except StoreError as exc:
        problems.append(f"import reports: {exc}")
    return out, problems
