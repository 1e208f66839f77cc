"""``recyclops audit``: confident learning finds injected label flips, near-duplicates are
grouped (byte-identical and re-encoded copies), the report lands in the store, and the split
keeps every near-duplicate group on one side of the test boundary."""

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support import devservers
from support.synthetic import shapes

from recyclops.app.cli import main
from recyclops.cloud.audit import (
    Features,
    confident_joint_issues,
    group_pairs,
    near_duplicate_pairs,
)
from recyclops.cloud.cli.audit import flip_labels
from recyclops.cloud.dataset import Dataset, split_of
from recyclops.shared import layout
from recyclops.shared.store import ObjectStore

CATS = ["red", "green", "blue", "yellow"]


def sha(i: int) -> str:
    return f"{i:064x}"


def test_split_keeps_groups_on_the_side_of_their_first_member() -> None:
    labels = {sha(i): CATS[i % 4] for i in range(400)}
    ds = Dataset(Path("/nonexistent"), CATS, labels)
    plain, plain_moves = ds.split_moves(0.1, 0.2)
    assert ds.split_moves(0.1, 0.2, groups=None) == (plain, plain_moves)
    assert ds.split_moves(0.1, 0.2, groups=[]) == (plain, plain_moves)
    side = {s: k for k, v in plain.items() for s in v}
    test = [s for s in sorted(labels) if split_of(s, 0.1, 0.2) == "test"]
    train = [s for s in sorted(labels) if split_of(s, 0.1, 0.2) == "train"]
    groups = [[test[0], train[0]], [train[1], train[2], test[1]], [train[3], train[4]]]
    split, moves = ds.split_moves(0.1, 0.2, groups=groups)
    where = {s: k for k, v in split.items() for s in v}
    for group in groups:
        first = min(group)
        assert {where[s] for s in group} == {side[first]}  # all with the first by hash
        for member in group:
            if side[member] != side[first]:
                assert moves[member] == side[first]  # the blessing sees every move
    assert not any(s in moves for s in groups[2])  # already together: nothing moved
    assert sorted(s for v in split.values() for s in v) == sorted(labels)


def test_confident_joint_rule_ranks_flips_first() -> None:
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 30)
    probs = np.full((90, 3), 0.05)
    probs[np.arange(90), y] = 0.9
    probs += rng.uniform(0, 0.02, probs.shape)
    flips = [3, 40, 77]
    for i in flips:  # the model is sure these belong to the next class
        probs[i] = 0.05
        probs[i, (y[i] + 1) % 3] = 0.9 - 0.1 * flips.index(i)
    probs /= probs.sum(axis=1, keepdims=True)
    found = confident_joint_issues(y, probs)
    assert sorted(found.tolist()) == flips
    assert found[0] == 3 or probs[found[0], y[found[0]]] <= probs[3, y[3]]


def test_near_duplicate_pairs_need_both_signals_or_identical_features() -> None:
    pooled = np.eye(5, 8, dtype=np.float32)
    pooled[1] = pooled[0] * 0.99 + 0.01 * pooled[2]  # near-identical features to 0
    pooled[3] = pooled[2] * 0.97 + 0.25 * pooled[4]  # similar to 2, but its hash differs a lot
    pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
    bits = np.zeros((5, 64), bool)
    bits[3, :40] = True
    feats = Features([sha(i) for i in range(5)], pooled, bits, [])
    pairs = near_duplicate_pairs(feats, cosine=0.9, hamming=10, cosine_alone=0.985)
    assert [(i, j) for i, j, *_ in pairs] == [(0, 1)]
    assert group_pairs(5, [(0, 1, 1.0, 0), (1, 4, 1.0, 0), (2, 3, 1.0, 0)]) == [[0, 1, 4], [2, 3]]


def reencode(jpeg: bytes, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.open(io.BytesIO(jpeg)).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


@pytest.mark.slow
def test_audit_finds_flips_and_duplicates_and_writes_to_the_store(
    tmp_path: Path,
    s3_store: ObjectStore,
    s3_url: str,
    s3_server: devservers.S3Server,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RECYCLOPS_STORE__ENDPOINT_URL", s3_server.endpoint_url)
    monkeypatch.setenv("RECYCLOPS_STORE__REGION", "us-east-1")
    images = shapes(CATS, 24, seed=3, size=96)
    root = tmp_path / "shapes"
    for cat, jpegs in images.items():
        (root / cat).mkdir(parents=True)
        for i, data in enumerate(jpegs):
            (root / cat / f"{cat}{i}.jpg").write_bytes(data)
    (root / "blue" / "copy-of-red0.jpg").write_bytes(images["red"][0])  # identical bytes
    (root / "green" / "red1-again.jpg").write_bytes(reencode(images["red"][1], 70))  # near
    (root / "red" / "red2-again.jpg").write_bytes(reencode(images["red"][2], 75))  # near, same
    out = tmp_path / "report.json"
    code = main(
        [
            "audit",
            "--folders",
            str(root),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--store",
            s3_url,
            "--inject-noise",
            "0.05",
            "--k",
            "4",
            # 96 px shapes re-encoded move the features more than 224 px photos do (cosine
            # 0.84–0.94 here), while their dHash stays within a bit or two
            "--cosine",
            "0.8",
            "--hash-distance",
            "4",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    report = json.loads(out.read_text())
    latest = json.loads(s3_store.get(layout.AUDIT_LATEST))
    assert latest["run_id"] == report["run_id"]
    assert s3_store.exists(layout.audit_key(report["run_id"]))
    noise = report["noise"]
    assert noise["flipped"] == 5  # 5% of 98 distinct images
    # ImageNet features of flat-tinted shapes are a weak signal for a linear head (p of the
    # right class 0.3-0.5), yet most flips are found and ranked near the top
    assert noise["all_issues"]["recall"] >= 0.8 and noise["all_issues"]["precision"] >= 0.5
    assert noise["label_issue_ranking_at_10"]["recall"] >= 0.8
    assert len(report["probabilities"]) == 98
    groups = report["near_duplicates"]["groups"]
    identical = [g for g in groups if g["kind"] == "identical"]
    assert [sorted(m["file"] for m in g["members"]) for g in identical] == [
        ["blue/copy-of-red0.jpg", "red/red0.jpg"]
    ]
    assert identical[0]["cross_class"]
    near = [{m["sha256"] for m in g["members"]} for g in groups if g["kind"] == "near"]
    from recyclops.shared.hashing import sha256_bytes

    for original, copy in (
        (images["red"][1], root / "green" / "red1-again.jpg"),
        (images["red"][2], root / "red" / "red2-again.jpg"),
    ):
        pair = {sha256_bytes(original), sha256_bytes(copy.read_bytes())}
        assert any(pair <= g for g in near), "a re-encoded copy is a near-duplicate"
    split = report["split"]
    assert split["groups"] == len(near)
    moved = [g for g in near if set(split["images_moved"]) & g]
    assert split["groups_moved"] == len(moved)


def test_flip_labels_is_seeded_and_always_changes_the_label() -> None:
    labels = {sha(i): CATS[i % 4] for i in range(100)}
    noisy, flipped = flip_labels(labels, CATS, 0.05, seed=7)
    assert len(flipped) == 5 and flip_labels(labels, CATS, 0.05, seed=7)[0] == noisy
    assert all(noisy[s] != labels[s] == flipped[s] for s in flipped)
    assert sum(noisy[s] != labels[s] for s in labels) == 5
