"""The shipped ImageNet weights: found without a cache or network, checked by content.

Two legitimate files exist (the official Keras download and the shipped TF-slim assembly)
with different bytes, so a check by hash would refuse one of them. These tests hold the
loader to the property both share, and to refusing files that merely carry the name.
"""

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")  # the cloud extra; the edge-only venv collects this too

from recyclops.cloud import weights  # noqa: E402
from recyclops.cloud.model import ModelBuildError, build_base  # noqa: E402
from recyclops.shared.config import TrainConfig  # noqa: E402

SHIPPED = weights.shipped()
pytestmark = pytest.mark.skipif(SHIPPED is None, reason="the package was built without weights")


@pytest.fixture(scope="module")
def base():  # type: ignore[no-untyped-def]
    import keras

    return keras.applications.MobileNetV2(
        input_shape=(224, 224, 3), include_top=False, weights=None, alpha=1.0
    )


def variant(tmp_path: Path, name: str) -> Path:
    assert SHIPPED is not None
    path = tmp_path / name
    shutil.copyfile(SHIPPED, path)
    return path


def test_the_shipped_file_is_found_without_any_keras_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty-keras-home"))
    found = weights.locate(1.0, 160)
    assert found is not None and found.path == SHIPPED
    assert found.origin == "shipped with recyclops"
    assert weights.locate(0.35, 224) is None  # other widths: Keras downloads them


def test_a_file_in_keras_home_wins_over_the_shipped_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "models").mkdir()
    cached = variant(tmp_path / "models", weights.file_name())
    found = weights.locate(1.0, 224)
    assert found is not None and found.path == cached
    assert str(tmp_path) in found.origin


def test_a_byte_different_file_with_the_same_content_is_accepted(
    tmp_path: Path, base: object
) -> None:
    """What the official download is to the shipped file: other bytes, same weights."""
    other = variant(tmp_path, "official-like.h5")
    with h5py.File(other, "a") as f:
        f.attrs["written_by"] = "another converter"
    assert weights.sha256(other) != weights.sha256(SHIPPED)  # type: ignore[arg-type]
    weights.load_into(base, other)
    assert "content-verified" in weights.describe(other)
    assert "ships" in weights.describe(SHIPPED)  # type: ignore[arg-type]


def test_a_file_with_a_wrong_shape_is_refused_naming_the_layer(
    tmp_path: Path, base: object
) -> None:
    bad = variant(tmp_path, "narrow.h5")
    with h5py.File(bad, "a") as f:
        del f["Conv1"]["Conv1/kernel"]
        f["Conv1"].create_dataset("Conv1/kernel", data=np.zeros((3, 3, 3, 16), np.float32))
    with pytest.raises(weights.WeightsError, match=r"Conv1.*16"):
        weights.load_into(base, bad)


def test_a_file_with_damaged_numbers_is_refused(tmp_path: Path, base: object) -> None:
    bad = variant(tmp_path, "nan.h5")
    with h5py.File(bad, "a") as f:
        f["Conv1"]["Conv1/kernel"][0, 0, 0, 0] = np.nan
    with pytest.raises(weights.WeightsError, match="non-finite"):
        weights.load_into(base, bad)


def test_a_file_that_is_not_hdf5_is_refused(tmp_path: Path, base: object) -> None:
    junk = tmp_path / weights.file_name()
    junk.write_bytes(b"<html>rate limited</html>")
    with pytest.raises(weights.WeightsError, match="not a Keras HDF5"):
        weights.load_into(base, junk)


def test_training_with_imagenet_works_offline_from_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty"))
    net = build_base(TrainConfig(weights="imagenet", image_size=96))
    kernel = net.get_layer("Conv1").get_weights()[0]
    with h5py.File(SHIPPED, "r") as f:  # type: ignore[arg-type]
        assert np.array_equal(kernel, np.asarray(f["Conv1"]["Conv1/kernel"]))


def test_a_damaged_cached_file_stops_training_with_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / weights.file_name()).write_bytes(b"partial download")
    with pytest.raises(ModelBuildError, match=re.escape(str(tmp_path / "models"))):
        build_base(TrainConfig(weights="imagenet", image_size=96))
