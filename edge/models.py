"""Installed models: fetch, verify, self-test, golden check, switch atomically, keep versions
for rollback.

On disk: ``<model_dir>/versions/<version>/`` (immutable once there), ``current``, a symlink
swapped with ``os.replace``, and ``generation.json``, the channel generation of what serves
(the bin refuses anything older). A model failing any step is recorded in ``rejected.json``
(by manifest hash, so polling does not retry it forever) and the model already serving keeps
serving.
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
from ..shared.golden import GoldenSet, verify
from ..shared.hashing import sha256_bytes
from ..shared.manifest import ModelManifest, ModelRef, parse_manifest
from ..shared.preprocess import decode_rgb, load_rgb
from ..shared.store import ObjectStore
from ..shared.version import __version__, parse_version
from .classifier import Classifier, synthetic_images

logger = logging.getLogger(__name__)

GENERATION_FILE = "generation.json"


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
        self._generation = self._read_generation()

    # ---- the channel generation this bin serves (only grows; survives restarts)
    def _read_generation(self) -> int:
        try:
            data = json.loads((self.folder / GENERATION_FILE).read_text())
            return max(0, int(data["generation"]))
        except (OSError, ValueError, KeyError, TypeError):
            return 0  # never written (a bin from before generations): accept any

    def generation(self) -> int:
        return self._generation

    def set_generation(self, generation: int, version: str) -> None:
        atomic_write_text(
            self.folder / GENERATION_FILE,
            json.dumps({"generation": generation, "version": version}),
        )
        self._generation = generation

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
        classifier = self._first_usable([version, *self._kept(but=version)])
        if classifier is not None and classifier.version != version:
            logger.warning("rolled back from %s to %s", version, classifier.version)
            self._point_current(classifier.version)
        if classifier is None:
            logger.error("no installed model verifies; waiting for an update")
        return classifier

    def _kept(self, but: str | None) -> list[str]:
        """Installed versions other than ``but``, newest first."""
        return [
            p.name
            for p in sorted(self.versions.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
            if p.is_dir() and not p.name.startswith(".") and p.name != but
        ]

    def _first_usable(self, names: list[str]) -> Classifier | None:
        """The first of ``names`` whose files verify and whose model loads."""
        for name in names:
            try:
                folder = self.versions / name
                raw = (folder / layout.MANIFEST_FILE).read_bytes()
                manifest = parse_manifest(raw, str(folder))
                manifest.verify_folder(folder)
                return self._load(folder, manifest)
            except (RecyclopsError, OSError, ValueError, RuntimeError) as exc:
                logger.error("installed model %s is unusable (%s)", name, exc)
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
    def wanted(self, notice: ModelRef, current: str | None) -> bool:
        if notice.version == current:
            return False
        return notice.manifest_sha256 not in self.rejected()

    def withdraw(self, version: str, reason: str) -> Classifier | None:
        """The runtime guard caught ``version`` misbehaving on live frames: remember it as
        rejected (polling must not fetch it again), go back to the newest other kept version
        that verifies, and delete the bad one. None when nothing else is usable (the bin then
        serves no model rather than a broken one)."""
        folder = self.versions / version
        with contextlib.suppress(OSError):
            self._reject(sha256_bytes((folder / layout.MANIFEST_FILE).read_bytes()), reason)
        classifier = None
        if self.current_version() == version:
            classifier = self._first_usable(self._kept(but=version))
            if classifier is not None:
                self._point_current(classifier.version)
            else:
                (self.folder / "current").unlink(missing_ok=True)
                fsync_dir(self.folder)
        shutil.rmtree(folder, ignore_errors=True)
        return classifier

    def install(self, notice: ModelRef, store: ObjectStore) -> Classifier:
        """Fetch, verify, self-test, and switch; UpdateRejected (recorded) on any failure."""
        try:
            return self._install(notice, store)
        except UpdateRejected as exc:
            self._reject(notice.manifest_sha256, str(exc))
            raise

    def _install(self, notice: ModelRef, store: ObjectStore) -> Classifier:
        classifier = self._fetch_verified(notice, store)
        self._point_current(classifier.version)
        self.set_generation(max(notice.generation, self._generation), classifier.version)
        self._prune(classifier.version)
        return classifier

    def candidate(self, notice: ModelRef, store: ObjectStore) -> Classifier:
        """A shadow candidate: fetched and verified exactly like an update (hashes, manifest,
        self-test, golden check) into ``versions/``, but ``current`` and the generation are
        left alone: it is never served. The kept copy is reused when it still verifies.
        UpdateRejected (recorded) on any failure."""
        if notice.manifest_sha256 in self.rejected():
            raise UpdateRejected(f"model {notice.version} was rejected before")
        kept = self.versions / notice.version
        if kept.is_dir():
            with contextlib.suppress(OSError):
                if sha256_bytes((kept / layout.MANIFEST_FILE).read_bytes()) == (
                    notice.manifest_sha256
                ) and (classifier := self._first_usable([notice.version])):
                    return classifier
        try:
            classifier = self._fetch_verified(notice, store)
        except UpdateRejected as exc:
            self._reject(notice.manifest_sha256, str(exc))
            raise
        self._prune(classifier.version)
        return classifier

    def _fetch_verified(self, notice: ModelRef, store: ObjectStore) -> Classifier:
        """Fetch, verify, self-test and golden-check into ``versions/<version>``; the
        classifier returned is the one checked (one interpreter per install, not two: the
        model file is mapped, so moving its folder into place leaves it valid)."""
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
                self._golden_check(incoming, manifest, classifier)
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
        classifier.folder = final
        return classifier

    def _golden_check(self, folder: Path, manifest: ModelManifest, classifier: Classifier) -> None:
        """The cloud's outputs for real photos, reproduced by this bin's own runtime: catches
        a model that misbehaves only on real images, or a runtime that computes differently."""
        spec = manifest.golden
        if spec is None:
            return  # refused earlier unless updates.require_golden is off
        golden = GoldenSet.load(folder / spec.file)
        if len(golden) != spec.count:
            raise ManifestError(
                f"golden set holds {len(golden)} images, manifest says {spec.count}"
            )
        verify(
            golden,
            lambda jpeg: classifier.classify(decode_rgb(jpeg, "golden image")).probs,
            spec.tolerance,
            "golden check",
        )

    def _check_manifest(self, manifest: ModelManifest, notice: ModelRef) -> None:
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
        if manifest.golden is None:
            if self.updates.require_golden:
                raise UpdateRejected(
                    f"model {manifest.version}: carries no golden set, so this bin cannot "
                    "check it on real images (updates.require_golden = false accepts it)"
                )
            logger.warning("model %s carries no golden set: synthetic checks only", notice.version)

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
