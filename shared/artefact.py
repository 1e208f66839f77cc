"""Check a model folder the way a bin will: load it, check its contract, run its golden set.

Publish calls this on the exact bytes it is about to upload, so a verdict written for a
good model cannot carry a truncated file, random bytes, a float model declared int8, the
wrong shapes or a model that turns NaN on real photos to the fleet; promote and rollback
(cloud or console) call it on the stored files before a channel moves (``verify_stored``).
Shared, without TensorFlow: LiteRT is loaded only when a model is (``tflite``).
"""

import logging
from pathlib import Path

import numpy as np

from . import layout
from .errors import RecyclopsError
from .golden import GoldenSet, verify
from .hashing import sha256_bytes
from .manifest import ModelManifest, parse_manifest
from .preprocess import decode_rgb, preprocess_for
from .store import ObjectStore
from .tflite import TfliteModel

logger = logging.getLogger(__name__)

_INT_DTYPES = ("uint8", "int8")


class ArtefactError(RecyclopsError):
    """The model file does not do what its manifest promises."""


def load_model(path: Path, manifest: ModelManifest) -> TfliteModel:
    try:
        return TfliteModel(path, threads=2)  # NoInterpreterError without LiteRT: not caught
    except (ValueError, RuntimeError, OSError) as exc:
        raise ArtefactError(
            f"model {manifest.version}: {path.name} does not load with LiteRT: {exc}"
        ) from None


def check_contract(model: TfliteModel, manifest: ModelManifest) -> None:
    """Input and output tensors as the manifest says (and as every bin expects)."""
    spec, v = manifest.input, manifest.version
    details = model.interpreter.get_input_details()
    outputs = model.interpreter.get_output_details()
    if len(details) != 1 or len(outputs) != 1:
        raise ArtefactError(f"model {v}: expected one input and one output tensor")
    shape = tuple(int(s) for s in model.input["shape"])
    if shape != (1, *spec.shape):
        raise ArtefactError(f"model {v}: input shape {shape}, manifest says {(1, *spec.shape)}")
    if model.input_dtype != spec.dtype:
        raise ArtefactError(f"model {v}: input is {model.input_dtype}, manifest says {spec.dtype}")
    if spec.dtype in _INT_DTYPES:
        scale, zero = model.input_quant
        if (
            scale is None
            or abs(scale - (spec.scale or 0)) > 1e-6 * max(1.0, scale)
            or (zero != spec.zero_point)
        ):
            raise ArtefactError(
                f"model {v}: input quantisation ({scale}, {zero}) is not the manifest's "
                f"({spec.scale}, {spec.zero_point})"
            )
        kinds = {np.dtype(t["dtype"]).name for t in model.interpreter.get_tensor_details()}
        if not kinds & {"int8"}:
            raise ArtefactError(
                f"model {v}: declared {spec.dtype} but holds no int8 tensors: not a "
                "full-integer model"
            )
    out_shape = tuple(int(s) for s in model.output["shape"])
    if out_shape != (1, len(manifest.categories)):
        raise ArtefactError(
            f"model {v}: output shape {out_shape}, expected (1, {len(manifest.categories)})"
        )
    if np.dtype(model.output["dtype"]) != np.float32:
        raise ArtefactError(
            f"model {v}: output is {np.dtype(model.output['dtype']).name}, expected float32 "
            "probabilities"
        )


def check_golden(model: TfliteModel, manifest: ModelManifest, folder: Path) -> int:
    """Run the golden images; returns how many. ArtefactError when there are none."""
    if manifest.golden is None:
        raise ArtefactError(
            f"model {manifest.version}: carries no golden set; bins refuse it (retrain with "
            "this version of recyclops)"
        )
    golden = GoldenSet.load(folder / manifest.golden.file)
    if golden.probs.shape[1] != len(manifest.categories):
        raise ArtefactError(f"model {manifest.version}: golden outputs have the wrong width")

    def classify(jpeg: bytes) -> np.ndarray:
        pixels = preprocess_for(decode_rgb(jpeg, "golden image"), manifest.input)
        return model.predict(pixels[None])[0]

    verify(golden, classify, manifest.golden.tolerance, f"model {manifest.version}")
    return len(golden)


def check_folder(folder: Path, manifest: ModelManifest, *, require_golden: bool = True) -> str:
    """Everything a bin checks, in the cloud; a one-line description of what was proved."""
    model = load_model(folder / manifest.model_file, manifest)
    check_contract(model, manifest)
    try:
        probs = model.predict(np.zeros((1, *manifest.input.shape), np.uint8))
    except (ValueError, RuntimeError) as exc:
        raise ArtefactError(f"model {manifest.version}: cannot run: {exc}") from None
    if not np.all(np.isfinite(probs)):
        raise ArtefactError(f"model {manifest.version}: non-finite output on a black frame")
    if manifest.golden is None and not require_golden:
        return "loads, contract holds (no golden set)"
    count = check_golden(model, manifest, folder)
    return f"loads, contract holds, {count} golden images reproduced"


def verify_stored(store: ObjectStore, version: str) -> str:
    """Check a stored version the way a bin will (files, contract, golden set, on LiteRT);
    returns its manifest's SHA-256. ``NoInterpreterError`` where LiteRT is not installed."""
    import tempfile

    mkey = layout.manifest_key(version)
    raw = store.get(mkey)
    manifest = parse_manifest(raw, mkey)
    with tempfile.TemporaryDirectory(prefix="recyclops-verify-") as tmp:
        folder = Path(tmp)
        for entry in manifest.files:
            store.get_file(layout.model_file_key(version, entry.name), folder / entry.name)
        manifest.verify_folder(folder)
        check_folder(folder, manifest, require_golden=False)
    return sha256_bytes(raw)
