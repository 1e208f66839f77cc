"""Run every benchmark side by side in one go and write docs/benchmarks.md.

Each ``bench_<area>.py`` prints its own tables and writes a JSON result
(``{"title", "tables": [{"caption", "headers", "rows"}], "figures", "notes", "plots"}``);
this script runs them one after another on the same machine and assembles the report.
"""

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def machine() -> list[str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    versions = []
    for pkg in (
        "tensorflow-cpu",
        "keras",
        "ai-edge-litert",
        "numpy",
        "pillow",
        "opencv-python-headless",
    ):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions.append(f"{pkg} {metadata.version(pkg)}")
    return [
        f"- CPU: {cpu}, {os.cpu_count()} cores visible; {mem}; no accelerator",
        f"- {platform.system()} {platform.release()}, Python {platform.python_version()}",
        f"- {', '.join(versions)}",
    ]


#: (bench, caption prefix, label column, value columns, unit): tables that read better drawn
PLOTS = [
    ("bench_edge", "Per frame", 0, ["whole path ms", "raw inference ms"], "ms per frame"),
    ("bench_train", "Test accuracy", 0, ["float", "int8"], "test accuracy (%)"),
    ("bench_search", "One trial", 0, ["cached features", "from pixels"], "seconds per trial"),
    ("bench_setup", "", 0, ["images/s"], "images per second"),
]


def _number(cell: object) -> float | None:
    try:
        return float(str(cell).rstrip("%x").strip())
    except ValueError:
        return None


def plot_table(t: dict, label_col: int, columns: list[str], unit: str, path: Path) -> bool:
    """A grouped horizontal bar chart of some numeric columns of a benchmark table."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    headers = [str(h) for h in t["headers"]]
    idx = [headers.index(c) for c in columns if c in headers]
    rows = [r for r in t["rows"] if idx and _number(r[idx[0]]) is not None]
    if not idx or not rows:
        return False
    labels = [str(r[label_col]) for r in rows]
    height = 0.8 / len(idx)
    fig, ax = plt.subplots(figsize=(8, 0.55 * len(rows) * len(idx) + 1.2))
    for n, i in enumerate(idx):
        values = [_number(r[i]) for r in rows]
        pos = [y + n * height for y in range(len(rows))]
        ax.barh(pos, [v or 0.0 for v in values], height, label=headers[i])
        for p, v in zip(pos, values, strict=True):
            if v is not None:
                ax.text(v, p, f" {v:g}", va="center", fontsize=8)
    ax.set_yticks([y + height * (len(idx) - 1) / 2 for y in range(len(rows))], labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(unit)
    ax.set_title(t.get("caption", "")[:90], fontsize=9)
    if len(idx) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def table(t: dict) -> list[str]:
    out = []
    if t.get("caption"):
        out.append(f"**{t['caption']}**\n")
    out.append("| " + " | ".join(str(h) for h in t["headers"]) + " |")
    out.append("|" + "---|" * len(t["headers"]))
    for row in t["rows"]:
        out.append("| " + " | ".join(str(c) for c in row) + " |")
    return [*out, ""]


def total_seconds(work: Path, scripts: list[Path]) -> int:
    total = 0.0
    for script in scripts:
        took = work / f"{script.stem}.took"
        if took.exists():
            total += float(took.read_text().split()[0])
    return round(total)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="pass --quick to every benchmark")
    parser.add_argument("--only", nargs="*", help="bench names (e.g. edge train)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args()
    work = ROOT / "build" / "bench"
    work.mkdir(parents=True, exist_ok=True)
    img_dir = ROOT / "docs" / "img" / "bench"
    img_dir.mkdir(parents=True, exist_ok=True)
    scripts = sorted(HERE.glob("bench_*.py"))
    rerun = [s for s in scripts if not args.only or s.stem.removeprefix("bench_") in args.only]
    sections: list[str] = []
    for script in rerun:  # one after another: no benchmark shares the CPU with another
        out = work / f"{script.stem}.json"
        out.unlink(missing_ok=True)
        cmd = [sys.executable, str(script), "--json", str(out)] + (
            ["--quick"] if args.quick else []
        )
        print(f"\n=== {script.name}: {' '.join(cmd[1:])}", flush=True)
        t0 = time.time()
        result = subprocess.run(cmd, cwd=ROOT)
        (work / f"{script.stem}.took").write_text(f"{time.time() - t0:.0f} {result.returncode}")
    for script in scripts:  # --only keeps the other benchmarks' last results
        out = work / f"{script.stem}.json"
        took_file = work / f"{script.stem}.took"
        took, _, code = (
            took_file.read_text().partition(" ") if took_file.exists() else ("?", "", "?")
        )
        if code.strip() != "0" or not out.exists():
            sections += [f"## {script.stem}\n", f"Not run yet, or failed (exit {code}).\n"]
            continue
        data = json.loads(out.read_text())
        sections.append(f"## {data.get('title', script.stem)}\n")
        sections.append(f"`python tests/benchmarks/{script.name}` — {took} s.\n")
        for t in data.get("tables", []):
            sections += table(t)
            for bench, prefix, label_col, columns, unit in PLOTS:
                if bench == script.stem and str(t.get("caption", "")).startswith(prefix):
                    png = img_dir / f"{script.stem}.png"
                    if plot_table(t, label_col, columns, unit, png):
                        sections.append(f"![{t.get('caption', '')[:60]}](img/bench/{png.name})\n")
                    break
        figures = data.get("figures") or {}
        if figures:
            sections += table(
                {
                    "caption": "Figures",
                    "headers": ["figure", "value"],
                    "rows": [[k, v] for k, v in figures.items()],
                }
            )
        for note in data.get("notes", []):
            sections.append(f"- {note}")
        sections.append("")
        for plot in data.get("plots", []):
            src = Path(plot)
            if src.exists():
                dest = img_dir / src.name
                shutil.copyfile(src, dest)
                sections.append(f"![{src.stem}](img/bench/{src.name})\n")
    head = [
        "# Benchmarks",
        "",
        f"Generated by `make bench` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; "
        f"the benchmarks took {total_seconds(work, scripts)} s one after another.",
        "Every ratio compares two things measured side by side in the same run on this machine:",
        "",
        *machine(),
        "",
        "Reproduce: `make bench` (all, writes this file) or "
        "`.venv/bin/python tests/benchmarks/bench_<area>.py --json out.json`.",
        "The accuracy benchmarks use TrashNet and the MobileNetV2 ImageNet weights "
        "from `../shared`.",
        "",
    ]
    text = "\n".join(head + sections) + "\n"
    # paths of this machine become paths relative to the repository
    text = text.replace(f"{ROOT}/", "").replace(f"{ROOT.parent}/", "../")
    Path(args.out).write_text(text)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
