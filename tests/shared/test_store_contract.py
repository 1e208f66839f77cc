"""One contract, two stores: the folder store and S3 (a real SeaweedFS) must behave alike."""

import threading
from pathlib import Path

import pytest

from recyclops.shared.errors import InvalidKeyError, ObjectNotFoundError, StoreError
from recyclops.shared.store import LocalStore, ObjectStore, open_store


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest) -> ObjectStore:
    return request.getfixturevalue(f"{request.param}_store")


def test_put_get_roundtrip_bytes_and_file(store: ObjectStore, tmp_path: Path) -> None:
    assert store.put("images/a.jpg", b"\x00\xffpixels")
    assert store.get("images/a.jpg") == b"\x00\xffpixels"
    src = tmp_path / "f.bin"
    src.write_bytes(b"from a file")
    store.put("runs/x/f.bin", src)
    assert store.get("runs/x/f.bin") == b"from a file"
    assert store.size("runs/x/f.bin") == len(b"from a file")


def test_put_overwrites_unless_if_absent(store: ObjectStore) -> None:
    store.put("k/v", b"one")
    store.put("k/v", b"two")
    assert store.get("k/v") == b"two"
    assert store.put("k/w", b"first", if_absent=True) is True
    assert store.put("k/w", b"second", if_absent=True) is False
    assert store.get("k/w") == b"first"


def test_if_absent_race_has_exactly_one_winner(store: ObjectStore) -> None:
    results: list[bool] = []
    lock = threading.Lock()

    def writer(i: int) -> None:
        ok = store.put("race/key", f"writer {i}".encode(), if_absent=True)
        with lock:
            results.append(ok)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == [False] * 5 + [True]
    winner = store.get("race/key").decode()
    assert winner.startswith("writer ")


def test_exists_delete_and_missing(store: ObjectStore) -> None:
    assert not store.exists("gone/x")
    store.put("gone/x", b"1")
    assert store.exists("gone/x")
    store.delete("gone/x")
    assert not store.exists("gone/x")
    store.delete("gone/x")  # absent is not an error
    with pytest.raises(ObjectNotFoundError, match="gone/x"):
        store.get("gone/x")
    with pytest.raises(ObjectNotFoundError):
        store.size("gone/x")


def test_list_by_prefix_sorted_and_exact(store: ObjectStore) -> None:
    for key in ["a/2", "a/1", "ab/1", "b/1", "a/sub/3"]:
        store.put(key, b"x")
    assert list(store.list("a/")) == ["a/1", "a/2", "a/sub/3"]
    assert list(store.list("a")) == ["a/1", "a/2", "a/sub/3", "ab/1"]
    assert list(store.list("zzz/")) == []
    assert set(store.list()) >= {"a/1", "a/2", "ab/1", "b/1", "a/sub/3"}


def test_list_paginates_past_a_thousand(store: ObjectStore) -> None:
    keys = [f"many/{i:05d}" for i in range(1203)]
    if isinstance(store, LocalStore):
        for key in keys:
            store.put(key, b"")
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda k: store.put(k, b""), keys))
    assert list(store.list("many/")) == keys


@pytest.mark.parametrize(
    "key", ["../etc/passwd", "a/../b", "/abs", "a//b", "a/", "", "a\nb", "a\x00b", "a\\b", "./a"]
)
def test_unsafe_keys_rejected(store: ObjectStore, key: str) -> None:
    with pytest.raises(InvalidKeyError):
        store.put(key, b"x")
    with pytest.raises(InvalidKeyError):
        store.get(key)


def test_get_file_writes_atomically(store: ObjectStore, tmp_path: Path) -> None:
    store.put("m/model.tflite", b"weights")
    dest = tmp_path / "out" / "model.tflite"
    store.get_file("m/model.tflite", dest)
    assert dest.read_bytes() == b"weights"
    assert [p.name for p in dest.parent.iterdir()] == ["model.tflite"]


def test_presigned_url_fetches_the_object(store: ObjectStore) -> None:
    import urllib.request

    store.put("p/q.txt", b"presigned body")
    url = store.presigned_url("p/q.txt", expires=60)
    assert url
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.read() == b"presigned body"


def test_open_store_by_url(tmp_path: Path, s3_server, s3_url: str) -> None:  # type: ignore[no-untyped-def]
    local = open_store(f"file://{tmp_path}/s")
    assert isinstance(local, LocalStore) and local.root == tmp_path / "s"
    s3 = open_store(s3_url, endpoint_url=s3_server.endpoint_url)
    s3.put("x", b"1")
    assert s3.get("x") == b"1"
    for bad in ["ftp://host/x", "s3:///nobucket", "file://", "not a url", "s3://b/p?x=1"]:
        with pytest.raises(StoreError):
            open_store(bad)


def test_s3_down_is_a_clear_store_error() -> None:
    from recyclops.shared.devservers import free_port
    from recyclops.shared.store import S3Store

    store = S3Store(
        "b",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        region="us-east-1",
        max_attempts=1,
        connect_timeout=0.5,
        read_timeout=0.5,
    )
    with pytest.raises(StoreError, match="put x failed"):
        store.put("x", b"1")


def test_local_store_ignores_temporaries(local_store: LocalStore) -> None:
    (local_store.root / "images").mkdir()
    (local_store.root / "images" / ".a.jpg.123.tmp").write_bytes(b"half")
    local_store.put("images/b.jpg", b"x")
    assert list(local_store.list("images/")) == ["images/b.jpg"]
