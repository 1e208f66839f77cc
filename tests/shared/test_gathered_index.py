"""The compacted gathered index: the queue it gives equals the queue from raw objects, a
compaction is idempotent and safe to race, late records and undos are never lost."""

import hashlib
import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from support.counting import CountingStore

from recyclops.app.cli import main
from recyclops.console.queue import load_queue
from recyclops.shared import layout
from recyclops.shared.compact import CompactSummary, compact_gathered
from recyclops.shared.gathered import store_gathered, store_undo
from recyclops.shared.gathered_index import LOOKBACK_DAYS, read_gathered
from recyclops.shared.records import GatheredRecord, GatheredUndo
from recyclops.shared.store import ObjectStore

TODAY = date(2026, 11, 3)
LABELS = ["glass", "metal", "paper", "plastic"]


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest) -> ObjectStore:
    return request.getfixturevalue(f"{request.param}_store")


def sha(i: int) -> str:
    return hashlib.sha256(str(i).encode()).hexdigest()


def rec(i: int, when: datetime, device: str = "bin-1", label: str | None = None) -> GatheredRecord:
    return GatheredRecord(
        sha256=sha(i),
        label=label or LABELS[i % 4],
        device=device,
        captured_at=when,
        prediction=LABELS[(i * 3) % 4],
        score=(i % 10) / 10,
    )


def at(day: date, second: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, 12, tzinfo=UTC) + timedelta(seconds=second)


def undo_of(r: GatheredRecord) -> GatheredUndo:
    return GatheredUndo(
        sha256=r.sha256,
        device=r.device,
        captured_at=r.captured_at,
        undone_at=r.captured_at + timedelta(seconds=3),
    )


def seed(store: ObjectStore) -> None:
    """Three devices over a month boundary up to TODAY, re-gathers, undos and bad objects."""
    n = 0
    for device in ("bin-1", "bin-2", "bin-3"):
        for back in range(6):  # 2026-10-29 … TODAY
            day = TODAY - timedelta(days=back)
            for _ in range(3):
                n += 1
                store_gathered(store, rec(n, at(day, n), device))
    store_gathered(store, rec(16, at(TODAY - timedelta(days=5), 999), "bin-1", "trash"))  # seq 2
    standing = [r for _, r in read_gathered(store, use_index=False).records]
    for i in (5, 20):  # undo a gather of a day to be sealed and one of today
        r = next(r for r in standing if r.sha256 == sha(i))
        assert store_undo(store, undo_of(r))
    bad_day = TODAY - timedelta(days=2)
    store.put(layout.gathered_key("bin-2", bad_day, sha(900)), b"{not json")
    store.put(
        layout.gathered_key("bin-2", bad_day, sha(901)),
        rec(902, at(bad_day)).model_dump_json().encode(),
    )


def queue_view(store: ObjectStore, use_index: bool) -> tuple[list[str], list[str], list[str]]:
    read = read_gathered(store, use_index=use_index)
    loaded = load_queue(store, use_index=use_index)
    return [k for k, _ in read.records], sorted(read.problems), loaded.order


def test_queue_from_index_equals_queue_from_raw(store: ObjectStore) -> None:
    seed(store)
    raw = queue_view(store, use_index=False)
    summary = compact_gathered(store, today=TODAY)
    assert not summary.failures
    months = {layout.parse_segment_key(k).month for k in summary.written}  # type: ignore[union-attr]
    assert months == {"2026-10", "2026-11"} and summary.devices == 3
    assert queue_view(store, use_index=True) == raw
    assert len(raw[0]) == 3 * 18 + 1 - 2  # every record, the re-gather, minus two undone
    assert len(raw[1]) == 2  # the unreadable record and the one that names another sha
    counting = CountingStore(store)
    read = read_gathered(counting)
    assert read.raw_reads == 3 * 3 - 1  # only today's standing records are read one by one
    assert read.segments == 6 and read.sealed_through == dict.fromkeys(
        ("bin-1", "bin-2", "bin-3"), TODAY - timedelta(days=1)
    )
    assert counting.counts["GET"] == 6 + 8


def test_compaction_is_idempotent(store: ObjectStore) -> None:
    seed(store)
    first = compact_gathered(store, today=TODAY)
    index = list(store.list(layout.INDEX_GATHERED))
    again = compact_gathered(store, today=TODAY)
    assert again.written == [] and again.raw_reads == 0 and again.deleted == 0
    assert again.unchanged == len(first.written) == 6
    assert list(store.list(layout.INDEX_GATHERED)) == index
    # the next day seals one more day: a new November segment replaces the old one
    later = compact_gathered(store, today=TODAY + timedelta(days=1))
    assert later.raw_reads == 3 * 3 + 0 and later.deleted == 3 and len(later.written) == 3
    assert len(list(store.list(layout.INDEX_GATHERED))) == 6
    assert queue_view(store, True) == queue_view(store, False)


def test_late_records_and_undos_after_sealing_are_seen(store: ObjectStore) -> None:
    seed(store)
    compact_gathered(store, today=TODAY)
    # within the look-back (a bin back from a short outage): seen before the next compaction
    recent = rec(500, at(TODAY - timedelta(days=4)), "bin-3")
    store_gathered(store, recent)
    sealed = next(r for _, r in read_gathered(store).records if r.device == "bin-1")
    store_undo(store, undo_of(sealed))
    read = read_gathered(store)
    shas = {r.sha256 for _, r in read.records}
    assert recent.sha256 in shas and sealed.sha256 not in shas
    assert queue_view(store, True) == queue_view(store, False)
    # the look-back reaches LOOKBACK_DAYS before the newest sealed day (2026-11-02), no further
    edge = rec(502, at(TODAY - timedelta(days=1 + LOOKBACK_DAYS)), "bin-3")
    old = rec(501, at(TODAY - timedelta(days=2 + LOOKBACK_DAYS)), "bin-2")
    store_gathered(store, edge)
    store_gathered(store, old)
    shas = {r.sha256 for _, r in read_gathered(store).records}
    assert edge.sha256 in shas and old.sha256 not in shas
    # an older late record (a bin offline for a week or more): the next compaction seals it
    summary = compact_gathered(store, today=TODAY)
    assert summary.raw_reads == 3  # only the late records, not the month again
    assert {layout.parse_segment_key(k)[3:] for k in summary.written} == {  # type: ignore[index]
        ("bin-2", "2026-10"),
        ("bin-3", "2026-10"),
        ("bin-1", "2026-10"),
    }
    assert old.sha256 in {r.sha256 for _, r in read_gathered(store).records}
    assert queue_view(store, True) == queue_view(store, False)


def test_racing_compactors_agree(store: ObjectStore) -> None:
    seed(store)
    start = threading.Barrier(2)
    results: list[CompactSummary] = []

    def run() -> None:
        start.wait()
        results.append(compact_gathered(store, today=TODAY, workers=4))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(not r.failures for r in results)
    assert len(list(store.list(layout.INDEX_GATHERED))) == 6  # one segment per device-month
    assert queue_view(store, True) == queue_view(store, False)


def test_a_reader_rereads_the_index_when_a_segment_is_superseded(store: ObjectStore) -> None:
    seed(store)
    compact_gathered(store, today=TODAY)
    raced: list[CompactSummary] = []
    lock = threading.Lock()

    def compact_first(key: str) -> None:
        with lock:  # the reader's threads wait until the compaction has replaced its segments
            if key.startswith(layout.INDEX_GATHERED) and not raced:
                raced.append(compact_gathered(store, today=TODAY + timedelta(days=1)))

    read = read_gathered(CountingStore(store, before_get=compact_first))
    assert raced and raced[0].deleted == 3  # the segments it had listed were gone
    assert [k for k, _ in read.records] == queue_view(store, False)[0]
    assert read.sealed_through["bin-1"] == TODAY


def test_list_after_and_folders(store: ObjectStore) -> None:
    for key in ("g/a/2026-01-01/x", "g/a/2026-01-02/y", "g/a/2026-01-03/z", "g/b/k", "g/c"):
        store.put(key, b"1")
    assert list(store.list_after("g/a/", "g/a/2026-01-01~")) == [
        "g/a/2026-01-02/y",
        "g/a/2026-01-03/z",
    ]
    assert list(store.list_after("g/a/", "")) == [
        "g/a/2026-01-01/x",
        "g/a/2026-01-02/y",
        "g/a/2026-01-03/z",
    ]
    assert store.list_folders("g/") == ["a", "b"]
    assert store.list_folders("nothing/") == []


def test_compact_command(local_store: ObjectStore, capsys: pytest.CaptureFixture[str]) -> None:
    yesterday = datetime.now(UTC) - timedelta(days=1)
    store_gathered(local_store, rec(1, yesterday))
    store_gathered(local_store, rec(2, datetime.now(UTC)))
    assert main(["compact", "--store", local_store.url]) == 0
    assert "1 month segments written" in capsys.readouterr().out
    assert len(list(local_store.list(layout.INDEX_GATHERED))) == 1
    assert main(["compact", "--store", local_store.url]) == 0
    assert "0 month segments written, 1 unchanged" in capsys.readouterr().out


def test_a_damaged_segment_line_is_a_problem_not_fatal(local_store: ObjectStore) -> None:
    seed(local_store)
    compact_gathered(local_store, today=TODAY)
    key = next(iter(local_store.list(layout.INDEX_GATHERED)))
    local_store.put(key, local_store.get(key) + b"{torn\n")
    read = read_gathered(local_store)
    assert any(p.startswith(f"{key}: line ") for p in read.problems)
    assert [k for k, _ in read.records] == queue_view(local_store, False)[0]
