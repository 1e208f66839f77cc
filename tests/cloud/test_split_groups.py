"""Training keeps the newest audit's near-duplicate groups on one side of the split, and
records the moved images so later champion comparisons stay exact."""

import json

from support.synthetic import shapes

from recyclops.cloud.audit import load_groups
from recyclops.cloud.champion import split_for
from recyclops.cloud.dataset import dataset_from_folders, split_of
from recyclops.cloud.train import prepare_arrays
from recyclops.shared import layout
from recyclops.shared.config import TrainConfig
from recyclops.shared.hashing import sha256_bytes
from recyclops.shared.store import LocalStore

CATS = ["red", "green", "blue"]


def test_training_keeps_audited_near_duplicates_together(tmp_path):
    shas = {}
    for label, images in shapes(CATS, 20, seed=3, size=48).items():
        (tmp_path / "photos" / label).mkdir(parents=True)
        for i, data in enumerate(images):
            (tmp_path / "photos" / label / f"{i}.jpg").write_bytes(data)
            shas[sha256_bytes(data)] = label
    ds = dataset_from_folders(tmp_path / "photos", CATS, cache_dir=tmp_path / "cache")
    config = TrainConfig(image_size=32, validation_split=0.2, test_split=0.25)
    test = [s for s in sorted(shas) if split_of(s, 0.2, 0.25) == "test"]
    train = [s for s in sorted(shas) if split_of(s, 0.2, 0.25) == "train"]
    group = sorted([test[0], train[0]])  # a pair straddling the test boundary: leakage
    store = LocalStore(tmp_path / "store")
    assert load_groups(store) == (None, [])
    report = {
        "run_id": "a1",
        "near_duplicates": {
            "groups": [
                {"kind": "near", "members": [{"sha256": s} for s in group]},
                {"kind": "identical", "members": [{"sha256": test[1]}, {"sha256": train[1]}]},
            ]
        },
    }
    store.put(layout.AUDIT_LATEST, json.dumps(report).encode())
    run_id, groups = load_groups(store)
    assert (run_id, groups) == ("a1", [group])  # identical files are one image already

    plain = prepare_arrays(config, ds)
    kept = prepare_arrays(config, ds, groups)
    side = {s: split_for(s, kept.split) for s in group}
    assert len(set(side.values())) == 1, side
    assert group[1] in kept.split.moved
    assert len(set(group) & set(plain.test_shas)) == 1  # without the audit: split in two
    in_test = set(group) & set(kept.test_shas)
    assert in_test in (set(), set(group))  # with it: whole, where its first member goes
