"""Browser logins for a token-protected review page: a random session cookie (never the token),
an expiry, and a limit on wrong tokens per client address.

Why: the token is a long-lived secret; a cookie that carried it would leak it with every
request and never expire. A login trades the token once for a random id that expires, and a
guesser gets a handful of tries a minute, not thousands a second.
"""

import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable

logger = logging.getLogger(__name__)

SESSION_COOKIE = "recyclops_clean_session"


class Logins:
    """Cookie ids handed out by a successful login, each valid for ``ttl`` seconds."""

    def __init__(
        self, ttl: float, *, limit: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.limit = limit
        self._clock = clock
        self._expiry: dict[str, float] = {}
        self._lock = threading.Lock()

    def create(self) -> str:
        sid = secrets.token_urlsafe(32)
        now = self._clock()
        with self._lock:
            self._expiry = {k: v for k, v in self._expiry.items() if v > now}
            if len(self._expiry) >= self.limit:  # bounded memory: the oldest login goes
                self._expiry.pop(min(self._expiry, key=self._expiry.__getitem__))
            self._expiry[sid] = now + self.ttl
        return sid

    def valid(self, sid: str | None) -> bool:
        if not sid:
            return False
        with self._lock:
            expiry = self._expiry.get(sid)
            if expiry is None:
                return False
            if expiry <= self._clock():
                del self._expiry[sid]
                return False
            return True

    def cookie(self, sid: str, *, secure: bool) -> str:
        """The Set-Cookie value: HttpOnly (no script reads it), SameSite=Strict (no other
        site sends it), Max-Age (it expires), Secure under TLS."""
        flags = f"Path=/; HttpOnly; SameSite=Strict; Max-Age={int(self.ttl)}"
        return f"{SESSION_COOKIE}={sid}; {flags}" + ("; Secure" if secure else "")


class FailureLimiter:
    """At most ``attempts`` wrong tokens per client address in any ``window`` seconds; after
    that every token from the address is refused (429) until the window has passed."""

    def __init__(
        self,
        attempts: int = 10,
        window: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 4096,
    ) -> None:
        self.attempts = attempts
        self.window = window
        self.max_clients = max_clients
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float]:
        times = self._failures.get(client, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def retry_after(self, client: str) -> float:
        """Seconds until ``client`` may try a token again (0: now)."""
        now = self._clock()
        with self._lock:
            times = self._recent(client, now)
            if len(times) < self.attempts:
                return 0.0
            return max(0.0, times[0] + self.window - now)

    def failure(self, client: str) -> None:
        now = self._clock()
        with self._lock:
            if client not in self._failures and len(self._failures) >= self.max_clients:
                stale = [c for c in self._failures if not self._recent(c, now)]
                for c in stale or list(self._failures)[: self.max_clients // 2]:
                    del self._failures[c]
            times = self._recent(client, now)
            times.append(now)
            self._failures[client] = times
        logger.warning("wrong review token from %s (%d in %.0f s)", client, len(times), self.window)
