"""Two reviewers at once on the same images: both journals survive, conflicts are visible."""

import threading
from collections.abc import Iterator

import pytest
from clean_helpers import request, seed_simple
from support.waiting import wait_until

from recyclops.console import QueueFilter, ReviewSession
from recyclops.console.server import CleanServer, serve
from recyclops.shared import layout
from recyclops.shared.config.categories import default_categories
from recyclops.shared.journals import parse_journal, resolve_labels
from recyclops.shared.store import ObjectStore


@pytest.fixture
def two(s3_store: ObjectStore) -> Iterator[tuple[list[str], list[tuple[str, ReviewSession]]]]:
    shas = seed_simple(s3_store, 8)
    running: list[tuple[CleanServer, ReviewSession]] = []
    for who in ("ann", "bob"):
        session = ReviewSession(
            s3_store, default_categories(), reviewer=who, flush_seconds=0.5, flush_min_seconds=0.05
        )
        running.append((serve(session, "127.0.0.1", 0).start(), session))
    try:
        yield shas, [(server.url.rstrip("/"), session) for server, session in running]
    finally:
        for server, session in running:
            server.stop()
            session.close()


def test_both_sessions_survive_and_conflicts_show(
    s3_store: ObjectStore, two: tuple[list[str], list[tuple[str, ReviewSession]]]
) -> None:
    shas, [(ann_url, ann), (bob_url, bob)] = two
    assert ann.session_id != bob.session_id
    labels = {ann_url: "glass", bob_url: "paper"}
    failures: list[object] = []

    def review(base: str) -> None:  # both at the same time, every image
        for sha in shas:
            status, body, _ = request(
                base, "POST", "/api/decide", {"sha256": sha, "label": labels[base]}
            )
            if status != 200:
                failures.append(body)
        request(base, "POST", "/api/flush", {})

    threads = [threading.Thread(target=review, args=(u,)) for u in (ann_url, bob_url)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not failures
    # Ann agrees with Bob on the last image after all: one image without conflict.
    assert request(ann_url, "POST", "/api/withdraw", {"sha256": shas[-1]})[0] == 200
    assert request(ann_url, "POST", "/api/decide", {"sha256": shas[-1], "label": "paper"})[0] == 200
    request(ann_url, "POST", "/api/flush", {})

    journals = sorted(k for k in s3_store.list(layout.LABELS))
    assert journals == sorted([ann.journal_key, bob.journal_key])
    tail = parse_journal(s3_store.get(ann.journal_key).decode())[0][8:]
    assert [(d.sha256, d.action, d.label) for d in tail] == [
        (shas[-1], "withdraw", None),
        (shas[-1], "label", "paper"),
    ]
    everything = []
    for key, session, label in ((ann.journal_key, ann, "glass"), (bob.journal_key, bob, "paper")):
        decisions, problems = parse_journal(s3_store.get(key).decode())
        assert not problems and {d.session for d in decisions} == {session.session_id}
        assert [(d.sha256, d.label) for d in decisions[:8]] == [(sha, label) for sha in shas]
        everything += decisions
    resolved = resolve_labels(everything)
    conflicted = {sha for sha, r in resolved.items() if r.conflict}
    assert conflicted == set(shas[:7])
    for sha in shas[:7]:
        assert resolved[sha].votes == {ann.session_id: "glass", bob.session_id: "paper"}
        latest = max((d for d in everything if d.sha256 == sha), key=lambda d: (d.time, d.session))
        assert resolved[sha].label == latest.label  # the documented rule: latest wins

    # Each page can list the conflicts, read fresh from the store.
    for base in (ann_url, bob_url):
        status, body, _ = request(base, "GET", "/api/conflicts")
        assert status == 200
        assert {c["sha256"] for c in body["conflicts"]} == set(shas[:7])

    # A third session does not see decided images again, unless asked; then the conflict shows.
    later = ReviewSession(s3_store, default_categories(), start_flusher=False)
    assert later.current() is None and later.queued == 0
    later.close()
    again = ReviewSession(
        s3_store,
        default_categories(),
        start_flusher=False,
        qfilter=QueueFilter(include_decided=True),
    )
    first = again.current()
    assert first is not None and first.prior is not None
    assert first.prior.conflict == (first.sha256 in conflicted)
    assert again.item(shas[0]).to_json()["prior"]["conflict"] is True
    assert again.item(shas[-1]).to_json()["prior"]["conflict"] is False
    again.close()


def test_a_running_session_drops_what_another_just_decided(s3_store: ObjectStore) -> None:
    shas = seed_simple(s3_store, 4)
    bob = ReviewSession(s3_store, default_categories(), reviewer="bob", refresh_seconds=0.2)
    try:
        assert bob.current().sha256 == shas[0]  # type: ignore[union-attr]
        with ReviewSession(s3_store, default_categories(), reviewer="ann") as ann:
            ann.decide(shas[0], "glass")  # the image on Bob's screen: it stays there
            ann.decide(shas[2], "metal")
        wait_until(lambda: bob.item(shas[2]).prior, 10, "Bob's session seeing Ann's decision")
        assert bob._remaining == [shas[0], shas[1], shas[3]]
        assert bob.item(shas[0]).to_json()["prior"]["label"] == "glass"
        bob.decide(shas[0], "paper")  # deciding anyway makes a visible conflict
        assert [c["sha256"] for c in bob.conflicts()] == [shas[0]]
    finally:
        bob.close()
