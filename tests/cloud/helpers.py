"""Seeding a store the way the bins and the review tool would."""

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

from support.synthetic import shapes

from recyclops.shared import layout
from recyclops.shared.hashing import sha256_bytes
from recyclops.shared.journals import Decision, dump_journal
from recyclops.shared.store import ObjectStore

TINY_TOML = Path(__file__).resolve().parents[2] / "cloud" / "configs" / "tiny.toml"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
_seq = itertools.count()


def decision(
    sha: str,
    label: str | None,
    session: str = "s1",
    minutes: int = 0,
    action: str = "label",
    seq: int | None = None,
) -> Decision:
    return Decision(
        sha256=sha,
        session=session,
        seq=next(_seq) if seq is None else seq,
        time=T0 + timedelta(minutes=minutes),
        action=action,
        label=label,
    )


def seed_images(
    store: ObjectStore,
    categories: list[str],
    per_class: int,
    seed: int = 0,
    session: str = "review-1",
) -> dict[str, str]:
    """Upload synthetic images and one review journal labelling them all; sha -> label."""
    labels: dict[str, str] = {}
    decisions = []
    for label, images in shapes(categories, per_class, seed).items():
        for data in images:
            sha = sha256_bytes(data)
            store.put(layout.image_key(sha), data, if_absent=True)
            labels[sha] = label
            decisions.append(decision(sha, label, session))
    store.put(layout.labels_key(session), dump_journal(decisions))
    return labels
