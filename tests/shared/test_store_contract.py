"""One contract, two stores: the folder store and S3 (a real SeaweedFS) must behave alike."""

import threading
from pathlib import Path

import pytest

from recyclops.shared.errors import InvalidKeyError, ObjectNotFoundError, StoreError
from recyclops.shared.store import LocalStore, ObjectStore, open_store, validate_key


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


def test_folders_one_level_below_a_prefix(store: ObjectStore) -> None:
    for key in ["t/bin-2/2026-11-28/a.json", "t/bin-1/2026-11-27/b.json", "t/top.json"]:
        store.put(key, b"x")
    assert store.list_folders("t/") == ["bin-1", "bin-2"]
    assert store.list_folders("t/bin-1/") == ["2026-11-27"]
    assert store.list_folders("t/bin-1/2026-11-27/") == []
    assert store.list_folders("nothing/") == []
    assert ObjectStore.list_folders(store, "t/") == ["bin-1", "bin-2"]  # the generic fallback


def test_list_paginates_past_a_thousand(store: ObjectStore) -> None:
    from concurrent.futures import ThreadPoolExecutor

    keys = [f"many/{i:05d}" for i in range(1203)]
    with ThreadPoolExecutor(16) as pool:  # the folder store fsyncs every put: 8 s one by one
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
    from support.devservers import free_port

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


# -- key limits: what validate_key accepts, both stores can store and list -----------------
SEG = "s" * 240  # the longest segment (bytes)


@pytest.mark.parametrize(
    "key",
    [
        f"long/{SEG}",
        f"{SEG}/{SEG}/{SEG}/x",  # 726 bytes, every segment at the limit
        "/".join(["é" * 120] * 3),  # 2-byte characters: 240 bytes a segment
        ("k/" * 383) + "z",  # 767 bytes
        "/".join(["y" * 240] * 3) + "/" + "z" * 45,  # exactly 768 bytes
    ],
)
def test_every_valid_key_is_stored_and_listed(store: ObjectStore, key: str) -> None:
    assert len(validate_key(key).encode()) <= 768
    store.put(key, b"v")
    assert store.get(key) == b"v"
    assert key in list(store.list(key.split("/")[0] + "/"))
    assert store.exists(key)
    store.delete(key)


@pytest.mark.parametrize(
    "key",
    [
        f"long/{SEG}s",  # 241-byte segment: the folder store's temporary name would not fit
        "/".join(["é" * 121, "x"]),  # 242 bytes in 121 characters
        "/".join(["k" * 200] * 4),  # 803 bytes
        ".hidden",
        "images/.a.jpg",  # a folder store never lists dot names
        ".cache/x",
        "a/\udcff",  # not encodable as UTF-8
    ],
)
def test_keys_a_store_could_not_keep_are_refused_by_both(store: ObjectStore, key: str) -> None:
    with pytest.raises(InvalidKeyError):
        validate_key(key)
    with pytest.raises(InvalidKeyError):
        store.put(key, b"x")
    with pytest.raises(InvalidKeyError):
        store.get(key)


def test_s3_prefix_cannot_eat_into_key_space(s3_server) -> None:  # type: ignore[no-untyped-def]
    from recyclops.shared.store import S3Store

    with pytest.raises(InvalidKeyError, match="255"):
        S3Store(s3_server.bucket, "p" * 128 + "/" + "p" * 127, endpoint_url=s3_server.endpoint_url)
    prefix = "p" * 127 + "/" + "p" * 127  # 255 bytes
    longest = S3Store(
        s3_server.bucket, prefix, endpoint_url=s3_server.endpoint_url, region="us-east-1"
    )
    key = "/".join(["q" * 240] * 3) + "/" + "r" * 45  # 768 bytes; 1024 with the prefix
    assert len(key) == 768
    longest.put(key, b"at the limit")
    assert list(longest.list("q")) == [key]
    longest.delete(key)


def test_check_ready_on_present_stores(store: ObjectStore) -> None:
    store.check_ready()


def test_local_check_ready_refuses_a_vanished_folder(tmp_path: Path) -> None:
    from recyclops.shared.errors import StoreNotFoundError

    gone = LocalStore(tmp_path / "s")
    (tmp_path / "s").rmdir()
    with pytest.raises(StoreNotFoundError, match="does not exist"):
        gone.check_ready()
