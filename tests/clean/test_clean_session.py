"""ReviewSession: the logic the page and the demo share, against real stores."""

from pathlib import Path

import pytest
from clean_helpers import gather, jpeg, seed_simple, undo
from support.waiting import wait_until

from recyclops.console import QueueFilter, ReviewSession, UnknownImageError, new_session_id
from recyclops.console.session import NothingToUndoError
from recyclops.shared import layout
from recyclops.shared.config import Category
from recyclops.shared.config.categories import auto_keys, default_categories
from recyclops.shared.errors import StoreError
from recyclops.shared.journals import UnknownLabelError, parse_journal, resolve_labels
from recyclops.shared.store import LocalStore, ObjectStore

CATS = default_categories()


def journal(store: ObjectStore, session: ReviewSession) -> list[tuple[str, str, str | None]]:
    decisions, problems = parse_journal(store.get(session.journal_key).decode())
    assert not problems
    assert [d.seq for d in decisions] == list(range(len(decisions)))
    assert {d.session for d in decisions} == {session.session_id}
    return [(d.sha256, d.action, d.label) for d in decisions]


def open_session(store: ObjectStore, **kw: object) -> ReviewSession:
    kw.setdefault("flush_seconds", 0.5)
    kw.setdefault("flush_min_seconds", 0.05)
    return ReviewSession(store, CATS, reviewer="tester", **kw)  # type: ignore[arg-type]


def test_decide_skip_back_are_journalled_on_s3(s3_store: ObjectStore) -> None:
    a, b, c, d = seed_simple(s3_store, 4)
    with open_session(s3_store) as s:
        assert s.current().sha256 == a  # type: ignore[union-attr]
        s.decide(a, "glass")
        assert s.skip().sha256 == c  # type: ignore[union-attr]  # b goes to the end
        s.decide(c, "invalid")
        assert s.back().sha256 == c  # withdraws c and shows it again
        assert s.current().sha256 == c  # type: ignore[union-attr]
        s.decide(c, "paper")
        s.decide(d, "metal")
        assert s.current().sha256 == b  # type: ignore[union-attr]  # the skipped one is last
        progress = s.progress()
        assert (progress["done"], progress["left"], progress["skipped"]) == (3, 1, 1)
        assert progress["per_category"]["paper"] == {"decided": 1, "left": 0}
    assert journal(s3_store, s) == [
        (a, "label", "glass"),
        (c, "label", "invalid"),
        (c, "withdraw", None),
        (c, "label", "paper"),
        (d, "label", "metal"),
    ]
    resolved = resolve_labels(parse_journal(s3_store.get(s.journal_key).decode())[0])
    assert {k: v.label for k, v in resolved.items()} == {a: "glass", c: "paper", d: "metal"}


def test_back_over_a_skip_writes_nothing(local_store: LocalStore) -> None:
    a, _b, _ = seed_simple(local_store, 3)
    with open_session(local_store) as s:
        s.skip(a)
        assert s.back().sha256 == a
        assert s.progress()["skipped"] == 0
        with pytest.raises(NothingToUndoError):
            s.back()
        s.decide(a, "glass")
    assert journal(local_store, s) == [(a, "label", "glass")]


def test_queue_order_mistakes_first_duplicates_flagged(local_store: LocalStore) -> None:
    agree_low = gather(local_store, jpeg(1), "glass", prediction="glass", score=0.4)
    agree_high = gather(local_store, jpeg(2), "glass", prediction="glass", score=0.99)
    mistake_weak = gather(local_store, jpeg(3), "paper", prediction="glass", score=0.6)
    mistake_strong = gather(local_store, jpeg(4), "paper", prediction="metal", score=0.9)
    no_model = gather(local_store, jpeg(5), "metal")
    dup = jpeg(6)  # byte-identical image gathered twice under different labels
    gather(local_store, dup, "plastic", device="bin-1")
    dup_sha = gather(local_store, dup, "trash", device="bin-2", minutes=5)
    s = open_session(local_store, start_flusher=False)
    assert s._remaining == [dup_sha, mistake_strong, mistake_weak, agree_low, agree_high, no_model]
    item = s.item(dup_sha)
    assert item.label_disagreement and item.gathered_labels == ["plastic", "trash"]
    assert item.gathered_label == "trash" and item.devices == ["bin-1", "bin-2"]
    assert s.item(mistake_strong).likely_mistake and not s.item(agree_low).likely_mistake
    assert s.progress()["flagged"] == 1
    s.close()


def test_undone_gathers_are_not_queued_and_bad_records_are_reported(
    local_store: LocalStore,
) -> None:
    keep = gather(local_store, jpeg(1), "glass")
    gone = gather(local_store, jpeg(2), "paper")
    undo(local_store, gone)
    local_store.put("gathered/bin-1/2026-11-01/" + "f" * 64 + ".json", b"{not json")
    s = open_session(local_store, start_flusher=False)
    assert s._remaining == [keep]
    assert len(s.problems) == 1 and "not a gathered record" in s.problems[0]
    assert local_store.exists("gathered/bin-1/2026-11-01/" + "f" * 64 + ".json")  # lose nothing
    s.close()


def test_decided_elsewhere_hidden_unless_asked_and_filters(local_store: LocalStore) -> None:
    a = gather(local_store, jpeg(1), "glass", device="bin-1")
    b = gather(local_store, jpeg(2), "paper", device="bin-2")
    c = gather(local_store, jpeg(3), "paper", device="bin-1", minutes=1)
    with open_session(local_store) as first:
        first.decide(a, "glass")
    second = open_session(local_store, start_flusher=False)
    assert second._remaining == [b, c]
    assert second.item(a).decided_elsewhere and second.item(a).prior.label == "glass"  # type: ignore[union-attr]
    second.close()
    everything = open_session(
        local_store, start_flusher=False, qfilter=QueueFilter(include_decided=True)
    )
    assert everything._remaining[-1] == a  # decided ones come last
    everything.close()
    by_label = open_session(
        local_store, start_flusher=False, qfilter=QueueFilter(labels=("paper",))
    )
    assert set(by_label._remaining) == {b, c}
    by_label.close()
    by_device = open_session(
        local_store, start_flusher=False, qfilter=QueueFilter(devices=("bin-1",))
    )
    assert by_device._remaining == [c]
    by_device.close()


def test_sixteen_plus_categories(local_store: LocalStore) -> None:
    names = [f"cat{i:02d}" for i in range(20)]
    cats = [Category(name=n, key=k) for n, k in zip(names, auto_keys(20), strict=True)]
    shas = [gather(local_store, jpeg(i), names[i]) for i in range(20)]
    with ReviewSession(local_store, cats, flush_seconds=1) as s:
        assert s.label_for_key(cats[19].key.upper()) == "cat19" and s.label_for_key("0") == "cat09"
        assert s.label_for_key("X") == "invalid" and s.label_for_key("s") is None
        for sha in shas:
            s.decide(sha, s.label_for_key(cats[-1].key))  # type: ignore[arg-type]
    assert all(label == "cat19" for _, _, label in journal(local_store, s))


def test_bad_input_is_refused_and_nothing_is_journalled(local_store: LocalStore) -> None:
    (a,) = seed_simple(local_store, 1)
    with open_session(local_store) as s:
        with pytest.raises(UnknownLabelError, match="not a configured category"):
            s.decide(a, "unicorn")
        with pytest.raises(UnknownImageError, match="not an image id"):
            s.decide("../../etc/passwd", "glass")
        with pytest.raises(UnknownImageError, match="not gathered"):
            s.decide("0" * 64, "glass")
        with pytest.raises(NothingToUndoError):
            s.withdraw(a)
    assert not local_store.exists(s.journal_key)


def test_flusher_saves_without_being_asked(s3_store: ObjectStore) -> None:
    a, _b = seed_simple(s3_store, 2)
    s = open_session(s3_store, flush_seconds=1.0, flush_min_seconds=0.1)
    try:
        s.decide(a, "glass")
        wait_until(lambda: s3_store.exists(s.journal_key), 5, "the journal in the store")
        assert journal(s3_store, s) == [(a, "label", "glass")]
        s.withdraw(a)
        wait_until(lambda: len(journal(s3_store, s)) == 2, 5, "the withdrawal saved")
        assert journal(s3_store, s)[-1] == (a, "withdraw", None)
        assert s.current().sha256 == a  # type: ignore[union-attr]
    finally:
        s.close()


def test_session_ids_are_unique_safe_and_never_shared(local_store: LocalStore) -> None:
    ids = {new_session_id("Ann Smith/../x") for _ in range(50)}
    assert len(ids) == 50
    assert all(i.startswith("Ann-Smith-x-2") and layout.labels_key(i) for i in ids)
    assert new_session_id("../..").startswith("reviewer-")
    (a,) = seed_simple(local_store, 1)
    with open_session(local_store, session_id="fixed-id") as s:
        s.decide(a, "glass")
    other = open_session(local_store, session_id="fixed-id", start_flusher=False)
    other.decide(a, "paper")
    with pytest.raises(StoreError, match="another session"):
        other.flush()
    other.closed = True
    assert journal(local_store, s) == [(a, "label", "glass")]


class _BrokenStore(LocalStore):
    broken = False

    def put(self, key: str, data: bytes | Path, *, if_absent: bool = False) -> bool:
        if self.broken:
            raise StoreError("store is down")
        return super().put(key, data, if_absent=if_absent)


def test_store_down_at_exit_keeps_the_journal_locally(tmp_path: Path) -> None:
    store = _BrokenStore(tmp_path / "store")
    (a,) = seed_simple(store, 1)
    s = ReviewSession(store, CATS, flush_seconds=60, rescue_dir=tmp_path / "rescue")
    s.decide(a, "metal")
    store.broken = True
    with pytest.raises(StoreError):
        s.close()
    rescued = (tmp_path / "rescue" / f"{s.session_id}.jsonl").read_text()
    assert parse_journal(rescued)[0][0].label == "metal"
    assert s.saving()["error"] == "store is down"


def test_filter_changes_at_run_time_keep_this_sessions_work(local_store: LocalStore) -> None:
    a = gather(local_store, jpeg(1), "glass", device="bin-1")
    b = gather(local_store, jpeg(2), "paper", device="bin-2", minutes=1)
    c = gather(local_store, jpeg(3), "paper", device="bin-1", minutes=2)
    with open_session(local_store) as s:
        assert s.facets() == {"labels": ["glass", "paper"], "devices": ["bin-1", "bin-2"]}
        s.set_filter(QueueFilter(labels=("paper",)))
        assert s._remaining == [b, c] and s.queued == 2
        s.decide(b, "paper")
        s.set_filter(QueueFilter(devices=("bin-2",)))
        assert s._remaining == [] and s.current() is None
        s.set_filter(QueueFilter())
        assert s._remaining == [a, c]
        assert s.progress()["done"] == 1


def test_flusher_retries_until_the_store_is_back(tmp_path: Path) -> None:
    store = _BrokenStore(tmp_path / "store")
    (a,) = seed_simple(store, 1)
    store.broken = True
    s = ReviewSession(store, CATS, flush_seconds=0.3, flush_min_seconds=0.05)
    try:
        s.decide(a, "glass")
        wait_until(lambda: s.saving()["error"], 5, "a failed flush")
        assert s.saving()["error"] == "store is down" and s.saving()["unsaved"] == 1
        store.broken = False
        wait_until(lambda: not s.dirty, 5, "a flush after the store is back")
        assert s.saving()["error"] is None and s.saving()["unsaved"] == 0
        assert journal(store, s) == [(a, "label", "glass")]
    finally:
        s.close()


def test_decisions_survive_a_crash_while_the_store_is_down(
    local_store: ObjectStore, tmp_path: Path
) -> None:
    """Every decision is fsynced to a local log as it is made; the next session started with
    the same folder uploads what the crashed one could not."""
    seed_simple(local_store, count=3)
    wal = tmp_path / "wal"
    crashed = ReviewSession(local_store, CATS, reviewer="ann", rescue_dir=wal, start_flusher=False)
    first = crashed.current()
    assert first is not None
    crashed.decide(first.sha256, "metal")
    # the process dies here: no flush, no close
    assert not local_store.exists(crashed.journal_key)
    assert (wal / f"{crashed.session_id}.jsonl").is_file()
    later = ReviewSession(local_store, CATS, reviewer="bob", rescue_dir=wal, start_flusher=False)
    try:
        assert later.recovered == [crashed.journal_key]
        decisions, _ = parse_journal(local_store.get(crashed.journal_key).decode())
        assert [(d.sha256, d.label) for d in decisions] == [(first.sha256, "metal")]
        assert not (wal / f"{crashed.session_id}.jsonl").exists()
        assert first.sha256 not in later._remaining  # decided: not queued again
    finally:
        later.close()
    assert not list(wal.glob("*.jsonl"))  # a clean close leaves no log behind
