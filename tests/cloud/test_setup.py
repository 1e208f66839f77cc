"""Label resolution over journals, and what sync does with the awkward cases."""

from support.synthetic import shapes

from recyclops.cloud.dataset import load_dataset
from recyclops.cloud.pixels import load_pixels
from recyclops.cloud.setup import sync_dataset
from recyclops.shared import layout
from recyclops.shared.hashing import sha256_bytes
from recyclops.shared.journals import dump_journal

from .helpers import decision, seed_images

CATS = ["red", "green", "blue"]


def test_conflicting_and_withdrawn_decisions(local_store, tmp_path):
    labels = seed_images(local_store, CATS, per_class=3)
    a, b, c, d = sorted(labels)[:4]
    journal = [
        # two reviewers disagree: the later decision wins, whichever session
        decision(a, "blue", "alice", minutes=10),
        decision(a, "green", "bob", minutes=20),
        # bob labels c then withdraws it: alice's earlier label stands again
        decision(c, "red", "alice", minutes=1),
        decision(c, "blue", "bob", minutes=30, seq=1),
        decision(c, None, "bob", minutes=31, action="withdraw", seq=2),
        # withdrawn with nothing else standing: out of the data set
        decision(d, "red", "carol", minutes=40, seq=1),
        decision(d, None, "carol", minutes=41, action="withdraw", seq=2),
        # a label nobody configured
        decision(b, "purple", "carol", minutes=50, seq=3),
    ]
    for session in ("alice", "bob", "carol"):
        local_store.put(
            layout.labels_key(session), dump_journal([x for x in journal if x.session == session])
        )
    local_store.put(layout.labels_key("review-1"), b"")  # the seed's journal no longer applies
    summary = sync_dataset(local_store, tmp_path / "data", CATS, progress=False)
    ds = load_dataset(tmp_path / "data")
    assert ds.labels[a] == "green"
    assert ds.labels[c] == "red"
    assert d not in ds.labels and b not in ds.labels
    assert summary.conflicts == 1  # a; bob withdrew his vote on c
    assert any("purple" in p for p in summary.problems)


def test_relabel_moves_and_invalid_removes(local_store, tmp_path):
    labels = seed_images(local_store, CATS, per_class=2)
    out = tmp_path / "data"
    sync_dataset(local_store, out, CATS, progress=False)
    x, y = sorted(labels)[:2]
    new = "red" if labels[x] != "red" else "green"
    local_store.put(
        layout.labels_key("later"),
        dump_journal(
            [decision(x, new, "later", minutes=99), decision(y, "invalid", "later", minutes=99)]
        ),
    )
    summary = sync_dataset(local_store, out, CATS, progress=False)
    assert summary.moved == 1 and summary.removed == 1 and summary.downloaded == 0
    assert (out / new / f"{x}.jpg").is_file()
    assert not list(out.glob(f"*/{y}.jpg"))


def test_empty_category_and_corrupt_file_are_reported_not_fatal(local_store, tmp_path):
    labels = seed_images(local_store, ["red", "green"], per_class=2)
    summary = sync_dataset(
        local_store, tmp_path / "data", ["red", "green", "glass"], progress=False
    )
    assert summary.per_class["glass"] == 0
    assert any("no verified images" in line for line in summary.lines())
    # a file that rots on disk after setup: training drops it and says so
    ds = load_dataset(tmp_path / "data")
    victim = sorted(labels)[0]
    ds.path(victim).write_bytes(b"garbage")
    px = load_pixels(ds, sorted(ds.labels), 32, cache=False)
    assert victim not in px.shas and len(px.shas) == len(labels) - 1
    assert any("cannot decode" in p for p in px.problems)


def test_image_whose_hash_does_not_match_is_rejected(local_store, tmp_path):
    good = shapes(["red"], 1)["red"][0]
    sha = sha256_bytes(good)
    local_store.put(layout.image_key(sha), good + b"tampered")
    local_store.put(layout.labels_key("s"), dump_journal([decision(sha, "red", "s")]))
    summary = sync_dataset(local_store, tmp_path / "data", ["red", "blue"], progress=False)
    assert summary.images == 0 and any("does not match" in p for p in summary.problems)


def test_sync_never_touches_files_it_does_not_own(local_store, tmp_path):
    import pytest

    from recyclops.cloud.setup import SetupError

    seed_images(local_store, CATS, per_class=1)
    pictures = tmp_path / "pictures"
    (pictures / "holiday").mkdir(parents=True)
    (pictures / "holiday" / "IMG_0001.jpg").write_bytes(b"a user's photo")
    with pytest.raises(SetupError, match=r"not empty and holds no dataset\.json"):
        sync_dataset(local_store, pictures, CATS, progress=False)
    out = tmp_path / "data"
    sync_dataset(local_store, out, CATS, progress=False)
    (out / "red" / "notes.jpg").write_bytes(b"not a content-addressed image")
    summary = sync_dataset(local_store, out, CATS, progress=False)
    assert summary.removed == 0
    assert (out / "red" / "notes.jpg").read_bytes() == b"not a content-addressed image"
    assert (pictures / "holiday" / "IMG_0001.jpg").exists()
