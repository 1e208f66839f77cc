"""Gathers and undos in the store: retries never duplicate, re-gathers never overwrite,
an undo finds its record even across midnight."""

from datetime import UTC, datetime, timedelta

import pytest

from recyclops.console.queue import load_gathered
from recyclops.shared import layout
from recyclops.shared.gathered import store_gathered, store_undo
from recyclops.shared.records import GatheredRecord, GatheredUndo
from recyclops.shared.store import ObjectStore

SHA = "c" * 64
LATE = datetime(2026, 11, 23, 23, 59, 58, tzinfo=UTC)


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest) -> ObjectStore:
    return request.getfixturevalue(f"{request.param}_store")


def record(label: str, when: datetime) -> GatheredRecord:
    return GatheredRecord(sha256=SHA, label=label, device="bin-3", captured_at=when)


def test_a_retried_gather_lands_once(store: ObjectStore) -> None:
    rec = record("glass", LATE)
    first = store_gathered(store, rec, b"jpeg")
    again = store_gathered(store, rec, b"jpeg")
    assert first == again == layout.gathered_key("bin-3", LATE.date(), SHA)
    assert list(store.list("gathered/")) == [first]
    assert store.get(layout.image_key(SHA)) == b"jpeg"


def test_the_same_frame_gathered_again_is_a_second_record(store: ObjectStore) -> None:
    k1 = store_gathered(store, record("glass", LATE), b"jpeg")
    k2 = store_gathered(store, record("metal", LATE + timedelta(seconds=1)), b"jpeg")
    assert k2 == layout.gathered_key("bin-3", LATE.date(), SHA, seq=2)
    labels = {GatheredRecord.model_validate_json(store.get(k)).label for k in (k1, k2)}
    assert labels == {"glass", "metal"}
    by_sha, problems = load_gathered(store)
    assert not problems
    assert sorted(r.label for r in by_sha[SHA]) == ["glass", "metal"]


def test_undo_after_midnight_withdraws_exactly_its_gather(store: ObjectStore) -> None:
    store_gathered(store, record("glass", LATE), b"jpeg")
    store_gathered(store, record("metal", LATE + timedelta(seconds=1)), b"jpeg")
    undo = GatheredUndo(
        sha256=SHA,
        device="bin-3",
        captured_at=LATE,  # the glass press
        undone_at=LATE + timedelta(seconds=5),  # already the next UTC day
    )
    key = store_undo(store, undo)
    assert key == layout.gathered_undo_key("bin-3", LATE.date(), SHA, seq=1)
    assert store_undo(store, undo) == key  # a retried undo changes nothing
    by_sha, _ = load_gathered(store)
    assert [r.label for r in by_sha[SHA]] == ["metal"]


def test_an_undo_whose_record_never_arrived_is_a_no_op(store: ObjectStore) -> None:
    undo = GatheredUndo(sha256=SHA, device="bin-3", captured_at=LATE, undone_at=LATE)
    assert store_undo(store, undo) is None
    assert list(store.list("gathered/")) == []
