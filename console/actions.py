"""The models page's two actions: promote a channel's model to another channel on the fleet's
evidence, and roll a channel back to a version it served before.

Each is two steps, as on the page: a look (``*_plan``: what would happen, and for a
promotion the evidence and what is missing, in the words ``recyclops promote`` prints),
then the act, which carries what the operator confirmed (the versions and the channel's
generation) and is refused when the channel moved meanwhile. The act itself is the cloud's
own code in ``shared/rollout``: the stored model is re-checked on LiteRT the way a bin will
(where LiteRT is missing the action fails and says so), the next generation is claimed with
a conditional put (of two operators who confirmed the same step, one wins), the operator's
name goes into the generation's note, then the MQTT notice goes out when a broker is
configured (otherwise the bins find the new pointer by polling).
"""

import logging
from dataclasses import dataclass
from typing import Any

from recyclops.shared import messages
from recyclops.shared.config import MqttConfig, RolloutConfig
from recyclops.shared.errors import RecyclopsError
from recyclops.shared.manifest import ModelRef
from recyclops.shared.primitives import is_safe_segment
from recyclops.shared.rollout import actions
from recyclops.shared.rollout.channels import ChannelError, history, latest
from recyclops.shared.rollout.evidence import Evidence, judge
from recyclops.shared.store import ObjectStore

logger = logging.getLogger(__name__)

NOTE_LIMIT = 1000


class BadInput(RecyclopsError):
    """A request names no valid channel, version or generation (a 400)."""


class Refused(RecyclopsError):
    """A promotion the evidence does not carry: nothing changed. ``missing`` says why."""

    def __init__(self, message: str, missing: list[str], lines: list[str]) -> None:
        super().__init__(message)
        self.missing = missing
        self.lines = lines


def _ref(p: ModelRef | None) -> dict[str, Any] | None:
    return None if p is None else {"version": p.version, "generation": p.generation}


def _name(value: Any, field: str) -> str:
    """A channel or version name, as the store's keys allow."""
    if not isinstance(value, str) or not is_safe_segment(value):
        raise BadInput(f"{field} must be a channel or version name")
    return value


def _need(body: dict[str, Any], field: str, kind: type) -> Any:
    value = body.get(field)
    if kind is int:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise BadInput(f"{field} must be a generation number")
        return value
    return _name(value, field)


@dataclass
class ModelActions:
    """Promote and rollback for one console: its store, rollout rules, broker and operator."""

    store: ObjectStore
    rollout: RolloutConfig
    mqtt: MqttConfig | None
    operator: str

    @property
    def by(self) -> str:
        return f"{self.operator} (console)"

    def _notice(self, pointer: ModelRef | None = None) -> str:
        """What the bins will be told, and how (or, after the act, what they were told)."""
        if self.mqtt is None or not self.mqtt.host:
            return "no MQTT broker configured here: the bins pick the change up by polling"
        if pointer is None:
            return f"a retained MQTT notice on {self.mqtt.host} tells the bins at once"
        topic = messages.model_topic(self.mqtt.fleet, pointer.channel)
        if actions.notify(self.mqtt, pointer):
            return f"MQTT notice retained on {topic}"
        return f"the MQTT notice on {topic} was not acknowledged: the bins will poll"

    # -- promote ------------------------------------------------------------------------
    def _judge(self, source: str, target: str) -> Evidence:
        _name(source, "from"), _name(target, "to")
        if source == target:
            raise ChannelError("promote needs two different channels")
        return judge(self.store, self.rollout, canary=source, target=target)

    def promote_plan(self, source: str, target: str) -> dict[str, Any]:
        """The evidence for promoting ``source``'s model to ``target``, and what would happen."""
        ev = self._judge(source, target)
        c, t = ev.canary, ev.target
        already = c.version == t.version
        plan = (
            f"channel {target!r}: {t.version} (generation {t.generation}) → {c.version} "
            f"(generation {t.generation + 1}), promoted from {source!r}; the stored "
            f"{c.version} is checked on LiteRT first; {self._notice()}"
        )
        return {
            "from": source,
            "to": target,
            "canary": _ref(c),
            "target": _ref(t),
            "lines": ev.lines(),
            "missing": ev.missing,
            "sufficient": ev.sufficient and not already,
            "already": already,
            "headline": (
                f"{target!r} already serves {c.version}: nothing to promote"
                if already
                else f"the evidence holds: {c.version} may be promoted to {target!r}"
                if ev.sufficient
                else f"not promoting {c.version} to {target!r}:"
            ),
            "plan": plan,
        }

    def promote(self, body: dict[str, Any]) -> dict[str, Any]:
        """Judge again, then promote exactly what was confirmed (version and generation)."""
        source, target = _need(body, "from", str), _need(body, "to", str)
        version, generation = _need(body, "version", str), _need(body, "generation", int)
        ev = self._judge(source, target)
        c, t = ev.canary, ev.target
        if c.version != version:
            raise ChannelError(
                f"channel {source!r} now serves {c.version}, not {version} as confirmed: "
                "nothing was changed (look again)"
            )
        if c.version == t.version:
            raise ChannelError(f"{target!r} already serves {c.version}: nothing to promote")
        if not ev.sufficient:
            raise Refused(f"not promoting {c.version} to {target!r}:", ev.missing, ev.lines())
        pointer = actions.promote(self.store, ev, by=self.by, expect_generation=generation)
        logger.warning("console: %s promoted %s to %s", self.operator, c.version, target)
        return {
            "ok": True,
            "pointer": _ref(pointer),
            "message": (
                f"channel {target!r} now serves {pointer.version} (generation "
                f"{pointer.generation}, promoted from {source!r})"
            ),
            "notice": self._notice(pointer),
        }

    # -- rollback -----------------------------------------------------------------------
    def rollback_plan(self, channel: str) -> dict[str, Any]:
        """What the channel can go back to: every version it served but the current one,
        the one it served just before first."""
        current = latest(self.store, _name(channel, "channel"))
        if current is None:
            raise ChannelError(f"channel {channel!r} serves nothing: nothing to roll back")
        choices: list[str] = []
        for p in reversed(history(self.store, channel)):
            if p.version != current.version and p.version not in choices:
                choices.append(p.version)
        return {
            "channel": channel,
            "current": _ref(current),
            "choices": choices,
            "plan": (
                f"channel {channel!r}: {current.version} (generation {current.generation}) → "
                f"the chosen version (generation {current.generation + 1}, a rollback); it is "
                f"checked on LiteRT first; {self._notice()}"
            ),
        }

    def rollback(self, body: dict[str, Any]) -> dict[str, Any]:
        channel, to_version = _need(body, "channel", str), _need(body, "to", str)
        generation = _need(body, "generation", int)
        reason = body.get("note")
        if reason is not None and not isinstance(reason, str):
            raise BadInput("note must be text")
        note = f"rolled back by {self.by}" + (f": {reason.strip()}" if reason else "")
        try:
            pointer = actions.rollback(
                self.store,
                channel,
                to_version,
                note=note[:NOTE_LIMIT],
                expect_generation=generation,
            )
        except actions.StoredModelError as exc:
            raise ChannelError(str(exc)) from None
        logger.warning("console: %s rolled %s back to %s", self.operator, channel, to_version)
        return {
            "ok": True,
            "pointer": _ref(pointer),
            "message": (
                f"channel {channel!r} now serves {pointer.version} again "
                f"(generation {pointer.generation})"
            ),
            "notice": self._notice(pointer),
        }
