"""The model manifest (what a model is and how to feed it) and the reference to one version
of a channel's model (``ModelRef``: the channel pointer and the MQTT notice)."""

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from .config.base import StrictModel
from .errors import ManifestError
from .hashing import sha256_file
from .primitives import SafeName, Sha256Hex

MANIFEST_SCHEMA = 1  # bump with a migration when the manifest changes incompatibly


class InputSpec(StrictModel):
    """How the edge must prepare a frame: raw RGB pixels; normalisation is inside the model."""

    height: int = Field(ge=8, le=4096)
    width: int = Field(ge=8, le=4096)
    channels: Literal[3] = 3
    dtype: Literal["uint8", "int8", "float32"] = "uint8"
    scale: float | None = Field(None, gt=0, title="Quantisation scale (int8/uint8 input)")
    zero_point: int | None = Field(None, ge=-128, le=255, title="Quantisation zero point")
    color_order: Literal["RGB"] = "RGB"
    resize: Literal["bilinear", "nearest", "bicubic", "area_linear", "area_antialiased"] = (
        "bilinear"
    )
    fit: Literal["stretch", "center_crop"] = "stretch"

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.height, self.width, self.channels)


class FileEntry(StrictModel):
    name: SafeName
    size: int = Field(ge=0)
    sha256: Sha256Hex


class ClassMetrics(StrictModel):
    float_accuracy: float | None = Field(None, ge=0, le=1)
    int8_accuracy: float | None = Field(None, ge=0, le=1)
    support: int = Field(0, ge=0)


class Metrics(StrictModel):
    float_accuracy: float | None = Field(None, ge=0, le=1)
    int8_accuracy: float | None = Field(None, ge=0, le=1)
    test_images: int = Field(0, ge=0)
    per_class: dict[str, ClassMetrics] = Field(default_factory=dict)


class SplitInfo(StrictModel):
    """How the data set was split, so a later run knows exactly which of its test images
    this model trained on (the split is a function of the image hash; see cloud/dataset.py)."""

    salt: str
    val_fraction: float = Field(gt=0, lt=1)
    test_fraction: float = Field(gt=0, lt=1)
    #: images moved off their hash split (small classes): sha256 -> split
    moved: dict[str, Literal["train", "val", "test"]] = Field(default_factory=dict)


class DatasetInfo(StrictModel):
    fingerprint: str = ""
    images: int = Field(0, ge=0)
    per_class: dict[str, int] = Field(default_factory=dict)
    split: SplitInfo | None = None


class GoldenSpec(StrictModel):
    """Real test-split images with the int8 outputs the cloud computed (``shared/golden.py``).

    Publish and every bin run them before serving: same top-1 on every image, each
    probability within ``tolerance``.
    """

    file: SafeName = "golden.npz"
    count: int = Field(ge=1, le=256)
    tolerance: float = Field(0.05, gt=0, le=1, title="Largest allowed probability difference")


class Blessing(StrictModel):
    """The promotion verdict in short (the full record is the run's gate.json)."""

    blessed: bool
    champion_version: str | None = None
    summary: str = Field("", max_length=4000)
    forced: str | None = Field(None, max_length=1000, title="Why a human published anyway")


class ModelManifest(StrictModel):
    schema_version: Literal[1] = 1
    version: SafeName
    created: datetime
    categories: list[str] = Field(min_length=2)
    input: InputSpec
    model_file: SafeName = "model.tflite"
    metrics: Metrics = Field(default_factory=Metrics)
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    dataset: DatasetInfo = Field(default_factory=DatasetInfo)
    files: list[FileEntry] = Field(min_length=1)
    min_edge_version: str = "0.1.0"
    golden: GoldenSpec | None = None
    blessing: Blessing | None = None

    @model_validator(mode="after")
    def _model_listed(self) -> "ModelManifest":
        if self.model_file not in {f.name for f in self.files}:
            raise ValueError(f"model_file {self.model_file!r} is not among files")
        if len(set(self.categories)) != len(self.categories):
            raise ValueError("categories must be unique")
        if self.golden is not None and self.golden.file not in {f.name for f in self.files}:
            raise ValueError(f"golden file {self.golden.file!r} is not among files")
        return self

    def file(self, name: str) -> FileEntry:
        for entry in self.files:
            if entry.name == name:
                return entry
        raise ManifestError(f"manifest {self.version}: no file {name!r}")

    def verify_folder(self, folder: str | Path) -> None:
        """Check every listed file's size and sha256; ManifestError names the first bad one."""
        folder = Path(folder)
        for entry in self.files:
            path = folder / entry.name
            if not path.is_file():
                raise ManifestError(f"model {self.version}: {entry.name} is missing")
            size = path.stat().st_size
            if size != entry.size:
                raise ManifestError(
                    f"model {self.version}: {entry.name} is {size} bytes, "
                    f"manifest says {entry.size}"
                )
            digest = sha256_file(path)
            if digest != entry.sha256:
                raise ManifestError(
                    f"model {self.version}: {entry.name} sha256 {digest[:12]}… "
                    f"does not match the manifest's {entry.sha256[:12]}…"
                )

    def to_json(self) -> bytes:
        return self.model_dump_json(indent=2).encode("utf-8")


#: pointer-only fields, left out of the MQTT notice (bins that predate ``ModelRef`` parse
#: notices strictly and would refuse them)
_POINTER_ONLY = frozenset({"action", "note"})


class ModelRef(StrictModel):
    """One version of a channel's model, and where its manifest is: the channel pointer
    ``models/channels/<channel>.json`` (written last, so it only names complete versions)
    and, without ``action`` and ``note``, the retained MQTT notice (``notice_payload``).

    ``generation`` only grows: each publish or rollback claims the next one with a
    conditional put of ``models/channels/<channel>/<generation>.json`` (the channel's
    history), so two publishers cannot both win and a bin can refuse anything older than
    what it serves. Pointers and notices from before generations existed read as 0.
    """

    schema_version: Literal[1] = 1
    channel: SafeName
    version: SafeName
    manifest_key: str = Field(max_length=512)
    manifest_sha256: Sha256Hex
    published_at: datetime
    generation: int = Field(0, ge=0)
    action: Literal["publish", "rollback"] = "publish"
    note: str | None = Field(None, max_length=1000)

    @field_validator("manifest_key")
    @classmethod
    def _key(cls, value: str) -> str:
        from .store.base import validate_key

        try:
            validate_key(value)
        except Exception as exc:
            raise ValueError(str(exc)) from None
        if not value.startswith("models/") or not value.endswith("/manifest.json"):
            raise ValueError("must be models/<version>/manifest.json")
        return value

    def pointer_json(self) -> bytes:
        """The channel pointer object as stored (and its history entries)."""
        return self.model_dump_json(indent=1).encode()

    def notice_payload(self) -> bytes:
        """The retained MQTT notice: the pointer's fields a bin needs, nothing more."""
        return json.dumps(self.model_dump(mode="json", exclude=set(_POINTER_ONLY))).encode()


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        loc = ".".join(str(p) for p in item["loc"]) or "(top level)"
        msg = "missing" if item["type"] == "missing" else item["msg"]
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


def parse_manifest(data: bytes | str, source: str = "manifest") -> ModelManifest:
    try:
        json.loads(data)
    except ValueError as exc:
        raise ManifestError(f"{source}: not JSON: {exc}") from None
    try:
        return ModelManifest.model_validate_json(data)
    except ValidationError as exc:
        raise ManifestError(f"{source}: {_describe(exc)}") from None


def parse_pointer(data: bytes | str, source: str = "channel pointer") -> ModelRef:
    try:
        return ModelRef.model_validate_json(data)
    except ValidationError as exc:
        raise ManifestError(f"{source}: {_describe(exc)}") from None


def file_entry(path: str | Path) -> FileEntry:
    path = Path(path)
    return FileEntry(name=path.name, size=path.stat().st_size, sha256=sha256_file(path))
