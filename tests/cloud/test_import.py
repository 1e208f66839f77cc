"""``recyclops import`` against the real S3 server (SeaweedFS), with real TrashNet JPEGs from
the demo sample: conflicts, bad files, CSV input, re-runs, and what setup and review see."""

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

import recyclops.app
from recyclops.app.cli import main
from recyclops.cloud.cli.importer import PARTIAL, collect
from recyclops.cloud.importer import import_images
from recyclops.cloud.setup import sync_dataset
from recyclops.console import QueueFilter, ReviewSession, load_queue
from recyclops.shared import layout
from recyclops.shared.config import load
from recyclops.shared.hashing import sha256_bytes
from recyclops.shared.journals import parse_journal

SAMPLE = Path(recyclops.app.__file__).parent / "demo" / "sample"
CATS = load(None).category_names  # the configured (default) categories


def _jpegs(category: str, count: int, skip: int = 0) -> list[Path]:
    return sorted((SAMPLE / category).glob("*.jpg"))[skip : skip + count]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Three glass and three metal photos; one metal photo's bytes also under paper/ (the
    TrashNet case); a PNG; a truncated JPEG; an unknown category; files that are no claims."""
    root = tmp_path / "dataset"
    for category in ("glass", "metal"):
        (root / category).mkdir(parents=True)
        for path in _jpegs(category, 3):
            shutil.copy(path, root / category / path.name)
    (root / "paper").mkdir()
    shutil.copy(_jpegs("metal", 1)[0], root / "paper" / "same-bytes.jpg")
    buf = io.BytesIO()
    Image.open(_jpegs("plastic", 1)[0]).save(buf, "PNG")
    (root / "plastic").mkdir()
    (root / "plastic" / "photo.png").write_bytes(buf.getvalue())
    (root / "plastic" / "broken.jpg").write_bytes(_jpegs("plastic", 1, 1)[0].read_bytes()[:200])
    (root / "wood").mkdir()
    shutil.copy(_jpegs("cardboard", 1)[0], root / "wood" / "plank.jpg")
    (root / "README.md").write_text("not a category\n")
    (root / "glass" / ".DS_Store").write_bytes(b"\0")
    return root


@pytest.fixture
def s3_env(s3_server, s3_url, monkeypatch) -> str:
    """The CLI reaches SeaweedFS through the config's environment overrides."""
    monkeypatch.setenv("RECYCLOPS_STORE__ENDPOINT_URL", s3_server.endpoint_url)
    monkeypatch.setenv("RECYCLOPS_STORE__REGION", "us-east-1")
    return s3_url


def _run(store, source: Path, **kwargs):
    entries, skipped = collect(source)
    return import_images(
        store, entries, CATS, source=str(source), who="tester", skipped=skipped, **kwargs
    )


def _keys(store) -> dict[str, int]:
    return {k: store.size(k) for k in store.list("")}


def test_folder_import_into_s3(s3_store, s3_env, folder, tmp_path, capsys):
    report_file = tmp_path / "report.json"
    argv = ["import", str(folder), "--store", s3_env, "--no-progress", "--report", str(report_file)]
    assert main(argv) == PARTIAL  # skipped files and a conflict: never a silent 0
    out, err = capsys.readouterr()
    assert "1 images left unlabelled for review" in out and "2 files skipped" in out
    assert "plastic/broken.jpg: undecodable" in out and "wood/plank.jpg: unknown category" in out
    assert "incomplete" in err and "--allow-skipped" in err

    report = json.loads(report_file.read_text())
    assert report["who"] and report["source"] == str(folder) and report["started"]
    assert (report["files"], report["images"], report["uploaded"]) == (10, 7, 7)
    assert report["labelled"] == 6 and report["reencoded"] == 1
    same = sha256_bytes(_jpegs("metal", 1)[0].read_bytes())
    [conflict] = report["conflicts"]
    assert conflict["sha256"] == same and conflict["kind"] == "import"
    assert conflict["labels"] == {"metal": [f"metal/{_jpegs('metal', 1)[0].name}"],
                                  "paper": ["paper/same-bytes.jpg"]}  # fmt: skip
    assert {s["reason"] for s in report["skipped"]} == {"undecodable", "unknown category"}
    assert json.loads(s3_store.get(report["report_key"])) == report  # stored beside the journal

    # JPEG bytes are stored as they are; the PNG once, as a JPEG, under the JPEG's hash.
    for path in _jpegs("glass", 3):
        assert s3_store.get(layout.image_key(sha256_bytes(path.read_bytes()))) == path.read_bytes()
    [png] = [f for f in report["per_file"] if f["path"] == "plastic/photo.png"]
    stored = s3_store.get(layout.image_key(png["sha256"]))
    assert stored[:3] == b"\xff\xd8\xff" and sha256_bytes(stored) == png["sha256"]
    assert png["original_sha256"] == sha256_bytes((folder / "plastic" / "photo.png").read_bytes())

    # The journal: ordinary decisions, nothing for the conflicting bytes.
    decisions, problems = parse_journal(s3_store.get(report["journal_key"]).decode(), "j")
    assert not problems and len(decisions) == 6 and same not in {d.sha256 for d in decisions}
    assert {d.reviewer for d in decisions} == {report["who"]}

    # The review queue flags the conflict first; the imported labels count as decided.
    queue = load_queue(s3_store)
    assert queue.order == [same] and queue.items[same].label_disagreement
    assert queue.items[same].gathered_labels == ["metal", "paper"]
    assert len(queue.items) == 7 and all(i.devices == ["import"] for i in queue.items.values())

    # Both flags accept what is left over.
    argv += ["--allow-skipped", "--allow-conflicts"]
    assert main(argv) == 0


def test_rerun_is_idempotent(s3_store, folder):
    first, _ = _run(s3_store, folder, progress=False)
    before = _keys(s3_store)
    again, report = _run(s3_store, folder, progress=False)
    assert _keys(s3_store) == before  # no upload, no record, no journal, no report
    assert (again.uploaded, again.labelled, again.gathered_written) == (0, 0, 0)
    assert again.already_labelled == first.labelled == 6
    assert again.journal_key is None and again.report_key is None
    assert len(again.conflicts) == 1 and len(again.skipped) == 2  # still reported
    assert report["conflicts"] == [vars(c) for c in again.conflicts]


def test_csv_import(s3_store, s3_env, tmp_path, capsys):
    glass, metal = _jpegs("glass", 2, 5), _jpegs("metal", 1, 5)
    (tmp_path / "imgs").mkdir()
    for path in glass:
        shutil.copy(path, tmp_path / "imgs" / path.name)
    csv_file = tmp_path / "labels.csv"
    csv_file.write_text(
        "path,label\n"
        f"imgs/{glass[0].name},glass\n"
        f"{tmp_path / 'imgs' / glass[1].name},glass,\n"  # absolute, a trailing empty column
        f"{metal[0]},metal\n"
        "# a comment\n\n"
        f"{metal[0]},Trash\n"  # not a configured name (they are lowercase)
        "imgs/missing.jpg,paper\n"
        "only-a-path.jpg\n"
    )
    assert main(["import", str(csv_file), "--store", s3_env]) == PARTIAL
    out, err = capsys.readouterr()
    assert "img/s" not in err  # the progress bar stays quiet when stderr is not a terminal
    assert "labelled 3" in out and "3 files skipped" in out
    assert f"labels.csv:7:{metal[0]}: unknown category: 'Trash' (the names are lowercase)" in out
    assert "labels.csv:8:imgs/missing.jpg: unreadable" in out
    assert "labels.csv:9:only-a-path.jpg: malformed row" in out
    summary, _ = _run(s3_store, csv_file, progress=False)
    assert summary.already_labelled == 3 and summary.report_key is None


def test_setup_takes_imported_labels_and_a_review_wins(s3_store, folder, tmp_path):
    first, _ = _run(s3_store, folder, progress=False)
    same = first.conflicts[0].sha256
    data = sync_dataset(s3_store, tmp_path / "data", CATS, progress=False)
    assert data.per_class == {**dict.fromkeys(CATS, 0), "glass": 3, "metal": 2, "plastic": 1}
    assert not data.problems and not (tmp_path / "data" / "metal" / f"{same}.jpg").exists()

    glass = sha256_bytes(_jpegs("glass", 1)[0].read_bytes())
    with ReviewSession(
        s3_store,
        load(None).categories,
        reviewer="ann",
        qfilter=QueueFilter(include_decided=True),
        start_flusher=False,
    ) as review:
        assert review.current().sha256 == same  # the conflict comes first
        review.decide(same, "metal")
        review.decide(glass, "trash")  # overrides the import
    data = sync_dataset(s3_store, tmp_path / "data", CATS, progress=False)
    assert (tmp_path / "data" / "trash" / f"{glass}.jpg").exists()
    assert (tmp_path / "data" / "metal" / f"{same}.jpg").exists()
    assert data.per_class["glass"] == 2 and data.per_class["metal"] == 3

    # A re-run does not undo the review: the store's reviewed labels stand, nothing is written.
    before = _keys(s3_store)
    again, _ = _run(s3_store, folder, progress=False)
    assert again.reviewed_differently == 2 and not again.conflicts and again.labelled == 0
    assert _keys(s3_store) == before


def test_a_second_import_that_disagrees_is_a_conflict(local_store, tmp_path):
    photo = _jpegs("glass", 1)[0]
    for name, label in (("a", "glass"), ("b", "metal")):
        (tmp_path / name / label).mkdir(parents=True)
        shutil.copy(photo, tmp_path / name / label / photo.name)
    first, _ = _run(local_store, tmp_path / "a", progress=False)
    second, _ = _run(local_store, tmp_path / "b", progress=False)
    assert first.labelled == 1 and second.labelled == 0
    [conflict] = second.conflicts
    assert (conflict.kind, conflict.store_label, conflict.store_session) == (
        "store",
        "glass",
        first.session,
    )
    assert second.report_key and local_store.exists(second.report_key)
    third, _ = _run(local_store, tmp_path / "b", progress=False)
    assert len(third.conflicts) == 1 and third.report_key is None  # recorded once


def test_import_never_imports_tensorflow(tmp_path):
    (tmp_path / "src" / "glass").mkdir(parents=True)
    shutil.copy(_jpegs("glass", 1)[0], tmp_path / "src" / "glass")
    code = (
        "import sys\n"
        "from recyclops.app.cli import main\n"
        f"rc = main(['import', {str(tmp_path / 'src')!r}, '--store', "
        f"{'file://' + str(tmp_path / 'store')!r}, '-q'])\n"
        "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]\n"
        "assert rc == 0 and not bad, (rc, bad)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_nothing_to_import_is_an_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    store = f"file://{tmp_path / 'store'}"
    assert main(["import", str(tmp_path / "empty"), "--store", store]) == 1
    assert main(["import", str(tmp_path / "nowhere"), "--store", store]) == 1
    err = capsys.readouterr().err
    assert "no files to import" in err and "no such folder or CSV file" in err
