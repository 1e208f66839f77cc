"""The review tool's routes on Starlette: the pages, the static files and the JSON API.

Every route but ``/healthz`` and the login form's files obeys the access policy
(``security``): Host rule, then a token header or a live login cookie when a token is set;
state changes also need a same-origin JSON body of at most ``MAX_BODY`` bytes. Handlers that
touch the session or the store run in Starlette's thread pool (the session is blocking and
thread-safe); the checks themselves are in-memory and run on the event loop.

GET  /                      the review page, or the login form (``/?token=…`` logs in)
GET  /models                the models page (every version's blessing, each channel's history)
GET  /fleet                 the fleet page (each bin's state, rates, trend and drift alarm)
GET  /static/<file>         the pages' scripts and style (a fixed list, no paths)
GET  /healthz               {"ok": true} for the container's health check
GET  /api/state             the current item, what comes next, progress, saving status
GET  /api/image/<sha256>    a gathered image (through the app, or a redirect to a presigned URL)
GET  /api/conflicts         images on which sessions disagree
GET  /api/models            model versions with their blessing, channels with their generations
GET  /api/fleet             every bin's telemetry figures (``fleet``)
GET  /api/models/promote    ?from=&to=: the evidence and what a promotion would do (``actions``)
GET  /api/models/rollback   ?channel=: the versions a rollback may go back to
POST /api/models/promote    {"from", "to", "version", "generation"}: promote what was confirmed
POST /api/models/rollback   {"channel", "to", "generation", "note"}: roll back to a version
POST /api/login             {"token"}: sets an expiring session cookie (token-protected servers)
POST /api/<action>          decide, skip, back, withdraw, flush, filter (``api.CleanApp.post``)
"""

import json
import logging
import re
from collections.abc import Awaitable, Callable
from functools import partial
from http import HTTPStatus
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recyclops.shared import layout
from recyclops.shared.errors import ObjectNotFoundError, RecyclopsError, StoreError
from recyclops.shared.journals import UnknownLabelError

from .actions import BadInput, Refused
from .api import STATIC_TYPES, CleanApp, HttpError, state_json
from .auth import SESSION_COOKIE
from .models import models_json
from .security import cookie_value
from .session import NothingToUndoError, UnknownImageError

logger = logging.getLogger(__name__)

#: What the login form needs before a login (no data in any of them).
PUBLIC_STATIC = frozenset({"login.html", "login.js", "app.css"})
#: The pages, each a static file behind the login.
PAGES = {
    "/": "index.html",
    "/index.html": "index.html",
    "/models": "models.html",
    "/fleet": "fleet.html",
}
SHA_RE = re.compile(r"^[0-9a-f]{64}$")
MAX_BODY = 4096
Handler = Callable[[CleanApp, Request], Awaitable[Response]]


def _send(status: int, body: bytes, ctype: str, extra: dict[str, str] | None = None) -> Response:
    return Response(body, status_code=status, headers={"Content-Type": ctype, **(extra or {})})


def _json(data: Any, status: int = HTTPStatus.OK, extra: dict[str, str] | None = None) -> Response:
    body = json.dumps(data).encode("utf-8")
    return _send(status, body, "application/json", {"Cache-Control": "no-store", **(extra or {})})


def _error(status: int, message: str, extra: dict[str, str] | None = None) -> Response:
    return _json({"error": message}, status, extra)


def _static(app: CleanApp, name: str, status: int = HTTPStatus.OK) -> Response:
    if name not in STATIC_TYPES:
        raise HttpError(HTTPStatus.NOT_FOUND, "not found")
    return _send(status, app.static[name], STATIC_TYPES[name], {"Cache-Control": "no-cache"})


def _client(request: Request) -> str:
    """The peer's address (proxy headers are not trusted: see ``server``)."""
    return request.client.host if request.client else ""


def _check_token(app: CleanApp, request: Request, given: str) -> bool:
    """A token attempt: 429 while this client is over its limit, else right or wrong."""
    client = _client(request)
    wait = app.limiter.retry_after(client)
    if wait > 0:
        raise HttpError(
            HTTPStatus.TOO_MANY_REQUESTS,
            f"too many wrong tokens from {client}; try again in {wait:.0f} s",
            {"Retry-After": str(int(wait) + 1)},
        )
    if app.policy.check_token_value(given):
        return True
    app.limiter.failure(client)
    return False


def _authorized(app: CleanApp, request: Request) -> bool:
    """Host rule, then: no token configured, a right token header, or a live login."""
    policy = app.policy
    if not policy.host_ok(request.headers):
        raise HttpError(HTTPStatus.FORBIDDEN, "Host header is not a loopback name")
    if not policy.token:
        return True
    given = policy.presented_token(request.headers)
    if given is not None:
        if _check_token(app, request, given):
            return True
        raise HttpError(HTTPStatus.UNAUTHORIZED, "wrong token")
    return app.logins.valid(cookie_value(request.headers.get("Cookie") or "", SESSION_COOKIE))


def _guard(app: CleanApp, request: Request) -> None:
    if not _authorized(app, request):
        raise HttpError(HTTPStatus.UNAUTHORIZED, "token required (log in at / first)")


def _login(app: CleanApp, request: Request, token: str, *, redirect: bool) -> Response:
    """Trade the token, once, for a random session cookie that expires."""
    if not app.policy.host_ok(request.headers):
        raise HttpError(HTTPStatus.FORBIDDEN, "Host header is not a loopback name")
    extra = {"Location": "/"} if redirect else {}
    if app.policy.token is not None:
        if not _check_token(app, request, token):
            raise HttpError(HTTPStatus.UNAUTHORIZED, "wrong token")
        extra["Set-Cookie"] = app.logins.cookie(app.logins.create(), secure=app.tls)
    if redirect:
        return _send(HTTPStatus.SEE_OTHER, b"", "text/plain", extra)
    return _json({"ok": True}, extra=extra)


async def _read_body(request: Request) -> bytes:
    """At most ``MAX_BODY`` bytes, refused before reading when the length says more."""
    try:
        length = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        length = -1
    too_big = HttpError(
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        f"body must be 0-{MAX_BODY} bytes",
        {"Connection": "close"},
    )
    if length < 0 or length > MAX_BODY:
        raise too_big
    raw = b""
    async for chunk in request.stream():  # a chunked body has no length: count it
        raw += chunk
        if len(raw) > MAX_BODY:
            raise too_big
    return raw


# -- routes -----------------------------------------------------------------------------------
async def healthz(app: CleanApp, request: Request) -> Response:
    return _json({"ok": not app.session.closed})


async def page(app: CleanApp, request: Request) -> Response:
    if request.url.path == "/" and "token" in request.query_params:
        return _login(app, request, request.query_params["token"], redirect=True)
    if not _authorized(app, request):
        return _static(app, "login.html", HTTPStatus.UNAUTHORIZED)  # the login form
    return _static(app, PAGES[request.url.path])


async def static(app: CleanApp, request: Request) -> Response:
    name = request.path_params["name"]
    if name not in PUBLIC_STATIC:
        _guard(app, request)
    return _static(app, name)


async def api_state(app: CleanApp, request: Request) -> Response:
    _guard(app, request)
    return _json(await run_in_threadpool(state_json, app.session))


async def api_conflicts(app: CleanApp, request: Request) -> Response:
    _guard(app, request)
    return _json({"conflicts": await run_in_threadpool(app.session.conflicts)})


async def api_models(app: CleanApp, request: Request) -> Response:
    _guard(app, request)
    return _json(await run_in_threadpool(models_json, app.session.store))


async def api_fleet(app: CleanApp, request: Request) -> Response:
    _guard(app, request)
    return _json(await run_in_threadpool(app.fleet.fleet_json))


async def api_image(app: CleanApp, request: Request) -> Response:
    _guard(app, request)
    sha = request.path_params["sha"]
    if not SHA_RE.match(sha):
        raise HttpError(HTTPStatus.NOT_FOUND, "unknown image id (expected a sha256)")
    view = await run_in_threadpool(app.session.image, sha)
    if view.problem:
        raise HttpError(HTTPStatus.UNPROCESSABLE_ENTITY, view.problem)
    if app.presign and view.as_stored:
        key = layout.image_key(view.sha256)
        url = await run_in_threadpool(app.session.store.presigned_url, key, 600)
        if url:
            return _send(HTTPStatus.FOUND, b"", "text/plain", {"Location": url})
    cache = {"Cache-Control": "private, max-age=3600"}
    return _send(HTTPStatus.OK, view.body, view.content_type, cache)


async def _post_body(app: CleanApp, request: Request, *, login: bool = False) -> dict[str, Any]:
    """A state change's JSON object: at most ``MAX_BODY`` bytes, authorized (but for the
    login itself), same-origin JSON."""
    raw = await _read_body(request)
    if not login:
        _guard(app, request)
    refusal = app.policy.write_refusal(request.headers)
    if refusal:
        raise HttpError(HTTPStatus.FORBIDDEN, refusal)
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise HttpError(HTTPStatus.BAD_REQUEST, "body is not valid JSON") from None
    if not isinstance(body, dict):
        raise HttpError(HTTPStatus.BAD_REQUEST, "body must be a JSON object")
    return body


async def api_post(app: CleanApp, request: Request) -> Response:
    route = request.url.path
    body = await _post_body(app, request, login=route == "/api/login")
    if route == "/api/login":
        token = body.get("token")
        if not isinstance(token, str):
            raise HttpError(HTTPStatus.BAD_REQUEST, "login needs a token")
        return _login(app, request, token, redirect=False)
    return _json(await run_in_threadpool(app.post, route, body))


async def api_model_action(app: CleanApp, request: Request) -> Response:
    """Promote or rollback: GET the plan (a look, nothing changes), POST the confirmed act."""
    promote = request.url.path.endswith("/promote")
    call: Callable[[], dict[str, Any]]
    if request.method == "GET":
        _guard(app, request)
        q = request.query_params
        if promote:
            call = partial(app.actions.promote_plan, q.get("from", ""), q.get("to", ""))
        else:
            call = partial(app.actions.rollback_plan, q.get("channel", ""))
    else:
        body = await _post_body(app, request)
        call = partial(app.actions.promote if promote else app.actions.rollback, body)
    try:
        return _json(await run_in_threadpool(call))
    except BadInput as exc:
        raise HttpError(HTTPStatus.BAD_REQUEST, str(exc)) from None
    except Refused as exc:  # the evidence does not carry it: say exactly what is missing
        return _json(
            {"error": str(exc), "missing": exc.missing, "lines": exc.lines}, HTTPStatus.CONFLICT
        )


async def not_found(app: CleanApp, request: Request) -> Response:
    _guard(app, request)  # as before: an unknown route tells an outsider nothing
    raise HttpError(HTTPStatus.NOT_FOUND, "not found")


def _endpoint(app: CleanApp, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """The handler with every error answered as JSON ``{"error"}`` and its status."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(app, request)
        except HttpError as exc:
            return _error(exc.status, str(exc), exc.headers)
        except (UnknownImageError, ObjectNotFoundError) as exc:
            return _error(HTTPStatus.NOT_FOUND, str(exc))
        except UnknownLabelError as exc:
            return _error(HTTPStatus.BAD_REQUEST, str(exc))
        except NothingToUndoError as exc:
            return _error(HTTPStatus.CONFLICT, str(exc))
        except StoreError as exc:
            logger.error("store: %s", exc)
            return _error(HTTPStatus.BAD_GATEWAY, f"store error: {exc}")
        except RecyclopsError as exc:
            return _error(HTTPStatus.CONFLICT, str(exc))
        except Exception:
            logger.exception("%s %s failed", request.method, request.url.path[:200])
            return _error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error (see the server log)")

    return endpoint


class SecurityHeaders:
    """Adds the headers every answer carries (pages, JSON, images, Starlette's own 404/405)."""

    def __init__(self, app: ASGIApp, *, presign: bool) -> None:
        self.app = app
        img_src = "'self' http: https:" if presign else "'self'"
        self.headers = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            (
                b"content-security-policy",
                f"default-src 'self'; img-src {img_src}; frame-ancestors 'none'; "
                "base-uri 'none'".encode(),
            ),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *self.headers]}
            await send(message)

        await self.app(scope, receive, with_headers)


def build(app: CleanApp) -> ASGIApp:
    """The ASGI application for one review session."""

    def route(path: str, handler: Handler, methods: list[str]) -> Route:
        return Route(path, _endpoint(app, handler), methods=methods)

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        return _error(status, HTTPStatus(status).phrase.lower())

    routes = [
        route("/healthz", healthz, ["GET"]),
        *(route(path, page, ["GET"]) for path in PAGES),
        route("/static/{name}", static, ["GET"]),
        route("/api/state", api_state, ["GET"]),
        route("/api/conflicts", api_conflicts, ["GET"]),
        route("/api/models", api_models, ["GET"]),
        route("/api/fleet", api_fleet, ["GET"]),
        route("/api/image/{sha}", api_image, ["GET"]),
        *(
            route(f"/api/models/{action}", api_model_action, ["GET", "POST"])
            for action in ("promote", "rollback")
        ),
        route("/api/{action}", api_post, ["POST"]),
        route("/{rest:path}", not_found, ["GET", "POST"]),
    ]
    starlette = Starlette(routes=routes, exception_handlers={HTTPException: http_error})
    return SecurityHeaders(starlette, presign=app.presign)
