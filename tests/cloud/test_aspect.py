"""A model whose input keeps the camera's 4:3 aspect (``image_width``): trained, converted and
described by its manifest as H×W, and the edge classifier serves it from a 640×480 frame with
the same pixels and the same answers as the cloud's own scoring."""

import io
import tomllib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support.synthetic import shapes

from recyclops.cloud.convert import TfliteModel
from recyclops.cloud.dataset import dataset_from_folders
from recyclops.cloud.pixels import model_input, spec_pixels
from recyclops.cloud.train import train
from recyclops.edge.classifier import Classifier
from recyclops.shared.config import TrainConfig
from recyclops.shared.preprocess import NEW_MODEL_RESIZE, OPENCV_AVAILABLE, decode_rgb

from .helpers import TINY_TOML

CATS = ["red", "green", "blue"]


def test_config_input_is_height_by_width() -> None:
    assert TrainConfig().input_hw == (224, 224)
    config = TrainConfig(image_size=240, image_width=320, resize="area_linear")
    assert config.input_hw == (240, 320)
    spec = model_input(config)
    assert (spec.height, spec.width, spec.resize) == (240, 320, "area_linear")
    assert model_input(TrainConfig()).resize == NEW_MODEL_RESIZE == "area_antialiased"  # unset


@pytest.mark.skipif(not OPENCV_AVAILABLE, reason="area_linear needs OpenCV")
def test_a_4_3_model_is_trained_and_served_as_4_3(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for cat, images in shapes(CATS, per_class=20, seed=3, size=96).items():
        (root / cat).mkdir(parents=True)
        for i, data in enumerate(images):
            # camera-shaped frames: 640x480, so the area step reduces by exactly 10
            img = Image.open(io.BytesIO(data)).resize((640, 480))
            img.save(root / cat / f"{i}.jpg", quality=92)
    ds = dataset_from_folders(root, CATS, cache_dir=tmp_path / "cache")
    tiny = tomllib.loads(TINY_TOML.read_text())["train"]
    config = TrainConfig(**{**tiny, "image_size": 48, "image_width": 64, "resize": "area_linear"})
    result = train(config, ds, tmp_path / "runs")

    spec = result.manifest.input
    assert (spec.height, spec.width, spec.resize) == (48, 64, "area_linear")
    cloud_model = TfliteModel(result.model_path, threads=1)
    shas = sorted(ds.labels)
    px = spec_pixels(ds, shas, spec, cache=False)
    assert px.images.shape == (len(shas), 48, 64, 3)
    cloud = cloud_model.predict(px.images)

    clf = Classifier(result.model_dir, threads=1)
    same_pixels = same_answer = 0
    for i, sha in enumerate(shas):
        rgb = decode_rgb(ds.path(sha).read_bytes(), sha)
        assert rgb.shape == (480, 640, 3)
        same_pixels += np.array_equal(clf.prepare(rgb)[0], px.images[i])
        same_answer += clf.classify(rgb).label == CATS[int(np.argmax(cloud[i]))]
    assert same_pixels == same_answer == len(shas)
