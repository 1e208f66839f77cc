"""The review tool's HTTP server: standard library only, one page, a small JSON API.

Routes (every one but ``/healthz`` obeys the access policy in ``security``):

GET  /                      the page, or the login form (``/?token=…`` logs in, then redirects)
GET  /static/<file>         the page's script and style (a fixed list, no paths)
GET  /healthz               {"ok": true} for the container's health check
GET  /api/state             the current item, what comes next, progress, saving status
GET  /api/image/<sha256>    a gathered image (through the app, or a redirect to a presigned URL)
GET  /api/conflicts         images on which sessions disagree
POST /api/login             {"token"}: sets an expiring session cookie (token-protected servers)
POST /api/decide            {"sha256", "label"} or {"sha256", "key"}
POST /api/skip              {"sha256"?}
POST /api/back              {}
POST /api/withdraw          {"sha256"}
POST /api/flush             {}
POST /api/filter            {"labels": [...], "devices": [...], "include_decided": bool}
"""

import contextlib
import json
import logging
import re
import socket
import ssl
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from recyclops.shared import layout
from recyclops.shared.errors import ObjectNotFoundError, RecyclopsError, StoreError
from recyclops.shared.journals import UnknownLabelError

from .api import STATIC_TYPES, CleanApp, HttpError, state_json
from .auth import SESSION_COOKIE
from .security import AccessPolicy, cookie_value, tls_context
from .session import NothingToUndoError, ReviewSession, UnknownImageError

logger = logging.getLogger(__name__)

#: What the login form needs before a login (no data in any of them).
PUBLIC_STATIC = frozenset({"login.html", "login.js", "app.css"})
IMAGE_RE = re.compile(r"^/api/image/([0-9a-f]{64})$")
MAX_BODY = 4096


class Handler(BaseHTTPRequestHandler):
    server: "CleanServer"
    server_version = "recyclops-clean"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    @property
    def app(self) -> CleanApp:
        return self.server.app

    def setup(self) -> None:
        # An idle keep-alive connection (or a slow client) gives its thread back after this.
        super().setup()
        self.connection.settimeout(self.server.idle_timeout)

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

    def _error(self, status: HTTPStatus, message: str, extra: dict[str, str] | None = None) -> None:
        body = json.dumps({"error": message}).encode("utf-8")
        headers = {"Cache-Control": "no-store", **(extra or {})}
        self._send(status, body, "application/json", headers)

    def _check_token(self, given: str) -> bool:
        """A token attempt: 429 while this client is over its limit, else right or wrong."""
        client = str(self.client_address[0])
        wait = self.app.limiter.retry_after(client)
        if wait > 0:
            raise HttpError(
                HTTPStatus.TOO_MANY_REQUESTS,
                f"too many wrong tokens from {client}; try again in {wait:.0f} s",
                {"Retry-After": str(int(wait) + 1)},
            )
        if self.app.policy.check_token_value(given):
            return True
        self.app.limiter.failure(client)
        return False

    def _authorized(self) -> bool:
        """Host rule, then: no token configured, a right token header, or a live login."""
        policy = self.app.policy
        if not policy.host_ok(self.headers):
            raise HttpError(HTTPStatus.FORBIDDEN, "Host header is not a loopback name")
        if not policy.token:
            return True
        given = policy.presented_token(self.headers)
        if given is not None:
            if self._check_token(given):
                return True
            raise HttpError(HTTPStatus.UNAUTHORIZED, "wrong token")
        return self.app.logins.valid(cookie_value(self.headers.get("Cookie") or "", SESSION_COOKIE))

    def _guard(self) -> None:
        if not self._authorized():
            raise HttpError(HTTPStatus.UNAUTHORIZED, "token required (log in at / first)")

    def _dispatch(self, fn: Any) -> None:
        try:
            fn()
        except HttpError as exc:
            self._error(exc.status, str(exc), exc.headers)
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
            self._login(parse_qs(url.query)["token"][0], redirect=True)
            return
        if path.startswith("/static/") and path[len("/static/") :] in PUBLIC_STATIC:
            self._static(path[len("/static/") :])
            return
        if path in ("/", "/index.html") and not self._authorized():
            self._static("login.html", HTTPStatus.UNAUTHORIZED)  # the login form
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

    def _login(self, token: str, *, redirect: bool) -> None:
        """Trade the token, once, for a random session cookie that expires."""
        if not self.app.policy.host_ok(self.headers):
            raise HttpError(HTTPStatus.FORBIDDEN, "Host header is not a loopback name")
        extra = {"Location": "/"} if redirect else {}
        if self.app.policy.token is not None:
            if not self._check_token(token):
                raise HttpError(HTTPStatus.UNAUTHORIZED, "wrong token")
            sid = self.app.logins.create()
            extra["Set-Cookie"] = self.app.logins.cookie(sid, secure=self.app.tls)
        if redirect:
            self._send(HTTPStatus.SEE_OTHER, b"", "text/plain", extra)
        else:
            body = json.dumps({"ok": True}).encode()
            self._send(
                HTTPStatus.OK, body, "application/json", {"Cache-Control": "no-store", **extra}
            )

    def _static(self, name: str, status: HTTPStatus = HTTPStatus.OK) -> None:
        if name not in STATIC_TYPES:
            raise HttpError(HTTPStatus.NOT_FOUND, "not found")
        self._send(status, self.app.static[name], STATIC_TYPES[name], {"Cache-Control": "no-cache"})

    def _image(self, path: str) -> None:
        match = IMAGE_RE.match(path)
        if not match:
            raise HttpError(HTTPStatus.NOT_FOUND, "unknown image id (expected a sha256)")
        view = self.app.session.image(match[1])
        if view.problem:
            raise HttpError(HTTPStatus.UNPROCESSABLE_ENTITY, view.problem)
        if self.app.presign and view.as_stored:
            key = layout.image_key(view.sha256)
            url = self.app.session.store.presigned_url(key, expires=600)
            if url:
                self._send(HTTPStatus.FOUND, b"", "text/plain", {"Location": url})
                return
        cache = {"Cache-Control": "private, max-age=3600"}
        self._send(HTTPStatus.OK, view.body, view.content_type, cache)

    def _post(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self.close_connection = True
            raise HttpError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body must be 0-{MAX_BODY} bytes")
        raw = self.rfile.read(length) if length > 0 else b""
        route = urlsplit(self.path).path
        if route != "/api/login":
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
        if route == "/api/login":
            token = body.get("token")
            if not isinstance(token, str):
                raise HttpError(HTTPStatus.BAD_REQUEST, "login needs a token")
            self._login(token, redirect=False)
            return
        self._json(HTTPStatus.OK, self.app.post(route, body))


class CleanServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        app: CleanApp,
        host: str,
        port: int,
        *,
        tls: ssl.SSLContext | None = None,
        idle_timeout: float = 30.0,
    ) -> None:
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), Handler)
        self.app = app
        self.tls = tls
        self.idle_timeout = idle_timeout
        self._thread: threading.Thread | None = None

    def finish_request(self, request: Any, client_address: Any) -> None:
        """In the request's own thread: the TLS handshake (bounded by the idle timeout, so a
        silent client cannot hold the thread), then the handler."""
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(self.idle_timeout)
        try:
            secure = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            logger.debug("TLS handshake with %s failed: %s", client_address, exc)
            return
        try:
            super().finish_request(secure, client_address)
        finally:
            with contextlib.suppress(OSError):
                secure.close()

    @property
    def url(self) -> str:
        raw, port = self.server_address[:2]
        host = raw.decode() if isinstance(raw, bytes) else str(raw)
        shown = f"[{host}]" if ":" in host else host
        return f"{'https' if self.tls else 'http'}://{shown}:{port}/"

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
    tls_cert: str | Path | None = None,
    tls_key: str | Path | None = None,
    idle_timeout: float = 30.0,
    session_ttl: float = 12 * 3600.0,
    login_attempts: int = 10,
) -> CleanServer:
    """Build the server (not yet serving: call ``start()``). Refuses a public bind without a
    token, and a certificate without its key (ConfigError)."""
    policy = AccessPolicy.for_bind(host, token)
    context = tls_context(tls_cert, tls_key)
    if context is None and policy.public:
        logger.warning(
            "serving on %s without TLS: the token and decisions cross the network in clear "
            "text (use --tls-cert and --tls-key, or a TLS proxy)",
            host,
        )
    app = CleanApp(
        session,
        policy,
        presign,
        tls=context is not None,
        session_ttl=session_ttl,
        login_attempts=login_attempts,
    )
    return CleanServer(app, host, port, tls=context, idle_timeout=idle_timeout)
