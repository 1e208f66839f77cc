"""Keypads: the terminal on a pipe, the GPIO matrix on gpiozero mock pins, key mapping."""

import io
import os
import threading
from collections.abc import Callable
from typing import ClassVar

import pytest
from gpiozero.pins.mock import MockFactory, MockPin
from support.waiting import wait_until

from recyclops.edge.gathering import key_map, legend
from recyclops.edge.keypad import MatrixKeypad, TerminalKeypad, _evdev_name
from recyclops.shared.config import RecyclopsConfig
from recyclops.shared.config.edge import KeypadConfig

pytestmark = pytest.mark.edge_numpy1


def test_terminal_keypad_reads_lines_from_a_pipe() -> None:
    read_fd, write_fd = os.pipe()
    keys: list[str] = []
    stop = threading.Event()
    with os.fdopen(read_fd, "r") as reader:
        pad = TerminalKeypad(keys.append, stop, stream=reader)
        pad.start()
        os.write(write_fd, b"1\n  glass \n\n")
        wait_until(lambda: len(keys) == 2, 5, "two keys read")
        os.write(write_fd, b"u")  # no newline: delivered at EOF
        os.close(write_fd)
        pad.thread.join(3)
        assert not pad.thread.is_alive()  # EOF ends the keypad
    assert keys == ["1", "glass", "u"]


def test_terminal_keypad_without_a_file_descriptor() -> None:
    keys: list[str] = []
    pad = TerminalKeypad(keys.append, threading.Event(), stream=io.StringIO("2\n3\n"))
    pad.start()
    pad.thread.join(3)
    assert keys == ["2", "3"]


class MatrixWiring:
    """Which key is held: a column pin reads low while its pressed key's row is driven low."""

    held: tuple[int, int] | None = None  # (row pin, col pin)


class WiredPin(MockPin):
    def _get_state(self):  # type: ignore[no-untyped-def]
        held = MatrixWiring.held
        if held and self._info.name == f"GPIO{held[1]}":
            row = self._factory.pin(held[0])
            return bool(row.state)  # low row pulls this column low
        return super()._get_state()


def test_matrix_keypad_on_mock_pins_debounces_and_reports_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    factory = MockFactory(pin_class=WiredPin)
    config = KeypadConfig(
        kind="gpio",
        row_pins=[5, 6],
        col_pins=[13, 19],
        layout=["12", "3u"],
        debounce_ms=20,
        scan_hz=200,
    )
    keys: list[str] = []
    stop = threading.Event()
    pad = MatrixKeypad(keys.append, stop, config, pin_factory=factory)
    try:
        assert pad.scan() == set()
        MatrixWiring.held = (6, 13)  # row 1, column 0: "3"
        assert pad.scan() == {"3"}
        scans: list[set[str]] = []
        real_scan = pad.scan

        def counted() -> set[str]:
            scans.append(real_scan())
            return scans[-1]

        monkeypatch.setattr(pad, "scan", counted)
        pad.start()
        wait_until(lambda: len(scans) >= 40, 5, "40 scans")  # held for many scans: one press
        MatrixWiring.held = None
        wait_until(lambda: scans[-10:] == [set()] * 10, 5, "10 scans of the released pad")
        MatrixWiring.held = (5, 19)  # "2"
        wait_until(lambda: keys == ["3", "2"], 5, "keys 3 then 2")
        MatrixWiring.held = None
    finally:
        MatrixWiring.held = None
        stop.set()
        pad.thread.join(2)
        pad.close()


def test_the_daemon_hands_its_pin_factory_to_the_matrix_keypad_and_the_led(
    make_config: Callable[..., RecyclopsConfig],
) -> None:
    """One injected factory reaches every gpiozero device: a key held on this factory's
    wired pins is gathered, and the confirmation LED blinks on the same factory."""
    from edge_helpers import Events, start, wait_for

    from recyclops.edge.daemon import EdgeDaemon

    config = make_config(
        keypad={
            "kind": "gpio",
            "row_pins": [5, 6, 12],
            "col_pins": [13, 19, 26],
            "layout": ["123", "456", "u78"],
            "debounce_ms": 20,
            "scan_hz": 200,
            "led_pin": 21,
        }
    )
    factory = MockFactory(pin_class=WiredPin)
    events = Events()
    daemon = EdgeDaemon(config, events=events, pin_factory=factory)
    thread = start(daemon)
    try:
        wait_for(lambda: events.of("classification") or daemon.latest_frame())
        MatrixWiring.held = (5, 19)  # row 0, column 1: "2", glass
        gathered = wait_for(lambda: events.of("gathered"))
        MatrixWiring.held = None
        assert gathered[0]["label"] == "glass"
        wait_for(lambda: any(s.state for s in factory.pin(21).states))  # the LED lit
    finally:
        MatrixWiring.held = None
        daemon.stop.set()
        thread.join(20)
    assert not thread.is_alive() and len(events.of("gathered")) == 1


def test_matrix_config_must_fit_the_layout() -> None:
    with pytest.raises(ValueError, match="layout"):
        KeypadConfig(kind="gpio", row_pins=[1, 2], col_pins=[3], layout=["12", "34"])


def test_keys_map_to_categories_with_more_than_ten() -> None:
    names = [f"c{i:02d}" for i in range(16)]
    config = RecyclopsConfig.model_validate(
        {"categories": names, "edge": {"keypad": {"keys": {"*": "c15"}}}}
    )
    mapping = key_map(config)
    assert mapping["1"] == "c00" and mapping["0"] == "c09" and mapping["a"] == "c10"
    assert mapping["*"] == "c15" and mapping["c03"] == "c03"
    assert "u" not in mapping
    assert any("u:undo" in line for line in legend(config))


def test_evdev_key_names() -> None:
    assert _evdev_name("KEY_KP7") == "7"
    assert _evdev_name("KEY_3") == "3"
    assert _evdev_name("KEY_A") == "a"
    assert _evdev_name("KEY_BACKSPACE") == "u"
    assert _evdev_name("KEY_F12") is None


class FakeInputDevice:
    """A USB keypad cannot exist here (no /dev/input): the same interface as
    ``evdev.InputDevice`` over a pipe, carrying real ``evdev.InputEvent`` objects."""

    instances: ClassVar[list["FakeInputDevice"]] = []

    def __init__(self, path: str) -> None:
        import evdev

        self.path, self.name = path, "Fake USB Keypad"
        self._read_fd, self._write_fd = os.pipe()
        self.fd = self._read_fd
        self.pending: list[evdev.InputEvent] = []
        self.grabbed = False
        FakeInputDevice.instances.append(self)

    def capabilities(self) -> dict[int, list[int]]:
        import evdev

        return {evdev.ecodes.EV_KEY: [evdev.ecodes.KEY_KP1]}

    def press(self, code: int) -> None:
        import evdev

        for value in (1, 0):  # key down, key up: only key-down counts
            self.pending.append(evdev.InputEvent(0, 0, evdev.ecodes.EV_KEY, code, value))
        os.write(self._write_fd, b"x")

    def read(self):  # type: ignore[no-untyped-def]
        os.read(self._read_fd, 4096)
        events, self.pending = self.pending, []
        return events

    def grab(self) -> None:
        self.grabbed = True

    def ungrab(self) -> None:
        self.grabbed = False

    def close(self) -> None:
        os.close(self._read_fd)
        os.close(self._write_fd)


def test_evdev_keypad_maps_key_down_events(monkeypatch: pytest.MonkeyPatch) -> None:
    evdev = pytest.importorskip("evdev")
    from recyclops.edge.keypad import EvdevKeypad

    monkeypatch.setattr(evdev, "list_devices", lambda: ["/dev/input/event7"])
    monkeypatch.setattr(evdev, "InputDevice", FakeInputDevice)
    keys: list[str] = []
    stop = threading.Event()
    pad = EvdevKeypad(keys.append, stop, KeypadConfig(kind="evdev"))
    device = FakeInputDevice.instances[-1]
    assert device.path == "/dev/input/event7"
    pad.start()
    try:
        for code in (
            evdev.ecodes.KEY_KP3,
            evdev.ecodes.KEY_2,
            evdev.ecodes.KEY_BACKSPACE,
            evdev.ecodes.KEY_F1,
        ):
            device.press(code)
        wait_until(lambda: len(keys) == 3, 5, "three keys read")
        assert device.grabbed  # no console sees the keypad while the daemon reads it
    finally:
        stop.set()
        pad.thread.join(2)
    assert keys == ["3", "2", "u"] and not device.grabbed
    pad.close()
