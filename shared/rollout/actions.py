"""Promote and roll back: the two deliberate moves of a channel, for the cloud's commands
and the console's actions alike.

Both re-check the stored model the way a bin will (``artefact.verify_stored``, on LiteRT)
before anything moves, claim the channel's next generation with a conditional put
(``channels``), then send the retained MQTT notice when a broker is configured (bins that
miss it find the pointer by polling). Where LiteRT is missing the re-check fails with a
``NoInterpreterError`` named in the refusal: it is never skipped.
"""

import logging

from .. import messages
from ..artefact import verify_stored
from ..config import MqttConfig
from ..errors import RecyclopsError
from ..manifest import ModelRef
from ..store import ObjectStore
from .channels import ChannelError, advance, history, read_pointer
from .evidence import Evidence, RolloutError

logger = logging.getLogger(__name__)


class StoredModelError(RecyclopsError):
    """The version to move to does not pass the checks a bin runs; nothing moved."""


def notify(config: MqttConfig, pointer: ModelRef, timeout: float = 10.0) -> bool:
    """The retained notice; True once the broker acknowledged it. A broker that is down is a
    warning, not an error: devices also poll the store."""
    from ..mqtt import MqttClient, MqttError

    topic = messages.model_topic(config.fleet, pointer.channel)
    try:
        client = MqttClient(config)
        try:
            if not client.start(wait=timeout):
                logger.warning(
                    "MQTT broker %s:%s unreachable (%s); devices will find the model by polling",
                    config.host,
                    config.port,
                    client.last_error or "no answer",
                )
                return False
            if not client.publish(topic, pointer.notice_payload(), retain=True, wait=timeout):
                logger.warning("MQTT notice on %s not acknowledged; devices will poll", topic)
                return False
        finally:
            client.stop()
    except MqttError as exc:
        logger.warning("MQTT notice not sent (%s); devices will poll", exc)
        return False
    logger.info("notice retained on %s", topic)
    return True


def previous_version(store: ObjectStore, channel: str, current: str) -> str | None:
    """The version the channel served before its current one (None: it never served another)."""
    for pointer in reversed(history(store, channel)):
        if pointer.version != current:
            return pointer.version
    return None


def promote(
    store: ObjectStore,
    evidence: Evidence,
    mqtt_config: MqttConfig | None = None,
    *,
    notify_timeout: float = 10.0,
    by: str | None = None,
    expect_generation: int | None = None,
) -> ModelRef:
    """Point the target at the canary's version: a new generation, recorded as a publish.

    The target must still serve what the evidence was gathered against (a publish or
    rollback in between means judging again), and the canary's files are checked again
    the way a bin will check them before anything moves. ``by`` (who promoted) goes into
    the note; ``expect_generation``: the target's generation the operator confirmed."""
    if not evidence.sufficient:
        raise RolloutError("not promoting: " + "; ".join(evidence.missing))
    c, t = evidence.canary, evidence.target
    if c.version == t.version:
        raise RolloutError(f"channel {t.channel!r} already serves {c.version}")
    try:
        raw_sha = verify_stored(store, c.version)
    except RecyclopsError as exc:
        raise RolloutError(f"cannot promote {c.version}: {exc}") from None
    if raw_sha != c.manifest_sha256:
        raise RolloutError(
            f"{c.version}: the stored manifest is not the one channel {c.channel!r} names"
        )
    pointer = advance(
        store,
        t.channel,
        version=c.version,
        manifest_sha256=c.manifest_sha256,
        # "publish", not a new action: bins from before staged rollout parse pointers
        # strictly and would refuse an unknown one; the note says it was a promotion.
        action="publish",
        note=evidence.summary(by),
        expect_version=t.version,
        check_expected=True,
        expect_generation=expect_generation,
    )
    logger.info(
        "channel %s: %s promoted from %s (generation %d)%s",
        t.channel,
        c.version,
        c.channel,
        pointer.generation,
        f" by {by}" if by else "",
    )
    if mqtt_config is not None and mqtt_config.host:
        notify(mqtt_config, pointer, notify_timeout)
    return pointer


def rollback(
    store: ObjectStore,
    channel: str,
    to_version: str,
    mqtt_config: MqttConfig | None = None,
    *,
    note: str | None = None,
    notify_timeout: float = 10.0,
    expect_generation: int | None = None,
) -> ModelRef:
    """Point ``channel`` back at ``to_version`` with a new, higher generation (bins refuse
    anything older than what they serve, so going back is a deliberate, recorded act).

    The version must have served this channel before, and it is checked again the way a
    bin will check it (files, contract, golden set) before the channel moves.
    """
    past = history(store, channel)
    current = read_pointer(store, channel)
    if current is not None and current.version == to_version:
        raise ChannelError(f"channel {channel!r} already serves {to_version}")
    served = {p.version for p in past} | ({current.version} if current else set())
    if to_version not in served:
        raise ChannelError(
            f"{to_version} never served channel {channel!r} "
            f"(it served: {', '.join(sorted(served)) or 'nothing'}); publish it instead"
        )
    try:
        manifest_sha = verify_stored(store, to_version)
    except RecyclopsError as exc:
        raise StoredModelError(f"cannot roll back to {to_version}: {exc}") from None
    pointer = advance(
        store,
        channel,
        version=to_version,
        manifest_sha256=manifest_sha,
        action="rollback",
        note=note,
        expect_generation=expect_generation,
    )
    logger.info(
        "channel %s rolled back to %s (generation %d)", channel, to_version, pointer.generation
    )
    if mqtt_config is not None and mqtt_config.host:
        notify(mqtt_config, pointer, notify_timeout)
    return pointer
