"""The JSON the page reads: one snapshot of a session, small enough to send after every key."""

from typing import Any

from .session import BACK_KEY, INVALID_KEY, SKIP_KEY, ReviewSession


def state_json(session: ReviewSession, upcoming: int = 3) -> dict[str, Any]:
    current = session.current()
    return {
        "session": session.session_id,
        "reviewer": session.reviewer,
        "categories": [{"name": c.name, "key": c.key} for c in session.categories],
        "keys": {"invalid": INVALID_KEY, "skip": SKIP_KEY, "back": BACK_KEY},
        "filter": {
            "labels": list(session.qfilter.labels),
            "devices": list(session.qfilter.devices),
            "include_decided": session.qfilter.include_decided,
        },
        "facets": session.facets(),
        "current": current.to_json() if current else None,
        "upcoming": session.upcoming(upcoming),
        "progress": session.progress(),
        "saving": session.saving(),
        "problems": len(session.problems),
        "closed": session.closed,
    }
