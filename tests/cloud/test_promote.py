"""Staged rollout on a real S3 store: ``promote`` moves a canary's model to stable only on the
fleet's telemetry, and ``watch`` rolls a canary back when it serves worse.

Models are the edge fixture (a real LiteRT model with its golden set) stored under two
version names, so the re-checks before a channel moves run for real; channels move with
``channels.advance`` as ``publish`` does; telemetry is written with ``store_quality``.
"""

import json
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from math import comb
from pathlib import Path

import pytest

from recyclops.app.cli import main
from recyclops.cloud.channels import advance, history, latest
from recyclops.cloud.promote import gather, judge, promote
from recyclops.cloud.stats import fisher_greater
from recyclops.cloud.watch import watch_once
from recyclops.shared import layout
from recyclops.shared.config import RolloutConfig
from recyclops.shared.hashing import sha256_bytes
from recyclops.shared.messages import DeviceQuality
from recyclops.shared.quality import store_quality
from recyclops.shared.store import ObjectStore, S3Store

FIXTURE = Path(__file__).resolve().parents[1] / "edge" / "fixture"
NOW = datetime.now(UTC)


def store_model(store: ObjectStore, version: str) -> str:
    """The fixture model's files and manifest under ``version``; the manifest's SHA-256."""
    for name in (layout.MODEL_FILE, "golden.npz"):
        store.put(layout.model_file_key(version, name), (FIXTURE / name).read_bytes())
    manifest = json.loads((FIXTURE / "manifest.json").read_text())
    manifest["version"] = version
    raw = json.dumps(manifest, indent=2).encode()
    store.put(layout.manifest_key(version), raw)
    return sha256_bytes(raw)


def advance_at(store: ObjectStore, channel: str, version: str, sha: str, days_ago: float) -> None:
    """``channels.advance``, then dated back (as if published ``days_ago``)."""
    pointer = advance(store, channel, version=version, manifest_sha256=sha)
    when = NOW - timedelta(days=days_ago)
    data = pointer.model_copy(update={"published_at": when}).model_dump_json().encode()
    store.put(layout.channel_generation_key(channel, pointer.generation), data)
    store.put(layout.channel_key(channel), data)


@pytest.fixture
def fleet(s3_store: S3Store, s3_server, monkeypatch) -> S3Store:
    """stable serves v1 (for 30 days); the canary served v1, then v2 (for a day)."""
    monkeypatch.setenv("RECYCLOPS_STORE__ENDPOINT_URL", s3_server.endpoint_url)
    monkeypatch.delenv("RECYCLOPS_CONFIG", raising=False)
    shas = {v: store_model(s3_store, v) for v in ("v1", "v2")}
    advance_at(s3_store, "stable", "v1", shas["v1"], days_ago=30)
    advance_at(s3_store, "canary", "v1", shas["v1"], days_ago=20)
    advance_at(s3_store, "canary", "v2", shas["v2"], days_ago=1)
    return s3_store


def report(
    store: ObjectStore,
    device: str,
    version: str | list[str],
    *,
    hours_ago: float = 2.0,
    frames: int = 0,
    low: int = 0,
    agreed: int = 0,
    disagreed: int = 0,
    shadow: tuple[str, int, int, int] | None = None,
) -> None:
    """One hour-long period of a bin's telemetry, stored as the bin uploads it; ``shadow``:
    (candidate version, frames, agreed, low confidence) when the bin shadowed one."""
    versions = [version] if isinstance(version, str) else version
    extra = {}
    if shadow is not None:
        extra = dict(
            zip(
                ("shadow_version", "shadow_frames", "shadow_agreed", "shadow_low_confidence"),
                shadow,
                strict=True,
            )
        )
    start = NOW - timedelta(hours=hours_ago)
    store_quality(
        store,
        DeviceQuality(
            device=device,
            run="r1",
            period_start=start,
            period_end=start + timedelta(hours=1),
            period_seconds=3600,
            uptime_seconds=7200,
            model_version=versions[-1],
            model_generation=1,
            model_versions=versions,
            frames=frames,
            low_confidence=low,
            low_confidence_threshold=0.5,
            presses=agreed + disagreed,
            presses_agreed=agreed,
            presses_disagreed=disagreed,
            **extra,
        ),
    )


def cli(store: S3Store, *args: str) -> list[str]:
    return [*args, "--store", store.url, "--no-notify"]


def test_fisher_greater_is_the_exact_hypergeometric_tail() -> None:
    # 5 of 10 against 1 of 10: P(X >= 5), X hypergeometric(20 drawn 10, 6 positives)
    exact = sum(Fraction(comb(6, k) * comb(14, 10 - k), comb(20, 10)) for k in range(5, 7))
    assert fisher_greater(5, 10, 1, 10) == pytest.approx(float(exact), rel=1e-12)
    assert fisher_greater(91, 1000, 60, 1000) == pytest.approx(0.0054528, rel=1e-4)  # scipy
    assert fisher_greater(0, 0, 5, 10) == 1.0 and fisher_greater(1, 10, 9, 10) > 0.999


def test_periods_are_counted_for_the_version_served_and_mixed_periods_left_out(fleet) -> None:
    report(fleet, "bin-a", "v1", frames=100, agreed=10, disagreed=1)
    report(fleet, "bin-b", "v1", hours_ago=5, frames=50, low=5)  # then moved to the canary
    report(fleet, "bin-b", "v2", frames=70, low=7, agreed=3)
    report(fleet, "bin-b", ["v1", "v2"], hours_ago=3.5, frames=999)  # the switch: unsplittable
    report(fleet, "bin-c", "v2", hours_ago=24 * 9, frames=999)  # outside the window
    telemetry = gather(fleet, NOW - timedelta(days=7), NOW)
    v1, v2 = telemetry.of("v1"), telemetry.of("v2")
    assert (v1.bins, v1.frames, v1.low_confidence, v1.predicted) == ({"bin-a", "bin-b"}, 150, 5, 11)
    assert (v2.bins, v2.frames, v2.low_confidence, v2.predicted) == ({"bin-b"}, 70, 7, 3)
    assert telemetry.mixed_periods == 1


def test_the_window_starts_when_the_canary_moved(fleet) -> None:
    """Stable's periods from before the canary got v2 are not set against v2's."""
    report(fleet, "bin-s", "v1", frames=4000, agreed=400)
    report(fleet, "bin-s", "v1", hours_ago=30, frames=9000, agreed=900)  # before v2 was out
    report(fleet, "bin-c", "v2", frames=2500, agreed=300)
    evidence = judge(fleet, RolloutConfig(since_days=7))
    assert (evidence.target_tally.frames, evidence.canary_tally.frames) == (4000, 2500)
    assert evidence.telemetry.since == evidence.canary.published_at
    assert evidence.sufficient, evidence.missing


def test_promote_refuses_too_few_frames_and_says_what_is_missing(fleet, capsys) -> None:
    report(fleet, "bin-s", "v1", frames=5000, low=250, agreed=940, disagreed=60)
    report(fleet, "bin-c", "v2", frames=812, low=40, agreed=20, disagreed=1)
    code = main(cli(fleet, "promote", "--from", "canary", "--to", "stable", "--min-presses", "100"))
    out = capsys.readouterr().out
    assert code == 3, out
    assert "canary (v2): 812 of 2,000 frames" in out
    assert "canary (v2): 21 of 100 operator presses with a prediction" in out
    assert "stable (v1)" not in out.split("not promoting")[1]  # stable has its evidence
    pointer = latest(fleet, "stable")
    assert pointer is not None and (pointer.version, pointer.generation) == ("v1", 1)


def test_promote_refuses_a_worse_correction_rate(fleet, capsys) -> None:
    report(fleet, "bin-s", "v1", frames=3000, low=150, agreed=940, disagreed=60)
    report(fleet, "bin-c", "v2", frames=3000, low=150, agreed=909, disagreed=91)
    code = main(cli(fleet, "promote", "--from", "canary", "--to", "stable"))
    out = capsys.readouterr().out
    assert code == 3, out
    assert "correction rate 9.1% vs 6.0%, worse, p = 0.0055" in out
    assert "low-confidence rate" not in out.split("not promoting")[1]  # equal: not a reason
    assert [p.version for p in history(fleet, "stable")] == ["v1"]


def test_promote_on_evidence_advances_stable_with_the_evidence_recorded(fleet, capsys) -> None:
    for device in ("bin-s1", "bin-s2"):
        report(fleet, device, "v1", frames=1500, low=90, agreed=470, disagreed=30)
    report(fleet, "bin-c", "v2", frames=2500, low=100, agreed=485, disagreed=15)
    code = main(cli(fleet, "promote", "--from", "canary", "--to", "stable", "--since", "3"))
    out = capsys.readouterr().out
    assert code == 0, out
    pointer = latest(fleet, "stable")
    assert pointer is not None
    # recorded as a publish (older bins know no other action), the note says it was a promotion
    assert (pointer.version, pointer.generation, pointer.action) == ("v2", 2, "publish")
    assert pointer.note is not None and pointer.note.startswith("promoted from canary")
    assert "correction rate 3.0% vs 6.0%" in pointer.note and "2,500 frames" in pointer.note
    assert "now serves v2 (generation 2, promoted from 'canary')" in out
    # again: stable already serves it, nothing moves
    assert main(cli(fleet, "promote")) == 0
    assert "already serves v2" in capsys.readouterr().out
    assert [p.generation for p in history(fleet, "stable")] == [1, 2]


def test_the_evidence_shows_stable_bins_shadowing_the_canary(fleet) -> None:
    report(fleet, "bin-s1", "v1", frames=3000, agreed=500, shadow=("v2", 600, 540, 30))
    report(fleet, "bin-s2", "v1", frames=3000, agreed=500, shadow=("v2", 400, 380, 20))
    report(fleet, "bin-s3", "v1", frames=100, shadow=("v0", 50, 10, 40))  # another candidate
    report(fleet, "bin-c", "v2", frames=3000, agreed=500)
    evidence = judge(fleet, RolloutConfig())
    line = "shadow on stable bins: agreement 92.0% over 1,000 frames, candidate low-confidence 5.0%"
    assert line in evidence.lines() and line in evidence.summary()
    assert evidence.sufficient  # informational: the rule is unchanged
    assert not any("v0" in text or "shadow" in text for text in evidence.missing)


def test_promote_refuses_when_stable_moved_since_the_evidence(fleet) -> None:
    report(fleet, "bin-s", "v1", frames=3000, agreed=500)
    report(fleet, "bin-c", "v2", frames=3000, agreed=500)
    evidence = judge(fleet, RolloutConfig())
    assert evidence.sufficient, evidence.missing
    advance(fleet, "stable", version="v2", manifest_sha256=evidence.canary.manifest_sha256)
    with pytest.raises(Exception, match="judge it again"):
        promote(fleet, evidence)


def test_watch_halts_a_degrading_canary_with_a_recorded_reason(fleet, capsys) -> None:
    report(fleet, "bin-s", "v1", frames=2000, low=100, agreed=380, disagreed=20)
    report(fleet, "bin-c", "v2", frames=800, low=40, agreed=85, disagreed=15)
    code = main(cli(fleet, "watch", "--channel", "canary", "--against", "stable", "--once"))
    out = capsys.readouterr().out
    assert code == 3, out
    assert "canary: halted" in out
    pointer = latest(fleet, "canary")
    assert pointer is not None
    assert (pointer.version, pointer.generation, pointer.action) == ("v1", 3, "rollback")
    assert pointer.note is not None and pointer.note.startswith("automatic halt of v2")
    assert "correction rate 15.0% vs 5.0%, worse" in pointer.note
    assert "+10.0 points > 3.0" in pointer.note
    # the canary now serves what stable serves: nothing left to compare
    assert watch_once(fleet, RolloutConfig()).verdict == "idle"


def test_watch_leaves_a_healthy_canary_alone(fleet) -> None:
    report(fleet, "bin-s", "v1", frames=2000, low=100, agreed=380, disagreed=20)
    report(fleet, "bin-c", "v2", frames=800, low=44, agreed=94, disagreed=6)
    result = watch_once(fleet, RolloutConfig())
    assert result.verdict == "healthy", result.lines
    assert any(line.startswith("correction rate 6.0% vs 5.0%") for line in result.lines)
    pointer = latest(fleet, "canary")
    assert pointer is not None and (pointer.version, pointer.generation) == ("v2", 2)


def test_watch_does_not_halt_on_a_worse_rate_within_the_margin(fleet) -> None:
    """Worse beyond noise but by less than the margin: judged healthy, not rolled back."""
    report(fleet, "bin-s", "v1", frames=20000, low=1000, agreed=9500, disagreed=500)
    report(fleet, "bin-c", "v2", frames=20000, low=1300, agreed=9350, disagreed=650)
    result = watch_once(fleet, RolloutConfig(halt_margin=0.03))
    assert result.verdict == "healthy", result.lines
    assert any("worse, p = " in line for line in result.lines)  # beyond noise, within margin


def test_watch_waits_for_enough_telemetry(fleet) -> None:
    report(fleet, "bin-s", "v1", frames=2000, agreed=400)
    report(fleet, "bin-c", "v2", frames=100, low=90, agreed=5, disagreed=5)
    result = watch_once(fleet, RolloutConfig())
    assert result.verdict == "waiting", result.lines
    assert "low-confidence rate: 100 of 500 frames on the smaller side" in result.lines
