"""Edge daemon settings: camera, classifier, keypad, outputs, spool, updates, live view, status."""

from typing import Literal

from pydantic import Field, field_validator, model_validator

from ..primitives import SafeName, is_safe_segment
from .base import StrictModel


class CameraConfig(StrictModel):
    """Where frames come from. ``source``: a folder (replay), a USB index, file or URL (opencv)."""

    kind: Literal["picamera2", "opencv", "replay"] = Field("picamera2", title="Camera kind")
    source: str = Field(
        "0", title="Camera source", description="replay: folder; opencv: index, file or URL"
    )
    fps: float = Field(10.0, gt=0, le=120, title="Frames per second (replay pace, capture request)")
    width: int = Field(1280, ge=16, le=8192, title="Main (saved) frame width")
    height: int = Field(960, ge=16, le=8192, title="Main (saved) frame height")
    lores_width: int = Field(320, ge=16, le=4096, title="Inference stream width (picamera2)")
    lores_height: int = Field(240, ge=16, le=4096, title="Inference stream height (picamera2)")
    at_end: Literal["loop", "stop", "hold"] = Field(
        "loop",
        title="Replay/file end",
        description="loop; stop (daemon exits); hold (no more frames)",
    )
    read_timeout: float = Field(5.0, gt=0, le=120, title="Seconds to wait for one frame")
    preview: bool = Field(
        False, title="picamera2 preview window with the overlay (screen attached)"
    )
    retry_min: float = Field(0.5, gt=0, le=600, title="First camera reopen delay (s)")
    retry_max: float = Field(
        30.0, gt=0, le=3600, title="Longest camera reopen delay (s, doubling from retry_min)"
    )
    stall_seconds: float = Field(
        10.0,
        gt=0,
        le=3600,
        title="Seconds without a frame before an open camera counts as down (and is reopened)",
    )
    down_exit_seconds: float = Field(
        300.0,
        ge=0,
        le=604_800,
        title="Camera down this long: exit non-zero once the spool is drained (0: never)",
        description="systemd (Restart=on-failure) then starts a fresh process; the exit waits "
        "while uploads make progress",
    )


class ClassifierConfig(StrictModel):
    backend: Literal["auto", "litert", "tflite_runtime", "tensorflow"] = Field(
        "auto",
        title="Interpreter",
        description="auto: ai-edge-litert, tflite-runtime, then TensorFlow",
    )
    threads: int = Field(2, ge=1, le=16, title="Interpreter threads")
    smoothing: Literal["vote", "mean", "none"] = Field("mean", title="Smoothing over frames")
    window: int = Field(5, ge=1, le=120, title="Frames smoothed over")
    threshold: float = Field(0.5, ge=0, le=1, title="Below this score the answer is 'unsure'")


class OutputPin(StrictModel):
    kind: Literal["servo", "relay"] = Field("relay", title="Output kind")
    pin: int | str = Field(title="GPIO pin (BCM number or name)")
    angle: float = Field(0.0, ge=-180, le=180, title="Servo angle for this category")
    pulse_seconds: float = Field(0.5, gt=0, le=10, title="How long a relay stays on / servo holds")


class OutputsConfig(StrictModel):
    """One output per category, fired once per item (not per frame)."""

    enabled: bool = Field(False, title="Drive outputs")
    pins: dict[str, OutputPin] = Field(default_factory=dict, title="Output per category name")
    background_category: str | None = Field(
        None, title="Category meaning 'nothing there'", description="Re-arms the sorter when seen."
    )
    stable_frames: int = Field(3, ge=1, le=100, title="Frames a label must hold before firing")
    scene_change: float = Field(
        12.0, gt=0, le=255, title="Mean pixel change that re-arms (no background)"
    )


class KeypadConfig(StrictModel):
    kind: Literal["none", "terminal", "gpio", "evdev"] = Field("none", title="Keypad kind")
    undo_key: str = Field("u", min_length=1, max_length=16, title="Key that undoes the last gather")
    keys: dict[str, str] = Field(
        default_factory=dict,
        title="Extra key → category",
        description="Beyond each category's own key",
    )
    row_pins: list[int | str] = Field(default_factory=list, title="Matrix row pins (outputs)")
    col_pins: list[int | str] = Field(
        default_factory=list, title="Matrix column pins (inputs, pull-up)"
    )
    layout: list[str] = Field(
        default_factory=lambda: ["123A", "456B", "789C", "*0#D"], title="Key per row/column"
    )
    debounce_ms: int = Field(30, ge=0, le=1000, title="Debounce (ms)")
    scan_hz: float = Field(100.0, gt=0, le=2000, title="Matrix scan rate")
    evdev_device: str | None = Field(None, title="evdev device path (None: first keyboard)")
    max_frame_age: float = Field(
        2.0,
        gt=0,
        le=3600,
        title="A key press on a frame older than this (s) is refused, not gathered",
    )
    led_pin: int | str | None = Field(None, title="Confirmation LED pin")
    buzzer_pin: int | str | None = Field(None, title="Confirmation buzzer pin")

    @model_validator(mode="after")
    def _matrix(self) -> "KeypadConfig":
        if self.kind == "gpio":
            if not self.row_pins or not self.col_pins:
                raise ValueError("a gpio keypad needs row_pins and col_pins")
            if len(self.layout) != len(self.row_pins) or any(
                len(row) != len(self.col_pins) for row in self.layout
            ):
                raise ValueError("layout must have one string per row with one key per column")
        return self


class SpoolConfig(StrictModel):
    max_mb: float = Field(512.0, gt=0, le=1_000_000, title="Spool bound for operator gathers (MB)")
    max_items: int = Field(
        10_000, ge=1, le=10_000_000, title="Spool item bound for operator gathers"
    )
    retry_min: float = Field(0.5, gt=0, le=600, title="First retry delay (s)")
    retry_max: float = Field(60.0, gt=0, le=3600, title="Longest retry delay (s)")
    jpeg_quality: int = Field(92, ge=50, le=100, title="JPEG quality of gathered frames")


class CaptureConfig(StrictModel):
    """Automatic capture of frames the model is unsure about (no key press): the frames the
    next model most needs. Bounded in rate and in its own share of the spool."""

    enabled: bool = Field(True, title="Capture uncertain frames automatically")
    min_score: float = Field(
        0.5, ge=0, le=1, title="A frame whose top-1 probability is below this is uncertain"
    )
    min_margin: float = Field(
        0.15,
        ge=0,
        le=1,
        title="A frame whose top-1 minus top-2 probability is below this is uncertain",
    )
    min_agreement: float = Field(
        0.6,
        ge=0,
        le=1,
        title="A full smoothing window whose majority label holds fewer frames than this share "
        "disagrees with itself",
    )
    per_hour: float = Field(
        20.0, ge=0, le=3600, title="Captures per hour (token bucket refill rate; 0: none)"
    )
    burst: int = Field(3, ge=1, le=1000, title="Captures allowed at once (token bucket size)")
    per_class_per_hour: int = Field(
        6, ge=1, le=3600, title="Captures per predicted class in any hour"
    )
    scene_change: float = Field(
        12.0,
        gt=0,
        le=255,
        title="Mean pixel change that makes a new item (one capture per item)",
    )
    max_mb: float = Field(
        64.0, gt=0, le=1_000_000, title="Spool share of automatic captures (MB), apart from gathers"
    )
    max_items: int = Field(
        500, ge=1, le=10_000_000, title="Automatic captures waiting in the spool at most"
    )


class UpdatesConfig(StrictModel):
    poll_seconds: float = Field(30.0, gt=0, le=86400, title="Pointer poll interval without MQTT")
    poll_seconds_connected: float = Field(
        900.0, gt=0, le=86400, title="Pointer poll interval with MQTT"
    )
    jitter_seconds: float = Field(
        3.0,
        ge=0,
        le=3600,
        title="Random delay before fetching an announced model",
        description="uniform in [0, this] after an MQTT notice, so a fleet does not fetch "
        "from the store at one instant; 0: fetch at once",
    )
    keep_versions: int = Field(3, ge=1, le=50, title="Versions kept for rollback")
    max_model_mb: float = Field(256.0, gt=0, le=10_000, title="Largest model accepted (MB)")
    selftest_dir: str | None = Field(
        None, title="Images the self-test classifies (default: synthetic)"
    )
    require_golden: bool = Field(
        True,
        title="Refuse a model without a golden set",
        description="false: accept models published before golden sets (synthetic checks only)",
    )
    guard_frames: int = Field(
        20,
        ge=0,
        le=100_000,
        title="Live frames in a row with non-finite or flat outputs that roll a model back",
        description="0 turns the runtime guard off",
    )


class LiveViewConfig(StrictModel):
    enabled: bool = Field(True, title="Serve the live view")
    host: str = Field("127.0.0.1", title="Bind address (loopback by default)")
    port: int = Field(8090, ge=0, le=65535, title="Port (0: any free port)")
    fps: float = Field(5.0, gt=0, le=60, title="Stream frame rate")
    width: int = Field(640, ge=64, le=4096, title="Stream width")
    quality: int = Field(75, ge=20, le=100, title="Stream JPEG quality")


class StatusConfig(StrictModel):
    stats_seconds: float = Field(10.0, gt=0, le=3600, title="Stats message interval")
    file_seconds: float = Field(1.0, gt=0, le=3600, title="Status file refresh interval")
    last_predictions: int = Field(20, ge=0, le=1000, title="Predictions kept in the status file")
    publish_classifications: bool = Field(True, title="Publish an event per item classified")


class TelemetryConfig(StrictModel):
    """Quality telemetry per period: on MQTT, and through the spool to the store.

    What the bin saw and how sure it was; stored as daily per-bin records, so nothing is
    lost while the store is away."""

    enabled: bool = Field(True, title="Report quality telemetry")
    period_seconds: float = Field(
        60.0,
        ge=1,
        le=86400,
        title="Length of one telemetry period (s)",
        description="Periods are aligned on the UTC clock and never span midnight",
    )
    max_items: int = Field(
        10_080,
        ge=1,
        le=1_000_000,
        title="Telemetry records waiting in the spool at most (a week at 60 s)",
        description="Beyond it a period's record is dropped and counted; gathers never are",
    )


class ShadowConfig(StrictModel):
    """Shadow evaluation: a candidate model beside the serving one, on a sample of frames.

    The candidate is never served; the quality telemetry reports how often the two agree."""

    channel: str = Field(
        "",
        title="Candidate channel to shadow (empty: off)",
        description="e.g. canary; fetched and verified like a served model, never served",
    )
    sample_every: int = Field(
        10, ge=1, le=100_000, title="Run the candidate on at most every Nth classified frame"
    )
    max_cpu_share: float = Field(
        0.2,
        gt=0,
        le=1,
        title="Share of wall time the candidate's measured inference may use",
        description="Frames beyond it are skipped (counted); measured, never assumed",
    )

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str) -> str:
        if value and not is_safe_segment(value):
            raise ValueError(f"{value!r} is not a safe channel name")
        return value


class EdgeConfig(StrictModel):
    device_id: SafeName = Field("bin-01", title="Device id", description="Names this bin.")
    channel: SafeName = Field("stable", title="Model channel to follow")
    model_dir: str = Field("/var/lib/recyclops/models", title="Installed models")
    spool_dir: str = Field("/var/lib/recyclops/spool", title="Upload spool")
    state_dir: str = Field("/var/lib/recyclops/state", title="Status file and small state")
    camera: CameraConfig = Field(default_factory=CameraConfig)
    classifier: ClassifierConfig = Field(default_factory=ClassifierConfig)
    outputs: OutputsConfig = Field(default_factory=OutputsConfig)
    keypad: KeypadConfig = Field(default_factory=KeypadConfig)
    spool: SpoolConfig = Field(default_factory=SpoolConfig)
    capture: CaptureConfig = Field(default_factory=CaptureConfig)
    updates: UpdatesConfig = Field(default_factory=UpdatesConfig)
    live_view: LiveViewConfig = Field(default_factory=LiveViewConfig)
    status: StatusConfig = Field(default_factory=StatusConfig)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)
    shadow: ShadowConfig = Field(default_factory=ShadowConfig)


#: Key names a USB keypad or keyboard can send (recyclops.edge.keypad._evdev_name).
EVDEV_KEYS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789") | {
    "enter",
    "-",
    "+",
    "*",
    "/",
    ".",
}


def keypad_keys(keypad: KeypadConfig) -> frozenset[str] | None:
    """The keys (lower case) this keypad can send; None when it can send any (terminal)."""
    if keypad.kind == "gpio":
        return frozenset(key.lower() for row in keypad.layout for key in row)
    if keypad.kind == "evdev":
        return EVDEV_KEYS
    return None


def key_map_problems(keypad: KeypadConfig, categories: list[tuple[str, str]]) -> list[str]:
    """What the operator could not press on this keypad: categories none of whose keys exist
    on it, the undo key, extra keys the keypad lacks or that name no category. Empty if the
    key map fits. ``categories``: (name, key) in order."""
    problems: list[str] = []
    names = [name for name, _ in categories]
    for key, name in keypad.keys.items():
        if name not in names:
            problems.append(f"edge.keypad.keys: key {key!r} maps to unknown category {name!r}")
    keys = keypad_keys(keypad)
    if keys is None or keypad.kind == "none":
        return problems
    undo = keypad.undo_key.lower()
    shown = " ".join(keypad.layout) if keypad.kind == "gpio" else "letters, digits"
    where = f"the {keypad.kind} keypad ({shown})"
    pressable = keys - {undo}
    reach: dict[str, list[str]] = {name: [key.lower()] for name, key in categories}
    for key, name in keypad.keys.items():
        if name in reach:
            reach[name].append(key.lower())
        if key.lower() not in keys:
            problems.append(f"edge.keypad.keys: key {key!r} (→ {name}) is not on {where}")
    missing = [
        f"{name} (key {key!r})"
        for name, key in categories
        if not any(k in pressable for k in reach[name])
    ]
    used = {k for ks in reach.values() for k in ks}
    free = sorted(pressable - used) if keypad.kind == "gpio" else []
    where_free = f" (free keys: {' '.join(free)})" if free else " (no key is free)"
    if missing:
        problems.append(
            f"edge.keypad: {len(missing)} categories cannot be pressed on {where}: "
            f"{', '.join(missing)}; map a free key to each in [edge.keypad.keys]{where_free}, "
            "or use fewer categories or a larger keypad layout"
        )
    if undo not in keys:
        problems.append(
            f"edge.keypad.undo_key: {keypad.undo_key!r} is not on {where}; "
            f"set undo_key to one of its keys{where_free}"
        )
    return problems
