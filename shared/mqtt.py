"""A small MQTT client over paho-mqtt 2.x: connect, publish, subscribe, stop.

Subscriptions are remembered and renewed on every reconnect; a handler that raises is
logged, never allowed to kill the network thread.

Also the one strict JSON writer (``dumps_json``) every JSON the edge emits goes through:
MQTT payloads, the status file, the event stream, the live view's status.
"""

import json
import logging
import math
import threading
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
from pydantic import BaseModel

from .config.mqtt import MqttConfig
from .mqtt_tls import KEY_SECRET, MqttError, describe, tls_context
from .secrets import read_secret

logger = logging.getLogger(__name__)

Handler = Callable[[str, bytes], None]


__all__ = ["MqttClient", "MqttError", "dumps_json", "finite_json"]


def finite_json(value: Any) -> Any:
    """``value`` with every NaN and infinity (Python or numpy) replaced by None, numpy
    scalars and arrays made plain: bare ``NaN`` is not JSON and breaks every strict reader."""
    if isinstance(value, float | np.floating):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.ndarray):
        return finite_json(value.tolist())
    if isinstance(value, dict):
        return {key: finite_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(item) for item in value]
    return value


def dumps_json(value: Any, *, indent: int | None = None) -> str:
    """Strict JSON: non-finite numbers become null, ``allow_nan=False`` proves none is left;
    anything else unknown (datetimes, paths) is written as its string."""
    return json.dumps(finite_json(value), allow_nan=False, default=str, indent=indent)


def _payload(data: bytes | str | BaseModel) -> bytes:
    if isinstance(data, BaseModel):
        return dumps_json(data.model_dump(mode="json")).encode("utf-8")
    return data.encode("utf-8") if isinstance(data, str) else data


class _PahoErrors(logging.Logger):
    """paho's log, of which only errors are kept (handed to ``sink``); the rest is dropped
    before paho formats it (an ``on_log`` callback would format every packet's line)."""

    def __init__(self, sink: Callable[[str], None]) -> None:
        super().__init__("recyclops.paho", logging.ERROR)
        self.sink = sink

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if level >= logging.ERROR:
            self.sink(str(msg) % args if args else str(msg))


class MqttClient:
    def __init__(
        self,
        config: MqttConfig,
        client_id: str | None = None,
        *,
        will: tuple[str, bytes | str | BaseModel] | None = None,
        password: str | None = None,
        client_key: str | None = None,
    ) -> None:
        import paho.mqtt.client as mqtt

        if not config.host:
            raise MqttError("no MQTT broker configured (mqtt.host is empty)")
        self.config = config
        self._handlers: dict[str, tuple[int, Handler]] = {}
        self._connect_hooks: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self.last_error: str | None = None  # why the last connect failed, in plain words
        self._client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id or f"recyclops-{uuid.uuid4().hex[:8]}",
        )
        if config.username:
            secret = password if password is not None else read_secret("mqtt_password")[0]
            self._client.username_pw_set(config.username, secret)
        if config.tls:
            key, origin = (
                (client_key, "the caller") if client_key is not None else read_secret(KEY_SECRET)
            )
            self._client.tls_set_context(tls_context(config, key, origin))
        if will:
            self._client.will_set(will[0], _payload(will[1]), qos=1, retain=True)
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.enable_logger(_PahoErrors(self._on_paho_error))
        reconnect = self._client.reconnect

        def reconnecting() -> Any:
            """paho's reconnect, keeping why it failed (paho retries and says nothing)."""
            try:
                return reconnect()
            except OSError as exc:
                self._failed(str(exc) or type(exc).__name__)
                raise

        self._client.reconnect = reconnecting  # type: ignore[method-assign]

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def start(self, wait: float | None = None) -> bool:
        """Connect in the background (retrying forever); optionally wait for the first connect."""
        try:
            self._client.connect_async(
                self.config.host or "", self.config.port, self.config.keepalive
            )
        except (OSError, ValueError) as exc:
            raise MqttError(f"mqtt://{self.config.host}:{self.config.port}: {exc}") from exc
        self._client.loop_start()
        if wait is not None:
            return self._connected.wait(wait)
        return self.connected

    def stop(self) -> None:
        try:
            self._client.disconnect()
        finally:
            self._client.loop_stop()
            self._connected.clear()

    def publish(
        self,
        topic: str,
        data: bytes | str | BaseModel,
        *,
        qos: int = 1,
        retain: bool = False,
        wait: float | None = None,
    ) -> bool:
        """Queue a message; with ``wait``, block until the broker acknowledged it (True)."""
        info = self._client.publish(topic, _payload(data), qos=qos, retain=retain)
        if wait is None:
            return info.rc == 0
        try:
            info.wait_for_publish(wait)
        except (RuntimeError, ValueError):
            return False
        return info.is_published()

    def on_connected(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` after every (re)connect: e.g. to restate a retained status that the
        broker replaced with the last will while we were away."""
        with self._lock:
            self._connect_hooks.append(hook)

    def subscribe(self, topic: str, handler: Handler, qos: int = 1) -> None:
        with self._lock:
            self._handlers[topic] = (qos, handler)
        if self.connected:
            self._client.subscribe(topic, qos)

    def _failed(self, error: str) -> None:
        """Keep (and log once, not at every retry) why connecting failed."""
        message = describe(self.config, error)
        if message != self.last_error:
            logger.warning("MQTT: %s", message)
        self.last_error = message

    def _on_paho_error(self, text: str) -> None:
        # TLS 1.3: a broker refusing our certificate says so after the handshake, on the
        # first read, which paho reports only in its log (its other errors say nothing new)
        if "SSL" in text and not self.connected:
            self._failed(text)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:  # type: ignore[no-untyped-def]
        if reason_code.is_failure:
            self._failed(f"connection refused: {reason_code}")
            return
        self.last_error = None
        logger.info("MQTT connected to %s:%s", self.config.host, self.config.port)
        with self._lock:
            subs = list(self._handlers.items())
            hooks = list(self._connect_hooks)
        for topic, (qos, _) in subs:
            client.subscribe(topic, qos)
        self._connected.set()
        for hook in hooks:
            try:
                hook()
            except Exception:
                logger.exception("MQTT on-connect hook failed")

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:  # type: ignore[no-untyped-def]
        if self._connected.is_set():
            logger.warning("MQTT disconnected from %s: %s", self.config.host, reason_code)
        self._connected.clear()

    def _on_message(self, client, userdata, message) -> None:  # type: ignore[no-untyped-def]
        import paho.mqtt.client as mqtt

        with self._lock:
            handlers = [
                h
                for t, (_, h) in self._handlers.items()
                if mqtt.topic_matches_sub(t, message.topic)
            ]
        for handler in handlers:
            try:
                handler(message.topic, bytes(message.payload))
            except Exception:
                logger.exception("MQTT handler for %s failed; message ignored", message.topic)
