"""Why int8 inference is (or is not) faster than float here: which ops XNNPACK takes, int8
against float side by side (MobileNetV2, production int8 contract and the older int8-in/out
one, with and without the XNNPACK delegate), one pointwise convolution's throughput, and
the cost of a 240x320 (H×W) input against 224x224.

    .venv/bin/python tests/benchmarks/bench_int8.py [--quick] [--json OUT.json]

Run it on a Pi too: the CPU features it prints (x86 VNNI, ARM dot product) decide whether
int8 kernels can beat float ones at all.
"""

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "benchmarks"))
from bench_edge import WEIGHTS, sample_images  # noqa: E402
from support.benchutil import emit, r2, table  # noqa: E402

#: CPU features that give int8 a wider multiply-accumulate than float (x86, then ARM)
INT8_FEATURES = ("avx512_vnni", "avx_vnni", "avx512bw", "avx2", "asimddp", "i8mm")


def cpu_features() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    words = set(text.split())
    return ", ".join(f for f in INT8_FEATURES if f in words) or "none of " + "/".join(INT8_FEATURES)


def keras_model(h: int, w: int) -> Any:
    """The bench network of bench_edge.py at input (h, w): Rescaling, MobileNetV2, 6 classes."""
    import keras

    cache = Path.home() / ".keras" / "models"
    if WEIGHTS.exists() and not (cache / WEIGHTS.name).exists():
        cache.mkdir(parents=True, exist_ok=True)
        (cache / WEIGHTS.name).write_bytes(WEIGHTS.read_bytes())
    inputs = keras.Input((h, w, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    base = keras.applications.MobileNetV2(
        input_shape=(h, w, 3), include_top=False, weights="imagenet" if WEIGHTS.exists() else None
    )
    x = keras.layers.GlobalAveragePooling2D()(base(x))
    return keras.Model(inputs, keras.layers.Dense(6, activation="softmax")(x))


def build(h: int, w: int, quick: bool, old_contract: bool) -> dict[str, bytes]:
    """float, the production int8 (uint8 in, float32 out, via export_int8) and, if asked, the
    older int8-in/int8-out conversion of the same network."""
    import tensorflow as tf

    from recyclops.cloud import convert
    from recyclops.shared.preprocess import new_model_input, preprocess_for

    model = keras_model(h, w)
    spec = new_model_input(h, w)
    images = np.stack([preprocess_for(i, spec) for i in sample_images(8 if quick else 32)])
    calibration = convert.representative(images, len(images) + 2, 0)
    out = {
        f"float {h}x{w}": convert.to_float_tflite(model),
        f"int8 {h}x{w}": convert.export_int8(model, calibration).data,
    }
    if old_contract:
        c = convert._converter(model)
        c.optimizations = [tf.lite.Optimize.DEFAULT]
        c.representative_dataset = lambda: ([i[None].astype(np.float32)] for i in calibration)
        c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        c.inference_input_type = c.inference_output_type = tf.int8
        out[f"int8 in/out (older contract) {h}x{w}"] = bytes(c.convert())
    return out


def interpreter(data: bytes, threads: int, delegate: bool = True) -> Any:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kind = OpResolverType.AUTO if delegate else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interp = Interpreter(
        model_content=data, num_threads=threads, experimental_op_resolver_type=kind
    )
    interp.allocate_tensors()
    detail = interp.get_input_details()[0]
    interp.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
    interp.invoke()  # the default delegate is applied by now
    return interp


def delegation(data: bytes) -> tuple[int, int, list[str]]:
    """(ops XNNPACK runs, ops in the model, the others by name and dtype): walk back from
    every delegate node's outputs to its inputs; whatever is not reached runs on the
    interpreter's own kernels."""
    interp = interpreter(data, 1)
    ops = interp._get_ops_details()
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    producer = {o: op["index"] for op in ops if op["op_name"] != "DELEGATE" for o in op["outputs"]}
    by_index = {op["index"]: op for op in ops}
    taken: set[int] = set()
    for node in (op for op in ops if op["op_name"] == "DELEGATE"):
        stop, todo = set(node["inputs"]), list(node["outputs"])
        while todo:
            tensor = todo.pop()
            if tensor in stop or tensor not in producer or producer[tensor] in taken:
                continue
            taken.add(producer[tensor])
            todo.extend(i for i in by_index[producer[tensor]]["inputs"] if i >= 0)
    model_ops = [op for op in ops if op["op_name"] != "DELEGATE"]
    rest = [
        f"{op['op_name']} ({np.dtype(tensors[op['outputs'][0]]['dtype']).name} out)"
        for op in model_ops
        if op["index"] not in taken
    ]
    return len(model_ops) - len(rest), len(model_ops), rest


def time_models(models: dict[str, bytes], quick: bool) -> dict[str, tuple[float, float]]:
    """Median wall and CPU ms per invoke, every case interleaved round by round; the
    no-delegate cases (3-6x slower) every third round."""
    cases: dict[str, Any] = {}
    for name, data in models.items():
        for threads in (1, 2):
            cases[f"{name}, {threads} thread{'s' * (threads > 1)}"] = interpreter(data, threads)
        if name.endswith("224x224"):
            cases[f"{name}, 1 thread, no XNNPACK"] = interpreter(data, 1, delegate=False)
    wall: dict[str, list[float]] = {k: [] for k in cases}
    cpu: dict[str, list[float]] = {k: [] for k in cases}
    for i in range((20 if quick else 100) + 3):
        for key, interp in cases.items():
            if "no XNNPACK" in key and i % 3:
                continue
            t, c = time.perf_counter(), time.process_time()
            interp.invoke()
            if i >= 3:
                wall[key].append((time.perf_counter() - t) * 1000)
                cpu[key].append((time.process_time() - c) * 1000)
    return {k: (statistics.median(wall[k]), statistics.median(cpu[k])) for k in cases}


def pointwise(quick: bool) -> list[list[Any]]:
    """One 1x1 convolution, 56x56x256 → 256 (a GEMM of 205 M multiply-adds), float against
    int8 on 1 thread: the kernels' own throughput, without the rest of the network."""
    import keras
    import tensorflow as tf

    inputs = keras.Input((56, 56, 256))
    model = keras.Model(inputs, keras.layers.Conv2D(256, 1)(inputs))
    rng = np.random.default_rng(0)
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    data = {"float": conv.convert()}
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: (
        [rng.normal(size=(1, 56, 56, 256)).astype(np.float32)] for _ in range(4)
    )
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
    data["int8"] = conv.convert()
    interps = {k: interpreter(v, 1) for k, v in data.items()}
    cpu: dict[str, list[float]] = {k: [] for k in interps}
    for _ in range(10 if quick else 40):
        for key, interp in interps.items():
            c = time.process_time()
            interp.invoke()
            cpu[key].append((time.process_time() - c) * 1000)
    macs = 56 * 56 * 256 * 256
    rows = []
    for key in interps:
        ms = statistics.median(cpu[key])
        rows.append([f"{key} 1x1 conv, 1 thread", r2(ms), round(macs / ms / 1e6, 1)])
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--json", metavar="OUT", help="write the results as JSON")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    load_before = os.getloadavg()
    models = build(224, 224, args.quick, old_contract=True)
    models |= build(240, 320, args.quick, old_contract=False)
    ops_rows = []
    for name, data in models.items():
        taken, total, rest = delegation(data)
        ops_rows.append([name, f"{taken}/{total}", ", ".join(rest) or "none"])
    timing = time_models(models, args.quick)
    base = timing["float 224x224, 1 thread"][1]
    rows = [[k, r2(w), r2(c), r2(c / base)] for k, (w, c) in timing.items()]
    int8, flt = (timing[f"{k} 224x224, 1 thread"][1] for k in ("int8", "float"))
    big, big2 = (timing[f"int8 240x320, {t}"][1] for t in ("1 thread", "2 threads"))
    figures = {
        "int8_over_float_cpu_1_thread": r2(int8 / flt),
        "int8_no_xnnpack_over_xnnpack": r2(timing["int8 224x224, 1 thread, no XNNPACK"][1] / int8),
        "int8_240x320_over_224x224_cpu_1_thread": r2(big / int8),
        "int8_240x320_over_224x224_cpu_2_threads": r2(big2 / timing["int8 224x224, 2 threads"][1]),
        "pixels_240x320_over_224x224": r2(240 * 320 / 224 / 224),
    }
    result = {
        "title": "Edge: int8 against float inference, and the 240x320 input",
        "tables": [
            table(
                "Ops run by XNNPACK (LiteRT default delegate)", ["model", "ops", "others"], ops_rows
            ),
            table(
                "Inference per invoke, interleaved, median ms (CPU = process CPU time)",
                ["model, threads", "wall ms", "CPU ms", "CPU × float 224x224 1 thread"],
                rows,
            ),
            table(
                "One pointwise convolution",
                ["case", "CPU ms", "M multiply-adds / ms"],
                pointwise(args.quick),
            ),
        ],
        "figures": figures,
        "notes": [
            f"machine: {platform.machine()}, {os.cpu_count()} CPUs, int8-relevant CPU features: "
            f"{cpu_features()}; load average {load_before[0]:.1f} before, "
            f"{os.getloadavg()[0]:.1f} after",
        ],
    }
    emit(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
