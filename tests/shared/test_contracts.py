"""Manifest, layout, messages, records and preprocessing: the contracts both sides share."""

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from recyclops.shared import layout
from recyclops.shared.errors import ImageError, InvalidKeyError, ManifestError, MessageError
from recyclops.shared.hashing import sha256_bytes
from recyclops.shared.journals import (
    Decision,
    dump_journal,
    parse_journal,
    read_journals,
    resolve_labels,
)
from recyclops.shared.manifest import (
    InputSpec,
    ModelManifest,
    ModelRef,
    file_entry,
    parse_manifest,
    parse_pointer,
)
from recyclops.shared.messages import DeviceStatus, model_topic, parse_message
from recyclops.shared.preprocess import decode_rgb, from_bgr, preprocess, resize_rgb
from recyclops.shared.store import LocalStore

SHA = "a" * 64
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def make_manifest(tmp_path: Path) -> ModelManifest:
    (tmp_path / "model.tflite").write_bytes(b"tflite bytes")
    return ModelManifest(
        version="20261123-120000-abc",
        created=NOW,
        categories=["glass", "metal"],
        input=InputSpec(height=224, width=224, dtype="uint8", scale=1.0, zero_point=0),
        files=[file_entry(tmp_path / "model.tflite")],
    )


def test_manifest_roundtrip_and_verify(tmp_path: Path) -> None:
    manifest = make_manifest(tmp_path)
    again = parse_manifest(manifest.to_json())
    assert again == manifest
    again.verify_folder(tmp_path)
    (tmp_path / "model.tflite").write_bytes(b"tflite bytez")
    with pytest.raises(ManifestError, match="sha256"):
        again.verify_folder(tmp_path)
    (tmp_path / "model.tflite").write_bytes(b"short")
    with pytest.raises(ManifestError, match="5 bytes, manifest says 12"):
        again.verify_folder(tmp_path)


def test_manifest_missing_field_is_named(tmp_path: Path) -> None:
    data = json.loads(make_manifest(tmp_path).to_json())
    del data["categories"]
    with pytest.raises(ManifestError, match="categories: missing"):
        parse_manifest(json.dumps(data))
    with pytest.raises(ManifestError, match="not JSON"):
        parse_manifest(b"{broken")
    data = json.loads(make_manifest(tmp_path).to_json())
    data["model_file"] = "other.tflite"
    with pytest.raises(ManifestError, match="not among files"):
        parse_manifest(json.dumps(data))


def model_ref(**change: object) -> ModelRef:
    data: dict[str, object] = {
        "channel": "stable",
        "version": "v1",
        "manifest_key": "models/v1/manifest.json",
        "manifest_sha256": SHA,
        "published_at": NOW,
    }
    return ModelRef.model_validate({**data, **change})


def test_channel_pointer_validation() -> None:
    good = model_ref()
    assert parse_pointer(good.model_dump_json()) == good
    with pytest.raises(ManifestError, match="manifest_sha256"):
        parse_pointer(good.model_dump_json().replace(SHA, "nothex"))


#: the wire formats before ModelRef: ModelNotice's payload and a stored ChannelPointer
OLD_NOTICE = (
    '{"schema_version": 1, "channel": "stable", "version": "v1", "manifest_key": '
    '"models/v1/manifest.json", "manifest_sha256": "' + SHA + '", "published_at": '
    '"2026-11-23T12:00:00Z", "generation": 3}'
)
OLD_POINTER = (
    '{\n "schema_version": 1,\n "channel": "stable",\n "version": "v1",\n "manifest_key": '
    '"models/v1/manifest.json",\n "manifest_sha256": "' + SHA + '",\n "published_at": '
    '"2026-11-23T12:00:00Z",\n "generation": 3,\n "action": "rollback",\n "note": "bad v2"\n}'
)


def test_one_model_reference_keeps_the_notice_and_pointer_formats() -> None:
    """A bin from before ModelRef parses today's notice (it forbids unknown keys: no
    ``action``/``note`` in it), and pointers already in the store still parse."""
    ref = model_ref(generation=3, action="rollback", note="bad v2")
    assert ref.notice_payload().decode() == OLD_NOTICE
    assert ref.pointer_json().decode() == OLD_POINTER
    assert parse_pointer(OLD_POINTER) == ref
    notice = parse_message(ModelRef, OLD_NOTICE)
    assert notice == ref.model_copy(update={"action": "publish", "note": None})
    with pytest.raises(ManifestError, match="manifest_key"):
        parse_pointer(OLD_POINTER.replace("models/v1/manifest.json", "images/x.json"))


def test_layout_keys_and_parsing() -> None:
    day = NOW.date()
    assert layout.image_key(SHA) == f"images/{SHA}.jpg"
    key = layout.gathered_key("bin-01", day, SHA)
    assert key == f"gathered/bin-01/2026-11-23/{SHA}.json"
    assert layout.parse_gathered_key(key) == ("bin-01", "2026-11-23", SHA, 1, False)
    undo = layout.gathered_undo_key("bin-01", day, SHA)
    assert layout.parse_gathered_key(undo) == ("bin-01", "2026-11-23", SHA, 1, True)
    again = layout.gathered_undo_key("bin-01", day, SHA, seq=3)
    assert again == f"gathered/bin-01/2026-11-23/{SHA}.3.undo.json"
    assert layout.parse_gathered_key(again) == ("bin-01", "2026-11-23", SHA, 3, True)
    assert layout.parse_gathered_key(f"gathered/bin-01/2026-11-23/{SHA}.1.json") is None
    assert layout.parse_gathered_key("gathered/x/notadate/abc.json") is None
    assert layout.channel_key("stable") == "models/channels/stable.json"
    assert layout.manifest_key("v1") == "models/v1/manifest.json"
    for bad in [
        lambda: layout.image_key("../x"),
        lambda: layout.gathered_key("../d", day, SHA),
        lambda: layout.labels_key("a/b"),
        lambda: layout.model_prefix(".."),
    ]:
        with pytest.raises(InvalidKeyError):
            bad()


def notice(**change: object) -> bytes:
    data = {
        "channel": "stable",
        "version": "v2",
        "manifest_key": "models/v2/manifest.json",
        "manifest_sha256": SHA,
        "published_at": NOW.isoformat(),
    }
    data.update(change)
    return json.dumps(data).encode()


def test_model_notice_parses_and_rejects_hostile_payloads() -> None:
    assert parse_message(ModelRef, notice()).version == "v2"
    cases = {
        b"not json": "not JSON",
        b"[1, 2]": "expected a JSON object",
        notice(manifest_key="models/../../etc/manifest.json"): "manifest_key",
        notice(manifest_key="images/x/manifest.json"): "models/<version>/manifest.json",
        notice(version="../v"): "version",
        notice(extra=1): "extra: Extra inputs are not permitted",
        b"{" + b" " * 70000 + b"}": "exceeds",
    }
    for payload, message in cases.items():
        with pytest.raises(MessageError, match=message.replace("(", r"\(").replace(")", r"\)")):
            parse_message(ModelRef, payload, "t")
    assert model_topic("fleet1", "stable") == "recyclops/fleet1/models/stable"
    with pytest.raises(MessageError):
        model_topic("fleet/#", "stable")
    assert (
        parse_message(DeviceStatus, b'{"device": "bin-01", "state": "offline"}').state == "offline"
    )


def decision(
    session: str, seq: int, minutes: int, label: str | None, action: str = "label", sha: str = SHA
) -> Decision:
    return Decision(
        sha256=sha,
        session=session,
        seq=seq,
        time=NOW + timedelta(minutes=minutes),
        action=action,
        label=label,
    )  # type: ignore[arg-type]


def test_label_resolution_latest_wins_and_conflicts_show() -> None:
    res = resolve_labels([decision("s1", 0, 0, "glass"), decision("s2", 0, 5, "metal")])[SHA]
    assert res.label == "metal" and res.session == "s2" and res.conflict
    assert res.votes == {"s1": "glass", "s2": "metal"}


def test_withdraw_clears_only_its_own_session() -> None:
    decisions = [
        decision("s1", 0, 0, "glass"),
        decision("s2", 0, 5, "metal"),
        decision("s2", 1, 6, None, "withdraw"),
    ]
    res = resolve_labels(decisions)[SHA]
    assert res.label == "glass" and not res.conflict
    alone = resolve_labels([decision("s1", 0, 0, "glass"), decision("s1", 1, 1, None, "withdraw")])
    assert alone[SHA].label is None and not alone[SHA].usable


def test_tie_break_is_deterministic_and_invalid_is_not_usable() -> None:
    a, b = decision("sa", 0, 0, "glass"), decision("sb", 0, 0, "metal")
    assert resolve_labels([a, b])[SHA].label == resolve_labels([b, a])[SHA].label == "metal"
    assert not resolve_labels([decision("s", 0, 0, "invalid")])[SHA].usable


def test_journal_roundtrip_reports_bad_lines() -> None:
    text = dump_journal([decision("s1", 0, 0, "glass")]).decode() + "garbage\n\n"
    decisions, problems = parse_journal(text, "labels/s1.jsonl")
    assert len(decisions) == 1 and decisions[0].label == "glass"
    assert problems and problems[0].startswith("labels/s1.jsonl:2:")
    raw = dump_journal([decision("s1", 0, 0, "glass"), decision("s1", 1, 1, "metal")])
    damaged = raw.replace(b'"metal"', b'"met\xffal"')
    decisions, problems = parse_journal(damaged, "j")
    assert [d.label for d in decisions] == ["glass"] and problems == [
        "j:2: not UTF-8: invalid start byte"
    ]


def test_every_journal_is_read_once_for_every_reader(tmp_path: Path) -> None:
    """The sync, the review queue and the importer read journals here: every session's
    decisions, bad lines reported, one session's own journal left out when asked."""
    store = LocalStore(tmp_path / "store")
    store.put(layout.labels_key("s1"), dump_journal([decision("s1", 0, 0, "glass")]))
    store.put(layout.labels_key("s2"), dump_journal([decision("s2", 0, 1, "metal")]) + b"x\n")
    store.put("labels/import-report.json", b"{}")
    got = read_journals(store, workers=2)
    assert sorted(d.session for d in got.decisions) == ["s1", "s2"]
    assert got.problems == ["labels/s2.jsonl:2: Invalid JSON: expected value at line 1 column 1"]
    assert not got.failures
    mine = read_journals(store, exclude=layout.labels_key("s2"), workers=1)
    assert [d.session for d in mine.decisions] == ["s1"] and not mine.problems


def jpeg(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    return buf.getvalue()


def test_decode_forces_rgb_and_keeps_channel_order() -> None:
    red = np.zeros((10, 20, 3), np.uint8)
    red[..., 0] = 255
    out = decode_rgb(jpeg(red))
    assert out.shape == (10, 20, 3) and out[0, 0].tolist() == [255, 0, 0]
    gray = Image.new("L", (5, 5), 128)
    buf = io.BytesIO()
    gray.save(buf, "PNG")
    assert decode_rgb(buf.getvalue()).shape == (5, 5, 3)


def test_from_bgr_swaps_once() -> None:
    bgr = np.zeros((2, 2, 3), np.uint8)
    bgr[..., 0] = 200  # blue in OpenCV order
    assert from_bgr(bgr)[0, 0].tolist() == [0, 0, 200]


def test_preprocess_shapes_and_methods() -> None:
    img = np.random.default_rng(0).integers(0, 255, (288, 384, 3), dtype=np.uint8)
    out = preprocess(jpeg(img), 224, 224)
    assert out.shape == (224, 224, 3) and out.dtype == np.uint8
    crop = resize_rgb(img, 224, 224, fit="center_crop")
    assert crop.shape == (224, 224, 3)
    assert not np.array_equal(crop, out)
    with pytest.raises(ImageError, match="unknown resize method"):
        resize_rgb(img, 10, 10, method="lanczos9")


def test_corrupt_images_are_clear_errors() -> None:
    with pytest.raises(ImageError, match="empty"):
        decode_rgb(b"")
    with pytest.raises(ImageError, match="cannot decode"):
        decode_rgb(b"\xff\xd8\xff\xe0 definitely not a jpeg", "images/x.jpg")
    good = jpeg(np.zeros((50, 50, 3), np.uint8))
    with pytest.raises(ImageError):
        decode_rgb(good[: len(good) // 2])


def test_content_addressing_is_sha256_of_bytes() -> None:
    data = jpeg(np.ones((4, 4, 3), np.uint8))
    assert layout.image_key(sha256_bytes(data)).endswith(".jpg")


def test_primitives_refuse_a_trailing_newline() -> None:
    """``re.match`` with ``$`` accepts "name\\n": a device id or digest must not carry one
    into an object key."""
    from recyclops.shared.primitives import is_safe_segment, is_sha256

    assert is_safe_segment("bin-1") and not is_safe_segment("bin-1\n")
    assert is_sha256("a" * 64) and not is_sha256("a" * 64 + "\n") and not is_sha256("A" * 64)
