"""GPIO outputs: the sorter (a servo angle or a relay per category) and the confirmation
LED/buzzer. gpiozero is imported only here, and only when an output is configured."""

import logging
import threading
from typing import Any

from ..shared.config.edge import KeypadConfig, OutputsConfig

logger = logging.getLogger(__name__)


class Sorter:
    """Fires the output of a category; the caller (ItemGate) makes that once per item."""

    def __init__(self, config: OutputsConfig, pin_factory: Any = None) -> None:
        from gpiozero import AngularServo, DigitalOutputDevice

        self.config = config
        self.devices: dict[str, Any] = {}
        self.fired: list[str] = []
        servos: dict[str, Any] = {}
        for category, spec in config.pins.items():
            if spec.kind == "servo":
                key = str(spec.pin)
                if key not in servos:  # one servo may serve several categories (angles)
                    servos[key] = AngularServo(
                        spec.pin, min_angle=-90, max_angle=90, pin_factory=pin_factory
                    )
                self.devices[category] = servos[key]
            else:
                self.devices[category] = DigitalOutputDevice(spec.pin, pin_factory=pin_factory)

    def fire(self, category: str) -> bool:
        device = self.devices.get(category)
        if device is None:
            return False
        spec = self.config.pins[category]
        self.fired.append(category)
        if spec.kind == "servo":
            device.angle = spec.angle
        else:
            device.blink(on_time=spec.pulse_seconds, off_time=0, n=1, background=True)
        logger.info("sorter: %s → %s %s", category, spec.kind, spec.pin)
        return True

    def close(self) -> None:
        for device in set(self.devices.values()):
            device.close()


class Confirm:
    """A short blink/beep for a kept gather, three for a refused one (spool full)."""

    def __init__(self, config: KeypadConfig, pin_factory: Any = None) -> None:
        self.devices: list[Any] = []
        if config.led_pin is None and config.buzzer_pin is None:
            return
        from gpiozero import LED, Buzzer

        if config.led_pin is not None:
            self.devices.append(LED(config.led_pin, pin_factory=pin_factory))
        if config.buzzer_pin is not None:
            self.devices.append(Buzzer(config.buzzer_pin, pin_factory=pin_factory))
        self._lock = threading.Lock()

    def signal(self, ok: bool) -> None:
        for device in self.devices:
            device.blink(
                on_time=0.1 if ok else 0.3, off_time=0.1, n=1 if ok else 3, background=True
            )

    def close(self) -> None:
        for device in self.devices:
            device.close()
