"""The operator's live view: a page and an MJPEG stream served by the daemon (loopback by
default), with the key legend, the current prediction and score, and a flash on gather.

Each stream frame is rendered once and shared by every client; clients get frames at the
configured rate and never slow the classifier down.
"""

import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

import numpy as np

from ..shared.config.edge import LiveViewConfig
from ..shared.mqtt import dumps_json
from .worker import Worker

logger = logging.getLogger(__name__)

BOUNDARY = "recyclopsframe"


def render_overlay(
    frame: np.ndarray,
    legend: list[str],
    current: dict[str, Any] | None,
    flash: bool,
    width: int,
    note: str | None = None,
) -> np.ndarray:
    """RGB frame → BGR image with the overlay drawn, scaled to ``width``."""
    import cv2

    h, w = frame.shape[:2]
    height = max(1, round(h * width / w))
    img = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
    img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    font = cv2.FONT_HERSHEY_SIMPLEX
    if current:
        text = f"{current['label']} {current['score']:.2f}"
        cv2.rectangle(img, (0, 0), (width, 34), (0, 0, 0), -1)
        cv2.putText(img, text, (8, 25), font, 0.8, (80, 255, 80), 2, cv2.LINE_AA)
    if legend:  # a dark band keeps the legend readable on any scene
        top = height - 14 - 18 * len(legend)
        cv2.rectangle(img, (0, top), (width, height), (0, 0, 0), -1)
    for i, line in enumerate(legend):
        y = height - 8 - 18 * (len(legend) - 1 - i)
        cv2.putText(img, line, (8, y), font, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    if note:
        cv2.putText(img, note, (8, 60), font, 0.7, (0, 0, 255), 2, cv2.LINE_AA)
    if flash:
        cv2.rectangle(img, (0, 0), (width - 1, height - 1), (255, 255, 255), 12)
    return img


def preview_overlay(
    size: tuple[int, int],
    legend: list[str],
    current: dict[str, Any] | None,
    flash: bool,
    note: str | None = None,
) -> np.ndarray:
    """The same overlay as an RGBA layer for picamera2's preview window (``set_overlay``)."""
    blank = np.zeros((size[1], size[0], 3), np.uint8)
    bgr = render_overlay(blank, legend, current, flash, size[0], note)
    rgba = np.zeros((bgr.shape[0], bgr.shape[1], 4), np.uint8)
    rgba[..., :3] = bgr[..., ::-1]
    rgba[..., 3] = np.where(bgr.any(axis=2), 255, 0)
    return rgba


class LiveFrames:
    """The latest frame and its overlay data; the JPEG is encoded once per new frame."""

    def __init__(
        self,
        config: LiveViewConfig,
        legend: list[str],
        overlay: Callable[[], tuple[dict[str, Any] | None, bool, str | None]],
    ) -> None:
        self.config = config
        self.legend = legend
        self.overlay = overlay
        self.cond = threading.Condition()
        self._frame: np.ndarray | None = None
        self._seq = 0
        self._jpeg: tuple[int, bytes] | None = None
        self._last_push = 0.0

    def push(self, frame: np.ndarray) -> None:
        now = time.monotonic()
        if now - self._last_push < 1.0 / self.config.fps:
            return
        self._last_push = now
        with self.cond:
            self._frame = frame
            self._seq += 1
            self.cond.notify_all()

    def wait_jpeg(self, after: int, timeout: float) -> tuple[int, bytes] | None:
        import cv2

        with self.cond:
            if not self.cond.wait_for(lambda: self._seq > after, timeout):
                return None
            seq, frame = self._seq, self._frame
            cached = self._jpeg
        if cached and cached[0] == seq:
            return cached
        assert frame is not None
        current, flash, note = self.overlay()
        img = render_overlay(frame, self.legend, current, flash, self.config.width, note)
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, self.config.quality])
        if not ok:
            return None
        self._jpeg = (seq, buf.tobytes())
        return self._jpeg


class _Handler(BaseHTTPRequestHandler):
    server: "LiveServer"

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("live view %s: " + format, self.client_address[0], *args)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/":
            body = resources.files("recyclops.edge").joinpath("static/live.html").read_bytes()
            self._send(200, "text/html; charset=utf-8", body)
        elif path == "/status.json":
            self._send(200, "application/json", dumps_json(self.server.status()).encode())
        elif path == "/stream.mjpg":
            self._stream()
        else:
            self._send(404, "text/plain", b"not found\n")

    def _send(self, code: int, kind: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        seq = 0
        frames = self.server.frames
        while not self.server.stopping.is_set():
            got = frames.wait_jpeg(seq, 1.0)
            if got is None:
                continue
            seq, jpeg = got
            try:
                self.wfile.write(
                    f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                    f"Content-Length: {len(jpeg)}\r\n\r\n".encode()
                    + jpeg
                    + b"\r\n"
                )
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                return


class LiveServer(ThreadingHTTPServer):
    """The HTTP server (bound at construction); ``LiveView`` runs it."""

    daemon_threads = True

    def __init__(
        self, config: LiveViewConfig, frames: LiveFrames, status: Callable[[], dict[str, Any]]
    ) -> None:
        super().__init__((config.host, config.port), _Handler)
        self.frames = frames
        self.status = status
        self.stopping = threading.Event()

    @property
    def url(self) -> str:
        host, port = self.server_address[0], self.server_address[1]
        name = host.decode() if isinstance(host, bytes) else host
        return f"http://{name}:{port}/"


class LiveView(Worker):
    """The live view as a worker: serves until stopped; streams end with it."""

    def __init__(
        self, config: LiveViewConfig, frames: LiveFrames, status: Callable[[], dict[str, Any]]
    ) -> None:
        super().__init__("liveview")
        self.server = LiveServer(config, frames, status)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def server_address(self) -> tuple[str | bytes | bytearray, int]:
        address = self.server.server_address
        return address[0], address[1]

    def start(self) -> None:
        super().start()
        logger.info("live view on %s", self.url)

    def loop(self) -> None:
        self.server.serve_forever(poll_interval=0.2)

    def stop(self) -> None:
        super().stop()
        self.server.stopping.set()  # open streams end
        if self.thread.is_alive():
            self.server.shutdown()  # waits for serve_forever to return

    def close(self) -> None:
        self.server.server_close()
