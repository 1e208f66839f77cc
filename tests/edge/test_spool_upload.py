"""Gathering into the durable spool and draining it to a real store, once, through outages."""

import json
import threading
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from support.devservers import TcpProxy
from support.waiting import wait_until

from recyclops.edge.gathering import Gatherer
from recyclops.edge.spool import Spool, SpoolFullError
from recyclops.edge.uploader import Uploader
from recyclops.shared import layout
from recyclops.shared.config import RecyclopsConfig
from recyclops.shared.hashing import sha256_bytes
from recyclops.shared.records import GatheredRecord, GatheredUndo
from recyclops.shared.store import LocalStore, ObjectStore, S3Store


def frame(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (48, 64, 3), dtype=np.uint8)


def gatherer(tmp_path: Path, **spool: float) -> Gatherer:
    config = RecyclopsConfig.model_validate({"edge": {"device_id": "bin-7"}})
    return Gatherer(
        config,
        Spool(
            tmp_path / "spool",
            int(spool.get("max_bytes", 10**8)),
            int(spool.get("max_items", 1000)),
        ),
    )


def gathered_keys(store: ObjectStore) -> list[str]:
    return [k for k in store.list("gathered/")]


@pytest.mark.edge_numpy1
def test_key_press_lands_as_image_and_record_once(tmp_path: Path, local_store: LocalStore) -> None:
    g = gatherer(tmp_path)
    item = g.gather(frame(1), "glass", "metal", 0.81, "v1")
    stop = threading.Event()
    up = Uploader(g.spool, local_store, stop)
    assert up.drain_once() == 1
    assert up.drain_once() == 0
    image = local_store.get(layout.image_key(item.sha256))
    assert sha256_bytes(image) == item.sha256
    keys = gathered_keys(local_store)
    assert len(keys) == 1 and keys[0].startswith("gathered/bin-7/") and item.sha256 in keys[0]
    record = GatheredRecord.model_validate_json(local_store.get(keys[0]))
    assert (record.label, record.prediction, record.score, record.model_version) == (
        "glass",
        "metal",
        0.81,
        "v1",
    )
    assert (record.width, record.height) == (64, 48)
    assert g.spool.depth() == 0


def test_key_press_lands_in_s3_once(tmp_path: Path, s3_store: S3Store) -> None:
    g = gatherer(tmp_path)
    items = [g.gather(frame(i), "paper", None, None, None) for i in range(3)]
    up = Uploader(g.spool, s3_store, threading.Event())
    assert up.drain_once() == 3
    for item in items:  # a retried upload (crash after put) is harmless
        record = GatheredRecord(
            sha256=item.sha256, label="paper", device="bin-7", captured_at=datetime.now(UTC)
        )
        assert not s3_store.put(
            layout.gathered_key("bin-7", record.captured_at.date(), item.sha256),
            b"{}",
            if_absent=True,
        )
    assert len(gathered_keys(s3_store)) == 3
    assert len(list(s3_store.list("images/"))) == 3


@pytest.mark.edge_numpy1
def test_spool_bound_refuses_new_gathers_and_keeps_old_ones(tmp_path: Path) -> None:
    g = gatherer(tmp_path, max_items=2)
    g.gather(frame(1), "glass", None, None, None)
    g.gather(frame(2), "glass", None, None, None)
    with pytest.raises(SpoolFullError, match="nothing deleted"):
        g.gather(frame(3), "glass", None, None, None)
    assert g.spool.depth() == 2


@pytest.mark.edge_numpy1
def test_undo_before_upload_withdraws_and_after_upload_writes_a_tombstone(
    tmp_path: Path, local_store: LocalStore
) -> None:
    g = gatherer(tmp_path)
    up = Uploader(g.spool, local_store, threading.Event())
    first = g.gather(frame(1), "glass", None, None, None)
    up.drain_once()
    second = g.gather(frame(2), "metal", None, None, None)
    assert g.undo() == second  # still spooled: simply withdrawn
    assert g.spool.depth() == 0
    assert g.undo() == first  # already uploaded: a tombstone goes up
    assert g.undo() is None
    up.drain_once()
    keys = gathered_keys(local_store)
    assert len(keys) == 2
    undo_key = next(k for k in keys if k.endswith(".undo.json"))
    assert GatheredUndo.model_validate_json(local_store.get(undo_key)).sha256 == first.sha256
    assert not local_store.exists(layout.image_key(second.sha256))


@pytest.mark.edge_numpy1
def test_spool_recovers_after_a_crash_mid_gather(tmp_path: Path) -> None:
    g = gatherer(tmp_path)
    g.gather(frame(1), "glass", None, None, None)
    folder = tmp_path / "spool"
    (folder / "00000000000000000001-orphan.jpg").write_bytes(b"half")  # record never written
    (folder / ".x.json.123.tmp").write_bytes(b"{")
    spool = Spool(folder, 10**8, 100)
    assert spool.depth() == 1
    assert sorted(p.name for p in folder.iterdir() if p.suffix == ".jpg") == [
        f"{spool.pending()[0]}.jpg"
    ]


def test_s3_outage_spool_holds_then_drains(tmp_path: Path, s3_server, s3_url: str) -> None:  # type: ignore[no-untyped-def]
    """The store is unreachable (nothing listening) for a while, then comes back."""
    port = s3_server.endpoint_url.rsplit(":", 1)[1]
    proxy = TcpProxy(int(port))
    bucket, _, prefix = s3_url.removeprefix("s3://").partition("/")
    store = S3Store(
        bucket,
        prefix,
        endpoint_url=proxy.url,
        region="us-east-1",
        max_attempts=1,
        connect_timeout=1,
        read_timeout=5,
    )
    g = gatherer(tmp_path)
    stop = threading.Event()
    up = Uploader(g.spool, store, stop, retry_min=0.1, retry_max=0.4)
    up.start()
    try:
        items = [g.gather(frame(i), "glass", None, None, None) for i in range(4)]
        failed = up.failures
        wait_until(lambda: up.failures > failed, 10, "an upload attempt failing (store down)")
        assert g.spool.depth() == 4  # down: everything still spooled
        proxy.start()
        wait_until(lambda: g.spool.depth() == 0, 20, "the spool drained")
        proxy.stop()  # and down again mid-run: new gathers wait again
        failed = up.failures
        late = g.gather(frame(99), "metal", None, None, None)
        wait_until(lambda: up.failures > failed, 10, "the late gather's upload failing")
        assert g.spool.depth() == 1
        proxy.start()
        wait_until(lambda: g.spool.depth() == 0, 20, "the late gather drained")
    finally:
        stop.set()
        up.thread.join(10)
        proxy.stop()
    direct = S3Store(bucket, prefix, endpoint_url=s3_server.endpoint_url, region="us-east-1")
    records = [json.loads(direct.get(k)) for k in gathered_keys(direct)]
    assert sorted(r["sha256"] for r in records) == sorted(i.sha256 for i in [*items, late])
    assert len(list(direct.list("images/"))) == 5


@pytest.mark.edge_numpy1
def test_unreadable_entry_is_set_aside_not_deleted_and_never_blocks(
    tmp_path: Path, local_store: LocalStore
) -> None:
    g = gatherer(tmp_path)
    bad = tmp_path / "spool" / f"00000000000000000001-{'a' * 64}.json"
    bad.write_text('{"kind": "gather", "record": {"label": 3}}')
    good = g.gather(frame(5), "glass", None, None, None)
    assert Uploader(g.spool, local_store, threading.Event()).drain_once() == 1
    assert local_store.exists(layout.image_key(good.sha256))
    assert bad.with_suffix(".corrupt").exists() and g.spool.depth() == 0


def test_a_spool_entry_whose_frame_is_gone_is_set_aside(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from recyclops.edge.spool import Spool
    from recyclops.shared.records import GatheredRecord

    spool = Spool(tmp_path / "spool", max_bytes=10_000_000, max_items=10)
    record = GatheredRecord(
        sha256="d" * 64, label="glass", device="bin-1", captured_at=datetime.now(UTC)
    )
    name = spool.add_gather(b"jpeg", record)
    (tmp_path / "spool" / f"{name}.jpg").unlink()  # damage from outside
    assert spool.claim(name) is None
    assert spool.pending() == []
    assert (tmp_path / "spool" / f"{name}.corrupt").exists()
