"""The resize half of tests/benchmarks/bench_edge.py: resize candidates from a 640x480 frame
timed side by side with int8 inference, and how far each contract method's pixels are from
Pillow's antialiased bilinear (what every model before ``area_linear`` was trained on)."""

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "shared"))
sys.path.insert(0, str(ROOT / "tests"))
from support.benchutil import r2, timed  # noqa: E402
from test_preprocess_methods import box2  # noqa: E402  (a 640x480 frame → its lores stream)

#: the contract methods compared (Pillow's ``bilinear`` is the reference)
CONTRACT = ("bilinear", "area_linear", "area_antialiased")
#: (height, width) targets: the square model input and the 4:3 one (an exact factor of 640x480)
TARGETS = ((224, 224), (240, 320))


def bench_resize(
    int8_dir: Path, frames: list[np.ndarray], quick: bool
) -> dict[str, tuple[float, float]]:
    """Resize candidates from a 640x480 frame interleaved with raw int8 inference: median wall
    ms and median process CPU ms. Inference also on 1 thread: 2 threads wait on each other
    when other jobs hold the cores (flattering a resize), and their CPU time counts both."""
    import cv2
    from PIL import Image

    from recyclops.edge.classifier import Classifier
    from recyclops.shared.preprocess import resize_rgb

    clf, clf1 = Classifier(int8_dir, threads=2), Classifier(int8_dir, threads=1)
    small = [box2(f) for f in frames]
    tensor = clf.prepare(frames[0])

    def pil(method: Image.Resampling) -> Callable[[np.ndarray], Any]:
        return lambda f: np.asarray(Image.fromarray(f).resize((224, 224), method))

    def cv(flag: int, size: tuple[int, int] = (224, 224)) -> Callable[[np.ndarray], Any]:
        return lambda f: cv2.resize(f, size, interpolation=flag)

    def contract(method: str, h: int = 224, w: int = 224) -> Callable[[np.ndarray], Any]:
        return lambda f: resize_rgb(f, h, w, method)

    cases: dict[str, tuple[Callable[[np.ndarray], Any], bool]] = {}
    for h, w in TARGETS:
        for method in CONTRACT:
            label = "Pillow, antialiased" if method == "bilinear" else ""
            name = f"contract {method}{f' ({label})' if label else ''} → {h}x{w}"
            cases[name] = (contract(method, h, w), False)
    for method in ("area_linear", "area_antialiased"):
        cases[f"contract {method}, 320x240 lores → 224x224"] = (contract(method), True)
    cases |= {
        "Pillow box (area) → 224x224": (pil(Image.Resampling.BOX), False),
        "OpenCV INTER_AREA → 224x224 (fractional factor)": (cv(cv2.INTER_AREA), False),
        "OpenCV INTER_LINEAR → 224x224 (no antialiasing; the original's)": (
            cv(cv2.INTER_LINEAR),
            False,
        ),
        "OpenCV INTER_AREA → 240x320 (exact factor 2)": (cv(cv2.INTER_AREA, (320, 240)), False),
        "int8 inference, 2 threads": (clf.run, False),
        "int8 inference, 1 thread": (clf1.run, False),
    }
    times: dict[str, list[float]] = {k: [] for k in cases}
    cpu: dict[str, list[float]] = {k: [] for k in cases}  # CPU time: what other jobs cannot bend
    for i in range((60 if quick else 300) + 10):
        for key, (fn, lores) in cases.items():
            arg = tensor if key.startswith("int8") else (small if lores else frames)[i % 8]
            t, c = timed(fn, arg), timed(fn, arg, time.process_time)
            if i >= 10:
                times[key].append(t)
                cpu[key].append(c)
    return {k: (statistics.median(times[k]), statistics.median(cpu[k])) for k in cases}


def resize_table(resize: dict[str, tuple[float, float]]) -> dict[str, Any]:
    """The timing as a report table: each candidate against 2-thread inference, against
    Pillow's resize to the same size, and in CPU time against 1-thread inference."""
    infer = resize["int8 inference, 2 threads"][0]
    cpu1 = resize["int8 inference, 1 thread"][1]
    rows = []
    for key, (v, c) in resize.items():
        target = "240x320" if key.endswith("240x320") or "→ 240x320 " in key else "224x224"
        pil = resize[f"contract bilinear (Pillow, antialiased) → {target}"][0]
        rows.append([key, r2(v), r2(v / infer), r2(v / pil), r2(c), r2(c / cpu1)])
    return {
        "caption": "Resize from a 640x480 RGB frame (H×W targets), interleaved with int8 "
        "inference, ms",
        "headers": [
            *("resize", "median ms", "× int8 inference (2 threads)", "× Pillow to the same size"),
            *("CPU ms", "CPU × 1-thread int8 inference CPU"),
        ],
        "rows": rows,
    }


def fidelity(images: list[np.ndarray]) -> dict[str, Any]:
    """Mean and largest absolute pixel difference of each contract method from Pillow's
    antialiased bilinear, per source size and target; and a fine-stripe pattern's residual
    contrast (aliasing: the stripes average to flat grey, any pattern left is false)."""
    import cv2

    from recyclops.shared.preprocess import resize_rgb

    sources = {
        "TrashNet as stored (384x288)": images,
        "TrashNet as 640x480 frames (bicubic up)": [
            cv2.resize(i, (640, 480), interpolation=cv2.INTER_CUBIC) for i in images
        ],
    }
    rows = []
    for name, imgs in sources.items():
        for h, w in TARGETS:
            ref = [resize_rgb(i, h, w, "bilinear").astype(np.int16) for i in imgs]
            for method in CONTRACT[1:]:
                got = [resize_rgb(i, h, w, method) for i in imgs]
                diff = np.concatenate(
                    [np.abs(g - r).ravel() for g, r in zip(got, ref, strict=True)]
                )
                same = sum(np.array_equal(g, r) for g, r in zip(got, ref, strict=True))
                rows.append([name, f"{h}x{w}", method, r2(float(diff.mean())), int(diff.max())])
                rows[-1].append(f"{same}/{len(imgs)}")
    stripes = np.zeros((288, 384, 3), np.uint8)
    stripes[:, ::2] = 255
    for method in CONTRACT:
        out = resize_rgb(stripes, 224, 224, method).astype(float)
        rows.append(["1-pixel stripes, 384x288", "224x224", method, "", ""])
        rows[-1].append(f"false contrast (std) {out.std():.1f}")
    return {
        "caption": "Pixels against Pillow's antialiased bilinear (uint8 levels)",
        "headers": [
            *("images", "target H×W", "method", "mean |difference|", "largest"),
            "images identical / stripes",
        ],
        "rows": rows,
    }
