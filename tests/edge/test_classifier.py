"""The classifier on the committed fixture model (uint8 in, int8 inside, float32 probabilities
out, like production models), without TensorFlow."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from edge_helpers import BLUE, DATA, GREEN, RED

from recyclops.edge.classifier import Classifier, ModelError, input_table
from recyclops.edge.interpreter import NoInterpreterError, interpreter_class
from recyclops.shared.manifest import InputSpec, parse_manifest

pytestmark = pytest.mark.edge_numpy1


def frame(colour: tuple[int, int, int]) -> np.ndarray:
    return np.full((60, 80, 3), colour, np.uint8)


def test_fixture_model_answers_by_colour() -> None:
    clf = Classifier(DATA, threads=1)
    assert clf.version == "fixture-1"
    for colour, label in ((RED, "cardboard"), (GREEN, "glass"), (BLUE, "metal")):
        pred = clf.classify(frame(colour))
        assert pred.label == label
        assert 0.5 < pred.score <= 1.0
        assert pred.probs.shape == (6,)
        assert abs(float(pred.probs.sum()) - 1.0) < 0.05


def test_red_and_blue_are_not_swapped() -> None:
    """RGB order end to end: a red frame must not come out as the blue answer."""
    clf = Classifier(DATA, threads=1)
    assert clf.classify(frame(RED)).label != clf.classify(frame(BLUE)).label


def test_input_table_quantises_like_the_manifest_says() -> None:
    table = input_table(InputSpec(height=8, width=8, dtype="int8", scale=1.0, zero_point=-128))
    assert table is not None and table.dtype == np.int8
    assert table[0] == -128 and table[255] == 127 and table[128] == 0
    half = input_table(InputSpec(height=8, width=8, dtype="int8", scale=2.0, zero_point=0))
    assert half is not None and half[255] == 127 and half[100] == 50
    assert input_table(InputSpec(height=8, width=8, dtype="uint8")) is None


def test_prepared_tensor_has_the_models_dtype_and_shape() -> None:
    clf = Classifier(DATA, threads=1)
    tensor = clf.prepare(np.zeros((480, 640, 3), np.uint8))
    assert tensor.shape == (1, 32, 32, 3) and tensor.dtype == np.uint8
    assert int(tensor.max()) == 0  # raw pixels: scale 1, zero point 0
    assert clf._out["dtype"] == np.float32  # probabilities, nothing to dequantise


def _lying_manifest(tmp_path: Path, **changes: object) -> Path:
    data = json.loads((DATA / "manifest.json").read_text())
    data["input"].update(changes)
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "model.tflite").write_bytes((DATA / "model.tflite").read_bytes())
    (folder / "manifest.json").write_text(json.dumps(data))
    return folder


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"height": 64, "width": 64}, "input shape"),
        ({"dtype": "int8"}, "input dtype"),
        ({"zero_point": 5}, "quantisation"),
    ],
)
def test_manifest_that_lies_about_the_input_is_refused(
    tmp_path: Path, changes: dict, message: str
) -> None:
    folder = _lying_manifest(tmp_path, **changes)
    with pytest.raises(ModelError, match=message):
        Classifier(folder, threads=1)


def test_categories_must_match_the_configuration() -> None:
    manifest = parse_manifest((DATA / "manifest.json").read_bytes())
    with pytest.raises(ModelError, match="categories"):
        Classifier(DATA, manifest, threads=1, categories=["glass", "paper"])


def test_unknown_backend_is_a_clear_error() -> None:
    with pytest.raises(NoInterpreterError, match="unknown"):
        interpreter_class("coreml")


def test_edge_never_imports_tensorflow() -> None:
    """Importing every edge module and running --help must not pull TensorFlow in."""
    code = (
        "import sys, importlib\n"
        "for m in ['cli','daemon','cameras','classifier','keypad','liveview','models','updater',"
        "'uploader','spool','outputs','telemetry','notify','state','gathering','smoothing',"
        "'guard','housekeeping','frameloop','modelslot','events','keys','worker',"
        "'quality','qualityreport']:\n"
        "    importlib.import_module('recyclops.edge.' + m)\n"
        "from recyclops.edge.classifier import Classifier\n"
        f"Classifier({str(DATA)!r}, threads=1)\n"
        "from recyclops.app.cli import main\n"
        "try:\n    main(['edge', 'run', '--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = ('tensorflow', 'keras', 'picamera2')\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in heavy]\n"
        "print('HEAVY', bad)\n"
        "assert not bad, bad\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "HEAVY []" in out.stdout


def test_fast_int8_path_equals_the_table() -> None:
    """The int8 input (scale 1, zero point -128) is fed with one XOR: the same as the table."""
    table = input_table(InputSpec(height=8, width=8, dtype="int8", scale=1.0, zero_point=-128))
    assert table is not None
    pixels = np.random.default_rng(3).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    assert np.array_equal((pixels ^ np.uint8(128)).view(np.int8), np.take(table, pixels))
    clf = Classifier(DATA, threads=1)
    assert not clf._xor and clf._table is None  # the fixture's uint8 pixels go in as they are


@pytest.mark.slow  # imports TensorFlow in a subprocess: ~20 s of CPU
def test_fallback_chain_reaches_tensorflow_only_when_nothing_lighter_exists() -> None:
    """With ai-edge-litert hidden: TensorFlow's interpreter if installed, else a clear error."""
    code = (
        "import sys\n"
        "sys.modules['ai_edge_litert'] = None\n"
        "sys.modules['ai_edge_litert.interpreter'] = None\n"
        "from recyclops.edge.interpreter import NoInterpreterError, interpreter_class\n"
        "try:\n"
        "    print('BACKEND', interpreter_class('auto')[0])\n"
        "except NoInterpreterError as exc:\n"
        "    print('NONE', exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    try:
        import tensorflow  # noqa: F401

        has_tf = True
    except ImportError:
        has_tf = False
    if has_tf:
        assert "BACKEND tensorflow" in out.stdout
    else:
        assert "NONE" in out.stdout and "pip install ai-edge-litert" in out.stdout
    first = subprocess.run(
        [
            sys.executable,
            "-c",
            "from recyclops.edge.interpreter import interpreter_class as f;"
            "import sys; print(f('auto')[0], 'tensorflow' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert first.stdout.split() == ["litert", "False"]  # the light one first, TF never loaded


@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated")
def test_tensorflow_fallback_answers_like_litert() -> None:
    pytest.importorskip("tensorflow")
    litert = Classifier(DATA, threads=1, backend="litert")
    tf = Classifier(DATA, threads=1, backend="tensorflow")
    assert tf.backend == "tensorflow"
    for colour in (RED, GREEN, BLUE):
        a, b = litert.classify(frame(colour)), tf.classify(frame(colour))
        assert a.label == b.label and np.allclose(a.probs, b.probs, atol=0.01)
