"""The quality gate, and publish's refusal and immutability rules."""

import json

import numpy as np
import pytest

from recyclops.cloud.evaluate import GateError, Scores, quality_gate
from recyclops.cloud.publish import PublishError, publish
from recyclops.shared import layout
from recyclops.shared.manifest import InputSpec, ModelManifest, file_entry, parse_pointer

CATS = ["a", "b", "c"]


def scores(correct: dict[str, int], support: int = 20) -> Scores:
    y, probs = [], []
    for i, c in enumerate(CATS):
        for k in range(support):
            y.append(i)
            p = np.zeros(3)
            p[i if k < correct[c] else (i + 1) % 3] = 1
            probs.append(p)
    return Scores.of(np.array(probs), np.array(y), CATS)


def test_gate_passes_small_drop_and_refuses_large_ones():
    fl = scores({"a": 19, "b": 18, "c": 17})
    assert quality_gate(fl, scores({"a": 19, "b": 18, "c": 17}), 1.5, 5).passed
    overall = quality_gate(fl, scores({"a": 17, "b": 16, "c": 15}), 1.5, 50)
    assert not overall.passed and "overall" in overall.reasons[0]
    one_class = quality_gate(fl, scores({"a": 19, "b": 18, "c": 16}), 5, 4)  # c drops 5 pt
    assert not one_class.passed
    assert one_class.reasons == [one_class.reasons[0]] and "class c" in one_class.reasons[0]


def _run(tmp_path, passed: bool, version: str = "v1", content: bytes = b"tflite"):
    run = tmp_path / version
    model = run / "model"
    model.mkdir(parents=True)
    (model / "model.tflite").write_bytes(content)
    (model / "MODEL_CARD.md").write_text("# card")
    manifest = ModelManifest(
        version=version,
        created="2026-01-01T00:00:00Z",
        categories=CATS,
        input=InputSpec(height=32, width=32, scale=1.0, zero_point=0),
        files=[file_entry(model / "model.tflite"), file_entry(model / "MODEL_CARD.md")],
    )
    (model / "manifest.json").write_bytes(manifest.to_json())
    (run / "gate.json").write_text(
        json.dumps({"passed": passed, "reasons": [] if passed else ["class c: too low"]})
    )
    return run


def test_publish_refuses_failed_gate_and_keeps_the_channel(local_store, tmp_path):
    publish(_run(tmp_path, True, "v1"), local_store, None, "stable")
    with pytest.raises(GateError, match="class c"):
        publish(_run(tmp_path, False, "v2"), local_store, None, "stable")
    assert parse_pointer(local_store.get(layout.channel_key("stable"))).version == "v1"
    assert not local_store.exists(layout.manifest_key("v2"))


def test_versions_are_immutable_and_republish_is_harmless(local_store, tmp_path):
    run = _run(tmp_path, True, "v1")
    publish(run, local_store, None, "stable")
    publish(run, local_store, None, "stable")
    other = tmp_path / "other"
    other.mkdir()
    clash = _run(other, True, "v1", content=b"different model")
    with pytest.raises(PublishError, match="never overwritten"):
        publish(clash, local_store, None, "beta")
    assert not local_store.exists(layout.channel_key("beta"))
    assert local_store.get(layout.model_file_key("v1", "model.tflite")) == b"tflite"


def test_tampered_run_is_refused_before_upload(local_store, tmp_path):
    run = _run(tmp_path, True, "v1")
    (run / "model" / "model.tflite").write_bytes(b"tflitX")
    with pytest.raises(Exception, match="sha256"):
        publish(run, local_store, None, "stable")
    assert list(local_store.list("models/")) == []


def test_publish_of_the_model_folder_or_an_ungated_run_still_needs_the_gate(local_store, tmp_path):
    publish(_run(tmp_path, True, "v1"), local_store, None, "stable")
    failed = _run(tmp_path, False, "v2")
    with pytest.raises(GateError, match="class c"):
        publish(failed / "model", local_store, None, "stable")  # pointed one level down
    ungated = _run(tmp_path, True, "v3")
    (ungated / "gate.json").unlink()
    with pytest.raises(GateError, match="was not evaluated"):
        publish(ungated, local_store, None, "stable")
    assert parse_pointer(local_store.get(layout.channel_key("stable"))).version == "v1"
