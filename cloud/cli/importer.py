"""``recyclops import SOURCE``: a folder per category, or a CSV of path,label, into the store
as ordinary review decisions (docs/import.md). Never imports TensorFlow.

Exit status: 0 when every file was labelled or already was; 3 when files were skipped
(undecodable, unknown category, unreadable, malformed CSV row) or left for review (the same
bytes under two labels) — unless ``--allow-skipped`` / ``--allow-conflicts`` say that is
expected; 1 when the import could not run (no source, the store failed).
"""

import argparse
import csv
import getpass
import io
import logging
import os
import sys
from pathlib import Path

from ...shared.atomic import atomic_write_bytes
from ...shared.commands import AddCommon
from ..importer import DataImportError, Entry, ImportSummary, Skip
from .common import add_store, load_config, store_from

HELP = "import a labelled data set (a folder per category, or a CSV of path,label)"
logger = logging.getLogger(__name__)
PARTIAL = 3  # the import ran, but not everything was labelled


def configure(parser: argparse.ArgumentParser, add_common: AddCommon) -> None:
    add_common(parser)
    add_store(parser)
    parser.add_argument(
        "source", metavar="SOURCE", help="a folder of <category>/ folders, or a CSV"
    )
    parser.add_argument("--who", default=None, help="who imports (default: the login name)")
    parser.add_argument(
        "--device",
        default="import",
        help="device name of the gathered records the import writes (default 'import')",
    )
    parser.add_argument("--workers", type=int, default=8, help="parallel uploads (default 8)")
    parser.add_argument("--report", metavar="FILE", help="also write the import report here")
    parser.add_argument(
        "--allow-skipped",
        action="store_true",
        help="exit 0 even if files were skipped (undecodable, unknown category, unreadable)",
    )
    parser.add_argument(
        "--allow-conflicts",
        action="store_true",
        help="exit 0 even if images were left for review (the same bytes under two labels)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def collect(source: Path) -> tuple[list[Entry], list[Skip]]:
    """The claims in a folder (``<category>/…/<file>``) or a CSV (``path,label``)."""
    if source.is_dir():
        return _collect_folder(source), []
    if source.is_file():
        return _collect_csv(source)
    raise DataImportError(f"{source}: no such folder or CSV file")


def _collect_folder(root: Path) -> list[Entry]:
    """Every file under each top-level folder, labelled with that folder's name. Hidden files
    and folders (``.cache``, ``.DS_Store``) and files beside the folders are not claims."""
    entries: list[Entry] = []
    for top in sorted(p for p in root.iterdir() if not p.name.startswith(".")):
        if not top.is_dir():
            logger.info("%s: not in a category folder, ignored", top)
            continue
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(f for f in filenames if not f.startswith(".")):
                path = Path(dirpath) / name
                entries.append(Entry(path, top.name, path.relative_to(root).as_posix()))
    return entries


def _collect_csv(path: Path) -> tuple[list[Entry], list[Skip]]:
    """``path,label`` rows (an optional ``path,label`` header, ``#`` comments, blank lines);
    relative paths are relative to the CSV's folder."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataImportError(f"{path}: cannot read the CSV: {exc}") from None
    entries: list[Entry] = []
    skips: list[Skip] = []
    for number, row in enumerate(csv.reader(io.StringIO(text)), 1):
        cells = [c.strip() for c in row]
        while cells and not cells[-1]:
            cells.pop()  # trailing empty columns (a spreadsheet's export)
        if not cells or cells[0].startswith("#"):
            continue
        if number == 1 and [c.lower() for c in cells[:2]] == ["path", "label"]:
            continue
        where = f"{path.name}:{number}:{cells[0]}"
        if len(cells) != 2 or not cells[0] or not cells[1]:
            skips.append(Skip(where, "malformed row", f"expected path,label, got {row!r}"[:200]))
            continue
        file = Path(cells[0])
        entries.append(Entry(file if file.is_absolute() else path.parent / file, cells[1], where))
    return entries, skips


def summary_lines(summary: ImportSummary) -> list[str]:
    """What the user reads: counts, then every skipped file and conflict (nothing hidden)."""
    out = [
        f"import of {summary.source}: {summary.files} files, {summary.images} distinct images",
        f"  uploaded {summary.uploaded}, already in the store {summary.already_stored}, "
        f"re-encoded to JPEG {summary.reencoded}",
        f"  labelled {summary.labelled}, already labelled {summary.already_labelled}, "
        f"a reviewer's label stands {summary.reviewed_differently}",
    ]
    out += [f"    {name:<16} {n:6d}" for name, n in summary.per_class.items() if n]
    if summary.journal_key or summary.report_key:
        out.append(f"  journal {summary.journal_key or '(none)'}, report {summary.report_key}")
    else:
        out.append("  nothing new: the store already had all of it")
    if summary.conflicts:
        out.append(f"{len(summary.conflicts)} images left unlabelled for review (conflicts):")
        for c in summary.conflicts:
            claims = "; ".join(f"{lab}: {', '.join(w)}" for lab, w in c.labels.items())
            standing = f" (store says {c.store_label!r})" if c.store_label else ""
            out.append(f"  - {c.sha256[:12]} {claims}{standing}")
    if summary.skipped:
        out.append(f"{len(summary.skipped)} files skipped:")
        out += [f"  - {s.where}: {s.reason}: {s.detail}" for s in summary.skipped]
    out.append(f"took {summary.seconds:.1f} s")
    return out


def exit_status(summary: ImportSummary, allow_skipped: bool, allow_conflicts: bool) -> int:
    """Non-zero whenever something was not labelled, unless the user said that is expected."""
    if (summary.skipped and not allow_skipped) or (summary.conflicts and not allow_conflicts):
        return PARTIAL
    return 0


def run(args: argparse.Namespace) -> int:
    from ..importer import import_images, report_bytes

    config = load_config(args)
    store = store_from(args, config)
    source = Path(args.source).absolute()
    entries, skipped = collect(source)
    summary, report = import_images(
        store,
        entries,
        config.category_names,
        source=str(source),
        who=args.who or _login(),
        skipped=skipped,
        device=args.device,
        workers=args.workers,
        progress=not args.no_progress and not args.quiet,
    )
    if args.report:
        atomic_write_bytes(args.report, report_bytes(report))
    print("\n".join(summary_lines(summary)))
    status = exit_status(summary, args.allow_skipped, args.allow_conflicts)
    problems = []
    if summary.skipped and not args.allow_skipped:
        problems.append(f"{len(summary.skipped)} files skipped (--allow-skipped accepts that)")
    if summary.conflicts and not args.allow_conflicts:
        problems.append(
            f"{len(summary.conflicts)} images left for review (--allow-conflicts accepts that)"
        )
    if problems:
        print(f"recyclops import: incomplete: {'; '.join(problems)}", file=sys.stderr)
    return status


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "someone"
