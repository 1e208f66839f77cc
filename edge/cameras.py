"""Cameras behind one interface: picamera2, OpenCV ``VideoCapture``, and a folder replay.

Every camera hands out RGB. OpenCV's BGR is converted with ``from_bgr`` right here, the one
place it belongs. picamera2 and cv2 are imported only inside their adapters.
"""

import abc
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..shared.config.edge import CameraConfig
from ..shared.errors import ImageError, RecyclopsError
from ..shared.preprocess import from_bgr, load_rgb

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class CameraError(RecyclopsError):
    """The camera cannot be opened or stopped giving frames."""


_monotonic = time.monotonic  # the field ``Frame.time`` hides the module in the class body


@dataclass
class Frame:
    """``full``: the frame saved when gathered; ``small``: the one classified (may be the same)."""

    full: np.ndarray
    index: int
    time: float = field(default_factory=time.time)
    #: When it arrived, on the monotonic clock: a key press refuses a frame too old.
    mono: float = field(default_factory=_monotonic)
    small: np.ndarray | None = None
    source: str | None = None  # the replayed file, when there is one

    @property
    def for_inference(self) -> np.ndarray:
        return self.small if self.small is not None else self.full


class EndOfStream(Exception):
    """A replay or a video file is over (and not looping)."""


class Camera(abc.ABC):
    def start(self) -> None:  # noqa: B027 - optional hook
        """Open the device."""

    @abc.abstractmethod
    def read(self) -> Frame | None:
        """The next frame; None on a timeout; EndOfStream when there will be no more."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the device."""

    def set_overlay(self, rgba: np.ndarray | None) -> None:  # noqa: B027 - only picamera2
        """Draw over a local preview, where the camera has one."""


class _Pacer:
    def __init__(self, fps: float) -> None:
        self.period = 1.0 / fps
        self.next = time.monotonic()

    def wait(self) -> None:
        now = time.monotonic()
        if self.next > now:
            time.sleep(self.next - now)
        self.next = max(self.next + self.period, time.monotonic() - self.period)


class ReplayCamera(Camera):
    """Images of a folder (sorted, recursively) at a set rate: for tests and demos."""

    def __init__(self, folder: str | Path, fps: float = 10.0, at_end: str = "loop") -> None:
        self.folder = Path(folder)
        self.at_end = at_end
        self._pacer = _Pacer(fps)
        self._index = 0
        self._files: list[Path] = []
        self._skipped: set[Path] = set()

    def start(self) -> None:
        if not self.folder.is_dir():
            raise CameraError(f"replay folder {self.folder} does not exist")
        self._files = sorted(
            p for p in self.folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
        )
        if not self._files:
            raise CameraError(
                f"replay folder {self.folder} holds no images ({', '.join(IMAGE_SUFFIXES)})"
            )
        logger.info("replaying %d images from %s", len(self._files), self.folder)

    def read(self) -> Frame | None:
        if not self._files:
            self.start()
        if self._index >= len(self._files):
            if self.at_end != "loop":
                raise EndOfStream(str(self.folder))
            self._index = 0
        path = self._files[self._index % len(self._files)]
        number = self._index
        self._index += 1
        self._pacer.wait()
        try:
            rgb = load_rgb(path)
        except ImageError as exc:
            if not self.folder.is_dir():  # the folder is gone: the camera is down, not a file
                self._files = []
                raise CameraError(f"replay folder {self.folder} does not exist") from None
            if path not in self._skipped:  # said once per file, not at every loop
                self._skipped.add(path)
                logger.warning("replay: skipping %s", exc)
            return None
        return Frame(full=rgb, index=number, source=str(path))


class OpenCVCamera(Camera):
    """A USB camera (index), a video file or an RTSP/HTTP URL through ``cv2.VideoCapture``."""

    def __init__(self, config: CameraConfig) -> None:
        self.config = config
        self._cap: Any = None
        self._index = 0
        source = config.source
        self._is_file = not source.isdigit() and "://" not in source
        self._pacer = _Pacer(config.fps) if self._is_file else None

    def start(self) -> None:
        import cv2

        source: int | str = (
            int(self.config.source) if self.config.source.isdigit() else self.config.source
        )
        timeouts: list[int] = []
        if isinstance(source, str) and "://" in source:  # RTSP/HTTP: never block forever
            for name in ("CAP_PROP_OPEN_TIMEOUT_MSEC", "CAP_PROP_READ_TIMEOUT_MSEC"):
                prop = getattr(cv2, name, None)
                if prop is not None:
                    timeouts += [int(prop), int(self.config.read_timeout * 1000)]
        cap = (
            cv2.VideoCapture(source, cv2.CAP_ANY, timeouts)
            if timeouts
            else cv2.VideoCapture(source)
        )
        if not cap.isOpened():
            raise CameraError(f"OpenCV cannot open camera source {self.config.source!r}")
        if isinstance(source, int):
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.config.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.config.height)
            cap.set(cv2.CAP_PROP_FPS, self.config.fps)
        self._cap = cap

    def read(self) -> Frame | None:
        import cv2

        if self._cap is None:
            self.start()
        assert self._cap is not None
        if self._pacer:
            self._pacer.wait()
        ok, bgr = self._cap.read()
        if not ok or bgr is None:
            if not self._is_file:
                return None
            if self.config.at_end != "loop" or self._index == 0:
                raise EndOfStream(self.config.source)
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, bgr = self._cap.read()
            if not ok:
                raise EndOfStream(self.config.source)
        self._index += 1
        return Frame(full=from_bgr(bgr), index=self._index - 1, source=self.config.source)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def picamera2_to_rgb(array: np.ndarray, fmt: str) -> np.ndarray:
    """picamera2 names formats by byte order in a little-endian word: "RGB888" arrays are
    B,G,R in memory and "BGR888" are R,G,B. XRGB8888 is B,G,R,X. Return R,G,B."""
    fmt = fmt.upper()
    if fmt == "YUV420":  # Pi 4 and older give the low-res stream only as YUV420
        import cv2

        return np.ascontiguousarray(cv2.cvtColor(array, cv2.COLOR_YUV420p2RGB))
    if fmt in ("BGR888", "XBGR8888"):
        return np.ascontiguousarray(array[:, :, :3])
    if fmt in ("RGB888", "XRGB8888"):
        return np.ascontiguousarray(array[:, :, 2::-1])
    raise CameraError(f"unsupported picamera2 format {fmt!r}")


class Picamera2Camera(Camera):
    """Raspberry Pi camera: a main stream (saved frames) and a low-res one (inference)."""

    MAIN_FORMAT = "RGB888"
    LORES_FORMAT = "RGB888"

    def __init__(self, config: CameraConfig) -> None:
        self.config = config
        self._cam = None
        self._index = 0
        self._lores_format = self.LORES_FORMAT

    def start(self) -> None:
        try:
            from picamera2 import Picamera2
        except ImportError as exc:
            raise CameraError(
                f"picamera2 is not importable ({exc}); on Raspberry Pi OS: apt install "
                "python3-picamera2 and create the venv with --system-site-packages"
            ) from None
        cam = Picamera2()
        for lores_format in (self.LORES_FORMAT, "YUV420"):
            cfg = cam.create_video_configuration(
                main={"size": (self.config.width, self.config.height), "format": self.MAIN_FORMAT},
                lores={
                    "size": (self.config.lores_width, self.config.lores_height),
                    "format": lores_format,
                },
                controls={"FrameRate": self.config.fps},
            )
            try:
                cam.configure(cfg)
            except RuntimeError as exc:  # older Pis: the low-res stream must be YUV420
                logger.info("picamera2: lores %s refused (%s); trying YUV420", lores_format, exc)
                continue
            self._lores_format = lores_format
            break
        else:
            raise CameraError("picamera2: no usable low-resolution stream format")
        if self.config.preview:
            from picamera2 import Preview

            cam.start_preview(Preview.QTGL)
        cam.start()
        self._cam = cam

    def read(self) -> Frame | None:
        if self._cam is None:
            self.start()
        assert self._cam is not None
        try:  # bounded: a stalled camera yields no frame (the watchdog then starves)
            request = self._cam.capture_request(wait=self.config.read_timeout)
        except TimeoutError:
            logger.warning("picamera2: no frame within %.1fs", self.config.read_timeout)
            return None
        try:
            main = picamera2_to_rgb(request.make_array("main"), self.MAIN_FORMAT)
            lores = picamera2_to_rgb(request.make_array("lores"), self._lores_format)
        finally:
            request.release()
        self._index += 1
        return Frame(full=main, small=lores, index=self._index - 1, source="picamera2")

    def set_overlay(self, rgba: np.ndarray | None) -> None:
        if self._cam is not None and self.config.preview:
            self._cam.set_overlay(rgba)

    def close(self) -> None:
        if self._cam is not None:
            self._cam.stop()
            self._cam.close()
            self._cam = None


def open_camera(config: CameraConfig) -> Camera:
    if config.kind == "replay":
        return ReplayCamera(config.source, config.fps, config.at_end)
    if config.kind == "opencv":
        return OpenCVCamera(config)
    return Picamera2Camera(config)
