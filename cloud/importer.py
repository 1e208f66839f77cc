"""``recyclops import``: a labelled data set into the store as ordinary review decisions.

Images go to ``images/<sha256>.jpg`` only if absent, like the edge's uploads (JPEG files byte
for byte; anything else re-encoded once to JPEG, since every reader treats the object as
one). Each (image, label) claim gets a gathered record under ``gathered/<device>/`` because
the review queue shows gathered images only and flags one sha gathered under two labels. The
labels are one journal of plain ``Decision`` lines, so setup reads them as verified and a
later review wins; the provenance sits beside it in ``labels/<session>.import.json``. Bytes
claimed under two labels are left unlabelled and reported. No TensorFlow: see docs/import.md.
"""

import io
import json
import logging
import socket
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PIL import Image
from pydantic import ValidationError

from ..shared import layout
from ..shared.errors import ImageError, ObjectNotFoundError, RecyclopsError, StoreError
from ..shared.hashing import sha256_bytes
from ..shared.journals import (
    Decision,
    Resolution,
    dump_journal,
    new_session_id,
    read_journals,
    resolve_labels,
    utcnow,
)
from ..shared.preprocess import decode_rgb
from ..shared.primitives import is_safe_segment
from ..shared.records import GatheredRecord
from ..shared.store import ObjectStore, validate_key
from ..shared.version import __version__

logger = logging.getLogger(__name__)

REPORT_SUFFIX = ".import.json"
JPEG_QUALITY = 95  # only for non-JPEG inputs; JPEG files are stored byte for byte
DEFAULT_DEVICE = "import"
MAX_GATHER_SEQ = 1000


class DataImportError(RecyclopsError):
    """The import cannot run (no such source, nothing to import, the store failed)."""


@dataclass
class Entry:
    """One file claimed to show ``label``; ``where`` says where the claim came from."""

    path: Path
    label: str
    where: str


@dataclass
class Skip:
    where: str
    reason: str  # "unknown category", "undecodable", "unreadable", "malformed row"
    detail: str = ""


@dataclass
class Conflict:
    """One image the import left unlabelled: claimed under several labels (``kind`` "import"),
    or its standing label from an earlier import differs (``kind`` "store"; ``store_label``
    and ``store_session`` name the standing label, if any, in both kinds)."""

    sha256: str
    kind: str
    labels: dict[str, list[str]]  # label -> where it was claimed
    store_label: str | None = None
    store_session: str | None = None


@dataclass
class ImportSummary:
    """What an import did; the CLI prints it and the report object carries it."""

    source: str
    session: str
    files: int = 0
    images: int = 0  # distinct image hashes among the readable files
    uploaded: int = 0
    already_stored: int = 0
    reencoded: int = 0
    labelled: int = 0  # new decisions in this run's journal
    already_labelled: int = 0  # the store's standing label is already the import's
    reviewed_differently: int = 0  # a reviewer's standing label differs: the review stands
    gathered_written: int = 0
    per_class: dict[str, int] = field(default_factory=dict)
    conflicts: list[Conflict] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    journal_key: str | None = None
    report_key: str | None = None
    seconds: float = 0.0


@dataclass
class _Prepared:
    entry: Entry
    sha256: str
    original_sha256: str
    captured: datetime  # the file's modification time: the best guess at when it was taken
    uploaded: bool


def check_categories(
    entries: Iterable[Entry], categories: Iterable[str]
) -> tuple[list[Entry], list[Skip]]:
    """Claims of a configured category, and the rest as skips (never a guess)."""
    cats = set(categories)
    known: list[Entry] = []
    skips: list[Skip] = []
    for entry in entries:
        if entry.label in cats:
            known.append(entry)
        else:
            hint = " (the names are lowercase)" if entry.label.lower() in cats else ""
            skips.append(Skip(entry.where, "unknown category", f"{entry.label!r}{hint}"))
    return known, skips


def _jpeg_bytes(data: bytes, where: str) -> bytes:
    """The bytes to store. Refuses what decode_rgb (every reader's decoder) cannot decode."""
    rgb = decode_rgb(data, where)
    if data[:3] == b"\xff\xd8\xff":
        return data
    buf = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buf, "JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def _prepare(store: ObjectStore, entry: Entry) -> _Prepared | Skip:
    """Read, check, hash and upload one file (only if its hash is not stored yet)."""
    try:
        original = entry.path.read_bytes()
        captured = datetime.fromtimestamp(entry.path.stat().st_mtime, UTC)
    except OSError as exc:
        return Skip(entry.where, "unreadable", exc.strerror or str(exc))
    try:
        data = _jpeg_bytes(original, entry.where)
    except ImageError as exc:
        return Skip(entry.where, "undecodable", str(exc).removeprefix(f"{entry.where}: "))
    sha = sha256_bytes(data)
    key = layout.image_key(sha)
    uploaded = not store.exists(key) and store.put(key, data, if_absent=True)
    return _Prepared(entry, sha, sha256_bytes(original), captured, uploaded)


def _upload_all(
    store: ObjectStore, entries: list[Entry], workers: int, progress: bool
) -> Iterator[_Prepared | Skip]:
    """Every entry prepared, in parallel, with a bar on a terminal. A store failure stops the
    whole import (nothing is labelled yet; a re-run resumes where it stopped)."""
    bar = _bar(len(entries), progress)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        try:
            for result in pool.map(lambda e: _prepare(store, e), entries):
                bar(1)
                yield result
        except StoreError as exc:
            pool.shutdown(cancel_futures=True)
            raise DataImportError(
                f"upload failed, nothing labelled (re-run to resume): {exc}"
            ) from exc
        finally:
            bar(0)


def _bar(total: int, enabled: bool) -> Callable[[int], None]:
    """A tqdm bar on stderr when it is a terminal; ``bar(0)`` closes it."""
    from tqdm import tqdm

    tq = tqdm(total=total, unit="img", desc="import", leave=False, disable=not enabled or None)

    def bar(n: int) -> None:
        tq.update(n) if n else tq.close()

    return bar


def _get_all(store: ObjectStore, keys: list[str], workers: int) -> dict[str, bytes]:
    """Parallel reads; keys that vanished are left out."""

    def get(key: str) -> tuple[str, bytes | None]:
        try:
            return key, store.get(key)
        except ObjectNotFoundError:
            return key, None

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return {k: v for k, v in pool.map(get, keys) if v is not None}


def _gathered_labels(
    store: ObjectStore, device: str, shas: set[str], workers: int
) -> dict[str, set[str]]:
    """Labels already gathered for these shas under ``device`` (what an earlier run wrote)."""
    wanted: dict[str, str] = {}
    for key in store.list(f"{layout.GATHERED}{device}/"):
        parsed = layout.parse_gathered_key(key)
        if parsed is not None and not parsed.undo and parsed.sha256 in shas:
            wanted[key] = parsed.sha256
    out: dict[str, set[str]] = defaultdict(set)
    for key, body in _get_all(store, list(wanted), workers).items():
        try:
            out[wanted[key]].add(GatheredRecord.model_validate_json(body).label)
        except ValidationError:
            logger.warning("%s: not a gathered record, ignored", key)
    return out


def _put_gathered(store: ObjectStore, record: GatheredRecord) -> str:
    """The first free sequence number of its day; a record with this label there is ours."""
    body = record.model_dump_json().encode("utf-8")
    for seq in range(1, MAX_GATHER_SEQ + 1):
        key = layout.gathered_key(record.device, record.captured_at.date(), record.sha256, seq)
        if store.put(key, body, if_absent=True):
            return key
        try:
            if GatheredRecord.model_validate_json(store.get(key)).label == record.label:
                return key
        except ValidationError:
            continue  # someone else's unreadable record: never overwrite it
    raise StoreError(f"{record.sha256[:12]}: more than {MAX_GATHER_SEQ} records in a day")


def _store_state(
    store: ObjectStore, workers: int
) -> tuple[dict[str, Resolution], set[str], list[str]]:
    """Resolved labels of every journal, the sessions that were imports (they have a report),
    and the image shas earlier import reports already listed as conflicts."""
    journals = read_journals(store, workers=workers)
    if journals.failures:  # labels not fully known: an import now could contradict them
        raise StoreError(journals.failures[0])
    reports = [k for k in store.list(layout.LABELS) if k.endswith(REPORT_SUFFIX)]
    recorded: list[str] = []
    for key, body in _get_all(store, reports, workers).items():
        try:
            recorded += [c["sha256"] for c in json.loads(body).get("conflicts", [])]
        except (ValueError, TypeError, KeyError, AttributeError):
            logger.warning("%s: unreadable import report, ignored", key)
    sessions = {k[len(layout.LABELS) : -len(REPORT_SUFFIX)] for k in reports}
    return resolve_labels(journals.decisions), sessions, recorded


def report_key(session: str) -> str:
    """Beside the journal, not a ``.jsonl``: journal readers never mistake it for decisions."""
    return validate_key(f"{layout.LABELS}{session}{REPORT_SUFFIX}")


def import_images(
    store: ObjectStore,
    entries: Iterable[Entry],
    categories: Iterable[str],
    *,
    source: str,
    who: str,
    skipped: Iterable[Skip] = (),
    device: str = DEFAULT_DEVICE,
    workers: int = 8,
    progress: bool = True,
    clock: Callable[[], datetime] = utcnow,
) -> tuple[ImportSummary, dict[str, Any]]:
    """Upload, record and label the claims (``source`` names them in the provenance);
    returns the summary and the report, stored too when anything new was written.
    Idempotent: see docs/import.md."""
    started = clock()
    cats = list(categories)
    if not is_safe_segment(device):
        raise DataImportError(f"device {device!r} is not a safe name (letters, digits, . _ -)")
    known, unknown = check_categories(entries, cats)
    skips = [*skipped, *unknown]
    if not known and not skips:
        raise DataImportError(f"{source}: no files to import")
    session = new_session_id(who, kind="import", anonymous="someone", now=started)
    summary = ImportSummary(source, session, files=len(known) + len(skips), skipped=skips)
    summary.per_class = dict.fromkeys(cats, 0)
    claims: dict[str, dict[str, list[_Prepared]]] = defaultdict(lambda: defaultdict(list))
    for result in _upload_all(store, known, workers, progress):
        if isinstance(result, Skip):
            summary.skipped.append(result)
            continue
        claims[result.sha256][result.entry.label].append(result)
        summary.uploaded += result.uploaded
        summary.reencoded += result.sha256 != result.original_sha256
    summary.images = len(claims)
    summary.already_stored = summary.images - summary.uploaded

    resolved, import_sessions, recorded = _store_state(store, workers)
    had = _gathered_labels(store, device, set(claims), workers)
    records = [  # one per (image, label), captured when its first file was last modified
        GatheredRecord(sha256=sha, label=label, device=device, captured_at=ps[0].captured)
        for sha, by_label in sorted(claims.items())
        for label, ps in sorted(by_label.items())
        if label not in had.get(sha, set())
    ]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        summary.gathered_written = len(list(pool.map(lambda r: _put_gathered(store, r), records)))
    new_conflict = False
    decisions: list[Decision] = []
    files: list[dict[str, Any]] = []
    for sha, by_label in sorted(claims.items()):
        status = _judge(summary, sha, by_label, resolved.get(sha), import_sessions)
        if status == "labelled":
            label, seq = next(iter(by_label)), len(decisions)
            mine = {"session": session, "time": started, "reviewer": who[:64]}
            decisions.append(Decision(sha256=sha, seq=seq, label=label, **mine))
            summary.per_class[label] += 1
        new_conflict |= status == "conflict" and sha not in recorded
        files += [_file_entry(p, status) for items in by_label.values() for p in items]
    summary.labelled = len(decisions)

    summary.report_key = report_key(session)
    if decisions:
        summary.journal_key = layout.labels_key(session)
    if not (decisions or new_conflict or summary.gathered_written):
        summary.report_key = None  # nothing new: the store is left exactly as it was
    summary.seconds = round((clock() - started).total_seconds(), 3)
    report = _report(summary, who, device, started=started.isoformat(), per_file=files)
    if summary.report_key:
        store.put(summary.report_key, report_bytes(report), if_absent=True)
    if summary.journal_key and not store.put(  # last: the journal makes the labels count
        summary.journal_key, dump_journal(decisions), if_absent=True
    ):
        raise DataImportError(f"{summary.journal_key} already exists")
    return summary, report


def _judge(
    summary: ImportSummary,
    sha: str,
    by_label: dict[str, list[_Prepared]],
    standing: Resolution | None,
    import_sessions: set[str],
) -> str:
    """What to do with one image: "labelled" (write a decision), "already" (the store agrees),
    "reviewed" (a reviewer's standing label wins) or "conflict" (left for review)."""
    label = standing.label if standing is not None else None
    session = standing.session if standing is not None and label is not None else None
    if len(by_label) == 1 and label in (None, *by_label):
        summary.already_labelled += label is not None
        return "labelled" if label is None else "already"
    if session is not None and session not in import_sessions:
        summary.reviewed_differently += 1
        return "reviewed"
    where = {lab: [p.entry.where for p in items] for lab, items in sorted(by_label.items())}
    kind = "import" if len(by_label) > 1 else "store"
    summary.conflicts.append(Conflict(sha, kind, where, label, session))
    return "conflict"


def _file_entry(p: _Prepared, status: str) -> dict[str, Any]:
    out = {"path": p.entry.where, "label": p.entry.label, "sha256": p.sha256, "status": status}
    if p.original_sha256 != p.sha256:
        out["original_sha256"] = p.original_sha256
    return out


def _report(summary: ImportSummary, who: str, device: str, **more: Any) -> dict[str, Any]:
    """Provenance: what was imported, from where, by whom, when, and what was left out."""
    return {"schema_version": 1, "kind": "import", "who": who, "host": socket.gethostname()} | {
        "recyclops": __version__,
        "device": device,
        "jpeg_quality_for_non_jpeg": JPEG_QUALITY,
        **asdict(summary),
        **more,
    }


def report_bytes(report: dict[str, Any]) -> bytes:
    """The report as stored (and as ``--report FILE`` writes it)."""
    return (json.dumps(report, indent=1) + "\n").encode("utf-8")
