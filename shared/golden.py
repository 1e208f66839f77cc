"""Golden outputs: real test images with the int8 outputs the cloud computed for them.

A model travels with a few real photos (JPEG bytes, decoded on the device by the shared
preprocessing) and the probabilities the cloud's LiteRT gave. Publish and every bin run
them again before a model serves: the same top-1 on every image and every probability
within the manifest's tolerance. Synthetic frames cannot catch a model that misbehaves
only on real photos, nor a runtime that computes differently on another CPU; these can.

File format (``golden.npz``, loaded with ``allow_pickle=False``): ``jpeg`` (uint8, the
files' bytes concatenated), ``offsets`` (int64, N+1), ``probs`` (float32, N x classes),
``labels`` (int16, N, the true class), ``shas`` (unicode, N).
"""

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ManifestError

#: fewest images a golden set may hold, and how many the cloud picks by default
MIN_IMAGES = 8
DEFAULT_IMAGES = 24


class GoldenMismatch(ManifestError):
    """The model, on this runtime, does not reproduce the outputs recorded for it."""


@dataclass(frozen=True)
class GoldenSet:
    jpegs: list[bytes]
    probs: np.ndarray  # N x classes, float32
    labels: np.ndarray  # N, int
    shas: list[str]

    def __len__(self) -> int:
        return len(self.jpegs)

    def to_bytes(self) -> bytes:
        offsets = np.cumsum([0, *(len(j) for j in self.jpegs)]).astype(np.int64)
        buf = io.BytesIO()
        np.savez(
            buf,
            jpeg=np.frombuffer(b"".join(self.jpegs), np.uint8),
            offsets=offsets,
            probs=np.asarray(self.probs, np.float32),
            labels=np.asarray(self.labels, np.int16),
            shas=np.asarray(self.shas, dtype="<U64"),
        )
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "golden set") -> "GoldenSet":
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                flat = npz["jpeg"]
                offsets = npz["offsets"]
                probs = npz["probs"].astype(np.float32)
                labels = npz["labels"].astype(np.int64)
                shas = [str(s) for s in npz["shas"]]
        except (OSError, ValueError, KeyError, EOFError) as exc:
            raise ManifestError(f"{source}: unreadable: {exc}") from None
        n = len(offsets) - 1
        if (
            n < 1
            or probs.ndim != 2
            or probs.shape[0] != n
            or len(labels) != n
            or len(shas) != n
            or offsets[0] != 0
            or offsets[-1] != len(flat)
            or np.any(np.diff(offsets) <= 0)
        ):
            raise ManifestError(f"{source}: inconsistent arrays")
        if not np.all(np.isfinite(probs)):
            raise ManifestError(f"{source}: recorded outputs are not finite")
        jpegs = [flat[offsets[i] : offsets[i + 1]].tobytes() for i in range(n)]
        return cls(jpegs, probs, labels, shas)

    @classmethod
    def load(cls, path: str | Path) -> "GoldenSet":
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise ManifestError(f"{path}: cannot read: {exc}") from None
        return cls.from_bytes(data, str(path))


def compare(expected: np.ndarray, actual: np.ndarray, tolerance: float) -> list[str]:
    """Every way ``actual`` differs from ``expected`` beyond the rules, in plain words."""
    expected = np.asarray(expected, np.float32)
    actual = np.asarray(actual, np.float32)
    if actual.shape != expected.shape:
        return [f"outputs have shape {actual.shape}, expected {expected.shape}"]
    problems = []
    for i, (exp, act) in enumerate(zip(expected, actual, strict=True)):
        if not np.all(np.isfinite(act)):
            problems.append(f"image {i}: non-finite output")
            continue
        if int(np.argmax(act)) != int(np.argmax(exp)):
            problems.append(
                f"image {i}: top-1 is class {int(np.argmax(act))}, "
                f"recorded class {int(np.argmax(exp))}"
            )
            continue
        diff = float(np.max(np.abs(act - exp)))
        if diff > tolerance:
            problems.append(f"image {i}: a probability differs by {diff:.3f} (> {tolerance:g})")
    return problems


def verify(
    golden: GoldenSet, classify: Callable[[bytes], np.ndarray], tolerance: float, what: str
) -> None:
    """Run every golden image through ``classify`` (JPEG bytes → probabilities) and raise
    GoldenMismatch naming the first few differences."""
    actual = np.stack([np.asarray(classify(j), np.float32) for j in golden.jpegs])
    problems = compare(golden.probs, actual, tolerance)
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise GoldenMismatch(
            f"{what}: {len(problems)} of {len(golden)} golden images differ from the "
            f"recorded outputs: {'; '.join(problems[:3])}{more}"
        )
