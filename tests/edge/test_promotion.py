"""Promotion on the bin: the golden check (real photos, the bin's own runtime), generations
(a replayed older notice is ignored; a rollback is a higher generation), without TensorFlow."""

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from edge_helpers import (
    DATA,
    GOLDEN,
    Harness,
    float_manifest,
    golden_of,
    honest_manifest,
    publish_model,
)

from recyclops.edge.classifier import Classifier, synthetic_images
from recyclops.edge.models import ModelRepo
from recyclops.shared.golden import GoldenSet
from recyclops.shared.store import LocalStore

pytestmark = pytest.mark.edge_numpy1


@pytest.fixture
def harness(tmp_path: Path, local_store: LocalStore) -> Harness:
    h = Harness(tmp_path, local_store)
    assert h.updater.handle(publish_model(local_store, "v1"), "test")
    assert h.serving is not None and h.serving.version == "v1"
    return h


def _assert_refused(h: Harness, version: str, *needles: str) -> str:
    reason = h.rejected[-1][1]
    assert h.rejected[-1][0] == version
    for needle in needles:
        assert needle in reason, reason
    assert h.serving is not None and h.serving.version == "v1"
    assert h.repo.current_version() == "v1" and not (h.repo.versions / version).exists()
    green = np.full((40, 40, 3), (20, 220, 20), np.uint8)
    assert h.serving.classify(green).label == "glass"  # the old model keeps serving
    return reason


def test_a_model_that_gives_nan_only_on_real_photos_is_refused_at_the_golden_check(
    harness: Harness, local_store: LocalStore, tmp_path: Path
) -> None:
    model = (DATA / "nan_on_photos.tflite").read_bytes()
    manifest = float_manifest("v2-nan", model)  # the golden outputs the cloud recorded
    folder = tmp_path / "probe"
    folder.mkdir()
    (folder / "model.tflite").write_bytes(model)
    (folder / "manifest.json").write_bytes(manifest)
    Classifier(folder, threads=1).self_test(synthetic_images())  # flat colours, noise: fine
    notice = publish_model(local_store, "v2-nan", model_bytes=model, manifest=manifest)
    assert not harness.updater.handle(notice, "test")
    _assert_refused(harness, "v2-nan", "golden check", "non-finite output")
    assert not harness.repo.wanted(notice, "v1")  # remembered: polling does not refetch it


def test_outputs_beyond_the_tolerance_or_another_top1_are_refused(
    harness: Harness, local_store: LocalStore
) -> None:
    golden = GoldenSet.load(DATA / GOLDEN)
    model = (DATA / "model.tflite").read_bytes()
    shifted = golden.probs.copy()
    shifted[:, :2] += np.array([-0.08, 0.08], np.float32)  # same top-1 where margins allow
    keep = np.argmax(shifted, 1) == np.argmax(golden.probs, 1)
    assert keep.sum() >= 2
    drift = GoldenSet(
        [j for j, k in zip(golden.jpegs, keep, strict=True) if k],
        shifted[keep],
        golden.labels[keep],
        [s for s, k in zip(golden.shas, keep, strict=True) if k],
    ).to_bytes()
    notice = publish_model(
        local_store,
        "v2-drift",
        manifest=honest_manifest("v2-drift", model, drift),
        golden=drift,
    )
    assert not harness.updater.handle(notice, "test")
    _assert_refused(harness, "v2-drift", "golden check", "differs by")

    flipped = golden.probs[:, ::-1].copy()  # every recorded top-1 moves to another class
    other = GoldenSet(golden.jpegs, flipped, golden.labels, golden.shas).to_bytes()
    notice = publish_model(
        local_store, "v2-flip", manifest=honest_manifest("v2-flip", model, other), golden=other
    )
    assert not harness.updater.handle(notice, "test")
    _assert_refused(harness, "v2-flip", "golden check", "top-1 is class")


def test_a_model_without_a_golden_set_is_refused_unless_configured(
    tmp_path: Path, local_store: LocalStore
) -> None:
    model = (DATA / "model.tflite").read_bytes()
    manifest = honest_manifest("bare", model, golden=None)
    assert json.loads(manifest)["golden"] is None
    strict = Harness(tmp_path / "strict", local_store)
    assert not strict.updater.handle(publish_model(local_store, "bare", manifest=manifest), "t")
    assert "carries no golden set" in strict.rejected[-1][1]
    lenient = Harness(tmp_path / "lenient", local_store, require_golden=False)
    assert lenient.updater.handle(publish_model(local_store, "bare", manifest=manifest), "t")
    assert lenient.serving is not None and lenient.serving.version == "bare"


def test_a_model_that_passes_its_golden_set_is_installed(
    harness: Harness, local_store: LocalStore, tmp_path: Path
) -> None:
    """A float32-input model whose outputs the cloud recorded on this same runtime."""
    model = (DATA / "nan_on_green.tflite").read_bytes()
    golden = golden_of(model, float_manifest("v2-float", model), tmp_path / "cloud")
    manifest = float_manifest("v2-float", model, golden)
    notice = publish_model(
        local_store, "v2-float", model_bytes=model, manifest=manifest, golden=golden
    )
    assert harness.updater.handle(notice, "test")
    assert harness.serving is not None and harness.serving.version == "v2-float"


def test_generations_persist_refuse_older_notices_and_allow_a_rollback(
    tmp_path: Path, local_store: LocalStore, caplog: pytest.LogCaptureFixture
) -> None:
    h = Harness(tmp_path, local_store)
    v1 = publish_model(local_store, "v1", generation=1)
    assert h.updater.handle(v1, "test")
    assert h.updater.handle(publish_model(local_store, "v2", generation=2), "test")
    assert h.repo.generation() == 2
    saved = json.loads((h.repo.folder / "generation.json").read_text())
    assert saved == {"generation": 2, "version": "v2"}
    restarted = ModelRepo(h.repo.folder, h.repo.categories, h.repo.classifier, h.repo.updates)
    assert restarted.generation() == 2  # survives a restart

    with caplog.at_level(logging.WARNING):
        assert not h.updater.handle(v1, "mqtt")  # replayed: correct hashes, older generation
    assert "ignored model notice (mqtt): v1 at generation 1" in caplog.text
    assert h.updater.stale == 1 and h.serving.version == "v2"  # type: ignore[union-attr]
    assert not h.updater.handle(v1, "poll")  # the same replay again: counted once
    legacy = v1.model_copy(update={"generation": 0})
    assert not h.updater.handle(legacy, "mqtt")  # a notice from before generations
    assert h.updater.stale == 2

    same = publish_model(local_store, "v2", generation=2, pointer=False)
    assert not h.updater.handle(same, "poll") and h.updater.stale == 2  # a no-op
    rival = publish_model(local_store, "v9", generation=2, pointer=False)
    assert not h.updater.handle(rival, "mqtt") and h.updater.stale == 3  # generation taken

    back = publish_model(local_store, "v1", generation=3)  # recyclops rollback --to v1
    assert h.updater.handle(back, "poll")
    assert h.serving.version == "v1" and h.repo.current_version() == "v1"  # type: ignore[union-attr]
    assert h.repo.generation() == 3
    again = publish_model(local_store, "v1", generation=4, pointer=False)  # re-announced
    assert not h.updater.handle(again, "mqtt") and h.repo.generation() == 4


def test_pointers_without_generations_still_update_a_bin_that_never_saw_one(
    harness: Harness, local_store: LocalStore
) -> None:
    """Generation 0 everywhere (a cloud from before generations): versions still flow."""
    assert harness.repo.generation() == 0
    assert harness.updater.handle(publish_model(local_store, "v2"), "poll")
    assert harness.serving is not None and harness.serving.version == "v2"
    assert harness.updater.stale == 0


def test_runtime_guard_counts_only_non_finite_or_flat_frames_in_a_row() -> None:
    from recyclops.edge.guard import RuntimeGuard

    guard = RuntimeGuard(3)
    one_hot = np.array([1.0, 0, 0, 0, 0, 0], np.float32)
    for _ in range(100):  # a confident model on a still scene repeats itself: healthy
        assert guard.observe(one_hot, "v") is None
    nan = np.full(6, np.nan, np.float32)
    flat = np.full(6, 1 / 6, np.float32)
    assert guard.observe(nan, "v") is None and guard.observe(flat, "v") is None
    assert guard.observe(one_hot, "v") is None and guard.run == 0  # one good frame resets
    assert guard.observe(nan, "v") is None and guard.observe(nan, "v") is None
    reason = guard.observe(np.array([np.inf, 0, 0, 0, 0, 0], np.float32), "v")
    assert reason == "runtime guard: 3 live frames in a row gave non-finite outputs with model v"
    assert guard.observe(nan, "v") is None  # once per model
    guard.reset()  # the next model is judged afresh
    for _ in range(2):
        assert guard.observe(flat, "w") is None
    assert "flat (every class equal)" in (guard.observe(flat, "w") or "")
    off = RuntimeGuard(0)
    assert all(off.observe(nan, "v") is None for _ in range(50))
