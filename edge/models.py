"""Installed models: fetch, verify, self-test, switch atomically, keep versions for rollback.

On disk: ``<model_dir>/versions/<version>/`` (immutable once there) and ``current``, a
symlink swapped with ``os.replace``. A model failing any step is recorded in
``rejected.json`` (by manifest hash, so polling does not retry it forever) and the model
already serving keeps serving.
"""

import contextlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..shared import layout
from ..shared.atomic import atomic_write_text, fsync_dir
from ..shared.config.edge import ClassifierConfig, UpdatesConfig
from ..shared.errors import ManifestError, RecyclopsError
from ..shared.hashing import sha256_bytes
from ..shared.manifest import ModelManifest, parse_manifest
from ..shared.messages import ModelNotice
from ..shared.preprocess import load_rgb
from ..shared.store import ObjectStore
from ..shared.version import __version__, parse_version
from .classifier import Classifier, synthetic_images

logger = logging.getLogger(__name__)


class UpdateRejected(RecyclopsError):
    """A published model failed a check; the message says which."""


class ModelRepo:
    def __init__(
        self,
        folder: str | Path,
        categories: list[str],
        classifier: ClassifierConfig,
        updates: UpdatesConfig,
    ) -> None:
        self.folder = Path(folder)
        self.versions = self.folder / "versions"
        self.versions.mkdir(parents=True, exist_ok=True)
        self.categories = list(categories)
        self.classifier = classifier
        self.updates = updates

    # ---- what is installed
    def current_version(self) -> str | None:
        link = self.folder / "current"
        with contextlib.suppress(OSError):
            return Path(os.readlink(link)).name
        return None

    def load_current(self) -> Classifier | None:
        """The serving model at start-up. A broken one (a disk error, a bad write) is skipped
        for the newest kept version that still verifies, and ``current`` follows it."""
        version = self.current_version()
        if version is None:
            return None
        candidates = [version] + [
            p.name
            for p in sorted(self.versions.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
            if p.is_dir() and not p.name.startswith(".") and p.name != version
        ]
        for name in candidates:
            try:
                folder = self.versions / name
                raw = (folder / layout.MANIFEST_FILE).read_bytes()
                manifest = parse_manifest(raw, str(folder))
                manifest.verify_folder(folder)
                classifier = self._load(folder, manifest)
            except (RecyclopsError, OSError, ValueError, RuntimeError) as exc:
                logger.error("installed model %s is unusable (%s)", name, exc)
                continue
            if name != version:
                logger.warning("rolled back from %s to %s", version, name)
                self._point_current(name)
            return classifier
        logger.error("no installed model verifies; waiting for an update")
        return None

    def _load(self, folder: Path, manifest: ModelManifest) -> Classifier:
        return Classifier(
            folder,
            manifest,
            threads=self.classifier.threads,
            backend=self.classifier.backend,
            categories=self.categories,
        )

    # ---- rejected versions, remembered by manifest hash
    def _rejected_path(self) -> Path:
        return self.folder / "rejected.json"

    def _rejections(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self._rejected_path().read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {k: v for k, v in data.items() if isinstance(v, dict) and "reason" in v}

    def rejected(self) -> dict[str, str]:
        """Manifest sha -> reason, for rejections made by this edge version: an upgraded edge
        looks again at a model it once refused (e.g. one that needed a newer edge)."""
        return {
            sha: entry["reason"]
            for sha, entry in self._rejections().items()
            if entry.get("edge") == __version__
        }

    def _reject(self, sha: str, reason: str) -> None:
        data = self._rejections()
        data[sha] = {"reason": reason, "edge": __version__}
        atomic_write_text(
            self._rejected_path(), json.dumps(dict(list(data.items())[-100:]), indent=1)
        )

    # ---- the update
    def wanted(self, notice: ModelNotice, current: str | None) -> bool:
        if notice.version == current:
            return False
        return notice.manifest_sha256 not in self.rejected()

    def install(self, notice: ModelNotice, store: ObjectStore) -> Classifier:
        """Fetch, verify, self-test, and switch; UpdateRejected (recorded) on any failure."""
        try:
            return self._install(notice, store)
        except UpdateRejected as exc:
            self._reject(notice.manifest_sha256, str(exc))
            raise

    def _install(self, notice: ModelNotice, store: ObjectStore) -> Classifier:
        expected_key = layout.manifest_key(notice.version)
        if notice.manifest_key != expected_key:
            raise UpdateRejected(
                f"model {notice.version}: manifest key {notice.manifest_key!r} "
                f"is not {expected_key!r}"
            )
        raw = store.get(notice.manifest_key)
        if sha256_bytes(raw) != notice.manifest_sha256:
            raise UpdateRejected(
                f"model {notice.version}: manifest sha256 does not match the notice"
            )
        try:
            manifest = parse_manifest(raw, notice.manifest_key)
        except ManifestError as exc:
            raise UpdateRejected(str(exc)) from None
        self._check_manifest(manifest, notice)
        incoming = Path(tempfile.mkdtemp(prefix=f".incoming-{notice.version}-", dir=self.folder))
        try:
            for entry in manifest.files:
                store.get_file(
                    layout.model_file_key(manifest.version, entry.name), incoming / entry.name
                )
            (incoming / layout.MANIFEST_FILE).write_bytes(raw)
            try:
                manifest.verify_folder(incoming)
                classifier = self._load(incoming, manifest)
                classifier.self_test(self._selftest_images())
            except (RecyclopsError, ValueError, RuntimeError) as exc:
                # an interpreter that cannot invoke, a tensor of the wrong shape: the model is
                # bad, not the network; reject it once instead of fetching it again and again
                raise UpdateRejected(f"model {manifest.version}: {exc}") from None
            final = self.versions / manifest.version
            aside = self.versions / f".old-{manifest.version}-{os.getpid()}"
            if final.exists():  # never a moment without a complete folder under this name
                os.replace(final, aside)
            os.replace(incoming, final)
            fsync_dir(self.versions)
            shutil.rmtree(aside, ignore_errors=True)
        finally:
            shutil.rmtree(incoming, ignore_errors=True)
        classifier = self._load(final, manifest)  # paths now point into versions/
        self._point_current(manifest.version)
        self._prune(manifest.version)
        return classifier

    def _check_manifest(self, manifest: ModelManifest, notice: ModelNotice) -> None:
        if manifest.version != notice.version:
            raise UpdateRejected(
                f"manifest says version {manifest.version}, notice {notice.version}"
            )
        if manifest.categories != self.categories:
            raise UpdateRejected(
                f"model {manifest.version}: categories {manifest.categories} do not match the "
                f"configured {self.categories}"
            )
        if parse_version(manifest.min_edge_version) > parse_version(__version__):
            raise UpdateRejected(
                f"model {manifest.version} needs edge {manifest.min_edge_version}, "
                f"this is {__version__}"
            )
        total = sum(f.size for f in manifest.files)
        if total > self.updates.max_model_mb * 1e6:
            raise UpdateRejected(
                f"model {manifest.version}: {total / 1e6:.0f} MB exceeds the bound"
            )
        if not manifest.model_file.endswith(".tflite"):
            raise UpdateRejected(
                f"model {manifest.version}: model file {manifest.model_file} is not .tflite"
            )

    def _selftest_images(self) -> list[np.ndarray]:
        images = synthetic_images()
        folder = self.updates.selftest_dir
        if folder and Path(folder).is_dir():
            files = sorted(
                p for p in Path(folder).iterdir() if p.suffix.lower() in (".jpg", ".png")
            )[:8]
            images += [load_rgb(p) for p in files]
        return images

    def _point_current(self, version: str) -> None:
        tmp = self.folder / f".current-{os.getpid()}"
        tmp.unlink(missing_ok=True)
        os.symlink(Path("versions") / version, tmp)
        os.replace(tmp, self.folder / "current")
        fsync_dir(self.folder)

    def _prune(self, keep_first: str) -> None:
        folders = sorted(
            (p for p in self.versions.iterdir() if p.is_dir()),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        kept = [keep_first] + [p.name for p in folders if p.name != keep_first]
        for name in kept[self.updates.keep_versions :]:
            shutil.rmtree(self.versions / name, ignore_errors=True)
            logger.info("removed old model version %s", name)

    def rollback(self) -> str | None:
        """Point ``current`` at the newest other version; returns it, or None if there is none."""
        current = self.current_version()
        others = sorted(
            (p for p in self.versions.iterdir() if p.is_dir() and p.name != current),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        if not others:
            return None
        self._point_current(others[0].name)
        return others[0].name
