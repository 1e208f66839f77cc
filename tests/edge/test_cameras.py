"""Replay and OpenCV cameras for real; picamera2 through a stand-in module (no camera here)."""

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from edge_helpers import BLUE, GREEN, RED, write_frames

from recyclops.edge.cameras import (
    CameraError,
    EndOfStream,
    OpenCVCamera,
    Picamera2Camera,
    ReplayCamera,
    open_camera,
    picamera2_to_rgb,
)
from recyclops.shared.config.edge import CameraConfig

pytestmark = pytest.mark.edge_numpy1


def test_replay_paces_frames_and_loops(tmp_path: Path) -> None:
    folder = write_frames(tmp_path / "f", [RED, GREEN, BLUE])
    cam = ReplayCamera(folder, fps=20, at_end="loop")
    cam.start()
    start = time.monotonic()
    frames = [cam.read() for _ in range(7)]
    elapsed = time.monotonic() - start
    assert elapsed >= 6 / 20 * 0.9  # paced at 20 fps
    assert all(f is not None for f in frames)
    sources = [Path(f.source).name for f in frames if f]
    assert sources[:4] == ["frame-0000.png", "frame-0001.png", "frame-0002.png", "frame-0000.png"]
    assert frames[1] is not None and frames[1].full[..., 1].mean() > 150  # green, in RGB order


def test_replay_stop_raises_end_of_stream(tmp_path: Path) -> None:
    cam = ReplayCamera(write_frames(tmp_path / "f", [RED, GREEN]), fps=100, at_end="stop")
    assert cam.read() is not None and cam.read() is not None
    with pytest.raises(EndOfStream):
        cam.read()


def test_replay_of_a_missing_or_empty_folder_says_so(tmp_path: Path) -> None:
    with pytest.raises(CameraError, match="does not exist"):
        ReplayCamera(tmp_path / "nope").start()
    (tmp_path / "empty").mkdir()
    with pytest.raises(CameraError, match="no images"):
        ReplayCamera(tmp_path / "empty").start()


def test_opencv_reads_a_video_file_in_rgb_order(tmp_path: Path) -> None:
    import cv2

    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    assert writer.isOpened()
    for colour in (RED, RED, BLUE, BLUE):
        writer.write(np.full((48, 64, 3), colour[::-1], np.uint8))  # OpenCV writes BGR
    writer.release()
    cam = open_camera(CameraConfig(kind="opencv", source=str(path), fps=100, at_end="stop"))
    assert isinstance(cam, OpenCVCamera)
    cam.start()
    try:
        first = cam.read()
        assert first is not None
        r, g, b = first.full.reshape(-1, 3).mean(axis=0)
        assert r > 180 and b < 60, (r, g, b)  # red stays red: BGR converted at the camera
        frames = [cam.read() for _ in range(3)]
        assert frames[-1] is not None and frames[-1].full[..., 2].mean() > 180
        with pytest.raises(EndOfStream):
            cam.read()
    finally:
        cam.close()


def test_opencv_bad_source_is_a_clear_error(tmp_path: Path) -> None:
    cam = OpenCVCamera(CameraConfig(kind="opencv", source=str(tmp_path / "missing.avi")))
    with pytest.raises(CameraError, match="cannot open"):
        cam.start()


def test_picamera2_byte_order() -> None:
    """picamera2's "RGB888" is B,G,R in memory; "BGR888" is R,G,B."""
    bgr_in_memory = np.zeros((2, 2, 3), np.uint8)
    bgr_in_memory[..., 2] = 200  # the last byte is red in an RGB888 buffer
    assert picamera2_to_rgb(bgr_in_memory, "RGB888")[0, 0].tolist() == [200, 0, 0]
    rgb_in_memory = np.zeros((2, 2, 4), np.uint8)
    rgb_in_memory[..., 0] = 200
    assert picamera2_to_rgb(rgb_in_memory, "XBGR8888")[0, 0].tolist() == [200, 0, 0]
    with pytest.raises(CameraError, match="unsupported"):
        picamera2_to_rgb(bgr_in_memory, "MJPEG")


def test_picamera2_is_imported_only_inside_its_adapter() -> None:
    code = (
        "import sys\n"
        "import recyclops.edge.cameras as c\n"
        "assert 'picamera2' not in sys.modules\n"
        "from recyclops.shared.config.edge import CameraConfig\n"
        "cam = c.open_camera(CameraConfig(kind='picamera2'))\n"
        "assert 'picamera2' not in sys.modules\n"
        "print('OK')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "OK" in out.stdout, out.stderr


def test_picamera2_missing_gives_install_advice() -> None:
    try:
        import picamera2  # noqa: F401
    except ImportError:
        with pytest.raises(CameraError, match="python3-picamera2"):
            Picamera2Camera(CameraConfig()).start()
    else:
        pytest.skip("picamera2 is installed here")


class _FakeRequest:
    def __init__(self, frames: dict[str, np.ndarray]) -> None:
        self.frames = frames
        self.released = False

    def make_array(self, stream: str) -> np.ndarray:
        return self.frames[stream]

    def release(self) -> None:
        self.released = True


class _FakePicamera2:
    """Stands in for picamera2.Picamera2 (no camera here): same calls the adapter makes."""

    stalled = False

    def __init__(self) -> None:
        self.waits: list[float | None] = []

    def create_video_configuration(self, **kw: Any) -> dict[str, Any]:
        return kw

    def configure(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def close(self) -> None: ...

    def capture_request(self, wait: float | None = None) -> _FakeRequest:
        self.waits.append(wait)
        if self.stalled:
            raise TimeoutError("no frame")
        main = np.zeros((960, 1280, 3), np.uint8)
        main[..., 0] = 200  # "RGB888" is B,G,R in memory: blue
        return _FakeRequest({"main": main, "lores": main[::4, ::4].copy()})


def test_picamera2_reads_are_bounded_and_a_stall_yields_no_frame(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import types

    module = types.ModuleType("picamera2")
    module.Picamera2 = _FakePicamera2  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "picamera2", module)
    cam = open_camera(CameraConfig(kind="picamera2", read_timeout=1.5))
    frame = cam.read()
    assert frame is not None and frame.full[0, 0].tolist() == [0, 0, 200]
    fake = cam._cam  # type: ignore[attr-defined]
    assert fake.waits == [1.5]
    fake.stalled = True
    assert cam.read() is None
    cam.close()
