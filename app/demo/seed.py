"""Seed a store as if a bin had gathered items by keypad, and keep some frames for replay.

Real gathering is noisy: an operator sometimes presses the wrong key. The seed does the
same on purpose (a few wrong presses, recorded as such), so the review pass has something
to correct, and every later number is measured against the true labels.
"""

import json
import logging
import random
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

from recyclops.shared.gathered import store_gathered
from recyclops.shared.hashing import sha256_bytes
from recyclops.shared.records import GatheredRecord
from recyclops.shared.store import ObjectStore

logger = logging.getLogger(__name__)


def sample_dir() -> Path:
    """The 100-per-class TrashNet sample shipped with the package (192x144 JPEGs)."""
    return Path(str(resources.files("recyclops.app.demo") / "sample"))


@dataclass
class Seeded:
    truth: dict[str, str] = field(default_factory=dict)  # sha256 -> true category
    pressed: dict[str, str] = field(default_factory=dict)  # sha256 -> key the operator pressed
    replay: list[tuple[Path, str]] = field(default_factory=list)  # held-out frame, true label

    @property
    def mistakes(self) -> list[str]:
        return [sha for sha, label in self.pressed.items() if label != self.truth[sha]]


def seed_store(
    store: ObjectStore,
    categories: list[str],
    replay_dir: Path,
    *,
    source: Path | None = None,
    per_class: int = 100,
    held_out: int = 15,
    wrong_presses: int = 6,
    device: str = "demo-bin",
    seed: int = 7,
) -> Seeded:
    """Upload ``per_class - held_out`` images per category as keypad gathers; copy the
    held-out ones into ``replay_dir`` (what the demo camera replays)."""
    rng = random.Random(seed)
    source = source or sample_dir()
    replay_dir.mkdir(parents=True, exist_ok=True)
    out = Seeded()
    start = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    gathered: list[tuple[Path, str]] = []
    for category in categories:
        files = sorted((source / category).glob("*.jpg"))[:per_class]
        if len(files) <= held_out:
            raise ValueError(f"sample has only {len(files)} images of {category!r}")
        rng.shuffle(files)
        for path in files[:held_out]:
            out.replay.append((path, category))
        gathered += [(path, category) for path in files[held_out:]]
    wrong = set(rng.sample(range(len(gathered)), min(wrong_presses, len(gathered))))
    for i, (path, category) in enumerate(gathered):
        data = path.read_bytes()
        sha = sha256_bytes(data)
        pressed = category
        if i in wrong:
            pressed = rng.choice([c for c in categories if c != category])
        when = start + timedelta(seconds=37 * i)
        record = GatheredRecord(
            sha256=sha,
            label=pressed,
            device=device,
            captured_at=when,
            width=None,
            height=None,
        )
        store_gathered(store, record, data)
        out.truth[sha] = category
        out.pressed[sha] = pressed
    rng.shuffle(out.replay)
    for n, (path, _) in enumerate(out.replay):
        shutil.copyfile(path, replay_dir / f"{n:03d}.jpg")
    (replay_dir.parent / "replay-truth.json").write_text(
        json.dumps({f"{n:03d}.jpg": c for n, (_, c) in enumerate(out.replay)}, indent=1)
    )
    out.replay = [(replay_dir / f"{n:03d}.jpg", c) for n, (_, c) in enumerate(out.replay)]
    logger.info(
        "seeded %d gathers (%d wrong presses), %d replay frames",
        len(out.truth),
        len(out.mistakes),
        len(out.replay),
    )
    return out
