"""A model trained with ``area_linear`` (or ``area_antialiased``) declares the oldest edge that
can feed it
(``preprocess.min_edge_for``): an older bin refuses it by version while its old model keeps
serving; this bin installs it and passes its golden set, computed in the cloud's way."""

from pathlib import Path

import numpy as np
import pytest
from edge_helpers import DATA, Harness, honest_manifest, publish_model

from recyclops.cloud.convert import TfliteModel
from recyclops.shared.golden import GoldenSet
from recyclops.shared.manifest import InputSpec, ModelRef, parse_manifest
from recyclops.shared.preprocess import (
    OPENCV_AVAILABLE,
    decode_rgb,
    min_edge_for,
    new_model_input,
    preprocess_for,
)
from recyclops.shared.store import LocalStore
from recyclops.shared.version import __version__, parse_version

pytestmark = pytest.mark.skipif(not OPENCV_AVAILABLE, reason="the area_* resizes need OpenCV")


def test_new_models_declare_the_edge_that_feeds_them() -> None:
    assert min_edge_for(InputSpec(height=224, width=224, resize="area_linear")) == "0.2.0"
    assert min_edge_for(new_model_input(224)) == "0.3.0"  # new models: area_antialiased
    assert min_edge_for(InputSpec(height=8, width=8)) == "0.1.0"  # bilinear: every edge
    assert min_edge_for(InputSpec(height=8, width=8, resize="area_linear"), "0.3") == "0.3"
    assert min_edge_for(InputSpec(height=8, width=8, resize="area_antialiased")) == "0.3.0"
    assert parse_version(__version__) >= parse_version("0.3.0")  # this bin feeds both


def area_release(store: LocalStore, version: str, method: str) -> ModelRef:
    """The fixture network published as a model resized by ``method``: manifest with the
    minimum edge version training writes, golden outputs from the cloud's scorer on its
    pixels."""
    model = (DATA / "model.tflite").read_bytes()
    old = GoldenSet.from_bytes((DATA / "golden.npz").read_bytes())
    spec = parse_manifest((DATA / "manifest.json").read_bytes()).input
    spec = InputSpec.model_validate({**spec.model_dump(), "resize": method})
    pixels = np.stack([preprocess_for(decode_rgb(j), spec) for j in old.jpegs])
    probs = TfliteModel(model, threads=1).predict(pixels)
    golden = GoldenSet(old.jpegs, probs, old.labels, old.shas).to_bytes()
    manifest = honest_manifest(
        version,
        model,
        golden,
        **{"input.resize": method, "min_edge_version": min_edge_for(spec)},
    )
    return publish_model(store, version, manifest=manifest, golden=golden)


@pytest.mark.parametrize(
    ("method", "older", "needed"),
    [("area_linear", "0.1.0", "0.2.0"), ("area_antialiased", "0.2.0", "0.3.0")],
)
def test_an_older_bin_refuses_an_area_model_and_this_one_serves_it(
    tmp_path: Path,
    local_store: LocalStore,
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    older: str,
    needed: str,
) -> None:
    import recyclops.edge.models as models

    h = Harness(tmp_path, local_store)
    assert h.updater.handle(publish_model(local_store, "v1"), "test")
    notice = area_release(local_store, "v2", method)
    monkeypatch.setattr(models, "__version__", older)  # a bin from before the method
    assert not h.updater.handle(notice, "test")
    assert h.rejected[-1][0] == "v2" and f"needs edge {needed}" in h.rejected[-1][1]
    assert h.serving is not None and h.serving.version == "v1"  # the old model keeps serving
    monkeypatch.setattr(models, "__version__", needed)
    assert h.updater.handle(notice, "test")
    assert h.serving is not None and h.serving.version == "v2"
    assert h.serving.manifest.input.resize == method
