"""Who may use the review tool: loopback by default; a token anywhere else; no cross-site writes.

- Bound to a loopback address, no token is needed, but the Host header must name loopback
  (a DNS-rebinding page cannot talk to us) and every POST must be same-origin.
- Bound to any other address, a token is required to start at all. Requests carry it as a
  header (``X-Recyclops-Token`` or ``Authorization: Bearer``), or a browser logs in once
  (the page's form, or ``/?token=…``) and gets a random, expiring session cookie that is not
  the token (``auth``). Wrong tokens are rate-limited per client address.
- State changes are POSTs with a JSON body (a plain HTML form cannot send one) whose Origin,
  when the browser sends one, matches the Host.
"""

import hmac
import ipaddress
import ssl
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from recyclops.shared.errors import ConfigError
from recyclops.shared.secrets import read_secret

TOKEN_HEADER = "X-Recyclops-Token"
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


class Headers(Protocol):
    """Request headers: Starlette's (case-insensitive) or a plain dict."""

    def get(self, name: str, /) -> str | None: ...


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _split_host(value: str) -> str:
    """The host part of a Host header (``[::1]:8080`` → ``::1``)."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


@dataclass(frozen=True)
class AccessPolicy:
    bind_host: str
    token: str | None = None

    @classmethod
    def for_bind(cls, host: str, token: str | None = None) -> "AccessPolicy":
        """The policy for a bind address; refuses a public address without a token."""
        if token is None:
            token, _ = read_secret("clean_token")
        if not is_loopback(host) and not token:
            raise ConfigError(
                f"refusing to serve the review tool on {host}: a non-loopback address needs a "
                "token (set RECYCLOPS_CLEAN_TOKEN or $CREDENTIALS_DIRECTORY/clean_token), or "
                "bind to 127.0.0.1"
            )
        if token is not None and len(token) < 16:
            raise ConfigError("the clean token must be at least 16 characters")
        return cls(host, token or None)

    @property
    def public(self) -> bool:
        return not is_loopback(self.bind_host)

    def presented_token(self, headers: Headers) -> str | None:
        """The token a request carries in a header (None: it carries none)."""
        given = headers.get(TOKEN_HEADER)
        auth = headers.get("Authorization") or ""
        if not given and auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        return given or None

    def check_token_value(self, value: str) -> bool:
        return bool(self.token) and hmac.compare_digest(value.encode(), (self.token or "").encode())

    def host_ok(self, headers: Headers) -> bool:
        """Without a token only loopback Host names are answered (DNS rebinding)."""
        if self.token:
            return True
        host = headers.get("Host")
        return bool(host) and is_loopback(_split_host(host or ""))

    def write_refusal(self, headers: Headers) -> str | None:
        """Why a state-changing request is refused, or None when it may go ahead."""
        ctype = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            return "state changes need a JSON body (Content-Type: application/json)"
        origin = headers.get("Origin")
        host = (headers.get("Host") or "").lower()
        if origin is not None:
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or parts.netloc.lower() != host:
                return f"cross-origin request refused (Origin {origin[:80]!r} is not this page)"
        site = headers.get("Sec-Fetch-Site")
        if site is not None and site not in ("same-origin", "none"):
            return f"cross-site request refused (Sec-Fetch-Site: {site[:20]})"
        return None


def cookie_value(header: str, name: str) -> str | None:
    try:
        jar = SimpleCookie(header)
    except CookieError:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel else None


def tls_context(cert: str | Path | None, key: str | Path | None) -> ssl.SSLContext | None:
    """A server context from a PEM certificate (chain) and key, or None for plain HTTP."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise ConfigError("TLS needs both a certificate and a key (--tls-cert and --tls-key)")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(cert), str(key))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load the TLS certificate {cert} / key {key}: {exc}") from None
    return context
