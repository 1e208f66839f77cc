"""No training/serving skew: the pixels the cloud trains, calibrates and evaluates on are the
pixels the edge feeds, and both give the same answer, image by image, on the demo's real photos.

Training side: ``cloud/pixels.load_pixels`` over a data set folder (thread pool, the npz cache
written and read back), scored by the cloud's evaluator (``TfliteModel``, batched). Serving
side: ``edge/classifier.Classifier`` on each image's bytes, one frame at a time, with its own
input quantisation. The model (the committed fixture network) declares ``area_linear``, then
``area_antialiased``.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from recyclops.cloud.convert import TfliteModel
from recyclops.cloud.dataset import dataset_from_folders
from recyclops.cloud.pixels import load_pixels
from recyclops.edge.classifier import Classifier
from recyclops.shared.manifest import InputSpec
from recyclops.shared.preprocess import OPENCV_AVAILABLE, decode_rgb, load_rgb, min_edge_for

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "app" / "demo" / "sample"
FIXTURE = ROOT / "tests" / "edge" / "fixture"
CATS = ["cardboard", "glass", "metal", "paper", "plastic", "trash"]

pytestmark = pytest.mark.skipif(not OPENCV_AVAILABLE, reason="the area_* resizes need OpenCV")


def model_with_resize(folder: Path, method: str) -> Path:
    """The fixture model with a manifest that names ``method`` (the model bytes unchanged)."""
    shutil.copytree(FIXTURE, folder)
    data = json.loads((folder / "manifest.json").read_text())
    data["input"]["resize"] = method
    data["min_edge_version"] = min_edge_for(InputSpec.model_validate(data["input"]))
    (folder / "manifest.json").write_text(json.dumps(data))
    return folder


def photo_tree(root: Path) -> Path:
    """Every demo photo as stored (256x192) and as a 640x480 camera-sized frame (so the
    integer box step runs as well as the linear one), in a <category>/ tree."""
    for cat in CATS:
        (root / cat).mkdir(parents=True)
        for photo in sorted((SAMPLE / cat).glob("*.jpg")):
            shutil.copy(photo, root / cat / photo.name)
            frame = Image.fromarray(load_rgb(photo)).resize((640, 480), Image.Resampling.BICUBIC)
            frame.save(root / cat / f"{photo.stem}-640.jpg", quality=95)
    return root


@pytest.mark.parametrize("method", ["area_linear", "area_antialiased"])
def test_training_pixels_and_the_edge_agree_image_by_image(tmp_path: Path, method: str) -> None:
    folder = model_with_resize(tmp_path / "model", method)
    ds = dataset_from_folders(photo_tree(tmp_path / "data"), CATS, cache_dir=tmp_path / "cache")
    shas = sorted(ds.labels)
    spec = Classifier(folder, threads=1).manifest.input
    assert spec.resize == method
    load_pixels(ds, shas, spec.height, spec.resize)  # writes the cache training reads
    px = load_pixels(ds, shas, spec.height, spec.resize)  # read back from the npz cache
    assert px.shas == shas and not px.problems
    cloud = TfliteModel(folder / "model.tflite", threads=2).predict(px.images)

    clf = Classifier(folder, threads=1)
    same_pixels = same_answer = 0
    worst, answers = 0.0, set()
    for i, sha in enumerate(shas):
        rgb = decode_rgb(ds.path(sha).read_bytes(), sha)
        same_pixels += np.array_equal(clf.prepare(rgb)[0], px.images[i])  # uint8, scale 1
        edge = clf.classify(rgb)
        same_answer += edge.label == CATS[int(np.argmax(cloud[i]))]
        worst = max(worst, float(np.abs(edge.probs - cloud[i]).max()))
        answers.add(edge.label)
    assert len(shas) == 2 * len(list(SAMPLE.glob("*/*.jpg"))) >= 1200
    assert same_pixels == same_answer == len(shas)
    assert worst < 1e-5, worst
    assert len(answers) >= 2  # not one answer for everything: the comparison has teeth

    # The check would catch the old skew: training pixels made with Pillow's bilinear differ
    # from what the edge feeds this model on most photos (the 32x32 input needs a box step).
    old = load_pixels(ds, shas, spec.height, "bilinear", cache=False)
    differ = sum(not np.array_equal(a, b) for a, b in zip(old.images, px.images, strict=True))
    assert differ > len(shas) // 2
