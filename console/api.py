"""The JSON API behind the page: one snapshot of a session (small enough to send after every
key) and the actions, independent of HTTP plumbing (``server``)."""

import logging
from http import HTTPStatus
from pathlib import Path
from typing import Any

from recyclops.shared.config import MqttConfig, RolloutConfig
from recyclops.shared.errors import StoreError

from .actions import ModelActions
from .auth import FailureLimiter, Logins
from .fleetread import TelemetryReader
from .queue import QueueFilter
from .security import AccessPolicy
from .session import BACK_KEY, INVALID_KEY, SKIP_KEY, ReviewSession

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_TYPES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "login.html": "text/html; charset=utf-8",
    "login.js": "text/javascript; charset=utf-8",
    "models.html": "text/html; charset=utf-8",
    "models.js": "text/javascript; charset=utf-8",
    "fleet.html": "text/html; charset=utf-8",
    "fleet.js": "text/javascript; charset=utf-8",
}

logger = logging.getLogger(__name__)


def state_json(session: ReviewSession, upcoming: int = 3) -> dict[str, Any]:
    current = session.current()
    if current is not None:
        try:  # sets current.image_problem: the page flags an image setup would drop
            session.image(current.sha256)
        except StoreError as exc:  # the store's fault, not the image's: the page shows saving
            logger.warning("cannot check image %s: %s", current.sha256[:12], exc)
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


class HttpError(Exception):
    def __init__(
        self, status: HTTPStatus, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


class CleanApp:
    """What the handlers share: the session, the access policy, the page's files and the
    models page's actions (``rollout`` rules, ``mqtt`` broker; the reviewer is the operator)."""

    def __init__(
        self,
        session: ReviewSession,
        policy: AccessPolicy,
        presign: bool = False,
        *,
        tls: bool = False,
        session_ttl: float = 12 * 3600.0,
        login_attempts: int = 10,
        rollout: RolloutConfig | None = None,
        mqtt: MqttConfig | None = None,
    ) -> None:
        self.session = session
        self.policy = policy
        self.presign = presign
        self.tls = tls
        self.logins = Logins(session_ttl)
        self.limiter = FailureLimiter(login_attempts, 60.0)
        self.fleet = TelemetryReader(session.store)  # the fleet page's records, kept
        self.actions = ModelActions(
            session.store, rollout or RolloutConfig(), mqtt, operator=session.reviewer
        )
        self.static = {name: (STATIC_DIR / name).read_bytes() for name in STATIC_TYPES}

    def post(self, route: str, body: dict[str, Any]) -> dict[str, Any]:
        s = self.session
        sha = body.get("sha256")
        if sha is not None and not isinstance(sha, str):
            raise HttpError(HTTPStatus.BAD_REQUEST, "sha256 must be a string")
        if route == "/api/decide":
            label = body.get("label")
            if label is None and isinstance(body.get("key"), str):
                label = s.label_for_key(body["key"])
                if label is None:
                    raise HttpError(
                        HTTPStatus.BAD_REQUEST, f"key {body['key'][:16]!r} assigns no category"
                    )
            if not isinstance(label, str) or not isinstance(sha, str):
                raise HttpError(HTTPStatus.BAD_REQUEST, "decide needs sha256 and label (or key)")
            s.decide(sha, label)
        elif route == "/api/skip":
            s.skip(sha)
        elif route == "/api/back":
            s.back()
        elif route == "/api/withdraw":
            if not isinstance(sha, str):
                raise HttpError(HTTPStatus.BAD_REQUEST, "withdraw needs sha256")
            s.withdraw(sha)
        elif route == "/api/flush":
            s.flush()
        elif route == "/api/filter":
            s.set_filter(parse_filter(body))
        else:
            raise HttpError(HTTPStatus.NOT_FOUND, f"no such action {route[:60]!r}")
        return state_json(s)


def parse_filter(body: dict[str, Any]) -> QueueFilter:
    def names(field: str) -> tuple[str, ...]:
        value = body.get(field, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise HttpError(HTTPStatus.BAD_REQUEST, f"{field} must be a list of names")
        return tuple(value)

    include = body.get("include_decided", False)
    if not isinstance(include, bool):
        raise HttpError(HTTPStatus.BAD_REQUEST, "include_decided must be true or false")
    return QueueFilter(names("labels"), names("devices"), include)
