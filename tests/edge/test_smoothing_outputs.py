"""Smoothing, the unsure threshold, once-per-item firing, and the sorter on gpiozero mock pins."""

import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from recyclops.edge.outputs import Confirm, Sorter
from recyclops.edge.smoothing import UNSURE, ItemGate, Smoother
from recyclops.shared.config.edge import KeypadConfig, OutputsConfig

pytestmark = pytest.mark.edge_numpy1
CATS = ["a", "b", "c"]


def p(*values: float) -> np.ndarray:
    return np.array(values, np.float32)


def test_mean_smoothing_rides_out_one_odd_frame() -> None:
    s = Smoother(CATS, "mean", window=3, threshold=0.5)
    assert s.add(p(0.9, 0.05, 0.05)).label == "a"
    assert s.add(p(0.9, 0.05, 0.05)).label == "a"
    out = s.add(p(0.1, 0.8, 0.1))  # one odd frame
    assert out.label == "a" and out.frames == 3


def test_vote_smoothing_and_unsure_threshold() -> None:
    s = Smoother(CATS, "vote", window=4, threshold=0.6)
    s.add(p(0.9, 0.1, 0))
    s.add(p(0.1, 0.9, 0))
    assert s.add(p(0.9, 0.1, 0)).label == "a"  # 2 of 3 votes = 0.67
    assert s.add(p(0.1, 0.9, 0)).label == UNSURE  # 2 of 4 = 0.5 < 0.6


def test_low_confidence_is_unsure_and_wrong_shape_is_refused() -> None:
    s = Smoother(CATS, "none", window=5, threshold=0.5)
    assert s.add(p(0.4, 0.3, 0.3)).label == UNSURE
    with pytest.raises(ValueError, match="expected 3"):
        s.add(p(0.5, 0.5))


def test_gate_fires_once_per_item_with_a_background_category() -> None:
    gate = ItemGate(stable=2, background="empty")
    labels = ["empty", "empty", "a", "a", "a", "a", "unsure", "a", "empty", "empty", "b", "b", "b"]
    fired = [x for x in (gate.update(label) for label in labels) if x]
    assert fired == ["a", "b"]


def test_gate_without_background_rearms_on_scene_change() -> None:
    gate = ItemGate(stable=1, background=None, scene_change=10)
    dark, bright = np.zeros((48, 64, 3), np.uint8), np.full((48, 64, 3), 200, np.uint8)
    assert gate.update("a", dark) == "a"
    assert gate.update("a", dark) is None  # same item, same scene
    assert gate.update("a", bright) == "a"  # the scene changed: a new item


def test_sorter_moves_servo_and_pulses_relay_on_mock_pins() -> None:
    factory = MockFactory(pin_class=MockPWMPin)
    config = OutputsConfig.model_validate(
        {
            "enabled": True,
            "pins": {
                "a": {"kind": "servo", "pin": 17, "angle": 45},
                "b": {"kind": "servo", "pin": 17, "angle": -45},
                "c": {"kind": "relay", "pin": 27, "pulse_seconds": 0.2},
            },
        }
    )
    sorter = Sorter(config, pin_factory=factory)
    try:
        assert sorter.fire("a")
        assert sorter.devices["a"].angle == pytest.approx(45, abs=1)
        sorter.fire("b")
        assert sorter.devices["a"].angle == pytest.approx(-45, abs=1)  # one servo, two angles
        sorter.fire("c")
        relay_pin = factory.pin(27)
        relay_pin.assert_states_and_times([(0.0, False), (0.0, True), (0.2, False)])
        assert not sorter.fire("unknown")
    finally:
        sorter.close()


def test_confirm_blinks_the_led() -> None:
    factory = MockFactory()
    confirm = Confirm(KeypadConfig(led_pin=22), pin_factory=factory)
    try:
        confirm.signal(True)
        factory.pin(22).assert_states_and_times([(0.0, False), (0.0, True), (0.1, False)])
    finally:
        confirm.close()
