"""Issue 13, items 12-14, on a real SeaweedFS store: undecodable images are flagged on the
page, idle keep-alive connections are closed, and a token-protected page offers TLS, an
expiring session cookie that is not the token, and a limit on wrong tokens."""

import contextlib
import http.client
import io
import json
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from clean_helpers import T0, gather, jpeg, request
from PIL import Image
from support.browser import playwright_api
from support.waiting import wait_until

from recyclops.console import ReviewSession
from recyclops.console.server import CleanServer, serve
from recyclops.shared import layout
from recyclops.shared.config.categories import default_categories
from recyclops.shared.hashing import sha256_bytes
from recyclops.shared.preprocess import decode_rgb
from recyclops.shared.records import GatheredRecord
from recyclops.shared.store import ObjectStore

TOKEN = "t0ken-for-the-tests-0123456789"


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def sixteen_bit() -> bytes:
    ramp = np.linspace(0, 65535, 96).round().astype(np.uint16)
    return _png(Image.fromarray(np.tile(ramp, (64, 1))))


def record_only(store: ObjectStore, data: bytes, label: str, minutes: int) -> str:
    """A gathered record whose image never reached the store."""
    sha = sha256_bytes(data)
    rec = GatheredRecord(sha256=sha, label=label, device="bin-1", captured_at=T0)
    store.put(layout.gathered_key("bin-1", T0.date(), sha), rec.model_dump_json().encode())
    return sha


def _serve(store: ObjectStore, **kwargs: Any) -> Iterator[tuple[CleanServer, ReviewSession]]:
    session = ReviewSession(store, default_categories(), reviewer="faults", start_flusher=False)
    host = kwargs.pop("host", "127.0.0.1")
    server = serve(session, host, 0, **kwargs).start()
    try:
        yield server, session
    finally:
        server.stop()
        session.close()


def test_undecodable_images_are_flagged_and_served_pixels_match_training(s3_store):
    """Item 12 (and item 1 on the page): the queue says which images setup will drop."""
    bad = {
        "garbage": gather(s3_store, b"not an image at all", "glass", minutes=1),
        "bomb": gather(s3_store, _png(Image.new("1", (20000, 20000))), "glass", minutes=2),
        "truncated": gather(s3_store, jpeg(7, 200)[:400], "glass", minutes=3),
        "missing": record_only(s3_store, jpeg(8), "glass", minutes=4),
    }
    deep_bytes = sixteen_bit()
    good = {"jpeg": gather(s3_store, jpeg(1), "paper", minutes=5)}
    good["deep"] = gather(s3_store, deep_bytes, "paper", minutes=6)
    for server, session in _serve(s3_store):
        base = server.url.rstrip("/")
        seen: dict[str, Any] = {}
        for _ in range(len(bad) + len(good)):
            status, state, _ = request(base, "GET", "/api/state")
            assert status == 200
            current = state["current"]
            seen[current["sha256"]] = current["image_problem"]
            request(base, "POST", "/api/skip", {"sha256": current["sha256"]})
        for name, sha in bad.items():
            assert seen[sha], name
        assert "decompression bomb" in seen[bad["bomb"]]
        assert "missing from the store" in seen[bad["missing"]]
        assert "cannot decode" in seen[bad["garbage"]]
        assert all(seen[sha] is None for sha in good.values())
        status, answer, _ = request(base, "GET", f"/api/image/{bad['garbage']}")
        assert status == 422 and "cannot decode" in answer["error"]
        # the 16-bit PNG: the page gets exactly the pixels training gets, not the browser's
        status, body, headers = request(base, "GET", f"/api/image/{good['deep']}")
        assert status == 200 and headers["content-type"] == "image/png"
        shown = np.asarray(Image.open(io.BytesIO(body)).convert("RGB"))
        assert (shown == decode_rgb(deep_bytes)).all()
        assert shown.max() - shown.min() > 200
        status, body, headers = request(base, "GET", f"/api/image/{good['jpeg']}")
        assert status == 200 and body == jpeg(1)  # a plain JPEG is served as stored
        assert session.item(bad["truncated"]).to_json()["image_problem"]


def test_undecodable_image_flag_on_the_page(s3_store, browser, artifacts_dir: Path) -> None:
    expect = playwright_api().expect
    sha = gather(s3_store, b"\xff\xd8\xff\xe0 a JPEG header and nothing else", "glass")
    for server, session in _serve(s3_store):
        page = browser.new_page()  # type: ignore[attr-defined]
        page.goto(server.url)
        problem = page.get_by_test_id("image-problem")
        expect(problem).to_be_visible()
        expect(problem).to_contain_text("cannot be used for training")
        expect(page.get_by_test_id("flags")).to_contain_text("cannot be decoded")
        expect(page.get_by_test_id("image")).to_be_hidden()
        page.screenshot(path=str(artifacts_dir / "clean-undecodable.png"))
        page.keyboard.press("x")
        expect(page.get_by_test_id("done")).to_be_visible()
        assert [(d.sha256, d.label) for d in session.decisions()] == [(sha, "invalid")]


def test_idle_keep_alive_connection_is_closed(s3_store):
    """Item 13: a silent HTTP/1.1 connection does not hold a server thread forever."""
    gather(s3_store, jpeg(2), "glass")
    for server, _ in _serve(s3_store, idle_timeout=1.0):
        port = server.server_address[1]
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            answer = b""
            while not answer.endswith(b'{"ok": true}'):  # the whole response, maybe in parts
                chunk = sock.recv(4096)
                assert chunk, answer
                answer += chunk
            assert b"200 OK" in answer
            started = time.monotonic()
            assert sock.recv(4096) == b""  # closed by the server, not by our 10 s timeout
            assert time.monotonic() - started < 5
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")  # a request that never finishes
            assert sock.recv(4096) == b""


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    cmd = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
    cmd += [
        "-nodes",
        "-keyout",
        str(key),
        "-out",
        str(cert),
        "-days",
        "2",
        "-subj",
        "/CN=localhost",
    ]
    cmd += ["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"]
    subprocess.run(
        cmd,
        check=True,
        capture_output=True,
    )
    return cert, key


def _https(port: int, cert: Path, method: str, path: str, body: Any = None, headers=None):  # type: ignore[no-untyped-def]
    context = ssl.create_default_context(cafile=str(cert))
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    hdrs = {"Host": f"127.0.0.1:{port}", **(headers or {})}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    try:
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        payload = resp.read()
        return resp.status, payload, {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()


def test_tls_session_cookie_and_wrong_token_limit(s3_store, cert):
    """Item 14: HTTPS; the cookie is random, expiring, Secure; wrong tokens are limited."""
    gather(s3_store, jpeg(3), "glass")
    cert_file, key_file = cert
    for server, _ in _serve(
        s3_store, token=TOKEN, tls_cert=cert_file, tls_key=key_file, login_attempts=3
    ):
        port = server.server_address[1]
        assert server.url.startswith("https://")
        with pytest.raises((http.client.HTTPException, OSError)):
            request(f"http://127.0.0.1:{port}", "GET", "/api/state")  # no plain HTTP
        status, page, _ = _https(port, cert_file, "GET", "/")
        assert status == 401 and b"review token" in page  # the login form, no data
        assert _https(port, cert_file, "GET", "/static/login.js")[0] == 200
        assert _https(port, cert_file, "GET", "/static/app.js")[0] == 401
        status, _, headers = _https(port, cert_file, "POST", "/api/login", {"token": TOKEN})
        assert status == 200
        set_cookie = headers["set-cookie"]
        cookie = set_cookie.split(";")[0]
        name, value = cookie.split("=", 1)
        assert name == "recyclops_clean_session" and TOKEN not in set_cookie and len(value) >= 32
        for flag in ("HttpOnly", "SameSite=Strict", "Secure", "Max-Age=43200"):
            assert flag in set_cookie
        assert _https(port, cert_file, "GET", "/api/state", headers={"Cookie": cookie})[0] == 200
        raw = {"Cookie": f"recyclops_clean_session={TOKEN}"}  # the token is not a cookie
        assert _https(port, cert_file, "GET", "/api/state", headers=raw)[0] == 401
        # three wrong tokens, then even the right one waits; a logged-in browser does not
        for attempt in ({"token": "x" * 20}, {"token": "y" * 20}):
            assert _https(port, cert_file, "POST", "/api/login", attempt)[0] == 401
        wrong = {"X-Recyclops-Token": "z" * 20}
        assert _https(port, cert_file, "GET", "/api/state", headers=wrong)[0] == 401
        status, body, headers = _https(port, cert_file, "POST", "/api/login", {"token": TOKEN})
        assert status == 429 and int(headers["retry-after"]) >= 1
        assert b"too many wrong tokens" in body
        right = {"X-Recyclops-Token": TOKEN}
        assert _https(port, cert_file, "GET", "/api/state", headers=right)[0] == 429
        forwarded = {**right, "X-Forwarded-For": "203.0.113.9", "Forwarded": "for=203.0.113.9"}
        assert _https(port, cert_file, "GET", "/api/state", headers=forwarded)[0] == 429
        assert _https(port, cert_file, "GET", "/api/state", headers={"Cookie": cookie})[0] == 200


def test_stalled_tls_handshake_is_closed(s3_store, cert):
    """A client that connects to the HTTPS port and never says hello gives the slot back."""
    gather(s3_store, jpeg(5), "glass")
    for server, _ in _serve(s3_store, tls_cert=cert[0], tls_key=cert[1], idle_timeout=1.0):
        with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=10) as sock:
            started = time.monotonic()
            with contextlib.suppress(ConnectionResetError):  # an abort is a close too
                assert sock.recv(4096) == b""  # closed by the server, not by our 10 s timeout
            assert time.monotonic() - started < 5


def test_session_cookie_expires_and_url_login_gives_a_cookie_not_the_token(s3_store):
    gather(s3_store, jpeg(4), "glass")
    for server, _ in _serve(s3_store, host="0.0.0.0", token=TOKEN, session_ttl=1.0):
        base = f"http://127.0.0.1:{server.server_address[1]}"
        status, _, headers = request(base, "GET", f"/?token={TOKEN}")
        assert status == 303 and headers["location"] == "/"
        assert TOKEN not in headers["set-cookie"] and "Secure" not in headers["set-cookie"]
        cookie = headers["set-cookie"].split(";")[0]
        assert request(base, "GET", "/api/state", headers={"Cookie": cookie})[0] == 200

        def refused(base: str = base, cookie: str = cookie) -> Any:
            answer = request(base, "GET", "/api/state", headers={"Cookie": cookie})
            return answer[0] == 401 and answer

        status, answer, _ = wait_until(refused, 5, "the cookie expiring (session_ttl 1 s)")
        assert "log in" in answer["error"]


def test_tls_needs_both_files(s3_store, cert):
    from recyclops.shared.errors import ConfigError

    session = ReviewSession(s3_store, default_categories(), start_flusher=False)
    try:
        with pytest.raises(ConfigError, match="both a certificate and a key"):
            serve(session, "127.0.0.1", 0, tls_cert=cert[0])
        with pytest.raises(ConfigError, match="cannot load"):
            serve(session, "127.0.0.1", 0, tls_cert=cert[1], tls_key=cert[1])
    finally:
        session.close()
