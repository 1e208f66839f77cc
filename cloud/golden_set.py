"""Pick the golden images a model travels with and record its int8 outputs on them.

The outputs are computed the way a bin computes them: the file's bytes decoded and
resized by the shared preprocessing for the manifest's input spec, then the int8 model on
LiteRT. Images are spread across the true classes and chosen with a clear margin between
the first two classes, so a legitimate runtime difference (another CPU, another libjpeg)
cannot flip a top-1 while a broken model or runtime still does.
"""

from pathlib import Path

import numpy as np

from ..shared.golden import GoldenSet
from ..shared.manifest import InputSpec
from ..shared.preprocess import decode_rgb, preprocess_for
from .convert import TfliteModel
from .dataset import Dataset

#: a golden image's top-1 must lead the runner-up by this much in the cloud
MIN_MARGIN = 0.2


def _margin(probs: np.ndarray) -> np.ndarray:
    top2 = np.sort(probs, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def choose(y: np.ndarray, probs: np.ndarray, count: int) -> list[int]:
    """Up to ``count`` positions, round-robin over the true classes, clear margins first."""
    margin = _margin(probs) if len(probs) else np.zeros(0)
    finite = np.all(np.isfinite(probs), axis=1) if len(probs) else np.zeros(0, bool)
    queues: dict[int, list[int]] = {}
    order = sorted(range(len(y)), key=lambda i: (margin[i] < MIN_MARGIN, i))
    for i in order:
        if finite[i]:
            queues.setdefault(int(y[i]), []).append(i)
    chosen: list[int] = []
    while len(chosen) < count and any(queues.values()):
        for cls in sorted(queues):
            if queues[cls] and len(chosen) < count:
                chosen.append(queues[cls].pop(0))
    return sorted(chosen)


def build(
    ds: Dataset,
    shas: list[str],
    y: np.ndarray,
    probs: np.ndarray,
    spec: InputSpec,
    model: TfliteModel,
    count: int,
) -> GoldenSet | None:
    """The golden set for ``model`` from test images ``shas`` (with their int8 ``probs``);
    None when no test image has a finite output (such a model must not be published)."""
    picked = choose(y, probs, count)
    if not picked:
        return None
    jpegs = [Path(ds.path(shas[i])).read_bytes() for i in picked]
    pixels = np.stack(
        [preprocess_for(decode_rgb(j, shas[i]), spec) for j, i in zip(jpegs, picked, strict=True)]
    )
    outputs = model.predict(pixels)
    return GoldenSet(jpegs, outputs, y[picked], [shas[i] for i in picked])
