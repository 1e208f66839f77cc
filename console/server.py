"""The review tool's HTTP server: the Starlette app (``web``) served by uvicorn in a thread.

Why a thread: the command's main thread waits for signals and saves on the way out; tests
start a server beside their own code. The listening socket is bound here, before serving,
so a port in use or a refused public bind fails at once, and port 0 tells its real port.

What uvicorn does not do by itself, and the review tool did before, is added here:

- a connection that sends nothing, stops mid-request or mid-body, or idles between requests
  is closed after ``idle_timeout`` (uvicorn only times the idle gap between requests);
- a TLS handshake is bounded by the same timeout (asyncio's default is a minute), with the
  context from ``security.tls_context`` (TLS 1.2 and later);
- proxy headers are ignored: the wrong-token limit counts the socket's peer, which an
  ``X-Forwarded-For`` from loopback must not be able to change.
"""

import asyncio
import logging
import socket
import ssl
import threading
from pathlib import Path
from typing import Any, cast

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from recyclops.shared.config import MqttConfig, RolloutConfig

from .api import CleanApp
from .security import AccessPolicy, tls_context
from .session import ReviewSession
from .web import build

logger = logging.getLogger(__name__)


def _idle_closing_protocol(idle_timeout: float) -> type[H11Protocol]:
    """uvicorn's HTTP/1.1 protocol with a timer running whenever it waits for the client."""

    class IdleClosingH11(H11Protocol):
        _idle: asyncio.TimerHandle | None = None

        def _arm(self) -> None:
            self._disarm()
            if not self.transport.is_closing():
                self._idle = self.loop.call_later(idle_timeout, self.transport.close)

        def _disarm(self) -> None:
            if self._idle is not None:
                self._idle.cancel()
                self._idle = None

        def _waiting_for_client(self) -> bool:
            """True between requests, within a request's head, or within its body."""
            return self.conn.their_state in (h11.IDLE, h11.SEND_BODY)

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(cast(asyncio.Transport, transport))
            self._arm()

        def data_received(self, data: bytes) -> None:
            self._disarm()
            super().data_received(data)
            if self._waiting_for_client():
                self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self._waiting_for_client():
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return IdleClosingH11


class _Uvicorn(uvicorn.Server):
    """Serves on sockets bound beforehand, with our TLS context and handshake timeout."""

    def __init__(
        self,
        config: uvicorn.Config,
        protocol: type[H11Protocol],
        tls: ssl.SSLContext | None,
        timeout: float,
    ) -> None:
        super().__init__(config)
        self.protocol = protocol
        self.tls = tls
        self.handshake_timeout = timeout
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await self.lifespan.startup()
        config = self.config

        def protocol() -> asyncio.Protocol:
            return self.protocol(
                config=config, server_state=self.server_state, app_state=self.lifespan.state
            )

        loop = asyncio.get_running_loop()
        tls: dict[str, Any] = {}
        if self.tls is not None:
            tls = {"ssl": self.tls, "ssl_handshake_timeout": self.handshake_timeout}
        self.servers = [
            await loop.create_server(protocol, sock=sock, backlog=config.backlog, **tls)
            for sock in sockets or []
        ]
        self.started = True
        self.ready.set()


class CleanServer:
    """One review session served over HTTP(S); ``start()`` then ``stop()``."""

    def __init__(
        self,
        app: CleanApp,
        host: str,
        port: int,
        *,
        tls: ssl.SSLContext | None = None,
        idle_timeout: float = 30.0,
    ) -> None:
        self.app = app
        self.tls = tls
        self.idle_timeout = idle_timeout
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.socket.bind((host.strip("[]"), port))
            self.socket.listen(128)
        except OSError:
            self.socket.close()
            raise
        self.server_address: tuple[Any, ...] = self.socket.getsockname()
        protocol = _idle_closing_protocol(idle_timeout)
        config = uvicorn.Config(
            build(app),
            loop="asyncio",
            http=protocol,
            lifespan="off",
            log_config=None,
            access_log=False,
            proxy_headers=False,
            server_header=False,
            timeout_keep_alive=max(1, int(idle_timeout)),
            timeout_graceful_shutdown=5,
        )
        self._uvicorn = _Uvicorn(config, protocol, tls, idle_timeout)
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    @property
    def url(self) -> str:
        host, port = str(self.server_address[0]), self.server_address[1]
        shown = f"[{host}]" if ":" in host else host
        return f"{'https' if self.tls else 'http'}://{shown}:{port}/"

    def _run(self) -> None:
        try:
            self._uvicorn.run(sockets=[self.socket])
        except BaseException as exc:  # reported by start(); a thread has nobody else to tell
            self._failure = exc
            logger.exception("the review server stopped")
        finally:
            self._uvicorn.ready.set()

    def start(self) -> "CleanServer":
        """Serve in a background thread; returns once the server accepts connections."""
        self._thread = threading.Thread(target=self._run, name="clean-http", daemon=True)
        self._thread.start()
        self._uvicorn.ready.wait(30)
        if self._failure is not None or not self._uvicorn.started:
            raise RuntimeError(f"the review server did not start: {self._failure}")
        return self

    def stop(self) -> None:
        """Stop accepting, let running requests finish (5 s at most), close the socket."""
        self._uvicorn.should_exit = True
        if self._thread:
            self._thread.join(15)
        self.socket.close()


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
    rollout: RolloutConfig | None = None,
    mqtt: MqttConfig | None = None,
) -> CleanServer:
    """Build the server (bound, not yet serving: call ``start()``). Refuses a public bind
    without a token, and a certificate without its key (ConfigError). ``rollout`` and
    ``mqtt``: the models page's promote rules and the broker its notices go to."""
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
        rollout=rollout,
        mqtt=mqtt,
    )
    return CleanServer(app, host, port, tls=context, idle_timeout=idle_timeout)
