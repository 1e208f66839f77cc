"""The models page's promote and rollback actions through the API, on a real SeaweedFS store
with the real LiteRT re-check: refused without evidence (exactly what is missing, nothing
moved), behind every rule the review's writes obey, one winner when two operators confirm
the same step, and a clear failure where LiteRT is missing."""

import sys
import threading
from typing import Any

import pytest
from clean_helpers import request
from rollout_helpers import OPERATOR, console, evidence_for_v2, seed_fleet, too_little_for_v2

from recyclops.console.actions import ModelActions
from recyclops.shared import layout
from recyclops.shared.config import RolloutConfig
from recyclops.shared.manifest import ModelRef, parse_pointer
from recyclops.shared.rollout.channels import ChannelError, history, latest, read_pointer
from recyclops.shared.store import ObjectStore

TOKEN = "t0ken-for-the-tests-0123456789"


def gens(store: ObjectStore, channel: str) -> list[tuple[int, str]]:
    return [(p.generation, p.version) for p in history(store, channel)]


def test_promote_is_refused_without_evidence_and_nothing_moves(s3_store: ObjectStore) -> None:
    seed_fleet(s3_store)
    too_little_for_v2(s3_store)
    with console(s3_store) as (_, base):
        status, plan, _ = request(base, "GET", "/api/models/promote?from=canary&to=stable")
        assert status == 200 and plan["sufficient"] is False
        assert plan["headline"] == "not promoting v2 to 'stable':"
        assert plan["missing"] == ["canary (v2): 812 of 2,000 frames"]  # the CLI's words
        assert (plan["canary"], plan["target"]) == (
            {"version": "v2", "generation": 2},
            {"version": "v1", "generation": 1},
        )
        body = {"from": "canary", "to": "stable", "version": "v2", "generation": 1}
        status, answer, _ = request(base, "POST", "/api/models/promote", body)
        assert status == 409, answer
        assert answer["error"] == "not promoting v2 to 'stable':"
        assert answer["missing"] == ["canary (v2): 812 of 2,000 frames"]
        assert gens(s3_store, "stable") == [(1, "v1")]


def test_promote_on_evidence_records_the_operator(s3_store: ObjectStore) -> None:
    seed_fleet(s3_store)
    evidence_for_v2(s3_store)
    with console(s3_store) as (_, base):
        status, plan, _ = request(base, "GET", "/api/models/promote?from=canary&to=stable")
        assert status == 200 and plan["sufficient"] is True, plan
        assert plan["plan"].startswith("channel 'stable': v1 (generation 1) → v2 (generation 2)")
        assert "bins pick the change up by polling" in plan["plan"]  # no broker configured
        stale = {"from": "canary", "to": "stable", "version": "v9", "generation": 1}
        status, answer, _ = request(base, "POST", "/api/models/promote", stale)
        assert status == 409 and "not v9 as confirmed" in answer["error"]
        body = {**stale, "version": "v2"}
        status, answer, _ = request(base, "POST", "/api/models/promote", body)
        assert status == 200, answer
        assert answer["pointer"] == {"version": "v2", "generation": 2}
        assert answer["message"] == (
            "channel 'stable' now serves v2 (generation 2, promoted from 'canary')"
        )
        pointer = latest(s3_store, "stable")
        assert pointer is not None and pointer.action == "publish"
        assert pointer.note is not None
        assert pointer.note.startswith(f"promoted from canary by {OPERATOR} (console) on ")
        assert "correction rate 3.0% vs 6.0%" in pointer.note
        # the same click again: stable already serves v2, nothing moves
        status, answer, _ = request(base, "POST", "/api/models/promote", body)
        assert status == 409 and "already serves v2" in answer["error"]
        assert gens(s3_store, "stable") == [(1, "v1"), (2, "v2")]


def test_rollback_is_a_new_generation_with_who_and_why(s3_store: ObjectStore) -> None:
    seed_fleet(s3_store)
    with console(s3_store) as (_, base):
        status, plan, _ = request(base, "GET", "/api/models/rollback?channel=canary")
        assert status == 200 and plan["choices"] == ["v1"]
        assert plan["current"] == {"version": "v2", "generation": 2}
        assert request(base, "GET", "/api/models/rollback?channel=..%2Fx")[0] == 400
        never = {"channel": "canary", "to": "v7", "generation": 2}
        status, answer, _ = request(base, "POST", "/api/models/rollback", never)
        assert status == 409 and "v7 never served channel 'canary'" in answer["error"]
        body = {"channel": "canary", "to": "v1", "generation": 2, "note": "v2 misreads glass"}
        status, answer, _ = request(base, "POST", "/api/models/rollback", body)
        assert status == 200, answer
        assert answer["message"] == "channel 'canary' now serves v1 again (generation 3)"
        assert "polling" in answer["notice"]
        pointer = latest(s3_store, "canary")
        assert pointer is not None and (pointer.version, pointer.action) == ("v1", "rollback")
        assert pointer.note == f"rolled back by {OPERATOR} (console): v2 misreads glass"
        assert s3_store.get(layout.channel_key("canary")) == pointer.pointer_json()


def test_actions_obey_the_token_and_same_origin_rules(s3_store: ObjectStore) -> None:
    seed_fleet(s3_store)
    body = {"channel": "canary", "to": "v1", "generation": 2}
    with console(s3_store, host="0.0.0.0", token=TOKEN) as (_, base):
        right = {"X-Recyclops-Token": TOKEN}
        status, answer, _ = request(base, "POST", "/api/models/rollback", body)
        assert status == 401 and "token" in answer["error"]
        assert request(base, "GET", "/api/models/rollback?channel=canary")[0] == 401
        wrong = {"X-Recyclops-Token": "wrong-token-wrong-token"}
        assert request(base, "POST", "/api/models/rollback", body, wrong)[0] == 401
        foreign = {**right, "Origin": "http://evil.example"}
        status, answer, _ = request(base, "POST", "/api/models/rollback", body, foreign)
        assert status == 403 and "cross-origin" in answer["error"]
        cross = {**right, "Sec-Fetch-Site": "cross-site"}
        assert request(base, "POST", "/api/models/rollback", body, cross)[0] == 403
        form = {**right, "Content-Type": "text/plain"}
        assert request(base, "POST", "/api/models/rollback", body, form)[0] == 403
        big = {**body, "note": "x" * 5000}
        assert request(base, "POST", "/api/models/rollback", big, right)[0] == 413
        assert gens(s3_store, "canary") == [(1, "v1"), (2, "v2")]  # nothing moved
        same = {**right, "Origin": base}
        status, answer, _ = request(base, "POST", "/api/models/rollback", body, same)
        assert status == 200, answer  # the refusals above were the rules, not the request
    with console(s3_store) as (_, base):  # loopback: no token, but no DNS rebinding either
        evil = {"Host": "evil.example"}
        assert request(base, "POST", "/api/models/rollback", body, evil)[0] == 403
        assert (
            request(base, "GET", "/api/models/promote?from=canary&to=stable", None, evil)[0] == 403
        )
    assert gens(s3_store, "canary") == [(1, "v1"), (2, "v2"), (3, "v1")]


def test_two_operators_confirming_at_once_do_not_both_win(s3_store: ObjectStore) -> None:
    seed_fleet(s3_store)
    evidence_for_v2(s3_store)
    with console(s3_store) as (_, base):
        body = {"from": "canary", "to": "stable", "version": "v2", "generation": 1}
        start = threading.Barrier(2)
        answers: list[tuple[int, Any]] = []

        def click() -> None:
            start.wait()
            status, answer, _ = request(base, "POST", "/api/models/promote", body)
            answers.append((status, answer))

        threads = [threading.Thread(target=click) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sorted(status for status, _ in answers) == [200, 409], answers
        assert gens(s3_store, "stable") == [(1, "v1"), (2, "v2")]


class RivalFirst:
    """The store, but another operator's claim of the same generation lands just before our
    conditional put of it: the put itself must refuse ours."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self.rival: ModelRef | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def put(self, key: str, data: bytes, *, if_absent: bool = False) -> bool:
        if if_absent and layout.parse_generation_key(key) is not None and self.rival is None:
            ours = parse_pointer(data, key)
            self.rival = ours.model_copy(update={"version": "v2", "note": "rival"})
            assert self.store.put(key, self.rival.pointer_json(), if_absent=True)
        return self.store.put(key, data, if_absent=if_absent)


def test_the_conditional_put_refuses_the_second_claim(s3_store: ObjectStore) -> None:
    seed_fleet(s3_store)
    rival = RivalFirst(s3_store)
    acts = ModelActions(rival, RolloutConfig(), None, operator=OPERATOR)  # type: ignore[arg-type]
    with pytest.raises(ChannelError, match="another publisher claimed generation 3 first"):
        acts.rollback({"channel": "canary", "to": "v1", "generation": 2})
    assert rival.rival is not None and rival.rival.generation == 3
    assert gens(s3_store, "canary") == [(1, "v1"), (2, "v2"), (3, "v2")]  # the rival's
    assert latest(s3_store, "canary") == rival.rival
    pointer = read_pointer(s3_store, "canary")  # ours never touched the pointer
    assert pointer is not None and pointer.generation == 2


def test_without_litert_the_action_fails_and_says_so(s3_store: ObjectStore, monkeypatch) -> None:
    seed_fleet(s3_store)
    for module in ("ai_edge_litert", "ai_edge_litert.interpreter", "tensorflow"):
        monkeypatch.setitem(sys.modules, module, None)  # as on an install without them
    with console(s3_store) as (_, base):
        body = {"channel": "canary", "to": "v1", "generation": 2}
        status, answer, _ = request(base, "POST", "/api/models/rollback", body)
        assert status == 409, answer
        assert answer["error"].startswith("cannot roll back to v1: no TFLite interpreter")
        assert "pip install ai-edge-litert" in answer["error"]
    assert gens(s3_store, "canary") == [(1, "v1"), (2, "v2")]
