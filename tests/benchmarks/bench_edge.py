"""Edge benchmarks: per-frame time of the edge path against the original's, daemon memory,
and model update latency (MQTT and polling).

    .venv/bin/python tests/benchmarks/bench_edge.py [--quick] [--json OUT.json] [--model-dir RUN]

The edge path: camera frame (640x480 RGB) → preprocess_for (the shared contract) → int8
lookup → LiteRT invoke → smoothing. The original's path: cv2.resize, divide by 255, Keras
``model.predict`` of the float model. Both run on the same MobileNetV2 (ImageNet weights from
../shared/weights when present, random otherwise: timing is what matters) in this one run.
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "edge"))
SHARED = ROOT.parent / "shared"  # the team's data beside the repository (not the package)
WEIGHTS = SHARED / "weights" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
TRASHNET = SHARED / "datasets" / "trashnet"
CATEGORIES = ["cardboard", "glass", "metal", "paper", "plastic", "trash"]
SIZE = 224


def sample_images(count: int) -> list[np.ndarray]:
    """Real TrashNet frames when ../shared has them, otherwise noise (same sizes)."""
    from recyclops.shared.preprocess import load_rgb

    files = sorted(TRASHNET.glob("*/*.jpg"))
    files = files[:: max(1, len(files) // count)]
    if files:
        return [load_rgb(p) for p in files[:count]]
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (384, 512, 3), dtype=np.uint8) for _ in range(count)]


def build_models(out: Path, quick: bool) -> tuple[Any, Path, Path, str]:
    """A MobileNetV2 classifier (Rescaling inside), its int8 and float TFLite files."""
    import keras
    import tensorflow as tf

    cache = Path.home() / ".keras" / "models"
    weights = "random"
    if WEIGHTS.exists():
        cache.mkdir(parents=True, exist_ok=True)
        if not (cache / WEIGHTS.name).exists():
            shutil.copy(WEIGHTS, cache / WEIGHTS.name)
        weights = "imagenet"
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    base = keras.applications.MobileNetV2(
        input_shape=(SIZE, SIZE, 3),
        include_top=False,
        weights="imagenet" if weights == "imagenet" else None,
    )
    x = keras.layers.GlobalAveragePooling2D()(base(x))
    outputs = keras.layers.Dense(len(CATEGORIES), activation="softmax")(x)
    edge_model = keras.Model(inputs, outputs)
    # The original fed x/255 to a model without Rescaling: same network, float input in [0, 1].
    orig_in = keras.Input((SIZE, SIZE, 3))
    orig_model = keras.Model(
        orig_in, edge_model.layers[-1](edge_model.layers[-2](base(orig_in * 2 - 1)))
    )

    int8_path = out / "int8" / "model.tflite"
    float_path = out / "float" / "model.tflite"
    if int8_path.exists() and float_path.exists():  # --keep: converted by an earlier run
        return orig_model, int8_path, float_path, weights
    from recyclops.shared.preprocess import preprocess

    reps = [
        preprocess(img, SIZE, SIZE).astype(np.float32)[None]
        for img in sample_images(16 if quick else 64)
    ]

    def representative():  # type: ignore[no-untyped-def]
        for r in reps:
            yield [r]

    conv = tf.lite.TFLiteConverter.from_keras_model(edge_model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    int8_path.parent.mkdir(parents=True, exist_ok=True)
    int8_path.write_bytes(conv.convert())
    float_path.parent.mkdir(parents=True, exist_ok=True)
    float_path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(edge_model).convert())
    return orig_model, int8_path, float_path, weights


def write_manifest(folder: Path, version: str, dtype: str) -> bytes:
    from ai_edge_litert.interpreter import Interpreter

    from recyclops.shared.manifest import InputSpec, ModelManifest, file_entry

    detail = Interpreter(model_path=str(folder / "model.tflite")).get_input_details()[0]
    scale, zero = detail["quantization"]
    spec = InputSpec(
        height=SIZE,
        width=SIZE,
        dtype=dtype,
        scale=float(scale) if dtype != "float32" else None,
        zero_point=int(zero) if dtype != "float32" else None,
    )
    manifest = ModelManifest(
        version=version,
        created=datetime.now(UTC),
        categories=CATEGORIES,
        input=spec,
        files=[file_entry(folder / "model.tflite")],
    )
    (folder / "manifest.json").write_bytes(manifest.to_json())
    return manifest.to_json()


def timed(fn: Any, arg: Any) -> float:
    start = time.perf_counter()
    fn(arg)
    return (time.perf_counter() - start) * 1000


def bench_frame_path(
    orig_model: Any, int8_dir: Path, float_dir: Path, quick: bool
) -> dict[str, Any]:
    """All paths interleaved frame by frame, so a busy machine slows them alike."""
    import cv2

    from recyclops.edge.classifier import Classifier
    from recyclops.edge.smoothing import Smoother

    images = sample_images(8)
    sizes = {
        "640x480": [cv2.resize(i, (640, 480)) for i in images],
        "320x240 lores": [cv2.resize(i, (320, 240)) for i in images],
    }
    repeats = 30 if quick else 150
    cases: dict[str, tuple[Any, list[Any], Any, list[Any], str]] = {}
    for name, folder, size in (
        ("int8 LiteRT", int8_dir, "640x480"),
        ("int8 LiteRT", int8_dir, "320x240 lores"),
        ("float TFLite", float_dir, "640x480"),
    ):
        clf = Classifier(folder, threads=2)
        smoother = Smoother(CATEGORIES, "mean", 5, 0.5)
        frames = sizes[size]
        cases[f"{name}, {size} frame"] = (
            lambda f, c=clf, s=smoother: s.add(c.classify(f).probs),
            frames,
            clf.run,
            [clf.prepare(f) for f in frames],
            clf.backend,
        )

    def original(frame: np.ndarray) -> Any:
        x = cv2.resize(frame, (SIZE, SIZE)).astype(np.float32) / 255.0
        return orig_model.predict(x[None], verbose=0)

    whole: dict[str, list[float]] = {k: [] for k in cases}
    raw: dict[str, list[float]] = {k: [] for k in cases}
    orig: list[float] = []
    for i in range(repeats + 5):
        for key, (path_fn, frames, run_fn, tensors, _) in cases.items():
            w, r = timed(path_fn, frames[i % 8]), timed(run_fn, tensors[i % 8])
            if i >= 5:  # the first rounds warm up
                whole[key].append(w)
                raw[key].append(r)
        if i % 3 == 0:  # Keras predict is slow: every third round is plenty
            t = timed(original, sizes["640x480"][i % 8])
            if i >= 5:
                orig.append(t)
    out: dict[str, Any] = {
        key: {
            "path": statistics.median(whole[key]),
            "raw": statistics.median(raw[key]),
            "backend": case[4],
        }
        for key, case in cases.items()
    }
    out["original Keras predict, 640x480 frame"] = {
        "path": statistics.median(orig),
        "raw": None,
        "backend": "keras",
    }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    parser.add_argument("--json", metavar="OUT", help="write the results as JSON")
    parser.add_argument(
        "--model-dir", metavar="RUN", help="use this run's int8 model.tflite + manifest.json"
    )
    parser.add_argument(
        "--python", default=None, help="interpreter for the daemon (default: .venv-edge if built)"
    )
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (logs, models)")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-edge-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        orig_model, int8_path, float_path, weights = build_models(work / "models", args.quick)
        write_manifest(int8_path.parent, "bench-int8", "int8")
        write_manifest(float_path.parent, "bench-float", "float32")
        if args.model_dir:
            int8_path = Path(args.model_dir) / "model.tflite"
        path = bench_frame_path(orig_model, int8_path.parent, float_path.parent, args.quick)
        edge_python = ROOT / ".venv-edge" / "bin" / "python"
        python = args.python or (str(edge_python) if edge_python.exists() else sys.executable)
        from daemon_bench import bench_daemon

        daemon = bench_daemon(python, int8_path.parent, work, args.quick)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    orig = path["original Keras predict, 640x480 frame"]["path"]
    rows = []
    for name, r in path.items():
        overhead = None if r["raw"] is None else r["path"] - r["raw"]
        rows.append(
            [
                name,
                r["backend"],
                round(r["path"], 2),
                None if r["raw"] is None else round(r["raw"], 2),
                None if overhead is None else round(overhead, 2),
                round(orig / r["path"], 1),
            ]
        )
    int8 = path["int8 LiteRT, 640x480 frame"]
    lores = path["int8 LiteRT, 320x240 lores frame"]
    figures = {
        "edge_int8_path_ms": round(int8["path"], 2),
        "edge_int8_raw_inference_ms": round(int8["raw"], 2),
        "edge_path_overhead_ms": round(int8["path"] - int8["raw"], 2),
        "edge_overhead_fraction_of_inference": round((int8["path"] - int8["raw"]) / int8["raw"], 3),
        "edge_int8_lores_path_ms": round(lores["path"], 2),
        "edge_lores_overhead_fraction_of_inference": round(
            (lores["path"] - lores["raw"]) / lores["raw"], 3
        ),
        "original_keras_path_ms": round(orig, 2),
        "speedup_int8_vs_original": round(orig / int8["path"], 1),
        "daemon_rss_mb": round(daemon["rss_mb"], 1),
        "daemon_rss_mb_after_updates": round(daemon["rss_mb_after_updates"], 1),
        "update_latency_mqtt_s_median": round(statistics.median(daemon["mqtt"]), 2),
        "update_latency_poll_s_median": round(statistics.median(daemon["poll"]), 2),
    }
    result = {
        "title": "Edge: per-frame time, daemon memory, model update latency",
        "tables": [
            {
                "caption": f"Per frame (RGB frame → smoothed answer, interleaved), median ms; "
                f"MobileNetV2 {SIZE}px, {weights} weights, 2 threads",
                "headers": [
                    "path",
                    "backend",
                    "whole path ms",
                    "raw inference ms",
                    "overhead ms",
                    "× faster than original",
                ],
                "rows": rows,
            },
            {
                "caption": "Daemon (recyclops edge run, replay camera 15 fps, live view on, "
                "int8 MobileNetV2)",
                "headers": ["measure", "value", "target"],
                "rows": [
                    ["RSS while running (MB)", round(daemon["rss_mb"], 1), "< 150"],
                    ["RSS after updates (MB)", round(daemon["rss_mb_after_updates"], 1), "< 150"],
                    [
                        "update publish→serving, MQTT (s, median)",
                        figures["update_latency_mqtt_s_median"],
                        "< 5",
                    ],
                    [
                        f"update publish→serving, polling every {daemon['poll_seconds']:.0f} s "
                        "(s, median)",
                        figures["update_latency_poll_s_median"],
                        "≤ poll interval + install",
                    ],
                ],
            },
        ],
        "figures": figures,
        "notes": [
            f"machine: {platform.machine()}, {os.cpu_count()} CPUs, "
            f"Python {platform.python_version()}; daemon interpreter {python}",
            "the original path: cv2.resize + /255 + Keras model.predict on one frame "
            "(what the original did per frame)",
            f"update rounds (s): MQTT {[round(x, 2) for x in daemon['mqtt']]}, "
            f"polling {[round(x, 2) for x in daemon['poll']]}",
        ],
        "plots": [],
    }
    print(f"# {result['title']}\n")
    for table in result["tables"]:
        print(f"{table['caption']}\n")
        print("| " + " | ".join(table["headers"]) + " |")
        print("|" + "---|" * len(table["headers"]))
        for row in table["rows"]:
            print("| " + " | ".join("" if v is None else str(v) for v in row) + " |")
        print()
    for note in result["notes"]:
        print(f"- {note}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
