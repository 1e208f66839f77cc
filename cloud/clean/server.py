"""The review tool's HTTP server: standard library only, one page, a small JSON API.

Routes (every one but ``/healthz`` obeys the access policy in ``security``):

GET  /                      the page (``/?token=…`` sets the token cookie, then redirects)
GET  /static/<file>         the page's script and style (a fixed list, no paths)
GET  /healthz               {"ok": true} for the container's health check
GET  /api/state             the current item, what comes next, progress, saving status
GET  /api/image/<sha256>    a gathered image (through the app, or a redirect to a presigned URL)
GET  /api/conflicts         images on which sessions disagree
POST /api/decide            {"sha256", "label"} or {"sha256", "key"}
POST /api/skip              {"sha256"?}
POST /api/back              {}
POST /api/withdraw          {"sha256"}
POST /api/flush             {}
POST /api/filter            {"labels": [...], "devices": [...], "include_decided": bool}
"""

import json
import logging
import re
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from recyclops.shared import layout
from recyclops.shared.errors import ObjectNotFoundError, RecyclopsError, StoreError
from recyclops.shared.records import UnknownLabelError

from .api import state_json
from .queue import QueueFilter
from .security import COOKIE, AccessPolicy
from .session import NothingToUndoError, ReviewSession, UnknownImageError

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_TYPES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}
IMAGE_RE = re.compile(r"^/api/image/([0-9a-f]{64})$")
MAX_BODY = 4096


class HttpError(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


class CleanApp:
    """What the handlers share: the session, the access policy and the page's files."""

    def __init__(self, session: ReviewSession, policy: AccessPolicy, presign: bool = False) -> None:
        self.session = session
        self.policy = policy
        self.presign = presign
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


class Handler(BaseHTTPRequestHandler):
    server: "CleanServer"
    server_version = "recyclops-clean"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    @property
    def app(self) -> CleanApp:
        return self.server.app

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)

    # -- plumbing ---------------------------------------------------------------------------
    def _send(
        self, status: HTTPStatus, body: bytes, ctype: str, extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Referrer-Policy", "no-referrer")
        img_src = "'self' http: https:" if self.app.presign else "'self'"
        self.send_header(
            "Content-Security-Policy",
            f"default-src 'self'; img-src {img_src}; frame-ancestors 'none'; base-uri 'none'",
        )
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: HTTPStatus, data: Any) -> None:
        body = json.dumps(data).encode("utf-8")
        self._send(status, body, "application/json", {"Cache-Control": "no-store"})

    def _error(self, status: HTTPStatus, message: str) -> None:
        self._json(status, {"error": message})

    def _guard(self) -> None:
        policy = self.app.policy
        if not policy.host_ok(self.headers):
            raise HttpError(HTTPStatus.FORBIDDEN, "Host header is not a loopback name")
        if not policy.token_ok(self.headers):
            raise HttpError(HTTPStatus.UNAUTHORIZED, "token required (open /?token=… once)")

    def _dispatch(self, fn: Any) -> None:
        try:
            fn()
        except HttpError as exc:
            self._error(exc.status, str(exc))
        except (UnknownImageError, ObjectNotFoundError) as exc:
            self._error(HTTPStatus.NOT_FOUND, str(exc))
        except UnknownLabelError as exc:
            self._error(HTTPStatus.BAD_REQUEST, str(exc))
        except NothingToUndoError as exc:
            self._error(HTTPStatus.CONFLICT, str(exc))
        except StoreError as exc:
            logger.error("store: %s", exc)
            self._error(HTTPStatus.BAD_GATEWAY, f"store error: {exc}")
        except RecyclopsError as exc:
            self._error(HTTPStatus.CONFLICT, str(exc))
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception:
            logger.exception("%s %s failed", self.command, self.path[:200])
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error (see the server log)")

    # -- methods ----------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._dispatch(self._get)

    def do_HEAD(self) -> None:
        self._dispatch(self._get)

    def do_POST(self) -> None:
        self._dispatch(self._post)

    def _get(self) -> None:
        url = urlsplit(self.path)
        path = url.path
        if path == "/healthz":
            self._json(HTTPStatus.OK, {"ok": not self.app.session.closed})
            return
        if path == "/" and "token" in parse_qs(url.query):
            self._login(parse_qs(url.query)["token"][0])
            return
        self._guard()
        if path in ("/", "/index.html"):
            self._static("index.html")
        elif path.startswith("/static/"):
            self._static(path[len("/static/") :])
        elif path == "/api/state":
            self._json(HTTPStatus.OK, state_json(self.app.session))
        elif path == "/api/conflicts":
            self._json(HTTPStatus.OK, {"conflicts": self.app.session.conflicts()})
        elif path.startswith("/api/image/"):
            self._image(path)
        else:
            raise HttpError(HTTPStatus.NOT_FOUND, "not found")

    def _login(self, token: str) -> None:
        if not self.app.policy.host_ok(self.headers):
            raise HttpError(HTTPStatus.FORBIDDEN, "Host header is not a loopback name")
        if self.app.policy.token is None:
            self._send(HTTPStatus.SEE_OTHER, b"", "text/plain", {"Location": "/"})
            return
        if not self.app.policy.check_token_value(token):
            raise HttpError(HTTPStatus.UNAUTHORIZED, "wrong token")
        cookie = f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
        self._send(HTTPStatus.SEE_OTHER, b"", "text/plain", {"Location": "/", "Set-Cookie": cookie})

    def _static(self, name: str) -> None:
        if name not in STATIC_TYPES:
            raise HttpError(HTTPStatus.NOT_FOUND, "not found")
        self._send(
            HTTPStatus.OK, self.app.static[name], STATIC_TYPES[name], {"Cache-Control": "no-cache"}
        )

    def _image(self, path: str) -> None:
        match = IMAGE_RE.match(path)
        if not match:
            raise HttpError(HTTPStatus.NOT_FOUND, "unknown image id (expected a sha256)")
        item = self.app.session.item(match[1])
        key = layout.image_key(item.sha256)
        if self.app.presign:
            url = self.app.session.store.presigned_url(key, expires=600)
            if url:
                self._send(HTTPStatus.FOUND, b"", "text/plain", {"Location": url})
                return
        data = self.app.session.store.get(key)
        self._send(HTTPStatus.OK, data, "image/jpeg", {"Cache-Control": "private, max-age=3600"})

    def _post(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self.close_connection = True
            raise HttpError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body must be 0-{MAX_BODY} bytes")
        raw = self.rfile.read(length) if length > 0 else b""
        self._guard()
        refusal = self.app.policy.write_refusal(self.headers)
        if refusal:
            raise HttpError(HTTPStatus.FORBIDDEN, refusal)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            raise HttpError(HTTPStatus.BAD_REQUEST, "body is not valid JSON") from None
        if not isinstance(body, dict):
            raise HttpError(HTTPStatus.BAD_REQUEST, "body must be a JSON object")
        self._json(HTTPStatus.OK, self.app.post(urlsplit(self.path).path, body))


class CleanServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, app: CleanApp, host: str, port: int) -> None:
        import socket

        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), Handler)
        self.app = app
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        raw, port = self.server_address[:2]
        host = raw.decode() if isinstance(raw, bytes) else str(raw)
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/"

    def start(self) -> "CleanServer":
        """Serve in a background thread (tests, the CLI's main thread waits for signals)."""
        self._thread = threading.Thread(target=self.serve_forever, name="clean-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread:
            self._thread.join(10)


def serve(
    session: ReviewSession,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    token: str | None = None,
    presign: bool = False,
) -> CleanServer:
    """Build the server (not yet serving: call ``start()``). Refuses a public bind without a
    token (ConfigError)."""
    policy = AccessPolicy.for_bind(host, token)
    return CleanServer(CleanApp(session, policy, presign), host, port)
