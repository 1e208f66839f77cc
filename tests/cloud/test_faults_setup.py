"""Issue 13, items 2-5 on a real SeaweedFS: bad images are per-image problems, a store that dies
mid-sync makes ``setup`` fail and the data set incomplete, an interrupted first sync resumes,
and a missing bucket is refused before anything is written."""

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support import devservers
from support.synthetic import shapes
from support.waiting import wait_until

from recyclops.app.cli import main
from recyclops.cloud.dataset import IncompleteDatasetError, load_dataset
from recyclops.cloud.pixels import load_pixels
from recyclops.cloud.setup import sync_dataset
from recyclops.shared import layout
from recyclops.shared.errors import StoreNotFoundError
from recyclops.shared.hashing import sha256_bytes
from recyclops.shared.journals import dump_journal
from recyclops.shared.store import ObjectStore, S3Store

from .helpers import decision

CATS = ["cardboard", "glass", "metal"]  # the default config's first three categories


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def seed(store: ObjectStore, per_class: int, extra: dict[str, bytes] | None = None) -> dict:
    """Images plus one journal labelling them (and ``extra`` images, name -> bytes, as glass)."""
    labels: dict[str, str] = {}
    blobs: dict[str, bytes] = {}
    for label, images in shapes(CATS, per_class, 3).items():
        for data in images:
            labels[sha256_bytes(data)] = label
            blobs[sha256_bytes(data)] = data
    for data in (extra or {}).values():
        labels[sha256_bytes(data)] = "glass"
        blobs[sha256_bytes(data)] = data
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda kv: store.put(layout.image_key(kv[0]), kv[1]), blobs.items()))
    store.put(
        layout.labels_key("review-1"),
        dump_journal([decision(sha, label, "review-1") for sha, label in labels.items()]),
    )
    return labels


@pytest.fixture
def store_env(s3_server: devservers.S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECYCLOPS_STORE__ENDPOINT_URL", s3_server.endpoint_url)
    monkeypatch.setenv("RECYCLOPS_STORE__REGION", "us-east-1")


def test_bad_images_are_problems_and_16_bit_images_keep_their_pixels(s3_store, tmp_path):
    """Items 1-2: a decompression bomb and a 16-bit PNG among good images."""
    bomb = _png(Image.new("1", (20000, 20000)))
    ramp = np.tile(np.linspace(0, 65535, 64).round().astype(np.uint16), (48, 1))
    deep = _png(Image.fromarray(ramp))
    labels = seed(s3_store, 2, {"bomb": bomb, "deep": deep})
    summary = sync_dataset(s3_store, tmp_path / "data", CATS, progress=False)
    bomb_key = layout.image_key(sha256_bytes(bomb))
    assert [p for p in summary.problems if bomb_key in p and "decompression bomb" in p]
    assert summary.complete and summary.images == len(labels) - 1
    ds = load_dataset(tmp_path / "data")
    assert sha256_bytes(deep) in ds.labels
    px = load_pixels(ds, [sha256_bytes(deep)], 64, cache=False)
    gray = px.images[0, :, :, 0].astype(int)
    assert gray.max() - gray.min() > 200  # a ramp, not the solid white square of the bug
    # a bomb that reaches the data set folder anyway: training skips it and names the key
    victim = sorted(ds.labels)[0]
    ds.path(victim).write_bytes(bomb)
    px = load_pixels(ds, sorted(ds.labels), 32, cache=False)
    assert victim not in px.shas and len(px.shas) == len(ds.labels) - 1
    assert any(layout.image_key(victim) in p and "bomb" in p for p in px.problems)


def test_store_killed_mid_sync_fails_setup_and_marks_the_data_set(
    s3_server, s3_store, store_env, tmp_path, monkeypatch, capsys
):
    """Item 3: the store dies after 40 requests; setup exits 1, train would refuse."""
    labels = seed(s3_store, 40)
    proxy = devservers.TcpProxy(int(s3_server.endpoint_url.rsplit(":", 1)[1])).start()
    proxy.cut_after_requests = 40
    monkeypatch.setenv("RECYCLOPS_STORE__ENDPOINT_URL", proxy.url)
    monkeypatch.setenv("RECYCLOPS_STORE__MAX_ATTEMPTS", "1")
    monkeypatch.setenv("RECYCLOPS_STORE__CONNECT_TIMEOUT", "2")
    out = tmp_path / "data"
    argv = ["setup", "--store", s3_store.url, "--out", str(out), "--no-progress", "--workers", "4"]
    try:
        started = time.monotonic()
        assert main(argv) == 1
        assert time.monotonic() - started < 60
        err = capsys.readouterr().err
        assert "sync incomplete" in err
        data = json.loads((out / "dataset.json").read_text())
        assert data["complete"] is False and "store reads failed" in data["incomplete_reason"]
        assert 0 < data["images"] < len(labels)
        with pytest.raises(IncompleteDatasetError, match="incomplete"):
            load_dataset(out)
        partial = load_dataset(out, allow_incomplete=True)
        assert not partial.complete and len(partial.labels) == data["images"]
        # the store comes back: the same command resumes and completes
        proxy.cut_after_requests = None
        proxy.start()
        assert main(argv) == 0
    finally:
        proxy.stop()
    ds = load_dataset(out)
    assert ds.complete and ds.labels == labels


def _setup_proc(url: str, out: Path, endpoint: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "RECYCLOPS_STORE__ENDPOINT_URL": endpoint}
    env["RECYCLOPS_STORE__REGION"] = "us-east-1"
    cmd = [sys.executable, "-m", "recyclops.app.cli", "setup", "--store", url]
    cmd += ["--out", str(out), "--no-progress", "--workers", "1"]
    # Ctrl-C's default: a shell's background job (``make test &``) starts with SIGINT ignored,
    # and a child would inherit that and sync to the end, whatever the test sends
    return subprocess.Popen(
        cmd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM])
def test_interrupted_first_sync_resumes(s3_server, s3_store, store_env, tmp_path, sig):
    """Item 4: kill a first sync after a few files; the next run resumes instead of refusing."""
    labels = seed(s3_store, 150)
    out = tmp_path / "data"
    proc = _setup_proc(s3_store.url, out, s3_server.endpoint_url)
    try:

        def synced_three() -> bool:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            return len(list(out.glob("*/*.jpg"))) >= 3

        wait_until(synced_three, 60, "three images synced", max_step=0.01)
        proc.send_signal(sig)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    have = len(list(out.glob("*/*.jpg")))
    assert 0 < have < len(labels), "the sync finished before the signal: seed more images"
    assert proc.returncode != 0
    with pytest.raises(IncompleteDatasetError, match="has not finished"):
        load_dataset(out)
    summary = sync_dataset(s3_store, out, [*CATS, "paper", "plastic", "trash"], progress=False)
    assert summary.complete and summary.skipped >= have - 1
    assert load_dataset(out).labels == labels


# -- item 5: a missing bucket, on a server that does not create buckets on write -----------
@pytest.fixture(scope="module")
def strict_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[devservers.S3Server]:
    with devservers.seaweedfs(
        tmp_path_factory.mktemp("strict-weed"), bucket="present", auto_create_bucket=False
    ) as server:
        yield server


def _strict_store(server: devservers.S3Server, bucket: str) -> S3Store:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=server.endpoint_url,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        region_name="us-east-1",
    )
    return S3Store(bucket, "fleet", client=client)


def test_server_does_not_create_buckets_on_write(strict_s3):
    from recyclops.shared.errors import StoreError

    store = _strict_store(strict_s3, "mistyped-bucket")
    with pytest.raises(StoreError, match="does not exist"):
        store.put("images/x.jpg", b"x")
    _strict_store(strict_s3, "present").put("images/x.jpg", b"x")


def test_missing_bucket_is_refused_at_start(strict_s3, tmp_path, monkeypatch, capsys):
    _strict_store(strict_s3, "present").check_ready()
    with pytest.raises(StoreNotFoundError, match="'mistyped-bucket' does not exist"):
        _strict_store(strict_s3, "mistyped-bucket").check_ready()
    for key, value in strict_s3.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("RECYCLOPS_STORE__ENDPOINT_URL", strict_s3.endpoint_url)
    out = tmp_path / "data"
    assert main(["setup", "--store", "s3://mistyped-bucket/fleet", "--out", str(out)]) == 1
    assert "'mistyped-bucket' does not exist" in capsys.readouterr().err
    assert not out.exists()  # refused before the folder was touched
    env = {k: v for k, v in os.environ.items() if k != "RECYCLOPS_CLEAN_TOKEN"}
    cmd = [sys.executable, "-m", "recyclops.app.cli", "clean", "--store"]
    cmd += ["s3://mistyped-bucket/fleet", "--endpoint-url", strict_s3.endpoint_url]
    cmd += ["--port", "0", "--rescue-dir", str(tmp_path / "rescue")]
    done = subprocess.run(
        cmd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "'mistyped-bucket' does not exist" in done.stderr


def test_unreadable_journal_makes_the_sync_incomplete_and_keeps_the_copies(
    s3_server, s3_store, tmp_path
):
    """Item 3, the other transport failure: the store dies right after listing the journals.
    The labels are then unknown: nothing already synced is removed, and the sync is
    incomplete (before, the images vanished and the sync counted as done)."""
    labels = seed(s3_store, 3)
    out = tmp_path / "data"
    assert sync_dataset(s3_store, out, CATS, progress=False).complete
    proxy = devservers.TcpProxy(int(s3_server.endpoint_url.rsplit(":", 1)[1])).start()
    proxy.cut_after_requests = 2  # HeadBucket, ListObjects; the journal's GET fails
    flaky = S3Store(
        s3_store.bucket,
        s3_store.prefix,
        endpoint_url=proxy.url,
        region="us-east-1",
        max_attempts=1,
    )
    try:
        summary = sync_dataset(flaky, out, CATS, progress=False)
    finally:
        proxy.stop()
    assert not summary.complete and summary.removed == 0
    assert any("cannot read journal" in f for f in summary.transport_failures)
    assert len(list(out.glob("*/*.jpg"))) == len(labels)
    with pytest.raises(IncompleteDatasetError, match="store reads failed"):
        load_dataset(out)
