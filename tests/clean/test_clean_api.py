"""The HTTP API against a real SeaweedFS store: decisions, images, and every refusal."""

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from clean_helpers import jpeg, request, seed_simple

from recyclops.console import ReviewSession
from recyclops.console.server import CleanServer, serve
from recyclops.shared import layout
from recyclops.shared.config.categories import default_categories
from recyclops.shared.errors import ConfigError
from recyclops.shared.journals import parse_journal
from recyclops.shared.store import ObjectStore

TOKEN = "t0ken-for-the-tests-0123456789"


@dataclass
class Running:
    base: str
    server: CleanServer
    session: ReviewSession
    shas: list[str]
    store: ObjectStore


def _run(
    store: ObjectStore, host: str = "127.0.0.1", token: str | None = None, presign: bool = False
) -> Iterator[Running]:
    shas = seed_simple(store, 4)
    session = ReviewSession(
        store, default_categories(), reviewer="api", flush_seconds=0.5, flush_min_seconds=0.05
    )
    server = serve(session, host, 0, token=token, presign=presign).start()
    port = server.server_address[1]
    try:
        yield Running(f"http://127.0.0.1:{port}", server, session, shas, store)
    finally:
        server.stop()
        session.close()


@pytest.fixture
def app(s3_store: ObjectStore, monkeypatch: pytest.MonkeyPatch) -> Iterator[Running]:
    monkeypatch.delenv("RECYCLOPS_CLEAN_TOKEN", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    yield from _run(s3_store)


def test_state_decide_skip_back_over_http(app: Running) -> None:
    a, b, c, _ = app.shas
    status, state, headers = request(app.base, "GET", "/api/state")
    assert status == 200 and state["current"]["sha256"] == a
    assert (
        state["current"]["gathered_label"] == "glass" and state["current"]["prediction"] == "glass"
    )
    assert [c["name"] for c in state["categories"]][:2] == ["cardboard", "glass"]
    assert state["upcoming"] == [b, c, app.shas[3]]
    assert "default-src 'self'" in headers["content-security-policy"]
    status, state, _ = request(app.base, "POST", "/api/decide", {"sha256": a, "label": "glass"})
    assert status == 200 and state["current"]["sha256"] == b
    status, state, _ = request(app.base, "POST", "/api/decide", {"sha256": b, "key": "X"})
    assert status == 200 and state["progress"]["per_category"]["invalid"]["decided"] == 1
    status, state, _ = request(app.base, "POST", "/api/skip", {"sha256": c})
    assert state["current"]["sha256"] == app.shas[3] and state["progress"]["skipped"] == 1
    status, state, _ = request(app.base, "POST", "/api/back", {})
    assert state["current"]["sha256"] == c
    status, state, _ = request(app.base, "POST", "/api/back", {})
    assert state["current"]["sha256"] == b  # the invalid decision is withdrawn
    status, state, _ = request(app.base, "POST", "/api/flush", {})
    assert status == 200 and state["saving"]["unsaved"] == 0
    decisions, _ = parse_journal(app.store.get(app.session.journal_key).decode())
    assert [(d.sha256, d.action, d.label) for d in decisions] == [
        (a, "label", "glass"),
        (b, "label", "invalid"),
        (b, "withdraw", None),
    ]


def test_images_only_known_ids(app: Running) -> None:
    status, body, headers = request(app.base, "GET", f"/api/image/{app.shas[0]}")
    assert status == 200 and headers["content-type"] == "image/jpeg" and body == jpeg(0)
    status, body, _ = request(app.base, "GET", "/api/image/" + "0" * 64)
    assert status == 404 and "not gathered" in body["error"]
    # Something in the store that is not a gathered image is not served either.
    app.store.put("images/" + "1" * 64 + ".jpg", b"secret")
    assert request(app.base, "GET", "/api/image/" + "1" * 64)[0] == 404
    for path in (
        "/api/image/../../labels/x.jsonl",
        "/api/image/%2e%2e%2fetc%2fpasswd",
        "/static/../session.py",
        "/static/%2e%2e/server.py",
        "/etc/passwd",
    ):
        status, body, _ = request(app.base, "GET", path)
        assert status == 404, path
        assert isinstance(body, dict) and "error" in body


def test_bad_input_gets_a_clear_error_and_changes_nothing(app: Running) -> None:
    a = app.shas[0]
    cases = [
        ({"sha256": a, "label": "unicorn"}, 400, "not a configured category"),
        ({"sha256": a, "key": "q"}, 400, "assigns no category"),
        ({"sha256": "0" * 64, "label": "glass"}, 404, "not gathered"),
        ({"sha256": "../../labels/other.jsonl", "label": "glass"}, 404, "not an image id"),
        ({"sha256": ["x"], "label": "glass"}, 400, "must be a string"),
        ({"label": "glass"}, 400, "needs sha256"),
    ]
    for body, status, text in cases:
        got, answer, _ = request(app.base, "POST", "/api/decide", body)
        assert (got, text in answer["error"]) == (status, True), (body, answer)
    assert (
        request(
            app.base,
            "POST",
            "/api/decide",
            raw=b"{oops",
            headers={"Content-Type": "application/json"},
        )[0]
        == 400
    )
    assert (
        request(
            app.base,
            "POST",
            "/api/decide",
            raw=b"x" * 5000,
            headers={"Content-Type": "application/json"},
        )[0]
        == 413
    )
    chunked = b"".join(b"400\r\n" + b"x" * 1024 + b"\r\n" for _ in range(5)) + b"0\r\n\r\n"
    status, answer, headers = request(  # no Content-Length: the body is counted as it comes
        app.base,
        "POST",
        "/api/decide",
        raw=chunked,
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
    )
    assert status == 413 and "4096" in answer["error"] and headers["connection"] == "close"
    assert request(app.base, "POST", "/api/back", {})[0] == 409  # nothing to go back to
    assert request(app.base, "POST", "/api/nowhere", {})[0] == 404
    assert app.session.decisions() == []
    assert request(app.base, "GET", "/api/state")[1]["current"]["sha256"] == a


def test_cross_origin_and_rebinding_refused(app: Running) -> None:
    a = app.shas[0]
    body = {"sha256": a, "label": "glass"}
    evil = {"Origin": "http://evil.example"}
    status, answer, _ = request(app.base, "POST", "/api/decide", body, headers=evil)
    assert status == 403 and "cross-origin" in answer["error"]
    status, answer, _ = request(
        app.base, "POST", "/api/decide", body, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert status == 403
    # A form post (no JSON) is refused even without an Origin header.
    status, answer, _ = request(
        app.base,
        "POST",
        "/api/decide",
        raw=b"sha256=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 403 and "JSON" in answer["error"]
    # DNS rebinding: a page on evil.example resolving to 127.0.0.1 sends Host: evil.example.
    status, answer, _ = request(app.base, "GET", "/api/state", headers={"Host": "evil.example:80"})
    assert status == 403 and "loopback" in answer["error"]
    assert app.session.decisions() == []
    same = {"Origin": app.base, "Sec-Fetch-Site": "same-origin"}
    assert request(app.base, "POST", "/api/decide", body, headers=same)[0] == 200
    assert request(app.base, "GET", "/healthz", headers={"Host": "evil.example"})[1] == {"ok": True}


def test_public_bind_needs_a_token(
    s3_store: ObjectStore, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.delenv("RECYCLOPS_CLEAN_TOKEN", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    session = ReviewSession(s3_store, default_categories(), start_flusher=False)
    try:
        with pytest.raises(ConfigError, match="needs a token"):
            serve(session, "0.0.0.0", 0)
        with pytest.raises(ConfigError, match="at least 16"):
            serve(session, "0.0.0.0", 0, token="short")
    finally:
        session.close()


def test_token_from_credentials_directory(
    s3_store: ObjectStore, monkeypatch: pytest.MonkeyPatch, tmp_path: "pytest.TempPathFactory"
) -> None:
    creds = tmp_path / "creds"  # type: ignore[operator]
    creds.mkdir()
    (creds / "clean_token").write_text(TOKEN + "\n")
    monkeypatch.delenv("RECYCLOPS_CLEAN_TOKEN", raising=False)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    for running in _run(s3_store, host="0.0.0.0"):
        assert running.server.app.policy.token == TOKEN
        status, answer, _ = request(running.base, "GET", "/api/state")
        assert status == 401 and "token" in answer["error"]
        ok = request(running.base, "GET", "/api/state", headers={"X-Recyclops-Token": TOKEN})
        assert ok[0] == 200


def test_token_required_when_public(s3_store: ObjectStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECYCLOPS_CLEAN_TOKEN", TOKEN)
    for running in _run(s3_store, host="0.0.0.0"):
        a = running.shas[0]
        body = {"sha256": a, "label": "glass"}
        for headers in (
            {},
            {"X-Recyclops-Token": "wrong-token-wrong-token"},
            {"Authorization": "Bearer nope"},
            {"Cookie": "recyclops_clean_token=nah"},
        ):
            assert request(running.base, "POST", "/api/decide", body, headers=headers)[0] == 401
            assert request(running.base, "GET", "/", headers=headers)[0] == 401
            assert request(running.base, "GET", f"/api/image/{a}", headers=headers)[0] == 401
        assert request(running.base, "GET", "/?token=wrong")[0] == 401
        assert running.session.decisions() == []
        # The page's login: /?token=… sets an HttpOnly, SameSite=Strict cookie.
        status, _, headers = request(running.base, "GET", f"/?token={TOKEN}")
        assert status == 303 and headers["location"] == "/"
        cookie = headers["set-cookie"].split(";")[0]
        assert "HttpOnly" in headers["set-cookie"] and "SameSite=Strict" in headers["set-cookie"]
        status, page, _ = request(running.base, "GET", "/", headers={"Cookie": cookie})
        assert status == 200 and b"Recyclops review" in page
        # The token alone is not enough for a cross-origin write.
        evil = {"Cookie": cookie, "Origin": "http://evil.example"}
        assert request(running.base, "POST", "/api/decide", body, headers=evil)[0] == 403
        good = {"Authorization": f"Bearer {TOKEN}"}
        assert request(running.base, "POST", "/api/decide", body, headers=good)[0] == 200
        assert [d.label for d in running.session.decisions()] == ["glass"]


def test_presigned_images_redirect_to_s3(s3_store: ObjectStore) -> None:
    for running in _run(s3_store, presign=True):
        a = running.shas[0]
        status, _, headers = request(running.base, "GET", f"/api/image/{a}")
        assert status == 302
        location = headers["location"]
        assert layout.image_key(a) in location and "Signature" in location
        import urllib.request

        with urllib.request.urlopen(location, timeout=10) as resp:
            assert resp.read() == jpeg(0)


def test_filter_over_http(app: Running) -> None:
    status, state, _ = request(app.base, "POST", "/api/filter", {"labels": ["metal"]})
    assert status == 200 and state["filter"]["labels"] == ["metal"]
    assert state["current"]["gathered_label"] == "metal" and state["progress"]["left"] == 1
    assert state["facets"]["labels"] == ["glass", "metal", "paper"]
    for bad in ({"labels": "metal"}, {"devices": [1]}, {"include_decided": "yes"}):
        status, answer, _ = request(app.base, "POST", "/api/filter", bad)
        assert status == 400 and "must be" in answer["error"]
    assert request(app.base, "GET", "/api/state")[1]["filter"]["labels"] == ["metal"]
