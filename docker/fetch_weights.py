"""Put the MobileNetV2 ImageNet weights into the Keras cache at image build time.

Jobs then never download at run time (`weights="imagenet"` finds the file in
$KERAS_HOME/models). The file comes from the build context (docker/weights/, optional,
ignored by git) when present, else from the Keras download address; either way its
SHA-256 must match. WEIGHTS=none skips this (the jobs then need --weights none or a path).

    python3 docker/fetch_weights.py SOURCE_DIR KERAS_HOME
"""

import hashlib
import os
import shutil
import sys
import urllib.request
from pathlib import Path

NAME = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
URL = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/" + NAME
SHA256 = "71e4c4ec4aa24c9c951b9265d6de42e1336dcf614c2214fa6a989208615e232c"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main(source: str, keras_home: str) -> int:
    if os.environ.get("WEIGHTS", "imagenet") == "none":
        print("fetch_weights: WEIGHTS=none, no ImageNet weights in this image")
        return 0
    target = Path(keras_home) / "models" / NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    local = Path(source) / NAME
    tmp = target.with_suffix(".part")
    if local.is_file():
        shutil.copyfile(local, tmp)
        origin = f"the build context ({local.name})"
    else:
        try:
            with urllib.request.urlopen(URL, timeout=120) as resp, open(tmp, "wb") as out:
                shutil.copyfileobj(resp, out)
        except OSError as exc:
            print(
                f"fetch_weights: cannot download {URL}: {exc}\n"
                f"  put {NAME} in docker/weights/ or build with --build-arg WEIGHTS=none",
                file=sys.stderr,
            )
            return 1
        origin = URL
    got = sha256(tmp)
    if got != SHA256:
        tmp.unlink()
        print(f"fetch_weights: {origin}: SHA-256 {got}, expected {SHA256}", file=sys.stderr)
        return 1
    os.replace(tmp, target)
    print(f"fetch_weights: {target} from {origin}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
