"""Printing and saving benchmark results in the shape docs/benchmarks.md is built from."""

import json
import time
from pathlib import Path
from typing import Any

TRASHNET = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "trashnet"
BENCH_DIR = Path(__file__).resolve().parents[2] / "build" / "bench"


def table(caption: str, headers: list[str], rows: list[list[Any]]) -> dict[str, Any]:
    return {"caption": caption, "headers": headers, "rows": rows}


def emit(result: dict[str, Any], json_out: str | None) -> None:
    """Markdown to stdout; the JSON dict to ``json_out``."""
    print(f"## {result['title']}\n")
    for t in result.get("tables", []):
        print(f"**{t['caption']}**\n")
        print("| " + " | ".join(map(str, t["headers"])) + " |")
        print("|" + "---|" * len(t["headers"]))
        for row in t["rows"]:
            print("| " + " | ".join(map(str, row)) + " |")
        print()
    for name, value in result.get("figures", {}).items():
        print(f"- {name}: {value}")
    for note in result.get("notes", []):
        print(f"- {note}")
    if json_out:
        Path(json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(json_out).write_text(json.dumps(result, indent=2, default=str))


def find_trashnet() -> Path | None:
    return TRASHNET if TRASHNET.is_dir() else None


def timed(fn: Any, arg: Any, clock: Any = time.perf_counter) -> float:
    start = clock()
    fn(arg)
    return (clock() - start) * 1000


def timed_both(fn: Any, arg: Any) -> tuple[float, float]:
    """Wall ms and process CPU ms of one call: CPU time is the work done, which other jobs on
    the cores stretch far less than they stretch wall time (all threads count)."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn(arg)
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


def r2(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
