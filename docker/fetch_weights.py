"""Check, at image build time, the MobileNetV2 ImageNet weights the job image trains with.

The weights ship inside the recyclops package (``cloud/pretrained/``, copied from the
repository with the code), so the build needs no network for them and jobs never download.
A file put in ``docker/weights/`` (for example the official Keras download) is checked and
installed into the Keras cache instead, where it takes precedence. Only when neither exists
(a package built without them) is the official file downloaded.

Every file is checked by content (``recyclops.cloud.weights``): every layer of MobileNetV2
must find weights of its exact shapes, all finite. Hashes cannot be the check: the shipped
file and the official download are both right and differ in bytes. WEIGHTS=none skips this.

    python3 docker/fetch_weights.py SOURCE_DIR KERAS_HOME
"""

import os
import shutil
import sys
import urllib.request
from pathlib import Path
from types import ModuleType

NAME = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
URL = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/" + NAME


def _weights() -> ModuleType:
    """recyclops.cloud.weights, with TensorFlow's start-up chatter off (a build log)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from recyclops.cloud import weights

    return weights


def _download(target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with urllib.request.urlopen(URL, timeout=120) as resp, open(target, "wb") as out:
        shutil.copyfileobj(resp, out)


def main(source: str, keras_home: str) -> int:
    if os.environ.get("WEIGHTS", "imagenet") == "none":
        print("fetch_weights: WEIGHTS=none, no ImageNet weights checked or added")
        return 0
    weights = _weights()
    local = Path(source) / NAME
    try:
        if local.is_file():
            target = weights.install(local, Path(keras_home))
            print(f"fetch_weights: {target} from the build context: {weights.describe(target)}")
            return 0
        shipped = weights.shipped()
        if shipped is not None:
            print(f"fetch_weights: shipped in the package: {weights.verify_file(shipped)}")
            return 0
        part = Path(keras_home) / "models" / f".{NAME}.download"
        try:
            _download(part)
            target = weights.install(part, Path(keras_home))
        finally:
            part.unlink(missing_ok=True)
        print(f"fetch_weights: {target} from {URL}: {weights.describe(target)}")
        return 0
    except OSError as exc:
        print(
            f"fetch_weights: cannot download {URL}: {exc}\n"
            f"  put {NAME} in docker/weights/ or build with --build-arg WEIGHTS=none",
            file=sys.stderr,
        )
        return 1
    except weights.WeightsError as exc:
        print(f"fetch_weights: not MobileNetV2 ImageNet weights: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
