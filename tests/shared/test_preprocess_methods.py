"""Resize methods of the preprocessing contract: ``bilinear`` stays exactly Pillow's (old
models see the pixels they were trained with), ``area_linear`` is exact and fast, a missing
OpenCV is one clear error, and the edge agrees with an independent scorer on real photos."""

import json
import math
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, get_args

import numpy as np
import pytest
from PIL import Image

from recyclops.shared import preprocess as pp
from recyclops.shared.errors import ImageError
from recyclops.shared.manifest import InputSpec
from recyclops.shared.preprocess import (
    DEFAULT_RESIZE,
    METHODS,
    OPENCV_AVAILABLE,
    check_method,
    load_rgb,
    preprocess_for,
    resize_rgb,
)

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "app" / "demo" / "sample"
FIXTURE = ROOT / "tests" / "edge" / "fixture"
TRASHNET = ROOT.parent / "shared" / "datasets" / "trashnet"  # the team's data, when present
PHOTOS = sorted(SAMPLE.glob("*/*.jpg"))


def photos(step: int = 1) -> list[np.ndarray]:
    return [load_rgb(p) for p in PHOTOS[::step]]


def box2(image: np.ndarray) -> np.ndarray:
    """The exact 2x2 box average, rounded half up, in integers (what a 2x area step must be)."""
    h, w = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
    s = image[:h, :w].astype(np.uint16)
    total = s[0::2, 0::2] + s[1::2, 0::2] + s[0::2, 1::2] + s[1::2, 1::2]
    return ((total + 2) // 4).astype(np.uint8)


@pytest.mark.edge_numpy1
def test_method_names_agree_with_the_manifest() -> None:
    assert get_args(InputSpec.model_fields["resize"].annotation) == METHODS
    want = "area_linear" if OPENCV_AVAILABLE else "bilinear"
    assert want == DEFAULT_RESIZE
    assert InputSpec(height=8, width=8).resize == "bilinear"  # old manifests: unchanged


@pytest.mark.edge_numpy1
def test_bilinear_is_still_exactly_pillow() -> None:
    """A model trained with ``bilinear`` must keep getting today's pixels on every path."""
    for image in photos(step=50):
        for size in ((224, 224), (32, 32), (300, 400)):
            want = np.asarray(
                Image.fromarray(image).resize(size[::-1], Image.Resampling.BILINEAR), np.uint8
            )
            assert np.array_equal(resize_rgb(image, *size), want)
            assert np.array_equal(resize_rgb(image, *size, method="bilinear"), want)


@pytest.mark.edge_numpy1
def test_area_linear_box_step_is_exact_integer_averaging() -> None:
    """640x480 → 320x240 is the exact 2x2 mean (integers, the same on any CPU), and a frame
    gives the same model input as its 2x box average (a 320x240 low-res stream)."""
    rng = np.random.default_rng(3)
    frame = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    assert np.array_equal(resize_rgb(frame, 240, 320, "area_linear"), box2(frame))
    for image in [frame, *(np.asarray(Image.fromarray(p).resize((640, 480))) for p in photos(99))]:
        full = resize_rgb(image, 224, 224, "area_linear")
        assert full.shape == (224, 224, 3) and full.dtype == np.uint8
        assert np.array_equal(full, resize_rgb(box2(image), 224, 224, "area_linear"))


@pytest.mark.edge_numpy1
def test_area_linear_sizes_and_fits() -> None:
    rng = np.random.default_rng(4)
    odd = rng.integers(0, 256, (963, 1281, 3), dtype=np.uint8)  # factors 4 and 5 do not divide
    assert resize_rgb(odd, 224, 224, "area_linear").shape == (224, 224, 3)
    small = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    assert resize_rgb(small, 64, 48, "area_linear").shape == (64, 48, 3)  # upscale
    assert np.array_equal(resize_rgb(small, 20, 30, "area_linear"), small)
    gray = rng.integers(0, 256, (480, 640), dtype=np.uint8)
    assert resize_rgb(gray, 224, 224, "area_linear").shape == (224, 224, 3)
    cropped = resize_rgb(odd, 224, 224, "area_linear", fit="center_crop")
    assert cropped.shape == (224, 224, 3)


@pytest.mark.edge_numpy1
def test_area_linear_is_close_to_a_true_area_average() -> None:
    """Antialiased like Pillow's bilinear: near the exact float area mean on real photos."""
    worst = 0.0
    for image in photos(step=40):
        big = np.asarray(Image.fromarray(image).resize((640, 480), Image.Resampling.BICUBIC))
        exact = np.asarray(Image.fromarray(big).resize((224, 224), Image.Resampling.BOX), float)
        ours = resize_rgb(big, 224, 224, "area_linear").astype(float)
        pil = resize_rgb(big, 224, 224, "bilinear").astype(float)
        worst = max(worst, float(np.abs(ours - exact).mean()))
        assert np.abs(ours - exact).mean() < 2.0
        assert np.abs(ours - pil).mean() < 3.0
    assert worst > 0  # a real comparison, not two copies of one thing


@pytest.mark.edge_numpy1
def test_area_antialiased_is_pillow_after_an_exact_box_step() -> None:
    """The box step is area_linear's (exact integers; a frame and its 2x2 box average give the
    same input); the rest is Pillow's antialiased bilinear, so with a box factor of 1 (e.g.
    TrashNet's 384x288 to 224x224) it is exactly the ``bilinear`` of older models."""
    rng = np.random.default_rng(5)
    frame = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    assert np.array_equal(resize_rgb(frame, 240, 320, "area_antialiased"), box2(frame))
    for image in [frame, *(np.asarray(Image.fromarray(p).resize((640, 480))) for p in photos(99))]:
        full = resize_rgb(image, 224, 224, "area_antialiased")
        assert full.shape == (224, 224, 3) and full.dtype == np.uint8
        assert np.array_equal(full, resize_rgb(box2(image), 224, 224, "area_antialiased"))
        assert np.array_equal(full, resize_rgb(box2(image), 224, 224, "bilinear"))
    trashnet_sized = rng.integers(0, 256, (288, 384, 3), dtype=np.uint8)
    for image in [trashnet_sized, *photos(step=60)]:  # the demo photos are 256x192
        for size in ((224, 224), (160, 200), (300, 400)):  # down, and up
            want = resize_rgb(image, *size, "bilinear")
            assert np.array_equal(resize_rgb(image, *size, "area_antialiased"), want)
    odd = rng.integers(0, 256, (963, 1281, 3), dtype=np.uint8)  # factors 4 and 5 crop
    assert resize_rgb(odd, 224, 224, "area_antialiased", fit="center_crop").shape == (224, 224, 3)
    gray = rng.integers(0, 256, (480, 640), dtype=np.uint8)
    assert resize_rgb(gray, 224, 224, "area_antialiased").shape == (224, 224, 3)


@pytest.mark.edge_numpy1
def test_area_antialiased_does_not_alias_where_area_linear_does() -> None:
    """One-pixel stripes (mean 127.5) from 384x288 to 224x224, box factor 1: the linear step
    alone turns them into a strong false pattern; the antialiased step leaves near-flat grey."""
    stripes = np.zeros((288, 384, 3), np.uint8)
    stripes[:, ::2] = 255
    linear = resize_rgb(stripes, 224, 224, "area_linear").astype(float)
    smooth = resize_rgb(stripes, 224, 224, "area_antialiased").astype(float)
    assert linear.std() > 40  # aliasing: a beat pattern of most of the full range
    assert smooth.std() < 0.25 * linear.std() and abs(smooth.mean() - 127.5) < 3


@pytest.mark.edge_numpy1
def test_unknown_method_is_an_image_error() -> None:
    with pytest.raises(ImageError, match="unknown resize method"):
        check_method("lanczos")
    with pytest.raises(ImageError, match="unknown resize method"):
        resize_rgb(np.zeros((10, 10, 3), np.uint8), 4, 4, "lanczos")


def test_missing_opencv_is_one_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without OpenCV: area_linear fails once, naming the package; bilinear still works; the
    edge refuses such a model at load; load_pixels fails before reading any image."""
    from recyclops.cloud.dataset import Dataset
    from recyclops.cloud.pixels import load_pixels
    from recyclops.edge.classifier import Classifier, ModelError

    monkeypatch.setattr(pp, "_cv2", None)
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 now raises ImportError
    with pytest.raises(ImageError, match="opencv-python-headless"):
        check_method("area_linear")
    for method in ("area_linear", "area_antialiased"):
        with pytest.raises(ImageError, match="opencv-python-headless"):
            resize_rgb(np.zeros((48, 64, 3), np.uint8), 8, 8, method)
    assert resize_rgb(np.zeros((48, 64, 3), np.uint8), 8, 8, "bilinear").shape == (8, 8, 3)
    with pytest.raises(ModelError, match="opencv"):
        Classifier(model_copy(tmp_path / "m", "area_linear"), threads=1)
    ds = Dataset(tmp_path / "ds", ["a"], {})  # never read: the method is refused first
    with pytest.raises(ImageError, match="opencv"):
        load_pixels(ds, ["0" * 64], 32, "area_linear", cache=False)


def model_copy(folder: Path, method: str) -> Path:
    """The committed fixture model with its manifest naming ``method`` (the model file, and
    so its hash, is unchanged)."""
    shutil.copytree(FIXTURE, folder)
    data = json.loads((folder / "manifest.json").read_text())
    data["input"]["resize"] = method
    (folder / "manifest.json").write_text(json.dumps(data))
    return folder


def frames_for(image: np.ndarray) -> list[np.ndarray]:
    """The photo as a camera might give it: as stored, a 640x480 frame, an odd-sized crop
    (so the box step crops a remainder and the linear step runs)."""
    h, w = image.shape[:2]
    big = np.asarray(Image.fromarray(image).resize((640, 480), Image.Resampling.BICUBIC))
    return [image, big, np.ascontiguousarray(image[3 : h - 2, 5 : w - 1])]


def scorer_agreement(folder: Path, frames: Iterable[np.ndarray]) -> tuple[int, int, float, int]:
    """The edge Classifier (its own quantisation path) against the cloud's TfliteModel fed
    preprocess_for's pixels: (same answer, frames, largest probability difference, distinct
    answers). Also used by tests/benchmarks/bench_edge.py on its int8 MobileNetV2."""
    from recyclops.cloud.convert import TfliteModel
    from recyclops.edge.classifier import Classifier

    clf = Classifier(folder, threads=2)
    scorer = TfliteModel(folder / "model.tflite", threads=2)
    same = total = 0
    worst, labels = 0.0, set()
    for frame in frames:
        edge = clf.classify(frame)
        pixels = preprocess_for(frame, clf.manifest.input)
        assert pixels.shape == clf.manifest.input.shape
        other = scorer.predict(pixels[None])[0]
        same += edge.label == clf.categories[int(np.argmax(other))]
        total += 1
        worst = max(worst, float(np.abs(edge.probs - other).max()))
        labels.add(edge.label)
    return same, total, worst, len(labels)


@pytest.mark.slow  # two models on 1800+ frames: 8-12 s of CPU per method
@pytest.mark.parametrize("method", ["bilinear", "area_linear", "area_antialiased"])
def test_edge_and_an_independent_scorer_agree_on_real_photos(tmp_path: Path, method: str) -> None:
    """Every demo photo, three frame sizes: the edge Classifier and the cloud's TfliteModel
    fed preprocess_for's pixels give the same answer."""
    folder = model_copy(tmp_path / method, method)
    frames = (f for image in photos() for f in frames_for(image))
    same, total, worst, labels = scorer_agreement(folder, frames)
    assert same == total == 3 * len(PHOTOS) >= 1800
    assert worst < 1e-5, worst
    assert labels >= 2  # the photos are not all one answer: the check has teeth


def resize_accuracy(quick: bool = False) -> list[list[Any]]:
    """Does area_linear cost accuracy? Frozen ImageNet MobileNetV2 (224 px) features of every
    photo by each method; a logistic head trained on one method's features and scored with
    each, 5-fold stratified cross-validation over the same images and folds. Rows: images,
    n, trained with, scored with, top-1 %, images gained/lost against bilinear/bilinear."""
    import cv2
    import keras

    from recyclops.cloud import weights

    base = keras.applications.MobileNetV2(
        input_shape=(224, 224, 3), include_top=False, weights=None
    )
    found = weights.locate()
    assert found is not None, "no MobileNetV2 ImageNet weights (make weights)"
    weights.load_into(base, found.path)
    sets = {"demo sample, as stored (256x192)": PHOTOS}
    if TRASHNET.is_dir():
        files = sorted(TRASHNET.glob("*/*.jpg"))[:: 4 if quick else 1]
        sets["TrashNet, as stored (384x288)"] = files
        sets["TrashNet as 640x480 camera frames (bicubic up)"] = files
    methods = ("bilinear", "area_linear")
    rows: list[list[Any]] = []
    for name, files in sets.items():
        images = [load_rgb(p) for p in files]
        if "640x480" in name:
            images = [cv2.resize(i, (640, 480), interpolation=cv2.INTER_CUBIC) for i in images]
        cats = sorted({p.parent.name for p in files})
        y = np.array([cats.index(p.parent.name) for p in files])
        feats = {}
        for m in methods:
            x = np.stack([resize_rgb(i, 224, 224, m) for i in images]).astype(np.float32)
            feats[m] = base.predict(x / 127.5 - 1, batch_size=32, verbose=0).mean((1, 2))
        fold = np.empty(len(y), int)
        for c in range(len(cats)):  # stratified: every class spread over the 5 folds
            fold[y == c] = np.arange(int((y == c).sum())) % 5
        pred = {(a, b): np.empty(len(y), int) for a in methods for b in methods}
        for k in range(5):
            tr, te = fold != k, fold == k
            for a in methods:
                mean, std = feats[a][tr].mean(0), feats[a][tr].std(0) + 1e-6
                w = logistic((feats[a][tr] - mean) / std, y[tr], len(cats))
                for b in methods:
                    x = np.c_[(feats[b][te] - mean) / std, np.ones(int(te.sum()))]
                    pred[a, b][te] = np.argmax(x @ w, 1)
        ref = pred["bilinear", "bilinear"] == y
        for (a, b), p in pred.items():
            ok = p == y
            changed = f"+{int((ok & ~ref).sum())} / -{int((~ok & ref).sum())}"
            rows.append([name, len(y), a, b, round(100 * float(ok.mean()), 2), changed])
    return rows


def resize_accuracy_report(quick: bool) -> tuple[dict[str, Any], dict[str, float]]:
    """resize_accuracy as a benchmark table, and per image set the new model (area_linear
    both ways) minus the old (bilinear both ways) in points."""
    rows = resize_accuracy(quick)
    acc = {(r[0], r[2], r[3]): r[4] for r in rows}
    figures = {
        f"accuracy_points_area_linear_minus_bilinear, {name}": round(
            acc[name, "area_linear", "area_linear"] - acc[name, "bilinear", "bilinear"], 2
        )
        for name in dict.fromkeys(r[0] for r in rows)
    }
    table = {
        "caption": "Resize method and accuracy: frozen ImageNet MobileNetV2 features, logistic "
        "head, 5-fold stratified cross-validation (same images, same folds)",
        "headers": [
            *("images", "n", "head trained on", "scored with", "top-1 %"),
            "images gained / lost vs bilinear/bilinear",
        ],
        "rows": rows,
    }
    return table, figures


def logistic(x: np.ndarray, y: np.ndarray, classes: int, steps: int = 400) -> np.ndarray:
    """Multinomial logistic regression (L2 1e-3), full-batch gradient descent: deterministic."""
    x = np.c_[x, np.ones(len(x))]
    w = np.zeros((x.shape[1], classes))
    onehot = np.eye(classes)[y]
    for _ in range(steps):
        z = x @ w
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        w -= 0.5 * (x.T @ (p - onehot) / len(x) + 1e-3 * w)
    return w


@pytest.mark.slow
def test_area_linear_costs_no_accuracy() -> None:
    """A head trained and served with area_linear is not worse than one trained and served
    with bilinear beyond noise (paired on the same images: lost - gained within 2 sigma)."""
    rows = resize_accuracy(quick=True)
    for row in rows:
        if row[2] == row[3] == "area_linear":
            gained, lost = (int(v) for v in row[5].replace("+", "").split(" / -"))
            assert lost - gained <= 2 * math.sqrt(gained + lost) + 1, row
